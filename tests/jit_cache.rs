//! The JIT's cache of compiled code across runs (src/jit/cache.rs, lang-spec/jit.md): a second
//! run takes its code from the cache and does exactly what the first did (also where the code
//! names addresses of the run: error sites, global cells, global arrays, loop counters); a
//! changed program is compiled afresh; a damaged entry or an unusable directory is ignored;
//! `--no-cache` and an empty `MINI_CACHE_DIR` turn it off; runs at once share it safely.
//! Each test has a cache directory of its own.

mod common;

use common::{MINI, ScratchFile, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Numbers the tests' cache directories.
static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh cache directory (not yet created), removed when dropped.
struct CacheDir(PathBuf);

impl CacheDir {
    fn new() -> CacheDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("jit-cache-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        CacheDir(dir)
    }

    /// The cache's entries (the files of every build's directory).
    fn entries(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
            out.extend(std::fs::read_dir(dir.path()).into_iter().flatten().flatten().map(|e| e.path()));
        }
        out.sort();
        out
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `mini run FLAGS FILE` with the cache directory `cache` (`MINI_CACHE_DIR`).
fn run(cache: &Path, flags: &[&str], file: &ScratchFile) -> Output {
    Command::new(MINI)
        .env("MINI_CACHE_DIR", cache)
        .env("MINI_JIT_VERIFY", "1")
        .arg("run")
        .args(flags)
        .arg(file.path())
        .output()
        .expect("run mini")
}

/// The `compiled ...` lines of a `--stats` report.
fn compiled_lines(out: &Output) -> Vec<String> {
    text(&out.stderr).lines().map(str::trim_start).filter(|l| l.starts_with("compiled ")).map(String::from).collect()
}

/// Whether every compiled specialization of the report came from the cache (and there is one),
/// lowered or not.
fn all_cached(out: &Output) -> bool {
    let lines = compiled_lines(out);
    !lines.is_empty() && lines.iter().all(|l| l.contains(" ms (cached"))
}

/// Whether none came from the cache.
fn none_cached(out: &Output) -> bool {
    compiled_lines(out).iter().all(|l| !l.contains("(cached"))
}

/// The report's line of the specialization of function `name`.
fn compiled_line(out: &Output, name: &str) -> String {
    let lines = compiled_lines(out);
    let prefix = format!("compiled {name}(");
    lines.into_iter().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {name} in {}", text(&out.stderr)))
}

/// The `--stats` part of stderr removed: what the program itself wrote.
fn program_stderr(out: &Output) -> String {
    let err = text(&out.stderr);
    let stats = err.find("thread          bytecodes").unwrap_or(err.len());
    err[..stats].to_string()
}

const EAGER: &[&str] = &["--jit", "--jit-threshold", "0", "--stats"];

/// Uses a global array (a constant of the code), a global the program assigns (read from its
/// cell), a global function, a parallel loop (its counters) and error sites.
const PROGRAM: &str = "\
let table = array(8, 0)
for i in range(8) { table[i] = i * i }
let scale = 2
fn sq(x) { return x * x }
fn work(n) {
    let s = 0
    for i in range(n) {
        s += table[i % 8] * scale + sq(i)
    }
    return s
}
fn par(n) {
    let s = 0.0
    for i in prange(n) {
        s += i * 0.5
    }
    return s
}
print(work(100), par(1000))
scale = 3
print(work(100))
";

#[test]
fn a_second_run_takes_the_code_from_the_cache_and_prints_the_same() {
    let cache = CacheDir::new();
    let file = ScratchFile::new("prog.mini", PROGRAM);
    let interp = run(&cache.0, &[], &file);
    assert!(interp.status.success(), "{}", text(&interp.stderr));
    let first = run(&cache.0, EAGER, &file);
    assert!(none_cached(&first), "an empty cache has nothing: {}", text(&first.stderr));
    assert!(!cache.entries().is_empty(), "the first run filled the cache");
    let second = run(&cache.0, EAGER, &file);
    assert!(all_cached(&second), "{}", text(&second.stderr));
    // `work` (a global array, an assigned global, an inlined call, error sites) was taken from
    // the cache without lowering it (prekey.rs); `par` has a parallel loop, which such keys
    // leave out, and was lowered to find its code
    assert!(compiled_line(&second, "work").contains("(cached, not lowered)"), "{}", text(&second.stderr));
    assert!(compiled_line(&second, "par").contains("(cached)"), "{}", text(&second.stderr));
    for out in [&first, &second] {
        assert_eq!(text(&out.stdout), text(&interp.stdout));
        assert_eq!(out.status.code(), interp.status.code());
    }
    // the same specializations, with the same native calls
    let strip = |l: &String| l.split_once(" in ").map(|(sig, _)| sig.to_string()).unwrap_or_default();
    assert_eq!(
        compiled_lines(&first).iter().map(strip).collect::<Vec<_>>(),
        compiled_lines(&second).iter().map(strip).collect::<Vec<_>>()
    );
}

#[test]
fn a_changed_program_is_compiled_afresh() {
    let cache = CacheDir::new();
    let first = ScratchFile::new("prog.mini", "fn f(n) { return n * 3 + 1 }\nprint(f(5))\n");
    let out = run(&cache.0, EAGER, &first);
    assert_eq!(text(&out.stdout), "16\n");
    let changed = ScratchFile::new("prog.mini", "fn f(n) { return n * 3 + 2 }\nprint(f(5))\n");
    let out = run(&cache.0, EAGER, &changed);
    assert_eq!(text(&out.stdout), "17\n");
    assert!(none_cached(&out), "{}", text(&out.stderr));
    // and the first program's code is still there for it
    let out = run(&cache.0, EAGER, &first);
    assert_eq!(text(&out.stdout), "16\n");
    assert!(all_cached(&out), "{}", text(&out.stderr));
}

/// The same function, compiled where what lowering reads besides its text differs: a global
/// constant's value, whether the program assigns a global, which globals hold the same array.
/// Each program must print what the interpreter prints, whatever ran before it on the cache.
const SAME_FUNCTION: &[&str] = &[
    "let K = 3\nfn f(n) { return n * K }\nprint(f(5))\n",
    "let K = 4\nfn f(n) { return n * K }\nprint(f(5))\n",
    "let K = 4\nfn f(n) { return n * K }\nprint(f(5))\nK = 6\nprint(f(5))\n",
    "let K = 4.5\nfn f(n) { return n * K }\nprint(f(5))\n",
    "let a = array(3, 1)\nlet b = array(3, 2)\nfn f(n) { return a[n] + b[n] }\nprint(f(1))\n",
    "let a = array(3, 1)\nlet b = a\nfn f(n) { return a[n] + b[n] }\nb[1] = 5\nprint(f(1))\n",
    "let a = array(4, 1)\nlet b = array(4, 2)\nfn f(n) { return a[n] + b[n] }\nprint(f(1))\n",
];

#[test]
fn code_taken_before_lowering_is_keyed_by_what_lowering_reads() {
    let cache = CacheDir::new();
    let expected: Vec<String> =
        SAME_FUNCTION.iter().map(|p| text(&run(&cache.0, &[], &ScratchFile::new("prog.mini", p)).stdout)).collect();
    // twice over, so that every program's second run finds its own entries among the others'
    for round in 0..2 {
        for (program, want) in SAME_FUNCTION.iter().zip(&expected) {
            let out = run(&cache.0, EAGER, &ScratchFile::new("prog.mini", program));
            assert!(out.status.success(), "{program}: {}", text(&out.stderr));
            assert_eq!(&text(&out.stdout), want, "{program}");
            if round == 1 {
                assert!(compiled_line(&out, "f").contains("(cached, not lowered)"), "{program}: {}", text(&out.stderr));
            }
        }
    }
}

#[test]
fn damaged_entries_are_ignored_and_written_anew() {
    let cache = CacheDir::new();
    let file = ScratchFile::new("prog.mini", PROGRAM);
    let reference = run(&cache.0, EAGER, &file);
    let entries = cache.entries();
    assert!(!entries.is_empty());
    // flip a byte of the machine code in some, truncate others, empty the rest
    for (k, path) in entries.iter().enumerate() {
        let mut bytes = std::fs::read(path).unwrap();
        match k % 3 {
            0 => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x40;
            }
            1 => bytes.truncate(bytes.len() / 2),
            _ => bytes.clear(),
        }
        std::fs::write(path, &bytes).unwrap();
    }
    let out = run(&cache.0, EAGER, &file);
    assert_eq!(text(&out.stdout), text(&reference.stdout));
    assert_eq!(program_stderr(&out), program_stderr(&reference));
    assert!(none_cached(&out), "no damaged entry is used: {}", text(&out.stderr));
    // they were written anew
    let out = run(&cache.0, EAGER, &file);
    assert_eq!(text(&out.stdout), text(&reference.stdout));
    assert!(all_cached(&out), "{}", text(&out.stderr));
}

#[test]
fn an_unusable_cache_directory_is_ignored() {
    let cache = CacheDir::new();
    std::fs::create_dir_all(&cache.0).unwrap();
    // a regular file where the directory should be: nothing can be made under it
    let blocked = cache.0.join("file");
    std::fs::write(&blocked, "not a directory").unwrap();
    let file = ScratchFile::new("prog.mini", PROGRAM);
    let interp = run(&cache.0, &[], &file);
    for _ in 0..2 {
        let out = run(&blocked, EAGER, &file);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), text(&interp.stdout));
        assert!(none_cached(&out), "{}", text(&out.stderr));
    }
    // entries that are directories
    let out = run(&cache.0, EAGER, &file);
    assert!(none_cached(&out));
    for entry in cache.entries() {
        std::fs::remove_file(&entry).unwrap();
        std::fs::create_dir(&entry).unwrap();
    }
    let out = run(&cache.0, EAGER, &file);
    assert_eq!(text(&out.stdout), text(&interp.stdout));
    assert!(none_cached(&out), "{}", text(&out.stderr));
}

