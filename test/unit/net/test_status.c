/* The status document's writer, the control socket's path, and the control socket itself. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "task.h"

#include "config/config.h"
#include "net/control.h"
#include "net/status.h"

/* A structural check of JSON text: strings closed, brackets balanced and matched. */
static int json_balanced(const char *s)
{
    char stack[64];
    int depth = 0, in_str = 0;

    for (; *s; s++) {
        if (in_str) {
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '"')
                in_str = 0;
            continue;
        }
        if (*s == '"')
            in_str = 1;
        else if (*s == '{' || *s == '[')
            stack[depth++] = *s == '{' ? '}' : ']';
        else if (*s == '}' || *s == ']') {
            if (depth == 0 || stack[--depth] != *s)
                return 0;
        }
    }
    return depth == 0 && !in_str;
}

static void test_json_basic(void)
{
    char buf[512];
    struct mpt_json j;

    mpt_json_init(&j, buf, sizeof(buf));
    mpt_json_obj(&j, NULL);
    mpt_json_str(&j, "s", "a\"b\\c\n\x01");
    mpt_json_u64(&j, "u", 18446744073709551615ull);
    mpt_json_int(&j, "i", -5);
    mpt_json_num(&j, "n", 0.25);
    mpt_json_num(&j, "nan", 0.0 / 0.0);
    mpt_json_bool(&j, "t", 1);
    mpt_json_null(&j, "z");
    mpt_json_arr(&j, "a");
    mpt_json_u64(&j, NULL, 1);
    mpt_json_obj(&j, NULL);
    mpt_json_end(&j);
    mpt_json_arr(&j, NULL);
    mpt_json_end(&j);
    mpt_json_end(&j);
    mpt_json_end(&j);
    ASSERT_STR_EQ(buf, "{\"s\":\"a\\\"b\\\\c\\u000a\\u0001\",\"u\":18446744073709551615,\"i\":-5,"
                       "\"n\":0.25,\"nan\":null,\"t\":true,\"z\":null,\"a\":[1,{},[]]}");
    ASSERT_EQ(j.truncated, 0);
    ASSERT_EQ(j.len, strlen(buf));
}

/* Whatever the buffer's size, the text is valid, fits, and says when it was cut. */
static void test_json_truncation(void)
{
    static char buf[4096];
    size_t full = 0;

    for (size_t cap = sizeof(buf); cap >= 64; cap--) {
        struct mpt_json j;

        memset(buf, 'X', sizeof(buf));
        mpt_json_init(&j, buf, cap);
        mpt_json_obj(&j, NULL);
        mpt_json_str(&j, "schema", MPT_STATUS_SCHEMA);
        mpt_json_arr(&j, "paths");
        for (int i = 0; i < 20; i++) {
            mpt_json_obj(&j, NULL);
            mpt_json_u64(&j, "index", (uint64_t)i);
            mpt_json_str(&j, "name", "a name with \"quotes\"");
            mpt_json_obj(&j, "tx");
            mpt_json_num(&j, "bps", 1234.5);
            mpt_json_end(&j);
            mpt_json_end(&j);
        }
        mpt_json_end(&j);
        mpt_json_end(&j);
        ASSERT_LT(j.len, cap);
        ASSERT_EQ(buf[j.len], '\0');
        ASSERT_EQ(strlen(buf), j.len);
        ASSERT(json_balanced(buf));
        ASSERT_EQ(j.depth, 0);
        if (j.truncated)
            ASSERT(strstr(buf, "\"truncated\":true}") == buf + j.len - 17);
        else
            ASSERT(strstr(buf, "truncated") == NULL);
        if (cap == sizeof(buf))
            full = j.len;
        /* Room is kept for closing: a text close to the buffer's size may be cut. */
        if (cap <= full)
            ASSERT_EQ(j.truncated, 1);
        if (cap > full + 64)
            ASSERT_EQ(j.truncated, 0);
    }
}

