/*
 * keyslot — Redis Cluster's key → hash slot rule, pure.
 *
 * A key's slot is CRC16(key) mod 16384, CRC16 being the XMODEM variant
 * (polynomial 0x1021, initial value 0, no reflection, no final xor), as the
 * Redis Cluster specification gives it. When the key holds a hash tag, only
 * the tag is hashed: the bytes between the first '{' and the first '}'
 * after it, if there is at least one byte between them. So "{user1000}.a"
 * and "{user1000}.b" share a slot, "foo{}{bar}" hashes whole (the first
 * tag is empty), and "foo{{bar}}" hashes "{bar".
 */
#ifndef FLAGCAST_KEYSLOT_H
#define FLAGCAST_KEYSLOT_H

#include <stddef.h>
#include <stdint.h>

#define KEYSLOT_SLOTS 16384

/* CRC16-XMODEM of len bytes. */
uint16_t keyslot_crc16(const void *buf, size_t len);

/* The hash slot (0..16383) of a key of len bytes (binary-safe). */
unsigned keyslot_of(const void *key, size_t len);

/* The part of the key that is hashed: its hash tag when it has a non-empty
 * one, else the whole key. *taglen gets its length; the returned pointer
 * points into key. */
const char *keyslot_hashed(const void *key, size_t len, size_t *taglen);

#endif
