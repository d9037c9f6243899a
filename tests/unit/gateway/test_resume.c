/* Unit tests for gateway/resume: requests, replay duplicates, floors,
 * starts, and the before-record rules of a replay. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/filter.h"
#include "gateway/outq.h"
#include "gateway/resume.h"
#include "gateway/resync.h"
#include "gwtest.h"

#define HEAD 16

/* A filter with the given channels (NULL-terminated) and flags mode. */
static void mkfilter(filter_t *f, filter_flags_t flags, ...)
{
    va_list ap;
    const char *ch, *err;
    filter_init(f);
    f->flags = flags;
    va_start(ap, flags);
    while ((ch = va_arg(ap, const char *)) != NULL)
        ck_assert_int_eq(filter_add_channel(f, ch, strlen(ch), 256, &err), 0);
    va_end(ap);
}

/* A message event on ch in epoch ep at offset off. */
static void mkev(ev_t *ev, const char *ch, const char *ep, uint64_t off)
{
    gwt_msg_ev(ev, ch, off);
    free(ev->epoch);
    ev->epoch = strdup(ep);
}

static bool dup_of(const gw_resume_t *r, const char *ch, const char *ep, uint64_t off)
{
    ev_t ev;
    mkev(&ev, ch, ep, off);
    bool d = resume_dup(r, &ev);
    ev_free(&ev);
    return d;
}

static bool floor_dup(gw_resume_t **fl, const char *ch, const char *ep, uint64_t off)
{
    ev_t ev;
    mkev(&ev, ch, ep, off);
    bool d = resume_floor_dup(fl, &ev);
    ev_free(&ev);
    return d;
}

static bool covers(const gw_resume_t *s, const char *ch, const char *ep, uint64_t off)
{
    ev_t ev;
    mkev(&ev, ch, ep, off);
    bool d = resume_start_covers(s, &ev);
    ev_free(&ev);
    return d;
}

/* An answered entry: ok, last replayed `last`. */
static long answered(gw_resume_t *r, const char *ch, const char *ep, uint64_t from, uint64_t last)
{
    long i = gw_resume_push(r, ch, strlen(ch), ep, ep ? strlen(ep) : 0, from);
    ck_assert_int_ge(i, 0);
    r->ok[i] = true;
    r->last[i] = last;
    return i;
}

START_TEST(push_copies_and_initialises)
{
    gw_resume_t *r = gw_resume_new(2);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->nch, 0);
    ck_assert_uint_eq(r->capch, 2);
    ck_assert_ptr_null(r->next);
    ck_assert_ptr_null(r->evs);
    ck_assert_uint_eq(r->nevs, 0);
    ck_assert_ptr_null(r->prelude);
    ck_assert(!r->snapshot);

    char ch[] = "chat.room1XXX", ep[] = "e7YYY";
    ck_assert_int_eq(gw_resume_push(r, ch, 10, ep, 2, 42), 0);
    ch[0] = 'Z';
    ep[0] = 'Z';                         /* copies, of the given lengths */
    ck_assert_str_eq(r->channels[0], "chat.room1");
    ck_assert_str_eq(r->epochs[0], "e7");
    ck_assert_uint_eq(r->offsets[0], 42);
    ck_assert_uint_eq(r->last[0], 42);   /* nothing replayed yet: last = the position */
    ck_assert(!r->ok[0]);
    ck_assert(!r->pos_only[0]);
    ck_assert_ptr_null(r->reason[0]);

    ck_assert_int_eq(gw_resume_push(r, "flags", 5, NULL, 0, 0), 1);   /* no epoch */
    ck_assert_ptr_null(r->epochs[1]);
    ck_assert_uint_eq(r->nch, 2);
    gw_resume_free(r);
    gw_resume_free(NULL);

    r = gw_resume_new(0);                /* room for at least one */
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_ge(r->capch, 1);
    ck_assert_int_eq(gw_resume_push(r, "a", 1, "e", 1, 1), 0);
    ck_assert_int_eq(gw_resume_push(r, "b", 1, "e", 1, 2), 1);
    ck_assert_str_eq(r->channels[1], "b");
    gw_resume_free(r);
}
END_TEST

