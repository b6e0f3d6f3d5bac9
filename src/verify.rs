//! The bytecode verifier: checks that a compiled prototype tree keeps every invariant the
//! interpreter's dispatch loop trusts in its unchecked (`unsafe`) accesses, so that a bug in the
//! compiler is an internal error rather than undefined behaviour.
//!
//! It checks, for every function: at most 256 registers and at least as many as parameters; a span
//! per instruction; every register operand (and every register window of a call, a list or dict
//! literal, a slice, the indexes of an array of several dimensions, a counted or generic loop)
//! below `nregs`; constants, global slots, captured
//! cells and child prototypes in range, and the constants of the `K` forms numbers; every jump
//! target inside the code, and no instruction falling off the end (the code ends in a return or a
//! jump); a closure's captures naming its parent's registers or cells; each `try` handler's
//! range, target and register inside the function. A data-flow pass then
//! proves, on every path, that `GetCell`, `SetCell` and a `Closure`'s captured registers hold
//! cells, and that a `ForLoop`'s three loop registers and an `IterNext`'s position hold ints (what
//! `ForPrep` and `IterPrep` established), so those instructions never meet anything else. Every
//! instruction of a handler's range has an edge to the handler, on which the registers it
//! writes and the handler's register are unknown (an error may stop it half-way).
//!
//! It runs on every compiled program in debug builds and, in release builds, when the
//! environment variable `MINI_VERIFY_BYTECODE` is set to anything but `0` (the test suites set
//! it). The facts it needs about each instruction come from [`Instr::facts`].

use crate::bytecode::{Capture, Flow, Instr, Proto, Reg, Writes};
use crate::value::Value;

/// The environment variable that turns verification on in release builds.
pub const ENV: &str = "MINI_VERIFY_BYTECODE";

/// The most registers a frame may address (`Reg` is a byte).
const MAX_REGS: usize = Reg::MAX as usize + 1;

/// Whether compiled bytecode is verified: always in debug builds, and when `MINI_VERIFY_BYTECODE`
/// is set (and not `0`).
pub fn enabled() -> bool {
    cfg!(debug_assertions) || std::env::var_os(ENV).is_some_and(|v| v != "0")
}

/// Verifies the main function of a program with `nglobals` global slots, and every function
/// nested in it. The error names the function and the instruction.
pub fn program(main: &Proto, nglobals: usize) -> Result<(), String> {
    if !main.captures.is_empty() {
        return Err(format!("the main function {} captures variables", main.name));
    }
    proto(main, nglobals)
}

/// Verifies one function and its children.
pub fn proto(p: &Proto, nglobals: usize) -> Result<(), String> {
    let fail = |pc: Option<usize>, what: String| match pc {
        Some(pc) => format!("invalid bytecode in {} at instruction {pc} ({:?}): {what}", p.name, p.code[pc]),
        None => format!("invalid bytecode in {}: {what}", p.name),
    };
    shape(p).map_err(|e| fail(None, e))?;
    handlers(p).map_err(|e| fail(None, e))?;
    for (pc, ins) in p.code.iter().enumerate() {
        operands(p, pc, *ins, nglobals).map_err(|e| fail(Some(pc), e))?;
    }
    for (i, child) in p.protos.iter().enumerate() {
        captures(p, child).map_err(|e| fail(None, format!("child {i} ({}): {e}", child.name)))?;
    }
    pranges(p).map_err(|e| fail(None, e))?;
    kinds(p).map_err(|(pc, e)| fail(Some(pc), e))?;
    p.protos.iter().try_for_each(|child| proto(child, nglobals))
}

/// The function as a whole: register count, parameters, code and spans.
fn shape(p: &Proto) -> Result<(), String> {
    if p.nregs > MAX_REGS {
        return Err(format!("{} registers (at most {MAX_REGS})", p.nregs));
    }
    if p.nparams > p.nregs {
        return Err(format!("{} parameters but {} registers", p.nparams, p.nregs));
    }
    if p.code.is_empty() {
        return Err("no code".into());
    }
    if p.spans.len() != p.code.len() {
        return Err(format!("{} spans for {} instructions", p.spans.len(), p.code.len()));
    }
    if p.code.len() > u32::MAX as usize {
        return Err("too many instructions".into());
    }
    // fused instructions belong to the interpreter's copy only, which must be the fused code
    if let Some(pc) = p.code.iter().position(|ins| ins.unfused() != *ins) {
        return Err(format!("a fused instruction in the code at {pc}"));
    }
    if *p.run != *crate::bytecode::fuse(&p.code) {
        return Err("the interpreter's code is not the fused code".into());
    }
    Ok(())
}

