//! `mini bench` (lang-spec/cli.md, "`mini bench`") on tiny kernels: every strategy this machine
//! can run gives a row per worker count with equal results; the table's columns; the CSV and
//! the JSON parse into the same rows; a kernel whose result depends on the strategy is reported
//! as a mismatch (exit code 1); the program's errors (no `work`, no `size` and no `--n`) and a
//! bad `--strategies` id. Each run uses `--n 2000 --runs 1 --workers 2`.

mod common;

use common::{mini_on, text};
use std::process::Output;

/// The options every test run uses: a tiny n, one measured run, 1 and 2 workers.
const TINY: [&str; 6] = ["--n", "2000", "--runs", "1", "--workers", "2"];

/// A float kernel: a sum of square roots, whose blocks' sums must be combined in block order
/// for every strategy to agree to the last bit.
const SQRT: &str =
    "fn work(lo, hi) {\n    let s = 0.0\n    for i in range(lo, hi) {\n        s += sqrt(i)\n    }\n    return s\n}\n";

/// The strategies this machine runs, by id, in the table's order.
fn strategies() -> Vec<&'static str> {
    let mut ids = vec!["seq", "threads", "keep-gil", "nogil", "prange", "forked", "pmap"];
    let mpirun = std::process::Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    if cfg!(feature = "mpi") && mpirun {
        ids.push("mpi");
    }
    ids
}

/// The (strategy id, workers) rows expected for `ids` with 2 workers.
fn expected_rows(ids: &[&str]) -> Vec<(String, usize)> {
    let mut rows = Vec::new();
    for id in ids {
        let counts: &[usize] = if *id == "seq" { &[1] } else { &[1, 2] };
        rows.extend(counts.iter().map(|w| (id.to_string(), *w)));
    }
    rows
}

/// Runs `mini bench` on `program` (as `prog.mini`) with the tiny options and `extra`.
fn bench(program: &str, extra: &[&str]) -> Output {
    let mut args = vec!["bench", "FILE"];
    args.extend(TINY);
    args.extend(extra);
    mini_on(&args, program)
}

/// Splits one CSV line into fields (RFC 4180 quoting; no line ends inside fields here).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The rows of a CSV report as maps from column name to field.
fn csv_rows(csv: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = csv.lines();
    let header = csv_fields(lines.next().expect("a header row"));
    lines.map(|l| header.iter().cloned().zip(csv_fields(l)).collect()).collect()
}

/// A JSON value, parsed by the small reader below (the test adds no dependency).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(fields) => &fields.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no key {key}")).1,
            other => panic!("{other:?} is not an object"),
        }
    }
}

