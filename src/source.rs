//! Source files, byte spans, and the rendering of error reports with `file:line:col`.

use std::fmt::Write;
use std::sync::Arc;

/// A byte range in one source file. Every AST node, token and instruction carries one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }

    /// The smallest span that covers both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// One source file's text with its name, shared by every stage and every thread (it is
/// immutable). Its bytes sit at offsets `base..base + len` of the program's byte space (see
/// [`SourceMap`]); every offset a file's methods take is in that space.
#[derive(Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    /// The offset of the file's first byte in the program's byte space (0 for the main file).
    pub base: u32,
    line_starts: Vec<u32>,
}

impl SourceFile {
    /// A file at offset 0 (a program of one file).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        SourceFile::at(name, text, 0)
    }

    /// A file whose first byte is at offset `base` of the program's byte space.
    pub fn at(name: impl Into<String>, text: impl Into<String>, base: u32) -> Arc<SourceFile> {
        let text = text.into();
        let mut line_starts = vec![0u32];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        Arc::new(SourceFile { name: name.into(), text, base, line_starts })
    }

    /// This file with `more` appended (the prompt's session after one more input): only
    /// `more` is scanned for line starts.
    pub fn extended(&self, more: &str) -> Arc<SourceFile> {
        let base = self.text.len();
        let mut line_starts = self.line_starts.clone();
        line_starts.extend(more.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| (base + i) as u32 + 1));
        let text = [self.text.as_str(), more].concat();
        Arc::new(SourceFile { name: self.name.clone(), text, base: self.base, line_starts })
    }

    /// The 1-based line and 1-based column (in characters) of a byte offset. It never panics:
    /// an offset past the end counts as the end, and one inside a character as that character.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = self.text.floor_char_boundary(offset.saturating_sub(self.base) as usize);
        // `line_starts[0]` is 0, so the partition point is at least 1
        let line = self.line_starts.partition_point(|&s| s as usize <= offset).max(1) - 1;
        let start = self.line_starts[line] as usize;
        let col = self.text[start..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a 1-based line, without its newline.
    /// (Empty for a line that does not exist.)
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = line.checked_sub(1).and_then(|i| self.line_starts.get(i)) else {
            return "";
        };
        let end = self.line_starts.get(line).map_or(self.text.len(), |&e| e as usize);
        self.text[start as usize..end].trim_end_matches(['\n', '\r'])
    }

    /// `file:line:col` for a span's start.
    pub fn location(&self, span: Span) -> String {
        let (line, col) = self.line_col(span.start);
        format!("{}:{}:{}", self.name, line, col)
    }

    /// The text of a span in this file ("" when it is not inside the text).
    pub fn span_text(&self, span: Span) -> &str {
        let (start, end) = (span.start.wrapping_sub(self.base), span.end.wrapping_sub(self.base));
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    /// The offset just past this file, where the next file of a program may start: one byte
    /// of gap, so that an offset at a file's end still belongs to that file.
    fn next_base(&self) -> Option<u32> {
        u32::try_from(self.text.len()).ok()?.checked_add(self.base)?.checked_add(1)
    }
}

/// The files of one program (the main file and the modules it imports) in one byte space, as
/// rustc's source map: each file at its own base offset, so that a span alone says which file
/// it is in. A program of one file is a map of one file at offset 0.
#[derive(Debug)]
pub struct SourceMap {
    /// The files in order of their base offsets; the first is the main file.
    files: Vec<Arc<SourceFile>>,
}

impl SourceMap {
    /// The map of a program whose main file is `main` (at offset 0).
    pub fn new(main: Arc<SourceFile>) -> SourceMap {
        SourceMap { files: vec![main] }
    }

    /// Adds a file after the last one; `None` when the byte space (4 GiB) is full.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> Option<Arc<SourceFile>> {
        let text = text.into();
        let base = self.files.last().map_or(Some(0), |f| f.next_base())?;
        base.checked_add(u32::try_from(text.len()).ok()?)?;
        let file = SourceFile::at(name, text, base);
        self.files.push(file.clone());
        Some(file)
    }

    /// The main file.
    pub fn main(&self) -> &Arc<SourceFile> {
        &self.files[0]
    }

    /// The file that holds byte `offset` (the last file for an offset past every file).
    pub fn file(&self, offset: u32) -> &Arc<SourceFile> {
        let i = self.files.partition_point(|f| f.base <= offset).max(1) - 1;
        &self.files[i]
    }

    /// The 1-based line and column of `offset` in its file.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        self.file(offset).line_col(offset)
    }

    /// `file:line:col` for a span's start.
    pub fn location(&self, span: Span) -> String {
        self.file(span.start).location(span)
    }

    /// The source text of a span ("" when it is not inside one file's text).
    pub fn span_text(&self, span: Span) -> &str {
        self.file(span.start).span_text(span)
    }
}

