/*
 * eval — Flagent's evaluation over a prepared flag (see eval.h).
 *
 * eval_flag_new turns a flag_t into what the per-entity loop needs and
 * nothing else: segments in evaluation order (rank ascending, record order
 * for equal ranks), per segment a table of (variant index, accumulated
 * per-mille) and per constraint its operator as an enum, its value as a
 * view, its number parsed, its IN list split, trimmed and sorted for binary
 * search, its regular expression compiled. eval_run then only looks
 * properties up, compares bytes, runs compiled expressions and hashes the
 * entity id once (zlib's crc32, continued from the flag id's prefix).
 *
 * Regular expressions are POSIX extended (regcomp REG_EXTENDED); "matches
 * the whole value" is checked on the overall match: POSIX picks the leftmost
 * match and, at that start, the longest, so a whole-value match exists
 * exactly when the match found starts at 0 and ends at the value's length.
 * REG_STARTEND lets the match run over a view (no copy, NUL bytes allowed).
 */
#include "proto/eval.h"

#include <ctype.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "proto/json.h"

/* ==== prepared flag ======================================================== */

typedef enum ev_op {
    OP_UNKNOWN = 0,
    OP_EQ, OP_NEQ, OP_LT, OP_LTE, OP_GT, OP_GTE,
    OP_EREG, OP_NEREG, OP_IN, OP_NOTIN, OP_CONTAINS, OP_NOTCONTAINS
} ev_op_t;

typedef struct ev_view {
    const char *p;
    size_t      n;
} ev_view_t;

typedef struct ev_cons {
    ev_op_t     op;
    ev_view_t   prop;
    ev_view_t   val;
    double      num;          /* LT..GTE: the value as a number */
    bool        num_ok;
    bool        re_ok;        /* EREG/NEREG: re compiled */
    bool        re_anchored;  /* re is ^(value)$ with REG_NOSUB */
    regex_t     re;
    ev_view_t  *items;        /* IN/NOTIN: sorted */
    size_t      nitems;
} ev_cons_t;

typedef struct ev_seg {
    uint32_t    index;        /* in flag->segments */
    ev_cons_t  *cons;
    size_t      ncons;
    uint32_t   *acc;          /* accumulated percent x 10 */
    int        *vidx;         /* variant index of each table row */
    uint32_t   *pct;          /* percent of each table row */
    size_t      ndist;
} ev_seg_t;

struct eval_flag {
    const flag_t *flag;
    uLong         crc_prefix; /* crc32 of decimal(flag id) */
    ev_seg_t     *segs;       /* evaluation order */
    size_t        nsegs;
};

static const struct { const char *name; ev_op_t op; } ops[] = {
    {"EQ", OP_EQ}, {"NEQ", OP_NEQ}, {"LT", OP_LT}, {"LTE", OP_LTE},
    {"GT", OP_GT}, {"GTE", OP_GTE}, {"EREG", OP_EREG}, {"NEREG", OP_NEREG},
    {"IN", OP_IN}, {"NOTIN", OP_NOTIN}, {"CONTAINS", OP_CONTAINS},
    {"NOTCONTAINS", OP_NOTCONTAINS},
};

/* Operators are matched exactly, as Flagent's `when` does: "eq" is unknown. */
static ev_op_t op_parse(const char *s)
{
    if (!s)
        return OP_UNKNOWN;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(s, ops[i].name) == 0)
            return ops[i].op;
    return OP_UNKNOWN;
}

/* Java's String.trim() (what Flagent's IN items and numbers go through)
 * drops every char <= ' ' at both ends. */
static ev_view_t trim(const char *p, size_t n)
{
    while (n > 0 && (unsigned char)p[0] <= ' ') {
        p++;
        n--;
    }
    while (n > 0 && (unsigned char)p[n - 1] <= ' ')
        n--;
    return (ev_view_t){p, n};
}

