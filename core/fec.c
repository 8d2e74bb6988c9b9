#include "core/fec.h"

#include <errno.h>
#include <isa-l/erasure_code.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/wire.h"

int mpt_fec_protects(const uint8_t *inner, size_t len)
{
    return len >= 1 && len <= MPT_FEC_SRC_MAX &&
           (inner[0] == MPT_INNER_FLOW || inner[0] == MPT_INNER_PIECE);
}

/* The code itself: ISA-L's AVX2 functions where the CPU has them, then vzeroupper. ISA-L's
 * assembly returns with the upper halves of the vector registers dirty, and libsodium's AES-GCM is
 * legacy SSE code: until the next vzeroupper every one of its instructions paid for a merge with
 * that state, which made the AEAD of every datagram about 1.4 times slower in fec mode than in
 * redundant (mpt-coreloop, see PROTOCOL.md §11). With the state cleared, ISA-L's AVX-512 functions
 * (which its dispatcher would pick) measured no faster here, and lower the clock of some cores. */
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx"))) static void clear_upper(void)
{
    __builtin_ia32_vzeroupper();
}

static void encode(int len, int k, int rows, uint8_t *tbls, uint8_t **data, uint8_t **code)
{
    if (__builtin_cpu_supports("avx2")) {
        ec_encode_data_avx2(len, k, rows, tbls, data, code);
        clear_upper();
    } else {
        ec_encode_data(len, k, rows, tbls, data, code);
        if (__builtin_cpu_supports("avx"))
            clear_upper();
    }
}
#else
static void encode(int len, int k, int rows, uint8_t *tbls, uint8_t **data, uint8_t **code)
{
    ec_encode_data(len, k, rows, tbls, data, code);
}
#endif

/* dist[0..n] of the number lost among n symbols each lost with probability p, convolved into
 * acc[0..*top] (top grows by n). */
static void conv_binomial(double *acc, unsigned *top, unsigned n, double p)
{
    double b[MPT_FEC_K_MAX + 1], out[MPT_FEC_K_MAX + 1];
    double q = 1.0 - p;

    if (!n)
        return;
    b[0] = 1.0;
    for (unsigned i = 0; i < n; i++) { /* b <- b * (q + p x) */
        b[i + 1] = b[i] * p;
        for (unsigned j = i; j > 0; j--)
            b[j] = b[j] * q + b[j - 1] * p;
        b[0] *= q;
    }
    memset(out, 0, sizeof(out));
    for (unsigned i = 0; i <= *top; i++)
        for (unsigned j = 0; j <= n && i + j <= MPT_FEC_K_MAX; j++)
            out[i + j] += acc[i] * b[j];
    *top += n;
    if (*top > MPT_FEC_K_MAX)
        *top = MPT_FEC_K_MAX;
    memcpy(acc, out, sizeof(out));
}

static void lost_dist(double *d, unsigned *top, const unsigned *cnt, const double *loss, unsigned n)
{
    memset(d, 0, sizeof(double) * (MPT_FEC_K_MAX + 1));
    d[0] = 1.0;
    *top = 0;
    for (unsigned i = 0; i < n; i++)
        conv_binomial(d, top, cnt[i], loss[i] < 0 ? 0 : loss[i] > 1 ? 1 : loss[i]);
}

double mpt_fec_residual(const unsigned *src, const unsigned *rep, const double *loss, unsigned n)
{
    double ds[MPT_FEC_K_MAX + 1], dr[MPT_FEC_K_MAX + 1], tail[MPT_FEC_K_MAX + 2], res = 0;
    unsigned ts, tr, k = 0, m = 0;

    for (unsigned i = 0; i < n; i++) {
        k += src[i];
        m += rep[i];
    }
    if (!k)
        return 0;
    lost_dist(ds, &ts, src, loss, n);
    lost_dist(dr, &tr, rep, loss, n);
    /* tail[x] = P(repairs lost >= x) */
    tail[tr + 1] = 0;
    for (unsigned x = tr + 1; x-- > 0;)
        tail[x] = tail[x + 1] + dr[x];
    /* L sources lost are rebuilt iff at least L repairs arrive: m - R >= L. */
    for (unsigned l = 1; l <= ts; l++) {
        unsigned need = m >= l ? m - l + 1 : 0; /* R >= need fails */
        double fail = need > tr ? 0 : tail[need];
        res += ds[l] * fail * l;
    }
    return res / k;
}

