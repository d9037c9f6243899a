/*
 * eval — Flagent's flag evaluation, pure (no I/O, no clock, no randomness
 * of its own): a flag record and an entity → the variant the entity gets,
 * the segment that gave it, why, and (on request) a per-segment debug log.
 * The rules are ../shared/EVALUATION.md, restated with flagcast's choices in
 * docs/EVALUATION.md.
 *
 * Two steps, so that the work that depends only on the flag is done once
 * per flag version, not once per evaluation:
 *
 *   eval_flag_t *ef;
 *   eval_flag_new(&ef, flag, err, sizeof err);     // when the flag changes
 *   eval_run(ef, &in, &res);                       // per entity, any thread
 *   eval_flag_free(ef);                            // before freeing the flag
 *
 * eval_flag_new orders the segments, builds each segment's distribution
 * table, parses operators and numbers, splits and sorts IN lists, compiles
 * regular expressions (POSIX ERE, glibc regcomp) and hashes the flag id's
 * prefix of the CRC-32. The eval_flag_t borrows the flag_t: the record must
 * stay alive and unchanged until eval_flag_free. After eval_flag_new it is
 * read-only, so any number of threads may eval_run it at once.
 *
 * Results point into the flag record (segment, variant), never into the
 * eval_flag_t, so they stay valid as long as the record does.
 */
#ifndef FLAGCAST_EVAL_H
#define FLAGCAST_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"
#include "proto/eval_ctx.h"
#include "proto/flag.h"

/* A regular expression whose counted repetitions expand past this many atoms
 * ("((a{1,100}){1,100}){1,100}" is a million) is treated as invalid: glibc's
 * regcomp builds its automaton from the expansion and would take gigabytes;
 * it parses x+ as x x*, so "a+++...+" doubles with every +.
 * Back-references (\1..\9) are refused too (exponential matching). */
#define EVAL_RE_MAX_WEIGHT 4096

/* Buckets: crc32(decimal(flag id) ‖ entityID) mod EVAL_BUCKETS. */
#define EVAL_BUCKETS   1000u
#define EVAL_NO_BUCKET UINT32_MAX    /* the bucket was not needed */

/* Why the result is what it is. Each maps to an OFREP reason. */
typedef enum eval_reason {
    EVAL_REASON_DISABLED = 1,     /* the flag is not enabled          → DISABLED */
    EVAL_REASON_NO_SEGMENTS,      /* the flag has no segments         → DEFAULT */
    EVAL_REASON_NO_MATCH,         /* no segment gave a variant        → DEFAULT */
    EVAL_REASON_SPLIT,            /* a segment matched and the entity's bucket
                                     chose among variants or rollout < 100 → SPLIT */
    EVAL_REASON_TARGETING_MATCH   /* a segment matched at rolloutPercent 100
                                     and its chosen variant holds 100% → TARGETING_MATCH */
} eval_reason_t;

/* What happened in one segment (the debug log's entries). */
typedef enum eval_seg_outcome {
    EVAL_SEG_CONSTRAINT_FAILED = 1,  /* constraint_index did not hold */
    EVAL_SEG_NO_ROLLOUT,             /* constraints held; rolloutPercent 0 */
    EVAL_SEG_NO_DISTRIBUTION,        /* constraints held; no distribution */
    EVAL_SEG_NOT_ROLLED_IN,          /* constraints held; bucket past rollout */
    EVAL_SEG_MATCHED                 /* this segment gave the variant */
} eval_seg_outcome_t;

typedef struct eval_seglog {
    const flag_segment_t *segment;   /* into the flag record */
    uint32_t              segment_index;   /* in flag->segments */
    eval_seg_outcome_t    outcome;
    uint32_t              constraint_index; /* CONSTRAINT_FAILED: which one */
    uint32_t              bucket;    /* 0..999, or EVAL_NO_BUCKET */
    const flag_variant_t *variant;   /* MATCHED: the variant, else NULL */
    int                   variant_index;   /* in flag->variants, or -1 */
} eval_seglog_t;

typedef struct eval_input {
    const char *entity_id;       /* bytes, need not be NUL-terminated */
    size_t      entity_id_len;   /* 0: "randomly_generated_<random>" is used */
    int32_t     random;          /* the caller's random number for that case */
    const eval_ctx_t *ctx;       /* properties; NULL: none (every constraint fails) */
    uint64_t    now_ms;          /* copied into the result's timestamp_ms */
    /* Debug log, only when wanted: one entry per segment examined is written
     * here, up to log_cap (FLAG_MAX_SEGMENTS always suffices). NULL: none. */
    eval_seglog_t *log;
    size_t         log_cap;
} eval_input_t;

