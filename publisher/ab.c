/*
 * ab — the stable (key, user) → variant choice; see ab.h for the formula,
 * which docs/API.md repeats so that other tools can reproduce it.
 */
#include "publisher/ab.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

uint64_t ab_hash(const char *key, size_t klen, const char *user, size_t ulen)
{
    uint64_t h = fnv1a(FNV_OFFSET, key, klen);
    h = fnv1a(h, "", 1); /* the 0x00 separator */
    h = fnv1a(h, user, ulen);
    return fmix64(h);
}

size_t ab_pick(const char *key, size_t klen, const char *user, size_t ulen,
               const uint64_t *weights, size_t n, uint64_t total)
{
    uint64_t bucket = ab_hash(key, klen, user, ulen) % total, sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += weights[i];
        if (bucket < sum)
            return i;
    }
    return n - 1; /* unreachable when the weights sum to total */
}
