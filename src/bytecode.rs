//! The bytecode: the opcode set and the facts about each opcode (defined once, here), function
//! prototypes, and the disassembler.
//!
//! mini runs on a register machine in the style of Lua 5.4. Each function has a window of up to
//! 250 registers `R[0..]` on its thread's value stack; parameters arrive in `R[0..nparams]`.
//! `K[k]` is the prototype's constant table, `G[g]` the program's global slots, `U[u]` the
//! closure's captured cells. Jump targets are absolute instruction indices.

use crate::ast::BinOp;
pub use crate::builtin::Builtin;
use crate::source::Span;
use crate::value::Value;
use std::any::{Any, TypeId};
use std::cell::{Cell, OnceCell};
use std::fmt::Write;
use std::rc::Rc;

/// A register index within the current frame.
pub type Reg = u8;

/// One instruction. Each variant's comment gives its meaning.
#[derive(Clone, Copy, Debug, PartialEq, Hash)]
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
    /// R[a] := R[b] & R[c] (ints only)
    BitAnd { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] | R[c] (ints only)
    BitOr { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] ^ R[c] (ints only)
    BitXor { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] << R[c] (ints only; a lost bit is an overflow, a negative count an error)
    Shl { a: Reg, b: Reg, c: Reg },
    /// R[a] := R[b] >> R[c] (ints only; arithmetic, floored; a negative count is an error)
    Shr { a: Reg, b: Reg, c: Reg },
    /// R[a] := ~R[b] (an int, `-R[b] - 1`)
    BitNot { a: Reg, b: Reg },
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
    /// R[a] := R[b][R[b+1] : R[b+2] : R[b+3]] (a new string, list or array; nil is an omitted bound)
    Slice { a: Reg, b: Reg },
    /// R[a] := R[b].K[k] (the field named by the string K[k]: a dict's key; see `vm::fields`)
    GetField { a: Reg, b: Reg, k: u16 },
    /// R[a].K[k] := R[c]
    SetField { a: Reg, k: u16, c: Reg },
    /// R[a] := module m of the program, run first if no `Import` has run it yet (see `vm::modules`)
    Import { a: Reg, m: u16 },
    /// nothing: marks the start of a `try` statement (its span is the `try` keyword), so that
    /// the JIT can name it when it refuses the function; `Proto::handlers` holds the protection
    Try,
    /// raises again the error held in R[a] (an error a `finally` clause caught, kept as
    /// `vm::handlers` encodes it)
    Reraise { a: Reg },
    /// R[a] := R[b][R[c], ..., R[c+n-1]] (an element of an array of n dimensions; see `vm::ndarray`)
    GetIndexN { a: Reg, b: Reg, c: Reg, n: u8 },
    /// R[a][R[b], ..., R[b+n-1]] := R[c]
    SetIndexN { a: Reg, b: Reg, c: Reg, n: u8 },
    /// blocked `prange` loop setup (lang-spec/parallel.md; `Proto::pranges[p]` describes the
    /// loop): R[a], R[a+1], R[a+2] are start, stop, step, checked as `ForPrep` checks them;
    /// n := the iteration count; if n == 0 then pc := t; else R[a+3] := 0 (block index k),
    /// R[a+4] := nblocks, R[a+5] := B (`parallel::plan(n)`), R[a+6] := base (a draw of the
    /// thread's generator), and each reduction's accumulator must hold an int or a float
    PrangePrep { a: Reg, p: u8, t: u32 },
    /// block head: k = R[a+3]; R[a+7] := start + k*B*step; R[a+8] := the block's exclusive
    /// end; R[a+9] := step; the thread's generator := one seeded from base + k (lazily)
    PrangeBlock { a: Reg },
    /// R[a] := the identity of reduction `op` for the accumulator R[b] (0 or -0.0 for `+`,
    /// 1 or 1.0 for `*`, R[b] itself for min and max)
    ReduceInit { a: Reg, b: Reg, op: RedOp },
    /// R[a] := R[a] op R[b] (a block's partial R[b] combined into the accumulator R[a], with
    /// the interpreter's operator semantics; `-=` partials combine with `+`)
    ReduceCombine { a: Reg, b: Reg, op: RedOp },
    /// R[a+3] += 1; if R[a+3] < R[a+4] then pc := t (a back edge, to `PrangeBlock`); else the
    /// thread's generator := one seeded from base + nblocks (lazily)
    PrangeNext { a: Reg, t: u32 },
    // Fused instructions (superinstructions): only in `Proto::run`, the interpreter's copy of
    // the code (see [`fuse`]), never in `Proto::code`, which the compiler, the verifier and the
    // JIT read. Each stands at the index of the first of the two instructions it fuses, and the
    // second stays at the next index: the handler runs the first, then the second too when
    // its other operand is a number of the first's result type and nothing overflows
    // (stepping over it), else goes on to it as to any next instruction.
    /// `Mul { a: t, b, c }` then `Add { a, b: x, c: t }`: R[t] := R[b] * R[c]; R[a] := R[x] + R[t]
    MulAdd { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
    /// `Mul { a: t, b, c }` then `Add { a, b: t, c: x }`: R[t] := R[b] * R[c]; R[a] := R[t] + R[x]
    MulAddT { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
    /// `Mul { a: t, b, c }` then `Sub { a, b: x, c: t }`: R[t] := R[b] * R[c]; R[a] := R[x] - R[t]
    MulSub { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
    /// `Move { a, b }` then `Move { a: c, b: d }`: R[a] := R[b]; R[c] := R[d]
    Move2 { a: Reg, b: Reg, c: Reg, d: Reg },
    /// `GetIndex { a: t, b, c }` then `Add { a, b: x, c: t }`: R[t] := R[b][R[c]]; R[a] := R[x] + R[t]
    IndexAdd { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
    /// `GetIndex { a: t, b, c }` then `Add { a, b: t, c: x }`: R[a] := R[t] + R[x]
    IndexAddT { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
    /// `GetIndex { a: t, b, c }` then `Sub { a, b: x, c: t }`: R[a] := R[x] - R[t]
    IndexSub { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
    /// `GetIndex { a: t, b, c }` then `Sub { a, b: t, c: x }`: R[a] := R[t] - R[x]
    IndexSubT { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
    /// `GetIndex { a: t, b, c }` then `Mul { a, b: x, c: t }`: R[a] := R[x] * R[t]
    IndexMul { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
    /// `GetIndex { a: t, b, c }` then `Mul { a, b: t, c: x }`: R[a] := R[t] * R[x]
    IndexMulT { t: Reg, b: Reg, c: Reg, a: Reg, x: Reg },
}

/// The operator of a `prange` reduction (lang-spec/parallel.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedOp {
    /// `s += e`, `s = s + e`, `s = e + s`, with `s -= e` among them.
    Add,
    /// Only `s -= e` and `s = s - e`: partials combine with `+`.
    Sub,
    /// `s *= e`, `s = s * e`, `s = e * s`.
    Mul,
    /// `s = min(s, e)`, `s = min(e, s)`.
    Min,
    /// `s = max(s, e)`, `s = max(e, s)`.
    Max,
}

impl RedOp {
    /// The update as `--stats` shows it.
    pub fn symbol(self) -> &'static str {
        match self {
            RedOp::Add => "+=",
            RedOp::Sub => "-=",
            RedOp::Mul => "*=",
            RedOp::Min => "min",
            RedOp::Max => "max",
        }
    }
}

const _: () = assert!(std::mem::size_of::<Instr>() == 8);

/// Where control goes after an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// To the next instruction.
    Next,
    /// To the target, always.
    Jump(u32),
    /// To the next instruction or to the target.
    Branch(u32),
    /// Out of the function.
    Return,
}

/// The registers an instruction writes (exactly: what the interpreter may change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    Nothing,
    One(Reg),
    Two(Reg, Reg),
    /// This register and every register above it (a call: the callee's frame overlaps them).
    From(Reg),
    /// `n` registers from this one (the block registers of `PrangePrep` and `PrangeBlock`).
    Window(Reg, u8),
}

impl Writes {
    /// Whether register `r` is written.
    pub fn contains(self, r: Reg) -> bool {
        match self {
            Writes::Nothing => false,
            Writes::One(a) => r == a,
            Writes::Two(a, b) => r == a || r == b,
            Writes::From(a) => r >= a,
            Writes::Window(a, n) => r >= a && (r as usize) < a as usize + n as usize,
        }
    }
}

/// The facts about one instruction that several stages need (the verifier, the compiler's
/// patching, the JIT's inference and lowering), stated once, in [`Instr::facts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Where control goes next.
    pub flow: Flow,
    /// The registers it writes.
    pub writes: Writes,
    /// The register windows it reads or writes, `(first, count)`; unused entries have count 0.
    pub regs: [(Reg, u16); 3],
    /// The constant it reads, `K[k]`.
    pub konst: Option<u16>,
    /// Whether that constant must be a number (int or float).
    pub number_const: bool,
    /// The global slot it reads or writes.
    pub global: Option<u16>,
    /// The closure's captured cell it reads or writes.
    pub upval: Option<u8>,
    /// The child prototype it makes a closure of.
    pub child: Option<u16>,
    /// The register that must hold a cell (a captured variable's box) when it runs.
    pub cell: Option<Reg>,
    /// The registers `(first, count)` that must hold ints set up by the loop's setup
    /// instruction (`ForLoop`'s start, stop and step; `IterNext`'s position).
    pub ints: Option<(Reg, Reg)>,
    /// The binary operator it applies (arithmetic, or the comparison a jump tests).
    pub op: Option<BinOp>,
    /// Whether it sets up a loop (`ForPrep`, `IterPrep`).
    pub starts_loop: bool,
}

impl Facts {
    const fn new() -> Facts {
        Facts {
            flow: Flow::Next,
            writes: Writes::Nothing,
            regs: [(0, 0); 3],
            konst: None,
            number_const: false,
            global: None,
            upval: None,
            child: None,
            cell: None,
            ints: None,
            op: None,
            starts_loop: false,
        }
    }

    /// Adds the register window `r..r+n`.
    #[inline(always)]
    fn window(mut self, r: Reg, n: u16) -> Facts {
        let free = self.regs.iter().position(|w| w.1 == 0).expect("at most three windows");
        self.regs[free] = (r, n);
        self
    }

    /// Reads register `r`.
    #[inline(always)]
    fn reg(self, r: Reg) -> Facts {
        self.window(r, 1)
    }

    /// Writes register `a` (and reads nothing else of it).
    #[inline(always)]
    fn def(mut self, a: Reg) -> Facts {
        self.writes = Writes::One(a);
        self.window(a, 1)
    }

    #[inline(always)]
    fn writes(mut self, w: Writes) -> Facts {
        self.writes = w;
        self
    }

    #[inline(always)]
    fn konst(mut self, k: u16) -> Facts {
        self.konst = Some(k);
        self
    }

    /// Reads the number constant `K[k]`.
    #[inline(always)]
    fn number(mut self, k: u16) -> Facts {
        self.number_const = true;
        self.konst(k)
    }

    #[inline(always)]
    fn op(mut self, op: BinOp) -> Facts {
        self.op = Some(op);
        self
    }

    #[inline(always)]
    fn flow(mut self, flow: Flow) -> Facts {
        self.flow = flow;
        self
    }

    /// A conditional jump to `t`.
    #[inline(always)]
    fn branch(self, t: u32) -> Facts {
        self.flow(Flow::Branch(t))
    }
}

impl Instr {
    /// The facts about this instruction (see [`Facts`]). An exhaustive match: a new instruction
    /// does not compile until its facts are stated here.
    #[inline]
    pub fn facts(self) -> Facts {
        use BinOp as B;
        use Instr as I;
        let f = Facts::new();
        match self {
            I::LoadNil { a } | I::LoadBool { a, .. } | I::LoadInt { a, .. } => f.def(a),
            I::NewCell { a } | I::NewEmptyCell { a } => f.def(a),
            I::LoadK { a, k } => f.def(a).konst(k),
            I::Move { a, b } => f.def(a).reg(b),
            I::GetGlobal { a, g } => Facts { global: Some(g), ..f.def(a) },
            I::SetGlobal { a, g } | I::DefGlobal { a, g } => Facts { global: Some(g), ..f.reg(a) },
            I::GetUpval { a, u, k } => Facts { upval: Some(u), ..f.def(a).konst(k) },
            I::SetUpval { a, u, k } => Facts { upval: Some(u), ..f.reg(a).konst(k) },
            I::GetCell { a, b, k } => Facts { cell: Some(b), ..f.def(a).reg(b).konst(k) },
            I::SetCell { a, b } => Facts { cell: Some(a), ..f.reg(a).reg(b) },
            I::Closure { a, p } => Facts { child: Some(p), ..f.def(a) },
            I::Add { a, b, c } => f.def(a).reg(b).reg(c).op(B::Add),
            I::Sub { a, b, c } => f.def(a).reg(b).reg(c).op(B::Sub),
            I::Mul { a, b, c } => f.def(a).reg(b).reg(c).op(B::Mul),
            I::Div { a, b, c } => f.def(a).reg(b).reg(c).op(B::Div),
            I::FloorDiv { a, b, c } => f.def(a).reg(b).reg(c).op(B::FloorDiv),
            I::Mod { a, b, c } => f.def(a).reg(b).reg(c).op(B::Mod),
            I::Pow { a, b, c } => f.def(a).reg(b).reg(c).op(B::Pow),
            I::AddK { a, b, k } | I::KAdd { a, b, k } => f.def(a).reg(b).number(k).op(B::Add),
            I::SubK { a, b, k } | I::KSub { a, b, k } => f.def(a).reg(b).number(k).op(B::Sub),
            I::MulK { a, b, k } | I::KMul { a, b, k } => f.def(a).reg(b).number(k).op(B::Mul),
            I::DivK { a, b, k } | I::KDiv { a, b, k } => f.def(a).reg(b).number(k).op(B::Div),
            I::ModK { a, b, k } => f.def(a).reg(b).number(k).op(B::Mod),
            I::Neg { a, b } | I::Not { a, b } | I::BitNot { a, b } => f.def(a).reg(b),
            I::BitAnd { a, b, c } => f.def(a).reg(b).reg(c).op(B::BitAnd),
            I::BitOr { a, b, c } => f.def(a).reg(b).reg(c).op(B::BitOr),
            I::BitXor { a, b, c } => f.def(a).reg(b).reg(c).op(B::BitXor),
            I::Shl { a, b, c } => f.def(a).reg(b).reg(c).op(B::Shl),
            I::Shr { a, b, c } => f.def(a).reg(b).reg(c).op(B::Shr),
            I::Eq { a, b, c } => f.def(a).reg(b).reg(c).op(B::Eq),
            I::Ne { a, b, c } => f.def(a).reg(b).reg(c).op(B::Ne),
            I::Lt { a, b, c } => f.def(a).reg(b).reg(c).op(B::Lt),
            I::Le { a, b, c } => f.def(a).reg(b).reg(c).op(B::Le),
            I::Gt { a, b, c } => f.def(a).reg(b).reg(c).op(B::Gt),
            I::Ge { a, b, c } => f.def(a).reg(b).reg(c).op(B::Ge),
            I::Jump { t } => f.flow(Flow::Jump(t)),
            I::JumpIfFalse { a, t } | I::JumpIfTrue { a, t } => f.reg(a).branch(t),
            I::JumpIfNotLt { a, b, t } => f.reg(a).reg(b).branch(t).op(B::Lt),
            I::JumpIfNotLe { a, b, t } => f.reg(a).reg(b).branch(t).op(B::Le),
            I::JumpIfNotGt { a, b, t } => f.reg(a).reg(b).branch(t).op(B::Gt),
            I::JumpIfNotGe { a, b, t } => f.reg(a).reg(b).branch(t).op(B::Ge),
            I::JumpIfNotLtK { a, k, t } => f.reg(a).number(k).branch(t).op(B::Lt),
            I::JumpIfNotLeK { a, k, t } => f.reg(a).number(k).branch(t).op(B::Le),
            I::JumpIfNotGtK { a, k, t } => f.reg(a).number(k).branch(t).op(B::Gt),
            I::JumpIfNotGeK { a, k, t } => f.reg(a).number(k).branch(t).op(B::Ge),
            I::JumpIfNotEq { a, b, t } => f.reg(a).reg(b).branch(t).op(B::Eq),
            I::JumpIfNotNe { a, b, t } => f.reg(a).reg(b).branch(t).op(B::Ne),
            I::ForPrep { a, t } => Facts { starts_loop: true, ..f.window(a, 4).writes(Writes::One(a + 3)).branch(t) },
            I::ForLoop { a, t } => {
                Facts { ints: Some((a, 3)), ..f.window(a, 4).writes(Writes::Two(a, a + 3)).branch(t) }
            }
            I::IterPrep { a } => Facts { starts_loop: true, ..f.window(a, 2).writes(Writes::Two(a, a + 1)) },
            I::IterNext { a, t } => {
                Facts { ints: Some((a + 1, 1)), ..f.window(a, 3).writes(Writes::Two(a + 1, a + 2)).branch(t) }
            }
            I::Call { a, n } => f.window(a, n as u16 + 1).writes(Writes::From(a)),
            I::CallBuiltin { a, n, .. } => f.window(a, (n as u16).max(1)).writes(Writes::One(a)),
            I::Return { a } => f.reg(a).flow(Flow::Return),
            I::ReturnNil => f.flow(Flow::Return),
            I::NewList { a, b, n } => f.def(a).window(b, n as u16),
            I::NewDict { a, b, n } => f.def(a).window(b, 2 * n as u16),
            I::GetIndex { a, b, c } => f.def(a).reg(b).reg(c),
            I::SetIndex { a, b, c } => f.reg(a).reg(b).reg(c),
            I::Slice { a, b } => f.def(a).window(b, 4),
            I::GetField { a, b, k } => f.def(a).reg(b).konst(k),
            I::SetField { a, k, c } => f.reg(a).reg(c).konst(k),
            I::Import { a, .. } => f.def(a),
            I::Try => f,
            I::Reraise { a } => f.reg(a).flow(Flow::Return),
            I::PrangePrep { a, t, .. } => {
                Facts { starts_loop: true, ..f.window(a, 11).writes(Writes::Window(a + 3, 4)).branch(t) }
            }
            I::PrangeBlock { a } => Facts { ints: Some((a, 7)), ..f.window(a, 11).writes(Writes::Window(a + 7, 3)) },
            I::ReduceInit { a, b, .. } => f.def(a).reg(b),
            I::ReduceCombine { a, b, .. } => f.def(a).reg(b),
            I::PrangeNext { a, t } => {
                Facts { ints: Some((a + 3, 4)), ..f.window(a, 11).writes(Writes::One(a + 3)).branch(t) }
            }
            I::GetIndexN { a, b, c, n } => f.def(a).reg(b).window(c, n as u16),
            I::SetIndexN { a, b, c, n } => f.reg(a).window(b, n as u16).reg(c),
            I::MulAdd { .. }
            | I::MulAddT { .. }
            | I::MulSub { .. }
            | I::Move2 { .. }
            | I::IndexAdd { .. }
            | I::IndexAddT { .. }
            | I::IndexSub { .. }
            | I::IndexSubT { .. }
            | I::IndexMul { .. }
            | I::IndexMulT { .. } => self.unfused().facts(),
        }
    }

    /// The instruction itself, or for a fused one (only in `Proto::run`), the first of the two
    /// it fuses: what stands at its index in `Proto::code`.
    #[inline]
    pub fn unfused(self) -> Instr {
        match self {
            Instr::MulAdd { t, b, c, .. } | Instr::MulAddT { t, b, c, .. } | Instr::MulSub { t, b, c, .. } => {
                Instr::Mul { a: t, b, c }
            }
            Instr::Move2 { a, b, .. } => Instr::Move { a, b },
            Instr::IndexAdd { t, b, c, .. }
            | Instr::IndexAddT { t, b, c, .. }
            | Instr::IndexSub { t, b, c, .. }
            | Instr::IndexSubT { t, b, c, .. }
            | Instr::IndexMul { t, b, c, .. }
            | Instr::IndexMulT { t, b, c, .. } => Instr::GetIndex { a: t, b, c },
            other => other,
        }
    }

    /// The jump target, for the compiler to patch. Exhaustive, like [`Instr::facts`], whose
    /// `flow` it agrees with (a unit test checks it).
    pub fn jump_target_mut(&mut self) -> Option<&mut u32> {
        use Instr as I;
        match self {
            I::Jump { t }
            | I::JumpIfFalse { t, .. }
            | I::JumpIfTrue { t, .. }
            | I::JumpIfNotLt { t, .. }
            | I::JumpIfNotLe { t, .. }
            | I::JumpIfNotGt { t, .. }
            | I::JumpIfNotGe { t, .. }
            | I::JumpIfNotLtK { t, .. }
            | I::JumpIfNotLeK { t, .. }
            | I::JumpIfNotGtK { t, .. }
            | I::JumpIfNotGeK { t, .. }
            | I::JumpIfNotEq { t, .. }
            | I::JumpIfNotNe { t, .. }
            | I::ForPrep { t, .. }
            | I::ForLoop { t, .. }
            | I::IterNext { t, .. }
            | I::PrangePrep { t, .. }
            | I::PrangeNext { t, .. } => Some(t),
            I::LoadNil { .. }
            | I::LoadBool { .. }
            | I::LoadInt { .. }
            | I::LoadK { .. }
            | I::Move { .. }
            | I::GetGlobal { .. }
            | I::SetGlobal { .. }
            | I::DefGlobal { .. }
            | I::GetUpval { .. }
            | I::SetUpval { .. }
            | I::NewCell { .. }
            | I::NewEmptyCell { .. }
            | I::GetCell { .. }
            | I::SetCell { .. }
            | I::Closure { .. }
            | I::Add { .. }
            | I::Sub { .. }
            | I::Mul { .. }
            | I::Div { .. }
            | I::FloorDiv { .. }
            | I::Mod { .. }
            | I::Pow { .. }
            | I::AddK { .. }
            | I::SubK { .. }
            | I::MulK { .. }
            | I::DivK { .. }
            | I::ModK { .. }
            | I::KAdd { .. }
            | I::KSub { .. }
            | I::KMul { .. }
            | I::KDiv { .. }
            | I::Neg { .. }
            | I::Not { .. }
            | I::BitAnd { .. }
            | I::BitOr { .. }
            | I::BitXor { .. }
            | I::Shl { .. }
            | I::Shr { .. }
            | I::BitNot { .. }
            | I::Eq { .. }
            | I::Ne { .. }
            | I::Lt { .. }
            | I::Le { .. }
            | I::Gt { .. }
            | I::Ge { .. }
            | I::IterPrep { .. }
            | I::Call { .. }
            | I::CallBuiltin { .. }
            | I::Return { .. }
            | I::ReturnNil
            | I::NewList { .. }
            | I::NewDict { .. }
            | I::GetIndex { .. }
            | I::SetIndex { .. }
            | I::Slice { .. }
            | I::GetField { .. }
            | I::SetField { .. }
            | I::Import { .. }
            | I::Try
            | I::Reraise { .. }
            | I::PrangeBlock { .. }
            | I::ReduceInit { .. }
            | I::ReduceCombine { .. }
            | I::GetIndexN { .. }
            | I::SetIndexN { .. }
            | I::MulAdd { .. }
            | I::MulAddT { .. }
            | I::MulSub { .. }
            | I::Move2 { .. }
            | I::IndexAdd { .. }
            | I::IndexAddT { .. }
            | I::IndexSub { .. }
            | I::IndexSubT { .. }
            | I::IndexMul { .. }
            | I::IndexMulT { .. } => None,
        }
    }

    /// Where control goes next.
    #[inline]
    pub fn flow(self) -> Flow {
        self.facts().flow
    }

    /// The jump target of a jump (conditional or not).
    #[inline]
    pub fn jump_target(self) -> Option<u32> {
        match self.flow() {
            Flow::Jump(t) | Flow::Branch(t) => Some(t),
            Flow::Next | Flow::Return => None,
        }
    }

    /// The registers it writes.
    #[inline]
    pub fn writes(self) -> Writes {
        self.facts().writes
    }

    /// Whether it writes register `r`.
    #[inline]
    pub fn overwrites(self, r: Reg) -> bool {
        self.writes().contains(r)
    }

    /// Whether, at index `pc`, it is a loop's back edge: a jump to itself or an earlier
    /// instruction (`ForLoop`, and the `Jump` ending a `while` or generic `for` body). Back
    /// edges are the interpreter's safe points and make a function a loop for the JIT.
    #[inline]
    pub fn is_back_edge(self, pc: usize) -> bool {
        self.jump_target().is_some_and(|t| t as usize <= pc)
    }
}

/// Whether a function's code contains a loop.
pub fn has_loop(code: &[Instr]) -> bool {
    code.iter().enumerate().any(|(pc, ins)| ins.is_back_edge(pc))
}

/// The interpreter's copy of `code` (`Proto::run`): each instruction that begins one of the
/// pairs below is replaced by the fused instruction that runs both, which saves a dispatch and
/// a reload of the value passed between them (the float kernels of mandelbrot, nbody and
/// spectral_norm are full of `a * b` and `a[i]` followed by `x + t`, `x - t` or `x * t`).
/// Indices do not move, so jump targets, spans, handlers and the JIT's view (`code`) still
/// agree with it; an instruction that is both the second of one pair and the first of the next
/// is fused too, for the jumps that land on it.
pub fn fuse(code: &[Instr]) -> Box<[Instr]> {
    use Instr as I;
    let pair = |first: Instr, second: Option<&Instr>| match (first, second.copied()) {
        (I::Mul { a: t, b, c }, Some(I::Add { a, b: x, c: t2 })) if t2 == t => I::MulAdd { t, b, c, a, x },
        (I::Mul { a: t, b, c }, Some(I::Add { a, b: t2, c: x })) if t2 == t => I::MulAddT { t, b, c, a, x },
        (I::Mul { a: t, b, c }, Some(I::Sub { a, b: x, c: t2 })) if t2 == t => I::MulSub { t, b, c, a, x },
        (I::Move { a, b }, Some(I::Move { a: c, b: d })) => I::Move2 { a, b, c, d },
        (I::GetIndex { a: t, b, c }, Some(second)) => match second {
            I::Add { a, b: x, c: t2 } if t2 == t => I::IndexAdd { t, b, c, a, x },
            I::Add { a, b: t2, c: x } if t2 == t => I::IndexAddT { t, b, c, a, x },
            I::Sub { a, b: x, c: t2 } if t2 == t => I::IndexSub { t, b, c, a, x },
            I::Sub { a, b: t2, c: x } if t2 == t => I::IndexSubT { t, b, c, a, x },
            I::Mul { a, b: x, c: t2 } if t2 == t => I::IndexMul { t, b, c, a, x },
            I::Mul { a, b: t2, c: x } if t2 == t => I::IndexMulT { t, b, c, a, x },
            _ => first,
        },
        _ => first,
    };
    code.iter().enumerate().map(|(pc, &ins)| pair(ins, code.get(pc + 1))).collect()
}

/// Where a captured variable comes from when a closure is created.
#[derive(Clone, Copy, Debug, Hash)]
pub enum Capture {
    /// The enclosing function's register, which holds a cell.
    Local(Reg),
    /// The enclosing function's own captured cell.
    Upval(u8),
}

/// The `mod_multipliers` of a prototype with these constants.
pub fn mod_multipliers(consts: &[Value]) -> Vec<u64> {
    consts.iter().map(|k| if let Value::Int(d) = k { crate::num::fast_mod_multiplier(*d) } else { 0 }).collect()
}

/// A compiled function: its code, constants, spans and child prototypes.
#[derive(Debug)]
pub struct Proto {
    pub name: Rc<str>,
    pub nparams: usize,
    pub nregs: usize,
    pub code: Vec<Instr>,
    /// What the interpreter runs: `code` with fused instructions (see [`fuse`]).
    pub run: Box<[Instr]>,
    /// The source span of each instruction, for errors.
    pub spans: Vec<Span>,
    pub consts: Vec<Value>,
    /// For each of `consts`: the multiplier that `ModK` uses for a fast remainder
    /// ([`crate::num::fast_mod`]), 0 where there is none; see [`mod_multipliers`].
    pub mod_multipliers: Vec<u64>,
    pub protos: Vec<Rc<Proto>>,
    pub captures: Vec<Capture>,
    /// The span of the whole function.
    pub span: Span,
    /// The function's error handlers (`try`), innermost first: an error raised by an
    /// instruction in a handler's range goes to the first handler covering it. Empty for a
    /// function without `try`, which then pays nothing for them.
    pub handlers: Vec<Handler>,
    /// The function's `prange` loops, in source order: the blocked ones (indexed by their
    /// `PrangePrep`'s `p`) and the refused ones, compiled as `range` loops (see [`PrangeInfo`]).
    pub pranges: Vec<PrangeInfo>,
    /// The per-function state of the JIT (opaque here; see [`JitSlot`]).
    pub jit: JitSlot,
    /// For each of `captures`: whether the variable is never assigned after its declaration
    /// (the compiler's `captures::Analysis::reassigned`), so that it holds one value.
    pub constant_captures: Vec<bool>,
}

/// Where an error raised in `start..end` (instruction indices) goes: R[reg] := the error, then
/// pc := target. `Catch` stores the record a `catch` clause sees (a dict); `Finally` stores the
/// error itself, for the `Reraise` that ends the `finally` code run on the error's way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handler {
    pub start: u32,
    pub end: u32,
    pub target: u32,
    pub reg: Reg,
    pub kind: HandlerKind,
}

/// A `prange` loop of a function (lang-spec/parallel.md): where it is, how it was compiled and
/// its counters for `--stats`, which any runner (the interpreter, native code) may update.
#[derive(Debug)]
pub struct PrangeInfo {
    /// The `for` statement's header: from `for` to the end of the `prange(...)` call.
    pub span: Span,
    /// The instruction that sets the loop up: its `PrangePrep`, or the `ForPrep` of a refused
    /// loop (whose range errors then say `prange()`).
    pub prep: u32,
    /// The loop variable's register.
    pub var: Reg,
    /// Its reductions (none for a refused loop).
    pub reductions: Vec<Reduction>,
    /// Why the loop runs as `range` would, and where the construct that refused it is; `None`
    /// for a blocked loop.
    pub refused: Option<(String, Span)>,
    /// Counters, for `--stats`.
    pub counts: PrangeCounts,
}

/// One reduction of a `prange` loop: the variable's register (a block's partial result while
/// the loop runs), the hidden accumulator's, the operator, the span of the first update
/// statement (where combining errors point) and the variable's name.
#[derive(Clone, Debug)]
pub struct Reduction {
    pub var: Reg,
    pub acc: Reg,
    pub op: RedOp,
    pub span: Span,
    pub name: Rc<str>,
}

/// How often a `prange` loop ran, for `--stats`. Atomic, so that any thread (and native code
/// on worker threads) may count.
#[derive(Debug, Default)]
pub struct PrangeCounts {
    /// Runs of the loop (non-empty and empty).
    pub runs: std::sync::atomic::AtomicU64,
    /// Blocks run by the interpreter, in order.
    pub blocks: std::sync::atomic::AtomicU64,
    /// Iterations of those runs.
    pub iterations: std::sync::atomic::AtomicU64,
    /// Per reduction (bit 2j: an int before the loop, bit 2j+1: a float), the first 32.
    pub types: std::sync::atomic::AtomicU64,
    /// Runs in native code, and those whose blocks went to the pool of threads.
    pub native: std::sync::atomic::AtomicU64,
    pub parallel: std::sync::atomic::AtomicU64,
    /// The most threads a parallel run used, and the nanoseconds parallel runs took.
    pub threads: std::sync::atomic::AtomicU64,
    pub parallel_nanos: std::sync::atomic::AtomicU64,
    /// Why native runs ran their blocks in order on one thread: the `SEQUENTIAL_*` bits seen.
    pub sequential: std::sync::atomic::AtomicU64,
    /// Why the JIT never runs this loop in parallel, when it decided so when compiling, and
    /// the instruction that made it decide.
    pub never_parallel: std::sync::OnceLock<(String, Option<Span>)>,
    /// Nanoseconds the interpreter spent in the runs that ended normally (from the setup to the
    /// last block's end).
    pub nanos: std::sync::atomic::AtomicU64,
}

/// Bits of [`PrangeCounts::sequential`]: a run too short to share, one thread allowed
/// (`set_threads(1)`), a loop inside a running parallel loop's block, two array arguments
/// that are the same array (one written), and a loop the JIT never runs in parallel.
pub const SEQUENTIAL_SHORT: u64 = 1;
pub const SEQUENTIAL_ONE_THREAD: u64 = 2;
pub const SEQUENTIAL_NESTED: u64 = 4;
pub const SEQUENTIAL_ALIASED: u64 = 8;
pub const SEQUENTIAL_NEVER: u64 = 16;

/// What a handler stores in its register (see [`Handler`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandlerKind {
    Catch,
    Finally,
}

