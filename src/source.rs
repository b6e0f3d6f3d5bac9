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

/// A program's text with its name, shared by every stage and every thread (it is immutable).
#[derive(Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        let text = text.into();
        let mut line_starts = vec![0u32];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        Arc::new(SourceFile { name: name.into(), text, line_starts })
    }

    /// This file with `more` appended (the prompt's session after one more input): only
    /// `more` is scanned for line starts.
    pub fn extended(&self, more: &str) -> Arc<SourceFile> {
        let base = self.text.len();
        let mut line_starts = self.line_starts.clone();
        line_starts.extend(more.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| (base + i) as u32 + 1));
        let text = [self.text.as_str(), more].concat();
        Arc::new(SourceFile { name: self.name.clone(), text, line_starts })
    }

    /// The 1-based line and 1-based column (in characters) of a byte offset. It never panics:
    /// an offset past the end counts as the end, and one inside a character as that character.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = self.text.floor_char_boundary(offset as usize);
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
}

/// How many frames a printed stack keeps at each end when it is longer than twice this.
const TRACE_KEEP: usize = 10;

/// Writes a stack under its heading, cut to the first and last frames when it is long.
fn write_trace(out: &mut String, heading: &str, trace: &[TraceFrame], src: &SourceFile) {
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
    pub fn render(&self, src: &SourceFile) -> String {
        self.render_as("error", src)
    }

    /// Renders the report with another severity word (`warning` for `mini check`).
    pub fn render_as(&self, severity: &str, src: &SourceFile) -> String {
        let mut out = String::new();
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
        self.write_thread_traces(&mut out, src);
        write_trace(&mut out, "stack (most recent call last):", &self.trace, src);
        out
    }

    /// Writes the stacks of the threads the error came through, each under its own heading:
    /// the first (where the error happened) as the joined thread, each later one as the thread
    /// that joined the one above it. Empty stacks (a thread whose function could not be
    /// called) are left out.
    fn write_thread_traces(&self, out: &mut String, src: &SourceFile) {
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
            let _ = d.render(&src);
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
    fn each_joined_thread_gets_its_own_heading() {
        let src = SourceFile::new("p", "a\nb\nc\n");
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
