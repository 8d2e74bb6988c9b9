/* Forward error correction across paths (PROTOCOL.md §11): a systematic Reed-Solomon code over
 * blocks of the plaintext inner messages of DATA datagrams, from Intel ISA-L (Cauchy matrix,
 * ec_encode_data, gf_invert_matrix). Sources are sent as they are; each closed block adds REPAIR
 * inner messages, each sealed as a DATA datagram of its own. The receiver delivers every source
 * that arrives at once and rebuilds a lost one from any k of the block's k + m symbols.
 *
 * Pure: no clock (time is an argument), no allocation after init. */
#ifndef MPT_FEC_H
#define MPT_FEC_H

#include <stddef.h>
#include <stdint.h>

#define MPT_INNER_REPAIR 8 /* §11: a repair symbol of a block of sources */

#define MPT_FEC_K_MAX 64     /* sources per block */
#define MPT_FEC_M_MAX 32     /* repairs per block */
#define MPT_FEC_SPAN 128     /* a block's sources lie within this many counters of its first */
#define MPT_FEC_SRC_MAX 1472 /* larger inner messages are not protected */
#define MPT_FEC_SYM_MAX (MPT_FEC_SRC_MAX + 2) /* a symbol: 2-byte length, message, zero padding */
#define MPT_REPAIR_HDR_LEN 32
#define MPT_REPAIR_MAX_LEN (MPT_REPAIR_HDR_LEN + MPT_FEC_SYM_MAX)
#define MPT_FEC_BLOCK_US 10000ULL /* an open block is closed this long after its first source */
#define MPT_FEC_PATHS 16
/* The server's wait for the repairs of the client's datagrams, and fec_wait's default (§11). */
#define MPT_FEC_WAIT_US 50000ULL
#define MPT_FEC_DONE 16 /* blocks remembered as complete */
/* A block that can be decoded is held this long for its missing sources at both ends: a
 * receiver reading its sockets in turn takes a path's repairs before the sources that another
 * path carried just before them, and decoding those would be work for nothing. */
#define MPT_FEC_HOLD_US 2000ULL

/* 1 if an inner message of this kind and length is a source of the code (FLOW and PIECE). */
int mpt_fec_protects(const uint8_t *inner, size_t len);

/* Expected fraction of sources lost after decoding, for a block whose sources and repairs are
 * spread src[i], rep[i] over n paths losing loss[i] each (independently). */
double mpt_fec_residual(const unsigned *src, const unsigned *rep, const double *loss, unsigned n);

/* The fewest repairs (0..MPT_FEC_M_MAX) for a block of `k` sources spread over the paths of
 * `mask` by weight (sources) and evenly (repairs), so that the expected residual loss is at most
 * `target`; MPT_FEC_M_MAX if none suffices. Fills rep_share[] with the repair count per path. */
unsigned mpt_fec_plan(unsigned k, const double *loss, const unsigned *weight, uint32_t mask,
                      unsigned npaths, double target, unsigned rep_share[MPT_FEC_PATHS]);

struct mpt_fec_tx {
    unsigned n;         /* sources in the open block */
    uint64_t first;     /* its first counter */
    uint64_t opened_us; /* when its first source came */
    uint8_t mask[16];   /* bit i: counter first + i is a source */
    unsigned sym_len;   /* the longest source + 2 */
    uint8_t *sym;       /* MPT_FEC_K_MAX symbols of MPT_FEC_SYM_MAX */
    uint8_t *rep;       /* MPT_FEC_M_MAX repairs of MPT_FEC_SYM_MAX */
    uint8_t *tbls;      /* ISA-L tables for (tk, tm) */
    unsigned tk, tm;
    unsigned closed_k, closed_m; /* the block last closed, whose repairs are in rep */
    uint64_t closed_first;
    uint8_t closed_mask[16];
    unsigned closed_len;
    uint64_t blocks, repairs;
};

/* Allocates the encoder's buffers. Returns 0 or -ENOMEM. */
int mpt_fec_tx_init(struct mpt_fec_tx *t);
void mpt_fec_tx_free(struct mpt_fec_tx *t);

/* Drops the open block (a new session: its counters start again). */
void mpt_fec_tx_reset(struct mpt_fec_tx *t);

/* 1 if the source with `counter` can join the open block (it is empty, or the counter lies within
 * MPT_FEC_SPAN of its first and the block has fewer than `k` sources). */
int mpt_fec_tx_fits(const struct mpt_fec_tx *t, uint64_t counter, unsigned k);

/* Adds a source (mpt_fec_protects holds; counter above every source already added; the caller
 * checked mpt_fec_tx_fits). Returns the number of sources in the open block. */
unsigned mpt_fec_tx_add(struct mpt_fec_tx *t, uint64_t counter, const uint8_t *inner, size_t len,
                        uint64_t now);

/* When the open block must be closed (UINT64_MAX: none open). */
uint64_t mpt_fec_tx_deadline(const struct mpt_fec_tx *t);

/* Closes the open block with `m` repairs (1..MPT_FEC_M_MAX, k + m <= 255) and computes them.
 * Returns m, or 0 if no block is open. */
unsigned mpt_fec_tx_close(struct mpt_fec_tx *t, unsigned m);

/* Writes REPAIR message `j` of the block closed last into out (room for MPT_REPAIR_MAX_LEN).
 * Returns its length. */
size_t mpt_fec_tx_repair(const struct mpt_fec_tx *t, unsigned j, uint8_t *out);