START_TEST(push_grows_past_capacity)
{
    gw_resume_t *r = gw_resume_new(2);
    char ch[32], ep[32];
    const size_t n = 3 * GW_RESUME_MAX_CHANNELS + 5;   /* several doublings */
    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < n; i++) {
        snprintf(ch, sizeof ch, "ch%zu", i);
        snprintf(ep, sizeof ep, "e%zu", i % 3);
        long k = gw_resume_push(r, ch, strlen(ch), ep, strlen(ep), 100 + i);
        ck_assert_int_eq(k, (long)i);
        r->ok[k] = (i % 2) == 0;
        r->last[k] = 200 + i;
        r->pos_only[k] = (i % 5) == 0;
        r->reason[k] = (i % 2) ? HIST_REASON_BEHIND : NULL;
    }
    ck_assert_uint_eq(r->nch, n);
    ck_assert_uint_ge(r->capch, n);
    /* every array kept what was written before each growth */
    for (size_t i = 0; i < n; i++) {
        snprintf(ch, sizeof ch, "ch%zu", i);
        snprintf(ep, sizeof ep, "e%zu", i % 3);
        ck_assert_str_eq(r->channels[i], ch);
        ck_assert_str_eq(r->epochs[i], ep);
        ck_assert_uint_eq(r->offsets[i], 100 + i);
        ck_assert_uint_eq(r->last[i], 200 + i);
        ck_assert(r->ok[i] == ((i % 2) == 0));
        ck_assert(r->pos_only[i] == ((i % 5) == 0));
        ck_assert_ptr_eq(r->reason[i], (i % 2) ? HIST_REASON_BEHIND : NULL);
        ck_assert(resume_has(r, ch));
    }
    ck_assert(!resume_has(r, "ch"));
    ck_assert(!resume_has(r, "ch1000"));
    /* an entry past the initial capacity still counts for duplicates */
    ck_assert(dup_of(r, "ch40", "e1", 240));
    ck_assert(!dup_of(r, "ch40", "e1", 241));
    gw_resume_free(r);
}
END_TEST

START_TEST(has_exact_names)
{
    gw_resume_t *r = gw_resume_new(4);
    ck_assert(!resume_has(r, "a"));
    gw_resume_push(r, "chat", 4, "e1", 2, 1);
    ck_assert(resume_has(r, "chat"));
    ck_assert(!resume_has(r, "cha"));
    ck_assert(!resume_has(r, "chat2"));
    ck_assert(!resume_has(r, ""));
    gw_resume_free(r);
}
END_TEST

START_TEST(add_only_wanted_and_new)
{
    filter_t f;
    mkfilter(&f, FILTER_FLAGS_NONE, "chat", "user:u1", NULL);
    gw_resume_t *r = gw_resume_new(1);

    ck_assert_int_eq(resume_add(r, &f, "chat", 4, "e1", 2, 7), 0);
    ck_assert_uint_eq(r->nch, 1);
    ck_assert_str_eq(r->channels[0], "chat");
    ck_assert_str_eq(r->epochs[0], "e1");
    ck_assert_uint_eq(r->offsets[0], 7);
    ck_assert(!r->pos_only[0]);
    /* a duplicate, even with another position */
    ck_assert_int_eq(resume_add(r, &f, "chat", 4, "e2", 2, 9), -1);
    ck_assert_uint_eq(r->nch, 1);
    ck_assert_str_eq(r->epochs[0], "e1");
    ck_assert_uint_eq(r->offsets[0], 7);
    /* not wanted by the filter */
    ck_assert_int_eq(resume_add(r, &f, "other", 5, "e1", 2, 1), -1);
    ck_assert_int_eq(resume_add(r, &f, "flags", 5, "e1", 2, 1), -1);   /* flags mode NONE */
    ck_assert_uint_eq(r->nch, 1);
    /* the name is taken by length, not up to a NUL: "chatroom" cut to 4 is "chat" */
    ck_assert_int_eq(resume_add(r, &f, "chatroom", 4, "e1", 2, 1), -1);
    ck_assert_int_eq(resume_add(r, &f, "cha", 3, "e1", 2, 1), -1);     /* not wanted */
    /* a second channel, past the initial capacity of one */
    ck_assert_int_eq(resume_add(r, &f, "user:u1xyz", 7, "e3", 2, 3), 0);
    ck_assert_uint_eq(r->nch, 2);
    ck_assert_str_eq(r->channels[1], "user:u1");
    ck_assert_str_eq(r->epochs[1], "e3");
    /* epoch cut to its length too, and NULL allowed */
    filter_free(&f);
    mkfilter(&f, FILTER_FLAGS_ALL, NULL);
    ck_assert_int_eq(resume_add(r, &f, "flags", 5, "e9zzz", 2, 4), 0);
    ck_assert_str_eq(r->epochs[2], "e9");
    ck_assert_int_eq(resume_add(r, &f, "flags", 5, "e9", 2, 4), -1);
    ck_assert_int_eq(resume_add(r, &f, "chat", 4, "e1", 2, 7), -1);     /* no longer wanted */
    gw_resume_free(r);
    filter_free(&f);
}
END_TEST

