/* The shared driver lifecycle (net/driver.c), and the client and server drivers living through
 * the expiry of their flows and sessions on a real loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "task.h"

#include "config/config.h"
#include "core/crypto.h"
#include "net/driver.h"
#include "net/tunnel.h"
#include "net/udp.h"

/* ---- the lifecycle on its own ---- */

struct toy {
    struct mpt_driver base;
    uv_timer_t timer;
    struct mpt_udp socks[8];
    int open[8];
    int *destroyed; /* outlives the toy */
};

static void toy_stop(struct mpt_driver *base)
{
    struct toy *t = mpt_container_of(base, struct toy, base);

    mpt_driver_close((uv_handle_t *)&t->timer);
    for (int i = 0; i < 8; i++)
        if (t->open[i])
            mpt_udp_close(&t->socks[i], NULL);
}

static void toy_destroy(struct mpt_driver *base)
{
    struct toy *t = mpt_container_of(base, struct toy, base);

    (*t->destroyed)++;
    free(t);
}

static const struct mpt_driver_ops toy_ops = {"toy", toy_stop, toy_destroy};

static struct toy *toy_new(struct mpt_loop *loop, int *destroyed)
{
    struct toy *t = calloc(1, sizeof(*t));
    struct sockaddr_in lo;

    ASSERT(t != NULL);
    t->destroyed = destroyed;
    mpt_driver_init(&t->base, loop, &toy_ops, 1);
    uv_timer_init(mpt_loop_uv(loop), &t->timer);
    mpt_driver_own(&t->base, (uv_handle_t *)&t->timer);
    memset(&lo, 0, sizeof(lo));
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 8; i++) {
        ASSERT_EQ(mpt_driver_udp_open(&t->base, &t->socks[i], AF_INET, (struct sockaddr *)&lo, 0, 0,
                                      NULL, t),
                  0);
        t->open[i] = 1;
    }
    return t;
}

/* Runs the loop until nothing is pending (closes complete in the next iteration). */
static void settle(struct mpt_loop *loop)
{
    for (int i = 0; i < 4; i++)
        uv_run(mpt_loop_uv(loop), UV_RUN_NOWAIT);
}

/* Closing handles while the driver runs, even every one of them, never destroys it: the bug
 * that freed the server when one idle flow's socket closed. */
static void closing_handles_while_running(void)
{
    struct mpt_loop *loop;
    int destroyed = 0;
    struct toy *t;

    ASSERT_EQ(mpt_loop_new(&loop), 0);
    t = toy_new(loop, &destroyed);
    ASSERT_EQ(t->base.handles, 9);
    for (int i = 0; i < 8; i++) {
        mpt_udp_close(&t->socks[i], NULL);
        t->open[i] = 0;
    }
    mpt_driver_close((uv_handle_t *)&t->timer);
    settle(loop);
    ASSERT_EQ(destroyed, 0);
    ASSERT_EQ(t->base.handles, 0);
    /* Still a working driver: it opens a socket again. */
    {
        struct sockaddr_in lo;
        memset(&lo, 0, sizeof(lo));
        lo.sin_family = AF_INET;
        lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(mpt_driver_udp_open(&t->base, &t->socks[0], AF_INET, (struct sockaddr *)&lo, 0, 0,
                                      NULL, t),
                  0);
        t->open[0] = 1;
    }
    uv_timer_init(mpt_loop_uv(loop), &t->timer);
    mpt_driver_own(&t->base, (uv_handle_t *)&t->timer);
    mpt_loop_stop(loop);
    ASSERT_EQ(destroyed, 0); /* its handles are still closing */
    settle(loop);
    ASSERT_EQ(destroyed, 1);
    ASSERT_EQ(mpt_loop_free(loop), 0);
    ASSERT_EQ(destroyed, 1);
}

