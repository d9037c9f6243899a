/*
 * ab — per-user A/B choice of a targeted message's variant (docs/API.md,
 * "Per-user A/B variants"). Pure functions, no I/O.
 *
 * The choice is a stable function of (message key, user id) and the
 * variants' weights, so the same user always gets the same variant of the
 * same key, on every publisher, after every restart:
 *
 *   h      = fmix64(FNV-1a-64(key || 0x00 || user))
 *   bucket = h mod total_weight
 *   walk the variants in name order (bytewise), summing weights; the user
 *   gets the first variant whose running sum exceeds bucket.
 *
 * FNV-1a alone spreads similar ids ("u1", "u2", ...) poorly in its low
 * bits; MurmurHash3's 64-bit finaliser (fmix64) mixes every bit into every
 * other, so "mod total" is fair. A variant of weight 0 is never chosen.
 */
#ifndef FLAGCAST_AB_H
#define FLAGCAST_AB_H

#include <stddef.h>
#include <stdint.h>

/* The hash above of key[klen] and user[ulen]. */
uint64_t ab_hash(const char *key, size_t klen, const char *user, size_t ulen);

/* Picks a variant: names[n] must be sorted bytewise (strcmp) and weights[n]
 * sum to total > 0. @return the chosen index (0..n-1). */
size_t ab_pick(const char *key, size_t klen, const char *user, size_t ulen,
               const uint64_t *weights, size_t n, uint64_t total);

#endif