/// A recursive-descent reader of one JSON text (RFC 8259), strict enough to reject what a
/// JSON library would.
struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn parse(text: &str) -> Json {
        let mut r = Reader { s: text.as_bytes(), at: 0 };
        let v = r.value();
        r.ws();
        assert_eq!(r.at, r.s.len(), "text after the JSON value");
        v
    }

    fn ws(&mut self) {
        while self.at < self.s.len() && b" \t\r\n".contains(&self.s[self.at]) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(self.s.get(self.at), Some(&c), "expected {} at byte {}", c as char, self.at);
        self.at += 1;
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.s.get(self.at).copied() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Json::Str(self.string()),
            Some(b'n') => self.word("null", Json::Null),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            _ => self.number(),
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Json {
        assert!(self.s[self.at..].starts_with(w.as_bytes()), "bad literal at byte {}", self.at);
        self.at += w.len();
        v
    }

    fn number(&mut self) -> Json {
        let start = self.at;
        while self.at < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.at]) {
            self.at += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.at]).expect("ascii");
        assert!(!t.is_empty() && !t.starts_with('+') && !t.ends_with('.'), "bad number {t:?} at byte {start}");
        Json::Num(t.parse().unwrap_or_else(|_| panic!("bad number {t:?}")))
    }

    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = String::new();
        loop {
            let c = self.s[self.at];
            self.at += 1;
            match c {
                b'"' => return out,
                b'\\' => {
                    let e = self.s[self.at];
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e as char),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.at..self.at + 4]).expect("ascii");
                            out.push(char::from_u32(u32::from_str_radix(hex, 16).expect("hex")).expect("a char"));
                            self.at += 4;
                        }
                        _ => panic!("bad escape \\{}", e as char),
                    }
                }
                c if c < 0x20 => panic!("a control character in a string"),
                _ => {
                    let len = match c {
                        0..0x80 => 1,
                        0xe0..0xf0 => 3,
                        0xf0.. => 4,
                        _ => 2,
                    };
                    out.push_str(std::str::from_utf8(&self.s[self.at - 1..self.at - 1 + len]).expect("UTF-8"));
                    self.at += len - 1;
                }
            }
        }
    }

    fn array(&mut self) -> Json {
        self.eat(b'[');
        let mut items = Vec::new();
        self.ws();
        if self.s[self.at] == b']' {
            self.at += 1;
            return Json::Arr(items);
        }
        loop {
            items.push(self.value());
            self.ws();
            let c = self.s[self.at];
            self.at += 1;
            match c {
                b',' => continue,
                b']' => return Json::Arr(items),
                _ => panic!("expected , or ] at byte {}", self.at - 1),
            }
        }
    }

    fn object(&mut self) -> Json {
        self.eat(b'{');
        let mut fields = Vec::new();
        self.ws();
        if self.s[self.at] == b'}' {
            self.at += 1;
            return Json::Obj(fields);
        }
        loop {
            self.ws();
            let key = self.string();
            self.eat(b':');
            fields.push((key, self.value()));
            self.ws();
            let c = self.s[self.at];
            self.at += 1;
            match c {
                b',' => continue,
                b'}' => return Json::Obj(fields),
                _ => panic!("expected , or }} at byte {}", self.at - 1),
            }
        }
    }
}

/// The table's rows: (strategy name, workers, the rest of the line).
fn table_rows(table: &str) -> Vec<(String, usize, String)> {
    let body = table.split_once("\nstrategy ").expect("a header line").1;
    body.lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (name, rest) = l.split_once("  ").expect("two spaces after the name");
            let rest = rest.trim_start();
            let (workers, rest) = rest.split_once(' ').expect("workers");
            (name.to_string(), workers.parse().expect("a worker count"), rest.trim().to_string())
        })
        .collect()
}

#[test]
fn every_strategy_gives_a_row_per_worker_count_with_the_same_result() {
    let out = bench(SQRT, &[]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}\n{}", text(&out.stderr));
    assert!(table.starts_with("mini bench "), "{table}");
    assert!(table.contains("n = 2000, 64 blocks, 1 run each after a warm-up"), "{table}");
    let machine = table.lines().nth(1).expect("the machine line");
    assert!(
        machine.starts_with("machine: ") && machine.contains(" cores, ") && machine.contains("mini 0.1.0"),
        "{table}"
    );
    assert!(machine.contains("(features: ") && machine.ends_with(" UTC"), "{table}");
    let header = table.lines().find(|l| l.starts_with("strategy ")).expect("a header");
    let columns: Vec<&str> = header.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(columns, ["strategy", "workers", "median", "min", "max", "speedup", "vs seq", "efficiency"], "{table}");
    let rows = table_rows(&table);
    let ids = strategies();
    assert_eq!(rows.len(), expected_rows(&ids).len(), "{table}");
    for (name, workers, rest) in &rows {
        let cells: Vec<&str> = rest.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cells.len(), 6, "a timed row has six numbers: {name} {workers}: {rest}");
        assert!(cells[0].ends_with(" ms"), "{rest}");
        assert!(cells[5].ends_with('%'), "{rest}");
    }
    assert_eq!(rows[0].0, "sequential (interpreted)");
    assert!(rows.iter().any(|(n, w, _)| n == "threads, --jit (no GIL)" && *w == 2), "{table}");
    assert!(rows.iter().any(|(n, w, _)| n == "pmap processes, --jit" && *w == 2), "{table}");
}