/* A stop with every handle closed already destroys at once, and exactly once. */
static void stop_without_handles(void)
{
    struct mpt_loop *loop;
    int destroyed = 0;
    struct toy *t;

    ASSERT_EQ(mpt_loop_new(&loop), 0);
    t = toy_new(loop, &destroyed);
    for (int i = 0; i < 8; i++) {
        mpt_udp_close(&t->socks[i], NULL);
        t->open[i] = 0;
    }
    mpt_driver_close((uv_handle_t *)&t->timer);
    settle(loop);
    mpt_driver_stop(&t->base);
    ASSERT_EQ(destroyed, 1);
    mpt_loop_stop(loop); /* no longer a service: not stopped twice */
    settle(loop);
    ASSERT_EQ(destroyed, 1);
    ASSERT_EQ(mpt_loop_free(loop), 0);
}

/* An owner's reference keeps a stopped driver until it lets go. */
static void owner_reference(void)
{
    struct mpt_loop *loop;
    int destroyed = 0;
    struct toy *t;

    ASSERT_EQ(mpt_loop_new(&loop), 0);
    t = toy_new(loop, &destroyed);
    mpt_driver_ref(&t->base);
    mpt_driver_stop(&t->base);
    mpt_driver_stop(&t->base);
    settle(loop);
    ASSERT_EQ(destroyed, 0);
    ASSERT_EQ(t->base.handles, 0);
    mpt_driver_unref(&t->base);
    ASSERT_EQ(destroyed, 1);
    ASSERT_EQ(mpt_loop_free(loop), 0);
}

/* ---- the tunnel through expiries ---- */

/* An application and a target on the same loop as a client and a server with 1 s flow and 2 s
 * session timeouts; the application sends a burst, falls silent past both timeouts, and sends
 * again, several times over. Every burst must come back whole, and the drivers must survive. */
struct life {
    struct mpt_loop *loop;
    struct mpt_udp app, target;
    struct mpt_addr client_addr;
    uv_timer_t tick;
    unsigned round, sent, echoed, back[8];
    uint64_t round_start;
    const struct mpt_client *client;
    const struct mpt_server *server;
    struct mpt_counters cc, sc; /* copied at the end, for the report */
};

#define LIFE_ROUNDS 3
#define LIFE_BURST 20

static void on_target_recv(struct mpt_udp *u, const uint8_t *data, size_t len,
                           const struct sockaddr *from)
{
    struct life *l = u->owner;

    l->echoed++;
    mpt_udp_send(u, data, len, from);
}

static void on_app_recv(struct mpt_udp *u, const uint8_t *data, size_t len,
                        const struct sockaddr *from)
{
    struct life *l = u->owner;

    if (len == 4 && data[0] < LIFE_ROUNDS)
        l->back[data[0]]++;
}

static void on_tick(uv_timer_t *t)
{
    struct life *l = mpt_container_of(t, struct life, tick);
    uint64_t now = mpt_loop_now_us(l->loop);

    /* Each round: a burst at its start, then 3.5 s of silence (past the flow timeouts of 1 s
     * and the server's session timeout of 2 s) before the next. */
    if (now - l->round_start < 3500000 && l->round > 0)
        return;
    if (l->round == LIFE_ROUNDS) {
        l->cc = l->client->ctr;
        l->sc = l->server->ctr;
        mpt_loop_stop(l->loop);
        uv_close((uv_handle_t *)&l->tick, NULL);
        mpt_udp_close(&l->app, NULL);
        mpt_udp_close(&l->target, NULL);
        return;
    }
    for (unsigned i = 0; i < LIFE_BURST; i++) {
        uint8_t b[4] = {(uint8_t)l->round, (uint8_t)i, 0, 0};
        mpt_udp_send(&l->app, b, sizeof(b), &l->client_addr.u.sa);
        l->sent++;
    }
    l->round++;
    l->round_start = now;
}

static void set_host(struct mpt_hostport *hp, uint16_t port)
{
    memset(hp, 0, sizeof(*hp));
    snprintf(hp->host, sizeof(hp->host), "127.0.0.1");
    hp->port = port;
}

