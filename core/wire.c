#include "core/wire.h"

int mpt_wire_classify(const uint8_t *buf, size_t len)
{
    if (len < MPT_HDR_LEN || buf[0] != MPT_PROTO_VERSION || buf[2] != 0 || buf[3] != 0)
        return 0;
    switch (buf[1]) {
    case MPT_TYPE_INIT:
        return len == MPT_INIT_NN_LEN || len == MPT_INIT_IK_LEN ? MPT_TYPE_INIT : 0;
    case MPT_TYPE_RESPONSE:
        return len == MPT_RESPONSE_LEN ? MPT_TYPE_RESPONSE : 0;
    case MPT_TYPE_COOKIE:
        return len == MPT_COOKIE_MSG_LEN ? MPT_TYPE_COOKIE : 0;
    case MPT_TYPE_DATA:
        return len >= MPT_DATA_MIN_LEN && len <= MPT_MAX_DGRAM ? MPT_TYPE_DATA : 0;
    default:
        return 0;
    }
}
