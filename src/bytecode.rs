//! The bytecode: the opcode set (defined once, here), function prototypes, and the disassembler.
//!
//! mini runs on a register machine in the style of Lua 5.4. Each function has a window of up to
//! 250 registers `R[0..]` on its thread's value stack; parameters arrive in `R[0..nparams]`.
//! `K[k]` is the prototype's constant table, `G[g]` the program's global slots, `U[u]` the
//! closure's captured cells. Jump targets are absolute instruction indices.

use crate::source::Span;
use crate::value::Value;
use crate::vm::builtins::Builtin;
use std::fmt::Write;
use std::rc::Rc;

/// A register index within the current frame.
pub type Reg = u8;

/// One instruction. Each variant's comment gives its meaning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Instr {
    /// R[a] := nil
    LoadNil { a: Reg },
    /// R[a] := b
    LoadBool { a: Reg, b: bool },
    /// R[a] := v (a small int)
    LoadInt { a: Reg, v: i32 },
    /// R[a] := K[k]
    LoadK { a: Reg, k: u16 },
    /// R[a] := R[b]
    Move { a: Reg, b: Reg },
    /// R[a] := G[g]; an undefined global is an error
    GetGlobal { a: Reg, g: u16 },
    /// G[g] := R[a]; assigning an undefined global is an error
    SetGlobal { a: Reg, g: u16 },
    /// G[g] := R[a], defining it (top-level `let` and `fn`)
    DefGlobal { a: Reg, g: u16 },
    /// R[a] := the value in cell U[u]; an empty cell is an error naming K[k]
    GetUpval { a: Reg, u: u8, k: u16 },
    /// cell U[u] := R[a]; an empty cell is an error naming K[k]
    SetUpval { a: Reg, u: u8, k: u16 },
    /// R[a] := a fresh cell holding R[a] (a captured variable is born)
    NewCell { a: Reg },
    /// R[a] := a fresh cell holding nothing yet (a captured `let` before it runs)
    NewEmptyCell { a: Reg },
    /// R[a] := the value in the cell R[b]; an empty cell is an error naming K[k]
    GetCell { a: Reg, b: Reg, k: u16 },
    /// the cell R[a] := R[b]
    SetCell { a: Reg, b: Reg },
    /// R[a] := a closure of child prototype `p`, capturing per its capture list
    Closure { a: Reg, p: u16 },
    /// R[a] := R[b] + R[c]
    Add { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] - R[c]
    Sub { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] * R[c]
    Mul { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] / R[c] (always a float)
    Div { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] // R[c] (floored)
    FloorDiv { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] % R[c] (sign of the divisor)
    Mod { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] ** R[c]
    Pow { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] + K[k] (K[k] is a number)
    AddK { a: Reg, b: Reg, k: u16 },
    /// R[a] := R[b] - K[k]
    SubK { a: Reg, b: Reg, k: u16 },
    /// R[a] := R[b] * K[k]
    MulK { a: Reg, b: Reg, k: u16 },
    /// R[a] := R[b] / K[k]
    DivK { a: Reg, b: Reg, k: u16 },
    /// R[a] := R[b] % K[k]
    ModK { a: Reg, b: Reg, k: u16 },
    /// R[a] := K[k] + R[b]
    KAdd { a: Reg, b: Reg, k: u16 },
    /// R[a] := K[k] - R[b]
    KSub { a: Reg, b: Reg, k: u16 },
    /// R[a] := K[k] * R[b]
    KMul { a: Reg, b: Reg, k: u16 },
    /// R[a] := K[k] / R[b]
    KDiv { a: Reg, b: Reg, k: u16 },
    /// R[a] := -R[b]
    Neg { a: Reg, b: Reg },
    /// R[a] := not R[b]
    Not { a: Reg, b: Reg },
    /// R[a] := R[b] == R[c]
    Eq { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] != R[c]
    Ne { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] < R[c]
    Lt { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] <= R[c]
    Le { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] > R[c]
    Gt { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] >= R[c]
    Ge { a: Reg, b: Reg, c: Reg },
    /// pc := t
    Jump { t: u32 },
    /// if not R[a] then pc := t
    JumpIfFalse { a: Reg, t: u32 },
    /// if R[a] then pc := t
    JumpIfTrue { a: Reg, t: u32 },
    /// if not (R[a] < R[b]) then pc := t
    JumpIfNotLt { a: Reg, b: Reg, t: u32 },
    /// if not (R[a] <= R[b]) then pc := t
    JumpIfNotLe { a: Reg, b: Reg, t: u32 },
    /// if not (R[a] > R[b]) then pc := t
    JumpIfNotGt { a: Reg, b: Reg, t: u32 },
    /// if not (R[a] >= R[b]) then pc := t
    JumpIfNotGe { a: Reg, b: Reg, t: u32 },
    /// if not (R[a] < K[k]) then pc := t (K[k] is a number)
    JumpIfNotLtK { a: Reg, k: u16, t: u32 },
    /// if not (R[a] <= K[k]) then pc := t
    JumpIfNotLeK { a: Reg, k: u16, t: u32 },
    /// if not (R[a] > K[k]) then pc := t
    JumpIfNotGtK { a: Reg, k: u16, t: u32 },
    /// if not (R[a] >= K[k]) then pc := t
    JumpIfNotGeK { a: Reg, k: u16, t: u32 },
    /// if not (R[a] == R[b]) then pc := t
    JumpIfNotEq { a: Reg, b: Reg, t: u32 },
    /// if not (R[a] != R[b]) then pc := t
    JumpIfNotNe { a: Reg, b: Reg, t: u32 },
    /// counted loop setup: R[a], R[a+1], R[a+2] are start, stop, step (ints, step != 0);
    /// if the range is empty pc := t, else R[a+3] := R[a]
    ForPrep { a: Reg, t: u32 },
    /// R[a] += R[a+2]; if still inside the range, R[a+3] := R[a] and pc := t (a back edge)
    ForLoop { a: Reg, t: u32 },
    /// generic loop setup: R[a] := an iterable view of R[a] (dict: its keys), R[a+1] := 0
    IterPrep { a: Reg },
    /// R[a+2] := the next element of R[a] at position R[a+1], advancing it; at the end pc := t
    IterNext { a: Reg, t: u32 },
    /// R[a] := R[a](R[a+1], ..., R[a+n])
    Call { a: Reg, n: u8 },
    /// R[a] := builtin f(R[a], ..., R[a+n-1]) (the name `f` is known not to be shadowed)
    CallBuiltin { a: Reg, n: u8, f: Builtin },
    /// return R[a]
    Return { a: Reg },
    /// return nil
    ReturnNil,
    /// R[a] := [R[b], ..., R[b+n-1]]
    NewList { a: Reg, b: Reg, n: u8 },
    /// R[a] := {R[b]: R[b+1], ...} with n pairs
    NewDict { a: Reg, b: Reg, n: u8 },
    /// R[a] := R[b][R[c]]
    GetIndex { a: Reg, b: Reg, c: Reg },
    /// R[a][R[b]] := R[c]
    SetIndex { a: Reg, b: Reg, c: Reg },
}

