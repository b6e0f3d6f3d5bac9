//! The interpreter's side of `prange` loops (lang-spec/parallel.md): the blocked loop's
//! instructions (`PrangePrep`, `PrangeBlock`, `ReduceInit`, `ReduceCombine`, `PrangeNext`),
//! run one block after another on the calling thread, and `set_threads`. The block plan and
//! the thread count live in `crate::parallel`, shared with the JIT.
//!
//! Each function takes the running frame's registers as a slice (`r[i]` is `R[i]`).

use super::Fail;
use super::random;
use crate::ast::BinOp;
use crate::builtin::Builtin;
use crate::bytecode::{Instr, PrangeInfo, Proto, RedOp};
use crate::gil::Gil;
use crate::parallel;
use crate::source::SourceMap;
use crate::value::Value;
use std::cell::RefCell;
use std::fmt::Write;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// The most loops `RUNNING` remembers (more only when loops fail again and again inside a loop
/// that has not ended: the oldest are then forgotten, and their time is not counted).
const MAX_RUNNING: usize = 256;

thread_local! {
    /// The loops this thread is running, innermost last, with the time each started: the
    /// `--stats` time of a loop is taken when its last block ends. A loop that failed leaves its
    /// entry behind; the next loop ending below it drops it.
    static RUNNING: RefCell<Vec<(*const PrangeInfo, Instant)>> = const { RefCell::new(Vec::new()) };
}

/// The loop registers `start, stop, step` at `a`, which the setup instruction checked.
fn range_at(r: &[Value], a: usize) -> (i64, i64, i64) {
    match (&r[a], &r[a + 1], &r[a + 2]) {
        (Value::Int(x), Value::Int(y), Value::Int(z)) => (*x, *y, *z),
        _ => unreachable!("PrangePrep checked the loop registers"),
    }
}

/// An int register set by `PrangePrep` (the verifier proves it holds an int).
fn int_at(r: &[Value], i: usize) -> i64 {
    match r[i] {
        Value::Int(v) => v,
        _ => unreachable!("PrangePrep set the block registers"),
    }
}

/// The error of a range register that is not an int, or of a zero step, named after the
/// builtin the loop calls (`range` or `prange`).
pub(super) fn range_error(name: &str, start: &Value, stop: &Value, step: &Value) -> String {
    match [start, stop, step].into_iter().find(|v| !matches!(v, Value::Int(_))) {
        Some(bad) => format!("{name}() argument must be an int, not {}", bad.type_name()),
        None => format!("{name}() step must not be zero"),
    }
}

/// The builtin a counted loop whose setup is instruction `pc` calls: `prange` for a refused
/// `prange` loop, else `range` (looked up only when its range is wrong).
#[cold]
pub(super) fn loop_name(proto: &Proto, pc: usize) -> &'static str {
    if proto.pranges.iter().any(|p| p.prep as usize == pc) { "prange" } else { "range" }
}

/// `PrangePrep { a, p }`: checks the range and the reductions' starting values, and sets up
/// the block registers. Returns whether the loop runs (false: the range is empty).
pub(super) fn prep(r: &mut [Value], a: usize, info: &PrangeInfo) -> Result<bool, Fail> {
    let (start, stop, step) = match (&r[a], &r[a + 1], &r[a + 2]) {
        (Value::Int(x), Value::Int(y), Value::Int(z)) if *z != 0 => (*x, *y, *z),
        (x, y, z) => return Err(range_error("prange", x, y, z).into()),
    };
    info.counts.runs.fetch_add(1, Relaxed);
    let n = parallel::count(start, stop, step);
    if n == 0 {
        return Ok(false);
    }
    let mut types = 0u64;
    for (j, red) in info.reductions.iter().enumerate() {
        let bit = match &r[red.acc as usize] {
            Value::Int(_) => 1u64,
            Value::Float(_) => 2,
            other => {
                return Err(format!(
                    "prange reduction '{}' must hold an int or a float when the loop starts, not {}",
                    red.name,
                    other.type_name()
                )
                .into());
            }
        };
        types |= bit.checked_shl(2 * j as u32).unwrap_or(0);
    }
    let (b, nblocks) = parallel::plan(n);
    info.counts.types.fetch_or(types, Relaxed);
    info.counts.blocks.fetch_add(nblocks, Relaxed);
    info.counts.iterations.fetch_add(n, Relaxed);
    r[a + 3] = Value::Int(0);
    r[a + 4] = Value::Int(nblocks as i64);
    r[a + 5] = Value::Int(b as i64);
    r[a + 6] = Value::Int(random::draw_seed() as i64);
    RUNNING.with_borrow_mut(|running| {
        // entries of failed loops pile up only until a loop below them ends: bound them
        if running.len() >= MAX_RUNNING {
            running.remove(0);
        }
        running.push((info, Instant::now()))
    });
    Ok(true)
}