#[test]
fn heavy_results_are_added_element_after_element_in_every_strategy() {
    let array = "fn work(lo, hi) {\n    let a = array(3, 0.0)\n    for i in range(lo, hi) {\n        a[i % 3] += sqrt(i)\n    }\n    return a\n}\n";
    let list = "fn work(lo, hi) {\n    return [hi - lo, 0.1 * lo, lo]\n}\n";
    for program in [array, list] {
        let out = bench(program, &["--format", "json"]);
        let report = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{report}\n{}", text(&out.stderr));
        let json = Reader::parse(&report);
        let Json::Arr(results) = json.get("results") else { panic!("results is a list") };
        assert_eq!(results.len(), expected_rows(&strategies()).len(), "{report}");
        assert!(results.iter().all(|r| r.get("status") == &Json::Str("ok".into())), "{report}");
        let Json::Str(result) = json.get("result") else { panic!("result is a string") };
        // one number: every element of every block's result, added in order
        assert!(result.parse::<f64>().is_ok(), "{result}");
    }
}

#[test]
fn the_blocks_cover_the_range_and_the_program_gets_its_arguments_and_prints() {
    // the program's own output comes before the driver's result line
    let program = "let k = int(args()[0])\nprint(\"top level\")\nfn work(lo, hi) {\n    return k * (hi - lo)\n}\nfn size() { return 1000 }\n";
    let out = mini_on(&["bench", "FILE", "--runs", "1", "--workers", "2", "--format", "json", "--", "3"], program);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}\n{}", text(&out.stderr));
    let json = Reader::parse(&report);
    assert_eq!(json.get("n"), &Json::Num(1000.0), "size() gives n");
    assert_eq!(json.get("result"), &Json::Str("3000".into()), "{report}");
}