/* Spreads total over the paths of mask in proportion to w (largest remainder). */
static void share(unsigned total, const unsigned *w, uint32_t mask, unsigned n, unsigned *out)
{
    uint64_t sum = 0, given = 0;

    for (unsigned i = 0; i < n; i++) {
        out[i] = 0;
        if (mask & (1u << i))
            sum += w[i];
    }
    if (!sum)
        return;
    for (unsigned i = 0; i < n; i++)
        if (mask & (1u << i)) {
            out[i] = (unsigned)(total * (uint64_t)w[i] / sum);
            given += out[i];
        }
    while (given < total) {
        unsigned best = n;
        double bestr = -1;
        for (unsigned i = 0; i < n; i++) {
            if (!(mask & (1u << i)))
                continue;
            double r = (double)total * w[i] / (double)sum - out[i];
            if (r > bestr) {
                bestr = r;
                best = i;
            }
        }
        out[best]++;
        given++;
    }
}

unsigned mpt_fec_plan(unsigned k, const double *loss, const unsigned *weight, uint32_t mask,
                      unsigned npaths, double target, unsigned rep_share[MPT_FEC_PATHS])
{
    unsigned src[MPT_FEC_PATHS], ones[MPT_FEC_PATHS], m;

    if (npaths > MPT_FEC_PATHS)
        npaths = MPT_FEC_PATHS;
    for (unsigned i = 0; i < npaths; i++)
        ones[i] = 1;
    share(k, weight, mask, npaths, src);
    for (m = 0; m <= MPT_FEC_M_MAX; m++) {
        share(m, ones, mask, npaths, rep_share);
        if (mpt_fec_residual(src, rep_share, loss, npaths) <= target)
            break;
    }
    if (m > MPT_FEC_M_MAX) {
        m = MPT_FEC_M_MAX;
        share(m, ones, mask, npaths, rep_share);
    }
    return m;
}

/* Encoder */

int mpt_fec_tx_init(struct mpt_fec_tx *t)
{
    memset(t, 0, sizeof(*t));
    t->sym = calloc(MPT_FEC_K_MAX, MPT_FEC_SYM_MAX);
    t->rep = calloc(MPT_FEC_M_MAX, MPT_FEC_SYM_MAX);
    t->tbls = malloc(32 * MPT_FEC_K_MAX * MPT_FEC_M_MAX);
    if (!t->sym || !t->rep || !t->tbls) {
        mpt_fec_tx_free(t);
        return -ENOMEM;
    }
    return 0;
}

void mpt_fec_tx_free(struct mpt_fec_tx *t)
{
    free(t->sym);
    free(t->rep);
    free(t->tbls);
    memset(t, 0, sizeof(*t));
}

void mpt_fec_tx_reset(struct mpt_fec_tx *t)
{
    t->n = 0;
}

int mpt_fec_tx_fits(const struct mpt_fec_tx *t, uint64_t counter, unsigned k)
{
    return !t->n || (t->n < k && t->n < MPT_FEC_K_MAX && counter > t->first &&
                     counter - t->first < MPT_FEC_SPAN);
}

unsigned mpt_fec_tx_add(struct mpt_fec_tx *t, uint64_t counter, const uint8_t *inner, size_t len,
                        uint64_t now)
{
    uint8_t *s;
    uint64_t off;

    if (!t->n) {
        t->first = counter;
        t->opened_us = now;
        t->sym_len = 0;
        memset(t->mask, 0, sizeof(t->mask));
    }
    off = counter - t->first;
    t->mask[off / 8] |= (uint8_t)(1u << (off % 8));
    s = t->sym + (size_t)t->n * MPT_FEC_SYM_MAX;
    mpt_put16(s, (uint16_t)len);
    memcpy(s + 2, inner, len);
    if (len + 2 > t->sym_len)
        t->sym_len = (unsigned)len + 2;
    t->n++;
    return t->n;
}