static void test_rate(void)
{
    struct mpt_status_rate r = {0};

    mpt_status_rate_sample(&r, 100, 100000, 1000000);
    ASSERT_DBL_GE(r.pps, 99.999);
    ASSERT_DBL_LE(r.pps, 100.001);
    ASSERT_DBL_GE(r.bps, 799999.9);
    ASSERT_DBL_LE(r.bps, 800000.1);
    mpt_status_rate_sample(&r, 150, 150000, 500000);
    ASSERT_DBL_GE(r.pps, 99.999);
    ASSERT_DBL_LE(r.pps, 100.001);
    /* Counters that went back: a new path in the slot, no rate yet. */
    mpt_status_rate_sample(&r, 10, 1000, 1000000);
    ASSERT_DBL_LE(r.pps, 0);
    ASSERT_EQ(r.dgrams, 10);
}

static void test_control_path(void)
{
    struct mpt_config cfg;
    char buf[256], want[256];

    mpt_config_defaults(&cfg);
    snprintf(cfg.file, sizeof(cfg.file), "/etc/mptunnel/office.ini");
    snprintf(cfg.client.control, sizeof(cfg.client.control), "/x/c.sock");
    ASSERT_EQ(mpt_config_control_path(&cfg, MPT_ROLE_CLIENT, buf, sizeof(buf)), 0);
    ASSERT_STR_EQ(buf, "/x/c.sock");
    ASSERT_EQ(mpt_config_control_path(&cfg, MPT_ROLE_CLIENT, buf, 5), -ENAMETOOLONG);
    ASSERT_EQ(mpt_config_control_path(&cfg, MPT_ROLE_ANY, buf, sizeof(buf)), -EINVAL);

    setenv("RUNTIME_DIRECTORY", "/run/mptunnel:/run/other", 1);
    ASSERT_EQ(mpt_config_control_path(&cfg, MPT_ROLE_SERVER, buf, sizeof(buf)), 0);
    ASSERT_STR_EQ(buf, "/run/mptunnel/server-office.sock");
    unsetenv("RUNTIME_DIRECTORY");

    snprintf(cfg.file, sizeof(cfg.file), "tunnel.conf");
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    ASSERT_EQ(mpt_config_control_path(&cfg, MPT_ROLE_SERVER, buf, sizeof(buf)), 0);
    if (geteuid() == 0)
        snprintf(want, sizeof(want), "/run/mptunnel/server-tunnel.conf.sock");
    else
        snprintf(want, sizeof(want), "/run/user/1000/mptunnel/server-tunnel.conf.sock");
    ASSERT_STR_EQ(buf, want);
    unsetenv("XDG_RUNTIME_DIR");
    if (geteuid() != 0) {
        ASSERT_EQ(mpt_config_control_path(&cfg, MPT_ROLE_SERVER, buf, sizeof(buf)), 0);
        snprintf(want, sizeof(want), "/tmp/mptunnel-%u/server-tunnel.conf.sock",
                 (unsigned)geteuid());
        ASSERT_STR_EQ(buf, want);
    }
}

static const uint8_t secret[32] = {1, 2, 3};

/* What the driver's sockets would say: path 0 has an MTU of 1500 and lost 2 datagrams to a full
 * queue and 1 as too big; path 1's MTU is unknown. */
static unsigned fake_mtu(void *drv, unsigned path, const struct mpt_addr *to)
{
    (void)drv;
    (void)to;
    return path == 0 ? 1500 : 0;
}

static void fake_path_errors(void *drv, unsigned path, struct mpt_udp_errors *e)
{
    (void)drv;
    if (path != 0)
        return;
    e->congestion = 2;
    e->too_big = 1;
}

static void fake_send_errors(void *drv, struct mpt_udp_errors *e)
{
    (void)drv;
    e->congestion += 2;
    e->too_big += 1;
    e->unreachable += 5;
    e->gso_resent += 4;
}