#[test]
fn no_cache_and_an_empty_cache_dir_turn_it_off() {
    let cache = CacheDir::new();
    let file = ScratchFile::new("prog.mini", PROGRAM);
    let flags: Vec<&str> = EAGER.iter().copied().chain(["--no-cache"]).collect();
    for _ in 0..2 {
        let out = run(&cache.0, &flags, &file);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(none_cached(&out));
    }
    assert!(cache.entries().is_empty(), "--no-cache writes nothing");
    let empty = Path::new("");
    for _ in 0..2 {
        let out = run(empty, EAGER, &file);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(none_cached(&out));
    }
    // the option needs --jit, as the JIT's other options do
    let out = run(&cache.0, &["--no-cache"], &file);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// Errors raised by native code: a failed index in a callee inlined into a loop (the site's
/// frames), a global that changes type under the code (its global site), and an error inside a
/// parallel loop.
const ERRORS: &[&str] = &[
    "\
fn get(a, i) {
    return a[i]
}
fn walk(a, n) {
    let s = 0
    for i in range(n) {
        s += get(a, i)
    }
    return s
}
let a = array(5, 1)
print(walk(a, 5))
print(walk(a, 6))
",
    "\
let STEP = 1
fn walk(n) {
    let s = 0
    for i in range(n) { s += STEP }
    return s
}
print(walk(10))
STEP = \"x\"
print(walk(1))
",
    "\
fn f(a, n) {
    let s = 0
    for i in prange(n) {
        s += a[i]
    }
    return s
}
let a = array(100, 2)
print(f(a, 100))
print(f(a, 101))
",
];