uint64_t mpt_fec_tx_deadline(const struct mpt_fec_tx *t)
{
    return t->n ? t->opened_us + MPT_FEC_BLOCK_US : UINT64_MAX;
}

/* ISA-L's tables for the repair rows of a (k, m) code; rows k.. of the Cauchy matrix. */
static void code_tables(unsigned k, unsigned m, uint8_t *tbls)
{
    uint8_t a[(MPT_FEC_K_MAX + MPT_FEC_M_MAX) * MPT_FEC_K_MAX];

    gf_gen_cauchy1_matrix(a, (int)(k + m), (int)k);
    ec_init_tables((int)k, (int)m, a + k * k, tbls);
}

unsigned mpt_fec_tx_close(struct mpt_fec_tx *t, unsigned m)
{
    uint8_t *data[MPT_FEC_K_MAX], *code[MPT_FEC_M_MAX];
    unsigned k = t->n;

    if (!k || !m)
        return t->n = 0, 0;
    if (m > MPT_FEC_M_MAX)
        m = MPT_FEC_M_MAX;
    if (k != t->tk || m != t->tm) {
        code_tables(k, m, t->tbls);
        t->tk = k;
        t->tm = m;
    }
    for (unsigned i = 0; i < k; i++) {
        uint8_t *s = t->sym + (size_t)i * MPT_FEC_SYM_MAX;
        size_t used = 2 + mpt_get16(s);
        memset(s + used, 0, t->sym_len - used);
        data[i] = s;
    }
    for (unsigned j = 0; j < m; j++)
        code[j] = t->rep + (size_t)j * MPT_FEC_SYM_MAX;
    encode((int)t->sym_len, (int)k, (int)m, t->tbls, data, code);
    t->closed_k = k;
    t->closed_m = m;
    t->closed_first = t->first;
    t->closed_len = t->sym_len;
    memcpy(t->closed_mask, t->mask, sizeof(t->mask));
    t->n = 0;
    t->blocks++;
    t->repairs += m;
    return m;
}

size_t mpt_fec_tx_repair(const struct mpt_fec_tx *t, unsigned j, uint8_t *out)
{
    out[0] = MPT_INNER_REPAIR;
    out[1] = (uint8_t)j;
    out[2] = (uint8_t)t->closed_k;
    out[3] = (uint8_t)t->closed_m;
    mpt_put64(out + 4, t->closed_first);
    memcpy(out + 12, t->closed_mask, 16);
    mpt_put16(out + 28, (uint16_t)t->closed_len);
    mpt_put16(out + 30, 0);
    memcpy(out + MPT_REPAIR_HDR_LEN, t->rep + (size_t)j * MPT_FEC_SYM_MAX, t->closed_len);
    return MPT_REPAIR_HDR_LEN + t->closed_len;
}

/* Decoder */

_Static_assert(MPT_FEC_SRC_MAX % 64 == 0, "cache slots start on a 64-byte line");

static unsigned src_slot(const struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr)
{
    uint64_t h = (ctr + sid * 0x9e3779b97f4a7c15ULL) * 0xff51afd7ed558ccdULL;
    return (unsigned)((h >> 32) % r->nsrc);
}

static uint8_t *src_data(const struct mpt_fec_rx *r, const struct mpt_fec_src *s)
{
    return r->src_buf + (size_t)(s - r->src) * MPT_FEC_SRC_MAX;
}

/* Copies len bytes (at most MPT_FEC_SRC_MAX) into a slot of the cache, which is written for
 * every source and read only to rebuild a lost one: with streaming stores where the CPU has
 * them, so that the copy neither waits for the slot's old lines nor evicts the lines the
 * datagrams and the AEAD work on. Up to 31 bytes after len are overwritten, within the slot. */
#if defined(__x86_64__) || defined(__i386__)
/* 32 bytes at a time where the CPU has AVX (half the instructions), then vzeroupper (see
 * clear_upper). A slot's length, MPT_FEC_SRC_MAX, is a multiple of 32. */
