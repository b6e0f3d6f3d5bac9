//! What `mini bench` reports (lang-spec/cli.md, "`mini bench`"): the machine (cores, CPU model,
//! mini's version and build features, the date in UTC), then one row per strategy and worker
//! count (median, min and max wall time, speedup over the strategy's own 1-worker median and
//! over sequential interpreted, efficiency) as a table, CSV or JSON; and the plot's lines.

use super::{Outcome, Row, Summary};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The output format of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Writes to stderr, ignoring its errors (as `cli::to_stderr`).
pub fn to_stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// The number of cores this process may use (`cpu_count()`).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU's model name from /proc/cpuinfo, or `unknown`.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')));
    model.map_or_else(|| "unknown".to_string(), |(_, m)| m.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The cargo features mini was built with that change what `mini bench` runs.
fn features() -> &'static [&'static str] {
    if cfg!(feature = "mpi") { &["mpi"] } else { &[] }
}

/// The date and time now in UTC: year, month, day, hour, minute, second.
fn utc_now() -> (i64, u32, u32, u32, u32, u32) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rest / 3600, rest / 60 % 60, rest % 60)
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The machine's facts, gathered once per report.
struct Machine {
    cores: usize,
    cpu: String,
    version: &'static str,
    features: &'static [&'static str],
    /// ISO 8601, such as `2026-11-30T23:05:09Z`.
    date: String,
}

impl Machine {
    fn now() -> Machine {
        let (y, mo, d, h, mi, s) = utc_now();
        Machine {
            cores: cores(),
            cpu: cpu_model(),
            version: env!("CARGO_PKG_VERSION"),
            features: features(),
            date: format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        }
    }

    fn features_text(&self) -> String {
        if self.features.is_empty() { "none".to_string() } else { self.features.join(" ") }
    }
}

/// The median of the times (the mean of the middle two for an even count).
pub fn median(times: &[f64]) -> f64 {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    let mid = t.len() / 2;
    if t.is_empty() {
        f64::NAN
    } else if t.len() % 2 == 1 {
        t[mid]
    } else {
        (t[mid - 1] + t[mid]) / 2.0
    }
}

/// A row's numbers: median, min, max, speedup over the strategy's own 1-worker median,
/// speedup over sequential interpreted, efficiency (the first speedup divided by the workers).
struct Numbers {
    median: f64,
    min: f64,
    max: f64,
    speedup: Option<f64>,
    vs_seq: f64,
    efficiency: Option<f64>,
}

/// The numbers of a timed row, `None` for a failed one.
fn numbers(row: &Row, rows: &[Row], summary: &Summary) -> Option<Numbers> {
    let Outcome::Timed(times) = &row.outcome else { return None };
    let median = median(times);
    let one = rows.iter().find(|r| r.strategy == row.strategy && r.workers == 1).and_then(|r| match &r.outcome {
        Outcome::Timed(t) => Some(self::median(t)),
        _ => None,
    });
    let speedup = one.map(|t1| t1 / median);
    Some(Numbers {
        median,
        min: times.iter().copied().fold(f64::INFINITY, f64::min),
        max: times.iter().copied().fold(0.0, f64::max),
        speedup,
        vs_seq: summary.seq_time / median,
        efficiency: speedup.map(|s| s / row.workers as f64),
    })
}

/// The row's status word: `ok`, `mismatch` or `failed`.
fn status(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Timed(_) => "ok",
        Outcome::Mismatch(_) => "mismatch",
        Outcome::Failed(_) => "failed",
    }
}

/// What went wrong in a failed row, or "".
fn problem(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Timed(_) => "",
        Outcome::Mismatch(m) | Outcome::Failed(m) => m,
    }
}

