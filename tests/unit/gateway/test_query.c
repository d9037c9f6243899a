/* Unit tests for gateway/query: every parameter form, decoding, errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/query.h"

static char errbuf[256];

static int parse(query_t *q, const char *s)
{
    return query_parse(s, strlen(s), NULL, q, errbuf, sizeof errbuf);
}

START_TEST(decode_percent_and_plus)
{
    char out[64];
    long n = query_decode("a%20b+c%2Fd%2c", 14, true, out);
    ck_assert_int_eq(n, 8);
    ck_assert(memcmp(out, "a b c/d,", 8) == 0);
    n = query_decode("a+b", 3, false, out);
    ck_assert_int_eq(n, 3);
    ck_assert(memcmp(out, "a+b", 3) == 0);
    ck_assert_int_eq(query_decode("%", 1, true, out), -1);
    ck_assert_int_eq(query_decode("%4", 2, true, out), -1);
    ck_assert_int_eq(query_decode("%zz", 3, true, out), -1);
    ck_assert_int_eq(query_decode("%00", 3, true, out), -1);
    ck_assert_int_eq(query_decode("ab%41", 5, true, out), 3);
    ck_assert(memcmp(out, "abA", 3) == 0);
}
END_TEST

START_TEST(flagent_repeated_forms)
{
    query_t q;
    query_init(&q);
    ck_assert_int_eq(parse(&q, "flagKey=b&flagKey=a&flagID=7&flagID=3&flagKey=a"), 0);
    ck_assert_uint_eq(q.req.items.nkeys, 2);
    ck_assert_str_eq(q.req.items.keys[0], "a");
    ck_assert_str_eq(q.req.items.keys[1], "b");
    ck_assert_uint_eq(q.req.items.nids, 2);
    ck_assert(q.req.items.ids[0] == 3 && q.req.items.ids[1] == 7);
    ck_assert(!q.channels_given);
    ck_assert(!q.req.flags_listed);
    query_free(&q);
}
END_TEST

START_TEST(comma_lists_and_aliases)
{
    query_t q;
    query_init(&q);
    ck_assert_int_eq(parse(&q, "?flagKeys=x,y,,z,&flagIDs=1,2&flagIds=3&flagId=4&tags=web,beta"
                                "&tags=ios&channels=chat.room1,flags&channels=user:42"), 0);
    ck_assert_uint_eq(q.req.items.nkeys, 3);
    ck_assert_uint_eq(q.req.items.nids, 4);
    ck_assert_uint_eq(q.req.items.ntags, 3);
    ck_assert_uint_eq(q.req.items.nchannels, 2);
    ck_assert(filter_has_channel(&q.req.items, "chat.room1", 10));
    ck_assert(filter_has_channel(&q.req.items, "user:42", 7));
    ck_assert(q.req.flags_listed);
    ck_assert(q.channels_given);
    query_free(&q);
}
END_TEST

START_TEST(encoded_values)
{
    query_t q;
    query_init(&q);
    /* %2C splits like a comma; %3A is ':'; names may be encoded too. */
    ck_assert_int_eq(parse(&q, "flag%4Beys=a%2Cb&channels=role%3Aadmin&token=abc.def-ghi"
                                "&lastEventId=flags%2Fe1%2F42"), 0);
    ck_assert_uint_eq(q.req.items.nkeys, 2);
    ck_assert(filter_has_channel(&q.req.items, "role:admin", 10));
    ck_assert_str_eq(q.token, "abc.def-ghi");
    ck_assert_str_eq(q.last_event_id, "flags/e1/42");
    query_free(&q);
}
END_TEST

START_TEST(unknown_and_empty_ignored)
{
    query_t q;
    query_init(&q);
    ck_assert_int_eq(parse(&q, "_=1700000000&flagKey=&tags=&&_&channels=,&flagKeys"), 0);
    ck_assert_uint_eq(q.req.items.nkeys, 0);
    ck_assert_uint_eq(q.req.items.ntags, 0);
    ck_assert(!q.channels_given);
    ck_assert_ptr_null(q.token);
    ck_assert_int_eq(parse(&q, ""), 0);
    ck_assert_int_eq(parse(&q, "?"), 0);
    query_free(&q);
}
END_TEST

/* A misspelt or unknown name is a 400 naming it and the known ones: it
 * must not widen the stream to every flag. */
