/* Unit tests for gateway/mirror: load, versioned apply, delete, snapshots. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/mirror.h"
#include "gwtest.h"

/* msgpack records for mirror_load. */
struct recs { char *v[16]; size_t len[16]; size_t n; };

static void rec_add(struct recs *r, const flag_t *f)
{
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(flag_encode(f, &b), 0);
    r->v[r->n] = buf_steal(&b, &r->len[r->n]);
    r->n++;
}

static void rec_add_raw(struct recs *r, const char *p, size_t n)
{
    r->v[r->n] = malloc(n);
    memcpy(r->v[r->n], p, n);
    r->len[r->n++] = n;
}

static void recs_free(struct recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    r->n = 0;
}

static void load_abc(mirror_t *m)
{
    struct recs r = { .n = 0 };
    flag_t a, b, c;
    size_t bad = 99;
    char err[128];
    gwt_flag(&c, "c", 3, 1, "web", NULL);
    gwt_flag(&a, "a", 1, 5, "web", "beta", NULL);
    gwt_flag(&b, "b", 2, 2, "ios", NULL);
    rec_add(&r, &c);
    rec_add(&r, &a);
    rec_add(&r, &b);
    ck_assert_int_eq(mirror_load(m, (const char *const *)r.v, r.len, r.n, &bad, err, sizeof err), 0);
    ck_assert_uint_eq(bad, 0);
    flag_free(&a); flag_free(&b); flag_free(&c);
    recs_free(&r);
}

/* Keys of a snapshot joined by ','. */
static void snap_keys(mirror_t *m, const filter_t *f, char *out, size_t outlen)
{
    const flag_t **list;
    size_t n;
    ck_assert_int_eq(mirror_snapshot(m, f, &list, &n), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, outlen - l, "%s%s", i ? "," : "", list[i]->key);
    }
    free(list);
}

START_TEST(load_and_lookup)
{
    mirror_t *m = mirror_new();
    load_abc(m);
    ck_assert_uint_eq(mirror_count(m), 3);
    ck_assert_ptr_nonnull(mirror_get(m, "a", 1));
    ck_assert_uint_eq(mirror_get(m, "b", 1)->id, 2);
    ck_assert_str_eq(mirror_get_id(m, 3)->key, "c");
    ck_assert_ptr_null(mirror_get(m, "zz", 2));
    ck_assert_ptr_null(mirror_get_id(m, 99));

    /* Reload replaces everything; bad records are skipped and counted. */
    struct recs r = { .n = 0 };
    flag_t d, d2, e;
    size_t bad;
    char err[128];
    gwt_flag(&d, "d", 4, 1, NULL);
    gwt_flag(&d2, "d", 5, 1, NULL);      /* duplicate key */
    gwt_flag(&e, "e", 4, 1, NULL);       /* duplicate id */
    rec_add(&r, &d);
    rec_add_raw(&r, "\xc1", 1);          /* never-used msgpack byte */
    rec_add_raw(&r, "\x93\x01\x02\x03", 4);
    rec_add(&r, &d2);
    rec_add(&r, &e);
    uint64_t g = mirror_generation(m);
    ck_assert_int_eq(mirror_load(m, (const char *const *)r.v, r.len, r.n, &bad, err, sizeof err), 0);
    ck_assert_uint_eq(bad, 4);
    ck_assert(strlen(err) > 0);
    ck_assert_uint_eq(mirror_count(m), 1);
    ck_assert_ptr_null(mirror_get(m, "a", 1));
    ck_assert(mirror_generation(m) != g);
    /* Whichever "d"/"e" survived, lookups by key and id agree. */
    const flag_t *only = mirror_get_id(m, mirror_get_id(m, 4) ? 4 : 5);
    ck_assert_ptr_nonnull(only);
    ck_assert_ptr_eq(mirror_get(m, only->key, strlen(only->key)), only);
    flag_free(&d); flag_free(&d2); flag_free(&e);
    recs_free(&r);
    ck_assert_int_eq(mirror_load(m, NULL, NULL, 0, NULL, NULL, 0), 0);
    ck_assert_uint_eq(mirror_count(m), 0);
    mirror_free(m);
}
END_TEST