/// The handler table: ranges, targets and registers inside the function.
fn handlers(p: &Proto) -> Result<(), String> {
    let len = p.code.len();
    for h in &p.handlers {
        if h.start >= h.end || h.end as usize > len {
            return Err(format!("handler range {}..{} in {len} instructions", h.start, h.end));
        }
        if h.target as usize >= len {
            return Err(format!("handler target {} outside the code", h.target));
        }
        if h.reg as usize >= p.nregs {
            return Err(format!("handler register {} is not below the {} registers", h.reg, p.nregs));
        }
    }
    Ok(())
}

/// One instruction's operands and successors.
fn operands(p: &Proto, pc: usize, ins: Instr, nglobals: usize) -> Result<(), String> {
    let facts = ins.facts();
    for (first, count) in facts.regs {
        if count > 0 && first as usize + count as usize > p.nregs {
            let last = first as usize + count as usize - 1;
            return Err(format!("register {last} is not below the {} registers", p.nregs));
        }
    }
    if let Some(k) = facts.konst {
        let Some(c) = p.consts.get(k as usize) else {
            return Err(format!("constant {k} of {}", p.consts.len()));
        };
        if facts.number_const && !matches!(c, Value::Int(_) | Value::Float(_)) {
            return Err(format!("constant {k} is a {}, not a number", c.type_name()));
        }
    }
    if let Some(g) = facts.global.filter(|g| *g as usize >= nglobals) {
        return Err(format!("global slot {g} of {nglobals}"));
    }
    if let Some(u) = facts.upval.filter(|u| *u as usize >= p.captures.len()) {
        return Err(format!("captured cell {u} of {}", p.captures.len()));
    }
    if let Some(c) = facts.child.filter(|c| *c as usize >= p.protos.len()) {
        return Err(format!("child function {c} of {}", p.protos.len()));
    }
    let len = p.code.len();
    match facts.flow {
        Flow::Jump(t) | Flow::Branch(t) if t as usize >= len => Err(format!("jump target {t} outside the code")),
        Flow::Next | Flow::Branch(_) if pc + 1 >= len => Err("the code runs off its end".into()),
        Flow::Next | Flow::Jump(_) | Flow::Branch(_) | Flow::Return => Ok(()),
    }
}

/// The `prange` table: each loop's setup instruction is a `PrangePrep` naming it (or, for a
/// refused loop, a `ForPrep`), each `PrangePrep` names an entry, and the loop variable and
/// reduction registers are below `nregs`.
fn pranges(p: &Proto) -> Result<(), String> {
    for (i, info) in p.pranges.iter().enumerate() {
        let prep = p.code.get(info.prep as usize).copied();
        let ok = match (&info.refused, prep) {
            (None, Some(Instr::PrangePrep { p: q, .. })) => q as usize == i,
            (Some(_), Some(Instr::ForPrep { .. })) => true,
            _ => false,
        };
        if !ok {
            return Err(format!("prange {i}: instruction {} is not its setup", info.prep));
        }
        let regs = info.reductions.iter().flat_map(|r| [r.var, r.acc]).chain([info.var]);
        if let Some(r) = regs.into_iter().find(|r| *r as usize >= p.nregs) {
            return Err(format!("prange {i}: register {r} is not below the {} registers", p.nregs));
        }
    }
    for ins in &p.code {
        if let Instr::PrangePrep { p: q, .. } = *ins
            && p.pranges.get(q as usize).is_none_or(|info| info.refused.is_some())
        {
            return Err(format!("PrangePrep of prange {q}, which is not a blocked loop"));
        }
    }
    Ok(())
}

/// A child's captures refer to its parent's registers and cells.
fn captures(parent: &Proto, child: &Proto) -> Result<(), String> {
    for cap in &child.captures {
        match *cap {
            Capture::Local(r) if r as usize >= parent.nregs => {
                return Err(format!("captures register {r} of {}", parent.nregs));
            }
            Capture::Upval(u) if u as usize >= parent.captures.len() => {
                return Err(format!("captures cell {u} of {}", parent.captures.len()));
            }
            Capture::Local(_) | Capture::Upval(_) => {}
        }
    }
    Ok(())
}

