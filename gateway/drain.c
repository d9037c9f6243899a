/*
 * drain — pacing of a graceful drain (see drain.h for the schedule).
 *
 * The arithmetic is done in unsigned __int128 where a product of a window
 * (up to an hour in ns, ~3.6e12) and a connection count (up to 1e7) would
 * overflow 64 bits.
 */
#include "gateway/drain.h"

void drain_begin(drain_t *d, uint64_t now_ns, uint64_t window_ns, uint64_t total,
                 uint64_t seed)
{
    d->start_ns = now_ns;
    d->window_ns = window_ns;
    d->total = total;
    d->closed = 0;
    d->rnd = seed ^ 0x9e3779b97f4a7c15ull;
    if (d->rnd == 0)
        d->rnd = 0x2545f4914f6cdd1dull;
}

uint64_t drain_target(const drain_t *d, uint64_t now_ns)
{
    unsigned __int128 t;
    uint64_t elapsed;

    if (d->total == 0)
        return 0;
    if (d->window_ns == 0 || now_ns >= d->start_ns + d->window_ns)
        return d->total;
    elapsed = now_ns > d->start_ns ? now_ns - d->start_ns : 0;
    /* close i is due at window * i / total: i <= elapsed * total / window */
    t = (unsigned __int128)elapsed * d->total / d->window_ns + 1;
    return t > d->total ? d->total : (uint64_t)t;
}

uint64_t drain_due(const drain_t *d, uint64_t now_ns)
{
    uint64_t t = drain_target(d, now_ns);

    return t > d->closed ? t - d->closed : 0;
}

void drain_done(drain_t *d, uint64_t n)
{
    d->closed += n;
}

uint64_t drain_next_ns(const drain_t *d)
{
    unsigned __int128 off;

    if (d->closed >= d->total || d->window_ns == 0)
        return d->start_ns + d->window_ns;
    /* the smallest t with floor(t * total / window) >= closed */
    off = ((unsigned __int128)d->closed * d->window_ns + d->total - 1) / d->total;
    return d->start_ns + (uint64_t)off;
}

uint64_t drain_pace_ns(uint64_t window_ns, unsigned retry_ms)
{
    uint64_t tail = (uint64_t)retry_ms * 3 / 2 * 1000000ull;

    if (tail > window_ns / 2)
        tail = window_ns / 2;
    return window_ns - tail;
}

unsigned drain_retry_ms(drain_t *d, unsigned base_ms)
{
    uint64_t x = d->rnd;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d->rnd = x;
    if (base_ms < 2)
        return base_ms;
    /* base/2 + [0, base] */
    return base_ms / 2 + (unsigned)(x % ((uint64_t)base_ms + 1));
}