__attribute__((target("avx"))) static void src_copy_avx(uint8_t *dst, const uint8_t *src,
                                                        size_t len)
{
    size_t i = 0;

    for (; i + 32 <= len; i += 32)
        _mm256_stream_si256((__m256i *)(void *)(dst + i),
                            _mm256_loadu_si256((const __m256i *)(const void *)(src + i)));
    if (i < len) {
        uint8_t tail[32] = {0};
        memcpy(tail, src + i, len - i);
        _mm256_stream_si256((__m256i *)(void *)(dst + i),
                            _mm256_loadu_si256((const __m256i *)(const void *)tail));
    }
    _mm256_zeroupper();
}
#endif

static void src_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx")) {
        src_copy_avx(dst, src, len);
        return;
    }
#endif
#if defined(__SSE2__)
    size_t i = 0;

    for (; i + 16 <= len; i += 16)
        _mm_stream_si128((__m128i *)(void *)(dst + i),
                         _mm_loadu_si128((const __m128i *)(const void *)(src + i)));
    if (i < len) {
        uint8_t tail[16] = {0};
        memcpy(tail, src + i, len - i);
        _mm_stream_si128((__m128i *)(void *)(dst + i),
                         _mm_loadu_si128((const __m128i *)(const void *)tail));
    }
#else
    memcpy(dst, src, len);
#endif
}

static const struct mpt_fec_src *src_find(const struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr)
{
    const struct mpt_fec_src *s = &r->src[src_slot(r, sid, ctr)];
    return s->sid == sid && s->ctr == ctr && s->len ? s : NULL;
}

static void src_put(struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr, const uint8_t *inner,
                    size_t len, uint64_t now)
{
    struct mpt_fec_src *s = &r->src[src_slot(r, sid, ctr)];

    s->sid = sid;
    s->ctr = ctr;
    s->at_us = now;
    s->len = (uint16_t)len;
    s->rebuilt = 0;
    src_copy(src_data(r, s), inner, len);
}

int mpt_fec_rx_late(struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr)
{
    struct mpt_fec_src *s = &r->src[src_slot(r, sid, ctr)];

    if (s->sid != sid || s->ctr != ctr || !s->len || !s->rebuilt)
        return 0;
    s->rebuilt = 0;
    return 1;
}

static int mask_bit(const uint8_t *mask, unsigned i)
{
    return mask[i / 8] >> (i % 8) & 1;
}

int mpt_fec_rx_init(struct mpt_fec_rx *r, unsigned nsrc, unsigned npend)
{
    memset(r, 0, sizeof(*r));
    if (!nsrc || !npend)
        return -EINVAL;
    r->src = calloc(nsrc, sizeof(*r->src));
    /* 64-byte lines: MPT_FEC_SRC_MAX is a multiple of 64, so every slot starts on one. */
    r->src_buf = aligned_alloc(64, (size_t)nsrc * MPT_FEC_SRC_MAX);
    r->pend = calloc(npend, sizeof(*r->pend));
    r->scratch = malloc((size_t)(MPT_FEC_K_MAX + MPT_FEC_M_MAX) * MPT_FEC_SYM_MAX);
    r->tbls = malloc(32 * MPT_FEC_K_MAX * MPT_FEC_M_MAX);
    r->cauchy = malloc((size_t)(MPT_FEC_K_MAX + MPT_FEC_M_MAX) * MPT_FEC_K_MAX);
    if (!r->src || !r->src_buf || !r->pend || !r->scratch || !r->tbls || !r->cauchy)
        goto fail;
    r->nsrc = nsrc;
    r->npend = npend;
    r->ready_us = UINT64_MAX;
    for (unsigned i = 0; i < npend; i++)
        if (!(r->pend[i].rep = malloc((size_t)MPT_FEC_M_MAX * MPT_FEC_SYM_MAX)))
            goto fail;
    return 0;
fail:
    mpt_fec_rx_free(r);
    return -ENOMEM;
}