START_TEST(add_starts_new_channels_only)
{
    filter_t f, old;
    gw_resume_t *r;

    /* no old filter: flags and every channel, as pos_only "-"/0 */
    mkfilter(&f, FILTER_FLAGS_SOME, "a", "b", NULL);
    r = gw_resume_new(1);
    resume_add_starts(r, &f, NULL);
    ck_assert_uint_eq(r->nch, 3);
    ck_assert_str_eq(r->channels[0], "flags");
    ck_assert_str_eq(r->channels[1], "a");
    ck_assert_str_eq(r->channels[2], "b");
    for (size_t i = 0; i < r->nch; i++) {
        ck_assert(r->pos_only[i]);
        ck_assert(!r->ok[i]);
        ck_assert_str_eq(r->epochs[i], HIST_EPOCH_NONE);
        ck_assert_uint_eq(r->offsets[i], 0);
    }
    gw_resume_free(r);

    /* channels the request already names (a `since`) are not starts */
    r = gw_resume_new(2);
    ck_assert_int_eq(resume_add(r, &f, "b", 1, "e4", 2, 12), 0);
    ck_assert_int_eq(resume_add(r, &f, "flags", 5, "e1", 2, 3), 0);
    resume_add_starts(r, &f, NULL);
    ck_assert_uint_eq(r->nch, 3);
    ck_assert_str_eq(r->channels[0], "b");
    ck_assert(!r->pos_only[0]);
    ck_assert_str_eq(r->epochs[0], "e4");
    ck_assert_uint_eq(r->offsets[0], 12);
    ck_assert_str_eq(r->channels[1], "flags");
    ck_assert(!r->pos_only[1]);
    ck_assert_str_eq(r->channels[2], "a");
    ck_assert(r->pos_only[2]);
    gw_resume_free(r);

    /* against an old filter: only what it did not want */
    mkfilter(&old, FILTER_FLAGS_ALL, "a", NULL);
    r = gw_resume_new(1);
    resume_add_starts(r, &f, &old);
    ck_assert_uint_eq(r->nch, 1);
    ck_assert_str_eq(r->channels[0], "b");
    ck_assert(r->pos_only[0]);
    gw_resume_free(r);
    filter_free(&old);

    /* the old filter had no flags: flags is a start; had every channel: none */
    mkfilter(&old, FILTER_FLAGS_NONE, "a", "b", "c", NULL);
    r = gw_resume_new(1);
    resume_add_starts(r, &f, &old);
    ck_assert_uint_eq(r->nch, 1);
    ck_assert_str_eq(r->channels[0], "flags");
    ck_assert(r->pos_only[0]);
    ck_assert_str_eq(r->epochs[0], HIST_EPOCH_NONE);
    gw_resume_free(r);
    filter_free(&old);
    filter_free(&f);

    /* a filter without flags asks no flags position */
    mkfilter(&f, FILTER_FLAGS_NONE, "x", NULL);
    r = gw_resume_new(1);
    resume_add_starts(r, &f, NULL);
    ck_assert_uint_eq(r->nch, 1);
    ck_assert_str_eq(r->channels[0], "x");
    gw_resume_free(r);
    filter_free(&f);

    /* an empty filter: nothing */
    filter_init(&f);
    r = gw_resume_new(1);
    resume_add_starts(r, &f, NULL);
    ck_assert_uint_eq(r->nch, 0);
    gw_resume_free(r);
}
END_TEST