/* A decimal number: [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?,
 * surrounded by optional whitespace as Java's parseDouble allows. Java's
 * extras (NaN, Infinity, hex, a d/f suffix) are not numbers here. */
static bool parse_number(const char *s, size_t n, double *out)
{
    ev_view_t v = trim(s, n);
    const char *p = v.p, *e = v.p + v.n;
    char tmp[FLAG_MAX_STRING + 64];
    if (v.n == 0 || v.n >= sizeof(tmp))
        return false;
    if (p < e && (*p == '+' || *p == '-'))
        p++;
    size_t digits = 0;
    while (p < e && isdigit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (p < e && *p == '.') {
        p++;
        while (p < e && isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        size_t ed = 0;
        while (p < e && isdigit((unsigned char)*p)) {
            p++;
            ed++;
        }
        if (ed == 0)
            return false;
    }
    if (p != e)
        return false;
    memcpy(tmp, v.p, v.n);
    tmp[v.n] = '\0';
    *out = strtod(tmp, NULL);   /* overflow gives ±HUGE_VAL, as Java's Infinity */
    return true;
}

static int view_cmp(const void *a, const void *b)
{
    const ev_view_t *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return memcmp(x->p, y->p, x->n);
}

/* See EVAL_RE_MAX_WEIGHT: the size of the pattern with counted repetitions
 * expanded, as glibc's regcomp expands them (x{m,n}: n copies; x+: two,
 * so each further '+' doubles), saturating; or SIZE_MAX for a back-reference, nesting deeper
 * than we track, or a repetition of a repetition ("a**", "a+*", "a{2}+"): POSIX leaves
 * those undefined, Go's regexp (Flagent's) refuses them, and glibc's regcomp takes
 * time exponential in their count (the fuzz target found "-**************+********"
 * compiling for over 15 s). One '?' after a repetition is kept, as Go reads it (lazy:
 * the same language, and ours is a whole-value match). A pattern regcomp would refuse
 * anyway may get any weight. */
static size_t re_weight(const char *p)
{
    enum { DEPTH = 64 };
    size_t sum[DEPTH + 1];
    int d = 0;
    size_t last = 0;              /* weight of the atom a repeat applies to */
    int rep = 0;                  /* 1: the last token repeats an atom; 2: then a lazy '?' */
    const size_t cap = (size_t)EVAL_RE_MAX_WEIGHT + 1;
    sum[0] = 0;
    for (; *p; p++) {
        char c = *p;
        int was = rep;
        rep = 0;
        if (c == '(') {
            if (d == DEPTH)
                return SIZE_MAX;
            sum[++d] = 0;
            last = 0;
        } else if (c == ')' && d > 0) {
            last = sum[d--] + 1;
            sum[d] += last;
        } else if (c == '{') {
            const char *q = p + 1;
            unsigned long m = 0, n = 0;
            bool comma = false, any = false, hi = false;
            while (isdigit((unsigned char)*q)) {
                m = m < 100000 ? m * 10 + (unsigned long)(*q - '0') : m;
                q++;
                any = true;
            }
            if (*q == ',') {
                comma = true;
                q++;
                while (isdigit((unsigned char)*q)) {
                    n = n < 100000 ? n * 10 + (unsigned long)(*q - '0') : n;
                    q++;
                    hi = true;
                }
            }
            if (*q == '}' && any) {
                if (was)
                    return SIZE_MAX;
                rep = 1;
                unsigned long times = hi ? (n > m ? n : m) : (comma ? m + 1 : m);
                if (times == 0)
                    times = 1;
                size_t add = last * (times - 1);
                if (times > cap || (last && add / last != times - 1))
                    add = cap;
                sum[d] = sum[d] + add > cap ? cap : sum[d] + add;
                last = last * times > cap ? cap : last * times;
                p = q;
            } else {
                sum[d]++;
                last = 1;
            }
        } else if (c == '[') {
            const char *q = p + 1;
            if (*q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']') {
                if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
                    char end = q[1];
                    q += 2;
                    while (*q && !(*q == end && q[1] == ']'))
                        q++;
                    if (*q)
                        q++;
                }
                if (*q)
                    q++;
            }
            if (!*q)
                break;
            p = q;
            sum[d]++;
            last = 1;
        } else if (c == '\\') {
            if (p[1] >= '1' && p[1] <= '9')
                return SIZE_MAX;
            if (p[1])
                p++;
            sum[d]++;
            last = 1;
        } else if (c == '+') {
            /* glibc parses x+ as x x*: the atom is copied */
            if (was)
                return SIZE_MAX;
            rep = 1;
            sum[d] = sum[d] + last > cap ? cap : sum[d] + last;
            last = last * 2 > cap ? cap : last * 2;
        } else if (c == '*' || c == '?') {
            /* a loop or an alternative with nothing: no copy */
            if (was == 2 || (was == 1 && c == '*'))
                return SIZE_MAX;
            rep = was + 1;
        } else {
            sum[d]++;
            last = 1;
        }
        if (sum[d] > cap)
            sum[d] = cap;
    }
    while (d > 0) {
        size_t w = sum[d--] + 1;
        sum[d] = sum[d] + w > cap ? cap : sum[d] + w;
    }
    return sum[0];
}

static void cons_free(ev_cons_t *c)
{
    if (c->re_ok)
        regfree(&c->re);
    free(c->items);
    memset(c, 0, sizeof(*c));
}

static int cons_prepare(ev_cons_t *c, const flag_constraint_t *fc)
{
    memset(c, 0, sizeof(*c));
    c->op = op_parse(fc->op);
    c->prop = (ev_view_t){fc->property ? fc->property : "",
                          fc->property ? strlen(fc->property) : 0};
    c->val = (ev_view_t){fc->value ? fc->value : "", fc->value ? strlen(fc->value) : 0};
    switch (c->op) {
    case OP_LT: case OP_LTE: case OP_GT: case OP_GTE:
        c->num_ok = parse_number(c->val.p, c->val.n, &c->num);
        break;
    case OP_EREG: case OP_NEREG:
        if (re_weight(c->val.p) > EVAL_RE_MAX_WEIGHT
            || regcomp(&c->re, c->val.p, REG_EXTENDED) != 0)
            break;
        c->re_ok = true;
        /* The pattern is valid: match it as ^(pattern)$ without positions
         * (REG_NOSUB), several times faster in glibc than finding the
         * longest match and comparing its ends. Same language: back-
         * references (the only thing a wrapping group renumbers) are
         * refused above. If the wrapped form does not compile, the plain
         * one is kept and checked by its ends. */
        char *w = malloc(c->val.n + 5);
        if (!w)
            return -1;
        memcpy(w, "^(", 2);
        memcpy(w + 2, c->val.p, c->val.n);
        memcpy(w + 2 + c->val.n, ")$", 3);
        regex_t a;
        if (regcomp(&a, w, REG_EXTENDED | REG_NOSUB) == 0) {
            regfree(&c->re);
            c->re = a;
            c->re_anchored = true;
        }
        free(w);
        break;
    case OP_IN: case OP_NOTIN: {
        size_t n = 1;
        for (size_t i = 0; i < c->val.n; i++)
            n += c->val.p[i] == ',';
        c->items = malloc(n * sizeof(*c->items));
        if (!c->items)
            return -1;
        const char *s = c->val.p, *end = c->val.p + c->val.n;
        for (;;) {
            const char *comma = memchr(s, ',', (size_t)(end - s));
            const char *e = comma ? comma : end;
            c->items[c->nitems++] = trim(s, (size_t)(e - s));
            if (!comma)
                break;
            s = comma + 1;
        }
        qsort(c->items, c->nitems, sizeof(*c->items), view_cmp);
        break;
    }
    default:
        break;
    }
    return 0;
}

typedef struct dist_row {
    int      vidx;
    size_t   didx;
    uint32_t pct;
} dist_row_t;

/* EVALUATION.md step 4.2: variant order, then percent ascending, stably:
 * one total order on (percent, variant index, record index). */
static int row_cmp(const void *a, const void *b)
{
    const dist_row_t *x = a, *y = b;
    if (x->pct != y->pct)
        return x->pct < y->pct ? -1 : 1;
    if (x->vidx != y->vidx)
        return x->vidx < y->vidx ? -1 : 1;
    return x->didx < y->didx ? -1 : x->didx > y->didx;
}

static int variant_index(const flag_t *f, const char *key)
{
    if (!key)
        return -1;
    for (size_t i = 0; i < f->nvariants; i++)
        if (f->variants[i].key && strcmp(f->variants[i].key, key) == 0)
            return (int)i;
    return -1;
}

static void seg_free(ev_seg_t *s)
{
    for (size_t i = 0; i < s->ncons; i++)
        cons_free(&s->cons[i]);
    free(s->cons);
    free(s->acc);
    free(s->vidx);
    free(s->pct);
    memset(s, 0, sizeof(*s));
}

static int seg_prepare(ev_seg_t *s, const flag_t *f, uint32_t index)
{
    const flag_segment_t *fs = &f->segments[index];
    memset(s, 0, sizeof(*s));
    s->index = index;
    if (fs->nconstraints) {
        s->cons = calloc(fs->nconstraints, sizeof(*s->cons));
        if (!s->cons)
            return -1;
        for (size_t i = 0; i < fs->nconstraints; i++) {
            if (cons_prepare(&s->cons[i], &fs->constraints[i]) != 0)
                return -1;
            s->ncons++;
        }
    }
    if (fs->ndistributions == 0)
        return 0;
    dist_row_t *rows = malloc(fs->ndistributions * sizeof(*rows));
    s->acc = malloc(fs->ndistributions * sizeof(*s->acc));
    s->vidx = malloc(fs->ndistributions * sizeof(*s->vidx));
    s->pct = malloc(fs->ndistributions * sizeof(*s->pct));
    if (!rows || !s->acc || !s->vidx || !s->pct) {
        free(rows);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < fs->ndistributions; i++) {
        int v = variant_index(f, fs->distributions[i].variant_key);
        if (v < 0)
            continue;
        rows[n++] = (dist_row_t){v, i, fs->distributions[i].percent};
    }
    qsort(rows, n, sizeof(*rows), row_cmp);
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += rows[i].pct * 10;
        s->acc[i] = acc;
        s->vidx[i] = rows[i].vidx;
        s->pct[i] = rows[i].pct;
    }
    s->ndist = n;
    free(rows);
    return 0;
}

