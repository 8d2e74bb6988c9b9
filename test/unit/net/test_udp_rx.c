/* Receiving in turns: two sockets with thousands of datagrams queued each are read a bounded run
 * at a time, one after the other, rather than one drained before the next. A peer sends each
 * path's datagrams in runs; a receiver that drained one path's socket first took fec repairs and
 * later datagrams of that path before what the other paths carried earlier, and gave up blocks
 * whose sources were only queued. Loopback only. */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "task.h"

#include "net/loop.h"
#include "net/udp.h"

#define PER_SOCKET 3000
#define LONGEST_RUN 160 /* 128 per turn, and a last recvmmsg of at most 16 more; 256 before */

static struct mpt_udp rx[2];
static unsigned got[2], run, longest, last = 2, turns;

static void on_recv(struct mpt_udp *u, const uint8_t *data, size_t len, const struct sockaddr *from)
{
    unsigned which = u == &rx[1];

    (void)data;
    (void)len;
    (void)from;
    got[which]++;
    if (which == last) {
        run++;
    } else {
        run = 1;
        last = which;
        turns++;
    }
    if (run > longest)
        longest = run;
    if (got[0] + got[1] == 2 * PER_SOCKET) {
        mpt_udp_close(&rx[0], NULL);
        mpt_udp_close(&rx[1], NULL);
    }
}

static void rx_turns(void)
{
    struct mpt_loop *loop;
    struct sockaddr_in a[2];
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    uint8_t buf[100];

    ASSERT(tx >= 0);
    memset(buf, 7, sizeof(buf));
    ASSERT_EQ(mpt_loop_new(&loop), 0);
    for (unsigned i = 0; i < 2; i++) {
        struct sockaddr_storage ss;
        memset(&a[i], 0, sizeof(a[i]));
        a[i].sin_family = AF_INET;
        a[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(mpt_udp_open(&rx[i], loop, AF_INET, (struct sockaddr *)&a[i], 0, 16u << 20,
                               on_recv, NULL),
                  0);
        ASSERT_EQ(mpt_udp_local(&rx[i], &ss), 0);
        memcpy(&a[i], &ss, sizeof(a[i]));
    }
    /* All of the first socket's datagrams queued before any of the second's. */
    for (unsigned i = 0; i < 2; i++)
        for (unsigned k = 0; k < PER_SOCKET; k++)
            ASSERT_EQ(sendto(tx, buf, sizeof(buf), 0, (struct sockaddr *)&a[i], sizeof(a[i])),
                      (ssize_t)sizeof(buf));
    close(tx);
    alarm(20);
    ASSERT_EQ(mpt_loop_run(loop), 0);
    alarm(0);
    printf("%u + %u datagrams received in %u turns; longest run from one socket %u (limit %u)\n",
           got[0], got[1], turns, longest, LONGEST_RUN);
    ASSERT_EQ(got[0], PER_SOCKET);
    ASSERT_EQ(got[1], PER_SOCKET);
    ASSERT_LE(longest, LONGEST_RUN);
    ASSERT_EQ(mpt_loop_free(loop), 0);
}

/* One case a line: the build reads them from here (test/unit/net/CMakeLists.txt). */
/* clang-format off */
static const struct task_case cases[] = {
    {"rx_turns", rx_turns},
    {NULL, NULL},
};
/* clang-format on */

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
