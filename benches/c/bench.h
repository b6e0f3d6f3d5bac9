/* Shared by the C versions of the examples (benches/c/<name>.c, twins of examples/<name>.mini):
 * the size argument and printing floats exactly as mini (and Python's repr) does. */
#ifndef MINI_BENCH_H
#define MINI_BENCH_H

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keep every a * b + c a multiply and an add, as in mini and Python: a fused multiply-add
 * rounds once and would change the printed floats (GCC fuses by default where FMA exists). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* The first command-line argument as an int, or `fallback` when there is none
 * (as `if len(args()) > 0 { n = int(args()[0]) }`). */
static inline int64_t arg_or(int argc, char **argv, int64_t fallback) {
    if (argc < 2) {
        return fallback;
    }
    char *end;
    int64_t n = strtoll(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0') {
        fprintf(stderr, "error: not an int: %s\n", argv[1]);
        exit(1);
    }
    return n;
}

/* Prints x and a newline like Python's repr: the shortest digits that read back to the same
 * double, fixed notation for decimal exponents -4..15 ("0.1", "1.0"), exponent notation
 * otherwise ("1e+16", "1.5e-07"), "inf", "-inf", "nan". */
static inline void print_float(double x) {
    if (isnan(x)) {
        puts("nan");
        return;
    }
    if (isinf(x)) {
        puts(x > 0 ? "inf" : "-inf");
        return;
    }
    if (x == 0.0) {
        puts(signbit(x) ? "-0.0" : "0.0");
        return;
    }
    /* shortest "d.ddde±x" that round-trips */
    char sci[40];
    for (int precision = 0; precision <= 16; precision++) {
        snprintf(sci, sizeof sci, "%.*e", precision, fabs(x));
        if (strtod(sci, NULL) == fabs(x)) {
            break;
        }
    }
    char *e = strchr(sci, 'e');
    int exp = atoi(e + 1);
    char digits[24];
    int len = 0;
    for (char *c = sci; c < e; c++) {
        if (*c != '.') {
            digits[len++] = *c;
        }
    }
    digits[len] = '\0';

    char out[400];
    int pos = 0;
    if (x < 0) {
        out[pos++] = '-';
    }
    if (exp >= -4 && exp < 16) {
        int point = exp + 1;
        if (point <= 0) {
            pos += sprintf(out + pos, "0.%.*s%s", -point, "0000", digits);
        } else if (point >= len) {
            pos += sprintf(out + pos, "%s%.*s.0", digits, point - len, "0000000000000000");
        } else {
            pos += sprintf(out + pos, "%.*s.%s", point, digits, digits + point);
        }
    } else {
        pos += sprintf(out + pos, "%c", digits[0]);
        if (len > 1) {
            pos += sprintf(out + pos, ".%s", digits + 1);
        }
        pos += sprintf(out + pos, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    }
    puts(out);
}

#endif