static int seg_rank_cmp(const void *a, const void *b, void *arg)
{
    const flag_t *f = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint32_t rx = f->segments[x].rank, ry = f->segments[y].rank;
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return x < y ? -1 : x > y;
}

void eval_flag_free(eval_flag_t *ef)
{
    if (!ef)
        return;
    for (size_t i = 0; i < ef->nsegs; i++)
        seg_free(&ef->segs[i]);
    free(ef->segs);
    free(ef);
}

int eval_flag_new(eval_flag_t **out, const flag_t *f, char *errbuf, size_t errlen)
{
    *out = NULL;
    eval_flag_t *ef = calloc(1, sizeof(*ef));
    uint32_t *order = f->nsegments ? malloc(f->nsegments * sizeof(*order)) : NULL;
    if (!ef || (f->nsegments && !order))
        goto oom;
    ef->flag = f;
    char id[24];
    int idn = snprintf(id, sizeof(id), "%" PRIu64, f->id);
    ef->crc_prefix = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)id, (uInt)idn);
    if (f->nsegments) {
        ef->segs = calloc(f->nsegments, sizeof(*ef->segs));
        if (!ef->segs)
            goto oom;
        for (uint32_t i = 0; i < f->nsegments; i++)
            order[i] = i;
        qsort_r(order, f->nsegments, sizeof(*order), seg_rank_cmp, (void *)f);
        for (size_t i = 0; i < f->nsegments; i++) {
            ef->nsegs++;
            if (seg_prepare(&ef->segs[i], f, order[i]) != 0)
                goto oom;
        }
    }
    free(order);
    *out = ef;
    return 0;