/// A slot in each prototype for the per-function state of an execution tier above the
/// interpreter (the JIT's counters and specializations). The bytecode does not know its type:
/// the JIT stores one type, created at the function's first call under `--jit`. The interpreter
/// counts loop back edges here, in a plain counter, so its hot path makes no indirect call.
#[derive(Default)]
pub struct JitSlot {
    backedges: Cell<u64>,
    /// Set by the JIT when calling this function's native code from the interpreter costs more
    /// than interpreting it; the interpreter then calls it without offering the call.
    interpreter_first: Cell<bool>,
    /// The state and the id of its type (checked without a virtual call).
    state: OnceCell<(TypeId, Box<dyn Any>)>,
}

impl JitSlot {
    /// Counts a loop back edge taken by the interpreter.
    #[inline(always)]
    pub fn backedge(&self) {
        self.backedges.set(self.backedges.get() + 1);
    }

    /// The loop back edges counted so far.
    pub fn backedges(&self) -> u64 {
        self.backedges.get()
    }

    /// Whether the interpreter should run the function's calls itself (see `interpreter_first`).
    #[inline(always)]
    pub fn interpreter_first(&self) -> bool {
        self.interpreter_first.get()
    }

    /// From now on the interpreter runs the function's calls itself.
    pub fn set_interpreter_first(&self) {
        self.interpreter_first.set(true);
    }