void mpt_fec_rx_free(struct mpt_fec_rx *r)
{
    if (r->pend)
        for (unsigned i = 0; i < r->npend; i++)
            free(r->pend[i].rep);
    free(r->src);
    free(r->src_buf);
    free(r->pend);
    free(r->scratch);
    free(r->tbls);
    free(r->cauchy);
    memset(r, 0, sizeof(*r));
}

static int done_has(const struct mpt_fec_rx *r, uint64_t sid, uint64_t first)
{
    for (unsigned i = 0; i < MPT_FEC_DONE; i++)
        if (r->done_first[i] == first && r->done_sid[i] == sid)
            return 1;
    return 0;
}

/* Remembers a block as complete: its further repairs are dropped without work. */
static void done_put(struct mpt_fec_rx *r, uint64_t sid, uint64_t first)
{
    r->done_sid[r->done_pos] = sid;
    r->done_first[r->done_pos] = first;
    r->done_pos = (r->done_pos + 1) % MPT_FEC_DONE;
}

/* Frees a pending block; counts its sources still missing as given up when `give_up`. */
static void pend_free(struct mpt_fec_rx *r, struct mpt_fec_pend *p, int give_up)
{
    unsigned n = 0;

    if (give_up)
        for (unsigned i = 0; i < MPT_FEC_SPAN; i++)
            if (mask_bit(p->mask, i) && !src_find(r, p->sid, p->first + i))
                n++;
    r->given_up += n;
    if (n && r->on_give_up)
        r->on_give_up(r->arg, p->sid, n);
    done_put(r, p->sid, p->first);
    p->until_us = 0;
    r->busy--;
}

/* The k sources of a block as the cache holds them (have[], NULL where missing, and the missing
 * ones' index and counter); returns how many are missing, or -1 if a source held is longer than
 * the block's symbols allow (not what the sender coded: the block cannot be used). */
static int block_scan(const struct mpt_fec_rx *r, uint64_t sid, uint64_t first, const uint8_t *mask,
                      unsigned k, unsigned S, const struct mpt_fec_src **have, uint64_t *miss_ctr,
                      unsigned *miss_idx)
{
    unsigned nmiss = 0, idx = 0;

    for (unsigned i = 0; i < MPT_FEC_SPAN && idx < k; i++) {
        if (!mask_bit(mask, i))
            continue;
        have[idx] = src_find(r, sid, first + i);
        if (!have[idx]) {
            miss_ctr[nmiss] = first + i;
            miss_idx[nmiss++] = idx;
        } else if (have[idx]->len + 2u > S) {
            return -1;
        }
        idx++;
    }
    return (int)nmiss;
}

/* The deadline of each missing source of a scan (block_scan's have[] and miss_idx[]): wait_us
 * after the receiver first had evidence that it is missing or late, the arrival of a later source
 * of the block or of its first repair (seen_us). Sources that came after that repair do not move
 * it (they came later). Returns the latest. */
static uint64_t miss_deadlines(const struct mpt_fec_src *const *have, const unsigned *miss_idx,
                               unsigned nmiss, unsigned k, uint64_t seen_us, uint64_t wait_us,
                               uint64_t *until)
{
    uint64_t ev = seen_us, last = 0;
    unsigned x = nmiss;

    for (unsigned i = k; i-- > 0 && x > 0;) {
        if (x > 0 && miss_idx[x - 1] == i) {
            until[--x] = ev + wait_us;
            if (until[x] > last)
                last = until[x];
        } else if (have[i] && have[i]->at_us < ev) {
            ev = have[i]->at_us;
        }
    }
    return last;
}

/* Rebuilds the block's missing sources if it has k symbols; returns 1 when the block is done
 * (decoded, or nothing was missing). With e sources missing and the first e repairs held, only
 * the e x e system of the missing sources in those repairs is inverted (the sources held are
 * known): O(e^3 + e^2 k) products, where inverting the whole k x k matrix of the symbols used
 * took 2 k^3 (over a millisecond for k = 64, for every block that lost a source). */
