//! Modules beyond what the program harness checks: `MINI_PATH`, the full text of errors located
//! in modules (file, line, column, stack), the candidates a missing module lists, a program on
//! standard input importing from the working directory, and `mini check` (warnings and
//! `--jit-report`) over every file. Each test writes its files to a scratch directory and runs
//! `mini` there, in every mode where the program runs.

#[path = "../common/mod.rs"]
mod common;

use common::{MODES, ScratchFile, text};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

/// A scratch directory holding `main.mini` and the other files given, by relative path.
struct Project {
    main: ScratchFile,
}

impl Project {
    fn new(main: &str, files: &[(&str, &str)]) -> Project {
        let main = ScratchFile::new("main.mini", main);
        let project = Project { main };
        for (path, text) in files {
            let path = project.dir().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
            std::fs::write(path, text).expect("write a module");
        }
        project
    }

    fn dir(&self) -> &Path {
        self.main.path().parent().expect("a scratch directory")
    }

    /// `mini ARGS main.mini` (the file named relatively) in the project's directory, with
    /// `MINI_PATH` set to `mini_path` (removed when `None`).
    fn mini(&self, args: &[&str], mini_path: Option<&str>) -> Output {
        let mut cmd = common::mini_cmd();
        cmd.args(args).arg("main.mini").current_dir(self.dir());
        match mini_path {
            Some(p) => cmd.env("MINI_PATH", p),
            None => cmd.env_remove("MINI_PATH"),
        };
        cmd.output().expect("run mini")
    }

    /// Runs the program in every mode; each must end with `code`, `stdout` and `stderr`.
    fn runs(&self, mini_path: Option<&str>, code: i32, stdout: &str, stderr: &str) {
        for (mode, flags) in MODES {
            let mut args = vec!["run"];
            args.extend_from_slice(flags);
            let out = self.mini(&args, mini_path);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(code), "[{mode}] {err}");
            assert_eq!(text(&out.stdout), stdout, "[{mode}] stdout");
            assert_eq!(err, stderr, "[{mode}] stderr");
        }
    }
}

/// A directory of its own (for `MINI_PATH`) holding the files given.
fn library(files: &[(&str, &str)]) -> (ScratchFile, PathBuf) {
    let marker = ScratchFile::new("README", "a library directory for MINI_PATH\n");
    let dir = marker.path().parent().expect("a directory").to_path_buf();
    for (path, text) in files {
        std::fs::write(dir.join(path), text).expect("write a module");
    }
    (marker, dir)
}

#[test]
fn modules_are_found_in_the_directories_of_mini_path_after_the_programs_own() {
    let (_a, first) = library(&[("stats.mini", "fn mean(a, b) { return (a + b) / 2 }\n")]);
    let (_b, second) = library(&[("stats.mini", "fn mean(a, b) { return -1 }\n"), ("fmt.mini", "let sep = \"|\"\n")]);
    let path = std::env::join_paths([&first, &second]).expect("a MINI_PATH");
    let path = path.to_str().expect("UTF-8");
    let project = Project::new(
        "let s = import \"stats.mini\"\nlet f = import \"fmt.mini\"\nlet l = import \"local.mini\"\nprint(s.mean(3, 4), f.sep, l.here)\n",
        &[("local.mini", "let here = \"local\"\n")],
    );
    project.runs(Some(path), 0, "3.5 | local\n", "");
    // the program's own directory comes first, even for a name MINI_PATH also has
    let shadowing = Project::new(
        "let s = import \"stats.mini\"\nprint(s.mean(1, 2))\n",
        &[("stats.mini", "fn mean(a, b) { return 0 }\n")],
    );
    shadowing.runs(Some(path), 0, "0\n", "");
}

#[test]
fn a_missing_module_lists_every_place_it_was_looked_for() {
    let (_a, lib) = library(&[]);
    let lib_str = lib.to_str().expect("UTF-8");
    let project = Project::new("print(1)\nlet m = import \"sub/none.mini\"\n", &[]);
    let expected = format!(
        "error: cannot find module 'sub/none.mini' (looked for sub/none.mini, {lib_str}/sub/none.mini)\n \
         --> main.mini:2:9\n  |\n2 | let m = import \"sub/none.mini\"\n  |         ^^^^^^^^^^^^^^^^^^^^^^\n"
    );
    project.runs(Some(lib_str), 1, "", &expected);
    let alone = "error: cannot find module 'sub/none.mini' (looked for sub/none.mini)\n \
                 --> main.mini:2:9\n  |\n2 | let m = import \"sub/none.mini\"\n  |         ^^^^^^^^^^^^^^^^^^^^^^\n";
    project.runs(None, 1, "", alone);
}

