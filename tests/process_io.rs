//! The process's own input and output: source files that are not UTF-8 (generated here, since
//! such files are awkward to keep in git), and stdout that is a closed pipe or a full device
//! (lang-spec/lexical.md, lang-spec/cli.md).
#![cfg(unix)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Writes `bytes` to a file under the test's temporary directory and returns its path.
fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("process_io_{}_{name}", std::process::id()));
    std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes)).expect("write the file");
    path
}

/// Runs `mini <args>` with stdout and stderr captured.
fn mini(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mini")).args(args).output().expect("run mini")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn invalid_utf8_is_a_syntax_error_at_the_first_bad_byte() {
    let path = write_file("bad_utf8.mini", b"print(1)\nlet s = \"\xff\"\n");
    let path = path.to_str().expect("a UTF-8 path");
    for command in ["run", "check"] {
        let out = mini(&[command, path]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert_eq!(out.stdout, b"", "{command} ran the program");
        assert!(stderr.starts_with("error: source is not valid UTF-8\n"), "{command}: {stderr}");
        assert!(stderr.contains(&format!("--> {path}:2:10\n")), "{command}: {stderr}");
    }
}

#[test]
fn invalid_utf8_anywhere_never_panics() {
    // a bad byte at the start, after a multi-byte character, at the end, and a truncated sequence
    let cases: [(&[u8], &str); 4] = [
        (b"\xfe", ":1:1\n"),
        (b"let s = \"\xc3\xa9\xc3\"\n", ":1:11\n"),
        (b"print(1)\n\n\x80", ":3:1\n"),
        (b"# \xe2\x82", ":1:3\n"),
    ];
    for (i, (bytes, location)) in cases.iter().enumerate() {
        let path = write_file(&format!("bad_utf8_{i}.mini"), bytes);
        let out = mini(&["check", path.to_str().expect("a UTF-8 path")]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {i}: {stderr}");
        assert!(stderr.starts_with("error: source is not valid UTF-8\n"), "case {i}: {stderr}");
        assert!(stderr.contains(location), "case {i}: expected {location:?} in {stderr}");
    }
}

#[test]
fn switch_interval_out_of_range_is_a_usage_error() {
    let path = write_file("switch.mini", b"print(1)\n");
    let path = path.to_str().expect("a UTF-8 path");
    for bad in ["1e23", "86400000.5", "0", "nan", "inf", "-inf"] {
        let out = mini(&["run", &format!("--switch-interval={bad}"), path]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert_eq!(out.stdout, b"", "{bad}: the program ran");
        assert!(stderr.starts_with("error: --switch-interval must be a positive number"), "{bad}: {stderr}");
    }
    for good in ["86400000", "0.0000001", "5"] {
        let out = mini(&["run", "--switch-interval", good, path]);
        assert_eq!(out.status.code(), Some(0), "{good}: {}", text(&out.stderr));
        assert_eq!(out.stdout, b"1\n");
    }
}
