# Fill a float array of n elements with i * 0.5, then sum it. Twin of examples/array_sum.mini;
# array.array("d") is the closest Python analogue of mini's unboxed float array.
import sys
from array import array


def fill(a, n):
    for i in range(n):
        a[i] = i * 0.5


def total(a, n):
    s = 0.0
    for i in range(n):
        s += a[i]
    return s


n = 20_000_000
if len(sys.argv) > 1:
    n = int(sys.argv[1])
a = array("d", [0.0]) * n
fill(a, n)
print(total(a, n))