/// What the data-flow pass knows of a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unknown,
    /// A cell (made by `NewCell` or `NewEmptyCell`).
    Cell,
    /// An int.
    Int,
}

/// Proves the register kinds the interpreter relies on (see the module comment); returns the
/// first instruction that could meet something else.
fn kinds(p: &Proto) -> Result<(), (usize, String)> {
    let states = flow_kinds(p);
    for (pc, ins) in p.code.iter().enumerate() {
        let Some(st) = &states[pc] else { continue };
        let need = |r: Reg, kind: Kind, what: &str| {
            if st[r as usize] == kind { Ok(()) } else { Err((pc, format!("register {r} may not hold {what}"))) }
        };
        let facts = ins.facts();
        if let Some(r) = facts.cell {
            need(r, Kind::Cell, "a cell")?;
        }
        if let Some(c) = facts.child {
            for cap in &p.protos[c as usize].captures {
                if let Capture::Local(r) = *cap {
                    need(r, Kind::Cell, "a cell to capture")?;
                }
            }
        }
        if let Some((first, n)) = facts.ints {
            (first..first + n).try_for_each(|r| need(r, Kind::Int, "an int set by the loop's setup"))?;
        }
    }
    Ok(())
}

/// The register kinds before each reachable instruction (`None` where unreachable), by a
/// forward data-flow fixpoint: a register keeps a kind only if every path gives it that kind.
fn flow_kinds(p: &Proto) -> Vec<Option<Box<[Kind]>>> {
    let code = &p.code;
    let mut states: Vec<Option<Box<[Kind]>>> = vec![None; code.len()];
    states[0] = Some(vec![Kind::Unknown; p.nregs].into_boxed_slice());
    let mut queued = vec![false; code.len()];
    queued[0] = true;
    let mut work = vec![0usize];
    while let Some(pc) = work.pop() {
        queued[pc] = false;
        let ins = code[pc];
        let mut next: Box<[Kind]> = states[pc].clone().expect("queued instructions have a state");
        let mut taken = next.clone();
        step(ins, &mut next, &mut taken);
        let succs = match ins.flow() {
            Flow::Next => [Some((pc + 1, &next)), None],
            Flow::Jump(t) => [Some((t as usize, &taken)), None],
            Flow::Branch(t) => [Some((pc + 1, &next)), Some((t as usize, &taken))],
            Flow::Return => [None, None],
        };
        let caught = handler_edges(p, pc, states[pc].as_deref().expect("queued instructions have a state"));
        let caught: Vec<(usize, &[Kind])> = caught.iter().map(|(t, st)| (*t, &**st)).collect();
        for (to, st) in succs.into_iter().flatten().map(|(t, st)| (t, &**st)).chain(caught) {
            if merge(&mut states[to], st) && !queued[to] {
                queued[to] = true;
                work.push(to);
            }
        }
    }
    states
}

/// The edges from instruction `pc` to the handlers covering it: an error may leave any
/// register it writes written or not, and the handler's register holds the error.
fn handler_edges(p: &Proto, pc: usize, before: &[Kind]) -> Vec<(usize, Box<[Kind]>)> {
    let covers = |h: &&crate::bytecode::Handler| h.start as usize <= pc && pc < h.end as usize;
    p.handlers
        .iter()
        .filter(covers)
        .map(|h| {
            let mut st: Box<[Kind]> = before.into();
            match p.code[pc].writes() {
                Writes::Nothing => {}
                Writes::One(a) => st[a as usize] = Kind::Unknown,
                Writes::Two(a, b) => {
                    st[a as usize] = Kind::Unknown;
                    st[b as usize] = Kind::Unknown;
                }
                Writes::From(a) => st[a as usize..].fill(Kind::Unknown),
                Writes::Window(a, n) => st[a as usize..a as usize + n as usize].fill(Kind::Unknown),
            }
            st[h.reg as usize] = Kind::Unknown;
            (h.target as usize, st)
        })
        .collect()
}

