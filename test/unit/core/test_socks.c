/* core/socks: SOCKS5 messages (RFC 1928) and username/password (RFC 1929), byte for byte, and
 * every message cut short or malformed. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "core/socks.h"
#include "task.h"

static void greeting(void)
{
    uint8_t m = 0x55;

    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x05\x01\x00", 3, 0, &m), 3);
    ASSERT_EQ(m, MPT_SOCKS_AUTH_NONE);
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x05\x02\x00\x02", 4, 1, &m), 4);
    ASSERT_EQ(m, MPT_SOCKS_AUTH_USERPASS);
    /* Only what we do not take: refused (0xFF), the connection then closes. */
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x05\x01\x02", 3, 0, &m), 3);
    ASSERT_EQ(m, MPT_SOCKS_AUTH_REFUSED);
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x05\x01\x00", 3, 1, &m), 3);
    ASSERT_EQ(m, MPT_SOCKS_AUTH_REFUSED);
    /* Cut short: need more; SOCKS4 or no methods: refused. */
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x05\x02\x00", 3, 0, &m), 0);
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x05", 1, 0, &m), 0);
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"", 0, 0, &m), 0);
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x04\x01\x00", 3, 0, &m), -EINVAL);
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x04", 1, 0, &m), -EINVAL);
    ASSERT_EQ(mpt_socks_greeting((const uint8_t *)"\x05\x00", 2, 0, &m), -EINVAL);
}

static void userpass(void)
{
    char u[256], p[256];
    uint8_t long_req[3 + 255 + 255];

    ASSERT_EQ(mpt_socks_userpass((const uint8_t *)"\x01\x04user\x06secret", 13, u, p), 13);
    ASSERT_STR_EQ(u, "user");
    ASSERT_STR_EQ(p, "secret");
    ASSERT_EQ(mpt_socks_userpass((const uint8_t *)"\x01\x04user\x00", 7, u, p), 7);
    ASSERT_STR_EQ(p, "");
    for (size_t n = 0; n < 13; n++)
        ASSERT_EQ(mpt_socks_userpass((const uint8_t *)"\x01\x04user\x06secret", n, u, p), 0);
    ASSERT_EQ(mpt_socks_userpass((const uint8_t *)"\x05\x04user\x00", 7, u, p), -EINVAL);
    ASSERT_EQ(mpt_socks_userpass((const uint8_t *)"\x01\x00\x00", 3, u, p), -EINVAL);
    ASSERT_EQ(mpt_socks_userpass((const uint8_t *)"\x01\x02u\x00\x00", 5, u, p), -EINVAL);
    long_req[0] = 1;
    long_req[1] = 255;
    memset(long_req + 2, 'u', 255);
    long_req[257] = 255;
    memset(long_req + 258, 'p', 255);
    ASSERT_EQ(mpt_socks_userpass(long_req, sizeof(long_req), u, p), (int)sizeof(long_req));
    ASSERT_EQ(strlen(u), 255);
    ASSERT_EQ(strlen(p), 255);
}

static void request(void)
{
    static const uint8_t udp4[] = {5, 3, 0, 1, 127, 0, 0, 1, 0x13, 0x88};
    static const uint8_t conn6[] = {5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53};
    static const uint8_t name[] = {5,   3,   0,   3,   11,  'e', 'x', 'a', 'm',
                                   'p', 'l', 'e', '.', 'o', 'r', 'g', 0,   53};
    struct mpt_socks_dest d;
    uint8_t cmd = 0, bad[sizeof(name)];

    ASSERT_EQ(mpt_socks_request(udp4, sizeof(udp4), &cmd, &d), 10);
    ASSERT_EQ(cmd, MPT_SOCKS_CMD_UDP);
    ASSERT_STR_EQ(d.host, "127.0.0.1");
    ASSERT_EQ(d.port, 5000);
    ASSERT_EQ(mpt_socks_request(conn6, sizeof(conn6), &cmd, &d), 22);
    ASSERT_EQ(cmd, MPT_SOCKS_CMD_CONNECT);
    ASSERT_STR_EQ(d.host, "::1");
    ASSERT_EQ(mpt_socks_request(name, sizeof(name), &cmd, &d), (int)sizeof(name));
    ASSERT_EQ(d.atyp, MPT_SOCKS_ATYP_DOMAIN);
    ASSERT_STR_EQ(d.host, "example.org");
    ASSERT_EQ(d.port, 53);
    for (size_t n = 0; n < sizeof(name); n++)
        ASSERT_EQ(mpt_socks_request(name, n, &cmd, &d), 0);
    memcpy(bad, name, sizeof(name));
    bad[3] = 9; /* unknown address type */
    ASSERT_EQ(mpt_socks_request(bad, sizeof(bad), &cmd, &d), -EAFNOSUPPORT);
    memcpy(bad, name, sizeof(name));
    bad[2] = 1; /* RSV */
    ASSERT_EQ(mpt_socks_request(bad, sizeof(bad), &cmd, &d), -EINVAL);
    memcpy(bad, name, sizeof(name));
    bad[8] = '\n'; /* a control byte in the name */
    ASSERT_EQ(mpt_socks_request(bad, sizeof(bad), &cmd, &d), -EINVAL);
    memcpy(bad, name, sizeof(name));
    bad[4] = 0; /* empty name */
    ASSERT_EQ(mpt_socks_request(bad, 7, &cmd, &d), -EINVAL);
}

