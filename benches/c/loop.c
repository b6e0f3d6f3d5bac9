/* A tight integer loop: sum of i % 7 for i below n. Twin of examples/loop.mini.
 * usage: loop [n] */
#include "bench.h"

static int64_t loop(int64_t n) {
    int64_t s = 0;
    int64_t i = 0;
    while (i < n) {
        s += i % 7;
        i += 1;
    }
    return s;
}

int main(int argc, char **argv) {
    int64_t n = arg_or(argc, argv, 100000000);
    printf("%" PRId64 "\n", loop(n));
    return 0;
}