START_TEST(unknown_refused)
{
    query_t q;
    query_init(&q);
    ck_assert_int_eq(parse(&q, "flagkey=k1"), -1);
    ck_assert(strstr(errbuf, "unknown parameter \"flagkey\"") == errbuf);
    ck_assert(strstr(errbuf, "known: flagKey, flagKeys") != NULL);
    ck_assert(strstr(errbuf, "ignored: _") != NULL);
    ck_assert_uint_eq(q.req.items.nkeys, 0);
    /* every unknown one is named, bare names too */
    ck_assert_int_eq(parse(&q, "flagKey=a&cb=%7B%7D&novalue&_=1"), -1);
    ck_assert(strstr(errbuf, "unknown parameter \"cb\", \"novalue\" (") == errbuf);
    ck_assert_uint_eq(q.req.items.nkeys, 0);
    /* a long name is unknown, and a long list is cut, not overflowed */
    ck_assert_int_eq(parse(&q, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1"
                                "&b1=1&b2=1&b3=1&b4=1&b5=1&b6=1&b7=1&b8=1&b9=1&b10=1&b11=1&b12=1"), -1);
    ck_assert(strstr(errbuf, "...") != NULL);
    ck_assert(strstr(errbuf, "(known: ") != NULL);
    query_free(&q);
}
END_TEST

/* The WS field name "flags" is accepted as a key list on SSE too. */
START_TEST(flags_alias)
{
    query_t q;
    query_init(&q);
    ck_assert_int_eq(parse(&q, "flags=a,b&flagKeys=c"), 0);
    ck_assert_uint_eq(q.req.items.nkeys, 3);
    ck_assert(!q.channels_given);
    query_free(&q);
}
END_TEST

START_TEST(subscribe_all)
{
    query_t q;
    query_init(&q);
    ck_assert_int_eq(parse(&q, "subscribeAll=true"), 0);
    ck_assert(q.req.subscribe_all);
    ck_assert_int_eq(parse(&q, "subscribeAll=1&subscribeAll=0"), 0);
    ck_assert(!q.req.subscribe_all);
    ck_assert_int_eq(parse(&q, "subscribeAll=yes"), -1);
    ck_assert(strstr(errbuf, "subscribeAll") != NULL);
    query_free(&q);
}
END_TEST

START_TEST(errors)
{
    query_t q;
    query_init(&q);
    ck_assert_int_eq(parse(&q, "flagID=abc"), -1);
    ck_assert_str_eq(errbuf, "flagID: not a positive integer: \"abc\"");
    ck_assert_int_eq(parse(&q, "flagIDs=1,0"), -1);
    ck_assert(strstr(errbuf, "flagIDs") != NULL);
    ck_assert_int_eq(parse(&q, "flagID=-1"), -1);
    ck_assert_int_eq(parse(&q, "flagID=18446744073709551616"), -1);   /* 2^64 */
    ck_assert_int_eq(parse(&q, "flagID=18446744073709551615"), 0);
    ck_assert_int_eq(parse(&q, "flagKey=has%20space"), -1);
    ck_assert(strstr(errbuf, "flagKey: flag key must be") == errbuf);
    ck_assert_int_eq(parse(&q, "tags=ok,b%7Bad"), -1);
    ck_assert_int_eq(parse(&q, "channels=chat%20room"), -1);
    ck_assert(strstr(errbuf, "channels:") == errbuf);
    ck_assert_int_eq(parse(&q, "channels=user:"), -1);
    ck_assert_int_eq(parse(&q, "flagKey=a%2"), -1);
    ck_assert(strstr(errbuf, "bad percent-encoding") != NULL);
    ck_assert_int_eq(parse(&q, "_=%GG"), -1);           /* malformed even if unknown */
    ck_assert_int_eq(parse(&q, "flagKey=a%00b"), -1);
    ck_assert_int_eq(parse(&q, "lastEventId=a%0Ab"), -1);
    /* On error nothing is half-filled. */
    ck_assert_int_eq(parse(&q, "flagKey=a&flagKey=b&flagID=x"), -1);
    ck_assert_uint_eq(q.req.items.nkeys, 0);
    ck_assert_ptr_null(q.token);
    query_free(&q);
}
END_TEST