START_TEST(dup_same_channel_epoch_up_to_last)
{
    gw_resume_t *r = gw_resume_new(4);
    answered(r, "a", "e1", 3, 10);
    long b = gw_resume_push(r, "b", 1, "e1", 2, 5);      /* not ok: a resync */
    r->last[b] = 20;
    answered(r, "c", NULL, 0, 50);                      /* ok but no epoch */

    ck_assert(dup_of(r, "a", "e1", 1));
    ck_assert(dup_of(r, "a", "e1", 10));
    ck_assert(!dup_of(r, "a", "e1", 11));
    ck_assert(!dup_of(r, "a", "e2", 5));    /* a restarted history: offset 5 is new */
    ck_assert(!dup_of(r, "a", "e", 5));
    ck_assert(!dup_of(r, "a", "e12", 5));
    ck_assert(!dup_of(r, "b", "e1", 5));    /* not replayed */
    ck_assert(!dup_of(r, "c", "e1", 5));
    ck_assert(!dup_of(r, "d", "e1", 1));    /* not named */
    ck_assert(!dup_of(r, "aa", "e1", 1));
    gw_resume_free(r);

    /* a position of a channel without history yet ("-"): nothing is a repeat */
    r = gw_resume_new(1);
    answered(r, "a", HIST_EPOCH_NONE, 0, 0);
    ck_assert(!dup_of(r, "a", "e1", 1));
    ck_assert(!dup_of(r, "a", "e1", 0));
    gw_resume_free(r);
}
END_TEST

START_TEST(floor_left_per_channel_and_freed)
{
    gw_resume_t *fl = gw_resume_new(2);
    answered(fl, "a", "e1", 0, 10);
    answered(fl, "b", "e1", 0, 5);

    ck_assert(floor_dup(&fl, "a", "e1", 9));
    ck_assert(floor_dup(&fl, "a", "e1", 10));
    ck_assert(floor_dup(&fl, "b", "e1", 5));
    ck_assert_ptr_nonnull(fl);
    /* an event of a channel the floor does not name changes nothing */
    ck_assert(!floor_dup(&fl, "z", "e1", 1));
    ck_assert_ptr_nonnull(fl);
    ck_assert(fl->ok[0] && fl->ok[1]);
    /* a passes its floor: delivered, a leaves */
    ck_assert(!floor_dup(&fl, "a", "e1", 11));
    ck_assert_ptr_nonnull(fl);
    ck_assert(!fl->ok[0]);
    ck_assert(fl->ok[1]);
    /* a's floor no longer applies (a late repeat is not dropped any more) */
    ck_assert(!floor_dup(&fl, "a", "e1", 3));
    ck_assert_ptr_nonnull(fl);
    ck_assert(floor_dup(&fl, "b", "e1", 4));
    /* b moves to another epoch: leaves; no channel left: freed */
    ck_assert(!floor_dup(&fl, "b", "e2", 1));
    ck_assert_ptr_null(fl);
}
END_TEST

START_TEST(floor_of_not_ok_entries_freed_at_first_event)
{
    /* a floor whose only ok channel is passed at once */
    gw_resume_t *fl = gw_resume_new(2);
    long i = gw_resume_push(fl, "a", 1, "e1", 2, 3);
    fl->reason[i] = HIST_REASON_TRIMMED;                 /* resynced: not ok */
    answered(fl, "b", "e1", 0, 2);
    ck_assert(!floor_dup(&fl, "a", "e1", 1));            /* not ok: never a dup */
    ck_assert_ptr_nonnull(fl);                           /* b still at the seam */
    ck_assert(!floor_dup(&fl, "b", "e1", 3));
    ck_assert_ptr_null(fl);

    /* a "-" position leaves at the channel's first event, in any epoch */
    fl = gw_resume_new(1);
    answered(fl, "a", HIST_EPOCH_NONE, 0, 0);
    ck_assert(!floor_dup(&fl, "a", "e5", 1));
    ck_assert_ptr_null(fl);
}
END_TEST