/// How many frames a printed stack keeps at each end when it is longer than twice this.
const TRACE_KEEP: usize = 10;

/// Writes a stack under its heading, cut to the first and last frames when it is long.
fn write_trace(out: &mut String, heading: &str, trace: &[TraceFrame], src: &SourceMap) {
    if trace.is_empty() {
        return;
    }
    out.push_str(heading);
    out.push('\n');
    let line = |out: &mut String, f: &TraceFrame| {
        let _ = writeln!(out, "  {} in {}", src.location(f.span), f.function);
    };
    if trace.len() <= 2 * TRACE_KEEP {
        trace.iter().for_each(|f| line(out, f));
        return;
    }
    trace[..TRACE_KEEP].iter().for_each(|f| line(out, f));
    let _ = writeln!(out, "  ... {} more frames ...", trace.len() - 2 * TRACE_KEEP);
    trace[trace.len() - TRACE_KEEP..].iter().for_each(|f| line(out, f));
}

/// One frame of a runtime call stack, outermost first when stored in a trace.
#[derive(Clone, Debug)]
pub struct TraceFrame {
    pub function: String,
    pub span: Span,
}

/// An error ready to be shown to the user: message, primary span, and (at run time) the stack.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub message: String,
    pub span: Span,
    pub trace: Vec<TraceFrame>,
    /// For an error raised by `join`: the stacks of the threads it came through, innermost
    /// (where it happened) first, then each thread that joined the one before it.
    pub thread_traces: Vec<Vec<TraceFrame>>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic { message: message.into(), span, trace: Vec::new(), thread_traces: Vec::new() }
    }

    /// A runtime error at `span` with the current thread's stack.
    pub fn runtime(message: String, span: Span, trace: Vec<TraceFrame>) -> Diagnostic {
        Diagnostic { message, span, trace, thread_traces: Vec::new() }
    }

    /// The error of a joined thread, raised again by `join` at `span` with the joining
    /// thread's stack: the joined thread's stack goes after the stacks it already carried.
    pub fn raised_by_join(joined: Diagnostic, span: Span, trace: Vec<TraceFrame>) -> Diagnostic {
        let mut thread_traces = joined.thread_traces;
        thread_traces.push(joined.trace);
        Diagnostic { message: joined.message, span, trace, thread_traces }
    }

    /// Renders the report printed on stderr: message, location, source line with a marker,
    /// and the call stacks when there are any (the joined threads' first).
    pub fn render(&self, src: &SourceMap) -> String {
        self.render_as("error", src)
    }

    /// Renders the report with another severity word (`warning` for `mini check`).
    pub fn render_as(&self, severity: &str, map: &SourceMap) -> String {
        let mut out = String::new();
        let src = &**map.file(self.span.start);
        let (line, col) = src.line_col(self.span.start);
        let text = src.line_text(line);
        let gutter = line.to_string().len();
        let _ = writeln!(out, "{severity}: {}", self.message);
        let _ = writeln!(out, "{:w$}--> {}:{}:{}", "", src.name, line, col, w = gutter);
        let _ = writeln!(out, "{:w$} |", "", w = gutter);
        let _ = writeln!(out, "{} | {}", line, text);
        let marker_len = self.marker_len(src, text, col);
        let pad: String = text.chars().take(col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        let _ = writeln!(out, "{:w$} | {}{}", "", pad, "^".repeat(marker_len), w = gutter);
        self.write_thread_traces(&mut out, map);
        write_trace(&mut out, "stack (most recent call last):", &self.trace, map);
        out
    }

    /// Writes the stacks of the threads the error came through, each under its own heading:
    /// the first (where the error happened) as the joined thread, each later one as the thread
    /// that joined the one above it. Empty stacks (a thread whose function could not be
    /// called) are left out.
    fn write_thread_traces(&self, out: &mut String, src: &SourceMap) {
        let mut heading = "in the joined thread (most recent call last):";
        for trace in self.thread_traces.iter().filter(|t| !t.is_empty()) {
            write_trace(out, heading, trace, src);
            heading = "in the thread that joined it (most recent call last):";
        }
    }

    /// The marker covers the span, clipped to the end of its first line, at least one column.
    fn marker_len(&self, src: &SourceFile, text: &str, col: usize) -> usize {
        let (end_line, end_col) = src.line_col(self.span.end);
        let (line, _) = src.line_col(self.span.start);
        let line_chars = text.chars().count();
        let end = if end_line == line { end_col } else { line_chars + 1 };
        end.saturating_sub(col).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_of_every_offset_never_panics() {
        let src = SourceFile::new("t", "a\u{e9}\u{fffd}b\n\u{1F600}\r\n\nx");
        for offset in (0..=src.text.len() as u32 + 3).chain([u32::MAX]) {
            let (line, col) = src.line_col(offset);
            assert!(line >= 1 && col >= 1);
            let _ = src.line_text(line);
            let d = Diagnostic::new("m", Span { start: offset, end: offset.wrapping_sub(2) });
            let _ = d.render(&SourceMap::new(src.clone()));
        }
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(2), (1, 2)); // inside the two bytes of 'é'
        assert_eq!(src.line_col(3), (1, 3));
        assert_eq!(src.line_col(7), (1, 5));
        assert_eq!(src.line_col(8), (2, 1));
        assert_eq!(src.line_col(12), (2, 2));
        assert_eq!(src.line_col(u32::MAX), (4, 2));
        assert_eq!(src.line_text(0), "");
        assert_eq!(src.line_text(9), "");
    }

    #[test]
    fn a_source_map_locates_each_offset_in_its_own_file() {
        let mut map = SourceMap::new(SourceFile::new("main.mini", "ab\ncd"));
        let util = map.add("util.mini", "x\nyz\n").expect("room");
        assert_eq!(util.base, 6); // "ab\ncd" is 5 bytes, then one byte of gap
        assert_eq!(map.location(Span::new(4, 5)), "main.mini:2:2");
        assert_eq!(map.location(Span::new(5, 5)), "main.mini:2:3"); // the main file's end
        assert_eq!(map.location(Span::new(6, 7)), "util.mini:1:1");
        assert_eq!(map.location(Span::new(9, 10)), "util.mini:2:2");
        assert_eq!(map.span_text(Span::new(8, 10)), "yz");
        assert_eq!(map.span_text(Span::new(4, 8)), ""); // not inside one file
        assert_eq!(map.location(Span { start: u32::MAX, end: u32::MAX }), "util.mini:3:1");
        let d = Diagnostic::runtime(
            "boom".into(),
            Span::new(9, 10),
            vec![TraceFrame { function: "<main>".into(), span: Span::new(3, 4) }],
        );
        assert_eq!(
            d.render(&map),
            "error: boom\n --> util.mini:2:2\n  |\n2 | yz\n  |  ^\nstack (most recent call last):\n  main.mini:2:1 in <main>\n"
        );
    }

    #[test]
    fn each_joined_thread_gets_its_own_heading() {
        let src = SourceMap::new(SourceFile::new("p", "a\nb\nc\n"));
        let frame = |function: &str, at: usize| TraceFrame { function: function.into(), span: Span::new(at, at + 1) };
        let innermost = Diagnostic::runtime("boom".into(), Span::new(0, 1), vec![frame("f", 0)]);
        // a thread whose function is a builtin (no frames) joined it, and the main thread that one
        let middle = Diagnostic::raised_by_join(innermost, Span::default(), Vec::new());
        let outer = Diagnostic::raised_by_join(middle.clone(), Span::new(2, 3), vec![frame("g", 2)]);
        let top = Diagnostic::raised_by_join(outer, Span::new(4, 5), vec![frame("<main>", 4)]);
        let text = top.render(&src);
        let stacks = text.split_once("^\n").expect("a marker line").1;
        assert_eq!(
            stacks,
            "in the joined thread (most recent call last):\n  p:1:1 in f\n\
             in the thread that joined it (most recent call last):\n  p:2:1 in g\n\
             stack (most recent call last):\n  p:3:1 in <main>\n"
        );
        // one join: the report as it always was
        let one = middle.render(&src);
        assert!(one.ends_with("^\nin the joined thread (most recent call last):\n  p:1:1 in f\n"), "{one}");
    }
}