START_TEST(limits)
{
    query_t q;
    query_limits_t lim = { .max_bytes = 0, .max_items = 3 };
    query_init(&q);
    ck_assert_int_eq(query_parse("flagKeys=a,b,c", 14, &lim, &q, errbuf, sizeof errbuf), 0);
    ck_assert_int_eq(query_parse("flagKeys=a,b,c,d", 16, &lim, &q, errbuf, sizeof errbuf), -1);
    ck_assert(strstr(errbuf, "too many flag keys") != NULL);
    /* The default: 256 keys fit, 257 do not. */
    char *s = malloc(QUERY_MAX_BYTES + 64);
    size_t n = (size_t)sprintf(s, "flagKeys=");
    for (int i = 0; i < 256; i++)
        n += (size_t)sprintf(s + n, "%sk%d", i ? "," : "", i);
    ck_assert_int_eq(query_parse(s, n, NULL, &q, errbuf, sizeof errbuf), 0);
    ck_assert_uint_eq(q.req.items.nkeys, 256);
    n += (size_t)sprintf(s + n, ",k256");
    ck_assert_int_eq(query_parse(s, n, NULL, &q, errbuf, sizeof errbuf), -1);
    /* Length: exactly max_bytes is fine, one more is not. */
    memset(s, 'x', QUERY_MAX_BYTES + 1);
    memcpy(s, "_=", 2);
    ck_assert_int_eq(query_parse(s, QUERY_MAX_BYTES, NULL, &q, errbuf, sizeof errbuf), 0);
    ck_assert_int_eq(query_parse(s, QUERY_MAX_BYTES + 1, NULL, &q, errbuf, sizeof errbuf), -1);
    ck_assert(strstr(errbuf, "too long") != NULL);
    /* Token bound. */
    n = (size_t)sprintf(s, "token=");
    memset(s + n, 'a', QUERY_MAX_TOKEN + 1);
    ck_assert_int_eq(query_parse(s, n + QUERY_MAX_TOKEN, NULL, &q, errbuf, sizeof errbuf), 0);
    ck_assert_uint_eq(strlen(q.token), QUERY_MAX_TOKEN);
    ck_assert_int_eq(query_parse(s, n + QUERY_MAX_TOKEN + 1, NULL, &q, errbuf, sizeof errbuf), -1);
    free(s);
    query_free(&q);
}
END_TEST

START_TEST(cursor_roundtrip)
{
    char buf[128];
    const char *ch, *ep;
    size_t cl, el;
    uint64_t off;
    int n = query_format_cursor(buf, sizeof buf, "user:42", "a1b2", 99);
    ck_assert_int_eq(n, (int)strlen("user:42/a1b2/99"));
    ck_assert_str_eq(buf, "user:42/a1b2/99");
    ck_assert_int_eq(query_parse_cursor(buf, (size_t)n, &ch, &cl, &ep, &el, &off), 0);
    ck_assert(cl == 7 && memcmp(ch, "user:42", 7) == 0);
    ck_assert(el == 4 && memcmp(ep, "a1b2", 4) == 0);
    ck_assert(off == 99);
    ck_assert_int_eq(query_parse_cursor("flags/e/x", 9, &ch, &cl, &ep, &el, &off), -1);
    ck_assert_int_eq(query_parse_cursor("flags//1", 8, &ch, &cl, &ep, &el, &off), -1);
    ck_assert_int_eq(query_parse_cursor("/e/1", 4, &ch, &cl, &ep, &el, &off), -1);
    ck_assert_int_eq(query_parse_cursor("e/1", 3, &ch, &cl, &ep, &el, &off), -1);
    ck_assert_int_eq(query_parse_cursor("bad ch/e/1", 10, &ch, &cl, &ep, &el, &off), -1);
    ck_assert_int_eq(query_format_cursor(buf, 5, "flags", "e", 1), -1);
}
END_TEST

START_TEST(cursor_length_limit)
{
    /* QUERY_MAX_CURSOR bytes are taken; one more is a 400 naming the parameter. */
    size_t pre = strlen("lastEventId=");
    char *s = malloc(pre + QUERY_MAX_CURSOR + 2);
    query_t q;
    query_init(&q);
    ck_assert_ptr_nonnull(s);
    memcpy(s, "lastEventId=", pre);
    memset(s + pre, 'a', QUERY_MAX_CURSOR + 1);
    s[pre + QUERY_MAX_CURSOR] = '\0';
    ck_assert_int_eq(parse(&q, s), 0);
    query_free(&q);
    s[pre + QUERY_MAX_CURSOR] = 'a';
    s[pre + QUERY_MAX_CURSOR + 1] = '\0';
    ck_assert_int_eq(parse(&q, s), -1);
    ck_assert_ptr_nonnull(strstr(errbuf, "lastEventId"));
    free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, decode_percent_and_plus);
    tcase_add_test(tc, flagent_repeated_forms);
    tcase_add_test(tc, comma_lists_and_aliases);
    tcase_add_test(tc, encoded_values);
    tcase_add_test(tc, unknown_and_empty_ignored);
    tcase_add_test(tc, unknown_refused);
    tcase_add_test(tc, flags_alias);
    tcase_add_test(tc, subscribe_all);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, cursor_roundtrip);
    tcase_add_test(tc, cursor_length_limit);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
