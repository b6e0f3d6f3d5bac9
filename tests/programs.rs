//! The program test harness: runs every `.mini` file under `tests/` and every ```mini example in
//! `lang-spec/` with the `mini` binary, in every execution mode, and checks the `# expect:`,
//! `# expect-error:` and `# args:` annotations. All mismatches are reported, then it fails.
//!
//! Every mode must also give exactly the output (stdout, stderr, exit code) of the first mode,
//! the interpreter: the JIT never changes what a program does.
//!
//! `cargo test --test programs -- FILTER` runs only paths containing FILTER;
//! `MINI_TEST_MODES=interp` restricts the modes.

use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The execution modes every program runs in, with the extra `mini run` flags of each.
const MODES: &[(&str, &[&str])] =
    &[("interp", &[]), ("jit", &["--jit"]), ("eager", &["--jit", "--jit-threshold", "0"])];

/// Per-mode skips: (mode, path substring, reason). Empty: every program runs in every mode.
const SKIPS: &[(&str, &str, &str)] = &[];

const TIMEOUT: Duration = Duration::from_secs(120);

/// What a program expects.
#[derive(Debug, Default)]
struct Expectation {
    stdout: Vec<String>,
    error: Option<(usize, String)>,
    args: Vec<String>,
}

struct Case {
    name: String,
    path: PathBuf,
    expect: Expectation,
}

fn parse_expectations(text: &str) -> Expectation {
    let mut e = Expectation::default();
    for (i, line) in text.lines().enumerate() {
        if let Some(pos) = line.find("# expect: ") {
            e.stdout.push(line[pos + "# expect: ".len()..].to_string());
        } else if let Some(pos) = line.find("# expect:") {
            e.stdout.push(line[pos + "# expect:".len()..].trim_start().to_string());
        } else if let Some(pos) = line.find("# expect-error line ") {
            let rest = &line[pos + "# expect-error line ".len()..];
            let (num, msg) = rest.split_once(':').expect("`# expect-error line N: message`");
            e.error = Some((num.trim().parse().expect("a line number"), msg.trim().to_string()));
        } else if let Some(pos) = line.find("# expect-error:") {
            e.error = Some((i + 1, line[pos + "# expect-error:".len()..].trim().to_string()));
        } else if let Some(pos) = line.find("# args:") {
            e.args = line[pos + "# args:".len()..].split_whitespace().map(String::from).collect();
        }
    }
    e
}

fn collect_mini_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_mini_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "mini") {
            out.push(path);
        }
    }
}

/// Writes each ```mini block of the spec that carries expectations to its own file.
fn spec_examples(root: &Path, scratch: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut chapters = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join("lang-spec")) {
        chapters.extend(entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "md")));
    }
    chapters.sort();
    std::fs::create_dir_all(scratch).expect("scratch directory");
    for chapter in chapters {
        let text = std::fs::read_to_string(&chapter).expect("readable chapter");
        let stem = chapter.file_stem().unwrap().to_string_lossy().to_string();
        for (n, block) in mini_blocks(&text).into_iter().enumerate() {
            if !block.contains("# expect") {
                continue;
            }
            let path = scratch.join(format!("{stem}-{}.mini", n + 1));
            std::fs::write(&path, &block).expect("write example");
            let name = format!("lang-spec/{stem}.md example {}", n + 1);
            cases.push(Case { name, expect: parse_expectations(&block), path });
        }
    }
    cases
}

fn mini_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```mini") => current = Some(String::new()),
            Some(_) if line.trim_start().starts_with("```") => blocks.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

struct Outcome {
    stdout: String,
    stderr: String,
    code: Option<i32>,
    timed_out: bool,
}

fn run_mini(path: &Path, flags: &[&str], args: &[String]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mini"));
    // Cranelift's verifier checks every function compiled; an internal error shows on stderr
    cmd.env("MINI_JIT_VERIFY", "1");
    cmd.arg("run").args(flags).arg(path);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start mini");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err_reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mini") {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            timed_out = true;
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Outcome {
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        code: status.and_then(|s| s.code()),
        timed_out,
    }
}

/// The line of the `--> file:line:col` header of an error report.
fn reported_line(stderr: &str) -> Option<usize> {
    let header = stderr.lines().find(|l| l.trim_start().starts_with("--> "))?;
    let location = header.trim_start().trim_start_matches("--> ");
    let mut parts = location.rsplitn(3, ':');
    let _col = parts.next()?;
    parts.next()?.parse().ok()
}

