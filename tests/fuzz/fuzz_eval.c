/*
 * fuzz_eval — eval_flag_new / eval_run / eval_variant_value over records
 * and contexts built from the input bytes (operators from Flagent's list and
 * a few unknown ones, constraint values and property values as raw bytes,
 * so that random regular expressions, IN lists and numbers reach regcomp,
 * the splitter and the number parser).
 *
 * Invariants checked on every input: evaluation is deterministic and the
 * prepared flag gives what eval_once gives; a variant comes with a SPLIT or
 * TARGETING_MATCH reason, from a segment whose rollout is positive and
 * whose distributions name it; the bucket is the CRC-32 of id ‖ entity mod
 * 1000; the debug log holds one entry per examined segment, the last one
 * MATCHED exactly when there is a variant; every log text renders; every
 * variant's typed value is JSON that jansson accepts.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "proto/eval.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", \
                                          #c, __FILE__, __LINE__); abort(); } } while (0)

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd_t;

static unsigned byte(rd_t *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

/* A length-prefixed string of at most max bytes, NUL bytes made 'x'. */
static char *str(rd_t *r, unsigned max)
{
    unsigned len = byte(r) % (max + 1);
    if (len > r->n)
        len = (unsigned)r->n;
    char *s = malloc(len + 1);
    if (!s)
        abort();
    for (unsigned i = 0; i < len; i++)
        s[i] = r->p[i] ? (char)r->p[i] : 'x';
    s[len] = '\0';
    r->p += len;
    r->n -= len;
    return s;
}

static const char *const ops[] = {
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "EREG", "NEREG", "IN", "NOTIN",
    "CONTAINS", "NOTCONTAINS", "eq", "",
};
static const char *const props[] = {"p", "q", "country", ""};
static const char *const keys[] = {"on", "off", "a", "b", "Enabled", "blue", "x"};

static char *xdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static char *attachment(rd_t *r, size_t *len)
{
    unsigned kind = byte(r) % 4;
    if (kind == 0)
        return NULL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, kind == 3 ? "other" : "value", 5);
    if (kind == 1) {
        char *s = str(r, 16);
        msgpack_pack_str_with_body(&pk, s, strlen(s));
        free(s);
    } else {
        msgpack_pack_int64(&pk, (int64_t)byte(r) - 100);
    }
    *len = sb.size;
    return sb.data;   /* malloc'd by msgpack_sbuffer; freed by flag_free */
}

static void build(rd_t *r, flag_t *f)
{
    flag_init(f);
    unsigned b = byte(r);
    f->enabled = (b & 7) != 0;
    f->id = (uint64_t)byte(r) | (uint64_t)byte(r) << 8 | (uint64_t)byte(r) << 16;
    f->key = xdup("k");
    f->version = byte(r);
    f->nvariants = byte(r) % 5;
    f->variants = calloc(f->nvariants ? f->nvariants : 1, sizeof(*f->variants));
    for (size_t i = 0; i < f->nvariants; i++) {
        f->variants[i].key = xdup(keys[byte(r) % 7]);
        f->variants[i].attachment = attachment(r, &f->variants[i].attachment_len);
    }
    f->nsegments = byte(r) % 5;
    f->segments = calloc(f->nsegments ? f->nsegments : 1, sizeof(*f->segments));
    for (size_t i = 0; i < f->nsegments; i++) {
        flag_segment_t *s = &f->segments[i];
        s->rank = byte(r) % 3;
        unsigned ro = byte(r);
        s->rollout_percent = ro >= 128 ? 100 : ro % 101;
        s->nconstraints = byte(r) % 4;
        s->constraints = calloc(s->nconstraints ? s->nconstraints : 1, sizeof(*s->constraints));
        for (size_t j = 0; j < s->nconstraints; j++) {
            s->constraints[j].property = xdup(props[byte(r) % 4]);
            s->constraints[j].op = xdup(ops[byte(r) % 14]);
            s->constraints[j].value = str(r, 63);
        }
        s->ndistributions = byte(r) % 4;
        s->distributions = calloc(s->ndistributions ? s->ndistributions : 1,
                                  sizeof(*s->distributions));
        for (size_t j = 0; j < s->ndistributions; j++) {
            unsigned k = byte(r);
            s->distributions[j].variant_key =
                xdup(f->nvariants && k < 240 ? f->variants[k % f->nvariants].key : "ghost");
            s->distributions[j].percent = byte(r) % 101;
        }
    }
}