static void test_client_doc(void)
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
    struct mpt_json j;

    ASSERT_EQ(mpt_client_init(&c, &p), 0);
    mpt_config_defaults(&cfg);
    snprintf(cfg.file, sizeof(cfg.file), "t.ini");
    cfg.client.npaths = 2;
    snprintf(cfg.client.paths[0].name, sizeof(cfg.client.paths[0].name), "fiber");
    snprintf(cfg.client.paths[0].bridge.host, sizeof(cfg.client.paths[0].bridge.host), "::1");
    cfg.client.paths[0].bridge.port = 4000;
    cfg.client.paths[0].weight = 3;
    memset(&info, 0, sizeof(info));
    info.core = &c;
    info.cfg = &cfg;
    info.npaths = 2;
    /* Path 0 over IPv6 (48 bytes of IP and UDP headers), path 1 over IPv4 (28). */
    info.remote[0].u.in6.sin6_family = AF_INET6;
    info.remote[1].u.in4.sin_family = AF_INET;
    info.mtu = fake_mtu;
    info.path_errors = fake_path_errors;
    info.send_errors = fake_send_errors;
    st = mpt_status_client_new(&info, 1000000);
    ASSERT(st != NULL);

    c.state = MPT_CLIENT_ESTABLISHED;
    c.sid = 0xabc;
    c.established_us = 2000000;
    c.paths[0].state = MPT_PATH_UP;
    c.paths[0].acks_received = 3;
    c.paths[0].srtt_us = 12500;
    c.paths[0].rttvar_us = 500;
    c.paths[0].loss_down = 0.125;
    c.paths[0].last_rx_us = 2500000;
    c.paths[0].tx_dgrams = 200;
    c.paths[0].tx_bytes = 20000;
    c.data_dgrams = 100;
    c.data_copies = 200;
    c.split.st.split = 5;
    c.split.st.pieces_tx = 15;
    c.split.st.pieces_rx = 9;
    c.split.st.reassembled = 3;
    c.split.st.drops[MPT_SPLIT_DROP_EXPIRED] = 2;
    c.ctr.drops[MPT_DROP_AUTH] = 7;
    mpt_status_client_sample(st, 2000000);
    mpt_json_init(&j, buf, sizeof(buf));
    mpt_status_client_write(st, &j, 3000000);
    ASSERT(json_balanced(buf));
    ASSERT(strstr(buf, "{\"schema\":\"mptunnel-status/2\",\"role\":\"client\"") == buf);
    ASSERT(strstr(buf, "\"uptime_ms\":2000,"));
    ASSERT(strstr(buf, "\"state\":\"established\",\"id\":\"0000000000000abc\",\"age_ms\":1000"));
    ASSERT(strstr(buf, "\"name\":\"fiber\",\"bridge\":\"[::1]:4000\""));
    ASSERT(strstr(buf, "\"weight\":3,\"state\":\"up\""));
    ASSERT(strstr(buf, "\"rtt_ms\":12.5,\"rttvar_ms\":0.5,\"loss\":{\"up\":0,\"down\":0.125"));
    ASSERT(strstr(buf, "\"tx\":{\"packets\":200,\"bytes\":20000,\"bps\":160000,\"pps\":200}"));
    ASSERT(strstr(buf, "\"last_heard_ms\":500}"));
    /* 1500 - 48 - 20 - 16 - 8 */
    ASSERT(strstr(buf, "\"mtu\":1500,\"max_payload\":1408,\"send_errors\":{\"congestion\":2,"
                       "\"too_big\":1,\"unreachable\":0,\"other\":0,\"total\":3,\"gso_resent\":0},"
                       "\"last_heard_ms\":500}"));
    ASSERT(strstr(buf, "\"mtu\":null,\"max_payload\":null,\"send_errors\":{\"congestion\":0,"));
    ASSERT(strstr(buf, "\"send_errors\":{\"congestion\":2,\"too_big\":1,\"unreachable\":5,"
                       "\"other\":0,\"total\":8,\"gso_resent\":4},\"rejected\":"));
    ASSERT_EQ(mpt_status_overhead(&info.remote[1]), 28 + 20 + 16 + 8);
    /* The second path: never heard, no RTT yet. */
    ASSERT(strstr(buf, "\"state\":\"down\",\"state_ms\":null,\"rtt_ms\":null,\"rttvar_ms\":null"));
    ASSERT(strstr(buf, "\"copies_per_packet\":2}"));
    ASSERT(strstr(buf, "\"auth_failed\":7,"));
    ASSERT(strstr(buf, "\"total\":7},\"split\":{\"packets\":5,\"pieces_sent\":15,"
                       "\"pieces_received\":9,\"reassembled\":3,\"dropped\":{\"bad\":0,"
                       "\"duplicate\":0,\"expired\":2,\"evicted\":0}}}"));
    mpt_status_client_free(st);
    mpt_client_free(&c);
}

