#!/usr/bin/env python3
"""The `# expect:` values of this folder's programs, computed in Python from the arithmetic of
the kernels in examples/bench/ and the block rule of `mini bench` (lang-spec/cli.md: B blocks,
block b = [b*n//B, (b+1)*n//B), results combined in block order), independently of mini.
Run it from anywhere: `python3 tests/bench_kernels/reference.py`; each line names the program and
the value it expects."""

import math

NB = 64


def blocks(n, nb=NB):
    """The blocks' (lo, hi) in block order."""
    return [(b * n // nb, (b + 1) * n // nb) for b in range(nb)]


def sqrt_sum_work(lo, hi):
    s = 0.0
    for i in range(lo, hi):
        s += math.sqrt(i)
    return s


def blocked(work, n):
    """The results of work over the blocks of [0, n), added in block order as `mini bench` does."""
    parts = [work(lo, hi) for lo, hi in blocks(n)]
    s = parts[0]
    for p in parts[1:]:
        s += p
    return s


def shared_data(n):
    """shared_array.mini's `fill(n)`: a linear congruential sequence scaled to [0, 1000)."""
    a, x = [], 12345
    for _ in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        a.append(x // 2147484)
    return a


DATA = 4_000_000


def shared_array_work(data):
    def work(lo, hi):
        return sum(data[i % DATA] ** 2 % 1009 * (i % 7 + 1) for i in range(lo, hi))
    return work


def heavy(i):
    x = float(i) * 0.001
    return math.sin(x) * math.sqrt(x) + math.cos(x)


def main():
    print("sqrt_sum.mini, compiled_sqrt_sum.mini:", repr(blocked(sqrt_sum_work, 10_000)))
    data = shared_data(DATA)
    work = shared_array_work(data)
    print("shared_array.mini, compiled_shared_array.mini:", blocked(work, 100_000))
    print("shared_array.mini (wrapping):", work(DATA - 3, DATA + 3))
    print("shared_array.mini (first elements):", data[:5])
    total = 0.0
    for i in range(10_000):
        total += heavy(i)
    print("heavy_results.mini, compiled_heavy_results.mini:", repr(total), repr(heavy(9_999)))
    print("sleep_io.mini:", sum(range(200)))


main()
