/* Mandelbrot set: count the points of a size x size grid over [-1.5, 0.5] x [-1, 1]
 * that stay within radius 2 for 50 iterations. Twin of examples/mandelbrot.mini.
 * usage: mandelbrot [size] */
#include "bench.h"

static int inside(double cr, double ci, int64_t max_iter) {
    double zr = 0.0;
    double zi = 0.0;
    for (int64_t k = 0; k < max_iter; k++) {
        double tr = zr * zr - zi * zi + cr;
        double ti = 2.0 * zr * zi + ci;
        zr = tr;
        zi = ti;
        if (zr * zr + zi * zi > 4.0) {
            return 0;
        }
    }
    return 1;
}

static int64_t mandelbrot(int64_t size, int64_t max_iter) {
    int64_t count = 0;
    for (int64_t y = 0; y < size; y++) {
        double ci = 2.0 * (double)y / (double)size - 1.0;
        for (int64_t x = 0; x < size; x++) {
            double cr = 2.0 * (double)x / (double)size - 1.5;
            if (inside(cr, ci, max_iter)) {
                count += 1;
            }
        }
    }
    return count;
}

int main(int argc, char **argv) {
    int64_t size = arg_or(argc, argv, 800);
    printf("%" PRId64 "\n", mandelbrot(size, 50));
    return 0;
}