/// Prints the report on stdout in `format`.
pub fn print(format: Format, summary: &Summary, rows: &[Row]) {
    let machine = Machine::now();
    let text = match format {
        Format::Table => table(&machine, summary, rows),
        Format::Csv => csv(&machine, summary, rows),
        Format::Json => json(&machine, summary, rows),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// A time for the table: milliseconds below 10 s, else seconds.
fn time_text(secs: f64) -> String {
    if secs < 10.0 { format!("{:.1} ms", secs * 1000.0) } else { format!("{secs:.2} s") }
}

/// An optional ratio for the table, `-` when missing.
fn ratio_text(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.2}x"))
}

/// The report as a table for people.
fn table(machine: &Machine, summary: &Summary, rows: &[Row]) -> String {
    let mut t = format!(
        "mini bench {}: n = {}, {} blocks, {} run{} each after a warm-up (wall time of the whole process)\n",
        summary.program,
        summary.n,
        summary.blocks,
        summary.runs,
        if summary.runs == 1 { "" } else { "s" }
    );
    t += &format!(
        "machine: {} cores, {}, mini {} (features: {}), {}\n",
        machine.cores,
        machine.cpu,
        machine.version,
        machine.features_text(),
        machine.date.replace('T', " ").replace('Z', " UTC")
    );
    t += &format!(
        "result: {} (sequential interpreted; every timed row computed it too)\n\n",
        super::clip(&summary.result)
    );
    let name_width = rows.iter().map(|r| r.strategy.name().len()).max().unwrap_or(8).max(8);
    t += &format!(
        "{:<name_width$}  {:>7}  {:>10}  {:>10}  {:>10}  {:>7}  {:>7}  {:>10}\n",
        "strategy", "workers", "median", "min", "max", "speedup", "vs seq", "efficiency"
    );
    for row in rows {
        t += &format!("{:<name_width$}  {:>7}  ", row.strategy.name(), row.workers);
        t += &match numbers(row, rows, summary) {
            Some(n) => format!(
                "{:>10}  {:>10}  {:>10}  {:>7}  {:>7}  {:>10}\n",
                time_text(n.median),
                time_text(n.min),
                time_text(n.max),
                ratio_text(n.speedup),
                ratio_text(Some(n.vs_seq)),
                n.efficiency.map_or_else(|| "-".to_string(), |e| format!("{:.0}%", e * 100.0))
            ),
            None => format!("{}: {}\n", status(&row.outcome).to_uppercase(), problem(&row.outcome)),
        };
    }
    t += "\nspeedup: over the same strategy's 1-worker median; vs seq: over sequential (interpreted)";
    t += if summary.seq_from_reference { " (one run, seq not selected)" } else { "" };
    t += "; efficiency: speedup / workers\n";
    t += &noise_note(rows, summary);
    t
}

/// How far above its minimum a row's maximum may be before the table calls the row noisy.
const NOISY: f64 = 1.25;

/// A line naming the rows whose maximum is more than 25% above their minimum, or "" (hyperfine
/// warns of outliers likewise): their medians are not to be trusted to a few percent.
fn noise_note(rows: &[Row], summary: &Summary) -> String {
    let noisy: Vec<String> = rows
        .iter()
        .filter(|r| numbers(r, rows, summary).is_some_and(|n| n.max > NOISY * n.min))
        .map(|r| format!("{} x{}", r.strategy.id(), r.workers))
        .collect();
    if noisy.is_empty() {
        return String::new();
    }
    format!("noisy (max more than 25% above min): {}; use more --runs, on an idle machine\n", noisy.join(", "))
}

/// The columns of `--format csv`, in order.
pub const CSV_COLUMNS: [&str; 20] = [
    "program",
    "strategy",
    "name",
    "workers",
    "status",
    "median_s",
    "min_s",
    "max_s",
    "speedup",
    "speedup_vs_seq",
    "efficiency",
    "n",
    "blocks",
    "runs",
    "cores",
    "cpu",
    "mini_version",
    "features",
    "date",
    "error",
];

/// A CSV field, quoted when it holds a comma, a quote or a line end (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// A number for CSV and JSON: shortest text that reads back the same, or `None` for a
/// missing or non-finite one.
fn number(x: Option<f64>) -> Option<String> {
    x.filter(|x| x.is_finite()).map(|x| format!("{x}"))
}

/// The report as CSV: a header row, then one row per strategy and worker count, the machine
/// and the sizes repeated on every row (so that every row stands alone).
fn csv(machine: &Machine, summary: &Summary, rows: &[Row]) -> String {
    let mut t = CSV_COLUMNS.join(",") + "\n";
    for row in rows {
        let n = numbers(row, rows, summary);
        let num = |f: fn(&Numbers) -> Option<f64>| number(n.as_ref().and_then(f)).unwrap_or_default();
        let fields = [
            summary.program.clone(),
            row.strategy.id().to_string(),
            row.strategy.name().to_string(),
            row.workers.to_string(),
            status(&row.outcome).to_string(),
            num(|n| Some(n.median)),
            num(|n| Some(n.min)),
            num(|n| Some(n.max)),
            num(|n| n.speedup),
            num(|n| Some(n.vs_seq)),
            num(|n| n.efficiency),
            summary.n.to_string(),
            summary.blocks.to_string(),
            summary.runs.to_string(),
            machine.cores.to_string(),
            machine.cpu.clone(),
            machine.version.to_string(),
            machine.features_text(),
            machine.date.clone(),
            problem(&row.outcome).to_string(),
        ];
        t += &fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
        t.push('\n');
    }
    t
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number, or `null`.
fn json_number(x: Option<f64>) -> String {
    number(x).unwrap_or_else(|| "null".to_string())
}

/// The report as one JSON object: `machine`, the sizes, and `results`, one object per row.
fn json(machine: &Machine, summary: &Summary, rows: &[Row]) -> String {
    let features: Vec<String> = machine.features.iter().map(|f| json_string(f)).collect();
    let mut t = format!(
        "{{\n  \"machine\": {{\"cores\": {}, \"cpu\": {}, \"mini_version\": {}, \"features\": [{}], \"date\": {}}},\n",
        machine.cores,
        json_string(&machine.cpu),
        json_string(machine.version),
        features.join(", "),
        json_string(&machine.date)
    );
    t += &format!(
        "  \"program\": {},\n  \"n\": {},\n  \"blocks\": {},\n  \"runs\": {},\n  \"result\": {},\n  \"sequential_s\": {},\n  \"results\": [\n",
        json_string(&summary.program),
        summary.n,
        summary.blocks,
        summary.runs,
        json_string(&summary.result),
        json_number(Some(summary.seq_time))
    );
    let results: Vec<String> = rows.iter().map(|row| json_row(row, rows, summary)).collect();
    t += &results.join(",\n");
    t += "\n  ]\n}\n";
    t
}

/// One row of `results`.
fn json_row(row: &Row, rows: &[Row], summary: &Summary) -> String {
    let n = numbers(row, rows, summary);
    let times = match &row.outcome {
        Outcome::Timed(t) => t.iter().map(|x| json_number(Some(*x))).collect::<Vec<_>>().join(", "),
        _ => String::new(),
    };
    let error = match &row.outcome {
        Outcome::Timed(_) => "null".to_string(),
        other => json_string(problem(other)),
    };
    format!(
        "    {{\"strategy\": {}, \"name\": {}, \"workers\": {}, \"status\": {}, \"median_s\": {}, \"min_s\": {}, \"max_s\": {}, \"times_s\": [{times}], \"speedup\": {}, \"speedup_vs_seq\": {}, \"efficiency\": {}, \"error\": {error}}}",
        json_string(row.strategy.id()),
        json_string(row.strategy.name()),
        row.workers,
        json_string(status(&row.outcome)),
        json_number(n.as_ref().map(|n| n.median)),
        json_number(n.as_ref().map(|n| n.min)),
        json_number(n.as_ref().map(|n| n.max)),
        json_number(n.as_ref().and_then(|n| n.speedup)),
        json_number(n.as_ref().map(|n| n.vs_seq)),
        json_number(n.as_ref().and_then(|n| n.efficiency)),
    )
}

/// Draws the plot (`crate::plot`): one line per strategy, its speedup over its own 1-worker
/// median at each worker count that was timed.
pub fn plot(path: &Path, summary: &Summary, rows: &[Row]) -> Result<(), String> {
    let mut lines: Vec<crate::plot::Line> = Vec::new();
    for row in rows {
        let Some(speedup) = numbers(row, rows, summary).and_then(|n| n.speedup) else { continue };
        let name = row.strategy.name();
        match lines.iter_mut().find(|l| l.name == name) {
            Some(line) => line.points.push((row.workers, speedup)),
            None => lines.push(crate::plot::Line { name: name.to_string(), points: vec![(row.workers, speedup)] }),
        }
    }
    let title = format!("mini bench {}: speedup over 1 worker (n = {})", summary.program, summary.n);
    crate::plot::draw(path, &title, summary.max_workers, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn fields_are_escaped() {
        assert_eq!(csv_field("threads, GIL"), "\"threads, GIL\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
