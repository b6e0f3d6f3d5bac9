//! Type inference, numba-style: given a function's argument types, give every register at every
//! instruction one type by abstract interpretation of the bytecode, following calls into the
//! functions they reach; or refuse, with the reason and the instruction.
//!
//! A compile *session* infers a set of plans (function, signature) at once, so that recursion
//! and mutual recursion settle: a call to a plan whose return type is not known yet gives
//! `Pending`, and rounds repeat until no return type changes.

use super::types::{MAX_PARAMS, Sig, Ty};
use super::{ProtoJit, Spec};
use crate::builtin::Builtin;
use crate::bytecode::{Flow, Instr, Proto, RedOp, Reg};
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

/// The abstract value of a register at one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum T {
    /// The result of a call whose return type is still being inferred (optimistic).
    Pending,
    /// Nothing stored yet, on some path.
    Unset,
    /// Different types on different paths.
    Mixed(Ty, Ty),
    Val(Ty),
    /// The function in global slot `g` (read when compiling).
    Func(u16),
    Builtin(Builtin),
    /// The module in global slot `g`, which the program never reassigns: `m.name` is the
    /// module's global slot of `name` (read when compiling).
    Module(u16),
    /// A function passed as an argument (its `Ty::Func`): it can be called, moved and passed
    /// on; any other use refuses.
    Fn(Ty),
    /// `shape(a)` of an array of this many dimensions: a list the interpreter would make, which
    /// compiled code only indexes (`shape(a)[k]` is dimension `k`) or moves.
    Shape(u8),
    /// A list literal of this many ints that is the shape of an `array` call (`array([r, c],
    /// fill)`, ndalloc): only that call reads it (any other read refuses as a list literal).
    Dims(u8),
}

impl T {
    fn ty(self) -> Ty {
        match self {
            T::Val(t) => t,
            T::Func(_) | T::Builtin(_) | T::Fn(_) => Ty::Other("function"),
            T::Module(_) => Ty::Other("module"),
            T::Shape(_) | T::Dims(_) => Ty::Other("list"),
            _ => Ty::Other("?"),
        }
    }
}

fn join(a: T, b: T) -> T {
    match (a, b) {
        _ if a == b => a,
        (T::Pending, x) | (x, T::Pending) => x,
        (T::Unset, _) | (_, T::Unset) => T::Unset,
        (T::Mixed(..), _) => a,
        (_, T::Mixed(..)) => b,
        // an int on one path and a float on another: a tagged number (lower/numtag.rs)
        (T::Val(x), T::Val(y)) if numeric(x) && numeric(y) => T::Val(Ty::Num),
        _ => T::Mixed(a.ty(), b.ty()),
    }
}

/// What a `Call` instruction reaches.
#[derive(Clone)]
pub enum Target {
    /// A plan of this session.
    Plan(usize),
    /// A specialization compiled earlier.
    Spec(Rc<Spec>),
    /// A builtin called through a global.
    Builtin(Builtin),
}

/// Whether a type joins an int or a float into `Ty::Num`.
fn numeric(t: Ty) -> bool {
    matches!(t, Ty::Int | Ty::Float | Ty::Num)
}

/// The refusal of an operation compiled code does not do on a value that may be an int or a
/// float (the words of the refusal before `Ty::Num` existed).
fn int_or_float() -> String {
    "a value here is int on one path and float on another".into()
}

/// One function specialized for one signature, being inferred.
#[derive(Clone)]
pub struct Plan {
    pub proto: Rc<Proto>,
    pub sig: Sig,
    /// The return type: `Pending` until a return is reached.
    pub ret: T,
    /// The register types before each instruction; `None` where unreachable.
    pub states: Vec<Option<Box<[T]>>>,
    /// The target of each reachable `Call`, by instruction index.
    pub calls: HashMap<usize, Target>,
    /// The globals read, with the values they held when compiling.
    pub globals: BTreeMap<u16, Value>,
    /// Their names (for the error of a global that changes under running code).
    pub global_names: BTreeMap<u16, String>,
    /// The `GetField` instructions that read a module's name: the global slot each reads.
    pub module_names: HashMap<usize, u16>,
    /// The call that first reached this plan: (plan, instruction).
    pub caller: Option<(usize, usize)>,
    /// Jump targets (instructions where paths meet).
    targets: Vec<bool>,
    /// `x + 1` and `x - k` instructions that cannot overflow (see `guarded_arith`).
    pub no_overflow: HashSet<usize>,
    /// `//` and `%` instructions whose dividend is known to be non-negative.
    pub nonneg_dividend: HashSet<usize>,
    /// At each counted loop's `ForPrep`: the int registers known to be at least some int.
    pub floors_at_loops: HashMap<usize, Vec<(Reg, i64)>>,
    /// The registers read somewhere as `Ty::Num` (by register number; empty when none is):
    /// every write of them also keeps the tagged form (see `num_registers`).
    pub num_regs: Vec<bool>,
}

/// Why a plan cannot be compiled.
pub struct Refusal {
    pub plan: usize,
    pub pc: Option<usize>,
    pub reason: String,
}

type Infer<T> = Result<T, Refusal>;

/// How a session reads the program's globals (their values at compile time, and their names).
pub trait GlobalsView {
    fn value(&self, g: u16) -> Value;
    fn name(&self, g: u16) -> String;

    /// Whether the program assigns global `g` after defining it (a module read through it must
    /// not change, so such a global's module is not compiled through).
    fn assigned(&self, g: u16) -> bool;

    /// The function passed as an argument whose `Ty::Func` key is `key` (see `funcargs`).
    fn function(&self, _key: usize) -> Option<Rc<Proto>> {
        None
    }

    /// The `Ty::Func` key of a function without captured variables passed on as an argument,
    /// when functions can be passed (not in `mini check --jit-report`).
    fn key_function(&self, _proto: &Rc<Proto>) -> Option<Ty> {
        None
    }

    /// Why a global without a value cannot be compiled.
    fn undefined(&self, g: u16) -> String {
        format!("global '{}' is not defined yet", self.name(g))
    }
}

/// A set of plans inferred together.
pub struct Session<'a> {
    pub plans: Vec<Plan>,
    globals: &'a dyn GlobalsView,
    /// The most specializations a function may have (the dispatcher's cap).
    max_specs: usize,
    pending_seen: bool,
    /// The plans being inferred, callers first: a call of one of them reads its pending
    /// result (a recursion); a call of any other pending plan infers it first.
    stack: Vec<usize>,
    /// Which plans were inferred in the current round.
    done: Vec<bool>,
    /// Whether a plan's result type changed in the current round.
    changed: bool,
    /// The refusal of a callee inferred during the pass of the plan on top of `stack`: that
    /// pass goes on (reading the callee's result as pending) and fails with it at its end,
    /// unless it finds a refusal of its own first, as when callees were inferred after it.
    nested: Option<Refusal>,
}

const MAX_ROUNDS: usize = 32;

/// The most plans (functions reached) one session may hold.
const MAX_PLANS: usize = 64;

/// The largest function (in bytecode instructions) the JIT compiles. Compile time is linear in
/// the size of a function up to a few thousand instructions, but Cranelift's register allocator
/// grows faster than that beyond: a loop of 8,000 statements (24,000 instructions) takes
/// seconds. A function this large runs interpreted; its size is the refusal's reason.
pub const MAX_CODE: usize = 4000;