START_TEST(floor_next_merges_old_positions)
{
    /* old floor: a (e1, 10), b (e1, 20), c not ok, d without epoch */
    gw_resume_t *old = gw_resume_new(1);
    answered(old, "a", "e1", 4, 10);
    answered(old, "b", "e1", 6, 20);
    long c = gw_resume_push(old, "c", 1, "e1", 2, 30);
    (void)c;
    answered(old, "d", NULL, 0, 40);

    /* the new answer names a (at e2, 3) and e (e1, 7), more than its capacity */
    gw_resume_t *r = gw_resume_new(1);
    answered(r, "a", "e2", 0, 3);
    answered(r, "e", "e1", 5, 7);

    gw_resume_t *fl = resume_floor_next(r, true, old);   /* old is freed */
    ck_assert_ptr_eq(fl, r);
    ck_assert_uint_eq(fl->nch, 3);
    /* r's own a wins over the old a */
    ck_assert_str_eq(fl->channels[0], "a");
    ck_assert_str_eq(fl->epochs[0], "e2");
    ck_assert_uint_eq(fl->last[0], 3);
    ck_assert_str_eq(fl->channels[1], "e");
    /* old b, still at the seam and not named by r, is kept */
    ck_assert_str_eq(fl->channels[2], "b");
    ck_assert_str_eq(fl->epochs[2], "e1");
    ck_assert(fl->ok[2]);
    ck_assert_uint_eq(fl->last[2], 20);
    ck_assert_uint_eq(fl->offsets[2], 6);
    ck_assert(!fl->pos_only[2]);
    ck_assert(!resume_has(fl, "c"));
    ck_assert(!resume_has(fl, "d"));
    /* and it works as a floor */
    ck_assert(floor_dup(&fl, "b", "e1", 20));
    ck_assert(!floor_dup(&fl, "b", "e1", 21));
    ck_assert(floor_dup(&fl, "a", "e2", 3));
    ck_assert(!floor_dup(&fl, "a", "e1", 3));   /* the old a is gone */
    ck_assert_ptr_nonnull(fl);
    ck_assert(!floor_dup(&fl, "e", "e1", 8));
    ck_assert_ptr_null(fl);
}
END_TEST

START_TEST(floor_next_nothing_ok)
{
    /* no old floor, nothing ok: no floor (r freed; ASan/valgrind see a leak otherwise) */
    gw_resume_t *r = gw_resume_new(1);
    long i = gw_resume_push(r, "a", 1, "e1", 2, 3);
    r->reason[i] = HIST_REASON_EPOCH;
    ck_assert_ptr_null(resume_floor_next(r, false, NULL));

    /* nothing ok in r, but the old floor still at the seam: kept */
    gw_resume_t *old = gw_resume_new(1);
    answered(old, "b", "e1", 0, 9);
    r = gw_resume_new(1);
    i = gw_resume_push(r, "a", 1, "e1", 2, 3);
    r->reason[i] = HIST_REASON_EPOCH;
    gw_resume_t *fl = resume_floor_next(r, false, old);
    ck_assert_ptr_eq(fl, r);
    ck_assert(resume_has(fl, "b"));
    ck_assert(floor_dup(&fl, "b", "e1", 9));
    ck_assert_ptr_nonnull(fl);
    gw_resume_free(fl);

    /* the old floor only names what r names: nothing left */
    old = gw_resume_new(1);
    answered(old, "a", "e1", 0, 9);
    r = gw_resume_new(1);
    i = gw_resume_push(r, "a", 1, "e1", 2, 3);
    ck_assert_ptr_null(resume_floor_next(r, false, old));

    /* an old floor with only passed channels: nothing taken */
    old = gw_resume_new(1);
    i = gw_resume_push(old, "b", 1, "e1", 2, 3);
    r = gw_resume_new(1);
    ck_assert_ptr_null(resume_floor_next(r, false, old));

    /* any_ok with no old floor: r as it is */
    r = gw_resume_new(1);
    answered(r, "a", "e1", 1, 2);
    fl = resume_floor_next(r, true, NULL);
    ck_assert_ptr_eq(fl, r);
    ck_assert_uint_eq(fl->nch, 1);
    gw_resume_free(fl);
}
END_TEST

START_TEST(floor_next_many_old_channels)
{
    /* more old channels than r's capacity: each merged */
    gw_resume_t *old = gw_resume_new(1), *r = gw_resume_new(1);
    char ch[32];
    for (int i = 0; i < 20; i++) {
        snprintf(ch, sizeof ch, "c%d", i);
        answered(old, ch, "e1", 0, (uint64_t)i + 1);
    }
    answered(r, "c3", "e1", 0, 100);
    gw_resume_t *fl = resume_floor_next(r, true, old);
    ck_assert_uint_eq(fl->nch, 20);
    for (int i = 0; i < 20; i++) {
        snprintf(ch, sizeof ch, "c%d", i);
        ck_assert(resume_has(fl, ch));
        ck_assert(floor_dup(&fl, ch, "e1", i == 3 ? 100 : (uint64_t)i + 1));
    }
    gw_resume_free(fl);
}
END_TEST

