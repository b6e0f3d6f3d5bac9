/* n-body simulation of the Jovian planets, after the Computer Language Benchmarks Game.
 * Bodies are kept in flat float arrays (x, y, z, vx, vy, vz, mass) as in examples/nbody.mini;
 * prints the raw energies (same repr as mini) before and after. Twin of examples/nbody.mini.
 * usage: nbody [steps] */
#include "bench.h"

#define PI 3.141592653589793
#define SOLAR_MASS (4.0 * PI * PI)
#define DAYS_PER_YEAR 365.24
#define NB 5

static void setup(double *x, double *y, double *z, double *vx, double *vy, double *vz, double *m) {
    /* sun */
    x[0] = 0.0;
    y[0] = 0.0;
    z[0] = 0.0;
    vx[0] = 0.0;
    vy[0] = 0.0;
    vz[0] = 0.0;
    m[0] = SOLAR_MASS;
    /* jupiter */
    x[1] = 4.84143144246472090;
    y[1] = -1.16032004402742839;
    z[1] = -1.03622044471123109e-01;
    vx[1] = 1.66007664274403694e-03 * DAYS_PER_YEAR;
    vy[1] = 7.69901118419740425e-03 * DAYS_PER_YEAR;
    vz[1] = -6.90460016972063023e-05 * DAYS_PER_YEAR;
    m[1] = 9.54791938424326609e-04 * SOLAR_MASS;
    /* saturn */
    x[2] = 8.34336671824457987;
    y[2] = 4.12479856412430479;
    z[2] = -4.03523417114321381e-01;
    vx[2] = -2.76742510726862411e-03 * DAYS_PER_YEAR;
    vy[2] = 4.99852801234917238e-03 * DAYS_PER_YEAR;
    vz[2] = 2.30417297573763929e-05 * DAYS_PER_YEAR;
    m[2] = 2.85885980666130812e-04 * SOLAR_MASS;
    /* uranus */
    x[3] = 12.8943695621391310;
    y[3] = -15.1111514016986312;
    z[3] = -2.23307578892655734e-01;
    vx[3] = 2.96460137564761618e-03 * DAYS_PER_YEAR;
    vy[3] = 2.37847173959480950e-03 * DAYS_PER_YEAR;
    vz[3] = -2.96589568540237556e-05 * DAYS_PER_YEAR;
    m[3] = 4.36624404335156298e-05 * SOLAR_MASS;
    /* neptune */
    x[4] = 15.3796971148509165;
    y[4] = -25.9193146099879641;
    z[4] = 1.79258772950371181e-01;
    vx[4] = 2.68067772490389322e-03 * DAYS_PER_YEAR;
    vy[4] = 1.62824170038242295e-03 * DAYS_PER_YEAR;
    vz[4] = -9.51592254519715870e-05 * DAYS_PER_YEAR;
    m[4] = 5.15138902046611451e-05 * SOLAR_MASS;
}

static void offset_momentum(double *vx, double *vy, double *vz, const double *m, int64_t nb) {
    double px = 0.0;
    double py = 0.0;
    double pz = 0.0;
    for (int64_t i = 0; i < nb; i++) {
        px += vx[i] * m[i];
        py += vy[i] * m[i];
        pz += vz[i] * m[i];
    }
    vx[0] = -px / SOLAR_MASS;
    vy[0] = -py / SOLAR_MASS;
    vz[0] = -pz / SOLAR_MASS;
}

static double energy(const double *x, const double *y, const double *z, const double *vx, const double *vy,
                     const double *vz, const double *m, int64_t nb) {
    double e = 0.0;
    for (int64_t i = 0; i < nb; i++) {
        e += 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i]);
        for (int64_t j = i + 1; j < nb; j++) {
            double dx = x[i] - x[j];
            double dy = y[i] - y[j];
            double dz = z[i] - z[j];
            e -= m[i] * m[j] / sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static void advance(double *x, double *y, double *z, double *vx, double *vy, double *vz, const double *m, int64_t nb,
                    int64_t steps, double dt) {
    for (int64_t step = 0; step < steps; step++) {
        for (int64_t i = 0; i < nb; i++) {
            for (int64_t j = i + 1; j < nb; j++) {
                double dx = x[i] - x[j];
                double dy = y[i] - y[j];
                double dz = z[i] - z[j];
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * sqrt(d2));
                double mi = m[i] * mag;
                double mj = m[j] * mag;
                vx[i] -= dx * mj;
                vy[i] -= dy * mj;
                vz[i] -= dz * mj;
                vx[j] += dx * mi;
                vy[j] += dy * mi;
                vz[j] += dz * mi;
            }
        }
        for (int64_t i = 0; i < nb; i++) {
            x[i] += dt * vx[i];
            y[i] += dt * vy[i];
            z[i] += dt * vz[i];
        }
    }
}

int main(int argc, char **argv) {
    int64_t steps = arg_or(argc, argv, 1000000);
    double x[NB] = {0.0};
    double y[NB] = {0.0};
    double z[NB] = {0.0};
    double vx[NB] = {0.0};
    double vy[NB] = {0.0};
    double vz[NB] = {0.0};
    double m[NB] = {0.0};
    setup(x, y, z, vx, vy, vz, m);
    offset_momentum(vx, vy, vz, m, NB);
    print_float(energy(x, y, z, vx, vy, vz, m, NB));
    advance(x, y, z, vx, vy, vz, m, NB, steps, 0.01);
    print_float(energy(x, y, z, vx, vy, vz, m, NB));
    return 0;
}