static void test_server_doc(void)
{
    static char buf[1 << 16];
    struct mpt_server_params p = {.secret = secret,
                                  .max_sessions = 4,
                                  .max_flows = 8,
                                  .flow_timeout_ms = 1000,
                                  .session_timeout_ms = 2000,
                                  .ntargets = 1};
    struct mpt_status_server_info info;
    struct mpt_status_server *st;
    struct mpt_server_session *ss;
    struct mpt_config cfg;
    struct mpt_server s;
    struct mpt_json j;

    ASSERT_EQ(mpt_server_init(&s, &p), 0);
    mpt_config_defaults(&cfg);
    memset(&info, 0, sizeof(info));
    info.core = &s;
    info.cfg = &cfg;
    st = mpt_status_server_new(&info, 0);
    ASSERT(st != NULL);
    ss = &s.sessions[2];
    ss->sid = 0x1234;
    ss->confirmed = 1;
    ss->created_us = 1000;
    ss->npaths = 1;
    ss->paths[0].id = 1;
    ss->paths[0].state = MPT_PATH_LOSSY;
    ss->paths[0].srtt_us = 3000;
    ss->paths[0].rx_dgrams = 50;
    ss->paths[0].rx_bytes = 5000;
    mpt_status_server_sample(st, 1000000);
    ss->paths[0].rx_dgrams = 150;
    ss->paths[0].rx_bytes = 15000;
    mpt_status_server_sample(st, 2000000);
    mpt_json_init(&j, buf, sizeof(buf));
    mpt_status_server_write(st, &j, 2001000);
    ASSERT(json_balanced(buf));
    ASSERT(strstr(buf, "\"role\":\"server\""));
    ASSERT(strstr(buf, "{\"id\":\"0000000000001234\",\"age_ms\":2000,\"last_heard_ms\":null,"
                       "\"confirmed\":true,\"peer\":null,\"keys_age_ms\":null,\"mode\":\"redundant\","
                       "\"flows\":0,\"paths\":["));
    ASSERT(strstr(buf, "\"client_path\":1,"));
    ASSERT(strstr(buf, "\"state\":\"lossy\",\"rtt_ms\":3,"));
    ASSERT(strstr(buf, "\"rx\":{\"packets\":150,\"bytes\":15000,\"bps\":80000,\"pps\":100}"));
    /* No socket behind this one: every count is 0. */
    ASSERT(strstr(buf, "\"send_errors\":{\"congestion\":0,"));
    mpt_status_server_free(st);
    mpt_server_free(&s);
}

/* ---- the control socket on a real loop; queries come from a thread ---- */

struct fixture {
    struct mpt_service svc;
    struct mpt_control *ctl;
    struct mpt_loop *loop;
    char path[96];
    int snapshots, released, closed;
    long results[24];
    char docs[24][256];
    int nq;
};

static void on_snapshot(void *arg, struct mpt_json *j, uint64_t now_us)
{
    struct fixture *f = arg;

    f->snapshots++;
    mpt_json_obj(j, NULL);
    mpt_json_str(j, "schema", MPT_STATUS_SCHEMA);
    mpt_json_int(j, "n", f->snapshots);
    mpt_json_end(j);
}

static void on_release(void *arg)
{
    ((struct fixture *)arg)->released++;
}

static void on_closed(void *arg)
{
    ((struct fixture *)arg)->closed++;
}

static void on_stop(struct mpt_service *svc)
{
    struct fixture *f = (struct fixture *)svc;

    mpt_loop_remove_service(f->loop, svc);
    mpt_control_close(f->ctl, on_closed, f);
}