START_TEST(starts_set_find_covers)
{
    gw_resume_t *s = NULL;
    ck_assert_int_eq(resume_start_find(NULL, "a"), -1);
    ck_assert(!covers(NULL, "a", "e1", 1));
    resume_start_set(&s, "a", NULL, 5);                  /* no epoch: nothing recorded */
    ck_assert_ptr_null(s);

    resume_start_set(&s, "a", "e1", 5);                  /* created on first use */
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(resume_start_find(s, "a"), 0);
    ck_assert_int_eq(resume_start_find(s, "b"), -1);
    /* started at 5: 6 on came live, 5 and before did not */
    ck_assert(!covers(s, "a", "e1", 4));
    ck_assert(!covers(s, "a", "e1", 5));
    ck_assert(covers(s, "a", "e1", 6));
    ck_assert(covers(s, "a", "e1", 1000));
    ck_assert(!covers(s, "a", "e2", 6));                 /* another epoch */
    ck_assert(!covers(s, "b", "e1", 6));

    /* "-": began before the channel had history, all of it came live */
    resume_start_set(&s, "b", HIST_EPOCH_NONE, 0);
    ck_assert_int_eq(resume_start_find(s, "b"), 1);
    ck_assert(covers(s, "b", "e1", 1));
    ck_assert(covers(s, "b", "e9", 77));

    /* set again: moved, not added */
    resume_start_set(&s, "a", "e2", 3);
    ck_assert_uint_eq(s->nch, 2);
    ck_assert_int_eq(resume_start_find(s, "a"), 0);
    ck_assert(!covers(s, "a", "e1", 6));
    ck_assert(!covers(s, "a", "e2", 3));
    ck_assert(covers(s, "a", "e2", 4));
    /* an epoch NULL leaves the recorded start as it was */
    resume_start_set(&s, "a", NULL, 100);
    ck_assert(covers(s, "a", "e2", 4));

    /* growth past the initial capacity */
    char ch[32];
    for (int i = 0; i < 40; i++) {
        snprintf(ch, sizeof ch, "user:u%d", i);
        resume_start_set(&s, ch, "e1", (uint64_t)i);
    }
    ck_assert_uint_eq(s->nch, 42);
    for (int i = 0; i < 40; i++) {
        snprintf(ch, sizeof ch, "user:u%d", i);
        ck_assert_int_eq(resume_start_find(s, ch), i + 2);
        ck_assert(!covers(s, ch, "e1", (uint64_t)i));
        ck_assert(covers(s, ch, "e1", (uint64_t)i + 1));
    }
    ck_assert(covers(s, "a", "e2", 4));
    gw_resume_free(s);
}
END_TEST

START_TEST(starts_prune_and_reset)
{
    gw_resume_t *s = NULL;
    filter_t f;
    resume_starts_prune(NULL, NULL);                     /* no starts: nothing */
    resume_start_set(&s, "a", "e1", 5);
    resume_start_set(&s, "b", "e1", 7);
    resume_start_set(&s, "flags", "e3", 2);

    mkfilter(&f, FILTER_FLAGS_ALL, "a", NULL);
    resume_starts_prune(s, &f);
    ck_assert_int_eq(resume_start_find(s, "a"), 0);
    ck_assert_int_eq(resume_start_find(s, "b"), -1);     /* no longer streamed */
    ck_assert_int_ge(resume_start_find(s, "flags"), 0);
    ck_assert(!covers(s, "b", "e1", 8));
    ck_assert(covers(s, "a", "e1", 6));
    ck_assert(covers(s, "flags", "e3", 3));
    filter_free(&f);

    /* flags mode NONE forgets flags */
    mkfilter(&f, FILTER_FLAGS_NONE, "a", "b", NULL);
    resume_starts_prune(s, &f);
    ck_assert_int_eq(resume_start_find(s, "flags"), -1);
    ck_assert_int_eq(resume_start_find(s, "b"), -1);     /* wanted again, but forgotten */
    filter_free(&f);

    /* re-set after prune: the forgotten entry is used again, at the new start */
    resume_start_set(&s, "b", "e2", 40);
    ck_assert_uint_eq(s->nch, 3);
    ck_assert_int_eq(resume_start_find(s, "b"), 1);
    ck_assert(!covers(s, "b", "e1", 8));
    ck_assert(!covers(s, "b", "e2", 40));
    ck_assert(covers(s, "b", "e2", 41));
    resume_start_set(&s, "flags", HIST_EPOCH_NONE, 0);
    ck_assert_int_eq(resume_start_find(s, "flags"), 2);
    ck_assert(covers(s, "flags", "e3", 1));

    /* NULL filter: nothing streamed any more */
    resume_starts_prune(s, NULL);
    ck_assert_int_eq(resume_start_find(s, "a"), -1);
    ck_assert_int_eq(resume_start_find(s, "b"), -1);
    ck_assert_int_eq(resume_start_find(s, "flags"), -1);
    ck_assert(!covers(s, "a", "e1", 6));
    ck_assert(!covers(s, "flags", "e3", 1));
    gw_resume_free(s);
}
END_TEST

