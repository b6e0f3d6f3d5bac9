/* Fill a float array of n elements with i * 0.5, then sum it. Twin of examples/array_sum.mini.
 * usage: array_sum [n] */
#include "bench.h"

static void fill(double *a, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        a[i] = (double)i * 0.5;
    }
}

static double total(const double *a, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s += a[i];
    }
    return s;
}

int main(int argc, char **argv) {
    int64_t n = arg_or(argc, argv, 20000000);
    /* array(n, 0.0) */
    double *a = calloc(n > 0 ? (size_t)n : 1, sizeof *a);
    if (a == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    fill(a, n);
    print_float(total(a, n));
    free(a);
    return 0;
}
