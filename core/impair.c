#include "core/impair.h"

#include <errno.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void mpt_rng_seed(struct mpt_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed;

    /* Mix the stream in through one splitmix round, so that streams of one seed do not share
     * state words. */
    x ^= splitmix64(&(uint64_t){stream ^ 0x6a09e667f3bcc909ULL});
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* xoshiro's only bad state is all zeros: splitmix64 cannot give four zero words in a row,
     * but be explicit about it. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

uint64_t mpt_rng_next(struct mpt_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mpt_rng_unit(struct mpt_rng *r)
{
    return (double)(mpt_rng_next(r) >> 11) * 0x1.0p-53;
}

/* A uniform integer in [0, n) from 64 random bits (Lemire's multiply-shift; the bias is below
 * n / 2^64, far under anything a test could measure). */
static uint64_t uniform_below(uint64_t bits, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)bits * n) >> 64);
}

static int prob_ok(double p)
{
    return p >= 0.0 && p <= 1.0; /* false for NaN */
}

int mpt_impair_params_check(const struct mpt_impair_params *p)
{
    if (!prob_ok(p->loss) || !prob_ok(p->duplicate) || !prob_ok(p->reorder) || !prob_ok(p->corrupt))
        return -EINVAL;
    return 0;
}

int mpt_impair_params_none(const struct mpt_impair_params *p)
{
    return p->loss == 0.0 && p->duplicate == 0.0 && p->reorder == 0.0 && p->corrupt == 0.0 &&
           p->delay_us == 0 && p->jitter_us == 0;
}

int mpt_impair_init(struct mpt_impair *im, const struct mpt_impair_params *p, uint64_t seed,
                    uint64_t stream)
{
    memset(im, 0, sizeof(*im));
    if (mpt_impair_params_check(p) != 0)
        return -EINVAL;
    im->p = *p;
    if (!im->p.reorder_extra_us)
        im->p.reorder_extra_us = MPT_IMPAIR_REORDER_US;
    im->passthrough = mpt_impair_params_none(p);
    mpt_rng_seed(&im->rng, seed, stream);
    return 0;
}

void mpt_impair_set_down(struct mpt_impair *im, int down)
{
    im->down = down ? 1 : 0;
}

/* Picks 1..3 distinct bit positions in a datagram of nbits bits from one random word. */
static void pick_flips(struct mpt_impair_copy *c, uint64_t w, uint64_t nbits)
{
    uint64_t x = w;
    unsigned want = 1 + (unsigned)uniform_below(w, MPT_IMPAIR_MAX_FLIPS);

    c->nflips = 0;
    while (c->nflips < want && c->nflips < nbits) {
        uint32_t pos = (uint32_t)uniform_below(splitmix64(&x), nbits);
        /* Two flips of one bit would cancel: move to the next free bit. */
        for (unsigned k = 0; k < c->nflips;) {
            if (c->flip[k] == pos) {
                pos = (uint32_t)((pos + 1) % nbits);
                k = 0;
            } else {
                k++;
            }
        }
        c->flip[c->nflips++] = pos;
    }
}

void mpt_impair_decide(struct mpt_impair *im, uint64_t now_us, size_t len,
                       struct mpt_impair_verdict *v)
{
    const struct mpt_impair_params *p = &im->p;
    double u_loss, u_dup, u_reorder, u_corrupt[MPT_IMPAIR_MAX_COPIES];
    uint64_t w_jitter, w_flip[MPT_IMPAIR_MAX_COPIES];
    int64_t t;
    uint64_t at;

    im->stats.received++;
    memset(v, 0, sizeof(*v));
    if (im->down) {
        im->stats.dropped++;
        return;
    }
    if (im->passthrough) {
        v->ncopies = 1;
        v->copy[0].send_at_us = now_us;
        im->stats.forwarded++;
        return;
    }
    /* A fixed number of draws per datagram, whatever the parameters (see impair.h). */
    u_loss = mpt_rng_unit(&im->rng);
    u_dup = mpt_rng_unit(&im->rng);
    u_reorder = mpt_rng_unit(&im->rng);
    w_jitter = mpt_rng_next(&im->rng);
    for (int i = 0; i < MPT_IMPAIR_MAX_COPIES; i++) {
        u_corrupt[i] = mpt_rng_unit(&im->rng);
        w_flip[i] = mpt_rng_next(&im->rng);
    }

    if (u_loss < p->loss) {
        im->stats.dropped++;
        return;
    }
    t = (int64_t)now_us + p->delay_us;
    if (p->jitter_us)
        t += (int64_t)uniform_below(w_jitter, 2 * (uint64_t)p->jitter_us + 1) - p->jitter_us;
    if (t < (int64_t)now_us)
        t = (int64_t)now_us;
    at = (uint64_t)t;
    if (u_reorder < p->reorder) {
        at += p->reorder_extra_us;
        im->stats.reordered++;
    } else {
        if (at < im->last_at_us)
            at = im->last_at_us;
        im->last_at_us = at;
    }
    v->ncopies = u_dup < p->duplicate ? 2 : 1;
    if (v->ncopies == 2)
        im->stats.duplicated++;
    for (unsigned i = 0; i < v->ncopies; i++) {
        v->copy[i].send_at_us = at;
        if (len > 0 && u_corrupt[i] < p->corrupt) {
            pick_flips(&v->copy[i], w_flip[i], (uint64_t)len * 8);
            im->stats.corrupted++;
        }
    }
    im->stats.forwarded += v->ncopies;
}

void mpt_impair_apply(const struct mpt_impair_copy *c, uint8_t *buf, size_t len)
{
    for (unsigned i = 0; i < c->nflips; i++) {
        uint32_t pos = c->flip[i];
        if (pos / 8 < len)
            buf[pos / 8] ^= (uint8_t)(1u << (pos % 8));
    }
}
