//! The JIT: counts calls, specializes hot functions on their argument types, compiles them with
//! Cranelift, and runs the native code without the GIL (`mini run --jit`).

/// The command-line choices for the JIT.
#[derive(Clone, Debug)]
pub struct JitOptions {
    /// Calls after which a function without loops is compiled (0: at its first call).
    pub threshold: u64,
    /// Hold the GIL across native calls (numba's default) instead of releasing it.
    pub keep_gil: bool,
    /// Print the Cranelift IR of every compiled function to stderr.
    pub dump_ir: bool,
}

/// The default `--jit-threshold` (see lang-spec/jit.md for how it was chosen).
pub const DEFAULT_THRESHOLD: u64 = 2;
