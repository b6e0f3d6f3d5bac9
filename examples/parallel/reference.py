"""The check results of the examples here (`# args: check ...`), computed by Python from the
programs' arithmetic and lang-spec/parallel.md's block rule, independently of mini."""
import math


def blocked_sum(n, f):
    b = max(64, -(-n // 256))
    acc = 0.0
    for k in range(-(-n // b)):
        p = -0.0
        for i in range(k * b, min((k + 1) * b, n)):
            p += f(i)
        acc += p
    return acc


print("sqrt_sum:", repr(blocked_sum(100000, lambda i: math.sqrt(i))))


def mandelbrot(size, maxit=255):
    total = 0
    for y in range(size):
        ci = 2.0 * y / size - 1.0
        for x in range(size):
            cr = 3.0 * x / size - 2.0
            zr = zi = 0.0
            k = 0
            while k < maxit and zr * zr + zi * zi <= 4.0:
                t = zr * zr - zi * zi + cr
                zi = 2.0 * zr * zi + ci
                zr = t
                k += 1
            total += k
    return total


print("mandelbrot:", mandelbrot(60))


def matmul(n):
    a = [[((i * 31 + j * 17 + 1) % 101) / 100.0 for j in range(n)] for i in range(n)]
    b = [[((i * 31 + j * 17 + 2) % 101) / 100.0 for j in range(n)] for i in range(n)]
    total = 0.0
    for i in range(n):
        for j in range(n):
            s = 0.0
            for k in range(n):
                s += a[i][k] * b[k][j]
            total += s
    return total


print("matmul:", repr(matmul(40)))


def histogram(n, bins=10):
    h = [0] * bins
    x = 12345
    for _ in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        h[(x >> 8) % bins] += 1
    return h


print("histogram:", histogram(100000))
