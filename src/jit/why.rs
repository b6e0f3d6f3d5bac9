//! Refusal reasons in the program's own words: where the JIT stopped (line and column), the
//! construct written there (quoted from the source), and why compiled code cannot run it.
//!
//! Type inference (`infer`) refuses an instruction with a reason about types. The user wrote an
//! expression, not an instruction: [`explain`] quotes the expression the instruction was compiled
//! from, and for constructs that compiled code cannot run whatever the types (printing, f-strings,
//! containers, closures, string functions), says that instead of the types' story.

use crate::builtin::Builtin;
use crate::bytecode::{Instr, Proto};
use crate::source::{SourceMap, Span};
use crate::value::Value;
use std::fmt;

/// The longest quote of source text in a reason, in characters (longer ones end in `...`).
const QUOTE_CHARS: usize = 32;

/// A construct compiled code cannot run, whatever the types of its operands.
#[derive(Debug, PartialEq)]
enum Construct {
    /// `f"..."`: the `format` call of one of its fields.
    FString,
    /// `print(...)`, `eprint(...)`.
    Output,
    /// `[a, b]`.
    ListLiteral,
    /// `{k: v}`.
    DictLiteral,
    /// `x in c`, `x not in c`.
    Membership,
    /// A builtin working on strings (`split`, `lower`, `str`, `format`, ...).
    StringFunction(Builtin),
    /// A builtin working on lists or dicts (`push`, `keys`, `sort`, ...).
    ContainerFunction(Builtin),
    /// `range(...)` anywhere but in `for ... in range(...)`.
    RangeValue,
    /// A builtin that needs the interpreter (threads, locks, files, the clock, ...).
    InterpreterFunction(Builtin),
    /// `x[a:b:step]`.
    Slice,
    /// `fn` inside a function.
    FunctionLiteral,
    /// A variable shared with a closure, by name when the instruction has it.
    Captured(Option<String>),
    /// `p.x` or `p.x = v`, by the field's name.
    Field(Option<String>),
    /// `try { } catch e { } finally { }`.
    Try,
}

impl fmt::Display for Construct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Construct::FString => f.write_str("an f-string builds a string, which compiled code cannot do"),
            Construct::Output => f.write_str("compiled code does not print; print the function's result in its caller"),
            Construct::ListLiteral => {
                f.write_str("a list literal creates a list; compiled code creates no lists or dicts (pass an array in)")
            }
            Construct::DictLiteral => {
                f.write_str("a dict literal creates a dict; compiled code creates no lists or dicts (pass an array in)")
            }
            Construct::Membership => f.write_str(
                "membership (in, not in) in a string, list, dict or range runs only in the interpreter; compiled code tests membership in arrays",
            ),
            Construct::StringFunction(b @ (Builtin::Str | Builtin::Format | Builtin::Chr)) => {
                write!(f, "{}() builds a string, which compiled code cannot do", b.name())
            }
            Construct::StringFunction(b) => {
                write!(f, "{}() works on strings, which compiled code does not have", b.name())
            }
            Construct::RangeValue => f.write_str(
                "a range as a value runs only in the interpreter; compiled code counts with for ... in range()",
            ),
            Construct::ContainerFunction(b) => {
                write!(f, "{}() works on lists and dicts, which compiled code does not have", b.name())
            }
            Construct::InterpreterFunction(b) => write!(f, "{}() runs only in the interpreter", b.name()),
            Construct::Slice => f.write_str(
                "a slice makes a new string, list or array, which compiled code cannot do; pass the array and the bounds",
            ),
            Construct::FunctionLiteral => {
                f.write_str("defining a function (a closure) is not supported in compiled code")
            }
            Construct::Captured(Some(name)) => {
                write!(f, "'{name}' is shared with a closure; compiled code cannot use captured variables")
            }
            Construct::Captured(None) => {
                f.write_str("a variable shared with a closure; compiled code cannot use captured variables")
            }
            Construct::Field(name) => {
                let name = name.as_deref().unwrap_or("?");
                write!(f, "the record field .{name} is a dict lookup, which compiled code cannot do (pass the value in)")
            }
            Construct::Try => f.write_str(
                "try/catch runs only in the interpreter; the functions called inside the try block still compile",
            ),
        }
    }
}

/// The text of a refusal at instruction `pc` of `proto`, whose type inference said `reason`:
/// `line L:C: <quote>: <why>`.
pub fn explain(src: &SourceMap, proto: &Proto, pc: usize, reason: &str) -> String {
    let span = proto.spans.get(pc).copied().unwrap_or(proto.span);
    let (line, col) = src.line_col(span.start);
    let text = span_text(src, span);
    // a shape literal's dimension that is not an int is inference's reason (infer::shape_literal)
    let shape = reason.starts_with(crate::jit::infer::SHAPE_DIMENSION);
    let construct = proto.code.get(pc).filter(|_| !shape).and_then(|ins| construct(proto, *ins, text));
    let why = match &construct {
        Some(c) => c.to_string(),
        None => reason.to_string(),
    };
    // a global's name and a callee's signature are in the reason already
    let named = matches!(proto.code.get(pc), Some(Instr::GetGlobal { .. })) || reason.starts_with("calls ");
    // the `return nil` a function without a final return ends with has no source of its own
    let end = matches!(proto.code.get(pc), Some(Instr::ReturnNil)) && text.trim().is_empty();
    match quote(text).or_else(|| end.then(|| "the end of the function".to_string())) {
        // a field's span is its name, which the reason names already
        Some(q) if !matches!(construct, Some(Construct::FString | Construct::Field(_))) && !named => {
            format!("line {line}:{col}: {q}: {why}")
        }
        _ => format!("line {line}:{col}: {why}"),
    }
}