/* The receiver: recent sources of every session (a cache keyed by session and counter, the oldest
 * giving way) and blocks still missing sources whose repairs came. */
struct mpt_fec_src {
    uint64_t sid, ctr;
    uint64_t at_us; /* when it came (or was rebuilt) */
    uint16_t len;
    uint8_t rebuilt; /* rebuilt from repairs, and its own copy not yet come */
};

struct mpt_fec_pend {
    uint64_t sid, first;
    uint64_t until_us; /* given up then (once a datagram came since, see mpt_fec_rx_expire): the
                        * latest deadline of the sources it missed at its first repair */
    uint64_t seen_us;  /* when its first repair came */
    uint64_t wait_us;  /* the wait it was given */
    uint8_t mask[16];
    unsigned k, m, sym_len;
    uint32_t have_rep; /* repairs held, bit j */
    uint64_t ready_us; /* decodable, held for its missing sources until then (0: not yet) */
    uint8_t *rep;      /* MPT_FEC_M_MAX symbols */
};

struct mpt_fec_out {
    uint64_t sid, ctr;
    size_t len;
    const uint8_t *data; /* valid until the next call into the decoder */
};

struct mpt_fec_rx {
    struct mpt_fec_src *src;
    uint8_t *src_buf; /* the sources' messages: slot i at i * MPT_FEC_SRC_MAX */
    unsigned nsrc;
    struct mpt_fec_pend *pend;
    unsigned npend;
    unsigned busy;    /* pending blocks held */
    uint8_t *scratch; /* k symbols for decoding, then the recovered ones */
    uint8_t *tbls;
    uint8_t *cauchy; /* the Cauchy matrix for cauchy_k sources, MPT_FEC_M_MAX repair rows */
    unsigned cauchy_k;
    /* Recovered messages not yet taken (mpt_fec_rx_take). */
    struct mpt_fec_out out[MPT_FEC_M_MAX];
    unsigned nout, outpos;
    uint64_t recovered, given_up, malformed, repairs;
    uint64_t last_rx_us; /* when a source or repair last came */
    uint64_t before_us;  /* when one came last before the datagram (or timer) being handled */
    /* A block that can be decoded waits this long for its missing sources first (0: decoded at
     * once), and the earliest such wait's end (UINT64_MAX: none). */
    uint64_t hold_us, ready_us;
    /* Blocks found complete lately: their further repairs are dropped without work. */
    uint64_t done_sid[MPT_FEC_DONE], done_first[MPT_FEC_DONE];
    unsigned done_pos;
    /* Called with the sources of session sid given up (optional). */
    void (*on_give_up)(void *arg, uint64_t sid, unsigned n);
    void *arg;
};

/* Allocates a cache of nsrc sources and npend pending blocks. Returns 0, -EINVAL or -ENOMEM. */
int mpt_fec_rx_init(struct mpt_fec_rx *r, unsigned nsrc, unsigned npend);
void mpt_fec_rx_free(struct mpt_fec_rx *r);

/* A source that authenticated (mpt_fec_protects holds). It may complete a pending block: the
 * messages recovered are then listed for mpt_fec_rx_take. */
void mpt_fec_rx_source(struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr, const uint8_t *inner,
                       size_t len, uint64_t now);

/* A REPAIR message of `len` bytes that authenticated in DATA counter `ctr` (hostile until parsed).
 * If the block is still missing sources and cannot be decoded yet, it waits for more symbols.
 * Each missing source has a deadline: wait_us after the receiver first had evidence that it is
 * missing or late — the arrival of a later source of its block, or of this first repair. One
 * rebuilt after its deadline, once a datagram came since the deadline (else the receiver was held
 * off the CPU), is not delivered but given up (counted), so that no rebuilt message
 * is later than wait_us after it was first missed; the block waits until the latest of them.
 * Returns 0, or -EINVAL (malformed: counted, nothing kept). */
int mpt_fec_rx_repair(struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr, const uint8_t *inner,
                      size_t len, uint64_t now, uint64_t wait_us);

/* The next recovered message, or NULL. Its counter must still be checked against the session's
 * window by the caller: a recovered message is delivered only if that counter never arrived. */
const struct mpt_fec_out *mpt_fec_rx_take(struct mpt_fec_rx *r);

/* Decodes one block whose hold (hold_us) is over, if any: returns 1 and its session in *sid,
 * its recovered messages then listed for mpt_fec_rx_take (call again until it returns 0);
 * ready_us says when one is next due. */
int mpt_fec_rx_due(struct mpt_fec_rx *r, uint64_t now, uint64_t *sid);

/* Gives up the blocks whose wait is over (their missing sources counted in given_up); returns
 * the earliest deadline left (UINT64_MAX: none; a held block's is its hold's end). A block whose
 * wait is over but since whose end
 * nothing came is given 1 ms more each time, up to the wait again: after a stall of the
 * receiver, the datagrams queued meanwhile are read first (the timer may run before them). */
uint64_t mpt_fec_rx_expire(struct mpt_fec_rx *r, uint64_t now);

/* 1 if counter ctr of session sid was rebuilt and this is the first copy of it to come since
 * (a duplicate for the window): it then counts as received on its path, so that a slow path
 * whose datagrams are rebuilt before they arrive is not taken for a lossy one. */
int mpt_fec_rx_late(struct mpt_fec_rx *r, uint64_t sid, uint64_t ctr);

/* Forgets everything held for session sid (closed, or re-keyed). */
void mpt_fec_rx_drop(struct mpt_fec_rx *r, uint64_t sid);

#endif
