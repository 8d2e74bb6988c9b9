/* The reorder buffer (PROTOCOL.md §8.1): a receiver's flow datagrams put back into the order of
 * their DATA counters, each held at most a gap timeout that the caller derives from the paths'
 * delay difference, so that TCP carried inside sees one path with the sum of the paths' capacity
 * rather than their reordering.
 *
 * One queue per session (by index), all sharing one pool of entries allocated at start, each
 * holding a datagram of at most MPT_REORDER_CHUNK bytes; nothing is allocated per datagram. The
 * counters that carry no flow data (probes, acks, status, pieces not yet complete) are known from
 * the session's replay window, which records every counter that authenticated: a queue waits only
 * for counters that have not arrived at all, and for those no longer than the gap timeout. */
#ifndef MPT_REORDER_H
#define MPT_REORDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/replay.h"

#define MPT_REORDER_CHUNK 1472 /* largest datagram held (a 1500-byte path's UDP payload) */
#define MPT_REORDER_NONE UINT32_MAX
#define MPT_REORDER_GIVEN 8 /* the last gaps given up, to tell how late their datagrams came */

/* What mpt_reorder_arrive tells the caller to do with the datagram. */
enum mpt_reorder_verdict {
    MPT_REORDER_NOW = 0, /* deliver it now, then pop what it released */
    MPT_REORDER_HELD,    /* copied into the buffer: pop what may go */
};

struct mpt_reorder_ent {
    uint64_t ctr;         /* the DATA counter it came with */
    uint64_t ready_us;    /* it goes no earlier (its path's delay made up to the slowest's) */
    uint64_t deadline_us; /* the datagrams missing before it are given up then */
    uint32_t prev, next;
    uint32_t len;
    uint32_t tag, tag2; /* the caller's: where it goes (a flow's slot and id) */
    const uint8_t *data;
};

struct mpt_reorder_q {
    uint64_t sid;  /* the session whose counters it orders; 0 = none */
    uint64_t next; /* every counter below was delivered, carried no flow data, or was given up */
    uint32_t head, tail, n;
    uint64_t due_us; /* when the first held datagram may go, or its gap be given up */
    uint64_t extra_us, extra_at_us; /* waits lengthened by datagrams that came late; when */
    struct {
        uint64_t from, to, at_us; /* counters from..to-1 given up at at_us */
    } given[MPT_REORDER_GIVEN];
    unsigned given_next;
};

struct mpt_reorder_stats {
    uint64_t held;     /* datagrams that waited for an earlier one */
    uint64_t gaps;     /* gaps given up after the timeout (lost, or later than it) */
    uint64_t late;     /* datagrams that came after their gap was given up (delivered at once) */
    uint64_t overflow; /* datagrams not held: too large, or no free entry (delivered at once) */
};

struct mpt_reorder {
    struct mpt_reorder_q *q;
    unsigned nq;
    struct mpt_reorder_ent *e;
    uint8_t *buf;
    unsigned nent;
    uint32_t free;   /* free entries, linked through next */
    uint32_t popped; /* the entry mpt_reorder_pop returned last: freed at the next call */
    unsigned used;
    struct mpt_reorder_stats st;
};

/* Allocates nq queues and nent entries of MPT_REORDER_CHUNK bytes. Returns 0, -EINVAL or
 * -ENOMEM. */
int mpt_reorder_init(struct mpt_reorder *r, unsigned nq, unsigned nent);
void mpt_reorder_free(struct mpt_reorder *r);

/* Queue qi orders session sid from counter 1 on; what it held is dropped (call mpt_reorder_pop
 * with flush first to deliver it instead). */
void mpt_reorder_reset(struct mpt_reorder *r, unsigned qi, uint64_t sid);

/* A flow datagram of session queue qi that authenticated with counter ctr (already recorded in
 * w, the session's window) at now. Either it is to be delivered at once (its turn with no hold,
 * late, or not holdable), or it is copied and held with tag and tag2: for hold_us at least
 * (mpt_reorder_hold), and the counters missing before it waited for at most wait_us
 * (mpt_reorder_wait). A datagram that comes after its gap was given up
 * lengthens the queue's waits (extra_us) by half and 2 ms, and to at least a quarter more than
 * it was late by; they halve again every 4 s nothing comes late. */
enum mpt_reorder_verdict mpt_reorder_arrive(struct mpt_reorder *r, unsigned qi,
                                            const struct mpt_window *w, uint64_t ctr, uint64_t now,
                                            uint64_t wait_us, uint64_t hold_us, const uint8_t *data,
                                            size_t len, uint32_t tag, uint32_t tag2);

