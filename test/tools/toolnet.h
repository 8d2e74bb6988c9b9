/* Socket, address and clock helpers shared by udpgen and mpt-floor (plain libc, no libuv). */
#ifndef MPT_TEST_TOOLNET_H
#define MPT_TEST_TOOLNET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TOOL_ADDRSTRLEN 64

struct tool_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses "HOST:PORT", "[V6]:PORT" or "PORT" (meaning 127.0.0.1:PORT); HOST may be a name, the
 * first getaddrinfo result wins. Returns 0 or -EINVAL. */
int tool_addr_parse(const char *s, struct tool_addr *out);

/* Writes "1.2.3.4:5" or "[::1]:5" into buf (n >= TOOL_ADDRSTRLEN) and returns buf. */
const char *tool_addr_format(const struct sockaddr *sa, char *buf, size_t n);

/* Same family, address and port. */
int tool_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

uint64_t tool_addr_hash(const struct sockaddr *sa);

/* A new blocking UDP socket of the family, SO_RCVBUF/SO_SNDBUF set to bufsize (the FORCE variants
 * first, so root gets the size asked for; 0 leaves the defaults), bound to bind_to unless NULL
 * (NULL binds the wildcard address, port 0). Returns the fd or -errno. */
int tool_udp_socket(int family, int bufsize, const struct tool_addr *bind_to);

/* Writes the socket's bound address as one line to path (via a rename, so a reader never sees a
 * partial line). Returns 0 or -errno. */
int tool_write_ready(const char *path, int fd);

/* CLOCK_MONOTONIC in ns: shared by all processes of the host, so one-way delays are comparable. */
uint64_t tool_now_ns(void);

/* Installs a flag-setting handler for SIGTERM, SIGINT and SIGUSR1 and blocks them; the caller waits
 * with ppoll/epoll_pwait and *unblocked so that a signal cannot slip in between check and wait.
 * *flag receives the last signal number. */
void tool_signals_init(volatile sig_atomic_t *flag, sigset_t *unblocked);

#endif