/// `PrangeBlock { a }`: the bounds of block `R[a+3]` into `R[a+7..a+10]`, and the thread's
/// generator seeded (lazily) from `base + k`.
pub(super) fn block(r: &mut [Value], a: usize) {
    let (start, stop, step) = range_at(r, a);
    let k = int_at(r, a + 3) as u64;
    let last = k + 1 == int_at(r, a + 4) as u64;
    let b = int_at(r, a + 5) as u64;
    r[a + 7] = Value::Int(parallel::block_start(start, step, b, k));
    // the last block ends at `stop`; any other where the next one starts (inside the range)
    r[a + 8] = Value::Int(if last { stop } else { parallel::block_start(start, step, b, k + 1) });
    r[a + 9] = Value::Int(step);
    random::seed_lazily((int_at(r, a + 6) as u64).wrapping_add(k));
}

/// The identity a block of reduction `op` starts from, for the accumulator `acc` (an int or a
/// float, checked by `PrangePrep`; for `+` a float's is `-0.0`, the exact identity of float
/// addition; for min and max the accumulator itself, as they are idempotent).
pub fn identity(op: RedOp, acc: &Value) -> Value {
    match (op, acc) {
        (RedOp::Add | RedOp::Sub, Value::Float(_)) => Value::Float(-0.0),
        (RedOp::Add | RedOp::Sub, _) => Value::Int(0),
        (RedOp::Mul, Value::Float(_)) => Value::Float(1.0),
        (RedOp::Mul, _) => Value::Int(1),
        (RedOp::Min | RedOp::Max, v) => v.clone(),
    }
}

/// `ReduceCombine`: the accumulator combined with a block's partial result, with the
/// interpreter's semantics of `+`, `*`, `min` and `max` (a `-=` partial combines with `+`).
pub fn combine(op: RedOp, acc: &Value, partial: &Value, gil: Gil) -> Result<Value, Fail> {
    match (op, acc, partial) {
        (RedOp::Add | RedOp::Sub, Value::Float(x), Value::Float(y)) => return Ok(Value::Float(x + y)),
        (RedOp::Add | RedOp::Sub, Value::Int(x), Value::Int(y)) if let Some(v) = x.checked_add(*y) => {
            return Ok(Value::Int(v));
        }
        _ => {}
    }
    match op {
        RedOp::Add | RedOp::Sub => super::ops::arith(BinOp::Add, acc, partial, gil).map_err(Fail::from),
        RedOp::Mul => super::ops::arith(BinOp::Mul, acc, partial, gil).map_err(Fail::from),
        RedOp::Min => {
            super::builtins::extreme(Builtin::Min, &[acc.clone(), partial.clone()], std::cmp::Ordering::Less, gil)
        }
        RedOp::Max => {
            super::builtins::extreme(Builtin::Max, &[acc.clone(), partial.clone()], std::cmp::Ordering::Greater, gil)
        }
    }
}

/// `PrangeNext { a }`: on to the next block; returns whether there is one. After the last,
/// the thread's generator is seeded (lazily) from `base + nblocks`.
pub(super) fn next(r: &mut [Value], a: usize) -> bool {
    let k = int_at(r, a + 3) + 1;
    let nblocks = int_at(r, a + 4);
    r[a + 3] = Value::Int(k);
    if k < nblocks {
        return true;
    }
    random::seed_lazily((int_at(r, a + 6) as u64).wrapping_add(nblocks as u64));
    false
}

/// Counts the time of the loop of `proto` whose last block just ended, its `PrangeNext`
/// jumping back to `t` (just after its `PrangePrep`).
pub(super) fn finished(proto: &Proto, t: u32) {
    let Some(&Instr::PrangePrep { p, .. }) = proto.code.get((t as usize).wrapping_sub(1)) else { return };
    let Some(info) = proto.pranges.get(p as usize) else { return };
    let started = RUNNING.with_borrow_mut(|running| {
        let at = running.iter().rposition(|(q, _)| std::ptr::eq(*q, info))?;
        let (_, t) = running[at];
        running.truncate(at);
        Some(t)
    });
    if let Some(t) = started {
        info.counts.nanos.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
    }
}

/// `set_threads(n)`: the thread count of parallel loops, an int from 1 to
/// `parallel::MAX_THREADS`; returns nil.
pub(super) fn set_threads(args: &[Value]) -> Result<Value, Fail> {
    match args {
        [Value::Int(n)] => parallel::set_threads(*n).map(|()| Value::Nil).map_err(Fail::from),
        [other] => Err(format!("set_threads() needs an int, not {}", other.type_name()).into()),
        _ => Err(format!("expected 1 argument, got {}", args.len()).into()),
    }
}

