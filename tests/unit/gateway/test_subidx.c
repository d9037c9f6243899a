/* Unit tests for gateway/subidx: registration, refcount callbacks, lookups. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/subidx.h"
#include "gwtest.h"

/* Channel callback log: "+name" / "-name" joined by spaces. */
static char chlog[4096];

static void chan_cb(void *arg, const char *ch, bool on)
{
    (void)arg;
    size_t n = strlen(chlog);
    snprintf(chlog + n, sizeof chlog - n, "%s%c%s", n ? " " : "", on ? '+' : '-', ch);
}

/* Visit log: counts per owner (owners are small integers cast to pointers). */
#define MAXO 20000
static int hits[MAXO];

static void visit(void *arg, void *owner)
{
    (void)arg;
    hits[(uintptr_t)owner]++;
}

static void reset_hits(void) { memset(hits, 0, sizeof hits); }

static void fkeys(filter_t *f, filter_flags_t mode, ...)
{
    va_list ap;
    const char *k, *err;
    filter_init(f);
    f->flags = mode;
    va_start(ap, mode);
    while ((k = va_arg(ap, const char *)) != NULL)
        ck_assert_int_eq(filter_add_key(f, k, strlen(k), 256, &err), 0);
    va_end(ap);
}

START_TEST(refcount_transitions)
{
    subidx_t *idx = subidx_new(chan_cb, NULL);
    filter_t f1, f2;
    const char *err;
    chlog[0] = '\0';
    fkeys(&f1, FILTER_FLAGS_ALL, NULL);
    filter_add_channel(&f1, "chat", 4, 256, &err);
    fkeys(&f2, FILTER_FLAGS_NONE, NULL);
    filter_add_channel(&f2, "chat", 4, 256, &err);

    subidx_sub_t *s1 = subidx_add(idx, (void *)1, &f1);
    ck_assert_ptr_nonnull(s1);
    /* chat and flags announced once each (order: channels, then flags). */
    ck_assert_str_eq(chlog, "+chat +flags");
    subidx_sub_t *s2 = subidx_add(idx, (void *)2, &f2);
    ck_assert_str_eq(chlog, "+chat +flags");     /* no new channel */
    ck_assert_uint_eq(subidx_channel_count(idx, "chat"), 2);
    ck_assert_uint_eq(subidx_channel_count(idx, "flags"), 1);

    chlog[0] = '\0';
    subidx_remove(idx, s1);
    ck_assert_str_eq(chlog, "-flags");           /* chat still held by s2 */
    chlog[0] = '\0';
    subidx_remove(idx, s2);
    ck_assert_str_eq(chlog, "-chat");
    subidx_remove(idx, NULL);

    subidx_stats_t st;
    subidx_get_stats(idx, &st);
    ck_assert_uint_eq(st.subs, 0);
    ck_assert_uint_eq(st.channels, 0);
    ck_assert_uint_eq(st.buckets, 0);
    filter_free(&f1);
    filter_free(&f2);
    subidx_free(idx);
}
END_TEST

START_TEST(update_does_not_flap)
{
    subidx_t *idx = subidx_new(chan_cb, NULL);
    filter_t f1, f2;
    const char *err;
    chlog[0] = '\0';
    fkeys(&f1, FILTER_FLAGS_SOME, "a", NULL);
    filter_add_channel(&f1, "c1", 2, 256, &err);
    fkeys(&f2, FILTER_FLAGS_ALL, NULL);
    filter_add_channel(&f2, "c2", 2, 256, &err);
    subidx_sub_t *s = subidx_add(idx, (void *)1, &f1);
    ck_assert_str_eq(chlog, "+c1 +flags");
    chlog[0] = '\0';
    ck_assert_int_eq(subidx_update(idx, s, &f2), 0);
    ck_assert_str_eq(chlog, "+c2 -c1");          /* flags kept: no -flags/+flags */
    ck_assert_int_eq(subidx_filter(s)->flags, FILTER_FLAGS_ALL);
    ck_assert_ptr_eq(subidx_owner(s), (void *)1);
    /* A channel-less, flag-less update empties everything. */
    filter_t none;
    filter_init(&none);
    chlog[0] = '\0';
    ck_assert_int_eq(subidx_update(idx, s, &none), 0);
    ck_assert(strstr(chlog, "-c2") && strstr(chlog, "-flags"));
    subidx_stats_t st;
    subidx_get_stats(idx, &st);
    ck_assert_uint_eq(st.buckets, 0);
    ck_assert_uint_eq(st.subs, 1);
    filter_free(&f1);
    filter_free(&f2);
    subidx_free(idx);       /* frees s too */
}
END_TEST

