/* Unit tests for gateway/filter: sets, request rules, Flagent matching. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/filter.h"
#include "gwtest.h"

static void req_keys(filter_req_t *r, ...)
{
    va_list ap;
    const char *k, *err;
    va_start(ap, r);
    while ((k = va_arg(ap, const char *)) != NULL)
        ck_assert_int_eq(filter_add_key(&r->items, k, strlen(k), 256, &err), 0);
    va_end(ap);
}

START_TEST(sets_sorted_unique_bounded)
{
    filter_t f;
    const char *err = NULL;
    filter_init(&f);
    ck_assert_int_eq(filter_add_key(&f, "b", 1, 3, &err), 0);
    ck_assert_int_eq(filter_add_key(&f, "a", 1, 3, &err), 0);
    ck_assert_int_eq(filter_add_key(&f, "b", 1, 3, &err), 0);   /* duplicate: fine */
    ck_assert_int_eq(filter_add_key(&f, "c", 1, 3, &err), 0);
    ck_assert_uint_eq(f.nkeys, 3);
    ck_assert_str_eq(f.keys[0], "a");
    ck_assert_str_eq(f.keys[1], "b");
    ck_assert_str_eq(f.keys[2], "c");
    ck_assert_int_eq(filter_add_key(&f, "d", 1, 3, &err), -1);
    ck_assert_str_eq(err, "too many flag keys");
    ck_assert_int_eq(filter_add_key(&f, "a", 1, 3, &err), 0);   /* present: not "too many" */
    ck_assert(filter_has_key(&f, "b", 1));
    ck_assert(!filter_has_key(&f, "bb", 2));

    ck_assert_int_eq(filter_add_id(&f, 9, 3, &err), 0);
    ck_assert_int_eq(filter_add_id(&f, 2, 3, &err), 0);
    ck_assert_int_eq(filter_add_id(&f, 5, 3, &err), 0);
    ck_assert(f.ids[0] == 2 && f.ids[1] == 5 && f.ids[2] == 9);
    ck_assert_int_eq(filter_add_id(&f, 0, 3, &err), -1);
    ck_assert_int_eq(filter_add_id(&f, 1, 3, &err), -1);
    ck_assert(filter_has_id(&f, 5) && !filter_has_id(&f, 6));

    ck_assert_int_eq(filter_add_key(&f, "bad key", 7, 256, &err), -1);
    ck_assert_int_eq(filter_add_tag(&f, "", 0, 256, &err), -1);
    ck_assert_int_eq(filter_add_channel(&f, "no spaces", 9, 256, &err), -1);
    ck_assert_int_eq(filter_add_channel(&f, "user:", 5, 256, &err), -1);
    ck_assert_int_eq(filter_add_channel(&f, "flags", 5, 256, &err), 1);
    ck_assert_uint_eq(f.nchannels, 0);
    ck_assert_int_eq(filter_add_channel(&f, "chat.room1", 10, 256, &err), 0);
    ck_assert(filter_has_channel(&f, "chat.room1", 10));

    filter_t c;
    ck_assert_int_eq(filter_copy(&c, &f), 0);
    ck_assert_uint_eq(c.nkeys, 3);
    ck_assert_uint_eq(c.nids, 3);
    ck_assert(filter_has_channel(&c, "chat.room1", 10));
    filter_free(&c);
    filter_free(&f);
    ck_assert_uint_eq(f.nkeys, 0);
    ck_assert_ptr_null(f.keys);
}
END_TEST

