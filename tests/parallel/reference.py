"""The expected results of the compiled_* programs here, computed by Python's own arithmetic
following lang-spec/parallel.md's block rule (not by mini): block length max(64, ceil(n/256)),
each block from the operator's identity (-0.0 for a float sum), partials combined in block
order. Run it and compare with the `# expect:` lines."""
import math


def plan(n):
    b = max(64, -(-n // 256))
    return b, -(-n // b)


def blocked(n, f, op, identity, acc, combine=None):
    b, nb = plan(n)
    for k in range(nb):
        p = identity
        for i in range(k * b, min((k + 1) * b, n)):
            p = op(p, f(i))
        acc = (combine or op)(acc, p)
    return acc


add, sub, mul = (lambda a, b: a + b), (lambda a, b: a - b), (lambda a, b: a * b)

# compiled_float_sum.mini
x = [i * 0.7 for i in range(300000)]
print(repr(blocked(len(x), lambda i: math.sqrt(x[i]) / 3.0, add, -0.0, 0.0)))
seq = 0.0
for v in x:
    seq += math.sqrt(v) / 3.0
print(repr(seq))

# compiled_reductions.mini
x = [(i * 37) % 1001 - 500 for i in range(100000)]
s = blocked(len(x), lambda i: x[i] % 7, add, 0, 0)
d = blocked(len(x), lambda i: x[i] * 0.5, sub, -0.0, 0.0, add)
p = blocked(len(x), lambda i: 1.0 + (x[i] % 3) * 1e-6, mul, 1.0, 1.0)
print(repr(s * 1.0 + d + p + min(x) + max(x)))
r = list(range(1, 200000, 3))
print(blocked(len(r), lambda j: r[j] * r[j], add, 0, 0) + max([0] + [(i * 7919) % 10007 for i in r]))
