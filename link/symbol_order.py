#!/usr/bin/env python3
"""Writes link/symbol-order.txt, the order in which the linker places mini's functions
(build.rs passes it to lld as --symbol-ordering-file; ARCHITECTURE.md, "Speed").

The functions that `mini run` executes on the examples (interpreted, then with --jit) come
first, packed together, so that a run maps few pages of the binary's code: the kernel maps
the page-cache pages around every page fault (fault-around, 64 KiB), so code spread over the
whole text section made most of mini's peak resident set.

Usage: python3 link/symbol_order.py [path/to/mini]   (default target/release/mini; needs
valgrind). Rerun it after a change of Cargo.lock, the toolchain, the features or the release
profile: those change the hashes in Rust's symbol names, and names the linker does not find
are skipped (the order then only covers the C library and whatever still matches).
"""

import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (example, small argument): enough to run every path the benchmark's runs take
RUNS = [
    ("fib", "18"),
    ("loop", "100000"),
    ("array_sum", "100000"),
    ("mandelbrot", "40"),
    ("nbody", "1000"),
    ("spectral_norm", "40"),
]


def executed(mini, args, env=None):
    """The names of the functions that `mini args` executes, from a callgrind profile."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", mini] + args,
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env,
        )
        names = set()
        with open(out) as f:
            for line in f:
                m = re.match(r"^c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
                if m:
                    names.add(m.group(1))
        return names


def main():
    mini = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/mini")
    nm = subprocess.run(["nm", "--defined-only", mini], capture_output=True, text=True, check=True).stdout
    address = {}
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            address.setdefault(parts[2], int(parts[0], 16))
    empty = os.path.join(ROOT, "target", "symbol-order-empty.mini")
    open(empty, "w").close()
    # how many runs executed each function, interpreted and with --jit; each --jit run twice on
    # a fresh cache of compiled code, so that what a run with the cache warm executes (both
    # runs) comes before what only compiling executes (the first)
    interp, jit = {}, {}
    cache = tempfile.TemporaryDirectory()
    env = dict(os.environ, MINI_CACHE_DIR=cache.name)
    for counts, flags, times in ((interp, [], 1), (jit, ["--jit"], 2)):
        runs = [["run"] + flags + [empty]]
        runs += [["run"] + flags + [f"examples/{e}.mini", "--", n] for e, n in RUNS]
        for args in runs:
            for _ in range(times):
                for name in executed(mini, args, env):
                    if name in address:
                        counts[name] = counts.get(name, 0) + 1
    cache.cleanup()
    os.remove(empty)
    # interpreted runs' functions first (the most widely used first), then --jit's; within a
    # group, the present order of the binary (related code stays together)
    order = sorted(interp, key=lambda n: (-interp[n], address[n]))
    order += sorted((n for n in jit if n not in interp), key=lambda n: (-jit[n], address[n]))
    with open(os.path.join(ROOT, "link", "symbol-order.txt"), "w") as f:
        f.write("\n".join(order) + "\n")
    print(f"{len(order)} functions ({len(interp)} interpreted, {len(order) - len(interp)} more with --jit)")


if __name__ == "__main__":
    main()