START_TEST(streamed_since_channels_started_before)
{
    gw_resume_t *s = NULL, *r = gw_resume_new(2);
    resume_start_set(&s, "user:u1", "e1", 5);
    resume_start_set(&s, "chat", "e1", 2);
    /* r: a since for user:u1, a since for new, a start (pos_only) for chat */
    ck_assert_int_ge(gw_resume_push(r, "user:u1", 7, "e1", 2, 3), 0);
    ck_assert_int_ge(gw_resume_push(r, "new", 3, "e1", 2, 3), 0);
    long k = gw_resume_push(r, "chat", 4, HIST_EPOCH_NONE, 1, 0);
    r->pos_only[k] = true;

    ck_assert(resume_streamed(s, r, "user:u1"));
    ck_assert(!resume_streamed(s, r, "new"));            /* no start */
    ck_assert(!resume_streamed(s, r, "chat"));           /* r's own start, not a since */
    ck_assert(!resume_streamed(s, r, "other"));
    ck_assert(!resume_streamed(NULL, r, "user:u1"));
    /* a start forgotten by a prune does not count */
    filter_t f;
    mkfilter(&f, FILTER_FLAGS_NONE, "chat", NULL);
    resume_starts_prune(s, &f);
    ck_assert(!resume_streamed(s, r, "user:u1"));
    filter_free(&f);
    gw_resume_free(r);
    gw_resume_free(s);
}
END_TEST

START_TEST(before_unknown_only_for_tag_filters)
{
    filter_t f;
    flag_t fl;
    ev_t ev;
    const char *err;

    filter_init(&f);
    ck_assert_int_eq(filter_add_tag(&f, "beta", 4, 256, &err), 0);
    f.flags = FILTER_FLAGS_SOME;

    gwt_flag(&fl, "k", 7, 3, "alpha", NULL);             /* the record after: no beta */
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &fl, 10);
    ck_assert(resume_before_unknown(&f, &ev));
    ev.type = EV_FLAG_TOGGLED;
    ck_assert(resume_before_unknown(&f, &ev));
    ev.type = EV_FLAG_DELETED;
    ck_assert(resume_before_unknown(&f, &ev));
    ev.type = EV_FLAG_CREATED;                           /* no record before a create */
    ck_assert(!resume_before_unknown(&f, &ev));
    ev.type = EV_FLAG_UPDATED;
    ev_free(&ev);
    flag_free(&fl);

    gwt_flag(&fl, "k", 7, 3, "beta", NULL);              /* still selected: told anyway */
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &fl, 10);
    ck_assert(!resume_before_unknown(&f, &ev));
    ev_free(&ev);
    flag_free(&fl);

    gwt_flag(&fl, "k", 7, 3, NULL);
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &fl, 10);
    ck_assert(resume_before_unknown(&f, &ev));
    /* not a tag filter: keys only, ALL, NONE */
    filter_t g;
    filter_init(&g);
    ck_assert_int_eq(filter_add_key(&g, "other", 5, 256, &err), 0);
    g.flags = FILTER_FLAGS_SOME;
    ck_assert(!resume_before_unknown(&g, &ev));
    g.flags = FILTER_FLAGS_ALL;
    ck_assert(!resume_before_unknown(&g, &ev));
    f.flags = FILTER_FLAGS_ALL;                          /* tags kept, ignored */
    ck_assert(!resume_before_unknown(&f, &ev));
    f.flags = FILTER_FLAGS_NONE;
    ck_assert(!resume_before_unknown(&f, &ev));
    f.flags = FILTER_FLAGS_SOME;
    /* not on flags, or no flag record */
    free(ev.channel);
    ev.channel = strdup("chat");
    ck_assert(!resume_before_unknown(&f, &ev));
    ev_free(&ev);
    flag_free(&fl);
    gwt_msg_ev(&ev, "flags", 3);
    ck_assert(!resume_before_unknown(&f, &ev));
    ev_free(&ev);
    filter_free(&g);
    filter_free(&f);
}
END_TEST

