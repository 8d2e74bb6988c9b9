/* SOCKS5 (RFC 1928) and its username/password method (RFC 1929) as pure functions over bytes:
 * the control connection's messages and the UDP ASSOCIATE datagram header. Every input is
 * hostile: a parser reads nothing past `n`, answers "need more" for a message cut short, and
 * refuses anything malformed. */
#ifndef MPT_SOCKS_H
#define MPT_SOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/target.h"

#define MPT_SOCKS_VERSION 5
#define MPT_SOCKS_AUTH_NONE 0x00
#define MPT_SOCKS_AUTH_USERPASS 0x02
#define MPT_SOCKS_AUTH_REFUSED 0xff

#define MPT_SOCKS_CMD_CONNECT 1
#define MPT_SOCKS_CMD_BIND 2
#define MPT_SOCKS_CMD_UDP 3

#define MPT_SOCKS_ATYP_IPV4 1
#define MPT_SOCKS_ATYP_DOMAIN 3
#define MPT_SOCKS_ATYP_IPV6 4

/* Reply codes (RFC 1928 §6). */
#define MPT_SOCKS_REP_OK 0x00
#define MPT_SOCKS_REP_FAILURE 0x01
#define MPT_SOCKS_REP_NOT_ALLOWED 0x02
#define MPT_SOCKS_REP_CMD_UNSUPPORTED 0x07
#define MPT_SOCKS_REP_ATYP_UNSUPPORTED 0x08

#define MPT_SOCKS_REPLY_MAX 22    /* VER REP RSV ATYP, 16-byte address, port */
#define MPT_SOCKS_UDP_HDR_MAX 262 /* RSV(2) FRAG ATYP, length, 255-byte name, port */
#define MPT_SOCKS_MSG_MAX 513     /* the longest control message (RFC 1929's request) */

/* A destination as SOCKS gives it: an address literal (as text) or a domain name. */
struct mpt_socks_dest {
    uint8_t atyp;                       /* MPT_SOCKS_ATYP_* */
    char host[MPT_TARGET_HOST_MAX + 1]; /* "10.0.0.1", "fd00::1" or "dns.example" */
    uint16_t port;                      /* 0 is allowed in a request (RFC 1928: "not known") */
};

/* The client's greeting (VER NMETHODS METHODS). Picks username/password if `want_userpass`, else
 * no authentication, if offered; otherwise MPT_SOCKS_AUTH_REFUSED. Returns the bytes it took,
 * 0 if more are needed, or -EINVAL (not SOCKS5, no methods). */
int mpt_socks_greeting(const uint8_t *p, size_t n, int want_userpass, uint8_t *method);

/* RFC 1929's request (VER=1 ULEN UNAME PLEN PASSWD) into user[256] and pass[256], NUL-terminated.
 * Returns the bytes it took, 0 if more are needed, or -EINVAL (wrong version, empty name). */
int mpt_socks_userpass(const uint8_t *p, size_t n, char *user, char *pass);

/* A request (VER CMD RSV ATYP DST.ADDR DST.PORT). Returns the bytes it took, 0 if more are
 * needed, -EINVAL if malformed (a domain name that mpt_target_host_valid refuses included), or
 * -EAFNOSUPPORT for an unknown address type (answer MPT_SOCKS_REP_ATYP_UNSUPPORTED). A command
 * other than the three is returned as it is: the caller answers "command not supported". */
int mpt_socks_request(const uint8_t *p, size_t n, uint8_t *cmd, struct mpt_socks_dest *d);

/* A reply with the bound address `bnd` (NULL: 0.0.0.0:0) into out[MPT_SOCKS_REPLY_MAX]. Returns
 * its length. */
size_t mpt_socks_reply(uint8_t *out, uint8_t rep, const struct mpt_addr *bnd);

/* The header of a UDP ASSOCIATE datagram (RSV RSV FRAG ATYP DST.ADDR DST.PORT). Returns the
 * header's length (the data follows), or -EINVAL (short, nonzero RSV, bad address, port 0),
 * -EAFNOSUPPORT (unknown address type) or -EMSGSIZE (FRAG nonzero: a fragment, dropped). */
int mpt_socks_udp_parse(const uint8_t *p, size_t n, struct mpt_socks_dest *d);

/* Writes the header for a datagram from destination d into out[MPT_SOCKS_UDP_HDR_MAX]. Returns
 * its length, or -EINVAL if d does not encode. */
int mpt_socks_udp_header(uint8_t *out, const struct mpt_socks_dest *d);

#endif