#[test]
fn an_error_in_a_module_is_located_in_its_file_with_the_importing_lines_in_the_stack() {
    let util = "# util\nfn half(x) {\n    return x // 0\n}\n";
    let main = "let u = import \"lib/util.mini\"\nfn go() { return u.half(3) }\nprint(go())\n";
    let project = Project::new(main, &[("lib/util.mini", util)]);
    let stderr = "error: division by zero\n --> lib/util.mini:3:12\n  |\n3 |     return x // 0\n  |            ^^^^^^\n\
                  stack (most recent call last):\n  main.mini:3:7 in <main>\n  main.mini:2:18 in go\n  lib/util.mini:3:12 in half\n";
    project.runs(None, 1, "", stderr);
}

#[test]
fn an_error_in_a_modules_top_level_shows_the_import_and_the_module_frame() {
    let inner = "let x = [1][5]\n";
    let outer = "print(\"outer\")\nlet i = import \"inner.mini\"\n";
    let project =
        Project::new("let o = import \"lib/outer.mini\"\n", &[("lib/outer.mini", outer), ("lib/inner.mini", inner)]);
    let stderr = "error: index 5 out of range for list of length 1\n --> lib/inner.mini:1:9\n  |\n1 | let x = [1][5]\n  |         ^^^^^^\n\
                  stack (most recent call last):\n  main.mini:1:9 in <main>\n  lib/outer.mini:2:9 in <module>\n  lib/inner.mini:1:9 in <module>\n";
    project.runs(None, 1, "outer\n", stderr);
}

#[test]
fn syntax_errors_and_cycles_are_reported_before_anything_runs() {
    let project = Project::new("print(\"never\")\nlet b = import \"b.mini\"\n", &[("b.mini", "\nfn f( {\n")]);
    let stderr = "error: expected a name for a parameter, found '{'\n --> b.mini:2:7\n  |\n2 | fn f( {\n  |       ^\n";
    project.runs(None, 1, "", stderr);
    let cycle = Project::new(
        "print(\"never\")\nlet a = import \"a.mini\"\n",
        &[("a.mini", "let b = import \"sub/b.mini\"\n"), ("sub/b.mini", "\nlet a = import \"../a.mini\"\n")],
    );
    let stderr = "error: import cycle: a.mini -> sub/b.mini -> a.mini\n --> sub/b.mini:2:9\n  |\n\
                  2 | let a = import \"../a.mini\"\n  |         ^^^^^^^^^^^^^^^^^^\n";
    cycle.runs(None, 1, "", stderr);
}

#[test]
fn a_program_on_standard_input_imports_from_the_working_directory() {
    let project = Project::new("", &[("m.mini", "let v = 42\n")]);
    let child = common::mini_cmd()
        .args(["run", "-"])
        .current_dir(project.dir())
        .env_remove("MINI_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mini");
    use std::io::Write;
    child.stdin.as_ref().expect("stdin").write_all(b"print((import \"m.mini\").v)\n").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(text(&out.stdout), "42\n", "{}", text(&out.stderr));
}

#[test]
fn check_warns_in_every_file_and_reports_the_jit_for_module_functions() {
    let util = "fn scale(x) { return x * factor }\nfn twice(x) { return 2 * x }\n";
    let main = "let u = import \"u.mini\"\nprint(u.twice(mystery))\n";
    let project = Project::new(main, &[("u.mini", util)]);
    let out = project.mini(&["check"], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning") || l.contains("-->")).collect();
    assert_eq!(
        warnings,
        [
            "warning: undefined variable 'mystery'",
            " --> main.mini:2:15",
            "warning: undefined variable 'factor'",
            " --> u.mini:1:26"
        ],
        "{err}"
    );
    let out = project.mini(&["check", "--jit-report"], None);
    let report = text(&out.stdout);
    assert!(report.contains("twice (u.mini line 2):\n  twice(int): compiles, returns int\n"), "{report}");
}
