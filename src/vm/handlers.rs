//! Errors a program handles: `try`'s handlers at run time, the error record a `catch` clause
//! sees, the error a `finally` clause carries to its `Reraise`, and the `error` builtin
//! (lang-spec/try.md).
//!
//! The dispatch loop knows nothing of `try` (it costs nothing until an error): when the loop
//! stops at an error, `Vm::run` asks [`Vm::catch`] for a handler, searching the frames the run
//! owns from the innermost out, each in its prototype's handler table (`Proto::handlers`). The
//! frames above the handler's are dropped (so the depth counted for `stack overflow` is the
//! handler's again), the handler's register gets the error, and the loop resumes at the
//! handler. A run nested in a builtin (`sort`'s key, `locked`, `pmap`'s calls) searches only its
//! own frames; an error it does not handle leaves the builtin and is searched for again in the
//! frames of the run around it. Ctrl-C (`interrupted`) and a deadlock are never handled: the
//! program ends as it did before `try` existed, without running `finally` code.

use super::{Fail, Vm};
use crate::bytecode::{Handler, HandlerKind};
use crate::gil::{self, Gil};
use crate::source::{Diagnostic, SourceMap, Span, TraceFrame};
use crate::value::{Key, StrObj, Value};
use indexmap::IndexMap;

impl Vm<'_> {
    /// Sends `fail` to the innermost handler of the frames above `stop` that covers where each
    /// frame is: the loop then resumes there. Otherwise (or for an error no program handles)
    /// returns the report.
    #[cold]
    #[inline(never)]
    pub(super) fn catch(&mut self, fail: Fail, stop: usize) -> Result<(), Diagnostic> {
        let found = if uncatchable(&fail) { None } else { self.find_handler(stop) };
        let report = self.diagnostic(fail);
        let Some((frame, h)) = found else {
            return Err(report);
        };
        let value = match h.kind {
            HandlerKind::Catch => record(&report, &self.shared.source.borrow(), self.gil),
            HandlerKind::Finally => encode(&report, self.gil),
        };
        self.frames.truncate(frame + 1);
        let top = self.frames.last_mut().expect("the handler's frame");
        top.ip = h.target as usize;
        let base = top.base;
        // the registers of the dropped frames let go of their values now
        let end = base + top.proto().nregs;
        self.stack.truncate(end);
        self.stack[base + h.reg as usize] = value;
        Ok(())
    }

    /// The innermost frame (at or above `stop`) with a handler covering the instruction it is
    /// executing, and that handler.
    fn find_handler(&self, stop: usize) -> Option<(usize, Handler)> {
        (stop..self.frames.len()).rev().find_map(|i| {
            let f = &self.frames[i];
            let pc = f.ip.checked_sub(1)? as u32;
            let h = f.proto().handlers.iter().find(|h| h.start <= pc && pc < h.end)?;
            Some((i, *h))
        })
    }
}

/// Whether an error passes through every `try`: Ctrl-C and a deadlock end the program (the
/// flags say so, whatever the message), and a blocking builtin's request is no error.
fn uncatchable(fail: &Fail) -> bool {
    matches!(fail, Fail::Blocking) || gil::interrupted() || crate::sync::wait::deadlocked()
}

/// The record a `catch` clause binds: `message`, `line`, `file` and `stack` (the report an
/// uncaught error prints).
fn record(report: &Diagnostic, src: &SourceMap, gil: Gil) -> Value {
    let file = src.file(report.span.start);
    let (line, _) = file.line_col(report.span.start);
    let mut map = IndexMap::with_capacity(4);
    let mut put = |k: &str, v: Value| map.insert(Key::Str(std::rc::Rc::new(StrObj::new(k))), v);
    put("message", Value::str(&report.message));
    put("line", Value::Int(line as i64));
    put("file", Value::str(&file.name));
    put("stack", Value::str(&report.render(src)));
    Value::dict(map, gil)
}

/// The error a `finally` handler holds while its code runs, as a list no program sees:
/// `[message, span start, span end, trace, thread traces]`, a trace being a list of
/// `[function, start, end]` frames.
fn encode(report: &Diagnostic, gil: Gil) -> Value {
    let trace = |t: &[TraceFrame]| {
        let frames = t.iter().map(|f| {
            let parts = vec![Value::str(&f.function), span_part(f.span.start), span_part(f.span.end)];
            Value::list(parts, gil)
        });
        Value::list(frames.collect(), gil)
    };
    let threads = report.thread_traces.iter().map(|t| trace(t)).collect();
    let parts = vec![
        Value::str(&report.message),
        span_part(report.span.start),
        span_part(report.span.end),
        trace(&report.trace),
        Value::list(threads, gil),
    ];
    Value::list(parts, gil)
}

fn span_part(offset: u32) -> Value {
    Value::Int(offset as i64)
}

/// The error [`encode`] stored, raised again as it was (`Instr::Reraise`). Out of line, to
/// keep the dispatch loop lean.
#[cold]
#[inline(never)]
pub(super) fn reraise(held: &Value, gil: Gil) -> Fail {
    match decode(held, gil) {
        Some(report) => Fail::Done(Box::new(report)),
        None => Fail::Msg("internal error: a finally clause lost its error".into()),
    }
}

/// The inverse of [`encode`].
fn decode(held: &Value, gil: Gil) -> Option<Diagnostic> {
    let parts = list(held, gil)?;
    let [message, start, end, trace, threads] = &parts[..] else { return None };
    let thread_traces = list(threads, gil)?.iter().map(|t| decode_trace(t, gil)).collect::<Option<_>>()?;
    Some(Diagnostic {
        message: text(message)?,
        span: span(start, end)?,
        trace: decode_trace(trace, gil)?,
        thread_traces,
    })
}

fn decode_trace(v: &Value, gil: Gil) -> Option<Vec<TraceFrame>> {
    let frames = list(v, gil)?;
    frames
        .iter()
        .map(|f| {
            let parts = list(f, gil)?;
            let [function, start, end] = &parts[..] else { return None };
            Some(TraceFrame { function: text(function)?, span: span(start, end)? })
        })
        .collect()
}

fn list(v: &Value, gil: Gil) -> Option<Vec<Value>> {
    match v {
        Value::List(l) => Some(l.borrow(gil).clone()),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.text.to_string()),
        _ => None,
    }
}

fn span(start: &Value, end: &Value) -> Option<Span> {
    match (start, end) {
        (Value::Int(s), Value::Int(e)) => Some(Span { start: *s as u32, end: *e as u32 }),
        _ => None,
    }
}

/// `error(message)`: raises a runtime error with that message (a string).
pub(super) fn error(args: &[Value]) -> Result<Value, Fail> {
    let [message] = args else {
        return Err(format!("expected 1 argument, got {}", args.len()).into());
    };
    match message {
        Value::Str(s) => Err(Fail::Msg(s.text.to_string())),
        other => Err(format!("error expects a string message, not {}", other.type_name()).into()),
    }
}