/// The `--stats` section on `prange` loops: one line per blocked loop that ran (how, runs,
/// blocks, iterations, reductions with their operators and the types of their values before
/// the loop) and per refused loop (why, and where), in source order; empty without loops.
pub fn report(roots: &[Rc<Proto>], src: &SourceMap) -> String {
    let mut loops: Vec<&PrangeInfo> = Vec::new();
    let mut todo: Vec<&Proto> = roots.iter().map(|p| &**p).collect();
    while let Some(p) = todo.pop() {
        loops.extend(p.pranges.iter());
        todo.extend(p.protos.iter().map(|c| &**c));
    }
    loops.retain(|l| l.refused.is_some() || l.counts.runs.load(Relaxed) > 0);
    if loops.is_empty() {
        return String::new();
    }
    loops.sort_by_key(|l| l.span.start);
    let mut out = String::from("prange loops:\n");
    for l in loops {
        let _ = write!(out, "  {}: ", src.location(l.span));
        match &l.refused {
            Some((why, at)) => {
                let (line, col) = src.line_col(at.start);
                let _ = writeln!(out, "refused: {why} (line {line}:{col}); runs as range would");
            }
            None => {
                let runs = l.counts.runs.load(Relaxed);
                let blocks = l.counts.blocks.load(Relaxed);
                let iterations = l.counts.iterations.load(Relaxed);
                let ms = l.counts.nanos.load(Relaxed) as f64 / 1e6;
                let _ = write!(
                    out,
                    "{}: {runs} run{}, {blocks} block{}, {iterations} iteration{}{}",
                    how_it_ran(l, src),
                    plural(runs),
                    plural(blocks),
                    plural(iterations),
                    // the interpreter's time; native runs show theirs in how_it_ran
                    if l.counts.native.load(Relaxed) == 0 { format!(", {ms:.3} ms") } else { String::new() }
                );
                let _ = writeln!(out, "{}", reductions(l));
            }
        }
    }
    out
}

/// How a blocked loop's runs went: interpreted (blocks in order), and in native code in
/// parallel (threads, time) or in order on one thread (why).
fn how_it_ran(l: &PrangeInfo, src: &SourceMap) -> String {
    use crate::bytecode::{
        SEQUENTIAL_ALIASED, SEQUENTIAL_NESTED, SEQUENTIAL_NEVER, SEQUENTIAL_ONE_THREAD, SEQUENTIAL_SHORT,
    };
    let c = &l.counts;
    let (runs, native, parallel) = (c.runs.load(Relaxed), c.native.load(Relaxed), c.parallel.load(Relaxed));
    if native == 0 {
        return "interpreted, blocks in order".into();
    }
    let mut parts = Vec::new();
    if runs > native {
        parts.push(format!("{} interpreted, blocks in order", runs - native));
    }
    if parallel > 0 {
        let ms = c.parallel_nanos.load(Relaxed) as f64 / 1e6;
        let threads = c.threads.load(Relaxed);
        parts.push(format!("{parallel} parallel on {threads} threads ({ms:.3} ms)"));
    }
    if native > parallel {
        let bits = c.sequential.load(Relaxed);
        let mut why = Vec::new();
        if bits & SEQUENTIAL_NEVER != 0
            && let Some((reason, at)) = c.never_parallel.get()
        {
            match at {
                Some(span) => {
                    let (line, col) = src.line_col(span.start);
                    why.push(format!("{reason} (line {line}:{col})"));
                }
                None => why.push(reason.clone()),
            }
        }
        for (bit, text) in [
            (SEQUENTIAL_SHORT, "too short to share"),
            (SEQUENTIAL_ONE_THREAD, "one thread (set_threads)"),
            (SEQUENTIAL_NESTED, "inside another parallel loop's block"),
            (SEQUENTIAL_ALIASED, "two of its arrays are the same array"),
        ] {
            if bits & bit != 0 {
                why.push(text.to_string());
            }
        }
        parts.push(format!("{} native, blocks in order on one thread ({})", native - parallel, why.join("; ")));
    }
    parts.join(", ")
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `; reductions: s += (int), m min (float)`, or nothing without reductions.
fn reductions(l: &PrangeInfo) -> String {
    let types = l.counts.types.load(Relaxed);
    let parts: Vec<String> = (l.reductions.iter().enumerate())
        .map(|(j, r)| {
            let bits = types.checked_shr(2 * j as u32).unwrap_or(0) & 3;
            let ty = match bits {
                1 => "int",
                2 => "float",
                3 => "int or float",
                _ => "not run",
            };
            format!("{} {} ({ty})", r.name, r.op.symbol())
        })
        .collect();
    if parts.is_empty() { String::new() } else { format!("; reductions: {}", parts.join(", ")) }
}