/// The effect of one instruction: `next` becomes the state on its fall-through edge, `taken`
/// the state on its jump.
fn step(ins: Instr, next: &mut [Kind], taken: &mut [Kind]) {
    let set = |st: &mut [Kind], r: Reg, k: Kind| st[r as usize] = k;
    match ins {
        Instr::NewCell { a } | Instr::NewEmptyCell { a } => set(next, a, Kind::Cell),
        Instr::LoadInt { a, .. } => set(next, a, Kind::Int),
        Instr::Move { a, b } => next[a as usize] = next[b as usize],
        Instr::ForPrep { a, .. } => {
            // it raised unless start, stop and step are ints; entering the loop sets R[a+3]
            for st in [&mut *next, &mut *taken] {
                (a..a + 3).for_each(|r| set(st, r, Kind::Int));
            }
            set(next, a + 3, Kind::Int);
        }
        Instr::ForLoop { a, .. } => {
            set(taken, a, Kind::Int);
            set(taken, a + 3, Kind::Int);
        }
        Instr::IterPrep { a } => {
            set(next, a, Kind::Unknown);
            set(next, a + 1, Kind::Int);
        }
        Instr::IterNext { a, .. } => {
            set(next, a + 1, Kind::Int);
            set(next, a + 2, Kind::Unknown);
        }
        Instr::PrangePrep { a, .. } => {
            // it raised unless start, stop and step are ints; entering sets the block registers
            for st in [&mut *next, &mut *taken] {
                (a..a + 3).for_each(|r| set(st, r, Kind::Int));
            }
            (a + 3..a + 7).for_each(|r| set(next, r, Kind::Int));
        }
        Instr::PrangeBlock { a } => (a + 7..a + 10).for_each(|r| set(next, r, Kind::Int)),
        Instr::PrangeNext { a, .. } => {
            set(next, a + 3, Kind::Int);
            set(taken, a + 3, Kind::Int);
        }
        // anything else: what it writes is unknown, on both edges
        other => {
            for st in [next, taken] {
                match other.writes() {
                    Writes::Nothing => {}
                    Writes::One(a) => set(st, a, Kind::Unknown),
                    Writes::Two(a, b) => {
                        set(st, a, Kind::Unknown);
                        set(st, b, Kind::Unknown);
                    }
                    Writes::From(a) => st[a as usize..].fill(Kind::Unknown),
                    Writes::Window(a, n) => st[a as usize..a as usize + n as usize].fill(Kind::Unknown),
                }
            }
        }
    }
}