START_TEST(apply_versions_and_delete)
{
    mirror_t *m = mirror_new();
    flag_t f;
    ev_t ev;
    load_abc(m);                         /* a is at version 5 */

    gwt_flag(&f, "a", 1, 4, NULL);       /* older */
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &f, 10);
    ck_assert_int_eq(mirror_apply(m, &ev), 0);
    ck_assert_uint_eq(mirror_get(m, "a", 1)->ntags, 2);
    ev_free(&ev); flag_free(&f);

    gwt_flag(&f, "a", 1, 5, NULL);       /* same version: duplicate */
    gwt_flag_ev(&ev, EV_FLAG_TOGGLED, &f, 11);
    ck_assert_int_eq(mirror_apply(m, &ev), 0);
    ev_free(&ev); flag_free(&f);

    gwt_flag(&f, "a", 1, 6, "new", NULL);
    gwt_flag_ev(&ev, EV_SEGMENT_UPDATED, &f, 12);
    uint64_t g = mirror_generation(m);
    ck_assert_int_eq(mirror_apply(m, &ev), 1);
    ck_assert(mirror_generation(m) != g);
    ck_assert_uint_eq(mirror_get(m, "a", 1)->version, 6);
    ck_assert_str_eq(mirror_get_id(m, 1)->tags[0], "new");
    ev_free(&ev); flag_free(&f);

    gwt_flag(&f, "z", 26, 1, NULL);      /* created */
    gwt_flag_ev(&ev, EV_FLAG_CREATED, &f, 13);
    ck_assert_int_eq(mirror_apply(m, &ev), 1);
    ck_assert_uint_eq(mirror_count(m), 4);
    ev_free(&ev); flag_free(&f);

    gwt_flag(&f, "b", 2, 1, NULL);       /* delete with an older record: ignored */
    gwt_flag_ev(&ev, EV_FLAG_DELETED, &f, 14);
    ck_assert_int_eq(mirror_apply(m, &ev), 0);
    ck_assert_ptr_nonnull(mirror_get(m, "b", 1));
    ev_free(&ev); flag_free(&f);

    gwt_flag(&f, "b", 2, 3, NULL);
    gwt_flag_ev(&ev, EV_FLAG_DELETED, &f, 15);
    ck_assert_int_eq(mirror_apply(m, &ev), 1);
    ck_assert_ptr_null(mirror_get(m, "b", 1));
    ck_assert_ptr_null(mirror_get_id(m, 2));
    ck_assert_int_eq(mirror_apply(m, &ev), 0);   /* deleting an unknown flag */
    ev_free(&ev); flag_free(&f);

    gwt_msg_ev(&ev, "chat", 1);          /* not a flag event */
    ck_assert_int_eq(mirror_apply(m, &ev), 0);
    ev_free(&ev);

    /* An id moving to another key removes the stale holder. */
    gwt_flag(&f, "y", 26, 1, NULL);
    ck_assert_int_eq(mirror_put(m, &f), 1);
    ck_assert_ptr_null(mirror_get(m, "z", 1));
    ck_assert_str_eq(mirror_get_id(m, 26)->key, "y");
    flag_free(&f);
    ck_assert_uint_eq(mirror_count(m), 3);   /* a, c, y */
    mirror_free(m);
}
END_TEST

