# A tight integer loop: sum of i % 7 for i below n. Twin of examples/loop.mini.
import sys


def loop(n):
    s = 0
    i = 0
    while i < n:
        s += i % 7
        i += 1
    return s


n = 100_000_000
if len(sys.argv) > 1:
    n = int(sys.argv[1])
print(loop(n))
