//! Runs `mini check` on every program in `tests/syntax/` and `tests/lexical/`: it must end with
//! the program's expected error (exit 1; every error these folders expect is found before the
//! program runs) or accept a program that expects none (exit 0), and never crash. The program
//! harness (`tests/programs.rs`) runs the same files with `mini run`, whose main thread has a
//! far larger stack than `mini check`'s, so a stack overflow of the front end shows only here.

#[path = "../common/mod.rs"]
mod common;

use common::{MINI, collect_mini_files};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `.mini` files of one folder of `tests/`, sorted.
fn programs(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(folder);
    let mut files = Vec::new();
    collect_mini_files(&dir, &mut files);
    assert!(!files.is_empty(), "no .mini files in {}", dir.display());
    files.sort();
    files
}

/// The message of a program's `# expect-error` line, if it has one.
fn expected_error(text: &str) -> Option<String> {
    let at = text.find("# expect-error")?;
    let rest = &text[at..];
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    Some(line.split_once(':')?.1.trim().to_string())
}

/// Checks one program with `mini check`; returns what went wrong, if anything.
fn check_program(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let out = Command::new(MINI).arg("check").arg(path).output().expect("run mini");
    let stderr = common::text(&out.stderr);
    let first = stderr.lines().next().unwrap_or("");
    let name = path.display();
    match (out.status.code(), expected_error(&text)) {
        (Some(1), Some(msg)) if first.starts_with("error: ") && first.contains(&msg) => None,
        (Some(0), None) => None,
        (code, msg) => Some(format!("{name}: exit {code:?}, expected error {msg:?}, stderr starts {first:?}")),
    }
}

#[test]
fn check_never_crashes_on_deep_or_malformed_programs() {
    let failures: Vec<String> =
        ["syntax", "lexical"].iter().flat_map(|f| programs(f)).filter_map(|p| check_program(&p)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