impl<'a> Session<'a> {
    pub fn new(globals: &'a dyn GlobalsView, max_specs: usize) -> Session<'a> {
        Session {
            plans: Vec::new(),
            globals,
            max_specs,
            pending_seen: false,
            stack: Vec::new(),
            done: Vec::new(),
            changed: false,
            nested: None,
        }
    }

    /// Infers `proto` for `sig` and everything it calls, until the return types settle.
    pub fn infer(&mut self, proto: Rc<Proto>, sig: Sig) -> Infer<()> {
        let too_large = too_large(&proto);
        self.plans.push(Plan::new(proto, sig, None));
        if let Some(reason) = too_large {
            return Err(Refusal { plan: 0, pc: None, reason });
        }
        for round in 0..MAX_ROUNDS {
            self.pending_seen = false;
            self.changed = false;
            self.done.clear();
            let mut i = 0;
            while i < self.plans.len() {
                if !self.done.get(i).copied().unwrap_or(false) {
                    self.infer_plan(i)?;
                }
                i += 1;
            }
            // In the first round a callee is inferred before its result is read (`call_proto`),
            // so when no pending result was read, every result read was already final and
            // another round would change nothing. Later rounds read earlier rounds' results.
            let settled = !self.changed || (round == 0 && !self.pending_seen);
            if settled {
                if self.pending_seen {
                    let reason = "the result type cannot be inferred (a recursion that never returns?)";
                    return Err(Refusal { plan: 0, pc: None, reason: reason.into() });
                }
                for plan in &mut self.plans {
                    let guards = guarded_arith(plan);
                    plan.no_overflow = guards.no_overflow;
                    plan.nonneg_dividend = guards.nonneg_dividend;
                    plan.floors_at_loops = guards.floors_at_loops;
                    plan.num_regs = num_registers(plan);
                }
                return Ok(());
            }
        }
        Err(Refusal { plan: 0, pc: None, reason: "type inference did not settle".into() })
    }

    /// One pass of abstract interpretation over a plan's code.
    fn infer_plan(&mut self, i: usize) -> Infer<()> {
        self.stack.push(i);
        let outer = self.nested.take();
        let mut inferred = self.infer_plan_once(i);
        if let Some(refusal) = std::mem::replace(&mut self.nested, outer)
            && inferred.is_ok()
        {
            inferred = Err(refusal);
        }
        self.stack.pop();
        if self.done.len() <= i {
            self.done.resize(i + 1, false);
        }
        self.done[i] = true;
        inferred
    }

    fn infer_plan_once(&mut self, i: usize) -> Infer<()> {
        let proto = self.plans[i].proto.clone();
        let code = &proto.code;
        let mut states: Vec<Option<Box<[T]>>> = vec![None; code.len()];
        let mut entry = vec![T::Unset; proto.nregs].into_boxed_slice();
        // a closure's plan has its captured values' types after its parameters (`GetUpval`)
        for (r, t) in self.plans[i].sig.tys().iter().enumerate().take(proto.nparams) {
            entry[r] = match *t {
                Ty::Func(..) => T::Fn(*t),
                Ty::Builtin(b) => T::Builtin(b),
                t => T::Val(t),
            };
        }
        states[0] = Some(entry);
        // lowest instruction first, so that a refusal names the first problem in the code
        let mut work = std::collections::BTreeSet::from([0usize]);
        let mut ret = T::Pending;
        // the state being transferred, one buffer for every instruction rather than a clone
        // of each (6% of spectral_norm's inference instructions)
        let mut st: Box<[T]> = vec![T::Unset; proto.nregs].into_boxed_slice();
        while let Some(pc) = work.pop_first() {
            st.copy_from_slice(states[pc].as_deref().expect("queued instructions have a state"));
            let returned =
                self.transfer(i, pc, code[pc], &mut st).map_err(|reason| Refusal { plan: i, pc: Some(pc), reason })?;
            let succs: &[usize] = match code[pc].flow() {
                Flow::Next => &[pc + 1],
                Flow::Jump(t) => &[t as usize],
                Flow::Branch(t) => &[pc + 1, t as usize],
                Flow::Return => {
                    let Some(t) = returned else {
                        return Err(Refusal {
                            plan: i,
                            pc: Some(pc),
                            reason: "internal: a return without a type".into(),
                        });
                    };
                    ret = self.join_return(i, pc, ret, t)?;
                    &[]
                }
            };
            for &s in succs {
                if merge(&mut states[s], &st) {
                    work.insert(s);
                }
            }
        }
        let plan = &mut self.plans[i];
        plan.states = states;
        self.changed |= plan.ret != ret;
        plan.ret = ret;
        Ok(())
    }

    fn join_return(&self, i: usize, pc: usize, ret: T, t: T) -> Infer<T> {
        let refuse = |reason: String| Refusal { plan: i, pc: Some(pc), reason };
        match t {
            T::Pending => Ok(ret),
            T::Val(Ty::Int | Ty::Float | Ty::Num | Ty::Bool | Ty::Nil | Ty::FloatArray | Ty::IntArray) => {
                match join(ret, t) {
                    T::Mixed(a, b) => Err(refuse(format!(
                        "returns {} here and {} elsewhere; compiled code returns one type",
                        b.name(),
                        a.name()
                    ))),
                    joined => Ok(joined),
                }
            }
            T::Val(ty) if ty.is_any_array() => match join(ret, t) {
                T::Mixed(a, b) => Err(refuse(format!(
                    "returns {} here and {} elsewhere; compiled code returns one type",
                    b.name(),
                    a.name()
                ))),
                joined => Ok(joined),
            },
            other => Err(refuse(format!("returning {} is not supported in compiled code", other.ty().plural()))),
        }
    }

    /// The effect of one instruction on the register types; for a return, the type it returns.
    /// (Where control goes is the instruction's `flow`.)
    fn transfer(&mut self, i: usize, pc: usize, ins: Instr, st: &mut [T]) -> Result<Option<T>, String> {
        use Instr as I;
        let proto = self.plans[i].proto.clone();
        let konst = |k: u16| Ty::of(&proto.consts[k as usize]);
        match ins {
            I::LoadNil { a } => st[a as usize] = T::Val(Ty::Nil),
            I::LoadBool { a, .. } => st[a as usize] = T::Val(Ty::Bool),
            I::LoadInt { a, .. } => st[a as usize] = T::Val(Ty::Int),
            I::LoadK { a, k } => st[a as usize] = T::Val(loaded_const(konst(k))?),
            I::Move { a, b } => st[a as usize] = read_or_other(st, b)?,
            I::GetGlobal { a, g } => st[a as usize] = self.read_global(i, g)?,
            I::SetGlobal { .. } | I::DefGlobal { .. } => {
                return Err("assigning global variables is not supported in compiled code".into());
            }
            I::GetUpval { a, u, .. } if self.plans[i].capture_type(u).is_some() => {
                st[a as usize] = T::Val(self.plans[i].capture_type(u).expect("checked"));
            }
            I::GetUpval { .. }
            | I::SetUpval { .. }
            | I::NewCell { .. }
            | I::NewEmptyCell { .. }
            | I::GetCell { .. }
            | I::SetCell { .. }
            | I::Closure { .. } => {
                return Err("closures and captured variables are not supported in compiled code".into());
            }
            I::Add { a, b, c } | I::Sub { a, b, c } | I::Mul { a, b, c } => {
                st[a as usize] = arith(read(st, b)?, read(st, c)?, false)?;
            }
            I::AddK { a, b, k } | I::SubK { a, b, k } | I::MulK { a, b, k } => {
                st[a as usize] = arith(read(st, b)?, T::Val(number_const(konst(k))?), false)?;
            }
            I::KAdd { a, b, k } | I::KSub { a, b, k } | I::KMul { a, b, k } => {
                st[a as usize] = arith(T::Val(number_const(konst(k))?), read(st, b)?, false)?;
            }
            I::Div { a, b, c } => st[a as usize] = arith(read(st, b)?, read(st, c)?, true)?,
            I::DivK { a, b, k } => st[a as usize] = arith(read(st, b)?, T::Val(number_const(konst(k))?), true)?,
            I::KDiv { a, b, k } => st[a as usize] = arith(T::Val(number_const(konst(k))?), read(st, b)?, true)?,
            I::FloorDiv { a, b, c } | I::Mod { a, b, c } => st[a as usize] = arith(read(st, b)?, read(st, c)?, false)?,
            I::ModK { a, b, k } => st[a as usize] = arith(read(st, b)?, T::Val(number_const(konst(k))?), false)?,
            I::Pow { a, b, c } => {
                let (x, y) = (read(st, b)?, read(st, c)?);
                st[a as usize] = match (x, y) {
                    (T::Val(Ty::Int), T::Val(Ty::Int)) => match self.plans[i].const_int_before(pc, c) {
                        Some(e) if e >= 0 => T::Val(Ty::Int),
                        Some(_) => T::Val(Ty::Float),
                        None => {
                            return Err("int ** int needs a constant exponent in compiled code (the result type \
                                        depends on its sign)"
                                .into());
                        }
                    },
                    // int ** int is an int or a float by the exponent's sign: only a float side
                    // makes the result surely a float
                    (T::Val(Ty::Num), T::Val(Ty::Float)) | (T::Val(Ty::Float), T::Val(Ty::Num)) => T::Val(Ty::Float),
                    (T::Val(Ty::Num), _) | (_, T::Val(Ty::Num)) => return Err(int_or_float()),
                    _ => arith(x, y, true)?,
                };
            }
            I::Neg { a, b } => {
                st[a as usize] = match read(st, b)? {
                    T::Val(t) if t.is_number() => T::Val(t),
                    T::Pending => T::Pending,
                    other => return Err(format!("unary - of {} is an error", a_type(other.ty()))),
                }
            }
            I::BitAnd { a, b, c }
            | I::BitOr { a, b, c }
            | I::BitXor { a, b, c }
            | I::Shl { a, b, c }
            | I::Shr { a, b, c } => {
                st[a as usize] = bitwise(read(st, b)?, read(st, c)?)?;
            }
            I::BitNot { a, b } => {
                st[a as usize] = match read(st, b)? {
                    t @ (T::Val(Ty::Int) | T::Pending) => t,
                    T::Val(Ty::Num) => return Err(int_or_float()),
                    other => return Err(format!("~ of {} is an error", a_type(other.ty()))),
                }
            }
            I::Not { a, b } => {
                truthy_ok(read_any(st, b)?)?;
                st[a as usize] = T::Val(Ty::Bool);
            }
            I::Eq { a, b, c } | I::Ne { a, b, c } => {
                equality(read(st, b)?, read(st, c)?)?;
                st[a as usize] = T::Val(Ty::Bool);
            }
            I::Lt { a, b, c } | I::Le { a, b, c } | I::Gt { a, b, c } | I::Ge { a, b, c } => {
                ordering(read(st, b)?, read(st, c)?)?;
                st[a as usize] = T::Val(Ty::Bool);
            }
            I::Jump { .. } => {}
            I::JumpIfFalse { a, .. } | I::JumpIfTrue { a, .. } => truthy_ok(read_any(st, a)?)?,
            I::JumpIfNotLt { a, b, .. }
            | I::JumpIfNotLe { a, b, .. }
            | I::JumpIfNotGt { a, b, .. }
            | I::JumpIfNotGe { a, b, .. } => ordering(read(st, a)?, read(st, b)?)?,
            I::JumpIfNotLtK { a, k, .. }
            | I::JumpIfNotLeK { a, k, .. }
            | I::JumpIfNotGtK { a, k, .. }
            | I::JumpIfNotGeK { a, k, .. } => ordering(read(st, a)?, T::Val(number_const(konst(k))?))?,
            I::JumpIfNotEq { a, b, .. } | I::JumpIfNotNe { a, b, .. } => equality(read(st, a)?, read(st, b)?)?,
            I::ForPrep { a, .. } => {
                for r in a..a + 3 {
                    match read(st, r)? {
                        T::Val(Ty::Int) | T::Pending => {}
                        T::Val(Ty::Num) => return Err(int_or_float()),
                        other => {
                            let t = other.ty().name();
                            return Err(format!("range() of {} {t} is an error (range() needs ints)", article(t)));
                        }
                    }
                }
                st[a as usize + 3] = T::Val(Ty::Int);
            }
            I::ForLoop { a, .. } => st[a as usize + 3] = T::Val(Ty::Int),
            I::IterPrep { a } => {
                match read_or_other(st, a)? {
                    // a call's result still being inferred may be an array (jitalloc)
                    T::Pending => {}
                    T::Val(t) if t.is_array() => {}
                    other => return Err(iteration(other)),
                }
                st[a as usize + 1] = T::Val(Ty::Int);
            }
            I::IterNext { a, .. } => {
                st[a as usize + 2] = match read(st, a)? {
                    T::Pending => T::Pending,
                    t => T::Val(t.ty().element()),
                };
            }
            I::Call { a, n } => self.call(i, pc, st, a, n)?,
            I::CallBuiltin { a, n: 1, f: Builtin::Shape } if read(st, a)?.ty().is_any_array() => {
                st[a as usize] = T::Shape(read(st, a)?.ty().rank().max(1) as u8);
            }
            I::CallBuiltin { a, n: 2, f: Builtin::Array } if matches!(st[a as usize], T::Dims(_)) => {
                st[a as usize] = shaped_array(st, a)?;
            }
            I::CallBuiltin { a, n, f } => st[a as usize] = builtin_call(f, st, a..a + n)?,
            I::Return { a } => return Ok(Some(read(st, a)?)),
            I::ReturnNil => return Ok(Some(T::Val(Ty::Nil))),
            I::NewList { a, b, n } if shape_of_array(&proto.code, pc, a) => {
                st[a as usize] = shape_literal(st, b, n)?;
            }
            I::NewList { .. } => return Err("lists are not supported in compiled code".into()),
            I::NewDict { .. } => return Err("dicts are not supported in compiled code".into()),
            I::Try | I::Reraise { .. } => return Err("try runs only in the interpreter".into()),
            I::MulAdd { .. }
            | I::MulAddT { .. }
            | I::MulSub { .. }
            | I::Move2 { .. }
            | I::IndexAdd { .. }
            | I::IndexAddT { .. }
            | I::IndexSub { .. }
            | I::IndexSubT { .. }
            | I::IndexMul { .. }
            | I::IndexMulT { .. } => {
                return Err(format!("internal: {ins:?} is the interpreter's alone"));
            }
            I::Slice { .. } => {
                return Err("slicing x[a:b] makes a new string, list or array, which compiled code cannot do".into());
            }
            I::GetField { a, b, k } if matches!(st[b as usize], T::Module(_)) => {
                let T::Module(m) = st[b as usize] else { unreachable!("matched above") };
                st[a as usize] = self.module_name(i, pc, m, k)?;
            }
            I::GetField { .. } | I::SetField { .. } => {
                return Err("a record field is a dict lookup, which compiled code cannot do".into());
            }
            I::Import { .. } => return Err("import runs a module, which compiled code cannot do".into()),
            I::PrangePrep { a, .. } => {
                for r in a..a + 3 {
                    match read(st, r)? {
                        T::Val(Ty::Int) | T::Pending => {}
                        other => {
                            let t = other.ty().name();
                            return Err(format!("prange() of {} {t} is an error (prange() needs ints)", article(t)));
                        }
                    }
                }
                for r in a + 3..a + 7 {
                    st[r as usize] = T::Val(Ty::Int);
                }
            }
            I::PrangeBlock { a } => {
                for r in a + 7..a + 10 {
                    st[r as usize] = T::Val(Ty::Int);
                }
            }
            I::ReduceInit { a, b, op } => {
                st[a as usize] = match read(st, b)? {
                    T::Pending => T::Pending,
                    T::Val(t @ (Ty::Int | Ty::Float)) => T::Val(t),
                    other => {
                        let _ = op;
                        return Err(format!("a prange reduction of {} is an error", a_type(other.ty())));
                    }
                };
            }
            I::ReduceCombine { a, b, op } => {
                let (x, y) = (read(st, a)?, read(st, b)?);
                st[a as usize] = match op {
                    RedOp::Add | RedOp::Sub | RedOp::Mul => arith(x, y, false)?,
                    RedOp::Min | RedOp::Max => {
                        let f = if op == RedOp::Min { Builtin::Min } else { Builtin::Max };
                        builtin_result(f, &[x, y])?
                    }
                };
            }
            I::PrangeNext { a, .. } => st[a as usize + 3] = T::Val(Ty::Int),
            I::GetIndexN { a, b, c, n } => st[a as usize] = index_n_types(read(st, b)?, st, c, n)?,
            I::SetIndexN { a, b, c, n } => {
                let arr = read(st, a)?;
                let elem = index_n_types(arr, st, b, n)?;
                match (elem, read(st, c)?) {
                    (T::Pending, _) | (_, T::Pending) => {}
                    (T::Val(Ty::Float), T::Val(Ty::Int | Ty::Float)) | (T::Val(Ty::Int), T::Val(Ty::Int)) => {}
                    (_, v) => {
                        return Err(format!("storing {} in {} is an error", a_type(v.ty()), a_type(arr.ty())));
                    }
                }
            }
            I::GetIndex { a, b, c } if matches!(st[b as usize], T::Shape(_)) => match read(st, c)? {
                T::Val(Ty::Int) | T::Pending => st[a as usize] = T::Val(Ty::Int),
                other => return Err(format!("list index must be an int, not {}", other.ty().name())),
            },
            I::GetIndex { a, b, c } => {
                let (arr, idx) = (read(st, b)?, read(st, c)?);
                index_types(arr, idx)?;
                st[a as usize] = if arr == T::Pending { T::Pending } else { T::Val(arr.ty().element()) };
            }
            I::SetIndex { a, b, c } => {
                let (arr, idx, v) = (read(st, a)?, read(st, b)?, read(st, c)?);
                index_types(arr, idx)?;
                match (arr, v) {
                    (T::Pending, _) | (_, T::Pending) => {}
                    (T::Val(Ty::FloatArray), T::Val(Ty::Int | Ty::Float | Ty::Num))
                    | (T::Val(Ty::IntArray), T::Val(Ty::Int)) => {}
                    (T::Val(Ty::IntArray), T::Val(Ty::Num)) => return Err(int_or_float()),
                    _ => {
                        return Err(format!("storing {} in {} is an error", a_type(v.ty()), a_type(arr.ty())));
                    }
                }
            }
        }
        Ok(None)
    }

    fn read_global(&mut self, i: usize, g: u16) -> Result<T, String> {
        let v = self.globals.value(g);
        let t = match &v {
            Value::Undef => return Err(self.globals.undefined(g)),
            Value::Func(_) => T::Func(g),
            Value::Builtin(b) => T::Builtin(*b),
            Value::Module(_) if self.globals.assigned(g) => {
                return Err(format!(
                    "global '{}' holds a module and is assigned elsewhere; compiled code reads a module's \
                     names only through a global that is never reassigned",
                    self.globals.name(g)
                ));
            }
            Value::Module(_) => T::Module(g),
            other => match Ty::of(other) {
                Ty::Other(_) => {
                    return Err(format!(
                        "global '{}' holds a {}; {} are not supported in compiled code",
                        self.globals.name(g),
                        other.type_name(),
                        Ty::of(other).plural()
                    ));
                }
                t => T::Val(t),
            },
        };
        self.plans[i].globals.insert(g, v);
        if !self.plans[i].global_names.contains_key(&g) {
            let name = self.globals.name(g);
            self.plans[i].global_names.insert(g, name);
        }
        Ok(t)
    }

    /// `m.name` at instruction `pc`, where global `m` holds a module: the global slot of the
    /// module's `name` (the constant `K[k]`), read as `GetGlobal` of that slot reads it.
    fn module_name(&mut self, i: usize, pc: usize, m: u16, k: u16) -> Result<T, String> {
        let Value::Module(module) = &self.plans[i].globals[&m] else { unreachable!("T::Module holds a module") };
        let module = module.clone();
        let slot = match &self.plans[i].proto.consts[k as usize] {
            Value::Str(name) => module.names.get(&*name.text).copied(),
            _ => None,
        };
        let Some(g) = slot else {
            return Err(format!("module {} has no such name", module.name));
        };
        self.plans[i].module_names.insert(pc, g);
        self.read_global(i, g)
    }

    /// A call `R[a](R[a+1..a+n])`: a builtin, or a function compiled (or to compile) for the
    /// argument types. The callee's frame overlaps the registers above `a`, so they are unset after.
    fn call(&mut self, i: usize, pc: usize, st: &mut [T], a: Reg, n: u8) -> Result<(), String> {
        let result = match st[a as usize] {
            T::Builtin(b) => {
                self.plans[i].calls.insert(pc, Target::Builtin(b));
                builtin_call(b, st, a + 1..a + 1 + n)?
            }
            T::Func(g) => {
                let args = self.arg_types(st, a + 1..a + 1 + n)?;
                self.call_function(i, pc, g, &args)?
            }
            T::Fn(Ty::Func(key)) => {
                let args = self.arg_types(st, a + 1..a + 1 + n)?;
                let proto =
                    self.globals.function(key.proto).ok_or("internal: a function argument without its prototype")?;
                self.call_proto(i, pc, &proto, &args, &key.captures)?
            }
            T::Pending => T::Pending,
            T::Val(Ty::Other("function")) => {
                return Err("calling a closure that captures variables, passed as a value, is not supported in \
                            compiled code"
                    .into());
            }
            other => return Err(format!("calling {} is not supported", other.ty().plural())),
        };
        st[a as usize] = result;
        for r in &mut st[a as usize + 1..] {
            *r = T::Unset;
        }
        Ok(())
    }

    /// The types of a call's arguments: values, and functions passed on (a global function
    /// without captured variables, a function argument, a builtin) as their `Ty::Func` or
    /// `Ty::Builtin`.
    fn arg_types(&mut self, st: &[T], regs: std::ops::Range<Reg>) -> Result<Vec<T>, String> {
        let mut args = Vec::with_capacity(regs.len());
        for r in regs {
            args.push(match read_any(st, r)? {
                T::Builtin(b) => T::Fn(Ty::Builtin(b)),
                T::Func(g) => self.global_function_arg(g)?,
                T::Module(_) => return Err("passing a module is not supported in compiled code".into()),
                t => t,
            });
        }
        Ok(args)
    }

    /// A global function passed as an argument: its `Ty::Func`, when it has no captured
    /// variables and functions can be passed here.
    fn global_function_arg(&mut self, g: u16) -> Result<T, String> {
        let refuse = || Err("passing this function value is not supported in compiled code".to_string());
        // the value was read by the `GetGlobal` that loaded it (`read_global`)
        let value = self.globals.value(g);
        let Value::Func(closure) = &value else { return refuse() };
        if !closure.upvals.is_empty() {
            return refuse();
        }
        match self.globals.key_function(&closure.proto) {
            Some(t) => Ok(T::Fn(t)),
            None => refuse(),
        }
    }

    fn call_function(&mut self, i: usize, pc: usize, g: u16, args: &[T]) -> Result<T, String> {
        let Value::Func(closure) = &self.plans[i].globals[&g] else { unreachable!("T::Func holds a function") };
        let closure = closure.clone();
        if !closure.upvals.is_empty() {
            let name = &closure.proto.name;
            return Err(format!("calls {name}, a closure that captures variables; not supported in compiled code"));
        }
        self.call_proto(i, pc, &closure.proto, args, &[])
    }

    /// A call of the function `proto` with arguments of types `args` (and, for a closure passed
    /// as an argument, the types of its captured values, which its plan's signature has after
    /// the parameters): a plan of this session or a specialization made earlier.
    fn call_proto(&mut self, i: usize, pc: usize, proto: &Rc<Proto>, args: &[T], captures: &[Ty]) -> Result<T, String> {
        let name = &proto.name;
        if proto.nparams != args.len() {
            return Err(format!("calls {name} with {} arguments instead of {}", args.len(), proto.nparams));
        }
        if args.len() + captures.len() > MAX_PARAMS {
            return Err(format!("calls {name} with more than {MAX_PARAMS} arguments"));
        }
        let mut tys = Vec::with_capacity(args.len());
        for t in args {
            match t {
                T::Pending => {
                    self.pending_seen = true;
                    return Ok(T::Pending);
                }
                // an int or float is passed with its tag (the interpreter never calls such a
                // specialization: no value has that type)
                T::Val(ty) | T::Fn(ty) => tys.push(*ty),
                other => return Err(format!("passing {} is not supported in compiled code", other.ty().plural())),
            }
        }
        tys.extend_from_slice(captures);
        let sig = Sig::from_tys(&tys);
        let jit = ProtoJit::of(proto);
        if let Some(spec) = jit.find_spec(sig) {
            self.plans[i].calls.insert(pc, Target::Spec(spec.clone()));
            return Ok(T::Val(spec.ret));
        }
        if let Some(reason) = jit.refusal(sig) {
            return Err(format!("calls {}, which cannot be compiled: {reason}", sig.display(name)));
        }
        let existing = self.plans.iter().position(|p| Rc::ptr_eq(&p.proto, proto) && p.sig == sig);
        let j = match existing {
            Some(j) => j,
            None => {
                if jit.spec_count() >= self.max_specs {
                    return Err(format!("calls {}, which has too many specializations", sig.display(name)));
                }
                if self.plans.len() >= MAX_PLANS {
                    return Err(format!("reaches more than {MAX_PLANS} functions"));
                }
                if let Some(reason) = too_large(proto) {
                    return Err(format!("calls {}, which cannot be compiled: {reason}", sig.display(name)));
                }
                self.plans.push(Plan::new(proto.clone(), sig, Some((i, pc))));
                self.plans.len() - 1
            }
        };
        self.plans[i].calls.insert(pc, Target::Plan(j));
        // a callee not yet inferred is inferred now (depth first), so that the first round
        // mostly reads final results; one being inferred (a recursion) gives its pending result
        if self.plans[j].ret == T::Pending
            && !self.stack.contains(&j)
            && let Err(refusal) = self.infer_plan(j)
        {
            self.nested.get_or_insert(refusal);
        }
        let ret = self.plans[j].ret;
        if ret == T::Pending {
            self.pending_seen = true;
        }
        Ok(ret)
    }
}

impl Plan {
    /// The type of captured variable `u`'s value, in the plan of a closure passed as an
    /// argument (whose signature has the captured values' types after the parameters).
    pub fn capture_type(&self, u: u8) -> Option<Ty> {
        let n = self.proto.nparams;
        let ncap = self.proto.captures.len();
        if ncap == 0 || self.sig.tys().len() != n + ncap {
            return None;
        }
        self.sig.tys().get(n + u as usize).copied()
    }

