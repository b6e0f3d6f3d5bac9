//! The `.mini` programs of `tests/mpi/` run as a job of two ranks (`mpirun -n 2`), in the three
//! modes: each program with `# mpi2-expect:` lines must print exactly those lines (only rank 0
//! prints), and a rank that fails while the other waits for it must end the whole job with exit
//! code 1 (MPI_Abort), never hang. Skipped, saying why, when mini was built without the cargo
//! feature `mpi` or `mpirun` is missing. (`programs.rs` runs the same programs alone, as a world
//! of one rank, against their `# expect:` lines.)

mod common;

use common::{MODES, mini_bin, text, wait_or_kill};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// How long a job of two tiny programs may take before the test calls it hung.
const LIMIT: Duration = Duration::from_secs(60);

/// Why the MPI tests cannot run here, if they cannot.
fn skip_reason() -> Option<&'static str> {
    if !cfg!(feature = "mpi") {
        return Some("mini was built without the cargo feature `mpi` (cargo test --release --features mpi)");
    }
    let found = Command::new("mpirun").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !found.is_ok_and(|s| s.success()) {
        return Some("`mpirun` is not installed (apt-get install openmpi-bin libopenmpi-dev)");
    }
    None
}

/// Runs `program` as a job of two ranks with the mode's `flags`.
fn mpirun(flags: &[&str], program: &Path) -> Output {
    mpirun_with_args(flags, program, &[])
}

/// Runs `program` as a job of two ranks with the mode's `flags` and the program's `args`.
fn mpirun_with_args(flags: &[&str], program: &Path, args: &[&str]) -> Output {
    let child = Command::new("mpirun")
        .args(["-n", "2", "--allow-run-as-root", "--oversubscribe"])
        .arg(mini_bin())
        .arg("run")
        .args(flags)
        .arg(program)
        .arg("--")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun starts");
    wait_or_kill(child, LIMIT, &program.display().to_string()).0
}

/// The programs of `tests/mpi/` with their `# mpi2-expect:` lines (those that have some).
fn expectations() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    common::collect_mini_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mpi"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("a test program is readable");
        let lines: Vec<&str> =
            source.lines().filter_map(|l| l.split_once("# mpi2-expect:").map(|(_, e)| e.trim())).collect();
        if !lines.is_empty() {
            out.push((file, lines.iter().map(|l| format!("{l}\n")).collect()));
        }
    }
    out
}

#[test]
fn programs_on_two_ranks() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let cases = expectations();
    assert!(cases.len() >= 3, "tests/mpi/ has programs with `# mpi2-expect:` lines");
    for (file, expected) in &cases {
        for (mode, flags) in MODES {
            let out = mpirun(flags, file);
            let what = format!("{} [{mode}]", file.display());
            assert!(out.status.success(), "{what}: {}", text(&out.stderr));
            assert_eq!(text(&out.stdout), *expected, "{what}");
        }
    }
}

/// A failing rank aborts the job: rank 1 divides by zero while rank 0 waits in `mpi_recv` for
/// a message that never comes.
#[test]
fn failing_rank_aborts_the_job() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let program =
        common::ScratchFile::new("abort.mini", "if mpi_rank() == 1 {\n    let x = 1 / 0\n}\nprint(mpi_recv(1))\n");
    let out = mpirun(&[], program.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rank 1: error: division by zero\n --> "), "{stderr}");
    assert!(stderr.contains("abort.mini:2:13"), "{stderr}");
    assert_eq!(text(&out.stdout), "");
}

/// The MPI example sums its blocks on two ranks and prints the digits it prints alone (its
/// `# expect:` line, which `examples/processes/reference.py` computes).
#[test]
fn the_mpi_example_gives_the_same_digits_on_two_ranks() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/processes/sqrt_mpi.mini");
    for (mode, flags) in MODES {
        let out = mpirun_with_args(flags, &example, &["check", "100000"]);
        assert!(out.status.success(), "[{mode}]: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "21081692.74615172\n", "[{mode}]");
    }
}
