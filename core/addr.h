/* Socket addresses as core sees them: IPv4 or IPv6, compared and hashed by value. */
#ifndef MPT_ADDR_H
#define MPT_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct mpt_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } u;
};

#define MPT_ADDR_STRLEN 64 /* "[ffff:...:ffff%scope]:65535" fits */

/* Copies a sockaddr (AF_INET or AF_INET6). Returns 0, or -EAFNOSUPPORT (a zeroed address). */
int mpt_addr_set(struct mpt_addr *a, const struct sockaddr *sa);

/* The length to pass to sendto/bind: sizeof the family's struct, 0 for an unset address. */
socklen_t mpt_addr_len(const struct mpt_addr *a);

/* 1 if family, address and port are equal (IPv6 scope included), else 0. */
int mpt_addr_equal(const struct mpt_addr *a, const struct mpt_addr *b);

/* A hash of family, address and port, keyed so that remote peers cannot aim at one bucket. */
uint32_t mpt_addr_hash(const struct mpt_addr *a, uint64_t key);

/* Writes "1.2.3.4:5" or "[::1]:5" (IPv4-mapped IPv6 shown as IPv4) into buf; returns buf. */
const char *mpt_addr_str(const struct mpt_addr *a, char *buf, size_t len);

uint16_t mpt_addr_port(const struct mpt_addr *a);

#endif
