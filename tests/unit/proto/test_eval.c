/*
 * Unit tests for proto/eval and proto/eval_ctx: the CRC-32 vectors of
 * EVALUATION.md, every operator with its edge cases, segment order and
 * fall-through, distribution order, the 30/70 split over 10,000 entities,
 * reasons, the debug log and its texts, typed values, and the context.
 */
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "proto/eval.h"
#include "sample.h"

/* ---- building records ---------------------------------------------------- */

static void mk(flag_t *f, uint64_t id)
{
    flag_init(f);
    f->id = id;
    f->key = xstrdup("k");
    f->enabled = true;
}

static flag_variant_t *add_variant(flag_t *f, const char *key)
{
    f->variants = realloc(f->variants, (f->nvariants + 1) * sizeof(*f->variants));
    flag_variant_t *v = &f->variants[f->nvariants++];
    memset(v, 0, sizeof(*v));
    v->key = xstrdup(key);
    return v;
}

/* The returned pointer is valid until the next add_segment. */
static flag_segment_t *add_segment(flag_t *f, uint32_t rank, uint32_t rollout)
{
    f->segments = realloc(f->segments, (f->nsegments + 1) * sizeof(*f->segments));
    flag_segment_t *s = &f->segments[f->nsegments++];
    memset(s, 0, sizeof(*s));
    s->rank = rank;
    s->rollout_percent = rollout;
    return s;
}

static void add_cons(flag_segment_t *s, const char *prop, const char *op, const char *val)
{
    s->constraints = realloc(s->constraints, (s->nconstraints + 1) * sizeof(*s->constraints));
    flag_constraint_t *c = &s->constraints[s->nconstraints++];
    c->property = xstrdup(prop);
    c->op = xstrdup(op);
    c->value = xstrdup(val);
}

static void add_dist(flag_segment_t *s, const char *key, uint32_t pct)
{
    s->distributions = realloc(s->distributions,
                               (s->ndistributions + 1) * sizeof(*s->distributions));
    flag_distribution_t *d = &s->distributions[s->ndistributions++];
    d->variant_key = xstrdup(key);
    d->percent = pct;
}

static uint32_t bucket_of(uint64_t flag_id, const char *entity)
{
    char b[256];
    int n = snprintf(b, sizeof(b), "%" PRIu64 "%s", flag_id, entity);
    return (uint32_t)(crc32(0L, (const Bytef *)b, (uInt)n) % 1000);
}

static eval_input_t input(const char *entity, const eval_ctx_t *ctx)
{
    eval_input_t in = {0};
    in.entity_id = entity;
    in.entity_id_len = entity ? strlen(entity) : 0;
    in.ctx = ctx;
    return in;
}

/* ---- CRC-32 ---------------------------------------------------------------- */