/* The next held datagram of queue qi that may go now: its hold is over, and its turn has come
 * (every counter before it arrived) or its wait is over and the counters missing before it are
 * given up. NULL if none.
 * With flush, every held datagram goes, in order. The entry stays valid until the next call on r.
 * Call after every datagram of the session that authenticated, and at the deadline. */
const struct mpt_reorder_ent *mpt_reorder_pop(struct mpt_reorder *r, unsigned qi,
                                              const struct mpt_window *w, uint64_t now, int flush);

/* When queue qi's first held datagram may go or its gap be given up, as of the last call of
 * mpt_reorder_pop (or earlier: a datagram held since), UINT64_MAX if nothing is held. */
uint64_t mpt_reorder_deadline(const struct mpt_reorder *r, unsigned qi);

/* A path's one-way delay as its receiver sees it (§8.1): the arrival time of a probe (or its
 * ack) less the sender's clock when it left, the last MPT_OWD_SAMPLES of them. The two clocks
 * differ by an unknown offset, the same for every path between the two ends, so only the
 * differences between paths mean anything; and since each sample is taken at the receiving end,
 * a queue that grows on one direction of a path shows there at once, where the round-trip time
 * splits it between the directions and smooths it over seconds. */
#define MPT_OWD_SAMPLES 4
#define MPT_OWD_MIN_US 10000000ULL /* the lowest sample is forgotten after this long */
struct mpt_owd {
    int64_t s[MPT_OWD_SAMPLES];
    unsigned n, next;
    int64_t min; /* the lowest sample lately: the path's delay without a queue */
    uint64_t min_at_us;
};

/* Forgets every sample (a new session: the sender's clock may be another). */
void mpt_owd_reset(struct mpt_owd *o);

/* A sample: sent at sent_us by the sender's clock, arrived at now_us by ours. */
void mpt_owd_add(struct mpt_owd *o, uint64_t now_us, uint64_t sent_us);

/* The delays of the n paths of mask to wait by, in µs on a scale common to them: hi[i] the
 * longest of path i's recent samples, lo[i] the shortest, base[i] the lowest of the last
 * MPT_OWD_MIN_US. From the one-way samples owd[i] if every path of mask has some, else half the
 * smoothed round-trip times srtt_us[i] for all three (0 = not measured: that path has no
 * figure). Returns the mask of the paths given a figure. */
uint32_t mpt_reorder_delays(const struct mpt_owd *const *owd, const uint64_t *srtt_us,
                            uint32_t mask, unsigned n, int64_t *hi, int64_t *lo, int64_t *base);

/* How long the counters missing before a datagram that came over path `path` are waited for:
 * the longest delay among the paths of `known` (figures of mpt_reorder_delays) less this path's
 * shortest, since nothing sent before it can come later than over the slowest path (a path with
 * no figure counts as the fastest); plus extra_us and MPT_REORDER_MARGIN_US; at most cap_us. */
#define MPT_REORDER_MARGIN_US 5000
uint64_t mpt_reorder_wait(const int64_t *hi, const int64_t *lo, uint32_t known, unsigned n,
                          unsigned path, uint64_t extra_us, uint64_t cap_us);

/* How long a datagram that came over path `path` is held, whatever came before it: what the
 * slowest path of `known` takes longer than this one without a queue (base[] of
 * mpt_reorder_delays), so that every datagram takes about as long as over the slowest path, and
 * TCP carried inside sees one round-trip time rather than one per path (whose jumps end its slow
 * start early, at a fraction of the paths' capacity); at most cap_us; 0 for a path with no
 * figure. Queues are left to the wait: holding for them would lengthen every datagram's trip by
 * the deepest queue. */
uint64_t mpt_reorder_hold(const int64_t *base, uint32_t known, unsigned n, unsigned path,
                          uint64_t cap_us);

/* Both for a datagram that came over path `path`, from the paths of mask (mpt_reorder_delays):
 * its hold in *hold_us (mpt_reorder_hold) and, returned, its gap wait (mpt_reorder_wait). */
uint64_t mpt_reorder_times(const struct mpt_owd *const *owd, const uint64_t *srtt_us, uint32_t mask,
                           unsigned n, unsigned path, uint64_t extra_us, uint64_t cap_us,
                           uint64_t *hold_us);

#endif