    /// The state, created by `S::default()` on first use. The JIT is the only user and always
    /// stores the same type, so the downcast cannot fail.
    #[inline]
    pub fn get_or_default<S: Any + Default>(&self) -> &S {
        let (ty, state) = self.state.get_or_init(|| (TypeId::of::<S>(), Box::new(S::default())));
        // Compared with the type recorded when the state was made: `downcast_ref` would make a
        // virtual call on every call of a compiled function from the interpreter.
        assert!(*ty == TypeId::of::<S>(), "the JIT stores one state type");
        // SAFETY: the box was made by `Box::new(S::default())` for this same `S` (the type ids
        // match), so it holds an `S`; the cast only drops the vtable.
        unsafe { &*(&**state as *const dyn Any as *const S) }
    }

    /// The state, if it was created (and is of type `S`).
    pub fn get<S: Any>(&self) -> Option<&S> {
        self.state.get()?.1.downcast_ref()
    }
}

impl std::fmt::Debug for JitSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JitSlot({} back edges)", self.backedges.get())
    }
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
    for h in &proto.handlers {
        let _ = writeln!(out, "  handler {}..{} -> {} R[{}] {:?}", h.start, h.end, h.target, h.reg, h.kind);
    }
    for (i, p) in proto.pranges.iter().enumerate() {
        let _ = write!(out, "  prange {i}: prep {} loop variable R[{}]", p.prep, p.var);
        for r in &p.reductions {
            let _ = write!(out, ", {} {} R[{}] acc R[{}]", r.name, r.op.symbol(), r.var, r.acc);
        }
        match &p.refused {
            Some((why, _)) => {
                let _ = writeln!(out, ", refused: {why}");
            }
            None => out.push('\n'),
        }
    }
    for child in &proto.protos {
        out.push('\n');
        disassemble(child, out);
    }
}