START_TEST(test_crc32_vectors)
{
    ck_assert_uint_eq(crc32(0L, (const Bytef *)"123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(crc32(0L, (const Bytef *)"1user_123", 9), 0xD93F1D0Fu);

    /* Through the evaluator: flag 1 / user_123 → 79, flag 42 / alice → 83. */
    struct { uint64_t id; const char *entity; uint32_t bucket; } v[] = {
        {1, "user_123", 79}, {42, "alice", 83},
    };
    for (size_t i = 0; i < 2; i++) {
        flag_t f;
        mk(&f, v[i].id);
        add_variant(&f, "on");
        add_dist(add_segment(&f, 0, 100), "on", 100);
        eval_input_t in = input(v[i].entity, NULL);
        eval_result_t r;
        ck_assert_int_eq(eval_once(&f, &in, &r), 0);
        ck_assert_uint_eq(r.bucket, v[i].bucket);
        ck_assert_uint_eq(bucket_of(v[i].id, v[i].entity), v[i].bucket);
        flag_free(&f);
    }
}
END_TEST

/* ---- operators --------------------------------------------------------------- */

typedef struct op_case {
    const char *op, *value;
    const char *prop;       /* the property's string value; NULL: missing */
    bool holds;
} op_case_t;

static const op_case_t op_cases[] = {
    {"EQ", "pro", "pro", true},
    {"EQ", "pro", "Pro", false},
    {"EQ", "pro", "pro ", false},
    {"EQ", "pro", NULL, false},
    {"EQ", "", "", true},
    {"NEQ", "pro", "free", true},
    {"NEQ", "pro", "pro", false},
    {"NEQ", "pro", NULL, false},          /* missing fails the negated ones too */
    {"LT", "10", "9", true},
    {"LT", "10", "10", false},
    {"LT", "10", "10.5", false},
    {"LT", "10", " 9 ", true},            /* Java's parseDouble trims */
    {"LT", "10", "abc", false},
    {"LT", "abc", "9", false},
    {"LT", "10", "", false},
    {"LT", "10", "0x5", false},
    {"LT", "10", "Infinity", false},
    {"LT", "10", "-1e3", true},
    {"LT", "1e2", "99.5", true},
    {"LT", ".5", "0.4", true},
    {"LT", "10", NULL, false},
    {"LTE", "10", "10", true},
    {"LTE", "10", "10.0001", false},
    {"LTE", "10", NULL, false},
    {"GT", "18", "25", true},
    {"GT", "18", "18", false},
    {"GT", "18", "x", false},
    {"GT", "18", NULL, false},
    {"GTE", "18", "18", true},
    {"GTE", "18", "17.99", false},
    {"GTE", "18", NULL, false},
    {"EREG", "a.*", "abc", true},
    {"EREG", "b", "abc", false},          /* the whole value, not a part */
    {"EREG", "b.*", "abc", false},
    {"EREG", "a|ab", "ab", true},
    {"EREG", "[a-z]+@example\\.com", "bob@example.com", true},
    {"EREG", "[a-z]+@example\\.com", "bob@example.com.evil", false},
    {"EREG", "(foo|bar)?baz", "baz", true},
    {"EREG", "", "", true},
    {"EREG", "", "x", false},
    {"EREG", "[", "[", false},            /* invalid: false */
    {"EREG", "(a", "(a", false},
    {"EREG", "((a{1,100}){1,100}){1,100}", "a", false},   /* too big: invalid */
    {"EREG", "(a)\\1", "aa", false},      /* back-reference: refused */
    {"EREG", "a{2,3}", "aaa", true},
    {"EREG", "a+++++++++++++++++++++++++++", "a", false},   /* 2^27 copies: invalid */
    {"EREG", "a+b+", "aab", true},
    /* a repetition of a repetition: undefined in POSIX, refused by Go's
     * regexp (Flagent's), exponential in glibc's regcomp: invalid */
    {"EREG", "a**", "a", false},
    {"EREG", "a+*", "aa", false},
    {"EREG", "a{2}+", "aa", false},
    {"EREG", "a*{2}", "aa", false},
    {"EREG", "a*?*", "a", false},
    {"EREG", "-**************+********", "-", false},   /* the fuzz target's: > 15 s */
    {"NEREG", "a**", "a", true},
    /* one lazy '?' after a repetition is kept, as Go reads it */
    {"EREG", "a.*?c", "abbc", true},
    {"EREG", "a+?", "aaa", true},
    {"EREG", "a{1,2}?", "aa", true},
    {"EREG", "(a*)*", "aa", true},        /* a group between: allowed */
    {"EREG", "a.*", NULL, false},
    {"NEREG", "b", "abc", true},
    {"NEREG", "a.*", "abc", false},
    {"NEREG", "[", "x", true},            /* invalid: true */
    {"NEREG", "a.*", NULL, false},
    {"IN", "FR, DE,NL", "DE", true},      /* split on commas, items trimmed */
    {"IN", "FR, DE,NL", "FR", true},
    {"IN", "FR, DE,NL", "NL", true},
    {"IN", "FR, DE,NL", " DE", false},    /* the value is not trimmed */
    {"IN", "FR, DE,NL", "ES", false},
    {"IN", "FR, DE,NL", "FR, DE", false},
    {"IN", " a ,\tb\t, c", "b", true},
    {"IN", "a,,b", "", true},
    {"IN", "[\"a\",\"b\"]", "a", false},  /* a JSON array is not parsed */
    {"IN", "[\"a\",\"b\"]", "[\"a\"", true},
    {"IN", "", "", true},
    {"IN", "FR", NULL, false},
    {"NOTIN", "FR, DE,NL", "ES", true},
    {"NOTIN", "FR, DE,NL", "DE", false},
    {"NOTIN", "FR, DE,NL", NULL, false},
    {"CONTAINS", "lo w", "hello world", true},
    {"CONTAINS", "xyz", "hello world", false},
    {"CONTAINS", "", "anything", true},
    {"CONTAINS", "lo", NULL, false},
    {"NOTCONTAINS", "xyz", "hello world", true},
    {"NOTCONTAINS", "lo w", "hello world", false},
    {"NOTCONTAINS", "lo", NULL, false},
    {"eq", "pro", "pro", false},          /* operators are case-sensitive */
    {"LIKE", "pro", "pro", false},
    {"", "pro", "pro", false},
};

/* 1 when the flag's single constrained segment gives its variant. */
static int holds_with(const char *op, const char *value, const eval_ctx_t *ctx)
{
    flag_t f;
    mk(&f, 3);
    add_variant(&f, "on");
    flag_segment_t *s = add_segment(&f, 0, 100);
    add_cons(s, "p", op, value);
    add_dist(s, "on", 100);
    eval_input_t in = input("e1", ctx);
    eval_result_t r;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    int got = r.variant != NULL;
    if (got)
        ck_assert_int_eq(r.reason, EVAL_REASON_TARGETING_MATCH);
    else
        ck_assert_int_eq(r.reason, EVAL_REASON_NO_MATCH);
    flag_free(&f);
    return got;
}

START_TEST(test_operator)
{
    const op_case_t *c = &op_cases[_i];
    eval_ctx_t ctx;
    eval_ctx_init(&ctx);
    eval_ctx_add_str(&ctx, "other", 5, "x", 1);
    if (c->prop)
        ck_assert_int_eq(eval_ctx_add_str(&ctx, "p", 1, c->prop, strlen(c->prop)), 0);
    ck_assert_msg(holds_with(c->op, c->value, &ctx) == c->holds,
                  "%s %s on %s%s%s: expected %s", c->op, c->value,
                  c->prop ? "\"" : "", c->prop ? c->prop : "(missing)",
                  c->prop ? "\"" : "", c->holds ? "holds" : "fails");
    eval_ctx_free(&ctx);
}
END_TEST

START_TEST(test_operator_typed_context)
{
    /* numbers and booleans compare as their JSON text */
    json_error_t je;
    json_t *o = json_loads("{\"age\":25,\"score\":2.5,\"round\":25.0,\"beta\":true,"
                           "\"off\":false,\"tags\":[\"a\"],\"obj\":{},\"nil\":null}", 0, &je);
    ck_assert_ptr_nonnull(o);
    eval_ctx_t ctx;
    eval_ctx_init(&ctx);
    ck_assert_int_eq(eval_ctx_add_object(&ctx, o), 0);
    struct { const char *prop, *op, *value; bool holds; } t[] = {
        {"age", "EQ", "25", true}, {"age", "GT", "18", true}, {"age", "IN", "24,25", true},
        {"score", "EQ", "2.5", true}, {"score", "LT", "3", true},
        {"round", "EQ", "25.0", true}, {"round", "GTE", "25", true},
        {"beta", "EQ", "true", true}, {"off", "EQ", "false", true},
        {"tags", "NEQ", "x", false}, {"obj", "NEQ", "x", false},   /* missing */
        {"nil", "NEQ", "x", false}, {"nil", "NOTIN", "x", false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        flag_t f;
        mk(&f, 3);
        add_variant(&f, "on");
        flag_segment_t *s = add_segment(&f, 0, 100);
        add_cons(s, t[i].prop, t[i].op, t[i].value);
        add_dist(s, "on", 100);
        eval_input_t in = input("e1", &ctx);
        eval_result_t r;
        ck_assert_int_eq(eval_once(&f, &in, &r), 0);
        ck_assert_msg((r.variant != NULL) == t[i].holds, "%s %s %s", t[i].prop, t[i].op,
                      t[i].value);
        flag_free(&f);
    }
    /* no context at all: every constraint fails, an empty list holds */
    ck_assert_int_eq(holds_with("NEQ", "x", NULL), 0);
    eval_ctx_free(&ctx);
    json_decref(o);
}
END_TEST

START_TEST(test_constraints_and)
{
    eval_ctx_t ctx;
    eval_ctx_init(&ctx);
    eval_ctx_add_str(&ctx, "country", 7, "NL", 2);
    eval_ctx_add_str(&ctx, "plan", 4, "pro", 3);
    flag_t f;
    mk(&f, 5);
    add_variant(&f, "on");
    flag_segment_t *s = add_segment(&f, 0, 100);
    add_cons(s, "country", "IN", "NL,DE");
    add_cons(s, "plan", "EQ", "free");
    add_dist(s, "on", 100);
    eval_seglog_t log[FLAG_MAX_SEGMENTS];
    eval_input_t in = input("e1", &ctx);
    in.log = log;
    in.log_cap = FLAG_MAX_SEGMENTS;
    eval_result_t r;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_ptr_null(r.variant);
    ck_assert_uint_eq(r.nlog, 1);
    ck_assert_int_eq(log[0].outcome, EVAL_SEG_CONSTRAINT_FAILED);
    ck_assert_uint_eq(log[0].constraint_index, 1);
    ck_assert_uint_eq(log[0].bucket, EVAL_NO_BUCKET);
    flag_free(&f);
    eval_ctx_free(&ctx);
}
END_TEST

/* ---- segments ------------------------------------------------------------------ */

START_TEST(test_fall_through)
{
    /* flag 7: u1's bucket is 878 (b = 879), past a 10% rollout */
    ck_assert_uint_eq(bucket_of(7, "u1"), 878);
    ck_assert_uint_eq(bucket_of(7, "u18"), 3);
    flag_t f;
    mk(&f, 7);
    f.version = 12;
    add_variant(&f, "a");
    add_variant(&f, "b");
    flag_segment_t *s = add_segment(&f, 0, 10);
    add_dist(s, "a", 100);
    s = add_segment(&f, 1, 100);
    add_dist(s, "b", 100);

    eval_seglog_t log[FLAG_MAX_SEGMENTS];
    eval_input_t in = input("u1", NULL);
    in.log = log;
    in.log_cap = FLAG_MAX_SEGMENTS;
    in.now_ms = 1767225600000ull;
    eval_result_t r;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_ptr_eq(r.variant, &f.variants[1]);       /* fell through to segment 2 */
    ck_assert_int_eq(r.variant_index, 1);
    ck_assert_ptr_eq(r.segment, &f.segments[1]);
    ck_assert_int_eq(r.segment_index, 1);
    ck_assert_int_eq(r.reason, EVAL_REASON_TARGETING_MATCH);
    ck_assert_uint_eq(r.snapshot_id, 12);
    ck_assert_uint_eq(r.timestamp_ms, 1767225600000ull);
    ck_assert_uint_eq(r.nlog, 2);
    ck_assert_int_eq(log[0].outcome, EVAL_SEG_NOT_ROLLED_IN);
    ck_assert_uint_eq(log[0].bucket, 878);
    ck_assert_int_eq(log[1].outcome, EVAL_SEG_MATCHED);
    ck_assert_ptr_eq(log[1].variant, &f.variants[1]);

    /* u18 (bucket 3) is rolled in by segment 1: a split (rollout < 100) */
    in = input("u18", NULL);
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_ptr_eq(r.variant, &f.variants[0]);
    ck_assert_int_eq(r.reason, EVAL_REASON_SPLIT);
    ck_assert_str_eq(eval_reason_ofrep(r.reason), "SPLIT");
    flag_free(&f);
}
END_TEST

START_TEST(test_no_match_reports_last_segment)
{
    flag_t f;
    mk(&f, 7);
    add_variant(&f, "a");
    flag_segment_t *s = add_segment(&f, 0, 0);      /* rollout 0 */
    add_dist(s, "a", 100);
    add_segment(&f, 1, 100);                        /* no distributions */
    s = add_segment(&f, 2, 10);                     /* u1 not rolled in */
    add_dist(s, "a", 100);
    s = add_segment(&f, 3, 100);                    /* constraints fail */
    add_cons(s, "x", "EQ", "1");
    add_dist(s, "a", 100);

    eval_seglog_t log[FLAG_MAX_SEGMENTS];
    eval_input_t in = input("u1", NULL);
    in.log = log;
    in.log_cap = FLAG_MAX_SEGMENTS;
    eval_result_t r;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_ptr_null(r.variant);
    ck_assert_int_eq(r.variant_index, -1);
    ck_assert_int_eq(r.reason, EVAL_REASON_NO_MATCH);
    ck_assert_str_eq(eval_reason_ofrep(r.reason), "DEFAULT");
    ck_assert_ptr_eq(r.segment, &f.segments[3]);
    ck_assert_uint_eq(r.nlog, 4);
    ck_assert_int_eq(log[0].outcome, EVAL_SEG_NO_ROLLOUT);
    ck_assert_int_eq(log[1].outcome, EVAL_SEG_NO_DISTRIBUTION);
    ck_assert_int_eq(log[2].outcome, EVAL_SEG_NOT_ROLLED_IN);
    ck_assert_int_eq(log[3].outcome, EVAL_SEG_CONSTRAINT_FAILED);

    /* the texts */
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(eval_seglog_msg(&b, &log[3], 55, 0), 0);
    ck_assert_str_eq(b.data, "segment_id 55 did not match constraints");
    buf_reset(&b);
    ck_assert_int_eq(eval_seglog_msg(&b, &log[2], 54, 0), 0);
    ck_assert_str_eq(b.data, "matched all constraints. rollout no.");
    buf_reset(&b);
    eval_seglog_t m = {.outcome = EVAL_SEG_MATCHED};
    ck_assert_int_eq(eval_seglog_msg(&b, &m, 1, 9), 0);
    ck_assert_str_eq(b.data, "matched all constraints. rollout yes. variantID: 9");
    buf_reset(&b);
    ck_assert_int_eq(eval_flag_msg(&b, &f, EVAL_REASON_NO_MATCH), 0);
    ck_assert_uint_eq(b.len, 0);

    /* a small log buffer is filled, never overrun */
    in.log_cap = 2;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_uint_eq(r.nlog, 2);
    /* no log asked: none written */
    in.log = NULL;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_uint_eq(r.nlog, 0);
    buf_free(&b);
    flag_free(&f);
}
END_TEST

START_TEST(test_segment_rank_order)
{
    /* ranks 5, 1, 1: evaluated as segments[1], segments[2], segments[0] */
    flag_t f;
    mk(&f, 7);
    add_variant(&f, "a");
    for (int i = 0; i < 3; i++) {
        flag_segment_t *s = add_segment(&f, i == 0 ? 5 : 1, 100);
        add_cons(s, "never", "EQ", "x");
        add_dist(s, "a", 100);
    }
    eval_seglog_t log[FLAG_MAX_SEGMENTS];
    eval_input_t in = input("u1", NULL);
    in.log = log;
    in.log_cap = FLAG_MAX_SEGMENTS;
    eval_result_t r;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_uint_eq(r.nlog, 3);
    ck_assert_uint_eq(log[0].segment_index, 1);
    ck_assert_uint_eq(log[1].segment_index, 2);
    ck_assert_uint_eq(log[2].segment_index, 0);
    ck_assert_int_eq(r.segment_index, 0);   /* the last examined */
    flag_free(&f);
}
END_TEST

START_TEST(test_disabled_and_no_segments)
{
    flag_t f;
    mk(&f, 9);
    add_variant(&f, "a");
    add_dist(add_segment(&f, 0, 100), "a", 100);
    f.enabled = false;
    eval_input_t in = input("u1", NULL);
    eval_result_t r;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_int_eq(r.reason, EVAL_REASON_DISABLED);
    ck_assert_str_eq(eval_reason_ofrep(r.reason), "DISABLED");
    ck_assert_ptr_null(r.variant);
    ck_assert_ptr_null(r.segment);
    ck_assert_int_eq(r.segment_index, -1);
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(eval_flag_msg(&b, &f, r.reason), 0);
    ck_assert_str_eq(b.data, "flagID 9 is not enabled");
    flag_free(&f);

    mk(&f, 9);
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_int_eq(r.reason, EVAL_REASON_NO_SEGMENTS);
    ck_assert_str_eq(eval_reason_ofrep(r.reason), "DEFAULT");
    buf_reset(&b);
    ck_assert_int_eq(eval_flag_msg(&b, &f, r.reason), 0);
    ck_assert_str_eq(b.data, "flagID 9 has no segments");
    buf_free(&b);
    flag_free(&f);
}
END_TEST

START_TEST(test_empty_entity)
{
    flag_t f;
    mk(&f, 1);
    add_variant(&f, "a");
    add_dist(add_segment(&f, 0, 100), "a", 100);
    eval_input_t in = input(NULL, NULL);
    in.random = -5;
    eval_result_t r;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    size_t n;
    const char *e = eval_result_entity(&r, &n);
    ck_assert_str_eq(e, "randomly_generated_-5");
    ck_assert_uint_eq(n, strlen("randomly_generated_-5"));
    ck_assert_uint_eq(r.bucket, bucket_of(1, "randomly_generated_-5"));
    eval_result_t copy = r;               /* copy-safe */
    ck_assert_str_eq(eval_result_entity(&copy, &n), "randomly_generated_-5");

    /* a given id is the input's bytes (not NUL-terminated) */
    in.entity_id = "user_123XYZ";
    in.entity_id_len = 8;
    ck_assert_int_eq(eval_once(&f, &in, &r), 0);
    ck_assert_ptr_eq(eval_result_entity(&r, &n), in.entity_id);
    ck_assert_uint_eq(n, 8);
    ck_assert_uint_eq(r.bucket, 79);
    flag_free(&f);
}
END_TEST

/* ---- distributions ------------------------------------------------------------- */

/* The variant key the entity gets from the flag. */
static const char *variant_for(const eval_flag_t *ef, const char *entity)
{
    eval_input_t in = input(entity, NULL);
    eval_result_t r;
    ck_assert_int_eq(eval_run(ef, &in, &r), 0);
    return r.variant ? r.variant->key : NULL;
}

START_TEST(test_distribution_order)
{
    /* variants a, b, c; distributions listed c:50, b:25, a:25. Table: variant
     * order then percent, stable: a(25) ≤250, b(25) ≤500, c(50) ≤1000. */
    flag_t f;
    mk(&f, 7);
    add_variant(&f, "a");
    add_variant(&f, "b");
    add_variant(&f, "c");
    flag_segment_t *s = add_segment(&f, 0, 100);
    add_dist(s, "c", 50);
    add_dist(s, "b", 25);
    add_dist(s, "a", 25);
    add_dist(s, "ghost", 10);     /* names no variant: left out */
    eval_flag_t *ef;
    ck_assert_int_eq(eval_flag_new(&ef, &f, NULL, 0), 0);
    ck_assert_ptr_eq(eval_flag_record(ef), &f);
    int seen[3] = {0};
    for (int i = 0; i < 2000; i++) {
        char e[16];
        snprintf(e, sizeof(e), "u%d", i);
        uint32_t b = bucket_of(7, e) + 1;
        const char *want = b <= 250 ? "a" : b <= 500 ? "b" : "c";
        const char *got = variant_for(ef, e);
        ck_assert_msg(got && strcmp(got, want) == 0, "%s (b=%u): %s, want %s", e, b,
                      got ? got : "none", want);
        seen[*want - 'a']++;
    }
    ck_assert(seen[0] && seen[1] && seen[2]);
    eval_flag_free(ef);
    flag_free(&f);

    /* percent first: variants a, b; a:70 b:30 → b(30) ≤300, a(70) after */
    mk(&f, 7);
    add_variant(&f, "a");
    add_variant(&f, "b");
    s = add_segment(&f, 0, 100);
    add_dist(s, "a", 70);
    add_dist(s, "b", 30);
    ck_assert_int_eq(eval_flag_new(&ef, &f, NULL, 0), 0);
    for (int i = 0; i < 500; i++) {
        char e[16];
        snprintf(e, sizeof(e), "u%d", i);
        uint32_t b = bucket_of(7, e) + 1;
        ck_assert_str_eq(variant_for(ef, e), b <= 300 ? "b" : "a");
    }
    eval_flag_free(ef);
    flag_free(&f);

    /* percents short of 100: past the last row, the last one */
    mk(&f, 7);
    add_variant(&f, "a");
    add_variant(&f, "b");
    s = add_segment(&f, 0, 100);
    add_dist(s, "a", 10);
    add_dist(s, "b", 20);
    ck_assert_int_eq(eval_flag_new(&ef, &f, NULL, 0), 0);
    ck_assert_uint_eq(bucket_of(7, "u1"), 878);
    ck_assert_str_eq(variant_for(ef, "u1"), "b");
    ck_assert_uint_eq(bucket_of(7, "u18"), 3);
    ck_assert_str_eq(variant_for(ef, "u18"), "a");
    eval_flag_free(ef);
    flag_free(&f);
}
END_TEST

START_TEST(test_split_30_70)
{
    flag_t f;
    mk(&f, 1234);
    add_variant(&f, "control");
    add_variant(&f, "treatment");
    flag_segment_t *s = add_segment(&f, 0, 100);
    add_dist(s, "control", 30);
    add_dist(s, "treatment", 70);
    eval_flag_t *ef;
    ck_assert_int_eq(eval_flag_new(&ef, &f, NULL, 0), 0);
    int control = 0;
    for (int i = 0; i < 10000; i++) {
        char e[32];
        snprintf(e, sizeof(e), "user-%d", i);
        eval_input_t in = input(e, NULL);
        eval_result_t r;
        ck_assert_int_eq(eval_run(ef, &in, &r), 0);
        ck_assert_ptr_nonnull(r.variant);
        ck_assert_int_eq(r.reason, EVAL_REASON_SPLIT);
        control += r.variant_index == 0;
    }
    double pct = control / 100.0;
    ck_assert_msg(fabs(pct - 30.0) <= 1.5, "control got %.2f%%", pct);
    eval_flag_free(ef);
    flag_free(&f);
}
END_TEST

START_TEST(test_prepared_equals_once)
{
    flag_t f;
    sample_flag(&f);      /* constraints with JSON-looking values, a 30/70 split */
    eval_ctx_t ctx;
    eval_ctx_init(&ctx);
    eval_ctx_add_str(&ctx, "country", 7, "[\"NL\"", 5);
    eval_ctx_add_str(&ctx, "plan", 4, "\"pro\"", 5);
    eval_flag_t *ef;
    ck_assert_int_eq(eval_flag_new(&ef, &f, NULL, 0), 0);
    for (int i = 0; i < 200; i++) {
        char e[16];
        snprintf(e, sizeof(e), "x%d", i);
        eval_input_t in = input(e, &ctx);
        eval_result_t a, b;
        ck_assert_int_eq(eval_run(ef, &in, &a), 0);
        ck_assert_int_eq(eval_once(&f, &in, &b), 0);
        ck_assert_ptr_eq(a.variant, b.variant);
        ck_assert_ptr_eq(a.segment, b.segment);
        ck_assert_int_eq(a.reason, b.reason);
        ck_assert_uint_eq(a.bucket, b.bucket);
    }
    eval_flag_free(ef);
    eval_ctx_free(&ctx);
    flag_free(&f);
    ck_assert_int_eq(eval_run(NULL, NULL, NULL), -1);
    eval_flag_free(NULL);
}
END_TEST

/* ---- typed values ------------------------------------------------------------------ */

/* msgpack bytes of a JSON text */
static char *pack_json(const char *text, size_t *len)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    ck_assert_ptr_nonnull(v);
    buf_t b;
    buf_init(&b);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    /* a tiny packer for the shapes used here */
    const char *k;
    json_t *x;
    if (json_is_object(v)) {
        msgpack_pack_map(&pk, json_object_size(v));
        json_object_foreach(v, k, x) {
            msgpack_pack_str_with_body(&pk, k, strlen(k));
            if (json_is_integer(x))
                msgpack_pack_int64(&pk, json_integer_value(x));
            else if (json_is_string(x))
                msgpack_pack_str_with_body(&pk, json_string_value(x), json_string_length(x));
            else if (json_is_boolean(x))
                json_is_true(x) ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
            else if (json_is_null(x))
                msgpack_pack_nil(&pk);
            else if (json_is_array(x)) {
                msgpack_pack_array(&pk, json_array_size(x));
                size_t i;
                json_t *y;
                json_array_foreach(x, i, y) msgpack_pack_int64(&pk, json_integer_value(y));
            } else {
                msgpack_pack_map(&pk, 1);
                msgpack_pack_str_with_body(&pk, "a", 1);
                msgpack_pack_int64(&pk, 1);
            }
        }
    } else {
        msgpack_pack_int64(&pk, json_integer_value(v));
    }
    json_decref(v);
    return buf_steal(&b, len);
}

START_TEST(test_variant_value)
{
    struct { const char *key, *attachment, *json; eval_value_kind_t kind; } t[] = {
        {"on", NULL, "true", EVAL_VALUE_BOOL},
        {"TRUE", NULL, "true", EVAL_VALUE_BOOL},
        {"Enabled", NULL, "true", EVAL_VALUE_BOOL},
        {"off", NULL, "false", EVAL_VALUE_BOOL},
        {"false", NULL, "false", EVAL_VALUE_BOOL},
        {"disabled", NULL, "false", EVAL_VALUE_BOOL},
        {"blue", NULL, "\"blue\"", EVAL_VALUE_STRING},
        {"onx", NULL, "\"onx\"", EVAL_VALUE_STRING},
        {"on", "{\"color\":\"red\"}", "true", EVAL_VALUE_BOOL},        /* no value member */
        {"on", "{\"value\":42}", "42", EVAL_VALUE_NUMBER},
        {"x", "{\"value\":\"big\"}", "\"big\"", EVAL_VALUE_STRING},
        {"x", "{\"value\":false}", "false", EVAL_VALUE_BOOL},
        {"x", "{\"value\":null}", "null", EVAL_VALUE_NULL},
        {"x", "{\"value\":[1,2]}", "[1,2]", EVAL_VALUE_ARRAY},
        {"x", "{\"value\":{}}", "{\"a\":1}", EVAL_VALUE_OBJECT},
        {"blue", "7", "\"blue\"", EVAL_VALUE_STRING},               /* not a map */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        flag_variant_t v = {0};
        v.key = (char *)t[i].key;
        if (t[i].attachment)
            v.attachment = pack_json(t[i].attachment, &v.attachment_len);
        buf_t b;
        buf_init(&b);
        buf_puts(&b, "<");
        eval_value_kind_t kind = 0;
        ck_assert_int_eq(eval_variant_value(&v, &b, &kind), 0);
        ck_assert_str_eq(b.data + 1, t[i].json);
        ck_assert_int_eq(kind, t[i].kind);
        buf_free(&b);
        free(v.attachment);
    }
}
END_TEST

/* ---- context --------------------------------------------------------------------- */

START_TEST(test_ctx)
{
    eval_ctx_t c;
    eval_ctx_init(&c);
    const char *v;
    size_t n;
    ck_assert(!eval_ctx_get(&c, "a", 1, &v, &n));
    ck_assert(!eval_ctx_get(NULL, "a", 1, &v, &n));
    ck_assert_int_eq(eval_ctx_add_str(&c, "a", 1, "first", 5), 0);
    ck_assert_int_eq(eval_ctx_add_str(&c, "ab", 2, "other", 5), 0);
    ck_assert_int_eq(eval_ctx_add_str(&c, "a", 1, "second", 6), 0);   /* last wins */
    ck_assert(eval_ctx_get(&c, "a", 1, &v, &n));
    ck_assert_uint_eq(n, 6);
    ck_assert(memcmp(v, "second", 6) == 0);
    ck_assert_int_eq(eval_ctx_add_int(&c, "i", 1, -9223372036854775807LL - 1), 0);
    ck_assert(eval_ctx_get(&c, "i", 1, &v, &n));
    ck_assert_str_eq(v, "-9223372036854775808");
    ck_assert_int_eq(eval_ctx_add_real(&c, "nan", 3, NAN), 0);       /* skipped */
    ck_assert(!eval_ctx_get(&c, "nan", 3, &v, &n));
    ck_assert_int_eq(eval_ctx_add_bool(&c, "t", 1, true), 0);
    ck_assert(eval_ctx_get(&c, "t", 1, &v, &n));
    ck_assert_uint_eq(n, 4);

    struct { double d; const char *text; } r[] = {
        {0.1, "0.1"}, {2.5, "2.5"}, {25.0, "25.0"}, {-0.0, "-0.0"}, {1e300, "1e+300"},
        {1.0 / 3.0, "0.3333333333333333"}, {123456789012345678.0, "1.2345678901234568e+17"},
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        char b[EVAL_CTX_NUM_MAX];
        size_t len = eval_ctx_real_text(r[i].d, b);
        ck_assert_str_eq(b, r[i].text);
        ck_assert_uint_eq(len, strlen(r[i].text));
    }

    /* bounded; growth keeps earlier entries (numbers are stored inline) */
    eval_ctx_reset(&c);
    for (int i = 0; i < EVAL_CTX_MAX_PROPS; i++)
        ck_assert_int_eq(eval_ctx_add_int(&c, "n", 1, i), 0);
    ck_assert_int_eq(eval_ctx_add_int(&c, "n", 1, 1), -1);
    ck_assert(eval_ctx_get(&c, "n", 1, &v, &n));
    ck_assert_str_eq(v, "255");
    ck_assert_int_eq(eval_ctx_add_object(&c, NULL), 0);
    json_t *arr = json_array();
    ck_assert_int_eq(eval_ctx_add_object(&c, arr), -1);
    json_decref(arr);

    /* keys with NUL bytes are looked up by length */
    eval_ctx_reset(&c);
    json_t *o = json_object();
    json_object_setn_new(o, "a\0b", 3, json_string("nul"));
    ck_assert_int_eq(eval_ctx_add_object(&c, o), 0);
    ck_assert(eval_ctx_get(&c, "a\0b", 3, &v, &n));
    ck_assert(!eval_ctx_get(&c, "a", 1, &v, &n));
    json_decref(o);
    eval_ctx_free(&c);
}
END_TEST

static Suite *eval_suite(void)
{
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_crc32_vectors);
    tcase_add_loop_test(tc, test_operator, 0, (int)(sizeof(op_cases) / sizeof(op_cases[0])));
    tcase_add_test(tc, test_operator_typed_context);
    tcase_add_test(tc, test_constraints_and);
    tcase_add_test(tc, test_fall_through);
    tcase_add_test(tc, test_no_match_reports_last_segment);
    tcase_add_test(tc, test_segment_rank_order);
    tcase_add_test(tc, test_disabled_and_no_segments);
    tcase_add_test(tc, test_empty_entity);
    tcase_add_test(tc, test_distribution_order);
    tcase_add_test(tc, test_split_30_70);
    tcase_add_test(tc, test_prepared_equals_once);
    tcase_add_test(tc, test_variant_value);
    tcase_add_test(tc, test_ctx);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(eval_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
