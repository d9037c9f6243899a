/*
 * evalapi — the gateway's evaluation API, pure: a request body → an eval
 * request (evalapi_parse), an eval request + the flags mirror → a complete
 * HTTP answer (status, JSON body, ETag: evalapi_run). No libwebsockets,
 * libevent or hiredis; lws/eval.c reads the body and writes the answer.
 *
 * Four requests (docs/API.md, "Evaluation"):
 *   EVALAPI_FLAGENT        POST /api/v1/evaluation        Flagent's shapes
 *   EVALAPI_FLAGENT_BATCH  POST /api/v1/evaluation/batch  Flagent's shapes
 *   EVALAPI_OFREP_ONE      POST /ofrep/v1/evaluate/flags/{key}   OFREP
 *   EVALAPI_OFREP_BULK     POST /ofrep/v1/evaluate/flags         OFREP, ETag
 *
 * Who is evaluated (docs/IDENTITY.md, "Evaluation"): the caller passes the
 * verified identity of the request, if any. An identity that does not hold
 * the evaluator role is bound to its subject: every entity evaluated is its
 * `sub` (the request's entityID / targetingKey is replaced), and its claims
 * are added to the context over the request's (`sub`, and `roles` as a
 * comma list), so they win a name clash. An evaluator, or an anonymous
 * caller, evaluates the entity the request names.
 *
 * Threads: evalapi_parse touches no shared state; evalapi_run only reads
 * the mirror (call it under the mirror's read lock). Results point into the
 * mirror only while rendering: the answer is a copy.
 */
#ifndef FLAGCAST_GATEWAY_EVALAPI_H
#define FLAGCAST_GATEWAY_EVALAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "common/token.h"
#include "gateway/mirror.h"
#include "proto/buf.h"

#define EVALAPI_MAX_ENTITIES  1000   /* entities of one batch request */
#define EVALAPI_MAX_SELECTORS 1000   /* flagIDs + flagKeys + flagTags of one batch */
#define EVALAPI_MAX_RESULTS   100000 /* entities x flags of one batch */
#define EVALAPI_ETAG_LEN      20     /* "\"" 16 hex "\"" NUL, rounded up */

typedef enum evalapi_kind {
    EVALAPI_FLAGENT = 1,
    EVALAPI_FLAGENT_BATCH,
    EVALAPI_OFREP_ONE,
    EVALAPI_OFREP_BULK
} evalapi_kind_t;

/* One entity to evaluate; strings borrowed from the request's JSON. */
typedef struct evalapi_entity {
    const char   *id;          /* entityID / targetingKey; NULL: none given */
    size_t        id_len;
    const char   *type;        /* entityType, NULL: none */
    const json_t *context;     /* entityContext / the OFREP context, NULL: none */
} evalapi_entity_t;

/* A parsed request. Owns root (the parsed body) and the arrays; every
 * string points into root or into key. */
typedef struct evalapi_req {
    evalapi_kind_t    kind;
    json_t           *root;
    bool              debug;          /* enableDebug */
    /* Flagent single: the flag asked for */
    bool              has_flag_id;
    uint64_t          flag_id;
    const char       *flag_key;       /* NULL: none */
    /* Flagent batch: the selectors */
    uint64_t         *flag_ids;       size_t nflag_ids;
    const char      **flag_keys;      size_t nflag_keys;
    const char      **flag_tags;      size_t nflag_tags;
    bool              tags_all;       /* flagTagsOperator ALL (default ANY) */
    /* the entities (single and OFREP: exactly one) */
    evalapi_entity_t *entities;       size_t nentities;
    /* OFREP single: the key from the path (owned copy) */
    char             *key;
} evalapi_req_t;

/* Who asks (see above). */
typedef struct evalapi_who {
    const token_identity_t *id;       /* NULL: anonymous */
    bool                    evaluator; /* id holds the evaluator role */
} evalapi_who_t;

/* What evalapi_run needs besides the request: the clock and the random
 * numbers for entities without an id (Flagent's randomly_generated_<n>),
 * both supplied by the caller so that this module stays deterministic. */
typedef struct evalapi_env {
    uint64_t      now_ms;
    uint64_t      seed;               /* entity i without an id: derived from seed and i */
    evalapi_who_t who;
    const char   *if_none_match;      /* OFREP bulk: the header's value, NULL: none */
} evalapi_env_t;

/* A complete answer. body is JSON (empty for a 304). */
typedef struct evalapi_reply {
    unsigned status;
    buf_t    body;
    char     etag[EVALAPI_ETAG_LEN];  /* "" or the quoted ETag to send */
} evalapi_reply_t;

/* Whether path is one of the four evaluation paths: sets *kind and, for
 * /ofrep/v1/evaluate/flags/{key}, *key / *klen (into path; a key holds no
 * '/', is 1-EVALAPI_KEY_MAX bytes). An empty or slashed key is not an
 * evaluation path (404). */
#define EVALAPI_KEY_MAX 200
bool evalapi_route(const char *path, evalapi_kind_t *kind, const char **key, size_t *klen);

void evalapi_req_init(evalapi_req_t *r);
void evalapi_req_free(evalapi_req_t *r);
void evalapi_reply_init(evalapi_reply_t *r);
void evalapi_reply_free(evalapi_reply_t *r);

/* Renders an error answer of kind into out: Flagent's {"error": msg}, or
 * OFREP's {"key"?, "errorCode": code, "errorDetails": msg} (key: the single
 * flag's, or NULL). */
void evalapi_reply_error(evalapi_reply_t *out, evalapi_kind_t kind, const char *key,
                         unsigned status, const char *code, const char *msg);

/* Parses a request body of kind (key: the OFREP flag key from the path,
 * klen bytes, for EVALAPI_OFREP_ONE; else NULL). Malformed JSON, a wrong
 * type or a missing selector fail; the reply is then already rendered into
 * out (400 with Flagent's {"error":…} or OFREP's {"errorCode":…}).
 * @return 0 with *req filled, or -1 with out filled (req freed). */
int  evalapi_parse(evalapi_kind_t kind, const char *key, size_t klen,
                   const char *body, size_t len, evalapi_req_t *req, evalapi_reply_t *out);

/* Evaluates req against m and renders the answer into out (status, body,
 * ETag). Only reads m. @return 0, or -1 when out of memory (out is then a
 * 500 with a message). */
int  evalapi_run(const mirror_t *m, const evalapi_req_t *req, const evalapi_env_t *env,
                 evalapi_reply_t *out);

/* The ETag of an OFREP bulk answer, computed without evaluating: FNV-1a 64
 * over every flag's key and version (in key order), the entity as bound
 * (identity) or given, and the context's canonical JSON (sorted keys).
 * The same flags and context give the same ETag on every gateway. Writes
 * the quoted form into out. @return 0 or -1 (memory). */
int  evalapi_etag(const mirror_t *m, const evalapi_req_t *req, const evalapi_who_t *who,
                  char out[EVALAPI_ETAG_LEN]);

/* Whether an If-None-Match value (a comma list, W/ prefixes and * allowed)
 * names etag. */
bool evalapi_etag_match(const char *if_none_match, const char *etag);

#endif