static int pend_try(struct mpt_fec_rx *r, struct mpt_fec_pend *p, uint64_t now)
{
    uint8_t c[MPT_FEC_M_MAX * MPT_FEC_M_MAX], ci[MPT_FEC_M_MAX * MPT_FEC_M_MAX];
    uint8_t dm[MPT_FEC_M_MAX * MPT_FEC_K_MAX];
    uint8_t *avail[MPT_FEC_K_MAX], *rec[MPT_FEC_M_MAX];
    uint64_t miss_ctr[MPT_FEC_K_MAX], until[MPT_FEC_K_MAX];
    unsigned miss_idx[MPT_FEC_K_MAX], held[MPT_FEC_K_MAX], rows[MPT_FEC_M_MAX];
    unsigned e, nav = 0, nheld, late = 0, k = p->k, S = p->sym_len;
    uint8_t *sc = r->scratch;
    const uint8_t *a;
    const struct mpt_fec_src *have[MPT_FEC_K_MAX];
    int scan = block_scan(r, p->sid, p->first, p->mask, k, S, have, miss_ctr, miss_idx);

    if (scan <= 0)
        return 1; /* nothing missing, or the block cannot be used */
    e = (unsigned)scan;
    if (e > p->m || (unsigned)__builtin_popcount(p->have_rep) < e)
        return 0;
    miss_deadlines(have, miss_idx, e, k, p->seen_us, p->wait_us, until);
    /* Decodable, but the missing sources may only be behind the repairs (read from another
     * socket after them, or on a slower path): held for them hold_us first, though not past the
     * first deadline still ahead (a source rebuilt after its own is not delivered). */
    if (r->hold_us) {
        if (!p->ready_us) {
            p->ready_us = now + r->hold_us;
            for (unsigned x = 0; x < e; x++)
                if (until[x] >= now && until[x] < p->ready_us)
                    p->ready_us = until[x];
            if (p->ready_us < r->ready_us)
                r->ready_us = p->ready_us;
        }
        if (now < p->ready_us)
            return 0;
    }
    /* The inputs: the sources held, as symbols (length, message, zero padding), then e repairs. */
    for (unsigned i = 0; i < k; i++) {
        uint8_t *d = sc + (size_t)nav * MPT_FEC_SYM_MAX;
        if (!have[i])
            continue;
        mpt_put16(d, have[i]->len);
        memcpy(d + 2, src_data(r, have[i]), have[i]->len);
        memset(d + 2 + have[i]->len, 0, S - 2 - have[i]->len);
        avail[nav] = d;
        held[nav++] = i;
    }
    nheld = nav;
    for (unsigned j = 0, x = 0; j < p->m && x < e; j++) {
        if (!(p->have_rep >> j & 1))
            continue;
        rows[x++] = j;
        avail[nav++] = p->rep + (size_t)j * MPT_FEC_SYM_MAX;
    }
    /* Repair j is row k + j of the Cauchy matrix (the same whatever m): rows kept for this k. */
    if (r->cauchy_k != k) {
        gf_gen_cauchy1_matrix(r->cauchy, (int)(k + MPT_FEC_M_MAX), (int)k);
        r->cauchy_k = k;
    }
    a = r->cauchy + (size_t)k * k;
    /* repair x = sum over the sources held + C s_missing, C[x][y] = a[rows[x]][miss_idx[y]]:
     * s_missing = C^-1 (repairs + the held sources' part of them). */
    for (unsigned x = 0; x < e; x++)
        for (unsigned y = 0; y < e; y++)
            c[x * e + y] = a[rows[x] * k + miss_idx[y]];
    if (gf_invert_matrix(c, ci, (int)e) < 0)
        return 1;
    for (unsigned y = 0; y < e; y++) {
        uint8_t *row = dm + (size_t)y * k;
        for (unsigned n = 0; n < nheld; n++) {
            uint8_t v = 0;
            for (unsigned x = 0; x < e; x++)
                v ^= gf_mul(ci[y * e + x], a[rows[x] * k + held[n]]);
            row[n] = v;
        }
        memcpy(row + nheld, ci + y * e, e);
        rec[y] = sc + (size_t)(MPT_FEC_K_MAX + y) * MPT_FEC_SYM_MAX;
    }
    ec_init_tables((int)k, (int)e, dm, r->tbls);
    encode((int)S, (int)k, (int)e, r->tbls, avail, rec);
    r->nout = r->outpos = 0;
    for (unsigned x = 0; x < e; x++) {
        unsigned len = mpt_get16(rec[x]);
        if (!len || len + 2 > S || !mpt_fec_protects(rec[x] + 2, len)) {
            r->malformed++;
            continue;
        }
        /* Too late to be of use: given up, and its own copy still welcome — once a datagram came
         * since its deadline (a receiver held off the CPU reads the queued ones late). */
        if (now > until[x] && r->before_us >= until[x]) {
            late++;
            continue;
        }
        r->out[r->nout].sid = p->sid;
        r->out[r->nout].ctr = miss_ctr[x];
        r->out[r->nout].len = len;
        r->out[r->nout].data = rec[x] + 2;
        r->nout++;
        r->recovered++;
        /* Kept as if it had come: a later repair of the block finds nothing missing. */
        src_put(r, p->sid, miss_ctr[x], rec[x] + 2, len, now);
        r->src[src_slot(r, p->sid, miss_ctr[x])].rebuilt = 1;
    }
    r->given_up += late;
    if (late && r->on_give_up)
        r->on_give_up(r->arg, p->sid, late);
    return 1;
}