struct foreach_acc { char buf[256]; size_t total; };

static void foreach_fn(void *arg, const char *ch, size_t count)
{
    struct foreach_acc *a = arg;
    a->total += count;
    strncat(a->buf, ch, sizeof a->buf - strlen(a->buf) - 1);
    strncat(a->buf, ";", sizeof a->buf - strlen(a->buf) - 1);
}

START_TEST(lookup_each_match_once)
{
    subidx_t *idx = subidx_new(NULL, NULL);
    filter_t f;
    const char *err;
    flag_t a, b;
    ev_t ea, eb, em, ed;

    gwt_flag(&a, "a", 1, 1, "web", "beta", "beta", NULL);  /* duplicate tag */
    gwt_flag(&b, "b", 2, 1, NULL);
    gwt_flag_ev(&ea, EV_FLAG_UPDATED, &a, 1);
    gwt_flag_ev(&eb, EV_FLAG_UPDATED, &b, 2);
    gwt_msg_ev(&em, "chat", 1);
    gwt_flag_ev(&ed, EV_FLAG_DELETED, &a, 3);

    /* 1: all flags */
    fkeys(&f, FILTER_FLAGS_ALL, NULL);
    subidx_add(idx, (void *)1, &f); filter_free(&f);
    /* 2: key a */
    fkeys(&f, FILTER_FLAGS_SOME, "a", NULL);
    subidx_add(idx, (void *)2, &f); filter_free(&f);
    /* 3: id 1 */
    fkeys(&f, FILTER_FLAGS_SOME, NULL);
    filter_add_id(&f, 1, 256, &err);
    subidx_add(idx, (void *)3, &f); filter_free(&f);
    /* 4: tags web, beta (both on flag a: must still be visited once) */
    fkeys(&f, FILTER_FLAGS_SOME, NULL);
    filter_add_tag(&f, "web", 3, 256, &err);
    filter_add_tag(&f, "beta", 4, 256, &err);
    subidx_add(idx, (void *)4, &f); filter_free(&f);
    /* 5: key a AND id 2: nothing matches */
    fkeys(&f, FILTER_FLAGS_SOME, "a", NULL);
    filter_add_id(&f, 2, 256, &err);
    subidx_add(idx, (void *)5, &f); filter_free(&f);
    /* 6: key b AND tag web: b has no tag, no match */
    fkeys(&f, FILTER_FLAGS_SOME, "b", NULL);
    filter_add_tag(&f, "web", 3, 256, &err);
    subidx_add(idx, (void *)6, &f); filter_free(&f);
    /* 7: channel chat only */
    fkeys(&f, FILTER_FLAGS_NONE, NULL);
    filter_add_channel(&f, "chat", 4, 256, &err);
    subidx_add(idx, (void *)7, &f); filter_free(&f);
    /* 8: key a and b, and channel chat */
    fkeys(&f, FILTER_FLAGS_SOME, "a", "b", NULL);
    filter_add_channel(&f, "chat", 4, 256, &err);
    subidx_add(idx, (void *)8, &f); filter_free(&f);

    reset_hits();
    ck_assert_uint_eq(subidx_lookup(idx, &ea, visit, NULL), 5);
    ck_assert(hits[1] == 1 && hits[2] == 1 && hits[3] == 1 && hits[4] == 1 && hits[8] == 1);
    ck_assert(hits[5] == 0 && hits[6] == 0 && hits[7] == 0);

    reset_hits();
    ck_assert_uint_eq(subidx_lookup(idx, &eb, visit, NULL), 2);
    ck_assert(hits[1] == 1 && hits[8] == 1);

    reset_hits();
    ck_assert_uint_eq(subidx_lookup(idx, &em, visit, NULL), 2);
    ck_assert(hits[7] == 1 && hits[8] == 1);

    reset_hits();   /* deleted: by the record's key/id/tags */
    ck_assert_uint_eq(subidx_lookup(idx, &ed, visit, NULL), 5);

    /* A flag-less event on "flags": every subscriber of the channel. */
    ev_t ex;
    gwt_msg_ev(&ex, "flags", 9);
    reset_hits();
    ck_assert_uint_eq(subidx_lookup(idx, &ex, visit, NULL), 7);
    ck_assert(hits[7] == 0);
    ev_free(&ex);

    /* Channels and counts. */
    struct foreach_acc acc = { "", 0 };
    subidx_foreach_channel(idx, foreach_fn, &acc);
    ck_assert(strstr(acc.buf, "flags;") && strstr(acc.buf, "chat;"));
    ck_assert_uint_eq(acc.total, 7 + 2);

    ev_free(&ea); ev_free(&eb); ev_free(&em); ev_free(&ed);
    flag_free(&a); flag_free(&b);
    subidx_free(idx);
}
END_TEST