    /// Which instructions are jump targets.
    pub fn targets(&self) -> &[bool] {
        &self.targets
    }

    /// The settled return type (nil when the function never returns a value).
    pub fn ret_ty(&self) -> Ty {
        if let T::Val(t) = self.ret { t } else { Ty::Nil }
    }

    fn new(proto: Rc<Proto>, sig: Sig, caller: Option<(usize, usize)>) -> Plan {
        let mut targets = vec![false; proto.code.len() + 1];
        for ins in &proto.code {
            if let Some(t) = ins.jump_target() {
                targets[t as usize] = true;
            }
        }
        Plan {
            proto,
            sig,
            ret: T::Pending,
            states: Vec::new(),
            calls: HashMap::new(),
            globals: BTreeMap::new(),
            global_names: BTreeMap::new(),
            module_names: HashMap::new(),
            caller,
            targets,
            no_overflow: HashSet::new(),
            nonneg_dividend: HashSet::new(),
            floors_at_loops: HashMap::new(),
            num_regs: Vec::new(),
        }
    }

    /// The int constant register `r` surely holds at `pc`: its last write, in the same straight
    /// run of instructions, loads a constant.
    pub fn const_int_before(&self, pc: usize, r: Reg) -> Option<i64> {
        let code = &self.proto.code;
        let mut p = pc;
        while p > 0 && !self.targets[p] {
            p -= 1;
            match code[p] {
                Instr::LoadInt { a, v } if a == r => return Some(v as i64),
                // a `prange` block's step is the loop's (its `PrangePrep` is just before)
                Instr::PrangeBlock { a } if r == a + 9 && p > 0 => return self.const_int_before(p - 1, a + 2),
                Instr::LoadK { a, k } if a == r => {
                    return if let Value::Int(v) = self.proto.consts[k as usize] { Some(v) } else { None };
                }
                ins if ins.jump_target().is_some() || ins.overwrites(r) => return None,
                _ => {}
            }
        }
        None
    }
}

/// What is known of an int register's range on every path to an instruction.
#[derive(Clone, Copy, PartialEq, Default)]
struct Range {
    /// It is below some int (so `x + 1` cannot overflow).
    below: bool,
    /// It is at least this (so `x - k` cannot overflow while `floor - k` does not).
    floor: Option<i64>,
}

impl Range {
    fn join(self, other: Range) -> Range {
        let floor = match (self.floor, other.floor) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        Range { below: self.below && other.below, floor }
    }
}

/// What the int comparisons and counted loops of a plan prove (see [`guarded_arith`]).
#[derive(Default)]
struct Guards {
    no_overflow: HashSet<usize>,
    nonneg_dividend: HashSet<usize>,
    floors_at_loops: HashMap<usize, Vec<(Reg, i64)>>,
}

/// The `x + 1` and `x - k` instructions that cannot overflow, from the int comparisons that
/// guard them: the counter of `while i < n { ... i += 1 }`, the `n - 1` and `n - 2` of
/// `if n < 2 { return n }`; the `//` and `%` whose dividend is known to be non-negative
/// (constants, counted-loop variables from a non-negative start, sums of those); and the
/// floors of the int registers at each counted loop, for the loop versions of the lowering.
fn guarded_arith(plan: &Plan) -> Guards {
    let code = &plan.proto.code;
    let is_int = |pc: usize, r: Reg| plan.states[pc].as_ref().is_some_and(|st| st[r as usize] == T::Val(Ty::Int));
    let int_const = |k: u16| if let Value::Int(v) = plan.proto.consts[k as usize] { Some(v) } else { None };
    let mut ranges: Vec<Option<Vec<Range>>> = vec![None; code.len() + 1];
    ranges[0] = Some(vec![Range::default(); plan.proto.nregs]);
    let mut work = BTreeSet::from([0usize]);
    let mut guards = Guards::default();
    let positive_step = |a: Reg, prep: usize| {
        matches!(code.get(prep), Some(Instr::ForPrep { a: pa, .. }) if *pa == a)
            && plan.const_int_before(prep, a + 2).is_some_and(|s| s > 0)
    };
    while let Some(pc) = work.pop_first() {
        let Some(mut here) = ranges[pc].clone() else { continue };
        if plan.states[pc].is_none() {
            continue;
        }
        let ins = code[pc];
        // what a passed test says on its fall-through edge (`next`) and on its jump (`taken`)
        let mut next = here.clone();
        let mut taken = here.clone();
        match ins {
            Instr::JumpIfNotLt { a, b, .. } if is_int(pc, a) && is_int(pc, b) => next[a as usize].below = true,
            Instr::JumpIfNotGt { a, b, .. } if is_int(pc, a) && is_int(pc, b) => next[b as usize].below = true,
            Instr::JumpIfNotLtK { a, k, .. } | Instr::JumpIfNotGeK { a, k, .. } if is_int(pc, a) => {
                if let Some(c) = int_const(k) {
                    let (lt, ge) = if matches!(ins, Instr::JumpIfNotLtK { .. }) {
                        (&mut next, &mut taken)
                    } else {
                        (&mut taken, &mut next)
                    };
                    lt[a as usize].below = true;
                    ge[a as usize].floor = Some(c);
                }
            }
            Instr::JumpIfNotGtK { a, k, .. } | Instr::JumpIfNotLeK { a, k, .. } if is_int(pc, a) => {
                if let Some(c) = int_const(k).filter(|c| *c < i64::MAX) {
                    let (gt, le) = if matches!(ins, Instr::JumpIfNotGtK { .. }) {
                        (&mut next, &mut taken)
                    } else {
                        (&mut taken, &mut next)
                    };
                    gt[a as usize].floor = Some(c + 1);
                    le[a as usize].below = true;
                }
            }
            Instr::Move { a, b } => {
                let r = here[b as usize];
                here[a as usize] = r;
                next[a as usize] = r;
                taken[a as usize] = r;
            }
            Instr::LoadInt { a, v } => {
                let r = Range { below: true, floor: Some(v as i64) };
                (here[a as usize], next[a as usize], taken[a as usize]) = (r, r, r);
            }
            Instr::AddK { a, b, k } | Instr::SubK { a, b, k } if is_int(pc, b) => {
                // after a checked add of c >= 0 (or subtraction of c > 0) that did not fail
                let c = int_const(k).unwrap_or(i64::MIN);
                let floor = match ins {
                    Instr::AddK { .. } if c >= 0 => here[b as usize].floor.and_then(|f| f.checked_add(c)),
                    Instr::SubK { .. } if c > 0 => here[b as usize].floor.and_then(|f| f.checked_sub(c)),
                    _ => None,
                };
                let r = Range { below: false, floor };
                (here[a as usize], next[a as usize], taken[a as usize]) = (r, r, r);
            }
            Instr::ForPrep { a, .. } if positive_step(a, pc) => {
                // the loop variable starts at `start` and stays below `stop`
                next[a as usize + 3] = Range { below: true, floor: here[a as usize].floor };
                taken[a as usize + 3] = Range::default();
            }
            Instr::ForLoop { a, t } if positive_step(a, (t as usize).wrapping_sub(1)) => {
                let r = Range { below: true, floor: here[a as usize].floor };
                taken[a as usize] = r;
                taken[a as usize + 3] = r;
                next[a as usize] = Range::default();
                next[a as usize + 3] = Range::default();
            }
            _ => {
                for (r, range) in here.iter_mut().enumerate() {
                    if ins.overwrites(r as Reg) {
                        *range = Range::default();
                        next[r] = Range::default();
                        taken[r] = Range::default();
                    }
                }
            }
        }
        let mut flow = |to: usize, f: &Vec<Range>| match &mut ranges[to] {
            slot @ None => {
                *slot = Some(f.clone());
                work.insert(to);
            }
            Some(old) => {
                let mut changed = false;
                for (o, v) in old.iter_mut().zip(f) {
                    let mut j = o.join(*v);
                    if j.floor < o.floor {
                        // widening: a floor that keeps dropping (a counter going down) is dropped
                        // at once, so that the analysis ends
                        j.floor = None;
                    }
                    if j != *o {
                        *o = j;
                        changed = true;
                    }
                }
                if changed {
                    work.insert(to);
                }
            }
        };
        match ins.flow() {
            Flow::Return => {}
            Flow::Jump(t) => flow(t as usize, &here),
            Flow::Branch(t) => {
                flow(pc + 1, &next);
                flow(t as usize, &taken);
            }
            Flow::Next => flow(pc + 1, &next),
        }
    }
    // decide from the settled ranges only (a first visit may have seen stronger facts)
    for (pc, ins) in code.iter().enumerate() {
        let (Some(here), Some(_)) = (&ranges[pc], &plan.states[pc]) else { continue };
        let ins = *ins;
        let known = match ins {
            Instr::AddK { b, k, .. } | Instr::KAdd { b, k, .. } => {
                is_int(pc, b) && int_const(k) == Some(1) && here[b as usize].below
            }
            Instr::SubK { b, k, .. } => match (int_const(k), here[b as usize].floor) {
                (Some(c), Some(low)) => is_int(pc, b) && c > 0 && low.checked_sub(c).is_some(),
                _ => false,
            },
            _ => false,
        };
        if known {
            guards.no_overflow.insert(pc);
        }
        match ins {
            Instr::FloorDiv { b, .. } | Instr::Mod { b, .. } | Instr::ModK { b, .. }
                if here[b as usize].floor.is_some_and(|f| f >= 0) && is_int(pc, b) =>
            {
                guards.nonneg_dividend.insert(pc);
            }
            Instr::ForPrep { .. } => {
                let floors = here.iter().enumerate().filter_map(|(r, range)| {
                    let floor = range.floor?;
                    is_int(pc, r as Reg).then_some((r as Reg, floor))
                });
                guards.floors_at_loops.insert(pc, floors.collect());
            }
            _ => {}
        }
    }
    guards
}

/// The registers some instruction reads while they hold `Ty::Num` (by register number), or an
/// empty vector when there are none. Only these need the tagged form defined at their writes; a
/// temporary that merely passes a loop header as an int on one side and a float on the other,
/// and is never read there, costs nothing.
fn num_registers(plan: &Plan) -> Vec<bool> {
    let mut regs = vec![false; plan.proto.nregs];
    let mut any = false;
    for (ins, st) in plan.proto.code.iter().zip(&plan.states) {
        let Some(st) = st else { continue };
        let facts = ins.facts();
        for &(first, count) in &facts.regs {
            for r in first as usize..(first as usize + count as usize).min(st.len()) {
                if st[r] != T::Val(Ty::Num) {
                    continue;
                }
                // a register only written here is not read (a window naming it twice is both)
                // (a builtin call reads its first argument from the register it writes)
                let written_only = facts.writes == crate::bytecode::Writes::One(r as Reg)
                    && !matches!(ins, Instr::CallBuiltin { .. })
                    && facts.regs.iter().filter(|(f, c)| (*f as usize..*f as usize + *c as usize).contains(&r)).count()
                        == 1;
                if !written_only {
                    regs[r] = true;
                    any = true;
                }
            }
        }
    }
    if any { regs } else { Vec::new() }
}

/// Joins `st` into a successor's state; true when it changed.
fn merge(slot: &mut Option<Box<[T]>>, st: &[T]) -> bool {
    match slot {
        None => {
            *slot = Some(st.into());
            true
        }
        Some(old) => {
            let mut changed = false;
            for (o, n) in old.iter_mut().zip(st) {
                let j = join(*o, *n);
                if j != *o {
                    *o = j;
                    changed = true;
                }
            }
            changed
        }
    }
}

/// Why a function is too large to compile, if it is (see [`MAX_CODE`]).
fn too_large(proto: &Proto) -> Option<String> {
    let n = proto.code.len();
    (n > MAX_CODE).then(|| format!("the function is too large to compile ({n} instructions, at most {MAX_CODE})"))
}

/// A register's type for an operation that needs a value (not a function).
fn read(st: &[T], r: Reg) -> Result<T, String> {
    match read_any(st, r)? {
        T::Shape(_) => Err("shape(a) is a list, which compiled code only indexes: shape(a)[k]".into()),
        T::Dims(_) => Err(LIST_LITERAL.into()),
        t @ (T::Func(_) | T::Builtin(_) | T::Module(_) | T::Fn(_)) => {
            Err(format!("{} are not supported here in compiled code", t.ty().plural()))
        }
        t => Ok(t),
    }
}

/// A register's type, which must be known and the same on every path.
fn read_any(st: &[T], r: Reg) -> Result<T, String> {
    match st[r as usize] {
        T::Unset => Err("a variable may be unset here".into()),
        T::Mixed(a, b) => Err(format!("a value here is {} on one path and {} on another", a.name(), b.name())),
        T::Val(t @ Ty::Other(_)) => Err(format!("{} are not supported in compiled code", t.plural())),
        t => Ok(t),
    }
}

/// The type of a constant loaded into a register: a number, or a string (which no instruction
/// may read: `read_any` refuses it, so a string constant is only ever a builtin's argument,
/// refused with the builtin's reason, or unused).
fn loaded_const(t: Ty) -> Result<Ty, String> {
    if t == Ty::Other("string") { Ok(t) } else { number_const(t) }
}

/// The result type of a call of builtin `b` with the arguments in registers `args`. A string
/// argument is let through to `builtin_result`, so that the refusal names the builtin
/// (`print(string, float)`) rather than the string; no builtin compiles with one.
fn builtin_call(b: Builtin, st: &[T], args: std::ops::Range<Reg>) -> Result<T, String> {
    let mut tys = Vec::with_capacity(args.len());
    for r in args.clone() {
        tys.push(match read_or_other(st, r)? {
            t @ (T::Func(_) | T::Builtin(_) | T::Fn(_)) => {
                return Err(format!("{} are not supported here in compiled code", t.ty().plural()));
            }
            t => t,
        });
    }
    let result = builtin_result(b, &tys)?;
    for r in args {
        read(st, r)?;
    }
    Ok(result)
}

/// `read_any`, but a value of a type compiled code cannot use (a string, a list) passes: a
/// `Move` copies it to a call's argument register, and the call is refused in the call's words
/// (`push(xs, i)`). Every other read refuses it.
fn read_or_other(st: &[T], r: Reg) -> Result<T, String> {
    match st[r as usize] {
        t @ T::Val(Ty::Other(_)) => Ok(t),
        _ => read_any(st, r),
    }
}

fn number_const(t: Ty) -> Result<Ty, String> {
    if t.is_number() { Ok(t) } else { Err(format!("{} are not supported in compiled code", t.plural())) }
}

/// The result type of `+ - * // %` (`division`: `/` and float `**`, always a float).
fn arith(x: T, y: T, division: bool) -> Result<T, String> {
    match (x, y) {
        (T::Pending, _) | (_, T::Pending) => Ok(T::Pending),
        (T::Val(Ty::Int), T::Val(Ty::Int)) if !division => Ok(T::Val(Ty::Int)),
        // an int or a float with an int or another: int on the int paths, float on the others
        (T::Val(a @ (Ty::Int | Ty::Num)), T::Val(b @ (Ty::Int | Ty::Num)))
            if !division && (a == Ty::Num || b == Ty::Num) =>
        {
            Ok(T::Val(Ty::Num))
        }
        (T::Val(a), T::Val(b)) if a.is_number() && b.is_number() => Ok(T::Val(Ty::Float)),
        _ => Err(format!("arithmetic on {} and {} is an error", a_type(x.ty()), a_type(y.ty()))),
    }
}

/// The result type of `& | ^ << >>`: ints only (anything else is the interpreter's type error).
fn bitwise(x: T, y: T) -> Result<T, String> {
    match (x, y) {
        (T::Pending, _) | (_, T::Pending) => Ok(T::Pending),
        (T::Val(Ty::Int), T::Val(Ty::Int)) => Ok(T::Val(Ty::Int)),
        (T::Val(Ty::Num), _) | (_, T::Val(Ty::Num)) => Err(int_or_float()),
        _ => Err(format!("bit operations on {} and {} are an error", a_type(x.ty()), a_type(y.ty()))),
    }
}

fn ordering(x: T, y: T) -> Result<(), String> {
    match (x, y) {
        (T::Pending, _) | (_, T::Pending) => Ok(()),
        (T::Val(a), T::Val(b)) if a.is_number() && b.is_number() => Ok(()),
        _ => Err(format!("ordering {} and {} is an error", a_type(x.ty()), a_type(y.ty()))),
    }
}

fn equality(x: T, y: T) -> Result<(), String> {
    match (x, y) {
        (T::Val(a), _) | (_, T::Val(a)) if a.is_any_array() => {
            Err("comparing arrays with == or != runs only in the interpreter".into())
        }
        _ => Ok(()),
    }
}

/// Why `for v in x` does not compile for this `x`: an error for a value that is not iterable,
/// the interpreter's work for the containers compiled code does not have.
fn iteration(x: T) -> String {
    match x {
        T::Val(t @ (Ty::Int | Ty::Float | Ty::Bool | Ty::Nil)) => {
            format!("iterating over {} {} is an error (cannot iterate over {})", article(t.name()), t.name(), t.name())
        }
        T::Func(_) | T::Builtin(_) => "iterating over a function is an error".into(),
        T::Val(t) if t.rank() > 0 => format!("iterating over {} is an error (only a 1-D array)", a_type(t)),
        other => format!(
            "a for loop over {} runs only in the interpreter; compiled code iterates over ranges and arrays",
            other.ty().plural()
        ),
    }
}

/// A type's name after `a` or `an`: `an int`, `a float array`.
fn a_type(t: Ty) -> String {
    format!("{} {}", article(t.name()), t.name())
}

/// `a` or `an` before a type name.
fn article(name: &str) -> &'static str {
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

fn truthy_ok(t: T) -> Result<(), String> {
    match t {
        T::Val(Ty::Other(_)) => Err(format!("{} are not supported in compiled code", t.ty().plural())),
        _ => Ok(()),
    }
}

/// The element type of `arr[R[c], ..., R[c+n-1]]`: an array of `n` dimensions indexed by ints.
fn index_n_types(arr: T, st: &[T], c: Reg, n: u8) -> Result<T, String> {
    for r in c..c + n {
        match read(st, r)? {
            T::Val(Ty::Int) | T::Pending => {}
            idx => return Err(format!("indexing an array with {} is an error", a_type(idx.ty()))),
        }
    }
    match arr {
        T::Pending => Ok(T::Pending),
        T::Val(t) if t.rank() == n as usize => Ok(T::Val(t.element())),
        T::Val(t) if t.is_any_array() => Err(format!("indexing {} with {n} indexes is an error", a_type(t))),
        _ => Err(format!("indexing {} with {n} indexes is an error", a_type(arr.ty()))),
    }
}

fn index_types(arr: T, idx: T) -> Result<(), String> {
    match (arr, idx) {
        (T::Pending, _) => Ok(()),
        (T::Val(a), T::Val(Ty::Int) | T::Pending) if a.is_array() => Ok(()),
        (T::Val(a), T::Val(Ty::Num)) if a.is_array() => Err(int_or_float()),
        (T::Val(a), _) if a.is_array() => Err(format!("indexing an array with {} is an error", a_type(idx.ty()))),
        (T::Val(a), _) if a.is_any_array() => Err(format!("indexing {} with 1 index is an error", a_type(a))),
        _ => Err(format!("indexing {} is an error", a_type(arr.ty()))),
    }
}

/// The result type of a builtin call, for the builtins compiled code supports.
pub fn builtin_result(b: Builtin, args: &[T]) -> Result<T, String> {
    use Builtin as B;
    if args.contains(&T::Pending) {
        return Ok(T::Pending);
    }
    let tys: Vec<Ty> = args.iter().map(|t| t.ty()).collect();
    if let Some(result) = atomic_result(b, &tys) {
        return result;
    }
    if let Some(result) = random_result(b, &tys) {
        return result;
    }
    let bad = || Err(format!("{}({}) is not supported in compiled code", b.name(), names(&tys)));
    let t = match (b, &tys[..]) {
        (B::Sqrt | B::Sin | B::Cos | B::Tan | B::Exp | B::Log, [x]) if x.is_number() => Ty::Float,
        (B::Floor | B::Ceil | B::Int | B::Round, [x]) if x.is_number() => Ty::Int,
        (B::Int, [Ty::Bool]) => Ty::Int,
        (B::Float, [x]) if x.is_number() || *x == Ty::Bool => Ty::Float,
        (B::Abs, [x]) if x.is_number() => *x,
        (B::Min | B::Max, [first, rest @ ..]) if !rest.is_empty() && first.is_number() => {
            if rest.iter().any(|t| !t.is_number()) {
                return bad();
            }
            // an int and a float: the result is whichever wins, so its type is known only at run time
            if rest.iter().any(|t| t != first) { Ty::Num } else { *first }
        }
        (B::Len, [x]) if x.is_any_array() => Ty::Int,
        (B::In, [c, x]) if c.is_any_array() && x.is_number() => Ty::Bool,
        (B::Sum, [Ty::IntArray | Ty::IntArrayN(_)]) => Ty::Int,
        (B::Sum, [Ty::FloatArray | Ty::FloatArrayN(_)]) => Ty::Float,
        (B::Sum, _) => return bad(),
        // jitalloc: `array(n, fill)` makes an array native code owns (lower/alloc.rs)
        (B::Array, [Ty::Int, Ty::Int]) => Ty::IntArray,
        (B::Array, [Ty::Int, Ty::Float]) => Ty::FloatArray,
        (B::Array, [n, fill]) => return Err(array_error(*n, *fill)),
        (B::Shape, _) => return Err("shape() of anything but an array is an error".into()),
        (
            B::Sqrt
            | B::Sin
            | B::Cos
            | B::Tan
            | B::Exp
            | B::Log
            | B::Floor
            | B::Ceil
            | B::Int
            | B::Float
            | B::Abs
            | B::Min
            | B::Max
            | B::Len
            | B::Round,
            _,
        ) => return bad(),
        _ => return Err(format!("{}() is not supported in compiled code", b.name())),
    };
    Ok(T::Val(t))
}

/// Why compiled code runs no list literal but the shape of `array` (as why.rs says it).
const LIST_LITERAL: &str = "a list literal creates a list; compiled code creates no lists or dicts (pass an array in)";

/// How the reason for a shape literal with a dimension that is not an int starts (why.rs gives
/// it rather than the list literal's).
pub const SHAPE_DIMENSION: &str = "array dimension";

/// Whether the list literal `NewList` at `pc` into register `a` is the shape of an `array`
/// call: the next instruction that touches `a` is `array(R[a], fill)` (the compiler makes the
/// fill in the registers after `a`). Only a heuristic for where to refuse: a `T::Dims` register
/// is sound wherever it flows, since every read but that call refuses it.
fn shape_of_array(code: &[Instr], pc: usize, a: Reg) -> bool {
    for ins in &code[pc + 1..] {
        if let Instr::CallBuiltin { a: c, n: 2, f: Builtin::Array } = ins
            && *c == a
        {
            return true;
        }
        let facts = ins.facts();
        let touches = facts.regs.iter().any(|&(r, k)| k > 0 && r <= a && (a as usize) < r as usize + k as usize);
        if touches || facts.writes.contains(a) || facts.flow == Flow::Return {
            return false;
        }
    }
    false
}

/// The type of a list literal of `n` registers from `b` that is an array's shape: 1 to
/// `MAX_DIMS` ints.
fn shape_literal(st: &[T], b: Reg, n: u8) -> Result<T, String> {
    if n == 0 || n as usize > crate::value::MAX_DIMS {
        return Err(LIST_LITERAL.into());
    }
    for r in b..b + n as Reg {
        match read(st, r)? {
            T::Val(Ty::Int) => {}
            T::Pending => return Ok(T::Pending),
            // the interpreter's error, or an int or float compiled code cannot tell apart
            t => {
                let k = r - b;
                return Err(format!(
                    "{SHAPE_DIMENSION} {k} is {} here (array dimensions must be ints)",
                    a_type(t.ty())
                ));
            }
        }
    }
    Ok(T::Dims(n))
}

/// `array([d0, ...], fill)` with a shape of `T::Dims` in register `a` and the fill after it: an
/// array of that many dimensions (a 1-D array for one).
fn shaped_array(st: &[T], a: Reg) -> Result<T, String> {
    let T::Dims(rank) = st[a as usize] else { return Err("internal: not a shape".into()) };
    let float = match read(st, a + 1)? {
        T::Pending => return Ok(T::Pending),
        T::Val(Ty::Int) => false,
        T::Val(Ty::Float) => true,
        t => return Err(array_error(Ty::Int, t.ty())),
    };
    Ok(T::Val(match (rank, float) {
        (1, false) => Ty::IntArray,
        (1, true) => Ty::FloatArray,
        (r, f) => Ty::array_n(f, r as usize),
    }))
}

/// Why `array(n, fill)` of these types is the interpreter's error (two arguments).
fn array_error(n: Ty, fill: Ty) -> String {
    if n != Ty::Int {
        format!("array({}, {}) is an error (array length must be an int)", n.name(), fill.name())
    } else {
        format!("array({}, {}) is an error (array fill must be an int or a float)", n.name(), fill.name())
    }
}

/// The result type of `atomic_add` (int) and `atomic_cas` (bool), which compile for an int
/// array and int arguments only; `None` for the other builtins.
fn atomic_result(b: Builtin, tys: &[Ty]) -> Option<Result<T, String>> {
    use Builtin as B;
    let t = match (b, tys) {
        (B::AtomicAdd, [Ty::IntArray, Ty::Int, Ty::Int]) => Ty::Int,
        (B::AtomicCas, [Ty::IntArray, Ty::Int, Ty::Int, Ty::Int]) => Ty::Bool,
        (B::AtomicAdd | B::AtomicCas, _) => {
            return Some(Err(format!("{}({}) is not supported in compiled code", b.name(), names(tys))));
        }
        _ => return None,
    };
    Some(Ok(T::Val(t)))
}

/// The result type of `random()` (float), `randint(a, b)` (int, for ints) and `uniform` and
/// `gauss` (float, for numbers), which native code draws from the thread's generator
/// (lang-spec/random.md); `None` for the other builtins.
fn random_result(b: Builtin, tys: &[Ty]) -> Option<Result<T, String>> {
    use Builtin as B;
    let t = match (b, tys) {
        (B::Random, []) => Ty::Float,
        (B::Randint, [Ty::Int, Ty::Int]) => Ty::Int,
        (B::Randint, [Ty::Num, _] | [_, Ty::Num]) => return Some(Err(int_or_float())),
        (B::Uniform | B::Gauss, [x, y]) if x.is_number() && y.is_number() => Ty::Float,
        (B::Random | B::Randint | B::Uniform | B::Gauss, _) => {
            // every other argument list is an error in the interpreter (a count or a type)
            let takes = match b {
                B::Random => "no arguments",
                B::Randint => "two ints",
                _ => "two numbers",
            };
            return Some(Err(format!("{}({}) is an error ({} takes {takes})", b.name(), names(tys), b.name())));
        }
        _ => return None,
    };
    Some(Ok(T::Val(t)))
}

fn names(tys: &[Ty]) -> String {
    tys.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
}