#[test]
fn csv_and_json_hold_the_rows_of_the_table() {
    let ids = ["seq", "threads", "nogil", "forked"];
    let picked = ids.join(",");
    let expected = expected_rows(&ids);
    let csv_out = bench(SQRT, &["--strategies", &picked, "--format", "csv"]);
    let csv = text(&csv_out.stdout);
    assert_eq!(csv_out.status.code(), Some(0), "{csv}\n{}", text(&csv_out.stderr));
    let rows = csv_rows(&csv);
    let got: Vec<(String, usize)> =
        rows.iter().map(|r| (r["strategy"].clone(), r["workers"].parse().unwrap())).collect();
    assert_eq!(got, expected, "{csv}");
    for r in &rows {
        assert_eq!(r.len(), 20, "every column: {r:?}");
        assert_eq!((r["status"].as_str(), r["n"].as_str(), r["blocks"].as_str()), ("ok", "2000", "64"), "{r:?}");
        for col in ["median_s", "min_s", "max_s", "speedup", "speedup_vs_seq", "efficiency"] {
            let x: f64 = r[col].parse().unwrap_or_else(|_| panic!("{col} is a number: {r:?}"));
            assert!(x > 0.0, "{r:?}");
        }
        assert!(r["min_s"].parse::<f64>().unwrap() <= r["max_s"].parse::<f64>().unwrap(), "{r:?}");
        assert!(r["date"].ends_with('Z') && r["date"].contains('T'), "{r:?}");
    }
    assert_eq!(rows[2]["name"], "threads, GIL (interpreted)", "quoted names read back");
    let json_out = bench(SQRT, &["--strategies", &picked, "--format", "json"]);
    let report = text(&json_out.stdout);
    let json = Reader::parse(&report);
    let Json::Arr(results) = json.get("results") else { panic!("results is a list") };
    let got: Vec<(String, usize)> = results
        .iter()
        .map(|r| match (r.get("strategy"), r.get("workers")) {
            (Json::Str(s), Json::Num(w)) => (s.clone(), *w as usize),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, expected, "{report}");
    assert!(matches!(json.get("machine").get("cores"), Json::Num(c) if *c >= 1.0), "{report}");
    assert_eq!(json.get("machine").get("mini_version"), &Json::Str("0.1.0".into()));
    assert_eq!(json.get("blocks"), &Json::Num(64.0));
}

#[test]
fn a_result_that_depends_on_the_strategy_is_a_mismatch() {
    // the kernel returns the number of workers it runs with: only 1-worker rows agree
    let program = "fn work(lo, hi) {\n    return int(env(\"MINI_BENCH_WORKERS\")) * (hi - lo)\n}\n";
    let out = bench(program, &["--strategies", "seq,threads,forked"]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}\n{}", text(&out.stderr));
    let rows = table_rows(&table);
    assert_eq!(rows.len(), 5, "{table}");
    for (name, workers, rest) in rows {
        if workers == 1 {
            assert!(rest.contains(" ms"), "{name} {workers} is timed: {rest}");
        } else {
            assert_eq!(rest, "MISMATCH: result 4000 differs from sequential's 2000", "{name}");
        }
    }
    // threads() is what prange's set_threads(W) made it, unlike in the sequential run
    let program = "fn work(lo, hi) {\n    return float(threads()) + 0.0 * (hi - lo)\n}\n";
    let args = ["bench", "FILE", "--n", "2000", "--runs", "1", "--workers", "3", "--strategies", "prange"];
    let out = mini_on(&args, program);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(table.contains("MISMATCH: result "), "{table}");
}

#[test]
fn a_program_without_work_or_size_is_an_error_naming_it() {
    let out = bench("fn size() { return 10 }\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("prog.mini defines no function work(lo, hi)"), "{err}");
    assert_eq!(text(&out.stdout), "", "nothing is timed");
    let out = mini_on(&["bench", "FILE"], "fn work(lo, hi) { return hi - lo }\n");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("prog.mini defines no function size() and --n is not given"), "{err}");
    let out = bench("let x = 1 // 0\nfn work(lo, hi) { return 0 }\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("error: division by zero") && err.contains("prog.mini:1:9"), "{err}");
    assert!(err.contains("prog.mini failed before its work(lo, hi) could run"), "{err}");
}

#[test]
fn a_failing_run_is_a_failed_row() {
    // the kernel fails under forked only
    let program = "fn work(lo, hi) {\n    if env(\"MINI_BENCH_STRATEGY\") == \"forked\" and lo >= 1000 {\n        error(\"boom\")\n    }\n    return hi - lo\n}\n";
    let out = bench(program, &["--strategies", "seq,forked", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let rows = csv_rows(&text(&out.stdout));
    let status: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(status, ["ok", "failed", "failed"], "{rows:?}");
    assert!(rows[1]["error"].contains("boom") && rows[1]["median_s"].is_empty(), "{rows:?}");
}

#[test]
fn an_unknown_strategy_is_a_usage_error_listing_the_ids() {
    let out = bench(SQRT, &["--strategies", "seq,gpu"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("'gpu'") && err.contains("seq, threads, keep-gil, nogil, prange, forked, pmap, mpi"), "{err}");
    let out = mini_on(&["bench", "FILE", "--n", "10", "--workers", "0"], SQRT);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn the_plot_is_a_valid_svg_or_png_with_every_strategy() {
    let dir = std::env::temp_dir().join(format!("mini_bench_plot_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    for name in ["speedup.svg", "speedup.png"] {
        let path = dir.join(name);
        let out = bench(SQRT, &["--plot", path.to_str().expect("a UTF-8 path")]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let bytes = std::fs::read(&path).expect("the plot was written");
        if name.ends_with(".svg") {
            let svg = String::from_utf8(bytes).expect("an SVG is text");
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg:.200}");
            for label in
                ["workers", "speedup over 1 worker", "ideal", "threads, --jit (no GIL)", "forked processes, --jit"]
            {
                assert!(svg.contains(label), "the SVG names {label}");
            }
        } else {
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: the PNG signature");
            // the IHDR chunk: width and height, big-endian, after the signature and chunk header
            let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            assert_eq!((size(16), size(20)), (960, 640), "{name}: its size");
        }
    }
    let out = bench(SQRT, &["--plot", dir.join("speedup.gif").to_str().expect("a UTF-8 path")]);
    assert_eq!(out.status.code(), Some(1), "a bad extension");
    assert!(text(&out.stderr).contains(".svg or .png"), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
