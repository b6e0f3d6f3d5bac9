/* Spectral norm of the infinite matrix A(i, j) = 1 / ((i + j) * (i + j + 1) / 2 + i + 1),
 * after the Computer Language Benchmarks Game (10 power iterations). Twin of
 * examples/spectral_norm.mini.
 * usage: spectral_norm [n] */
#include "bench.h"

static double eval_a(int64_t i, int64_t j) {
    /* all operands are non-negative: C's / is mini's // here */
    return 1.0 / (double)((i + j) * (i + j + 1) / 2 + i + 1);
}

static void mul_av(int64_t n, const double *v, double *av) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < n; j++) {
            s += eval_a(i, j) * v[j];
        }
        av[i] = s;
    }
}

static void mul_atv(int64_t n, const double *v, double *atv) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < n; j++) {
            s += eval_a(j, i) * v[j];
        }
        atv[i] = s;
    }
}

static void mul_atav(int64_t n, const double *v, double *atav, double *tmp) {
    mul_av(n, v, tmp);
    mul_atv(n, tmp, atav);
}

static double *array(int64_t n, double value) {
    double *a = malloc((n > 0 ? (size_t)n : 1) * sizeof *a);
    if (a == NULL) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) {
        a[i] = value;
    }
    return a;
}

static double spectral_norm(int64_t n) {
    double *u = array(n, 1.0);
    double *v = array(n, 0.0);
    double *tmp = array(n, 0.0);
    for (int k = 0; k < 10; k++) {
        mul_atav(n, u, v, tmp);
        mul_atav(n, v, u, tmp);
    }
    double vbv = 0.0;
    double vv = 0.0;
    for (int64_t i = 0; i < n; i++) {
        vbv += u[i] * v[i];
        vv += v[i] * v[i];
    }
    free(u);
    free(v);
    free(tmp);
    return sqrt(vbv / vv);
}

int main(int argc, char **argv) {
    int64_t n = arg_or(argc, argv, 500);
    print_float(spectral_norm(n));
    return 0;
}
