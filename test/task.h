/* Minimal assertion helpers for mptunnel tests: each failure prints both operands. */
#ifndef MPT_TEST_TASK_H
#define MPT_TEST_TASK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT(expr)                                                                               \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #expr);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define ASSERT_CMP_(a, op, b, type, fmt)                                                           \
    do {                                                                                           \
        type a_ = (type)(a);                                                                       \
        type b_ = (type)(b);                                                                       \
        if (!(a_ op b_)) {                                                                         \
            fprintf(stderr, "%s:%d: assertion failed: %s %s %s (" fmt " %s " fmt ")\n", __FILE__, \
                    __LINE__, #a, #op, #b, a_, #op, b_);                                           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b, int64_t, "%" PRId64)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b, int64_t, "%" PRId64)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b, int64_t, "%" PRId64)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b, int64_t, "%" PRId64)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b, int64_t, "%" PRId64)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b, int64_t, "%" PRId64)
#define ASSERT_DBL_LE(a, b) ASSERT_CMP_(a, <=, b, double, "%.6f")
#define ASSERT_DBL_GE(a, b) ASSERT_CMP_(a, >=, b, double, "%.6f")

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (strcmp(a_, b_) != 0) {                                                                 \
            fprintf(stderr, "%s:%d: assertion failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,    \
                    __LINE__, #a, #b, a_, b_);                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n) ASSERT(memcmp((a), (b), (n)) == 0)

/* A test program holds a table of cases; main runs the one named in argv[1], or all. */
struct task_case {
    const char *name;
    void (*fn)(void);
};

static inline int task_run(const struct task_case *cases, int argc, char **argv)
{
    int ran = 0;
    for (const struct task_case *c = cases; c->name; c++) {
        if (argc > 1 && strcmp(argv[1], c->name) != 0)
            continue;
        c->fn();
        printf("ok %s\n", c->name);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "no such case: %s\n", argc > 1 ? argv[1] : "(none)");
        return 1;
    }
    return 0;
}

#endif