void mpt_fec_rx_source(struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr, const uint8_t *inner,
                       size_t len, uint64_t now)
{
    r->nout = r->outpos = 0;
    r->before_us = r->last_rx_us;
    r->last_rx_us = now;
    if (!mpt_fec_protects(inner, len))
        return;
    src_put(r, sid, ctr, inner, len, now);
    for (unsigned i = 0; r->busy && i < r->npend; i++) {
        struct mpt_fec_pend *p = &r->pend[i];
        if (!p->until_us || p->sid != sid || ctr < p->first || ctr - p->first >= MPT_FEC_SPAN ||
            !mask_bit(p->mask, (unsigned)(ctr - p->first)))
            continue;
        if (pend_try(r, p, now))
            pend_free(r, p, 0);
        return;
    }
}

int mpt_fec_rx_repair(struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr, const uint8_t *inner,
                      size_t len, uint64_t now, uint64_t wait_us)
{
    struct mpt_fec_pend *p = NULL, *free_p = NULL, *oldest = NULL;
    unsigned j, k, m, S;
    uint64_t first, span, late, lo = 0, hi = 0;

    r->nout = r->outpos = 0;
    r->before_us = r->last_rx_us;
    r->last_rx_us = now;
    if (len < MPT_REPAIR_HDR_LEN || inner[0] != MPT_INNER_REPAIR)
        goto bad;
    j = inner[1];
    k = inner[2];
    m = inner[3];
    first = mpt_get64(inner + 4);
    S = mpt_get16(inner + 28);
    if (!k || k > MPT_FEC_K_MAX || !m || m > MPT_FEC_M_MAX || j >= m || mpt_get16(inner + 30) ||
        S < 3 || S > MPT_FEC_SYM_MAX || len != MPT_REPAIR_HDR_LEN + S || !first || first >= ctr ||
        ctr - first > 65536 || !(inner[12] & 1))
        goto bad;
    for (unsigned i = 0; i < 8; i++) { /* the mask as two words: bit 8b + i is bit i of byte b */
        lo |= (uint64_t)inner[12 + i] << (8 * i);
        hi |= (uint64_t)inner[20 + i] << (8 * i);
    }
    /* Every source comes before its repairs: no bit at or after ctr - first. */
    span = ctr - first;
    late = span >= 128 ? 0 : span >= 64 ? hi >> (span - 64) : (lo >> span) | hi;
    if ((unsigned)(__builtin_popcountll(lo) + __builtin_popcountll(hi)) != k || late)
        goto bad;
    r->repairs++;
    if (done_has(r, sid, first))
        return 0;
    for (unsigned i = 0; i < r->npend; i++) {
        struct mpt_fec_pend *q = &r->pend[i];
        if (!q->until_us) {
            if (!free_p)
                free_p = q;
            continue;
        }
        if (q->sid == sid && q->first == first) {
            p = q;
            break;
        }
        if (!oldest || q->until_us < oldest->until_us)
            oldest = q;
    }
    if (p) {
        if (p->k != k || p->m != m || p->sym_len != S || memcmp(p->mask, inner + 12, 16))
            goto bad; /* disagrees with the block's first repair */
        if (p->have_rep >> j & 1)
            return 0;
    } else {
        /* The first repair of a block: nothing is held for it, nor is another block given up
         * for room, if the cache has every source (what a loss-free path costs: this scan). */
        const struct mpt_fec_src *have[MPT_FEC_K_MAX];
        uint64_t miss_ctr[MPT_FEC_K_MAX], until[MPT_FEC_K_MAX];
        unsigned miss_idx[MPT_FEC_K_MAX];
        int nmiss = block_scan(r, sid, first, inner + 12, k, S, have, miss_ctr, miss_idx);
        if (nmiss <= 0) {
            done_put(r, sid, first);
            return 0;
        }
        p = free_p;
        if (!p) {
            p = oldest;
            pend_free(r, p, 1);
        }
        p->sid = sid;
        p->first = first;
        p->k = k;
        p->m = m;
        p->sym_len = S;
        memcpy(p->mask, inner + 12, 16);
        p->have_rep = 0;
        p->ready_us = 0;
        p->seen_us = now;
        p->wait_us = wait_us;
        p->until_us = miss_deadlines(have, miss_idx, (unsigned)nmiss, k, now, wait_us, until);
        if (!p->until_us)
            p->until_us = 1;
        r->busy++;
    }
    memcpy(p->rep + (size_t)j * MPT_FEC_SYM_MAX, inner + MPT_REPAIR_HDR_LEN, S);
    p->have_rep |= 1u << j;
    if (pend_try(r, p, now))
        pend_free(r, p, 0);
    return 0;
bad:
    r->malformed++;
    return -EINVAL;
}