typedef struct eval_result {
    eval_reason_t         reason;
    /* The segment Flagent reports as segmentID: the one that gave the
     * variant, or, when none did, the last one examined; NULL when the flag
     * is disabled or has no segments. */
    const flag_segment_t *segment;
    int                   segment_index;   /* in flag->segments, or -1 */
    const flag_variant_t *variant;         /* NULL: no variant */
    int                   variant_index;   /* in flag->variants, or -1 */
    uint32_t              bucket;          /* 0..999, or EVAL_NO_BUCKET */
    uint64_t              snapshot_id;     /* flagSnapshotID: the flag's version */
    uint64_t              timestamp_ms;    /* timestamp: the input's now_ms */
    size_t                nlog;            /* entries written to input.log */
    /* The entity evaluated: the input's (entity_id == the input pointer) or,
     * for an empty one, the generated id in generated_id (entity_id NULL).
     * Read it with eval_result_entity(), which is copy-safe. */
    const char           *entity_id;
    size_t                entity_id_len;
    char                  generated_id[32];
} eval_result_t;

/* Prepares f for evaluation (see above). Invalid regular expressions and
 * unknown operators are not errors: such constraints never hold (NEREG with
 * an invalid expression always does). A distribution naming no variant of
 * the flag is left out of the table.
 * @return 0 and *out, or -1 (out of memory) with a message in errbuf. */
typedef struct eval_flag eval_flag_t;   /* opaque */

int  eval_flag_new(eval_flag_t **out, const flag_t *f, char *errbuf, size_t errlen);
void eval_flag_free(eval_flag_t *ef);
const flag_t *eval_flag_record(const eval_flag_t *ef);

/* Evaluates one entity (EVALUATION.md, "Steps"). Never fails on a prepared
 * flag. @return 0, or -1 when ef, in or r is NULL. */
int  eval_run(const eval_flag_t *ef, const eval_input_t *in, eval_result_t *r);

/* eval_flag_new + eval_run + eval_flag_free, for one-off evaluations (tests,
 * a cold path). Pointers in r are into f. @return 0 or -1 (out of memory). */
int  eval_once(const flag_t *f, const eval_input_t *in, eval_result_t *r);

/* The entity evaluated (the input's id or the generated one). */
const char *eval_result_entity(const eval_result_t *r, size_t *len);

/* OFREP's reason: "DISABLED", "DEFAULT", "SPLIT", "TARGETING_MATCH"
 * ("UNKNOWN" for anything else). */
const char *eval_reason_ofrep(eval_reason_t r);

/* ---- Flagent's debug texts (evalDebugLog) ----------------------------------
 * Segment and variant ids are the caller's to pass (the record's ids; the
 * evaluator does not read them), so these only append plain text (not JSON:
 * escape it with json_str when rendering). Each @return 0 or -1. */

/* A segment entry's msg: "segment_id <sid> did not match constraints",
 * "matched all constraints. rollout no." (no rollout, no distribution, not
 * rolled in) or "matched all constraints. rollout yes. variantID: <vid>". */
int  eval_seglog_msg(buf_t *out, const eval_seglog_t *l, uint64_t segment_id,
                     uint64_t variant_id);
/* evalDebugLog.msg for a flag that gave no variant for a reason of its own:
 * DISABLED "flagID <id> is not enabled", NO_SEGMENTS "flagID <id> has no
 * segments"; appends nothing for the other reasons (Flagent then uses the
 * first segment entry's msg when no variant, "" when one). */
int  eval_flag_msg(buf_t *out, const flag_t *f, eval_reason_t r);

/* ---- typed values (OFREP) ---------------------------------------------------
 * The value a variant stands for: its attachment's "value" member when the
 * attachment is a map that has one (any JSON value, null included); else a
 * key of on / true / enabled (ASCII case-insensitive) is true, off / false /
 * disabled is false; else the key as a string. */
typedef enum eval_value_kind {
    EVAL_VALUE_NULL = 1,
    EVAL_VALUE_BOOL,
    EVAL_VALUE_NUMBER,
    EVAL_VALUE_STRING,
    EVAL_VALUE_ARRAY,
    EVAL_VALUE_OBJECT
} eval_value_kind_t;

/* Appends that value as JSON to out and sets *kind (if kind is not NULL).
 * On failure out is left as it was. @return 0 or -1. */
int  eval_variant_value(const flag_variant_t *v, buf_t *out, eval_value_kind_t *kind);

#endif
