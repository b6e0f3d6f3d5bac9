//! The interactive prompt (`mini`, `mini repl`; lang-spec/cli.md, "The prompt"): reads
//! statements (with line editing and history from `rustyline` when stdin is a terminal, plain
//! lines otherwise), runs each complete statement as a small program compiled against the global
//! slots of the inputs before it, prints the value of a last expression statement that is not
//! nil, and reports errors without leaving. Every input is appended to one growing source text,
//! `<stdin>`, and parsed where it ends it (`parser::parse_from`), so that line numbers count the
//! lines of the whole session and functions from earlier inputs still show their own lines.

use crate::compiler::{self, GlobalTable};
use crate::gil::{Gil, GilBound, GilSend, with_gil};
use crate::interrupt;
use crate::jit::JitOptions;
use crate::lexer::Tok;
use crate::source::{Diagnostic, SourceFile, SourceMap, Span};
use crate::sync::wait::Stop;
use crate::value::{Value, write_quoted};
use crate::vm::{self, Shared, Vm, thread};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

/// The prompt for a new statement, and the one for each further line of an open statement.
pub const PROMPT: &str = ">>> ";
pub const CONTINUATION: &str = "... ";

/// The name errors give the prompt's source.
pub const SOURCE_NAME: &str = "<stdin>";

/// How the prompt runs: the JIT's options (`--jit`), and whether to print `--stats` at exit.
pub struct Options {
    pub jit: Option<JitOptions>,
    pub stats: bool,
}

/// What one read from the user gives.
enum Read {
    Line(String),
    /// Ctrl-C at the prompt: the statement being typed is dropped.
    Cancel,
    /// Ctrl-D on an empty line, or the end of stdin.
    End,
    /// A line (from a pipe) that is not UTF-8, shown with replacement characters, and the
    /// offset of its first bad byte.
    NotUtf8(String, usize),
}

/// Where lines come from: a line editor on a terminal, or stdin read as it is.
enum Lines {
    Terminal {
        editor: Box<DefaultEditor>,
        history: Option<PathBuf>,
    },
    /// stdin, locked for each line only, so that `input()` in an input reads the lines after it.
    Piped,
}

/// The history file: `$MINI_HISTORY` when set (empty: no history), else `~/.mini_history`;
/// none without a home directory.
fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MINI_HISTORY") {
        return (!path.is_empty()).then(|| PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".mini_history"))
}

impl Lines {
    /// A line editor when stdin is a terminal (and the editor can be made), else stdin.
    fn open() -> Lines {
        if std::io::stdin().is_terminal()
            && let Ok(mut editor) = DefaultEditor::new()
        {
            let history = history_path();
            if let Some(path) = &history {
                // a missing or unreadable history file is an empty history
                let _ = editor.load_history(path);
            }
            return Lines::Terminal { editor: Box::new(editor), history };
        }
        Lines::Piped
    }

    fn interactive(&self) -> bool {
        matches!(self, Lines::Terminal { .. })
    }