/* Context strings are borrowed: they live in keep[] until the end. */
static void fill_ctx(rd_t *r, eval_ctx_t *c, char **keep, size_t *nkeep)
{
    unsigned n = byte(r) % 6;
    for (unsigned i = 0; i < n; i++) {
        const char *name = props[byte(r) % 4];
        switch (byte(r) % 4) {
        case 0: {
            char *s = str(r, 63);
            keep[(*nkeep)++] = s;
            CHECK(eval_ctx_add_str(c, name, strlen(name), s, strlen(s)) == 0);
            break;
        }
        case 1:
            CHECK(eval_ctx_add_int(c, name, strlen(name), (long long)byte(r) - 128) == 0);
            break;
        case 2:
            CHECK(eval_ctx_add_real(c, name, strlen(name), ((double)byte(r) - 128) / 8) == 0);
            break;
        default:
            CHECK(eval_ctx_add_bool(c, name, strlen(name), byte(r) & 1) == 0);
        }
    }
}

static bool names(const flag_segment_t *s, const flag_variant_t *v)
{
    for (size_t i = 0; i < s->ndistributions; i++)
        if (strcmp(s->distributions[i].variant_key, v->key) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd_t r = {data, size};
    flag_t f;
    build(&r, &f);
    eval_ctx_t ctx;
    eval_ctx_init(&ctx);
    char *keep[8];
    size_t nkeep = 0;
    fill_ctx(&r, &ctx, keep, &nkeep);
    char *entity = str(&r, 40);

    eval_flag_t *ef;
    CHECK(eval_flag_new(&ef, &f, NULL, 0) == 0);
    eval_seglog_t log[FLAG_MAX_SEGMENTS];
    eval_input_t in = {0};
    in.entity_id = entity;
    in.entity_id_len = strlen(entity);
    in.random = (int32_t)(size * 2654435761u);
    in.ctx = &ctx;
    in.log = log;
    in.log_cap = FLAG_MAX_SEGMENTS;
    eval_result_t a, b, c;
    CHECK(eval_run(ef, &in, &a) == 0);
    CHECK(eval_run(ef, &in, &b) == 0);
    in.log = NULL;
    CHECK(eval_once(&f, &in, &c) == 0);
    CHECK(a.variant == b.variant && a.variant == c.variant);
    CHECK(a.segment == b.segment && a.segment == c.segment);
    CHECK(a.reason == b.reason && a.reason == c.reason);
    CHECK(a.bucket == b.bucket && a.bucket == c.bucket);
    CHECK(c.nlog == 0);

    bool matched = a.reason == EVAL_REASON_SPLIT || a.reason == EVAL_REASON_TARGETING_MATCH;
    CHECK(matched == (a.variant != NULL));
    CHECK(strcmp(eval_reason_ofrep(a.reason), "UNKNOWN") != 0);
    if (a.variant) {
        CHECK(a.segment && a.segment->rollout_percent > 0);
        CHECK(names(a.segment, a.variant));
        CHECK(&f.variants[a.variant_index] == a.variant);
        CHECK(&f.segments[a.segment_index] == a.segment);
    }
    if (!f.enabled || f.nsegments == 0) {
        CHECK(a.segment == NULL && a.nlog == 0 && a.bucket == EVAL_NO_BUCKET);
    } else {
        CHECK(a.nlog >= 1 && a.nlog <= f.nsegments);
        CHECK((log[a.nlog - 1].outcome == EVAL_SEG_MATCHED) == matched);
        CHECK(log[a.nlog - 1].segment == a.segment);
    }
    if (a.bucket != EVAL_NO_BUCKET) {
        size_t en;
        const char *e = eval_result_entity(&a, &en);
        char id[24];
        int idn = snprintf(id, sizeof(id), "%" PRIu64, f.id);
        uLong crc = crc32(crc32(0L, (const Bytef *)id, (uInt)idn), (const Bytef *)e, (uInt)en);
        CHECK(a.bucket == crc % 1000);
    }

    buf_t out;
    buf_init(&out);
    for (size_t i = 0; i < a.nlog; i++) {
        CHECK(eval_seglog_msg(&out, &log[i], i, 7) == 0);
        buf_reset(&out);
    }
    CHECK(eval_flag_msg(&out, &f, a.reason) == 0);
    for (size_t i = 0; i < f.nvariants; i++) {
        buf_reset(&out);
        eval_value_kind_t kind = 0;
        CHECK(eval_variant_value(&f.variants[i], &out, &kind) == 0);
        CHECK(kind >= EVAL_VALUE_NULL && kind <= EVAL_VALUE_OBJECT);
        json_error_t je;
        json_t *j = json_loadb(out.data, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        CHECK(j != NULL);
        json_decref(j);
    }
    buf_free(&out);

    eval_flag_free(ef);
    free(entity);
    for (size_t i = 0; i < nkeep; i++)
        free(keep[i]);
    eval_ctx_free(&ctx);
    flag_free(&f);
    return 0;
}