START_TEST(snapshot_filters_sorted)
{
    mirror_t *m = mirror_new();
    filter_t f;
    const char *err;
    char keys[128];
    load_abc(m);

    filter_init(&f);
    snap_keys(m, &f, keys, sizeof keys);
    ck_assert_str_eq(keys, "");                      /* NONE */
    f.flags = FILTER_FLAGS_ALL;
    snap_keys(m, &f, keys, sizeof keys);
    ck_assert_str_eq(keys, "a,b,c");                 /* sorted by key */

    f.flags = FILTER_FLAGS_SOME;
    filter_add_key(&f, "c", 1, 256, &err);
    filter_add_key(&f, "a", 1, 256, &err);
    filter_add_key(&f, "nope", 4, 256, &err);
    snap_keys(m, &f, keys, sizeof keys);
    ck_assert_str_eq(keys, "a,c");
    filter_add_tag(&f, "beta", 4, 256, &err);        /* AND tag beta */
    snap_keys(m, &f, keys, sizeof keys);
    ck_assert_str_eq(keys, "a");
    filter_free(&f);

    filter_init(&f);
    f.flags = FILTER_FLAGS_SOME;
    filter_add_id(&f, 3, 256, &err);
    filter_add_id(&f, 2, 256, &err);
    snap_keys(m, &f, keys, sizeof keys);
    ck_assert_str_eq(keys, "b,c");
    filter_free(&f);

    filter_init(&f);
    f.flags = FILTER_FLAGS_SOME;
    filter_add_tag(&f, "web", 3, 256, &err);
    snap_keys(m, &f, keys, sizeof keys);
    ck_assert_str_eq(keys, "a,c");

    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(mirror_render_snapshot(m, &f, MIRROR_FMT_JSON, &b), 0);
    ck_assert(strncmp(b.data, "{\"type\":\"snapshot\",\"flags\":[{", 29) == 0);
    ck_assert(strstr(b.data, "\"key\":\"a\"") < strstr(b.data, "\"key\":\"c\""));
    ck_assert(strstr(b.data, "\"key\":\"b\"") == NULL);
    buf_reset(&b);
    ck_assert_int_eq(mirror_render_snapshot(m, &f, MIRROR_FMT_MSGPACK, &b), 0);
    ck_assert_uint_eq((unsigned char)b.data[0], 0x82);  /* fixmap of 2 */
    buf_reset(&b);
    filter_free(&f);
    filter_init(&f);
    ck_assert_int_eq(mirror_render_snapshot(m, &f, MIRROR_FMT_JSON, &b), 0);
    ck_assert_str_eq(b.data, "{\"type\":\"snapshot\",\"flags\":[]}");
    buf_free(&b);
    filter_free(&f);
    mirror_free(m);
}
END_TEST

/* Every stored record has its prepared evaluator, rebuilt with the record:
 * after an update the evaluator reads the new record (no variant while the
 * flag is disabled, the variant once enabled). */
START_TEST(eval_prepared_per_record)
{
    mirror_t *m = mirror_new();
    load_abc(m);
    for (size_t i = 0; i < mirror_count(m); i++) {
        const flag_t *f = mirror_at(m, i);
        ck_assert_ptr_nonnull(mirror_eval(f));
        ck_assert_ptr_eq(eval_flag_record(mirror_eval(f)), f);
    }
    ck_assert_ptr_null(mirror_at(m, mirror_count(m)));
    ck_assert_ptr_null(mirror_eval(NULL));

    flag_t a;
    gwt_flag(&a, "a", 1, 6, NULL);
    a.enabled = false;
    a.variants = calloc(1, sizeof *a.variants);
    a.variants[0].key = strdup("on");
    a.nvariants = 1;
    a.segments = calloc(1, sizeof *a.segments);
    a.segments[0].rollout_percent = 100;
    a.segments[0].distributions = calloc(1, sizeof *a.segments[0].distributions);
    a.segments[0].distributions[0].variant_key = strdup("on");
    a.segments[0].distributions[0].percent = 100;
    a.segments[0].ndistributions = 1;
    a.nsegments = 1;
    ck_assert_int_eq(mirror_put(m, &a), 1);

    eval_input_t in = { .entity_id = "u1", .entity_id_len = 2 };
    eval_result_t r;
    const flag_t *f = mirror_get(m, "a", 1);
    ck_assert_int_eq(eval_run(mirror_eval(f), &in, &r), 0);
    ck_assert_int_eq(r.reason, EVAL_REASON_DISABLED);
    a.enabled = true;
    a.version = 7;
    ck_assert_int_eq(mirror_put(m, &a), 1);
    f = mirror_get(m, "a", 1);
    ck_assert_int_eq(eval_run(mirror_eval(f), &in, &r), 0);
    ck_assert_int_eq(r.reason, EVAL_REASON_TARGETING_MATCH);
    ck_assert_str_eq(r.variant->key, "on");
    ck_assert_ptr_eq(r.variant, &f->variants[0]);
    flag_free(&a);
    mirror_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mirror");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, load_and_lookup);
    tcase_add_test(tc, apply_versions_and_delete);
    tcase_add_test(tc, snapshot_filters_sorted);
    tcase_add_test(tc, eval_prepared_per_record);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
