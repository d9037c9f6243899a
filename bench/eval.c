/*
 * eval — micro-benchmark of proto/eval: one realistic flag evaluated for
 * N entity contexts (docs/PERFORMANCE.md, "Evaluation").
 *
 * The flag: 3 segments, 5 constraints among them:
 *   rank 0  email EREG "[a-z0-9._-]+@(corp|staff)\.example\.com"
 *           AND country IN <50 country codes>            100% → on
 *   rank 1  plan EQ "pro" AND age GTE 18                  50% rollout, 50/50
 *   rank 2  beta NEQ "true"                               100%, 30/70
 * The contexts: userId, email (1 in 10 matches the pattern), country (80
 * codes, 50 of them listed), plan, age, beta: six properties, as the gateway
 * would get them in a JSON entityContext.
 *
 * Measured, each as the median of --rounds rounds over all contexts:
 *   fill      eval_ctx_add_object from the jansson object (per context)
 *   run       eval_run on the prepared flag (the per-stream cost of a change)
 *   once      eval_once: prepare + run + free (what not caching costs)
 *   prepare   eval_flag_new + eval_flag_free alone (per flag change)
 *
 *   bin/bench-eval [--contexts 10000] [--rounds 21] [--no-ereg]
 *
 * --no-ereg replaces the EREG by a CONTAINS, to show what the regex costs.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/eval.h"

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static const char *const countries[80] = {
    "AD", "AE", "AF", "AG", "AL", "AM", "AO", "AR", "AT", "AU", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BN", "BO", "BR", "BS", "BT", "BW", "BY", "BZ",
    "CA", "CD", "CF", "CG", "CH", "CI", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CY",
    "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "ER", "ES", "ET", "FI",
    "FJ", "FM", "FR", "GA", "GB", "GD", "GE", "GH", "GM", "GN", "GQ", "GR", "GT", "GW",
    "GY", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IN", "IQ",
};

static void add_cons(flag_segment_t *s, const char *p, const char *op, const char *v)
{
    flag_constraint_t *c = &s->constraints[s->nconstraints++];
    c->property = xstrdup(p);
    c->op = xstrdup(op);
    c->value = xstrdup(v);
}

static void add_dist(flag_segment_t *s, const char *k, uint32_t pct)
{
    flag_distribution_t *d = &s->distributions[s->ndistributions++];
    d->variant_key = xstrdup(k);
    d->percent = pct;
}

static void build_flag(flag_t *f, bool ereg)
{
    flag_init(f);
    f->id = 4711;
    f->key = xstrdup("checkout-redesign");
    f->enabled = true;
    f->nvariants = 2;
    f->variants = calloc(2, sizeof(*f->variants));
    f->variants[0].key = xstrdup("on");
    f->variants[1].key = xstrdup("off");
    f->nsegments = 3;
    f->segments = calloc(3, sizeof(*f->segments));
    for (int i = 0; i < 3; i++) {
        f->segments[i].rank = (uint32_t)i;
        f->segments[i].constraints = calloc(2, sizeof(flag_constraint_t));
        f->segments[i].distributions = calloc(2, sizeof(flag_distribution_t));
    }
    char list[50 * 4];
    size_t n = 0;
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", countries[i]);
    flag_segment_t *s = &f->segments[0];
    s->rollout_percent = 100;
    if (ereg)
        add_cons(s, "email", "EREG", "[a-z0-9._-]+@(corp|staff)\\.example\\.com");
    else
        add_cons(s, "email", "CONTAINS", "@corp.example.com");
    add_cons(s, "country", "IN", list);
    add_dist(s, "on", 100);
    s = &f->segments[1];
    s->rollout_percent = 50;
    add_cons(s, "plan", "EQ", "pro");
    add_cons(s, "age", "GTE", "18");
    add_dist(s, "on", 50);
    add_dist(s, "off", 50);
    s = &f->segments[2];
    s->rollout_percent = 100;
    add_cons(s, "beta", "NEQ", "true");
    add_dist(s, "on", 30);
    add_dist(s, "off", 70);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), dcmp);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    int ncontexts = 10000, rounds = 21;
    bool ereg = true;
    static const struct option lo[] = {
        {"contexts", required_argument, 0, 'c'},
        {"rounds", required_argument, 0, 'r'},
        {"no-ereg", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:r:nh", lo, NULL)) != -1) {
        if (o == 'c')
            ncontexts = atoi(optarg);
        else if (o == 'r')
            rounds = atoi(optarg);
        else if (o == 'n')
            ereg = false;
        else {
            fprintf(stderr, "usage: bench-eval [--contexts N] [--rounds N]\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (ncontexts < 1 || rounds < 1) {
        fprintf(stderr, "bench-eval: --contexts and --rounds must be positive\n");
        return 2;
    }

    flag_t f;
    build_flag(&f, ereg);
    srand(42);
    json_t **objs = calloc((size_t)ncontexts, sizeof(*objs));
    char (*ids)[24] = calloc((size_t)ncontexts, sizeof(*ids));
    eval_ctx_t *ctxs = calloc((size_t)ncontexts, sizeof(*ctxs));
    if (!objs || !ids || !ctxs)
        return 1;
    for (int i = 0; i < ncontexts; i++) {
        char email[64];
        int r = rand();
        snprintf(email, sizeof(email), "user%d@%s.example.com", i,
                 r % 10 == 0 ? "corp" : r % 10 == 1 ? "staff.eu" : "mail");
        snprintf(ids[i], sizeof(ids[i]), "user-%d", i);
        objs[i] = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "userId", ids[i],
                            "email", email, "country", countries[rand() % 80],
                            "plan", rand() % 3 ? "free" : "pro", "age", 12 + rand() % 60,
                            "beta", rand() % 5 == 0);
        eval_ctx_init(&ctxs[i]);
        if (!objs[i] || eval_ctx_add_object(&ctxs[i], objs[i]) != 0)
            return 1;
    }

    double *t = calloc((size_t)rounds, sizeof(*t));
    eval_flag_t *ef;
    if (!t || eval_flag_new(&ef, &f, NULL, 0) != 0)
        return 1;

    /* fill */
    eval_ctx_t scratch;
    eval_ctx_init(&scratch);
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (int i = 0; i < ncontexts; i++) {
            eval_ctx_reset(&scratch);
            eval_ctx_add_object(&scratch, objs[i]);
        }
        t[r] = (now_ns() - t0) / ncontexts;
    }
    double fill = median(t, rounds);

    /* run */
    long hits[3] = {0}, on = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (int i = 0; i < ncontexts; i++) {
            eval_input_t in = {.entity_id = ids[i], .entity_id_len = strlen(ids[i]),
                               .ctx = &ctxs[i]};
            eval_result_t res;
            eval_run(ef, &in, &res);
            if (r == 0 && res.variant) {
                hits[res.segment_index]++;
                on += res.variant_index == 0;
            }
        }
        t[r] = (now_ns() - t0) / ncontexts;
    }
    double run = median(t, rounds);

    /* once */
    int orounds = rounds < 5 ? rounds : 5;
    for (int r = 0; r < orounds; r++) {
        double t0 = now_ns();
        for (int i = 0; i < ncontexts; i++) {
            eval_input_t in = {.entity_id = ids[i], .entity_id_len = strlen(ids[i]),
                               .ctx = &ctxs[i]};
            eval_result_t res;
            eval_once(&f, &in, &res);
        }
        t[r] = (now_ns() - t0) / ncontexts;
    }
    double once = median(t, orounds);

    /* prepare */
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (int i = 0; i < 1000; i++) {
            eval_flag_t *x;
            eval_flag_new(&x, &f, NULL, 0);
            eval_flag_free(x);
        }
        t[r] = (now_ns() - t0) / 1000;
    }
    double prep = median(t, rounds);

    printf("bench-eval: flag of 3 segments / 5 constraints (%s, IN of 50, EQ, GTE, NEQ), "
           "%d contexts of 6 properties, median of %d rounds\n", ereg ? "EREG" : "CONTAINS",
           ncontexts, rounds);
    printf("  matched by segment 0/1/2: %ld / %ld / %ld, variant on: %ld\n",
           hits[0], hits[1], hits[2], on);
    printf("  fill     %8.0f ns per context (eval_ctx_add_object)\n", fill);
    printf("  run      %8.0f ns per evaluation (eval_run, prepared) = %.2f M/s, "
           "%.2f ms per %d contexts\n", run, 1e3 / run, run * ncontexts / 1e6, ncontexts);
    printf("  once     %8.0f ns per evaluation (eval_once, prepare each time)\n", once);
    printf("  prepare  %8.0f ns per flag (eval_flag_new + eval_flag_free)\n", prep);

    eval_flag_free(ef);
    eval_ctx_free(&scratch);
    for (int i = 0; i < ncontexts; i++) {
        eval_ctx_free(&ctxs[i]);
        json_decref(objs[i]);
    }
    free(objs);
    free(ids);
    free(ctxs);
    free(t);
    flag_free(&f);
    return 0;
}