oom:
    free(order);
    eval_flag_free(ef);
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "eval: out of memory preparing flag %" PRIu64, f->id);
    return -1;
}

const flag_t *eval_flag_record(const eval_flag_t *ef)
{
    return ef->flag;
}

/* ==== evaluation ============================================================ */

static bool re_whole(const ev_cons_t *c, const char *v, size_t n)
{
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)n;
    if (c->re_anchored)   /* REG_STARTEND reads the range from m[0] */
        return regexec(&c->re, v, 0, m, REG_STARTEND) == 0;
    if (regexec(&c->re, v, 1, m, REG_STARTEND) != 0)
        return false;
    return m[0].rm_so == 0 && (size_t)m[0].rm_eo == n;
}

static bool in_list(const ev_cons_t *c, const char *v, size_t n)
{
    ev_view_t key = {v, n};
    return bsearch(&key, c->items, c->nitems, sizeof(*c->items), view_cmp) != NULL;
}

static bool contains(const char *v, size_t n, ev_view_t needle)
{
    if (needle.n == 0)
        return true;
    return memmem(v, n, needle.p, needle.n) != NULL;
}

/* One constraint against the context. A missing property fails every
 * operator, the negated ones included. */
static bool cons_holds(const ev_cons_t *c, const eval_ctx_t *ctx)
{
    const char *v;
    size_t n;
    if (!eval_ctx_get(ctx, c->prop.p, c->prop.n, &v, &n))
        return false;
    double x;
    switch (c->op) {
    case OP_EQ:
        return n == c->val.n && memcmp(v, c->val.p, n) == 0;
    case OP_NEQ:
        return !(n == c->val.n && memcmp(v, c->val.p, n) == 0);
    case OP_LT:
        return c->num_ok && parse_number(v, n, &x) && x < c->num;
    case OP_LTE:
        return c->num_ok && parse_number(v, n, &x) && x <= c->num;
    case OP_GT:
        return c->num_ok && parse_number(v, n, &x) && x > c->num;
    case OP_GTE:
        return c->num_ok && parse_number(v, n, &x) && x >= c->num;
    case OP_EREG:
        return c->re_ok && re_whole(c, v, n);
    case OP_NEREG:
        return !(c->re_ok && re_whole(c, v, n));
    case OP_IN:
        return in_list(c, v, n);
    case OP_NOTIN:
        return !in_list(c, v, n);
    case OP_CONTAINS:
        return contains(v, n, c->val);
    case OP_NOTCONTAINS:
        return !contains(v, n, c->val);
    default:
        return false;
    }
}