#[test]
fn errors_of_cached_code_report_the_interpreters_line_and_stack() {
    for program in ERRORS {
        let cache = CacheDir::new();
        let file = ScratchFile::new("prog.mini", program);
        let interp = run(&cache.0, &[], &file);
        assert_eq!(interp.status.code(), Some(1), "{program}: {}", text(&interp.stderr));
        let first = run(&cache.0, EAGER, &file);
        let second = run(&cache.0, EAGER, &file);
        assert!(!compiled_lines(&second).is_empty() && compiled_lines(&second).iter().any(|l| l.contains("(cached")));
        for out in [&first, &second] {
            assert_eq!(text(&out.stdout), text(&interp.stdout), "{program}");
            assert_eq!(program_stderr(out), text(&interp.stderr), "{program}");
            assert_eq!(out.status.code(), interp.status.code(), "{program}");
        }
    }
}

#[test]
fn runs_at_once_share_one_cache() {
    let cache = CacheDir::new();
    let file = ScratchFile::new("prog.mini", PROGRAM);
    let reference = run(Path::new(""), EAGER, &file);
    for _ in 0..2 {
        let children: Vec<_> = (0..6)
            .map(|_| {
                Command::new(MINI)
                    .env("MINI_CACHE_DIR", &cache.0)
                    .arg("run")
                    .args(EAGER)
                    .arg(file.path())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("start mini")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait for mini");
            assert_eq!(text(&out.stdout), text(&reference.stdout));
            assert_eq!(program_stderr(&out), program_stderr(&reference));
        }
    }
    // no temporary file is left behind
    assert!(cache.entries().iter().all(|p| p.extension().is_some_and(|e| e == "bin")), "{:?}", cache.entries());
}
