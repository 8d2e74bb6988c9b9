/* The metrics endpoint's pieces without sockets: the request as http-parser reads it (whole, a
 * byte at a time, hostile), the Prometheus text writer (escaping, truncation), and the client's and
 * server's text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

#include "config/config.h"
#include "net/metrics.h"
#include "net/status.h"

/* The answer to `text', fed whole, then a byte at a time; both must agree. */
static int answer(const char *text, size_t len, int *head)
{
    static struct mpt_http_req r1, r2;
    int whole, bytewise = 0;

    mpt_http_req_init(&r1);
    whole = mpt_http_req_feed(&r1, text, len);
    mpt_http_req_init(&r2);
    for (size_t i = 0; i < len && !bytewise; i++)
        bytewise = mpt_http_req_feed(&r2, text + i, 1);
    ASSERT_EQ(whole, bytewise);
    ASSERT_EQ(r1.head, r2.head);
    if (head)
        *head = r1.head;
    return whole;
}

#define ANSWER(s) answer(s, sizeof(s) - 1, NULL)

static void test_http_request(void)
{
    int head = -1;

    ASSERT_EQ(answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 35, &head), 200);
    ASSERT_EQ(head, 0);
    ASSERT_EQ(answer("HEAD /metrics HTTP/1.1\r\n\r\n", 26, &head), 200);
    ASSERT_EQ(head, 1);
    ASSERT_EQ(ANSWER("GET /metrics HTTP/1.0\r\n\r\n"), 200);
    ASSERT_EQ(ANSWER("GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), 200);
    ASSERT_EQ(ANSWER("GET http://127.0.0.1:9100/metrics HTTP/1.1\r\n\r\n"), 200);
    ASSERT_EQ(ANSWER("GET / HTTP/1.1\r\n\r\n"), 404);
    ASSERT_EQ(ANSWER("GET /metrics/ HTTP/1.1\r\n\r\n"), 404);
    ASSERT_EQ(ANSWER("GET /Metrics HTTP/1.1\r\n\r\n"), 404);
    ASSERT_EQ(ANSWER("GET /metricsx HTTP/1.1\r\n\r\n"), 404);
    ASSERT_EQ(ANSWER("GET * HTTP/1.1\r\n\r\n"), 404);
    ASSERT_EQ(ANSWER("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), 405);
    ASSERT_EQ(ANSWER("DELETE /metrics HTTP/1.1\r\n\r\n"), 405);
    ASSERT_EQ(ANSWER("OPTIONS * HTTP/1.1\r\n\r\n"), 405);
    ASSERT_EQ(ANSWER("BREW /metrics HTTP/1.1\r\n\r\n"), 400);
    ASSERT_EQ(ANSWER("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400);
    ASSERT_EQ(ANSWER("GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n"), 400);
    ASSERT_EQ(ANSWER("GET /metrics HTTP/2.0\r\n\r\n"), 505);
    ASSERT_EQ(ANSWER("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0); /* not whole yet */
    ASSERT_EQ(ANSWER(""), 0);
    /* A body and a second request after the headers are never parsed. */
    ASSERT_EQ(
        ANSWER("GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\n\r\n"),
        200);
    ASSERT_EQ(ANSWER("GET /nope HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"), 404);
}

static void test_http_limits(void)
{
    static char buf[3 * MPT_METRICS_MAX_REQUEST];
    struct mpt_http_req r;
    size_t n;

    /* A URL beyond its limit, however it arrives. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /");
    memset(buf + n, 'a', MPT_METRICS_MAX_URL);
    n += MPT_METRICS_MAX_URL;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\n\r\n");
    ASSERT_EQ(answer(buf, n, NULL), 414);
    /* Headers beyond the request limit: 431, the parser having read no more than the limit. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /metrics HTTP/1.1\r\nX: ");
    memset(buf + n, 'h', sizeof(buf) - n);
    ASSERT_EQ(answer(buf, sizeof(buf), NULL), 431);
    mpt_http_req_init(&r);
    ASSERT_EQ(mpt_http_req_feed(&r, buf, sizeof(buf)), 431);
    ASSERT_EQ(r.bytes, MPT_METRICS_MAX_REQUEST);
    ASSERT_EQ(mpt_http_req_feed(&r, "\r\n\r\n", 4), 431);
    /* Many small headers within the limit are fine. */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /metrics HTTP/1.1\r\n");
    while (n < MPT_METRICS_MAX_REQUEST - 64)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%zu: v\r\n", n);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    ASSERT_EQ(answer(buf, n, NULL), 200);
    /* Random bytes: some answer or none, never a crash, never more than the limit read. */
    srand(7);
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = (size_t)(rand() % 300);
        int st;
        memcpy(buf, "GET /metrics HTTP/1.1\r\n", 23);
        for (size_t i = (iter & 1) ? 23 : 0; i < len; i++)
            buf[i] = (char)(rand() % 4 ? "GET /:\r\n aHTP1.0"[rand() % 16] : rand());
        mpt_http_req_init(&r);
        st = mpt_http_req_feed(&r, buf, len);
        ASSERT(st == 0 || st == 200 || st == 400 || st == 404 || st == 405 || st == 414 ||
               st == 431 || st == 505);
        ASSERT_LE(r.bytes, MPT_METRICS_MAX_REQUEST);
    }
}

/* Every line ends with a newline; the text ends with the truncation gauge. */
static void check_text(const char *buf, size_t len, int truncated)
{
    const char *last;

    ASSERT_EQ(strlen(buf), len);
    ASSERT(len > 0 && buf[len - 1] == '\n');
    last = truncated ? "mptunnel_scrape_truncated 1\n" : "mptunnel_scrape_truncated 0\n";
    ASSERT(len >= strlen(last) && strcmp(buf + len - strlen(last), last) == 0);
}

static void test_prom_writer(void)
{
    static char buf[4096];
    struct mpt_prom_labels l;
    struct mpt_prom p;
    size_t full;

    mpt_prom_init(&p, buf, sizeof(buf));
    mpt_prom_family(&p, "x_total", "counter", "Back\\slash and\nnewline");
    mpt_prom_labels_reset(&l);
    mpt_prom_label(&l, "path", "a\"b\\c\nd");
    mpt_prom_label(&l, "index", "1");
    mpt_prom_u64(&p, "x_total", &l, 18446744073709551615ull);
    mpt_prom_num(&p, "y", NULL, 0.25);
    mpt_prom_num(&p, "y", NULL, NAN);
    mpt_prom_num(&p, "y", NULL, INFINITY);
    mpt_prom_num(&p, "y", NULL, -INFINITY);
    mpt_prom_finish(&p);
    ASSERT_STR_EQ(buf, "# HELP x_total Back\\\\slash and\\nnewline\n"
                       "# TYPE x_total counter\n"
                       "x_total{path=\"a\\\"b\\\\c\\nd\",index=\"1\"} 18446744073709551615\n"
                       "y 0.25\ny NaN\ny +Inf\ny -Inf\n"
                       "# HELP mptunnel_scrape_truncated 1 if series were left out (text too "
                       "big)\n"
                       "# TYPE mptunnel_scrape_truncated gauge\n"
                       "mptunnel_scrape_truncated 0\n");
    check_text(buf, p.len, 0);

    /* Whatever the room, whole lines only, and the text says when some were left out. */
    mpt_prom_init(&p, buf, sizeof(buf));
    for (int i = 0; i < 40; i++)
        mpt_prom_u64(&p, "some_counter_total", &l, (uint64_t)i);
    mpt_prom_finish(&p);
    ASSERT_EQ(p.truncated, 0);
    full = p.len;
    for (size_t cap = full + 256; cap >= 256; cap--) {
        mpt_prom_init(&p, buf, cap);
        for (int i = 0; i < 40; i++)
            mpt_prom_u64(&p, "some_counter_total", &l, (uint64_t)i);
        mpt_prom_finish(&p);
        ASSERT_LT(p.len, cap);
        check_text(buf, p.len, p.truncated);
        /* Room kept for the last lines is at most 192 bytes. */
        if (cap > full + 192)
            ASSERT_EQ(p.truncated, 0);
        if (cap <= full)
            ASSERT_EQ(p.truncated, 1);
    }

    /* A label set too long for its buffer drops the label that does not fit. */
    {
        static char big[1000];
        memset(big, 'v', sizeof(big) - 1);
        mpt_prom_labels_reset(&l);
        mpt_prom_label(&l, "a", "1");
        mpt_prom_label(&l, "b", big);
        ASSERT_STR_EQ(l.buf, "a=\"1\"");
    }
}

static const uint8_t secret[32] = {1, 2, 3};

static void add_errors(void *drv, struct mpt_udp_errors *e)
{
    mpt_udp_errors_add(e, drv);
}

static unsigned path_mtu(void *drv, unsigned path, const struct mpt_addr *to)
{
    return path == 0 ? 1500 : 0;
}

static void test_client_text(void)
{
    static char buf[1 << 16];
    struct mpt_client_params p = {.secret = secret,
                                  .npaths = 2,
                                  .max_flows = 8,
                                  .flow_timeout_ms = 1000,
                                  .probe_interval_ms = 200};
    struct mpt_status_client_info info;
    struct mpt_status_client *st;
    struct mpt_config cfg;
    struct mpt_client c;
    struct mpt_prom pr;
    struct mpt_udp_errors errors = {.congestion = 9, .unreachable = 2, .gso_resent = 4};

    ASSERT_EQ(mpt_client_init(&c, &p), 0);
    mpt_config_defaults(&cfg);
    cfg.client.npaths = 2;
    snprintf(cfg.client.paths[0].name, sizeof(cfg.client.paths[0].name), "fiber");
    snprintf(cfg.client.paths[1].bridge.host, sizeof(cfg.client.paths[1].bridge.host), "::1");
    cfg.client.paths[1].bridge.port = 4000;
    memset(&info, 0, sizeof(info));
    info.core = &c;
    info.cfg = &cfg;
    info.npaths = 2;
    info.send_errors = add_errors;
    info.mtu = path_mtu;
    info.drv = &errors;
    st = mpt_status_client_new(&info, 1000000);
    ASSERT(st != NULL);
    c.state = MPT_CLIENT_ESTABLISHED;
    c.paths[0].state = MPT_PATH_LOSSY;
    c.paths[0].acks_received = 3;
    c.paths[0].srtt_us = 12500;
    c.paths[0].loss_known = 1;
    c.paths[0].loss_down = 0.125;
    c.paths[0].tx_dgrams = 200;
    c.paths[0].rx_bytes = 20000;
    c.ctr.drops[MPT_DROP_AUTH] = 7;
    c.ctr.drops[MPT_DROP_REPLAY] = 3;
    c.ctr.duplicates = 5;
    c.ctr.queue_full = 6;
    c.ctr.handshakes = 2;
    mpt_prom_init(&pr, buf, sizeof(buf));
    mpt_status_client_prom(st, &pr, 3500000);
    mpt_prom_finish(&pr);
    check_text(buf, pr.len, 0);
    ASSERT(strstr(buf, "mptunnel_info{role=\"client\",version=\"" MPT_VERSION "\"} 1\n"));
    ASSERT(strstr(buf, "\nmptunnel_uptime_seconds 2.5\n"));
    ASSERT(strstr(buf, "\nmptunnel_session_established 1\n"));
    ASSERT(strstr(buf, "\nmptunnel_path_state{index=\"1\",path=\"fiber\",state=\"lossy\"} 1\n"));
    ASSERT(strstr(buf, "\nmptunnel_path_state{index=\"1\",path=\"fiber\",state=\"up\"} 0\n"));
    ASSERT(
        strstr(buf, "\nmptunnel_path_state{index=\"2\",path=\"[::1]:4000\",state=\"down\"} 1\n"));
    ASSERT(strstr(buf, "\nmptunnel_path_rtt_seconds{index=\"1\",path=\"fiber\"} 0.0125\n"));
    /* No RTT and no loss for a path never measured. */
    ASSERT(!strstr(buf, "mptunnel_path_rtt_seconds{index=\"2\""));
    ASSERT(!strstr(buf, "mptunnel_path_loss_ratio{index=\"2\""));
    ASSERT(strstr(buf, "\nmptunnel_path_loss_ratio{index=\"1\",path=\"fiber\",direction=\"down\"} "
                       "0.125\n"));
    ASSERT(strstr(buf, "\nmptunnel_path_sent_packets_total{index=\"1\",path=\"fiber\"} 200\n"));
    ASSERT(strstr(buf, "\nmptunnel_path_received_bytes_total{index=\"1\",path=\"fiber\"} 20000\n"));
    ASSERT(strstr(buf, "\n# TYPE mptunnel_rejected_packets_total counter\n"));
    ASSERT(strstr(buf, "\nmptunnel_rejected_packets_total{reason=\"auth_failed\"} 7\n"));
    ASSERT(strstr(buf, "\nmptunnel_rejected_packets_total{reason=\"replay\"} 3\n"));
    ASSERT(strstr(buf, "\nmptunnel_duplicate_packets_total 5\n"));
    ASSERT(strstr(buf, "\nmptunnel_handshakes_total 2\n"));
    ASSERT(strstr(buf, "\nmptunnel_send_errors_total{kind=\"congestion\"} 9\n"));
    ASSERT(strstr(buf, "\nmptunnel_send_errors_total{kind=\"too_big\"} 0\n"));
    ASSERT(strstr(buf, "\nmptunnel_send_errors_total{kind=\"unreachable\"} 2\n"));
    ASSERT(strstr(buf, "\nmptunnel_send_errors_total{kind=\"other\"} 0\n"));
    ASSERT(strstr(buf, "\nmptunnel_gso_resent_total 4\n"));
    ASSERT(strstr(buf, "\nmptunnel_queue_full_total 6\n"));
    ASSERT(strstr(buf, "\nmptunnel_path_mtu_bytes{index=\"1\",path=\"fiber\"} 1500\n"));
    ASSERT(!strstr(buf, "mptunnel_path_mtu_bytes{index=\"2\""));
    mpt_status_client_free(st);
    mpt_client_free(&c);
}

static void test_server_text(void)
{
    static char buf[1 << 20];
    struct mpt_server_params p = {.secret = secret,
                                  .max_sessions = 64,
                                  .max_flows = 8,
                                  .flow_timeout_ms = 1000,
                                  .session_timeout_ms = 2000,
                                  .ntargets = 1};
    struct mpt_status_server_info info;
    struct mpt_status_server *st;
    struct mpt_config cfg;
    struct mpt_server s;
    struct mpt_prom pr;
    char *small;

    ASSERT_EQ(mpt_server_init(&s, &p), 0);
    mpt_config_defaults(&cfg);
    memset(&info, 0, sizeof(info));
    info.core = &s;
    info.cfg = &cfg;
    st = mpt_status_server_new(&info, 0);
    ASSERT(st != NULL);
    for (unsigned k = 0; k < 64; k++) {
        struct mpt_server_session *ss = &s.sessions[k];
        ss->sid = 0x1000 + k;
        ss->npaths = MPT_MAX_PATHS;
        for (unsigned i = 0; i < MPT_MAX_PATHS; i++) {
            struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1000 + i)};
            sin.sin_addr.s_addr = htonl(0x7f000001);
            mpt_addr_set(&ss->paths[i].addr, (struct sockaddr *)&sin);
            ss->paths[i].id = i == 3 ? MPT_PATH_ID_UNKNOWN : (uint8_t)i;
            ss->paths[i].state = MPT_PATH_UP;
            ss->paths[i].rx_dgrams = 100 + i;
        }
    }
    s.session_slots.used = 64;
    mpt_prom_init(&pr, buf, sizeof(buf));
    mpt_status_server_prom(st, &pr, 2000000);
    mpt_prom_finish(&pr);
    check_text(buf, pr.len, 0);
    ASSERT(strstr(buf, "mptunnel_info{role=\"server\""));
    ASSERT(strstr(buf, "\nmptunnel_sessions 64\n"));
    ASSERT(strstr(buf, "\nmptunnel_path_received_packets_total{session=\"0000000000001002\","
                       "path=\"3\",remote=\"127.0.0.1:1002\"} 102\n"));
    ASSERT(strstr(buf, "{session=\"0000000000001002\",path=\"unknown\",remote=\"127.0.0.1:1003\","
                       "state=\"up\"} 1\n"));
    /* Families stay together: one TYPE line each. */
    ASSERT(strstr(buf, "# TYPE mptunnel_path_state gauge") ==
           strstr(buf, "# TYPE mptunnel_path_state"));
    /* Too big for the room: cut, marked, still whole lines. */
    small = malloc(20000);
    ASSERT(small != NULL);
    mpt_prom_init(&pr, small, 20000);
    mpt_status_server_prom(st, &pr, 2000000);
    mpt_prom_finish(&pr);
    check_text(small, pr.len, 1);
    free(small);
    mpt_status_server_free(st);
    mpt_server_free(&s);
}

/* One case a line: CMake reads the names from here. */
/* clang-format off */
static const struct task_case cases[] = {
    {"http_request", test_http_request},
    {"http_limits", test_http_limits},
    {"prom_writer", test_prom_writer},
    {"client_text", test_client_text},
    {"server_text", test_server_text},
    {NULL, NULL},
};
/* clang-format on */

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
