/* Unit tests for common/keyslot: CRC16-XMODEM against the Redis Cluster
 * specification's check value and a bit-by-bit reference (which also checks
 * every table entry), and key → slot against the specification's examples
 * and against slots that a real redis-server 7.0 (--cluster-enabled yes)
 * gave for CLUSTER KEYSLOT, tags and binary keys included. */
#include "common/keyslot.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

/* The polynomial applied bit by bit: the definition, no table. */
static uint16_t crc16_ref(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

START_TEST(test_crc16)
{
    ck_assert_uint_eq(keyslot_crc16("123456789", 9), 0x31C3);   /* the spec's check value */
    ck_assert_uint_eq(keyslot_crc16("", 0), 0);
    for (unsigned i = 0; i < 256; i++) {
        unsigned char b = (unsigned char)i;
        ck_assert_uint_eq(keyslot_crc16(&b, 1), crc16_ref(&b, 1));
    }
    unsigned char buf[1024];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (size_t n = 0; n <= sizeof(buf); n += 37)
        ck_assert_uint_eq(keyslot_crc16(buf, n), crc16_ref(buf, n));
}
END_TEST

/* From CLUSTER KEYSLOT on redis-server 7.0.15 with --cluster-enabled yes. */
static const struct { const char *key; size_t len; unsigned slot; } vectors[] = {
    { "foo", 3, 12182 },
    { "bar", 3, 5061 },
    { "user1000", 8, 3443 },
    { "{user1000}.following", 20, 3443 },
    { "{user1000}.followers", 20, 3443 },
    { "foo{}{bar}", 10, 8363 },
    { "foo{{bar}}zap", 13, 4015 },   /* hashes "{bar" */
    { "{bar", 4, 4015 },
    { "foo{bar}{zap}", 13, 5061 },   /* hashes "bar" */
    { "{}", 2, 15257 },
    { "}{", 2, 12793 },
    { "{", 1, 4092 },
    { "", 0, 0 },
    { "a", 1, 15495 },
    { "flagcast:flags", 14, 15610 },
    { "flagcast:{flags}:meta", 21, 12971 },
    { "flagcast:{flags}:hist", 21, 12971 },
    { "flags", 5, 12971 },
    { "P:{chat.room1}:hist", 19, 10498 },
    { "chat.room1", 10, 10498 },
    { "a\0b", 3, 8383 },
    { "{a\0b}x", 6, 8383 },
};

START_TEST(test_slots)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        ck_assert_msg(keyslot_of(vectors[i].key, vectors[i].len) == vectors[i].slot,
                      "%s: %u, want %u", vectors[i].key,
                      keyslot_of(vectors[i].key, vectors[i].len), vectors[i].slot);
}
END_TEST

START_TEST(test_hashed)
{
    size_t n;
    const char *k = "x{tag}y{z}";
    ck_assert_ptr_eq(keyslot_hashed(k, strlen(k), &n), k + 2);
    ck_assert_uint_eq(n, 3);
    k = "x{}y";
    ck_assert_ptr_eq(keyslot_hashed(k, strlen(k), &n), k);
    ck_assert_uint_eq(n, 4);
    k = "x{abc";
    ck_assert_ptr_eq(keyslot_hashed(k, strlen(k), &n), k);
    ck_assert_uint_eq(n, 5);
    /* the '}' must be inside the given length */
    k = "{ab}";
    ck_assert_ptr_eq(keyslot_hashed(k, 3, &n), k);
    ck_assert_uint_eq(n, 3);
    for (unsigned i = 0; i < 5000; i++) {
        char key[32];
        size_t len = (size_t)snprintf(key, sizeof(key), "k%u", i * 7919u);
        ck_assert_uint_lt(keyslot_of(key, len), KEYSLOT_SLOTS);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keyslot");
    TCase *tc = tcase_create("keyslot");
    tcase_add_test(tc, test_crc16);
    tcase_add_test(tc, test_slots);
    tcase_add_test(tc, test_hashed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