/// `line L:C`, where instruction `pc` of `proto` starts.
pub fn at(src: &SourceMap, proto: &Proto, pc: usize) -> String {
    let (line, col) = src.line_col(proto.spans.get(pc).copied().unwrap_or(proto.span).start);
    format!("line {line}:{col}")
}

/// The construct an instruction was compiled from, when compiled code cannot run it at all.
/// `text` is the source of the instruction's span.
fn construct(proto: &Proto, ins: Instr, text: &str) -> Option<Construct> {
    let name = |k: u16| match proto.consts.get(k as usize) {
        Some(Value::Str(s)) => Some(s.text.to_string()),
        _ => None,
    };
    Some(match ins {
        // an f-string's fields are `format` calls whose span is the field's expression; a call
        // the program writes starts with the name
        Instr::CallBuiltin { f: Builtin::Format, .. } if !is_call_of(text, "format") => Construct::FString,
        Instr::CallBuiltin { f, .. } => builtin_construct(f)?,
        Instr::NewList { .. } => Construct::ListLiteral,
        Instr::NewDict { .. } => Construct::DictLiteral,
        Instr::Slice { .. } => Construct::Slice,
        Instr::Closure { .. } => Construct::FunctionLiteral,
        Instr::GetUpval { k, .. } | Instr::SetUpval { k, .. } | Instr::GetCell { k, .. } => {
            Construct::Captured(name(k))
        }
        Instr::NewCell { .. } | Instr::NewEmptyCell { .. } | Instr::SetCell { .. } => Construct::Captured(None),
        Instr::GetField { k, .. } | Instr::SetField { k, .. } => Construct::Field(name(k)),
        Instr::Try | Instr::Reraise { .. } => Construct::Try,
        _ => return None,
    })
}

/// What a builtin is, when compiled code has no form of it for any argument types (the
/// builtins compiled code runs for some types, such as `len` or `sqrt`, are left to type
/// inference's reason, which names the types).
fn builtin_construct(b: Builtin) -> Option<Construct> {
    use Builtin as B;
    Some(match b {
        B::Print | B::Eprint => Construct::Output,
        B::In => Construct::Membership,
        B::Str
        | B::Split
        | B::Strip
        | B::Lower
        | B::Upper
        | B::Replace
        | B::Find
        | B::StartsWith
        | B::EndsWith
        | B::Ord
        | B::Chr
        | B::RFind
        | B::IsDigit
        | B::IsAlpha
        | B::IsSpace
        | B::IsAlnum
        | B::LStrip
        | B::RStrip
        | B::SplitLines
        | B::Format => Construct::StringFunction(b),
        B::Push
        | B::Pop
        | B::Keys
        | B::Has
        | B::Remove
        | B::Sort
        | B::Sorted
        | B::Reverse
        | B::Insert
        | B::Extend
        | B::Index
        | B::Copy
        | B::Values
        | B::Items
        | B::Shuffle
        | B::Choice => Construct::ContainerFunction(b),
        B::Range | B::Prange => Construct::RangeValue,
        B::Type
        | B::Clock
        | B::Spawn
        | B::Join
        | B::Args
        | B::CpuCount
        | B::Assert
        | B::Pmap
        | B::Forked
        | B::Lock
        | B::Acquire
        | B::Release
        | B::Locked
        | B::Queue
        | B::Put
        | B::Get
        | B::TryGet
        | B::Close
        | B::Barrier
        | B::Wait
        | B::Sleep
        | B::ReadFile
        | B::ReadLines
        | B::WriteFile
        | B::AppendFile
        | B::Input
        | B::Exit
        | B::Env
        | B::Time
        | B::Seed
        | B::Any
        | B::All
        | B::Enumerate
        | B::Zip
        | B::Count
        | B::Error
        | B::SetThreads
        | B::Threads => Construct::InterpreterFunction(b),
        _ => return None,
    })
}

/// Whether `text` is a call of `name`: `format(x, ".2f")`, but not the field `{format_width}`.
fn is_call_of(text: &str, name: &str) -> bool {
    text.strip_prefix(name).is_some_and(|rest| rest.trim_start().starts_with('('))
}

/// The source text of a span ("" when the span is not inside the text).
fn span_text(src: &SourceMap, span: Span) -> &str {
    src.span_text(span)
}

/// A short quote of a construct's source: its first line, cut to [`QUOTE_CHARS`] characters.
fn quote(text: &str) -> Option<String> {
    let first = text.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return None;
    }
    let cut = text.trim().contains('\n') || first.chars().count() > QUOTE_CHARS;
    if !cut {
        return Some(first.to_string());
    }
    let short: String = first.chars().take(QUOTE_CHARS - 3).collect();
    Some(format!("{}...", short.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_one_short_line() {
        assert_eq!(quote("print(\"first\", s)").as_deref(), Some("print(\"first\", s)"));
        assert_eq!(quote("  \n").as_deref(), None);
        assert_eq!(quote("for v in a {\n  s += v\n}").as_deref(), Some("for v in a {..."));
        let long = "total_of_everything + another_long_name * 2";
        assert_eq!(quote(long).as_deref(), Some("total_of_everything + another..."));
        assert_eq!(quote(long).unwrap().chars().count(), QUOTE_CHARS);
    }

    #[test]
    fn a_call_of_format_is_not_an_f_string_field() {
        assert!(is_call_of("format(x, \".2f\")", "format"));
        assert!(is_call_of("format (x, s)", "format"));
        assert!(!is_call_of("format_width", "format"));
        assert!(!is_call_of("a[0]", "format"));
    }
}
