//! The driver programs `mini bench` runs (lang-spec/cli.md, "`mini bench`"): a temporary
//! `.mini` file per strategy that imports the user's program by absolute path, reads n, B and W
//! from the environment, computes the blocks and prints `result <value>`; the probe that checks
//! the program before anything is timed; and the command line of one run.

use super::strategy::Strategy;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment variables a driver reads: n, the number of blocks, the number of workers,
/// and the strategy's id (which the program itself may read too).
pub const ENV_N: &str = "MINI_BENCH_N";
pub const ENV_BLOCKS: &str = "MINI_BENCH_BLOCKS";
pub const ENV_WORKERS: &str = "MINI_BENCH_WORKERS";
pub const ENV_STRATEGY: &str = "MINI_BENCH_STRATEGY";

/// The code every driver starts with: the import, the sizes, a block's result (`part`), the
/// blocks of worker `k` of `w` (`strided`: blocks k, k+w, ...), the inverse that puts workers'
/// lists back in block order (`unstride`), and the combination in block order (`combine`):
/// numbers are added; for arrays and lists (heavy results), every element, block after block.
const PRELUDE: &str = "\
let n = int(env(\"MINI_BENCH_N\"))
let nb = int(env(\"MINI_BENCH_BLOCKS\"))
let nw = int(env(\"MINI_BENCH_WORKERS\"))

fn part(b) {
    return prog.work(b * n // nb, (b + 1) * n // nb)
}

fn strided(k, w) {
    let mine = []
    let b = k
    while b < nb {
        push(mine, part(b))
        b += w
    }
    return mine
}

fn unstride(per, w) {
    let parts = []
    for b in range(nb) {
        push(parts, per[b % w][b // w])
    }
    return parts
}

fn is_number(x) {
    return type(x) == \"int\" or type(x) == \"float\"
}

fn add_from(s, p, first) {
    for i in range(first, len(p)) {
        s += p[i]
    }
    return s
}

fn combine(parts) {
    let s = parts[0]
    if is_number(s) {
        for b in range(1, len(parts)) {
            s += parts[b]
        }
        return s
    }
    s = nil
    for p in parts {
        if type(p) != \"array\" and type(p) != \"list\" {
            error(\"work(lo, hi) returned a \" + type(p) + \", not a number, an array or a list of numbers\")
        }
        if s != nil {
            s = add_from(s, p, 0)
        } else if len(p) > 0 {
            s = add_from(p[0], p, 1)
        }
    }
    return s
}
";

/// The probe's code after the import: whether `work` is a function, and `size()` when asked.
const PROBE: &str = "\
fn field(name) {
    try {
        if name == \"work\" {
            return prog.work
        }
        return prog.size
    } catch e {
        return nil
    }
}
print(\"work\", type(field(\"work\")))
let size = field(\"size\")
if env(\"MINI_BENCH_WANT_SIZE\") == nil or type(size) != \"function\" {
    print(\"size\", type(size))
} else {
    print(\"size\", \"value\", size())
}
";

/// A generated program written to the temporary directory, removed when dropped.
pub struct Driver {
    pub path: PathBuf,
}

impl Driver {
    /// Writes the driver of `strategy` (or the probe, `None`) for the program at `program`
    /// (absolute).
    pub fn write(program: &Path, strategy: Option<Strategy>) -> Result<Driver, String> {
        let name = strategy.map_or("probe", Strategy::id);
        let path = std::env::temp_dir().join(format!("mini-bench-{}-{name}.mini", std::process::id()));
        let text = source(program, strategy);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Driver { path })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The text of a driver: a comment, the import, then the prelude and the strategy's body (or
/// the probe).
fn source(program: &Path, strategy: Option<Strategy>) -> String {
    let what = strategy.map_or("probe", Strategy::id);
    let mut text = format!("# mini bench driver ({what}) for {}\n", program.display());
    text.push_str(&format!("let prog = import {}\n", mini_string(&program.display().to_string())));
    match strategy {
        Some(s) => {
            text.push_str(PRELUDE);
            text.push_str(s.driver_body());
        }
        None => text.push_str(PROBE),
    }
    text
}

/// `text` as a mini string literal (lang-spec/lexical.md escapes), as mini quotes strings.
fn mini_string(text: &str) -> String {
    let mut out = String::new();
    crate::value::write_quoted(text, &mut out);
    out
}

/// What one run needs besides the driver: this `mini`, n, the blocks, the program's arguments
/// and the number of cores (for `mpirun --oversubscribe`).
pub struct Setup {
    pub mini: PathBuf,
    pub n: u64,
    pub blocks: usize,
    pub args: Vec<String>,
    pub cores: usize,
}

/// The command of one run of `driver` for `strategy` with `workers` workers, stdin closed,
/// stdout and stderr captured.
pub fn command(setup: &Setup, driver: &Path, strategy: Strategy, workers: usize) -> Command {
    let mut cmd = if strategy == Strategy::Mpi {
        let mut c = Command::new("mpirun");
        c.args(["-n", &workers.to_string()]);
        if workers > setup.cores {
            c.arg("--oversubscribe");
        }
        if is_root() {
            c.arg("--allow-run-as-root");
        }
        for var in [ENV_N, ENV_BLOCKS, ENV_WORKERS, ENV_STRATEGY] {
            c.args(["-x", var]);
        }
        c.arg(&setup.mini);
        c
    } else {
        Command::new(&setup.mini)
    };
    cmd.arg("run").args(strategy.run_flags()).arg(driver).arg("--").args(&setup.args);
    cmd.env(ENV_N, setup.n.to_string())
        .env(ENV_BLOCKS, setup.blocks.to_string())
        .env(ENV_WORKERS, workers.to_string())
        .env(ENV_STRATEGY, strategy.id());
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// The command of the probe: interpreted, asking for `size()` when `want_size`.
pub fn probe_command(setup: &Setup, driver: &Path, want_size: bool) -> Command {
    let mut cmd = Command::new(&setup.mini);
    cmd.arg("run").arg(driver).arg("--").args(&setup.args);
    if want_size {
        cmd.env("MINI_BENCH_WANT_SIZE", "1");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Whether this process runs as root (mpirun then needs `--allow-run-as-root`).
fn is_root() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_imported_by_a_mini_string_literal() {
        assert_eq!(mini_string("/a b/c\"d\\e.mini"), "\"/a b/c\\\"d\\\\e.mini\"");
        let text = source(Path::new("/tmp/x.mini"), Some(Strategy::Forked));
        assert!(text.contains("\nlet prog = import \"/tmp/x.mini\"\n"), "{text}");
        assert!(text.contains("forked(nw, strided)") && text.contains("fn combine(parts)"), "{text}");
        let probe = source(Path::new("/tmp/x.mini"), None);
        assert!(probe.contains("print(\"work\", type(field(\"work\")))") && !probe.contains("combine"), "{probe}");
    }
}