static outq_ev_t *flag_oev(const char *key, uint64_t id, uint64_t off, const char *tag)
{
    flag_t f;
    ev_t ev;
    gwt_flag(&f, key, id, off, tag, NULL);
    gwt_flag_ev(&ev, EV_FLAG_UPDATED, &f, off);
    flag_free(&f);
    outq_ev_t *e = outq_ev_new(&ev, HEAD);
    ck_assert_ptr_nonnull(e);
    return e;
}

START_TEST(replay_prev_earlier_event_of_same_flag)
{
    gw_resume_t *r = gw_resume_new(1);
    ev_t ev;
    r->cap = 8;
    r->evs = calloc(r->cap, sizeof *r->evs);
    r->evs[r->nevs++] = flag_oev("a", 1, 1, "beta");     /* 0 */
    r->evs[r->nevs++] = flag_oev("b", 2, 2, "beta");     /* 1 */
    gwt_msg_ev(&ev, "chat", 1);
    r->evs[r->nevs++] = outq_ev_new(&ev, HEAD);          /* 2: a message */
    r->evs[r->nevs++] = outq_ev_new_raw(": x\n\n", 5, HEAD); /* 3: raw, no event */
    r->evs[r->nevs++] = flag_oev("a", 1, 3, "alpha");    /* 4 */
    r->evs[r->nevs++] = flag_oev("a", 1, 4, NULL);       /* 5 */
    /* a flag event on another channel with the same id is not the flag */
    {
        flag_t f;
        gwt_flag(&f, "c", 3, 1, "zeta", NULL);
        gwt_flag_ev(&ev, EV_FLAG_UPDATED, &f, 9);
        free(ev.channel);
        ev.channel = strdup("other");
        flag_free(&f);
        r->evs[r->nevs++] = outq_ev_new(&ev, HEAD);      /* 6 */
    }
    r->evs[r->nevs++] = flag_oev("c", 3, 5, NULL);       /* 7 */

    ck_assert_ptr_null(resume_replay_prev(r, 0, 1));     /* first change in the gap */
    const flag_t *p = resume_replay_prev(r, 4, 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->version, 1);                    /* the nearest earlier: event 0 */
    ck_assert_uint_eq(p->ntags, 1);
    ck_assert_str_eq(p->tags[0], "beta");
    p = resume_replay_prev(r, 5, 1);                     /* event 4 left it with alpha */
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->version, 3);
    ck_assert_str_eq(p->tags[0], "alpha");
    p = resume_replay_prev(r, 8, 1);                     /* past the end: the last one */
    ck_assert_uint_eq(p->version, 4);
    p = resume_replay_prev(r, 5, 2);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->key, "b");
    ck_assert_ptr_null(resume_replay_prev(r, 1, 2));     /* not before itself */
    ck_assert_ptr_null(resume_replay_prev(r, 7, 3));     /* only the "other" channel's */
    ck_assert_ptr_null(resume_replay_prev(r, 5, 99));
    gw_resume_free(r);                                   /* drops the events */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, push_copies_and_initialises);
    tcase_add_test(tc, push_grows_past_capacity);
    tcase_add_test(tc, has_exact_names);
    tcase_add_test(tc, add_only_wanted_and_new);
    tcase_add_test(tc, add_starts_new_channels_only);
    tcase_add_test(tc, dup_same_channel_epoch_up_to_last);
    tcase_add_test(tc, floor_left_per_channel_and_freed);
    tcase_add_test(tc, floor_of_not_ok_entries_freed_at_first_event);
    tcase_add_test(tc, floor_next_merges_old_positions);
    tcase_add_test(tc, floor_next_nothing_ok);
    tcase_add_test(tc, floor_next_many_old_channels);
    tcase_add_test(tc, starts_set_find_covers);
    tcase_add_test(tc, starts_prune_and_reset);
    tcase_add_test(tc, streamed_since_channels_started_before);
    tcase_add_test(tc, before_unknown_only_for_tag_filters);
    tcase_add_test(tc, replay_prev_earlier_event_of_same_flag);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
