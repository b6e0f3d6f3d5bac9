# The global interpreter lock, shown: the same pure-compute function run once over the whole
# range on one thread, then split across k threads (default 2). Under a GIL the threads take
# as long as one. Twin of examples/gil_demo.mini (the times differ from run to run).
import sys
import threading
import time


def work(lo, hi):
    s = 0
    for i in range(lo, hi):
        x = (i * 1103515245 + 12345) % 2147483648
        x = (x * 1103515245 + 12345) % 2147483648
        x = (x * 1103515245 + 12345) % 2147483648
        s += x % 1000
    return s


class Thread:
    """spawn/join as in mini: a thread that keeps its function's result."""

    def __init__(self, f, *args):
        self.result = None

        def run():
            self.result = f(*args)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self):
        self.thread.join()
        return self.result


def split_work(n, k):
    threads = []
    for t in range(k):
        threads.append(Thread(work, t * n // k, (t + 1) * n // k))
    s = 0
    for th in threads:
        s += th.join()
    return s


n = 5_000_000
k = 2
if len(sys.argv) > 1:
    n = int(sys.argv[1])
if len(sys.argv) > 2:
    k = int(sys.argv[2])

# warm up, so that a JIT has compiled work before either timing starts
for _ in range(10):
    work(0, 1000)

t0 = time.perf_counter()
r1 = work(0, n)
t1 = time.perf_counter() - t0

t0 = time.perf_counter()
r2 = split_work(n, k)
t2 = time.perf_counter() - t0

print("1 thread:", t1, "s, result", r1)
print(k, "threads:", t2, "s, result", r2)
print("speedup:", t1 / t2)
if r1 == r2:
    print("results match")
else:
    print("results differ!")
