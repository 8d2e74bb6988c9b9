/* core/wire: classification by outer header and size (PROTOCOL.md §2), and the byte-order
 * helpers. */
#include "core/wire.h"
#include "task.h"

static uint8_t buf[MPT_MAX_DGRAM + 16];

static void header(uint8_t type)
{
    memset(buf, 0xa5, sizeof(buf));
    buf[0] = MPT_PROTO_VERSION;
    buf[1] = type;
    buf[2] = 0;
    buf[3] = 0;
}

/* The type each length classifies as, for a well-formed header. */
static int expected(uint8_t type, size_t len)
{
    switch (type) {
    case MPT_TYPE_INIT:
        return len == MPT_INIT_NN_LEN || len == MPT_INIT_IK_LEN ? type : 0;
    case MPT_TYPE_RESPONSE:
        return len == MPT_RESPONSE_LEN ? type : 0;
    case MPT_TYPE_COOKIE:
        return len == MPT_COOKIE_MSG_LEN ? type : 0;
    case MPT_TYPE_DATA:
        return len >= MPT_DATA_MIN_LEN && len <= MPT_MAX_DGRAM ? type : 0;
    default:
        return 0;
    }
}

static void sizes(void)
{
    static const uint8_t types[] = {
        0, MPT_TYPE_INIT, MPT_TYPE_RESPONSE, MPT_TYPE_DATA, MPT_TYPE_COOKIE, 5, 0xff};

    for (size_t t = 0; t < sizeof(types); t++) {
        header(types[t]);
        for (size_t len = 0; len <= 200; len++)
            ASSERT_EQ(mpt_wire_classify(buf, len), len < MPT_HDR_LEN ? 0 : expected(types[t], len));
        for (size_t len = MPT_MAX_DGRAM - 2; len <= MPT_MAX_DGRAM + 2; len++)
            ASSERT_EQ(mpt_wire_classify(buf, len), expected(types[t], len));
    }
}

static void exact_rules(void)
{
    header(MPT_TYPE_INIT);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_INIT_NN_LEN), MPT_TYPE_INIT);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_INIT_IK_LEN), MPT_TYPE_INIT);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_INIT_NN_LEN - 1), 0);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_INIT_NN_LEN + 1), 0);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_INIT_IK_LEN + 1), 0);
    header(MPT_TYPE_RESPONSE);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_RESPONSE_LEN), MPT_TYPE_RESPONSE);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_RESPONSE_LEN - 1), 0);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_RESPONSE_LEN + 1), 0);
    header(MPT_TYPE_COOKIE);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_COOKIE_MSG_LEN), MPT_TYPE_COOKIE);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_COOKIE_MSG_LEN + 1), 0);
    header(MPT_TYPE_DATA);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_DATA_MIN_LEN - 1), 0);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_DATA_MIN_LEN), MPT_TYPE_DATA);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_MAX_DGRAM), MPT_TYPE_DATA);
    ASSERT_EQ(mpt_wire_classify(buf, MPT_MAX_DGRAM + 1), 0);
    /* The smallest DATA carries a one-byte inner message; no answer exceeds the smallest INIT. */
    ASSERT_EQ(MPT_DATA_MIN_LEN, MPT_DATA_HDR_LEN + 1 + MPT_TAG_LEN);
    ASSERT_LE(MPT_RESPONSE_LEN, MPT_INIT_NN_LEN);
    ASSERT_LE(MPT_COOKIE_MSG_LEN, MPT_INIT_NN_LEN);
    ASSERT_EQ(MPT_RESPONSE_OFF_MAC1 + MPT_MAC_LEN, MPT_RESPONSE_LEN);
    ASSERT_EQ(MPT_RESPONSE_OFF_NOISE + MPT_RESPONSE_NOISE_LEN, MPT_RESPONSE_OFF_MAC1);
    ASSERT_EQ(MPT_COOKIE_OFF_BOX + 16 + MPT_TAG_LEN, MPT_COOKIE_MSG_LEN);
    ASSERT_EQ(MPT_MAX_PAYLOAD + MPT_DATA_OVERHEAD + MPT_FLOW_HDR_LEN, MPT_MAX_DGRAM);
}

static void bad_version(void)
{
    static const uint8_t versions[] = {0, MPT_PROTO_VERSION_1, MPT_PROTO_VERSION + 1, 0x80, 0xff};
    static const uint8_t types[] = {MPT_TYPE_INIT, MPT_TYPE_RESPONSE, MPT_TYPE_DATA,
                                    MPT_TYPE_COOKIE};
    static const size_t lens[] = {MPT_INIT_NN_LEN, MPT_RESPONSE_LEN, 100, MPT_COOKIE_MSG_LEN};

    for (size_t t = 0; t < sizeof(types); t++) {
        header(types[t]);
        ASSERT_EQ(mpt_wire_classify(buf, lens[t]), types[t]);
        for (size_t v = 0; v < sizeof(versions); v++) {
            buf[0] = versions[v];
            ASSERT_EQ(mpt_wire_classify(buf, lens[t]), 0);
        }
    }
}

static void reserved_bytes(void)
{
    static const uint8_t types[] = {MPT_TYPE_INIT, MPT_TYPE_RESPONSE, MPT_TYPE_DATA,
                                    MPT_TYPE_COOKIE};
    static const size_t lens[] = {MPT_INIT_NN_LEN, MPT_RESPONSE_LEN, 100, MPT_COOKIE_MSG_LEN};

    for (size_t t = 0; t < sizeof(types); t++) {
        for (int pos = 2; pos <= 3; pos++) {
            for (int bit = 0; bit < 8; bit++) {
                header(types[t]);
                buf[pos] = (uint8_t)(1u << bit);
                ASSERT_EQ(mpt_wire_classify(buf, lens[t]), 0);
            }
        }
    }
}

/* Classification reads nothing beyond len: a header cut short is refused at every length. */
static void short_reads(void)
{
    static uint8_t tiny[MPT_HDR_LEN];

    tiny[0] = MPT_PROTO_VERSION;
    tiny[1] = MPT_TYPE_DATA;
    for (size_t len = 0; len <= MPT_HDR_LEN; len++)
        ASSERT_EQ(mpt_wire_classify(tiny, len), 0);
}

static void byte_order(void)
{
    uint8_t b[8];

    mpt_put16(b, 0x1234);
    ASSERT_EQ(b[0], 0x12);
    ASSERT_EQ(b[1], 0x34);
    ASSERT_EQ(mpt_get16(b), 0x1234);
    mpt_put32(b, 0xdeadbeef);
    ASSERT_EQ(b[0], 0xde);
    ASSERT_EQ(b[3], 0xef);
    ASSERT(mpt_get32(b) == 0xdeadbeefu);
    mpt_put64(b, 0x0102030405060708ULL);
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(b[i], i + 1);
    ASSERT(mpt_get64(b) == 0x0102030405060708ULL);
    mpt_put64(b, UINT64_MAX);
    ASSERT(mpt_get64(b) == UINT64_MAX);
}

static const struct task_case cases[] = {
    {"sizes", sizes},
    {"exact_rules", exact_rules},
    {"bad_version", bad_version},
    {"reserved_bytes", reserved_bytes},
    {"short_reads", short_reads},
    {"byte_order", byte_order},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
