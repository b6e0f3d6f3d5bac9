/* The GIL demo's reference: the same sum of integer hashes on one thread, then split across k
 * POSIX threads (default 2), timed in-process and printed in gil_demo.mini's format. It shows
 * what this machine gives two threads of native code, in the same run as mini's rows. Twin of
 * examples/gil_demo.mini.
 * usage: gil_demo [n [k]] */
#include "bench.h"
#include <pthread.h>
#include <time.h>

typedef struct {
    int64_t lo, hi, sum;
} Slice;

static void *work(void *arg) {
    Slice *s = arg;
    int64_t sum = 0;
    for (int64_t i = s->lo; i < s->hi; i++) {
        /* every value is non-negative: C's % is mini's here */
        int64_t x = (i * 1103515245 + 12345) % 2147483648;
        x = (x * 1103515245 + 12345) % 2147483648;
        x = (x * 1103515245 + 12345) % 2147483648;
        sum += x % 1000;
    }
    s->sum = sum;
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int64_t n = arg_or(argc, argv, 5000000);
    int64_t k = argc > 2 ? arg_or(argc - 1, argv + 1, 2) : 2;
    if (k < 1 || k > 64) {
        fprintf(stderr, "error: k must be 1 to 64\n");
        return 1;
    }
    Slice warm = {0, 1000, 0};
    work(&warm);

    double t0 = now();
    Slice whole = {0, n, 0};
    work(&whole);
    double t1 = now() - t0;

    t0 = now();
    pthread_t threads[64];
    Slice parts[64];
    for (int64_t t = 0; t < k; t++) {
        parts[t] = (Slice){t * n / k, (t + 1) * n / k, 0};
        if (pthread_create(&threads[t], NULL, work, &parts[t]) != 0) {
            fprintf(stderr, "error: cannot start a thread\n");
            return 1;
        }
    }
    int64_t sum = 0;
    for (int64_t t = 0; t < k; t++) {
        pthread_join(threads[t], NULL);
        sum += parts[t].sum;
    }
    double t2 = now() - t0;

    printf("1 thread: %.9f s, result %" PRId64 "\n", t1, whole.sum);
    printf("%" PRId64 " threads: %.9f s, result %" PRId64 "\n", k, t2, sum);
    printf("speedup: %.9f\n", t1 / t2);
    puts(whole.sum == sum ? "results match" : "results differ!");
    return 0;
}