static void log_add(const eval_input_t *in, eval_result_t *r, const eval_seglog_t *e)
{
    if (in->log && r->nlog < in->log_cap)
        in->log[r->nlog++] = *e;
}

int eval_run(const eval_flag_t *ef, const eval_input_t *in, eval_result_t *r)
{
    if (!ef || !in || !r)
        return -1;
    const flag_t *f = ef->flag;
    memset(r, 0, sizeof(*r));
    r->segment_index = -1;
    r->variant_index = -1;
    r->bucket = EVAL_NO_BUCKET;
    r->snapshot_id = f->version;
    r->timestamp_ms = in->now_ms;
    const char *eid = in->entity_id;
    size_t eidn = in->entity_id ? in->entity_id_len : 0;
    if (eidn == 0) {
        eidn = (size_t)snprintf(r->generated_id, sizeof(r->generated_id),
                                "randomly_generated_%" PRId32, in->random);
        eid = r->generated_id;
    } else {
        r->entity_id = eid;
        r->entity_id_len = eidn;
    }

    if (!f->enabled) {
        r->reason = EVAL_REASON_DISABLED;
        return 0;
    }
    if (ef->nsegs == 0) {
        r->reason = EVAL_REASON_NO_SEGMENTS;
        return 0;
    }
    for (size_t si = 0; si < ef->nsegs; si++) {
        const ev_seg_t *s = &ef->segs[si];
        const flag_segment_t *fs = &f->segments[s->index];
        eval_seglog_t e = {.segment = fs, .segment_index = s->index,
                           .bucket = EVAL_NO_BUCKET, .variant_index = -1};
        r->segment = fs;
        r->segment_index = (int)s->index;

        size_t ci = 0;
        while (ci < s->ncons && cons_holds(&s->cons[ci], in->ctx))
            ci++;
        if (ci < s->ncons) {
            e.outcome = EVAL_SEG_CONSTRAINT_FAILED;
            e.constraint_index = (uint32_t)ci;
            log_add(in, r, &e);
            continue;
        }
        if (fs->rollout_percent == 0) {
            e.outcome = EVAL_SEG_NO_ROLLOUT;
            log_add(in, r, &e);
            continue;
        }
        if (s->ndist == 0) {
            e.outcome = EVAL_SEG_NO_DISTRIBUTION;
            log_add(in, r, &e);
            continue;
        }
        if (r->bucket == EVAL_NO_BUCKET) {
            /* zlib's crc32 takes a uInt length: feed a long id in pieces */
            uLong crc = ef->crc_prefix;
            const char *p = eid;
            size_t left = eidn;
            while (left > 0) {
                uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
                crc = crc32(crc, (const Bytef *)p, k);
                p += k;
                left -= k;
            }
            r->bucket = (uint32_t)(crc % EVAL_BUCKETS);
        }
        e.bucket = r->bucket;
        uint32_t b = r->bucket + 1;
        if (fs->rollout_percent < 100 && b > fs->rollout_percent * 10) {
            e.outcome = EVAL_SEG_NOT_ROLLED_IN;
            log_add(in, r, &e);
            continue;
        }
        size_t i = 0;
        while (i + 1 < s->ndist && s->acc[i] < b)
            i++;
        r->variant_index = s->vidx[i];
        r->variant = &f->variants[s->vidx[i]];
        r->reason = fs->rollout_percent >= 100 && s->pct[i] >= 100
                  ? EVAL_REASON_TARGETING_MATCH : EVAL_REASON_SPLIT;
        e.outcome = EVAL_SEG_MATCHED;
        e.variant = r->variant;
        e.variant_index = r->variant_index;
        log_add(in, r, &e);
        return 0;
    }
    r->reason = EVAL_REASON_NO_MATCH;
    return 0;
}

