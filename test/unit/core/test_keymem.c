/* Key memory (mpt_secure_alloc): zeroed, locked, out of core dumps, between guard pages; the
 * client's and server's keys live there. What the kernel says about each mapping is read from
 * /proc/self/smaps: "lo" is VM_LOCKED, "dd" is VM_DONTDUMP. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/client.h"
#include "core/crypto.h"
#include "core/server.h"
#include "task.h"

/* The VmFlags of the mapping that holds p, into flags ("" if none is found). */
static void vm_flags(const void *p, char *flags, size_t len)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int inside = 0;

    flags[0] = '\0';
    ASSERT(f != NULL);
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = (unsigned long)p >= lo && (unsigned long)p < hi;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, len, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

static int has_flag(const char *flags, const char *flag)
{
    char want[8];

    snprintf(want, sizeof(want), " %s", flag);
    for (const char *s = flags; (s = strstr(s, want)); s++)
        if (s[strlen(want)] == ' ' || s[strlen(want)] == '\n' || s[strlen(want)] == '\0')
            return 1;
    return 0;
}

static long vm_lck_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    ASSERT(f != NULL);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

#if defined(__SANITIZE_ADDRESS__)
#define MPT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPT_ASAN 1
#endif
#endif

/* Locking needs RLIMIT_MEMLOCK room (or CAP_IPC_LOCK, which root has). AddressSanitizer makes
 * mlock() a no-op: there only MADV_DONTDUMP can be checked. */
static int can_lock(size_t bytes)
{
    struct rlimit rl;

#ifdef MPT_ASAN
    fprintf(stderr, "  (AddressSanitizer ignores mlock: the lock is not checked)\n");
    return 0;
#endif
    return geteuid() == 0 || (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
                              (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= bytes + (64u << 10)));
}

/* 1 if writing at p kills a child process (a guard page). */
static int write_faults(volatile unsigned char *p)
{
    int status;
    pid_t pid = fork();

    ASSERT(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        *p = 1;
        _exit(0);
    }
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    /* Killed by SIGSEGV, or (under AddressSanitizer) reported and exited non-zero. */
    return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

static void test_secure_alloc(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), size = 3 * page - 100;
    long before = vm_lck_kb(), during;
    int locked = -1;
    unsigned char *p = mpt_secure_alloc(size, &locked);
    char flags[512];

    ASSERT(p != NULL);
    for (size_t i = 0; i < size; i++)
        ASSERT_EQ(p[i], 0);
    memset(p, 0xa5, size);
    vm_flags(p, flags, sizeof(flags));
    fprintf(stderr, "  VmFlags of the key memory:%s", flags);
    ASSERT(has_flag(flags, "dd"));
    during = vm_lck_kb();
    fprintf(stderr, "  VmLck %ld kB -> %ld kB for %zu bytes\n", before, during, size);
    if (can_lock(size)) {
        ASSERT_EQ(locked, 1);
        ASSERT(has_flag(flags, "lo"));
        ASSERT_GE(during - before, (long)(3 * page / 1024));
    }
    /* Guard pages on both sides of the rounded region. */
    ASSERT(write_faults(p - 1));
    ASSERT(write_faults(p + 3 * page));
    ASSERT(!write_faults(p + size - 1));
    mpt_secure_free(p, size);
    ASSERT_EQ(vm_lck_kb(), before);
    mpt_secure_free(NULL, 10);
    ASSERT(mpt_secure_alloc(0, NULL) == NULL);
}

static void test_large_not_locked(void)
{
    size_t size = MPT_SECURE_LOCK_MAX + 1;
    long before = vm_lck_kb();
    int locked = -1;
    unsigned char *p = mpt_secure_alloc(size, &locked);
    char flags[512];

    ASSERT(p != NULL);
    p[size - 1] = 1;
    vm_flags(p, flags, sizeof(flags));
    ASSERT(has_flag(flags, "dd"));
    ASSERT(!has_flag(flags, "lo"));
    ASSERT_EQ(locked, 0);
    ASSERT_EQ(vm_lck_kb(), before);
    mpt_secure_free(p, size);
}

static void test_endpoint_keys(void)
{
    static const uint8_t secret[32] = {1, 2, 3};
    struct mpt_client_params cp = {0};
    struct mpt_server_params sp = {0};
    static struct mpt_client c;
    static struct mpt_server s;
    char flags[512];

    cp.secret = secret;
    cp.npaths = 1;
    cp.max_flows = 4;
    cp.probe_interval_ms = 200;
    cp.flow_timeout_ms = 1000;
    ASSERT_EQ(mpt_client_init(&c, &cp), 0);
    vm_flags(c.sec, flags, sizeof(flags));
    fprintf(stderr, "  client keys:%s", flags);
    ASSERT(has_flag(flags, "dd"));

    sp.secret = secret;
    sp.max_sessions = 8;
    sp.max_flows = 8;
    sp.ntargets = 1;
    sp.flow_timeout_ms = 1000;
    sp.session_timeout_ms = 1000;
    ASSERT_EQ(mpt_server_init(&s, &sp), 0);
    vm_flags(s.sec, flags, sizeof(flags));
    fprintf(stderr, "  server keys:%s", flags);
    ASSERT(has_flag(flags, "dd"));
    vm_flags(&s.sessions[7].keys, flags, sizeof(flags));
    fprintf(stderr, "  server sessions:%s", flags);
    ASSERT(has_flag(flags, "dd"));
    if (can_lock(64u << 10)) {
        ASSERT(has_flag(flags, "lo"));
        ASSERT_GT(vm_lck_kb(), 0);
    }
    mpt_client_free(&c);
    mpt_server_free(&s);
    ASSERT(c.sec == NULL && s.sec == NULL && s.sessions == NULL);
}

static const struct task_case cases[] = {
    {"secure_alloc", test_secure_alloc},
    {"large_not_locked", test_large_not_locked},
    {"endpoint_keys", test_endpoint_keys},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
