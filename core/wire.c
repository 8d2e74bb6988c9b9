#include "core/wire.h"

int mpt_wire_classify(const uint8_t *buf, size_t len)
{
    if (len < MPT_HDR_LEN || buf[0] != MPT_PROTO_VERSION || buf[2] != 0 || buf[3] != 0)
        return 0;
    switch (buf[1]) {
    case MPT_TYPE_HELLO:
        return len == MPT_HELLO_LEN ? MPT_TYPE_HELLO : 0;
    case MPT_TYPE_REPLY:
        return len == MPT_REPLY_LEN ? MPT_TYPE_REPLY : 0;
    case MPT_TYPE_DATA:
        return len >= MPT_DATA_MIN_LEN && len <= MPT_MAX_DGRAM ? MPT_TYPE_DATA : 0;
    default:
        return 0;
    }
}