int eval_once(const flag_t *f, const eval_input_t *in, eval_result_t *r)
{
    eval_flag_t *ef;
    if (eval_flag_new(&ef, f, NULL, 0) != 0)
        return -1;
    int rc = eval_run(ef, in, r);
    eval_flag_free(ef);
    return rc;
}

const char *eval_result_entity(const eval_result_t *r, size_t *len)
{
    if (r->entity_id) {
        *len = r->entity_id_len;
        return r->entity_id;
    }
    *len = strlen(r->generated_id);
    return r->generated_id;
}

const char *eval_reason_ofrep(eval_reason_t r)
{
    switch (r) {
    case EVAL_REASON_DISABLED:        return "DISABLED";
    case EVAL_REASON_NO_SEGMENTS:     return "DEFAULT";
    case EVAL_REASON_NO_MATCH:        return "DEFAULT";
    case EVAL_REASON_SPLIT:           return "SPLIT";
    case EVAL_REASON_TARGETING_MATCH: return "TARGETING_MATCH";
    }
    return "UNKNOWN";
}

/* ==== debug texts =========================================================== */

int eval_seglog_msg(buf_t *out, const eval_seglog_t *l, uint64_t segment_id,
                    uint64_t variant_id)
{
    switch (l->outcome) {
    case EVAL_SEG_CONSTRAINT_FAILED:
        return buf_printf(out, "segment_id %" PRIu64 " did not match constraints", segment_id);
    case EVAL_SEG_NO_ROLLOUT:
    case EVAL_SEG_NO_DISTRIBUTION:
    case EVAL_SEG_NOT_ROLLED_IN:
        return buf_puts(out, "matched all constraints. rollout no.");
    case EVAL_SEG_MATCHED:
        return buf_printf(out, "matched all constraints. rollout yes. variantID: %" PRIu64,
                          variant_id);
    }
    return -1;
}