static void tunnel_through_expiries(void)
{
    struct life l;
    struct mpt_config cfg;
    struct mpt_client_drv *client;
    struct mpt_server_drv *server;
    struct mpt_addr a;
    struct sockaddr_storage ss;
    struct sockaddr_in lo;
    char err[256];

    memset(&l, 0, sizeof(l));
    ASSERT_EQ(mpt_loop_new(&l.loop), 0);
    memset(&lo, 0, sizeof(lo));
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        mpt_udp_open(&l.target, l.loop, AF_INET, (struct sockaddr *)&lo, 0, 0, on_target_recv, &l),
        0);
    ASSERT_EQ(mpt_udp_open(&l.app, l.loop, AF_INET, (struct sockaddr *)&lo, 0, 0, on_app_recv, &l),
              0);

    mpt_config_defaults(&cfg);
    snprintf(cfg.file, sizeof(cfg.file), "test-driver-%d", (int)getpid());
    cfg.client.present = cfg.server.present = 1;
    mpt_random(cfg.secret, sizeof(cfg.secret));
    cfg.have_secret = 1;
    cfg.client.flow_timeout_ms = 1000;
    cfg.server.flow_timeout_ms = 1000;
    cfg.server.session_timeout_ms = 2000;
    snprintf(cfg.client.control, sizeof(cfg.client.control), "/tmp/mpt-test-driver-%d-c.sock",
             (int)getpid());
    snprintf(cfg.server.control, sizeof(cfg.server.control), "/tmp/mpt-test-driver-%d-s.sock",
             (int)getpid());
    ASSERT_EQ(mpt_udp_local(&l.target, &ss), 0);
    mpt_addr_set(&a, (struct sockaddr *)&ss);
    set_host(&cfg.server.target, mpt_addr_port(&a));
    set_host(&cfg.server.listen, 0);
    ASSERT_EQ(mpt_server_drv_start(l.loop, &cfg, &server, err, sizeof(err)), 0);
    mpt_server_drv_local(server, &a);
    set_host(&cfg.client.paths[0].bridge, mpt_addr_port(&a));
    set_host(&cfg.client.paths[1].bridge, mpt_addr_port(&a));
    cfg.client.paths[0].priority = cfg.client.paths[1].priority = 1;
    cfg.client.paths[0].weight = cfg.client.paths[1].weight = 1;
    cfg.client.npaths = 2;
    set_host(&cfg.client.listen, 0);
    ASSERT_EQ(mpt_client_drv_start(l.loop, &cfg, &client, err, sizeof(err)), 0);
    mpt_client_drv_local(client, &l.client_addr);
    l.client = mpt_client_drv_core(client);
    l.server = mpt_server_drv_core(server);

    uv_timer_init(mpt_loop_uv(l.loop), &l.tick);
    uv_timer_start(&l.tick, on_tick, 300, 50);
    ASSERT_EQ(mpt_loop_run(l.loop), 0);
    ASSERT_EQ(mpt_loop_free(l.loop), 0);

    printf("client: %llu from the application, %llu back to it, %llu sessions; server: %llu to "
           "the target, %llu from it; drops client/server:",
           (unsigned long long)l.cc.app_rx, (unsigned long long)l.cc.app_tx,
           (unsigned long long)l.cc.handshakes, (unsigned long long)l.sc.app_tx,
           (unsigned long long)l.sc.app_rx);
    for (int i = 0; i < MPT_DROP_COUNT; i++)
        printf(" %s %llu/%llu", mpt_drop_names[i], (unsigned long long)l.cc.drops[i],
               (unsigned long long)l.sc.drops[i]);
    printf("\n");
    for (unsigned r = 0; r < LIFE_ROUNDS; r++) {
        printf("round %u: %u of %u datagrams back (limit %u)\n", r + 1, l.back[r], LIFE_BURST,
               LIFE_BURST);
        ASSERT_EQ(l.back[r], LIFE_BURST);
    }
}

static const struct task_case cases[] = {
    {"closing_handles_while_running", closing_handles_while_running},
    {"stop_without_handles", stop_without_handles},
    {"owner_reference", owner_reference},
    {"tunnel_through_expiries", tunnel_through_expiries},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