static void reply(void)
{
    uint8_t out[MPT_SOCKS_REPLY_MAX];
    struct mpt_addr a;

    memset(&a, 0, sizeof(a));
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_addr.s_addr = htonl(0x7f000001);
    a.u.in4.sin_port = htons(1080);
    ASSERT_EQ(mpt_socks_reply(out, MPT_SOCKS_REP_OK, &a), 10);
    ASSERT_MEM_EQ(out, "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38", 10);
    ASSERT_EQ(mpt_socks_reply(out, MPT_SOCKS_REP_CMD_UNSUPPORTED, NULL), 10);
    ASSERT_MEM_EQ(out, "\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00", 10);
    memset(&a, 0, sizeof(a));
    a.u.in6.sin6_family = AF_INET6;
    a.u.in6.sin6_addr.s6_addr[15] = 1;
    a.u.in6.sin6_port = htons(2);
    ASSERT_EQ(mpt_socks_reply(out, MPT_SOCKS_REP_OK, &a), 22);
    ASSERT_EQ(out[3], MPT_SOCKS_ATYP_IPV6);
    ASSERT_EQ(out[19], 1);
    ASSERT_EQ(out[21], 2);
}

static void udp_header(void)
{
    static const uint8_t d4[] = {0, 0, 0, 1, 10, 0, 0, 7, 0, 53, 'h', 'i'};
    struct mpt_socks_dest d;
    uint8_t hdr[MPT_SOCKS_UDP_HDR_MAX], frag[sizeof(d4)];

    ASSERT_EQ(mpt_socks_udp_parse(d4, sizeof(d4), &d), 10);
    ASSERT_STR_EQ(d.host, "10.0.0.7");
    ASSERT_EQ(d.port, 53);
    ASSERT_EQ(mpt_socks_udp_header(hdr, &d), 10);
    ASSERT_MEM_EQ(hdr, d4, 10);
    memcpy(frag, d4, sizeof(d4));
    frag[2] = 1; /* a fragment: dropped and counted by the caller */
    ASSERT_EQ(mpt_socks_udp_parse(frag, sizeof(frag), &d), -EMSGSIZE);
    frag[2] = 0;
    frag[0] = 1;
    ASSERT_EQ(mpt_socks_udp_parse(frag, sizeof(frag), &d), -EINVAL);
    for (size_t n = 0; n < 10; n++)
        ASSERT_EQ(mpt_socks_udp_parse(d4, n, &d), -EINVAL);
    memcpy(frag, d4, sizeof(d4));
    frag[8] = frag[9] = 0; /* port 0 */
    ASSERT_EQ(mpt_socks_udp_parse(frag, sizeof(frag), &d), -EINVAL);
    snprintf(d.host, sizeof(d.host), "dns.example");
    d.port = 53;
    ASSERT_EQ(mpt_socks_udp_header(hdr, &d), 7 + 11);
    ASSERT_EQ(hdr[3], MPT_SOCKS_ATYP_DOMAIN);
    ASSERT_EQ(mpt_socks_udp_parse(hdr, 18, &d), 18);
    ASSERT_STR_EQ(d.host, "dns.example");
    snprintf(d.host, sizeof(d.host), "fd00::1");
    ASSERT_EQ(mpt_socks_udp_header(hdr, &d), 22);
    snprintf(d.host, sizeof(d.host), "a b");
    ASSERT_EQ(mpt_socks_udp_header(hdr, &d), -EINVAL);
}

static const struct task_case cases[] = {
    {"greeting", greeting}, {"userpass", userpass},     {"request", request},
    {"reply", reply},       {"udp_header", udp_header}, {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
