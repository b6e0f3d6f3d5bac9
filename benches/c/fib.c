/* Recursive Fibonacci: a benchmark of function calls. Twin of examples/fib.mini.
 * usage: fib [n] */
#include "bench.h"

static int64_t fib(int64_t n) {
    if (n < 2) {
        return n;
    }
    return fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv) {
    int64_t n = arg_or(argc, argv, 32);
    printf("%" PRId64 "\n", fib(n));
    return 0;
}
