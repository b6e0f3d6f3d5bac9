"""Independent Python computations of the results the programs in this folder print (their
`# expect:` lines): the sum of square roots of 0 .. n-1 cut into 64 blocks and added in block
order (sqrt_forked, sqrt_pmap, sqrt_mpi with `check 100000`), and shared_array.mini's table."""
import math

BLOCKS = 64


def block_sum(b, n):
    s = 0.0
    for i in range(b * n // BLOCKS, (b + 1) * n // BLOCKS):
        s += math.sqrt(i)
    return s


def sqrt_total(n):
    s = 0.0
    for b in range(BLOCKS):
        s += block_sum(b, n)
    return s


def table_sum(rows, cols):
    s = 0.0
    for k in range(rows * cols):
        s += math.sqrt(k)
    return s


if __name__ == "__main__":
    print("sqrt_* check 100000:", repr(sqrt_total(100000)))
    print("shared_array sum:", repr(table_sum(8, 1000)), "sqrt(7999):", repr(math.sqrt(7999)))