    /// Reads one line (without its line end), showing the continuation prompt when `more`.
    fn read(&mut self, more: bool) -> Read {
        match self {
            Lines::Terminal { editor, history } => {
                match editor.readline(if more { CONTINUATION } else { PROMPT }) {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                            if let Some(path) = history {
                                // an unwritable history file is not the user's problem here
                                let _ = editor.save_history(path);
                            }
                        }
                        Read::Line(line)
                    }
                    Err(ReadlineError::Interrupted) => Read::Cancel,
                    Err(_) => Read::End,
                }
            }
            Lines::Piped => {
                let mut bytes = Vec::new();
                match std::io::stdin().lock().read_until(b'\n', &mut bytes) {
                    Ok(0) | Err(_) => Read::End,
                    Ok(_) => {
                        if bytes.last() == Some(&b'\n') {
                            bytes.pop();
                        }
                        match String::from_utf8(bytes) {
                            Ok(line) => Read::Line(line),
                            Err(e) => {
                                let at = e.utf8_error().valid_up_to();
                                Read::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned(), at)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The prompt's interpreter state, touched only under the GIL: the shared program state (its
/// globals live on between inputs) and the name of each global slot so far.
struct State {
    shared: Rc<Shared>,
    table: GlobalTable,
    /// How many slots of `table` the shared state has named (the rest come from inputs that
    /// failed to compile).
    named: usize,
    /// Bytecodes run by the inputs so far (`--stats`).
    executed: u64,
}

// SAFETY: `State` holds interpreter objects (through `Shared`) and `Rc` names, which the prompt
// touches only inside `with_gil`; between inputs it is kept in a `GilBound`.
unsafe impl GilSend for State {}

/// A session: the interpreter state and the text of every input so far.
struct Session {
    state: Option<GilBound<State>>,
    source: Arc<SourceFile>,
}

/// Whether a parse of `text` failed only for want of more text: its error is at the end.
fn wants_more(d: &Diagnostic, text: &str) -> bool {
    d.span.start as usize >= text.trim_end().len()
}

/// How many brackets `line` opens minus how many it closes; 0 when it does not lex (the parse
/// of the whole statement then reports the error). No token spans lines, so each line of a
/// statement is lexed alone.
fn bracket_balance(line: &str) -> i64 {
    let Ok(tokens) = crate::lexer::lex(line) else { return 0 };
    tokens
        .iter()
        .map(|t| match t.tok {
            Tok::LParen | Tok::LBracket | Tok::LBrace => 1,
            Tok::RParen | Tok::RBracket | Tok::RBrace => -1,
            _ => 0,
        })
        .sum()
}

/// Writes `d` to stderr after the program's output so far.
fn report(d: &Diagnostic, src: &Arc<SourceFile>) {
    vm::flush_stdout();
    let _ = std::io::stderr().write_all(d.render(&SourceMap::new(src.clone())).as_bytes());
}

impl Session {
    fn new(jit: Option<JitOptions>) -> Session {
        let source = SourceFile::new(SOURCE_NAME, "");
        let empty = source.clone();
        let state = with_gil(move |gil| {
            let main = compiler::compile(&[]).map(|p| p.main);
            main.ok().map(|main| {
                let shared = Rc::new(Shared::for_prompt(main, Arc::new(SourceMap::new(empty)), jit));
                GilBound::new(State { shared, table: compiler::builtin_table(), named: 0, executed: 0 }, gil)
            })
        });
        Session { state, source }
    }

    /// Whether `input` (the lines typed so far, each with its line end) is an unfinished
    /// statement: a bracket still open (`depth`, counted line by line, is above 0), or nothing
    /// but an error at its very end. (The whole input is parsed only once its brackets close,
    /// so that a function of many lines is not parsed again at each line.)
    fn unfinished(&self, input: &str, depth: i64) -> bool {
        depth > 0 || matches!(crate::parser::parse(input), Err(d) if wants_more(&d, input))
    }

    /// Adds lines that run as nothing (blank ones) to the session's text, where they count.
    fn skip(&mut self, lines: &str) {
        self.source = self.source.extended(lines);
    }

    /// Runs one complete input (a statement, or several) and prints its value or its error.
    fn run(&mut self, input: &str) {
        let base = self.source.text.len();
        self.source = self.source.extended(input);
        let src = self.source.clone();
        let Some(state) = self.state.take() else { return };
        self.state = Some(with_gil(move |gil| {
            let mut state = state.into_inner(gil);
            run_input(&mut state, base, src, gil);
            GilBound::new(state, gil)
        }));
    }

    /// Reports a line that is not UTF-8 (its first bad byte at `at`), which ends the statement
    /// being typed, `input` (the lines before it).
    fn not_utf8(&mut self, input: &str, line: &str, at: usize) {
        let start = self.source.text.len() + input.len() + at;
        self.source = self.source.extended(&format!("{input}{line}\n"));
        report(&Diagnostic::new("source is not valid UTF-8", Span::new(start, start + 1)), &self.source);
    }

    /// Ends the session as a program ends: waits for the threads the inputs started, reports
    /// those that failed and were never joined, prints `--stats`; returns the exit code.
    fn finish(mut self, stats: bool) -> u8 {
        let src = self.source.clone();
        let Some(state) = self.state.take() else { return 0 };
        let mut jit_report = String::new();
        let report_to = &mut jit_report;
        let code = with_gil(move |gil| {
            let state = state.into_inner(gil);
            let waited = thread::wait_all(gil);
            interrupt::claim_end();
            let code = report_threads(waited, &src);
            vm::flush_stdout();
            let mut vm = Vm::new(gil, state.shared.clone());
            vm.add_executed(state.executed);
            vm.finish_thread();
            *report_to = state.shared.jit.as_ref().map(|j| j.report(&SourceMap::new(src.clone()))).unwrap_or_default();
            code
        });
        if stats {
            crate::cli::print_stats();
            let _ = std::io::stderr().write_all(jit_report.as_bytes());
        }
        code
    }
}

/// Parses, compiles and runs one input, the text of `src` from byte `base` on, under the GIL;
/// prints its value or reports its error.
fn run_input(state: &mut State, base: usize, src: Arc<SourceFile>, gil: Gil) {
    let ast = crate::parser::parse_from(&src.text, base);
    let main = ast.and_then(|ast| compiler::compile_input(&ast, &mut state.table));
    let main = match main {
        Ok(main) => main,
        Err(d) => return report(&d, &src),
    };
    let new_names = state.table.get_range(state.named..).into_iter().flat_map(|names| names.keys());
    state.shared.name_globals(state.named, new_names, Arc::new(SourceMap::new(src.clone())));
    state.named = state.table.len();
    interrupt::answered();
    let mut vm = Vm::new(gil, state.shared.clone());
    let result = vm.run_top_level(main);
    state.executed += vm.executed();
    interrupt::answered();
    match result {
        Ok(value) => echo(&value, gil),
        Err(d) => report(&d, &src),
    }
    vm::flush_stdout();
}

/// Prints an input's value as the prompt shows it: nothing for nil, strings quoted as inside a
/// list (`"abc"`), everything else as `print` writes it.
fn echo(value: &Value, gil: Gil) {
    let mut text = String::new();
    match value {
        Value::Nil | Value::Undef => return,
        Value::Str(s) => write_quoted(&s.text, &mut text),
        other => match other.to_text(gil) {
            Ok(t) => text = t,
            Err(message) => {
                vm::flush_stdout();
                let _ = std::io::stderr().write_all(format!("error: {message}\n").as_bytes());
                return;
            }
        },
    }
    text.push('\n');
    let _ = vm::stdout().write_all(text.as_bytes());
}

/// Reports how the wait for the session's threads at exit ended (as `mini run` does).
fn report_threads(waited: Result<Vec<Diagnostic>, Stop>, src: &Arc<SourceFile>) -> u8 {
    crate::cli::report_threads(waited, &SourceMap::new(src.clone()))
}

/// Runs the prompt on the current thread (the interpreter's main thread) until Ctrl-D or the
/// end of stdin; returns the exit code.
pub fn run(options: Options) -> u8 {
    let mut lines = Lines::open();
    if lines.interactive() {
        let banner = format!("mini {} (Ctrl-D exits)\n", env!("CARGO_PKG_VERSION"));
        let _ = std::io::stderr().write_all(banner.as_bytes());
    }
    let mut session = Session::new(options.jit);
    let mut input = String::new();
    // brackets open in `input`
    let mut depth = 0;
    loop {
        vm::flush_stdout();
        match lines.read(!input.is_empty()) {
            Read::Line(line) => {
                input.push_str(&line);
                input.push('\n');
                depth += bracket_balance(&line);
                if input.trim().is_empty() {
                    // blank lines between statements still count as lines of the session
                    session.skip(&input);
                    input.clear();
                } else if !session.unfinished(&input, depth) {
                    session.run(&input);
                    input.clear();
                    depth = 0;
                }
            }
            Read::Cancel => {
                input.clear();
                depth = 0;
            }
            Read::NotUtf8(line, at) => {
                session.not_utf8(&input, &line, at);
                input.clear();
                depth = 0;
            }
            Read::End => {
                if !input.trim().is_empty() {
                    session.run(&input);
                }
                break;
            }
        }
    }
    session.finish(options.stats)
}