START_TEST(from_req_sse_defaults)
{
    filter_t f;
    filter_req_t r;
    const char *err;

    /* No parameters at all: every flag. */
    filter_init(&f);
    filter_req_init(&r);
    ck_assert_int_eq(filter_from_req(&f, &r, true, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_ALL);
    ck_assert(filter_wants_channel(&f, "flags", 5));
    /* WS-style default: nothing. */
    ck_assert_int_eq(filter_from_req(&f, &r, false, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_NONE);
    ck_assert(filter_is_empty(&f));

    /* channels=chat.room1: only that channel. */
    ck_assert_int_eq(filter_add_channel(&r.items, "chat.room1", 10, 256, &err), 0);
    ck_assert_int_eq(filter_from_req(&f, &r, true, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_NONE);
    ck_assert(filter_wants_channel(&f, "chat.room1", 10));
    ck_assert(!filter_wants_channel(&f, "flags", 5));

    /* channels=chat.room1,flags: the channel plus every flag. */
    r.flags_listed = true;
    ck_assert_int_eq(filter_from_req(&f, &r, true, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_ALL);

    /* channels=chat.room1&flagKey=a: the channel plus flag a. */
    r.flags_listed = false;
    req_keys(&r, "a", NULL);
    ck_assert_int_eq(filter_from_req(&f, &r, true, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_SOME);
    ck_assert(filter_wants_channel(&f, "flags", 5));
    ck_assert(filter_wants_channel(&f, "chat.room1", 10));

    /* subscribeAll wins over the key list. */
    r.subscribe_all = true;
    ck_assert_int_eq(filter_from_req(&f, &r, true, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_ALL);

    filter_req_free(&r);
    filter_free(&f);
}
END_TEST

START_TEST(from_req_too_many_leaves_filter)
{
    filter_t f;
    filter_req_t r;
    const char *err = NULL;
    filter_init(&f);
    filter_req_init(&r);
    req_keys(&r, "a", "b", "c", NULL);
    ck_assert_int_eq(filter_from_req(&f, &r, true, 0, &err), 0);
    filter_req_free(&r);
    filter_req_init(&r);
    req_keys(&r, "d", "e", NULL);
    /* max 4: a,b,c + d,e is 5 → nothing changes. */
    ck_assert_int_eq(filter_subscribe(&f, &r, 4, &err), -1);
    ck_assert_str_eq(err, "too many flag keys");
    ck_assert_uint_eq(f.nkeys, 3);
    ck_assert(!filter_has_key(&f, "d", 1));
    filter_req_free(&r);
    filter_free(&f);
}
END_TEST

START_TEST(match_flagent_rules)
{
    filter_t f;
    flag_t a, b, c;
    const char *err;
    gwt_flag(&a, "a", 1, 1, "web", "beta", NULL);
    gwt_flag(&b, "b", 2, 1, "mobile", NULL);
    gwt_flag(&c, "c", 3, 1, NULL);

    filter_init(&f);
    ck_assert(!filter_match_flag(&f, &a));          /* NONE */
    f.flags = FILTER_FLAGS_ALL;
    ck_assert(filter_match_flag(&f, &a) && filter_match_flag(&f, &c));

    /* Keys only: OR within. */
    f.flags = FILTER_FLAGS_SOME;
    filter_add_key(&f, "a", 1, 256, &err);
    filter_add_key(&f, "b", 1, 256, &err);
    ck_assert(filter_match_flag(&f, &a));
    ck_assert(filter_match_flag(&f, &b));
    ck_assert(!filter_match_flag(&f, &c));

    /* Key and id both given: both must match. */
    filter_add_id(&f, 1, 256, &err);
    ck_assert(filter_match_flag(&f, &a));          /* key a, id 1 */
    ck_assert(!filter_match_flag(&f, &b));         /* key b listed, id 2 not */
    filter_free(&f);

    /* flagKey=a & flagID=2 (different flags): nothing matches. */
    filter_init(&f);
    f.flags = FILTER_FLAGS_SOME;
    filter_add_key(&f, "a", 1, 256, &err);
    filter_add_id(&f, 2, 256, &err);
    ck_assert(!filter_match_flag(&f, &a));
    ck_assert(!filter_match_flag(&f, &b));
    filter_free(&f);

    /* Tags: any tag of the flag in the set; AND with keys. */
    filter_init(&f);
    f.flags = FILTER_FLAGS_SOME;
    filter_add_tag(&f, "beta", 4, 256, &err);
    filter_add_tag(&f, "mobile", 6, 256, &err);
    ck_assert(filter_match_flag(&f, &a));
    ck_assert(filter_match_flag(&f, &b));
    ck_assert(!filter_match_flag(&f, &c));         /* no tags */
    filter_add_key(&f, "b", 1, 256, &err);
    ck_assert(!filter_match_flag(&f, &a));
    ck_assert(filter_match_flag(&f, &b));
    filter_free(&f);

    flag_free(&a);
    flag_free(&b);
    flag_free(&c);
}
END_TEST

START_TEST(match_events_by_channel)
{
    filter_t f;
    flag_t a;
    ev_t e1, e2, e3, e4;
    const char *err;
    gwt_flag(&a, "a", 1, 1, NULL);
    gwt_flag_ev(&e1, EV_FLAG_UPDATED, &a, 1);
    gwt_flag_ev(&e2, EV_FLAG_DELETED, &a, 2);
    gwt_msg_ev(&e3, "chat.room1", 1);
    gwt_msg_ev(&e4, "chat.room2", 1);

    filter_init(&f);
    filter_add_channel(&f, "chat.room1", 10, 256, &err);
    ck_assert(!filter_match_event(&f, &e1));
    ck_assert(filter_match_event(&f, &e3));
    ck_assert(!filter_match_event(&f, &e4));
    f.flags = FILTER_FLAGS_SOME;
    filter_add_key(&f, "a", 1, 256, &err);
    ck_assert(filter_match_event(&f, &e1));
    ck_assert(filter_match_event(&f, &e2));         /* deleted matches by its record */
    filter_free(&f);
    filter_init(&f);
    f.flags = FILTER_FLAGS_SOME;
    filter_add_key(&f, "zz", 2, 256, &err);
    ck_assert(!filter_match_event(&f, &e2));
    free(e1.channel);
    e1.channel = NULL;
    ck_assert(!filter_match_event(&f, &e1));        /* no channel: nothing */

    ev_free(&e1); ev_free(&e2); ev_free(&e3); ev_free(&e4);
    filter_free(&f);
    flag_free(&a);
}
END_TEST

START_TEST(subscribe_unsubscribe_rules)
{
    filter_t f;
    filter_req_t r;
    const char *err;
    filter_init(&f);

    /* subscribe {flags:[a,b]} → SOME */
    filter_req_init(&r);
    req_keys(&r, "a", "b", NULL);
    ck_assert_int_eq(filter_subscribe(&f, &r, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_SOME);
    filter_req_free(&r);

    /* subscribe {subscribeAll:true} → ALL, keys kept */
    filter_req_init(&r);
    r.subscribe_all = true;
    ck_assert_int_eq(filter_subscribe(&f, &r, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_ALL);
    ck_assert_uint_eq(f.nkeys, 2);
    /* unsubscribe {subscribeAll:true} → back to SOME a,b */
    filter_unsubscribe(&f, &r);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_SOME);
    filter_req_free(&r);

    /* unsubscribe {flags:[a]} → SOME b; then {flags:[b]} → NONE, never ALL */
    filter_req_init(&r);
    req_keys(&r, "a", NULL);
    filter_unsubscribe(&f, &r);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_SOME);
    ck_assert_uint_eq(f.nkeys, 1);
    filter_req_free(&r);
    filter_req_init(&r);
    req_keys(&r, "b", NULL);
    filter_unsubscribe(&f, &r);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_NONE);
    ck_assert_ptr_null(f.keys);
    filter_req_free(&r);

    /* subscribe {channels:[flags, chat]} → ALL + chat */
    filter_req_init(&r);
    r.flags_listed = true;
    filter_add_channel(&r.items, "chat", 4, 256, &err);
    ck_assert_int_eq(filter_subscribe(&f, &r, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_ALL);
    ck_assert(filter_has_channel(&f, "chat", 4));
    filter_req_free(&r);
    /* subscribe {flags:[x]} while ALL → stays ALL */
    filter_req_init(&r);
    req_keys(&r, "x", NULL);
    ck_assert_int_eq(filter_subscribe(&f, &r, 0, &err), 0);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_ALL);
    filter_req_free(&r);
    /* unsubscribe {channels:[flags]} → NONE, sets cleared, chat kept */
    filter_req_init(&r);
    r.flags_listed = true;
    filter_unsubscribe(&f, &r);
    ck_assert_int_eq(f.flags, FILTER_FLAGS_NONE);
    ck_assert_uint_eq(f.nkeys, 0);
    ck_assert(filter_has_channel(&f, "chat", 4));
    ck_assert(!filter_is_empty(&f));
    filter_req_free(&r);
    filter_req_init(&r);
    filter_add_channel(&r.items, "chat", 4, 256, &err);
    filter_unsubscribe(&f, &r);
    ck_assert(filter_is_empty(&f));
    filter_req_free(&r);
    filter_free(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("filter");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sets_sorted_unique_bounded);
    tcase_add_test(tc, from_req_sse_defaults);
    tcase_add_test(tc, from_req_too_many_leaves_filter);
    tcase_add_test(tc, match_flagent_rules);
    tcase_add_test(tc, match_events_by_channel);
    tcase_add_test(tc, subscribe_unsubscribe_rules);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