/// Compares one run with its expectation; returns the problems found.
fn check(case: &Case, out: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if out.timed_out {
        problems.push(format!("timed out after {TIMEOUT:?}"));
        return problems;
    }
    let got: Vec<&str> = out.stdout.lines().collect();
    if got != case.expect.stdout.iter().map(String::as_str).collect::<Vec<_>>() {
        problems.push(format!("stdout differs\n    expected: {:?}\n    got:      {:?}", case.expect.stdout, got));
    }
    match &case.expect.error {
        None if out.code != Some(0) => {
            problems.push(format!("exit code {:?}, stderr:\n{}", out.code, indent(&out.stderr)));
        }
        None => {}
        Some((line, msg)) => {
            let first = out.stderr.lines().next().unwrap_or("");
            if out.code != Some(1) {
                problems.push(format!("expected exit code 1, got {:?}", out.code));
            }
            if !first.starts_with("error: ") || !first.contains(msg.as_str()) {
                problems.push(format!("expected error containing {msg:?}, stderr:\n{}", indent(&out.stderr)));
            } else if reported_line(&out.stderr) != Some(*line) {
                problems.push(format!(
                    "expected the error at line {line}, reported at {:?}:\n{}",
                    reported_line(&out.stderr),
                    indent(&out.stderr)
                ));
            }
        }
    }
    problems
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      | {l}\n")).collect()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted_modes = std::env::var("MINI_TEST_MODES").ok();
    let mut files = Vec::new();
    collect_mini_files(&root.join("tests"), &mut files);
    files.sort();
    let mut cases: Vec<Case> = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable test");
            let name = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
            Case { name, expect: parse_expectations(&text), path }
        })
        .collect();
    cases.extend(spec_examples(&root, &root.join("target/spec-examples")));
    cases.retain(|c| filter.as_ref().is_none_or(|f| c.name.contains(f.as_str())));
    let modes: Vec<&(&str, &[&str])> =
        MODES.iter().filter(|(m, _)| wanted_modes.as_ref().is_none_or(|w| w.split(',').any(|x| x == *m))).collect();

    let failures = Mutex::new(Vec::new());
    let runs = AtomicUsize::new(0);
    cases.par_iter().for_each(|case| {
        let mut problems = Vec::new();
        let mut first: Option<(&str, Outcome)> = None;
        for (mode, flags) in modes.iter().filter(|(m, _)| !skipped(m, &case.name)) {
            let out = run_mini(&case.path, flags, &case.expect.args);
            runs.fetch_add(1, Ordering::Relaxed);
            problems.extend(check(case, &out).into_iter().map(|p| format!("[{mode}] {p}")));
            match &first {
                None => first = Some((mode, out)),
                Some((first_mode, reference)) => problems.extend(differences(first_mode, reference, mode, &out)),
            }
        }
        if !problems.is_empty() {
            failures.lock().unwrap().push(format!("FAIL {}\n  {}", case.name, problems.join("\n  ")));
        }
    });
    let failures = failures.into_inner().unwrap();
    for f in &failures {
        println!("{f}\n");
    }
    println!(
        "{} programs x {} modes: {} runs, {} programs failed",
        cases.len(),
        modes.len(),
        runs.into_inner(),
        failures.len()
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

/// Every mode must print exactly what the first mode printed, on stdout and stderr, and exit
/// the same way (the JIT never changes a program's behaviour).
fn differences(first_mode: &str, a: &Outcome, mode: &str, b: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if a.stdout != b.stdout {
        problems.push(format!("[{mode}] stdout differs from [{first_mode}]:\n{}", indent(&b.stdout)));
    }
    if a.stderr != b.stderr {
        problems.push(format!(
            "[{mode}] stderr differs from [{first_mode}]:\n{}  [{first_mode}] stderr:\n{}",
            indent(&b.stderr),
            indent(&a.stderr)
        ));
    }
    if a.code != b.code {
        problems.push(format!("[{mode}] exit code {:?}, [{first_mode}] {:?}", b.code, a.code));
    }
    problems
}

fn skipped(mode: &str, name: &str) -> bool {
    SKIPS.iter().any(|(m, path, _reason)| *m == mode && name.contains(path))
}