/// A compiled module: its name (the file's stem), the function that runs its top level, and
/// its top-level names (`let` and `fn`) with their global slots, which `m.name` reads. A
/// program's value of the module (`Value::Module`) is this.
#[derive(Debug)]
pub struct Module {
    pub name: std::rc::Rc<str>,
    pub main: std::rc::Rc<Proto>,
    pub names: indexmap::IndexMap<std::rc::Rc<str>, u16>,
}

#[cfg(test)]
mod tests {
    use super::{Instr as I, fuse};

    #[test]
    fn fuse_replaces_the_first_of_each_pair_and_keeps_every_index() {
        let code = [
            I::Mul { a: 5, b: 0, c: 1 },
            I::Add { a: 6, b: 2, c: 5 },
            I::Mul { a: 5, b: 0, c: 1 },
            I::Add { a: 5, b: 5, c: 2 },
            I::Mul { a: 5, b: 0, c: 1 },
            I::Sub { a: 6, b: 2, c: 5 },
            I::Mul { a: 5, b: 0, c: 1 },
            I::Sub { a: 6, b: 5, c: 2 },
            I::GetIndex { a: 7, b: 3, c: 4 },
            I::Mul { a: 7, b: 7, c: 2 },
            I::Move { a: 1, b: 2 },
            I::Move { a: 2, b: 3 },
            I::Move { a: 3, b: 1 },
            I::Mul { a: 5, b: 0, c: 1 },
            I::Add { a: 6, b: 2, c: 4 },
            I::ReturnNil,
        ];
        let run = fuse(&code);
        assert_eq!(run.len(), code.len());
        assert_eq!(run[0], I::MulAdd { t: 5, b: 0, c: 1, a: 6, x: 2 });
        assert_eq!(run[2], I::MulAddT { t: 5, b: 0, c: 1, a: 5, x: 2 });
        assert_eq!(run[4], I::MulSub { t: 5, b: 0, c: 1, a: 6, x: 2 });
        // `t - x` has no fused form: the product stays alone
        assert_eq!(run[6], code[6]);
        assert_eq!(run[8], I::IndexMulT { t: 7, b: 3, c: 4, a: 7, x: 2 });
        // overlapping pairs are both fused, for the jumps that land on the second
        assert_eq!(run[10], I::Move2 { a: 1, b: 2, c: 2, d: 3 });
        assert_eq!(run[11], I::Move2 { a: 2, b: 3, c: 3, d: 1 });
        // a sum that does not read the product is not its pair
        assert_eq!(run[13], code[13]);
        for (pc, (fused, original)) in run.iter().zip(&code).enumerate() {
            assert_eq!(fused.unfused(), *original, "at {pc}");
            assert_eq!(fused.facts(), original.facts(), "at {pc}");
            if fused != original {
                // the second of the pair is still at the next index
                assert_eq!(run[pc + 1].unfused(), code[pc + 1]);
            }
        }
    }
}
