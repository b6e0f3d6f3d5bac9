//! The strategies `mini bench` compares (lang-spec/cli.md, "`mini bench`"): their ids, their
//! names in the table, the flags of `mini run` each needs, and the part of the generated driver
//! that computes the blocks' results in block order.

/// One way of computing the blocks of `work`: an id for `--strategies`, a name for the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// sequential (interpreted): the blocks in order on the main thread, 1 worker only
    Seq,
    /// threads, GIL (interpreted): W spawned threads, thread k takes blocks k, k+W, ...
    Threads,
    /// threads, --jit --keep-gil: the same, native code holding the GIL
    KeepGil,
    /// threads, --jit (no GIL): the same, native code without the GIL
    Nogil,
    /// prange, --jit: a parallel loop whose iteration 64*b computes block b, on set_threads(W) threads
    Prange,
    /// forked processes, --jit: forked(W, f), rank r takes blocks r, r+W, ...
    Forked,
    /// pmap processes, --jit: pmap(part, range(B), W, "processes")
    Pmap,
    /// MPI ranks, --jit: mpirun -n W, rank r takes blocks r, r+W, ..., gathered at rank 0
    Mpi,
}

impl Strategy {
    /// Every strategy, in the order of the table.
    pub const ALL: [Strategy; 8] = [
        Strategy::Seq,
        Strategy::Threads,
        Strategy::KeepGil,
        Strategy::Nogil,
        Strategy::Prange,
        Strategy::Forked,
        Strategy::Pmap,
        Strategy::Mpi,
    ];

    /// The id of `--strategies`.
    pub fn id(self) -> &'static str {
        match self {
            Strategy::Seq => "seq",
            Strategy::Threads => "threads",
            Strategy::KeepGil => "keep-gil",
            Strategy::Nogil => "nogil",
            Strategy::Prange => "prange",
            Strategy::Forked => "forked",
            Strategy::Pmap => "pmap",
            Strategy::Mpi => "mpi",
        }
    }

    /// The name in the table, the CSV and JSON rows and the plot's legend.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Seq => "sequential (interpreted)",
            Strategy::Threads => "threads, GIL (interpreted)",
            Strategy::KeepGil => "threads, --jit --keep-gil",
            Strategy::Nogil => "threads, --jit (no GIL)",
            Strategy::Prange => "prange, --jit",
            Strategy::Forked => "forked processes, --jit",
            Strategy::Pmap => "pmap processes, --jit",
            Strategy::Mpi => "MPI ranks, --jit",
        }
    }

    /// The options of `mini run` for this strategy's driver.
    pub fn run_flags(self) -> &'static [&'static str] {
        match self {
            Strategy::Seq | Strategy::Threads => &[],
            Strategy::KeepGil => &["--jit", "--keep-gil"],
            Strategy::Nogil | Strategy::Prange | Strategy::Forked | Strategy::Pmap | Strategy::Mpi => &["--jit"],
        }
    }

    /// The worker counts this strategy runs with, for `--workers max`: only 1 for `seq`.
    pub fn worker_counts(self, max: usize) -> Vec<usize> {
        if self == Strategy::Seq { vec![1] } else { (1..=max).collect() }
    }

    /// The driver's code that leaves `parts`, the list of the blocks' results in block order,
    /// and prints `result <value>` (rank 0 only, for MPI). `strided`, `unstride`, `part`,
    /// `combine`, `nb` and `nw` are the driver's prelude (`driver.rs`).
    pub fn driver_body(self) -> &'static str {
        match self {
            Strategy::Seq => SEQ,
            Strategy::Threads | Strategy::KeepGil | Strategy::Nogil => THREADS,
            Strategy::Prange => PRANGE,
            Strategy::Forked => FORKED,
            Strategy::Pmap => PMAP,
            Strategy::Mpi => MPI,
        }
    }
}

const SEQ: &str = "\
let parts = []
for b in range(nb) {
    push(parts, part(b))
}
print(\"result\", combine(parts))
";

const THREADS: &str = "\
let handles = []
for k in range(nw) {
    push(handles, spawn(strided, k, nw))
}
let per = []
for t in handles {
    push(per, join(t))
}
print(\"result\", combine(unstride(per, nw)))
";

// Block b is computed by iteration 64*b of a prange loop over 64*B iterations (the others do
// nothing), so that the loop's plan has one of its blocks per bench block, up to 256, whatever
// `work` does: a loop over the B blocks themselves is cut finer only when `work` draws no
// random numbers (lang-spec/parallel.md, blocks of at least 64 iterations otherwise, so it
// would be one plan block, run on one thread, for a Monte Carlo kernel). A number result goes into an array (of `work(0, 0)`'s type), which compiled
// code stores into from its pool's threads; any other result into a list (the loop then runs
// in the interpreter, its blocks in order, as lang-spec/parallel.md says of what it cannot
// compile).
const PRANGE: &str = "\
fn in_parallel(slots) {
    for j in prange(nb * 64) {
        if j % 64 == 0 {
            let b = j // 64
            slots[j] = prog.work(b * n // nb, (b + 1) * n // nb)
        }
    }
    return slots
}
set_threads(nw)
let first = prog.work(0, 0)
let slots = []
if type(first) == \"int\" or type(first) == \"float\" {
    slots = array(nb * 64, first)
} else {
    for j in range(nb * 64) {
        push(slots, nil)
    }
}
slots = in_parallel(slots)
let parts = []
for b in range(nb) {
    push(parts, slots[64 * b])
}
print(\"result\", combine(parts))
";

const FORKED: &str = "\
let per = forked(nw, strided)
print(\"result\", combine(unstride(per, nw)))
";

const PMAP: &str = "\
let parts = pmap(part, range(nb), nw, \"processes\")
print(\"result\", combine(parts))
";

const MPI: &str = "\
let size = mpi_size()
let mine = strided(mpi_rank(), size)
let per = mpi_gather(mine, 0)
if mpi_rank() == 0 {
    print(\"result\", combine(unstride(per, size)))
}
";
