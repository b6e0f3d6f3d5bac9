# Recursive Fibonacci: a benchmark of function calls. Twin of examples/fib.mini.
import sys


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


n = 32
if len(sys.argv) > 1:
    n = int(sys.argv[1])
print(fib(n))