/* A change a filter no longer selects still reaches those it selected
 * before: lookup_change matches the new record or the previous one. */
START_TEST(lookup_change_reaches_those_left)
{
    subidx_t *idx = subidx_new(NULL, NULL);
    filter_t f;
    const char *err;
    flag_t before, after;
    ev_t ev;

    gwt_flag(&before, "a", 1, 1, "beta", NULL);
    gwt_flag(&after, "a", 1, 2, "web", NULL);
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &after, 2);
    /* 1: tag beta; 2: tag web; 3: key a AND tag beta (keys dimension);
     * 4: tag other */
    fkeys(&f, FILTER_FLAGS_SOME, NULL);
    filter_add_tag(&f, "beta", 4, 256, &err);
    subidx_add(idx, (void *)1, &f); filter_free(&f);
    fkeys(&f, FILTER_FLAGS_SOME, NULL);
    filter_add_tag(&f, "web", 3, 256, &err);
    subidx_add(idx, (void *)2, &f); filter_free(&f);
    fkeys(&f, FILTER_FLAGS_SOME, "a", NULL);
    filter_add_tag(&f, "beta", 4, 256, &err);
    subidx_add(idx, (void *)3, &f); filter_free(&f);
    fkeys(&f, FILTER_FLAGS_SOME, NULL);
    filter_add_tag(&f, "other", 5, 256, &err);
    subidx_add(idx, (void *)4, &f); filter_free(&f);

    reset_hits();   /* without the previous record: only the new tag */
    ck_assert_uint_eq(subidx_lookup(idx, &ev, visit, NULL), 1);
    ck_assert(hits[2] == 1);
    reset_hits();
    ck_assert_uint_eq(subidx_lookup_change(idx, &ev, &before, visit, NULL), 3);
    ck_assert(hits[1] == 1 && hits[2] == 1 && hits[3] == 1 && hits[4] == 0);

    ev_free(&ev);
    flag_free(&before); flag_free(&after);
    subidx_free(idx);
}
END_TEST

/* 10k owners, each on its own key: a lookup touches only the match. */
START_TEST(lookup_cost_follows_receivers)
{
    subidx_t *idx = subidx_new(chan_cb, NULL);
    subidx_sub_t **subs = calloc(10000, sizeof *subs);
    char key[32];
    chlog[0] = '\0';
    for (int i = 0; i < 10000; i++) {
        filter_t f;
        snprintf(key, sizeof key, "k%d", i);
        fkeys(&f, FILTER_FLAGS_SOME, key, NULL);
        subs[i] = subidx_add(idx, (void *)(uintptr_t)i, &f);
        ck_assert_ptr_nonnull(subs[i]);
        filter_free(&f);
    }
    ck_assert_str_eq(chlog, "+flags");
    ck_assert_uint_eq(subidx_channel_count(idx, "flags"), 10000);

    flag_t fl;
    ev_t ev;
    gwt_flag(&fl, "k4242", 4242, 1, NULL);
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &fl, 1);
    reset_hits();
    ck_assert_uint_eq(subidx_lookup(idx, &ev, visit, NULL), 1);
    ck_assert_int_eq(hits[4242], 1);
    subidx_stats_t st;
    subidx_get_stats(idx, &st);
    ck_assert_uint_eq(st.last_visited, 1);
    ck_assert_uint_eq(st.subs, 10000);

    /* Everyone switches to "all": the same event reaches all 10k, once each. */
    filter_t all;
    fkeys(&all, FILTER_FLAGS_ALL, NULL);
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(subidx_update(idx, subs[i], &all), 0);
    reset_hits();
    ck_assert_uint_eq(subidx_lookup(idx, &ev, visit, NULL), 10000);
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(hits[i], 1);

    /* Remove in an arbitrary order; the last removal unsubscribes. */
    chlog[0] = '\0';
    for (int i = 0; i < 10000; i++)
        subidx_remove(idx, subs[(i * 7919) % 10000]);
    ck_assert_str_eq(chlog, "-flags");
    subidx_get_stats(idx, &st);
    ck_assert_uint_eq(st.subs, 0);
    ck_assert_uint_eq(st.buckets, 0);

    filter_free(&all);
    ev_free(&ev);
    flag_free(&fl);
    free(subs);
    subidx_free(idx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("subidx");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, refcount_transitions);
    tcase_add_test(tc, update_does_not_flap);
    tcase_add_test(tc, lookup_each_match_once);
    tcase_add_test(tc, lookup_change_reaches_those_left);
    tcase_add_test(tc, lookup_cost_follows_receivers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
