#include "test/tools/toolnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int tool_addr_parse(const char *s, struct tool_addr *out)
{
    char host[256];
    const char *port;
    struct addrinfo hints, *res = NULL;
    int rc = -EINVAL;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            strcpy(host, "127.0.0.1");
            port = s;
        } else {
            if ((size_t)(colon - s) >= sizeof(host) || strchr(s, ':') != colon)
                return -EINVAL;
            memcpy(host, s, (size_t)(colon - s));
            host[colon - s] = '\0';
            port = colon + 1;
        }
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return -EINVAL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        goto out;
    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    rc = 0;
out:
    if (res)
        freeaddrinfo(res);
    return rc;
}

const char *tool_addr_format(const struct sockaddr *sa, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(buf, n, "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(buf, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        snprintf(buf, n, "?");
    }
    return buf;
}

int tool_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

uint64_t tool_addr_hash(const struct sockaddr *sa)
{
    const uint8_t *p;
    size_t n;
    uint64_t h = 0xcbf29ce484222325ull;
    uint16_t port;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        p = (const uint8_t *)&a->sin_addr;
        n = sizeof(a->sin_addr);
        port = a->sin_port;
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        p = (const uint8_t *)&a->sin6_addr;
        n = sizeof(a->sin6_addr);
        port = a->sin6_port;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h = (h ^ (port & 0xff)) * 0x100000001b3ull;
    h = (h ^ (port >> 8)) * 0x100000001b3ull;
    return h;
}

static void set_buffer(int fd, int force_opt, int opt, int size)
{
    if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof(size)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
}

int tool_udp_socket(int family, int bufsize, const struct tool_addr *bind_to)
{
    struct tool_addr any;
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (bufsize > 0) {
        set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, bufsize);
        set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, bufsize);
    }
    if (!bind_to) {
        memset(&any, 0, sizeof(any));
        any.ss.ss_family = (sa_family_t)family;
        any.len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        bind_to = &any;
    }
    if (bind(fd, (const struct sockaddr *)&bind_to->ss, bind_to->len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int tool_write_ready(const char *path, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char addr[TOOL_ADDRSTRLEN], tmp[4096];
    FILE *f = NULL;
    int rc = 0;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%s\n", tool_addr_format((struct sockaddr *)&ss, addr, sizeof(addr)));
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        rc = -errno;
    return rc;
}

uint64_t tool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t *signal_flag;

static void on_signal(int sig)
{
    *signal_flag = sig;
}

void tool_signals_init(volatile sig_atomic_t *flag, sigset_t *unblocked)
{
    struct sigaction sa;
    sigset_t block;

    signal_flag = flag;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, unblocked);
    sigdelset(unblocked, SIGTERM);
    sigdelset(unblocked, SIGINT);
    sigdelset(unblocked, SIGUSR1);
}
