# Mandelbrot set: count the points of a size x size grid over [-1.5, 0.5] x [-1, 1]
# that stay within radius 2 for 50 iterations. Twin of examples/mandelbrot.mini.
import sys


def inside(cr, ci, max_iter):
    zr = 0.0
    zi = 0.0
    for _ in range(max_iter):
        tr = zr * zr - zi * zi + cr
        ti = 2.0 * zr * zi + ci
        zr = tr
        zi = ti
        if zr * zr + zi * zi > 4.0:
            return False
    return True


def mandelbrot(size, max_iter):
    count = 0
    for y in range(size):
        ci = 2.0 * y / size - 1.0
        for x in range(size):
            cr = 2.0 * x / size - 1.5
            if inside(cr, ci, max_iter):
                count += 1
    return count


size = 800
if len(sys.argv) > 1:
    size = int(sys.argv[1])
print(mandelbrot(size, 50))