const struct mpt_fec_out *mpt_fec_rx_take(struct mpt_fec_rx *r)
{
    return r->outpos < r->nout ? &r->out[r->outpos++] : NULL;
}

int mpt_fec_rx_due(struct mpt_fec_rx *r, uint64_t now, uint64_t *sid)
{
    r->nout = r->outpos = 0;
    r->before_us = r->last_rx_us;
    if (r->ready_us > now)
        return 0;
    r->ready_us = UINT64_MAX;
    for (unsigned i = 0; i < r->npend; i++) {
        struct mpt_fec_pend *p = &r->pend[i];
        if (!p->until_us || !p->ready_us)
            continue;
        if (p->ready_us > now) {
            if (p->ready_us < r->ready_us)
                r->ready_us = p->ready_us;
            continue;
        }
        if (!pend_try(r, p, now)) {
            p->ready_us = 0; /* no longer decodable (a source held gave way in the cache) */
            continue;
        }
        *sid = p->sid;
        pend_free(r, p, 0);
        r->ready_us = now; /* others may be due too: looked at on the next call */
        return 1;
    }
    return 0;
}

uint64_t mpt_fec_rx_expire(struct mpt_fec_rx *r, uint64_t now)
{
    uint64_t next = UINT64_MAX, due;

    for (unsigned i = 0; i < r->npend; i++) {
        struct mpt_fec_pend *p = &r->pend[i];
        if (!p->until_us)
            continue;
        if (p->ready_us) {
            due = p->ready_us > now ? p->ready_us : now; /* decoded by mpt_fec_rx_due */
        } else if (p->until_us > now) {
            due = p->until_us;
        } else if (r->last_rx_us >= p->until_us || now - p->until_us >= p->wait_us) {
            pend_free(r, p, 1);
            continue;
        } else {
            due = now + 1000; /* once what came meanwhile is read */
        }
        if (due < next)
            next = due;
    }
    return next;
}

void mpt_fec_rx_drop(struct mpt_fec_rx *r, uint64_t sid)
{
    for (unsigned i = 0; i < r->npend; i++)
        if (r->pend[i].until_us && r->pend[i].sid == sid) {
            r->pend[i].until_us = 0;
            r->busy--;
        }
    r->nout = r->outpos = 0;
}
