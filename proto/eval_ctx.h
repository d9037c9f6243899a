/*
 * eval_ctx — an evaluation's entity context: property name → value, the
 * `entityContext` of Flagent's API and the non-targetingKey fields of an
 * OFREP context (docs/EVALUATION.md, "The context").
 *
 * The evaluator compares property values as text (../shared/EVALUATION.md,
 * "Constraints"): a string is used as it is, a number or a boolean as its
 * JSON text. So a property is stored as a view of its text:
 *   - strings are borrowed, not copied: the name and value bytes must stay
 *     valid and unchanged while the context is used (a jansson object the
 *     context was filled from, a parsed token's claims);
 *   - numbers and booleans are rendered once, when added, into the entry
 *     itself (integers in decimal, reals as the shortest text that reads
 *     back as the same double, with ".0" when that text looks like an
 *     integer, as jansson's json_dumps writes them; true / false);
 *   - null, arrays and objects are not added: they count as missing.
 *
 * Names may repeat; a lookup finds the LAST entry added under a name, so a
 * caller layers sources by adding the weaker one first (the request's
 * entityContext, then the token's claims, which then win).
 *
 * Ownership: the context owns its entry array (eval_ctx_free releases it;
 * eval_ctx_reset keeps it for reuse), never the borrowed bytes. A context is
 * read-only during evaluation, so several threads may evaluate with one.
 */
#ifndef FLAGCAST_EVAL_CTX_H
#define FLAGCAST_EVAL_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define EVAL_CTX_MAX_PROPS 256     /* entries per context; more is an error */
#define EVAL_CTX_NUM_MAX   32      /* bytes of a rendered number, NUL included */

typedef struct eval_prop {
    const char *name;              /* borrowed */
    size_t      name_len;
    const char *str;               /* borrowed string value, or NULL: text in num */
    size_t      len;               /* value bytes (of str or num) */
    char        num[EVAL_CTX_NUM_MAX];
} eval_prop_t;

typedef struct eval_ctx {
    eval_prop_t *props;            /* private: use the functions below */
    size_t       n, cap;
} eval_ctx_t;

void eval_ctx_init(eval_ctx_t *c);
void eval_ctx_free(eval_ctx_t *c);   /* frees the entries, leaves c empty */
void eval_ctx_reset(eval_ctx_t *c);  /* empties c, keeps the storage */

/* Each adds one property. name/value are borrowed (see above).
 * @return 0, or -1 when the context is full (EVAL_CTX_MAX_PROPS) or out of
 * memory; nothing is added then. */
int eval_ctx_add_str(eval_ctx_t *c, const char *name, size_t name_len,
                     const char *value, size_t len);
int eval_ctx_add_int(eval_ctx_t *c, const char *name, size_t name_len, long long v);
/* A non-finite v is not added (it has no JSON text) and returns 0. */
int eval_ctx_add_real(eval_ctx_t *c, const char *name, size_t name_len, double v);
int eval_ctx_add_bool(eval_ctx_t *c, const char *name, size_t name_len, bool v);
/* A jansson value by its type: string (borrowed from v), integer, real,
 * true, false; null, array and object are skipped (return 0). */
int eval_ctx_add_json(eval_ctx_t *c, const char *name, size_t name_len, const json_t *v);
/* Every member of a JSON object, in its order (keys and strings borrowed
 * from obj). A NULL obj adds nothing; a non-object is an error.
 * @return 0 or -1 (entries added before the failure stay). */
int eval_ctx_add_object(eval_ctx_t *c, const json_t *obj);

/* Looks a property up by name (the last one added wins).
 * @return true with *value and *len set (not NUL-terminated in general), or false
 * when the property is missing. */
bool eval_ctx_get(const eval_ctx_t *c, const char *name, size_t name_len,
                  const char **value, size_t *len);

/* The JSON text of a double as the context stores it (see above) into out
 * (EVAL_CTX_NUM_MAX bytes). @return its length, or 0 if v is not finite. */
size_t eval_ctx_real_text(double v, char out[EVAL_CTX_NUM_MAX]);

#endif