static void *query_thread(void *arg)
{
    struct fixture *f = arg;

    for (int i = 0; i < f->nq; i++)
        f->results[i] = mpt_control_query(f->path, f->docs[i], sizeof(f->docs[i]), 2000);
    kill(getpid(), SIGINT);
    return NULL;
}

static void stale_socket(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd); /* the file stays, nobody listens */
}

static void test_control_socket(void)
{
    static const struct mpt_control_ops ops = {NULL, on_snapshot, on_release, NULL};
    struct fixture f;
    struct mpt_control *other;
    struct mpt_loop *loop;
    char dir[] = "/tmp/mpt-control-XXXXXX";
    struct stat st;
    pthread_t th;

    memset(&f, 0, sizeof(f));
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(f.path, sizeof(f.path), "%s/sub/c.sock", dir);
    ASSERT_EQ(mpt_loop_new(&loop), 0);

    /* No socket yet: the query says so. */
    ASSERT_EQ(mpt_control_query(f.path, f.docs[0], sizeof(f.docs[0]), 500), -ENOENT);
    ASSERT_EQ(mkdir(strcat(strcpy(f.docs[0], dir), "/sub"), 0700), 0);
    stale_socket(f.path);
    ASSERT_EQ(mpt_control_query(f.path, f.docs[0], sizeof(f.docs[0]), 500), -ECONNREFUSED);

    ASSERT_EQ(mpt_control_start(loop, f.path, &ops, &f, &f.ctl), 0);
    ASSERT_EQ(lstat(f.path, &st), 0);
    ASSERT(S_ISSOCK(st.st_mode));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    /* A second one on a live socket is refused, and releases its argument. */
    ASSERT_EQ(mpt_control_start(loop, f.path, &ops, &f, &other), -EADDRINUSE);
    ASSERT(other == NULL);

    f.svc.stop = on_stop;
    f.loop = loop;
    mpt_loop_add_service(loop, &f.svc);
    f.nq = 3;
    ASSERT_EQ(pthread_create(&th, NULL, query_thread, &f), 0);
    ASSERT_EQ(mpt_loop_run(loop), 0);
    pthread_join(th, NULL);
    ASSERT_EQ(mpt_loop_free(loop), 0);

    /* The probe of the refused second start took a snapshot too. */
    for (int i = 0, last = 0; i < f.nq; i++) {
        int n = 0;
        ASSERT_EQ(sscanf(f.docs[i], "{\"schema\":\"mptunnel-status/2\",\"n\":%d}\n", &n), 1);
        ASSERT_GT(n, last);
        ASSERT_EQ(f.results[i], (long)strlen(f.docs[i]));
        ASSERT_EQ(f.docs[i][f.results[i] - 1], '\n');
        last = n;
    }
    ASSERT_EQ(f.released, 2);
    ASSERT_EQ(f.closed, 1);
    ASSERT_EQ(lstat(f.path, &st), -1); /* removed */

    /* A file that is not a socket is never removed. */
    ASSERT_EQ(mpt_loop_new(&loop), 0);
    {
        FILE *fp = fopen(f.path, "w");
        ASSERT(fp != NULL);
        fclose(fp);
    }
    ASSERT_EQ(mpt_control_start(loop, f.path, &ops, &f, &other), -EEXIST);
    ASSERT_EQ(mpt_loop_free(loop), 0);
    ASSERT_EQ(f.released, 3);
    ASSERT_EQ(lstat(f.path, &st), 0);
    unlink(f.path);
    snprintf(f.docs[0], sizeof(f.docs[0]), "%s/sub", dir);
    rmdir(f.docs[0]);
    rmdir(dir);
}

static const struct task_case cases[] = {
    {"json_basic", test_json_basic},
    {"json_truncation", test_json_truncation},
    {"rate", test_rate},
    {"control_path", test_control_path},
    {"client_doc", test_client_doc},
    {"server_doc", test_server_doc},
    {"control_socket", test_control_socket},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
