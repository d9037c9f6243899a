/*
 * Unit tests for proto/buf: growth, NUL termination, the limit and the
 * latched error, printf, steal, and the msgpack write callback.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

#include "proto/buf.h"

START_TEST(test_append_and_grow)
{
    buf_t b;
    buf_init(&b);
    ck_assert_ptr_null(b.data);
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(buf_putc(&b, (char)('a' + i % 26)), 0);
    ck_assert_uint_eq(b.len, 10000);
    ck_assert_int_eq(b.data[b.len], '\0');
    ck_assert_int_eq(b.data[27], 'b');
    ck_assert_int_eq(buf_append(&b, "xyz", 3), 0);
    ck_assert_int_eq(buf_puts(&b, ""), 0);
    ck_assert_int_eq(buf_append(&b, NULL, 0), 0);
    ck_assert_uint_eq(b.len, 10003);
    ck_assert_str_eq(b.data + 10000, "xyz");
    buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    buf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_printf)
{
    buf_t b;
    buf_init(&b);
    ck_assert_int_eq(buf_printf(&b, "%d-%s", 42, "x"), 0);
    ck_assert_str_eq(b.data, "42-x");
    char big[3000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    ck_assert_int_eq(buf_printf(&b, "[%s]", big), 0);
    ck_assert_uint_eq(b.len, 4 + 2 + sizeof(big) - 1);
    ck_assert_int_eq(b.data[b.len - 1], ']');
    ck_assert_int_eq(b.data[b.len], '\0');
    buf_free(&b);
}
END_TEST

START_TEST(test_limit_latches)
{
    buf_t b;
    buf_init(&b);
    b.limit = 5;
    ck_assert_int_eq(buf_append(&b, "12345", 5), 0);     /* exactly the limit */
    ck_assert_int_eq(b.err, 0);
    ck_assert_int_eq(buf_putc(&b, '6'), -1);              /* limit + 1 */
    ck_assert_int_eq(b.err, 1);
    ck_assert_str_eq(b.data, "12345");
    buf_reset(&b);
    ck_assert_int_eq(b.err, 0);
    ck_assert_int_eq(buf_puts(&b, "123456"), -1);
    ck_assert_int_eq(buf_puts(&b, "1"), -1);              /* still latched */
    buf_reset(&b);
    ck_assert_int_eq(buf_printf(&b, "%s", "abcdef"), -1);
    ck_assert_str_eq(b.data, "");
    buf_reset(&b);
    ck_assert_int_eq(buf_printf(&b, "%s", "abcde"), 0);
    ck_assert_int_eq(buf_reserve(&b, 1), -1);
    ck_assert_int_eq(buf_reserve(&b, (size_t)-1), -1);
    buf_free(&b);

    buf_init(&b);
    ck_assert_int_eq(buf_reserve(&b, (size_t)-1), -1);    /* overflow */
    ck_assert_int_eq(b.err, 1);
    buf_free(&b);
}
END_TEST

START_TEST(test_rollback)
{
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "keep");
    buf_puts(&b, "-partial");
    ck_assert_int_eq(buf_rollback(&b, 4), -1);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_str_eq(b.data, "keep");
    ck_assert_int_eq(buf_rollback(&b, 99), -1);  /* past the end: unchanged */
    ck_assert_str_eq(b.data, "keep");
    b.limit = 6;
    ck_assert_int_eq(buf_puts(&b, "toolong"), -1);  /* latches err */
    ck_assert_int_eq(buf_rollback(&b, 0), -1);
    ck_assert_int_eq(b.err, 1);                      /* a latched buffer stays so */
    buf_free(&b);
}
END_TEST

START_TEST(test_steal)
{
    buf_t b;
    size_t n;
    buf_init(&b);
    char *p = buf_steal(&b, &n);                          /* empty: still a string */
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(p, "");
    free(p);
    buf_puts(&b, "hello");
    p = buf_steal(&b, &n);
    ck_assert_str_eq(p, "hello");
    ck_assert_uint_eq(n, 5);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    free(p);
}
END_TEST

START_TEST(test_msgpack_write)
{
    buf_t b;
    msgpack_packer pk;
    buf_init(&b);
    msgpack_packer_init(&pk, &b, buf_msgpack_write);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_str_with_body(&pk, "ab", 2), 0);
    ck_assert_uint_eq(b.len, 5);
    ck_assert(memcmp(b.data, "\x92\x01\xa2" "ab", 5) == 0);
    b.limit = 6;
    ck_assert_int_ne(msgpack_pack_str_with_body(&pk, "ab", 2), 0);
    buf_free(&b);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_append_and_grow);
    tcase_add_test(tc, test_printf);
    tcase_add_test(tc, test_limit_latches);
    tcase_add_test(tc, test_steal);
    tcase_add_test(tc, test_rollback);
    tcase_add_test(tc, test_msgpack_write);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(buf_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