int eval_flag_msg(buf_t *out, const flag_t *f, eval_reason_t r)
{
    if (r == EVAL_REASON_DISABLED)
        return buf_printf(out, "flagID %" PRIu64 " is not enabled", f->id);
    if (r == EVAL_REASON_NO_SEGMENTS)
        return buf_printf(out, "flagID %" PRIu64 " has no segments", f->id);
    return 0;
}

/* ==== typed values ========================================================== */

static bool key_is(const char *k, const char *word)
{
    return strcasecmp(k, word) == 0;
}

static eval_value_kind_t kind_of(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:              return EVAL_VALUE_NULL;
    case MSGPACK_OBJECT_BOOLEAN:          return EVAL_VALUE_BOOL;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          return EVAL_VALUE_NUMBER;
    case MSGPACK_OBJECT_ARRAY:            return EVAL_VALUE_ARRAY;
    case MSGPACK_OBJECT_MAP:              return EVAL_VALUE_OBJECT;
    default:                              return EVAL_VALUE_STRING; /* str, bin */
    }
}

/* 1: the attachment has a "value" member, rendered; 0: it has none (or is
 * not a readable map); -1: rendering failed. */
static int attachment_value(const flag_variant_t *v, buf_t *out, eval_value_kind_t *kind)
{
    if (!v->attachment || v->attachment_len == 0)
        return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = 0;
    if (msgpack_unpack_next(&u, v->attachment, v->attachment_len, &off)
            == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &u.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key;
            const char *kp = NULL;
            uint32_t kn = 0;
            if (k->type == MSGPACK_OBJECT_STR) {
                kp = k->via.str.ptr;
                kn = k->via.str.size;
            } else if (k->type == MSGPACK_OBJECT_BIN) {
                kp = k->via.bin.ptr;
                kn = k->via.bin.size;
            }
            if (kn == 5 && memcmp(kp, "value", 5) == 0) {
                rc = json_msgpack(out, &m->ptr[i].val) == 0 ? 1 : -1;
                if (rc == 1 && kind)
                    *kind = kind_of(&m->ptr[i].val);
                break;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

int eval_variant_value(const flag_variant_t *v, buf_t *out, eval_value_kind_t *kind)
{
    size_t start = out->len;
    int a = attachment_value(v, out, kind);
    if (a == 1)
        return 0;
    if (a < 0)
        return buf_rollback(out, start);
    const char *k = v->key ? v->key : "";
    int rc;
    eval_value_kind_t kd = EVAL_VALUE_BOOL;
    if (key_is(k, "on") || key_is(k, "true") || key_is(k, "enabled")) {
        rc = buf_puts(out, "true");
    } else if (key_is(k, "off") || key_is(k, "false") || key_is(k, "disabled")) {
        rc = buf_puts(out, "false");
    } else {
        kd = EVAL_VALUE_STRING;
        rc = json_cstr(out, k);
    }
    if (rc != 0)
        return buf_rollback(out, start);
    if (kind)
        *kind = kd;
    return 0;
}