const _: () = assert!(std::mem::size_of::<Instr>() == 8);

/// Where a captured variable comes from when a closure is created.
#[derive(Clone, Copy, Debug)]
pub enum Capture {
    /// The enclosing function's register, which holds a cell.
    Local(Reg),
    /// The enclosing function's own captured cell.
    Upval(u8),
}

/// A compiled function: its code, constants, spans and child prototypes.
#[derive(Debug)]
pub struct Proto {
    pub name: Rc<str>,
    pub nparams: usize,
    pub nregs: usize,
    pub code: Vec<Instr>,
    /// The source span of each instruction, for errors.
    pub spans: Vec<Span>,
    pub consts: Vec<Value>,
    pub protos: Vec<Rc<Proto>>,
    pub captures: Vec<Capture>,
    /// The span of the whole function.
    pub span: Span,
    /// The JIT's counters and compiled specializations of this function.
    pub jit: crate::jit::ProtoJit,
}

/// Renders a prototype and its children as text (`mini run --dump-bytecode`).
pub fn disassemble(proto: &Proto, out: &mut String) {
    let _ = writeln!(
        out,
        "fn {} (params {}, registers {}, constants {})",
        proto.name,
        proto.nparams,
        proto.nregs,
        proto.consts.len()
    );
    for (i, ins) in proto.code.iter().enumerate() {
        let _ = writeln!(out, "  {i:4}  {ins:?}");
    }
    for (i, k) in proto.consts.iter().enumerate() {
        let _ = writeln!(out, "  K[{i}] = {k:?}");
    }
    for child in &proto.protos {
        out.push('\n');
        disassemble(child, out);
    }
}