/// Joins `st` into a successor's state; true when it changed.
fn merge(slot: &mut Option<Box<[Kind]>>, st: &[Kind]) -> bool {
    let Some(old) = slot else {
        *slot = Some(st.into());
        return true;
    };
    let mut changed = false;
    for (o, n) in old.iter_mut().zip(st) {
        if *o != *n && *o != Kind::Unknown {
            *o = Kind::Unknown;
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytecode::JitSlot;
    use crate::source::Span;
    use std::rc::Rc;

    /// A prototype with this code, 4 registers, 1 parameter, one int constant and the given
    /// children.
    fn make(code: Vec<Instr>, protos: Vec<Rc<Proto>>, captures: Vec<Capture>) -> Proto {
        Proto {
            name: "f".into(),
            nparams: 1,
            nregs: 4,
            spans: vec![Span::default(); code.len()],
            run: crate::bytecode::fuse(&code),
            code,
            consts: vec![Value::Int(7), Value::str("s")],
            mod_multipliers: vec![crate::num::fast_mod_multiplier(7), 0],
            protos,
            captures,
            span: Span::default(),
            handlers: Vec::new(),
            pranges: Vec::new(),
            jit: JitSlot::default(),
            constant_captures: Vec::new(),
        }
    }

    fn check(code: Vec<Instr>) -> Result<(), String> {
        proto(&make(code, Vec::new(), Vec::new()), 3)
    }

    fn rejects(code: Vec<Instr>, why: &str) {
        match check(code.clone()) {
            Ok(()) => panic!("accepted {code:?}"),
            Err(e) => assert!(e.contains(why), "{code:?}: {e}"),
        }
    }

    use Instr as I;

    #[test]
    fn accepts_what_the_compiler_emits() {
        let code = vec![
            I::LoadInt { a: 1, v: 0 },
            I::LoadK { a: 2, k: 0 },
            I::Add { a: 1, b: 1, c: 2 },
            I::JumpIfNotLtK { a: 1, k: 0, t: 5 },
            I::Jump { t: 2 },
            I::Return { a: 1 },
        ];
        assert_eq!(check(code), Ok(()));
        let counted = vec![
            I::LoadInt { a: 0, v: 0 },
            I::LoadInt { a: 1, v: 3 },
            I::LoadInt { a: 2, v: 1 },
            I::ForPrep { a: 0, t: 5 },
            I::ForLoop { a: 0, t: 4 },
            I::ReturnNil,
        ];
        assert_eq!(check(counted), Ok(()));
    }

    #[test]
    fn rejects_registers_constants_and_slots_out_of_range() {
        rejects(vec![I::Move { a: 0, b: 4 }, I::ReturnNil], "register 4");
        rejects(vec![I::LoadK { a: 0, k: 2 }, I::ReturnNil], "constant 2");
        rejects(vec![I::SetField { a: 0, k: 2, c: 1 }, I::ReturnNil], "constant 2");
        rejects(vec![I::AddK { a: 0, b: 0, k: 1 }, I::ReturnNil], "not a number");
        rejects(vec![I::GetGlobal { a: 0, g: 3 }, I::ReturnNil], "global slot 3");
        rejects(vec![I::GetUpval { a: 0, u: 0, k: 1 }, I::ReturnNil], "captured cell 0");
        rejects(vec![I::Closure { a: 0, p: 0 }, I::ReturnNil], "child function 0");
    }

    #[test]
    fn rejects_register_windows_beyond_the_frame() {
        rejects(vec![I::Call { a: 1, n: 3 }, I::ReturnNil], "register 4");
        rejects(vec![I::CallBuiltin { a: 2, n: 3, f: crate::builtin::Builtin::Print }, I::ReturnNil], "register 4");
        rejects(vec![I::NewList { a: 0, b: 2, n: 3 }, I::ReturnNil], "register 4");
        rejects(vec![I::NewDict { a: 0, b: 1, n: 2 }, I::ReturnNil], "register 4");
        rejects(vec![I::ForPrep { a: 1, t: 1 }, I::ReturnNil], "register 4");
        rejects(vec![I::IterNext { a: 2, t: 1 }, I::ReturnNil], "register 4");
        rejects(vec![I::Slice { a: 0, b: 1 }, I::ReturnNil], "register 4");
        rejects(vec![I::GetIndexN { a: 0, b: 1, c: 2, n: 3 }, I::ReturnNil], "register 4");
        rejects(vec![I::SetIndexN { a: 0, b: 2, c: 1, n: 3 }, I::ReturnNil], "register 4");
        rejects(vec![I::GetField { a: 0, b: 9, k: 0 }, I::ReturnNil], "register 9");
    }

    #[test]
    fn rejects_bad_control_flow() {
        rejects(vec![I::Jump { t: 2 }, I::ReturnNil], "jump target 2");
        rejects(vec![I::LoadNil { a: 0 }], "runs off its end");
        rejects(vec![I::ReturnNil, I::JumpIfTrue { a: 0, t: 0 }], "runs off its end");
        rejects(Vec::new(), "no code");
    }

    #[test]
    fn rejects_a_bad_shape() {
        let mut p = make(vec![I::ReturnNil], Vec::new(), Vec::new());
        p.nparams = 5;
        assert!(proto(&p, 0).is_err_and(|e| e.contains("5 parameters")));
        let mut p = make(vec![I::ReturnNil], Vec::new(), Vec::new());
        p.spans.clear();
        assert!(proto(&p, 0).is_err_and(|e| e.contains("0 spans")));
        let mut p = make(vec![I::ReturnNil], Vec::new(), Vec::new());
        p.nregs = 300;
        assert!(proto(&p, 0).is_err_and(|e| e.contains("300 registers")));
        let main = make(vec![I::ReturnNil], Vec::new(), vec![Capture::Upval(0)]);
        assert!(program(&main, 0).is_err_and(|e| e.contains("captures variables")));
    }

    #[test]
    fn rejects_captures_outside_the_parent() {
        let child = Rc::new(make(vec![I::ReturnNil], Vec::new(), vec![Capture::Local(9)]));
        let parent = make(vec![I::Closure { a: 0, p: 0 }, I::ReturnNil], vec![child], Vec::new());
        assert!(proto(&parent, 0).is_err_and(|e| e.contains("captures register 9")));
        let child = Rc::new(make(vec![I::ReturnNil], Vec::new(), vec![Capture::Upval(0)]));
        let parent = make(vec![I::Closure { a: 0, p: 0 }, I::ReturnNil], vec![child], Vec::new());
        assert!(proto(&parent, 0).is_err_and(|e| e.contains("captures cell 0")));
    }

    #[test]
    fn proves_cells_on_every_path() {
        let ok =
            vec![I::NewEmptyCell { a: 1 }, I::SetCell { a: 1, b: 0 }, I::GetCell { a: 2, b: 1, k: 1 }, I::ReturnNil];
        assert_eq!(check(ok), Ok(()));
        rejects(vec![I::SetCell { a: 1, b: 0 }, I::ReturnNil], "register 1 may not hold a cell");
        // a cell on one path only
        rejects(
            vec![I::JumpIfFalse { a: 0, t: 2 }, I::NewCell { a: 1 }, I::GetCell { a: 2, b: 1, k: 1 }, I::ReturnNil],
            "register 1 may not hold a cell",
        );
        // overwritten by a call
        rejects(
            vec![I::NewCell { a: 2 }, I::Call { a: 1, n: 0 }, I::GetCell { a: 0, b: 2, k: 1 }, I::ReturnNil],
            "register 2 may not hold a cell",
        );
        let child = Rc::new(make(vec![I::ReturnNil], Vec::new(), vec![Capture::Local(1)]));
        let parent = make(vec![I::Closure { a: 0, p: 0 }, I::ReturnNil], vec![child], Vec::new());
        assert!(proto(&parent, 0).is_err_and(|e| e.contains("a cell to capture")));
    }

    #[test]
    fn proves_loop_registers_are_ints() {
        rejects(vec![I::ForLoop { a: 0, t: 0 }, I::ReturnNil], "may not hold an int set by");
        rejects(vec![I::IterNext { a: 0, t: 1 }, I::ReturnNil], "may not hold an int set by");
        // the loop body overwrites the stop register
        rejects(
            vec![I::ForPrep { a: 0, t: 3 }, I::LoadNil { a: 1 }, I::ForLoop { a: 0, t: 1 }, I::ReturnNil],
            "register 1 may not hold an int set by",
        );
        let iter = vec![I::IterPrep { a: 0 }, I::IterNext { a: 0, t: 3 }, I::Jump { t: 1 }, I::ReturnNil];
        assert_eq!(check(iter), Ok(()));
    }

    #[test]
    fn jump_targets_agree_with_the_flow_facts() {
        let all = [
            I::Jump { t: 1 },
            I::JumpIfFalse { a: 0, t: 1 },
            I::JumpIfNotLtK { a: 0, k: 0, t: 1 },
            I::ForPrep { a: 0, t: 1 },
            I::ForLoop { a: 0, t: 1 },
            I::IterNext { a: 0, t: 1 },
            I::Return { a: 0 },
            I::Call { a: 0, n: 1 },
            I::SetIndex { a: 0, b: 1, c: 2 },
            I::Slice { a: 0, b: 1 },
            I::GetField { a: 0, b: 1, k: 0 },
            I::SetField { a: 0, k: 0, c: 1 },
            I::GetIndexN { a: 0, b: 1, c: 2, n: 2 },
            I::SetIndexN { a: 0, b: 1, c: 3, n: 2 },
            I::PrangePrep { a: 0, p: 0, t: 1 },
            I::PrangeBlock { a: 0 },
            I::ReduceInit { a: 0, b: 1, op: crate::bytecode::RedOp::Add },
            I::ReduceCombine { a: 0, b: 1, op: crate::bytecode::RedOp::Max },
            I::PrangeNext { a: 0, t: 1 },
        ];
        for ins in all {
            let mut m = ins;
            assert_eq!(m.jump_target_mut().map(|t| *t), ins.jump_target(), "{ins:?}");
        }
    }

    /// A blocked prange loop as the compiler emits it (window at 0, a reduction R[12] with its
    /// accumulator R[13], the loop variable R[10]), in a prototype of 14 registers.
    fn prange_proto(code: Vec<Instr>, info: crate::bytecode::PrangeInfo) -> Proto {
        let mut p = make(code, Vec::new(), Vec::new());
        p.nregs = 14;
        p.pranges = vec![info];
        p
    }

    fn prange_info(prep: u32, refused: bool) -> crate::bytecode::PrangeInfo {
        let op = crate::bytecode::RedOp::Add;
        let red = crate::bytecode::Reduction { var: 12, acc: 13, op, span: Span::default(), name: "s".into() };
        crate::bytecode::PrangeInfo {
            span: Span::default(),
            prep,
            var: 10,
            reductions: if refused { Vec::new() } else { vec![red] },
            refused: refused.then(|| ("why".to_string(), Span::default())),
            counts: Default::default(),
        }
    }

    #[test]
    fn prange_loops_are_checked() {
        use crate::bytecode::RedOp;
        let blocked = vec![
            I::LoadInt { a: 0, v: 0 },
            I::LoadInt { a: 1, v: 100 },
            I::LoadInt { a: 2, v: 1 },
            I::LoadInt { a: 12, v: 0 },
            I::Move { a: 13, b: 12 },
            I::PrangePrep { a: 0, p: 0, t: 12 },
            I::PrangeBlock { a: 0 },
            I::ReduceInit { a: 12, b: 13, op: RedOp::Add },
            I::ForPrep { a: 7, t: 10 },
            I::ForLoop { a: 7, t: 9 },
            I::ReduceCombine { a: 13, b: 12, op: RedOp::Add },
            I::PrangeNext { a: 0, t: 6 },
            I::Move { a: 12, b: 13 },
            I::ReturnNil,
        ];
        assert_eq!(proto(&prange_proto(blocked.clone(), prange_info(5, false)), 3), Ok(()));
        // the table must name the PrangePrep, which must name a blocked entry
        let e = proto(&prange_proto(blocked.clone(), prange_info(4, false)), 3).unwrap_err();
        assert!(e.contains("is not its setup"), "{e}");
        let e = proto(&prange_proto(blocked.clone(), prange_info(5, true)), 3).unwrap_err();
        assert!(e.contains("is not its setup"), "{e}");
        let mut no_table = prange_proto(blocked.clone(), prange_info(5, false));
        no_table.pranges.clear();
        let e = proto(&no_table, 3).unwrap_err();
        assert!(e.contains("not a blocked loop"), "{e}");
        // a PrangeNext reached without its PrangePrep's int registers
        let mut skipped = blocked.clone();
        skipped[5] = I::Jump { t: 6 };
        let mut skipped = prange_proto(skipped, prange_info(5, false));
        skipped.pranges.clear();
        let e = proto(&skipped, 3).unwrap_err();
        assert!(e.contains("PrangeBlock") && e.contains("may not hold an int"), "{e}");
        // registers beyond the frame
        let mut small = prange_proto(blocked, prange_info(5, false));
        small.nregs = 13;
        let e = proto(&small, 3).unwrap_err();
        assert!(e.contains("register 13"), "{e}");
    }

    /// A prototype with this code and one handler.
    fn with_handler(code: Vec<Instr>, h: crate::bytecode::Handler) -> Result<(), String> {
        let mut p = make(code, Vec::new(), Vec::new());
        p.handlers = vec![h];
        proto(&p, 3)
    }

    #[test]
    fn handlers_are_checked_and_are_edges_of_the_data_flow() {
        use crate::bytecode::{Handler, HandlerKind};
        let h = |start, end, target, reg| Handler { start, end, target, reg, kind: HandlerKind::Catch };
        // a cell made before the protected range is still a cell at the handler
        let code = vec![
            I::NewEmptyCell { a: 1 },
            I::Try,
            I::Call { a: 2, n: 0 },
            I::Jump { t: 5 },
            I::SetCell { a: 1, b: 3 },
            I::ReturnNil,
        ];
        with_handler(code.clone(), h(2, 3, 4, 3)).expect("accepted");
        // the handler's register holds the error, not a cell
        let e = with_handler(code.clone(), h(2, 3, 4, 1)).expect_err("rejected");
        assert!(e.contains("register 1 may not hold a cell"), "{e}");
        // a call in the range may have overwritten the registers from its callee up
        let e = with_handler(code.clone(), h(2, 3, 4, 3)).and_then(|()| {
            let mut code = code.clone();
            code[2] = I::Call { a: 1, n: 0 };
            with_handler(code, h(2, 3, 4, 3))
        });
        assert!(e.is_err_and(|e| e.contains("may not hold a cell")));
        for (bad, why) in [
            (h(2, 2, 4, 3), "handler range"),
            (h(2, 9, 4, 3), "handler range"),
            (h(2, 3, 6, 3), "handler target"),
            (h(2, 3, 4, 4), "handler register"),
        ] {
            let e = with_handler(code.clone(), bad).expect_err("rejected");
            assert!(e.contains(why), "{e}");
        }
    }
}
