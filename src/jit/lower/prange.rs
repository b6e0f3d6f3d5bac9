//! Lowering `prange` loops (lang-spec/parallel.md). The blocked bytecode the compiler emits
//! (`PrangePrep`, `PrangeBlock`, `ReduceInit`, the block's counted loop, `ReduceCombine`,
//! `PrangeNext`) is lowered as it reads, blocks in order on this thread; and a loop that may
//! run in parallel also gets its block *outlined* into a function of its own (a
//! [`BlockFn`](crate::jit::parallel::BlockFn)), which `mini_prange_run` calls for each block on
//! the pool's threads. The enclosing code then combines the blocks' partial results in block
//! order, with the same operators as `ReduceCombine`, so both ways give the same result.

use super::{F64, Helper, I64, Lower, Lowered, Named, V, param_types};
use crate::builtin::Builtin;
use crate::bytecode::{Instr, PrangeCounts, RedOp, Reg};
use crate::jit::infer::{Plan, T, Target};
use crate::jit::parallel;
use crate::jit::runtime::{self as rt, status};
use crate::jit::types::Ty;
use cranelift::prelude::{InstBuilder, IntCC, MemFlagsData, StackSlotData, StackSlotKind, Value as CValue};
use cranelift_module::{FuncId, Module};

/// A `prange` loop in a function's bytecode: its instructions' positions and reductions.
#[derive(Clone, Debug)]
pub struct Region {
    /// The `PrangePrep`, and its register window.
    pub prep: usize,
    pub a: Reg,
    /// Its entry in `Proto::pranges`.
    pub index: usize,
    /// The `PrangeBlock` (the block loop's header: `prep + 1`).
    pub block: usize,
    /// The first instruction after a block's iterations (its first `ReduceCombine`, or the
    /// `PrangeNext`): where an outlined block ends.
    pub body_end: usize,
    /// The `PrangeNext`.
    pub next: usize,
    /// Each reduction: the partial's register, the accumulator's, the operator, and its
    /// `ReduceCombine`'s position.
    pub reds: Vec<(Reg, Reg, RedOp, usize)>,
}

/// Whether a loop may run in parallel, or why not and at which instruction.
pub type Verdict = Result<(), (String, Option<usize>)>;

/// The outlined blocks a lowering may call, and whether it is lowering one itself.
#[derive(Clone, Copy)]
pub struct Outlining<'a> {
    /// The outlined blocks of the plan's parallel loops, by their `PrangePrep`.
    pub blocks: &'a std::collections::HashMap<usize, FuncId>,
    /// While lowering an outlined block: its loop's `PrangePrep`.
    pub inside: Option<usize>,
}

/// The most blocks a loop has (`parallel::MAX_BLOCKS`): the size of the partials buffer.
const MAX_BLOCKS: usize = crate::parallel::MAX_BLOCKS as usize;

/// The `prange` loop set up at `prep`, read from the bytecode.
pub fn region(code: &[Instr], prep: usize) -> Option<Region> {
    let Instr::PrangePrep { a, p, .. } = code[prep] else { return None };
    let block = prep + 1;
    if !matches!(code.get(block), Some(Instr::PrangeBlock { a: b }) if *b == a) {
        return None;
    }
    let next = (block..code.len()).find(|&pc| matches!(code[pc], Instr::PrangeNext { a: b, .. } if b == a))?;
    let body_end = (block..next).find_map(|pc| match code[pc] {
        Instr::ForPrep { a: b, t } if b == a + 7 => Some(t as usize),
        _ => None,
    })?;
    let mut reds = Vec::new();
    for (pc, ins) in code.iter().enumerate().take(next).skip(body_end) {
        if let Instr::ReduceCombine { a: acc, b: s, op } = *ins {
            reds.push((s, acc, op, pc));
        }
    }
    Some(Region { prep, a, index: p as usize, block, body_end, next, reds })
}

/// The loops of `plans[i]` that may run in parallel, with the reason of each that may not
/// (shown by `--stats`). A loop inside another loop's block never does (its blocks run in order
/// inside the outer block), nor one whose body calls a function that writes array elements
/// (another iteration may read them: the compiler checks only the loop's own body).
pub fn parallel_loops(plans: &[Plan], i: usize) -> Vec<(Region, Verdict)> {
    let plan = &plans[i];
    let code = &plan.proto.code;
    let regions: Vec<Region> =
        (0..code.len()).filter(|&pc| plan.states[pc].is_some()).filter_map(|pc| region(code, pc)).collect();
    regions
        .iter()
        .map(|r| {
            let nested = regions.iter().any(|o| o.block < r.prep && r.next < o.next);
            let verdict = if nested {
                Err(("nested in another prange loop: its blocks run in order".to_string(), Some(r.prep)))
            } else if let Some((pc, name)) =
                (r.block..r.next).find_map(|pc| writer_called(plans, plan, pc).map(|name| (pc, name)))
            {
                Err((format!("calls {name}, which writes array elements"), Some(pc)))
            } else if let Some(pc) = counted_array_set(plans, plan, r) {
                Err((
                    "it makes or passes arrays in its body, whose reference counts belong to one \
                     thread"
                        .to_string(),
                    Some(pc),
                ))
            } else if let Some(pc) = unchecked_array(plan, r) {
                Err((
                    "it writes array elements and sets an array variable in its body; only arrays from \
                     outside the loop can be checked for overlap"
                        .to_string(),
                    Some(pc),
                ))
            } else {
                Ok(())
            };
            (r.clone(), verdict)
        })
        .collect()
}

/// In a plan that counts references to arrays (lower/alloc.rs), an instruction of the loop's
/// body that sets a register which may hold an array: counts are plain (one thread's), so an
/// outlined block must never change one; it then only reads the arrays it is given.
fn counted_array_set(plans: &[Plan], plan: &Plan, r: &Region) -> Option<usize> {
    let owned = super::alloc::Owned::of(plan, plans);
    if !owned.counting {
        return None;
    }
    let code = &plan.proto.code;
    (r.block..r.next).find(|&pc| owned.regs.iter().any(|&reg| code[pc].facts().writes.contains(reg)))
}

/// In a loop that writes array elements, an instruction of its body that sets a register to
/// an array: the arrays a writing loop touches must all come from outside it, so that one test
/// before the loop can tell whether two of them are the same array (see `aliased`).
fn unchecked_array(plan: &Plan, r: &Region) -> Option<usize> {
    let code = &plan.proto.code;
    let writes = code[r.block..r.next].iter().any(writes_elements);
    if !writes {
        return None;
    }
    (r.block..r.next).find(|&pc| {
        let Some(after) = plan.states.get(pc + 1).and_then(|s| s.as_deref()) else { return false };
        (0..after.len())
            .any(|reg| code[pc].facts().writes.contains(reg as Reg) && matches!(after[reg], T::Val(t) if is_array(t)))
    })
}

/// Whether `t` is an array type, of any number of dimensions.
fn is_array(t: Ty) -> bool {
    matches!(t, Ty::FloatArray | Ty::IntArray | Ty::FloatArrayN(_) | Ty::IntArrayN(_))
}

/// An array's data pointer.
fn array_ptr(v: V) -> Lowered<CValue> {
    match v {
        V::Arr { ptr, .. } | V::ArrN { ptr, .. } => Ok(ptr),
        _ => Err("internal: an array register of a non-array".into()),
    }
}

/// Whether an instruction writes an array element.
fn writes_elements(ins: &Instr) -> bool {
    matches!(
        ins,
        Instr::SetIndex { .. }
            | Instr::SetIndexN { .. }
            | Instr::CallBuiltin { f: Builtin::AtomicAdd | Builtin::AtomicCas, .. }
    )
}

/// The name of the function the call at `pc` reaches when it (or a function it calls) writes
/// an array element.
fn writer_called(plans: &[Plan], plan: &Plan, pc: usize) -> Option<String> {
    let mut seen = Vec::new();
    let target = plan.calls.get(&pc)?;
    let callee = match target {
        Target::Plan(j) => &plans[*j],
        Target::Spec(spec) => spec.plan()?,
        Target::Builtin(_) => return None,
    };
    writes_arrays(plans, callee, &mut seen).then(|| callee.proto.name.to_string())
}

/// Whether `plan` or anything it calls writes an array element (atomics included: a race-free
/// parallel loop needs none of them to touch what another iteration reads).
fn writes_arrays<'p>(plans: &'p [Plan], plan: &'p Plan, seen: &mut Vec<*const Plan>) -> bool {
    if seen.contains(&(plan as *const Plan)) {
        return false;
    }
    seen.push(plan);
    plan.proto.code.iter().enumerate().any(|(pc, ins)| match ins {
        ins if writes_elements(ins) => true,
        Instr::Call { .. } => match plan.calls.get(&pc) {
            Some(Target::Plan(j)) => writes_arrays(plans, &plans[*j], seen),
            Some(Target::Spec(spec)) => spec.plan().is_none_or(|p| writes_arrays(plans, p, seen)),
            _ => false,
        },
        _ => false,
    })
}

/// Whether builtin `b` draws from (or reseeds) the thread's random generator.
fn uses_generator(b: Builtin) -> bool {
    matches!(
        b,
        Builtin::Random
            | Builtin::Randint
            | Builtin::Uniform
            | Builtin::Gauss
            | Builtin::Shuffle
            | Builtin::Choice
            | Builtin::Seed
    )
}

/// Whether the call at `pc` of `plan` may draw random numbers: its callee, or a function that
/// calls, uses the generator; a callee without a plan is taken to.
fn call_draws<'p>(plans: &'p [Plan], plan: &'p Plan, pc: usize, seen: &mut Vec<*const Plan>) -> bool {
    let callee = match plan.calls.get(&pc) {
        Some(Target::Plan(j)) => &plans[*j],
        Some(Target::Spec(spec)) => match spec.plan() {
            Some(p) => p,
            None => return true,
        },
        Some(Target::Builtin(b)) => return uses_generator(*b),
        None => return true,
    };
    if seen.contains(&(callee as *const Plan)) {
        return false;
    }
    seen.push(callee);
    callee.proto.code.iter().enumerate().any(|(pc, ins)| match ins {
        Instr::CallBuiltin { f, .. } => uses_generator(*f),
        Instr::Call { .. } => call_draws(plans, callee, pc, seen),
        _ => false,
    })
}

/// The registers a block reads from the enclosing code: those with a value at the block
/// loop's header (an unset or unknown register is never read before the body writes it).
fn live_in(st: &[T]) -> Vec<(Reg, Ty)> {
    st.iter()
        .enumerate()
        .filter_map(|(r, t)| match t {
            T::Val(ty) | T::Fn(ty) if !param_types(*ty).is_empty() => Some((r as Reg, *ty)),
            _ => None,
        })
        .collect()
}

impl<'a, 'f> Lower<'a, 'f> {
    /// The state before instruction `pc`.
    fn state(&self, pc: usize) -> Lowered<&'a [T]> {
        let plan: &'a Plan = self.plan;
        plan.states[pc].as_deref().ok_or_else(|| format!("internal: instruction {pc} is unreachable"))
    }

    /// `PrangePrep`: the range's checks and block plan, the loop's random base; then either
    /// the runner of `jit::parallel` (a loop with an outlined block, when the plan says it is
    /// worth it) or the blocks in order, inline.
    pub(super) fn prange_prep(&mut self, pc: usize, st: &[T], a: Reg, p: u8, t: u32) -> Lowered<bool> {
        let (start, stop, step) = self.range_start(pc, st, a)?;
        let proto = &self.plan.proto;
        let counts = self.address(&proto.pranges[p as usize].counts as *const PrangeCounts as usize, Named::Unknown);
        let outlined = self.outlining.blocks.get(&pc).copied().filter(|_| self.outlining.inside.is_none());
        let r = region(&proto.code, pc).ok_or("internal: a prange loop without its blocks")?;
        let heavy = proto.code[r.block..r.next]
            .iter()
            .any(|i| matches!(i, Instr::Call { .. } | Instr::IterPrep { .. } | Instr::PrangePrep { .. }))
            || proto.code[r.block..r.body_end].iter().filter(|i| matches!(i, Instr::ForPrep { .. })).count() > 1;
        let draws = self.draws(&r);
        let mut hint = if draws { rt::DRAWS } else { 0 };
        if outlined.is_some() {
            hint |= rt::ELIGIBLE | if heavy { rt::HEAVY } else { 0 };
            if heavy && !draws && r.reds.is_empty() {
                hint |= rt::FINE;
            }
        }
        let hint = self.iconst(hint);
        let plan = self.call_helper(Helper::PrangePlan, &[start, stop, step, counts, hint]);
        let nblocks = self.b.ins().band_imm_u(plan[0], rt::RUN_ON_POOL - 1);
        let len = plan[1];
        let empty = self.b.ins().icmp_imm_s(IntCC::Equal, nblocks, 0);
        let run = self.b.create_block();
        let skip = self.block(t as usize)?;
        self.b.ins().brif(empty, skip, &[], run, &[]);
        self.b.seal_block(run);
        self.b.switch_to_block(run);
        // without draws in the body, the plan helper has drawn the base and seeded the
        // generator for after the loop, and nothing reads the base
        let base = if draws { self.call_helper(Helper::DrawSeed, &[])[0] } else { self.iconst(0) };
        let zero = self.iconst(0);
        self.put(a + 3, V::Int(zero));
        self.put(a + 4, V::Int(nblocks));
        self.put(a + 5, V::Int(len));
        self.put(a + 6, V::Int(base));
        let inline = self.block(pc + 1)?;
        let Some(id) = outlined else {
            self.b.ins().jump(inline, &[]);
            return Ok(true);
        };
        let parallel = self.b.create_block();
        let pool = self.b.ins().band_imm_u(plan[0], rt::RUN_ON_POOL);
        let pool = self.b.ins().icmp_imm_s(IntCC::NotEqual, pool, 0);
        let pool = match self.aliased(&r)? {
            Some(same) => {
                let apart = self.b.ins().bxor_imm_u(same, 1);
                let go = self.b.ins().band(pool, apart);
                let noted = self.b.create_block();
                let decided = self.b.create_block();
                self.b.set_cold_block(noted);
                self.b.ins().brif(same, noted, &[], decided, &[]);
                self.b.seal_block(noted);
                self.b.switch_to_block(noted);
                let bit = self.iconst(crate::bytecode::SEQUENTIAL_ALIASED as i64);
                self.call_helper(Helper::PrangeSequential, &[counts, bit]);
                self.b.ins().jump(decided, &[]);
                self.b.seal_block(decided);
                self.b.switch_to_block(decided);
                go
            }
            None => pool,
        };
        self.b.ins().brif(pool, parallel, &[], inline, &[]);
        self.b.seal_block(parallel);
        self.b.switch_to_block(parallel);
        self.prange_parallel(&r, id, nblocks, base, counts, heavy)?;
        Ok(true)
    }

    /// Whether two of the arrays a writing loop touches are the same array (an I8 condition),
    /// or `None` when the loop writes none or touches one array: the compiler's race rules
    /// compare names, and two names may hold one array (`f(x, x)`).
    fn aliased(&mut self, r: &Region) -> Lowered<Option<CValue>> {
        let code = &self.plan.proto.code;
        let st = self.state(r.block)?;
        let is_array = |reg: Reg| matches!(st[reg as usize], T::Val(t) if is_array(t));
        let mut written = Vec::new();
        let mut touched = Vec::new();
        for ins in &code[r.block..r.next] {
            let window = ins.facts().regs;
            let regs: Vec<Reg> = match *ins {
                Instr::SetIndex { a, .. } | Instr::SetIndexN { a, .. } => vec![a],
                Instr::CallBuiltin { a, f: Builtin::AtomicAdd | Builtin::AtomicCas, .. } => vec![a],
                _ => vec![],
            };
            written.extend(regs.into_iter().filter(|&x| is_array(x)));
            let used =
                window.iter().flat_map(|&(first, n)| (first as usize..first as usize + n as usize).map(|x| x as Reg));
            touched.extend(used.filter(|&x| is_array(x)));
        }
        written.sort_unstable();
        written.dedup();
        touched.sort_unstable();
        touched.dedup();
        let mut same: Option<CValue> = None;
        for &w in &written {
            for &t in touched.iter().filter(|&&t| t != w) {
                let (pw, pt) = (array_ptr(self.get(st, w)?)?, array_ptr(self.get(st, t)?)?);
                let eq = self.b.ins().icmp(IntCC::Equal, pw, pt);
                same = Some(match same {
                    Some(x) => self.b.ins().bor(x, eq),
                    None => eq,
                });
            }
        }
        Ok(same)
    }

    /// The parallel run: the live values into a buffer, `mini_prange_run`, then the partials
    /// combined in block order up to the first failed block, whose error is raised after them.
    fn prange_parallel(
        &mut self,
        r: &Region,
        id: FuncId,
        nblocks: CValue,
        base: CValue,
        counts: CValue,
        heavy: bool,
    ) -> Lowered<()> {
        let st_block = self.state(r.block)?;
        let mut env_vals = Vec::new();
        for (reg, _) in live_in(st_block) {
            let v = self.get(st_block, reg)?;
            env_vals.extend(self.parts_of(v));
        }
        let env_slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            8 * env_vals.len() as u32,
            3,
        ));
        let env = self.b.ins().stack_addr(I64, env_slot, 0);
        for (k, v) in env_vals.iter().enumerate() {
            let x = match self.b.func.dfg.value_type(*v) {
                t if t == super::I8 => self.b.ins().uextend(I64, *v),
                _ => *v,
            };
            self.b.ins().store(MemFlagsData::trusted(), x, env, 8 * k as i32);
        }
        let width = r.reds.len().max(1);
        let out_slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (8 * width * MAX_BLOCKS) as u32,
            3,
        ));
        let out = self.b.ins().stack_addr(I64, out_slot, 0);
        let f = self.module.declare_func_in_func(id, self.b.func);
        let fptr = self.b.ins().func_addr(I64, f);
        let room = self.room.expect("set in the entry block");
        let flags = if self.draws(r) { parallel::DRAWS_FLAG } else { 0 } | if heavy { parallel::HEAVY_FLAG } else { 0 };
        let width_v = self.iconst(width as i64 | flags);
        let lowest = self.call_helper(Helper::PrangeRun, &[fptr, room, env, nblocks, base, out, width_v, counts])[0];
        // combine blocks 0..lowest in order
        let head = self.b.create_block();
        let body = self.b.create_block();
        let done = self.b.create_block();
        self.b.append_block_param(head, I64);
        let zero = self.iconst(0);
        self.b.ins().jump(head, &[cranelift::codegen::ir::BlockArg::Value(zero)]);
        self.b.switch_to_block(head);
        let k = self.b.block_params(head)[0];
        let more = self.b.ins().icmp(IntCC::SignedLessThan, k, lowest);
        self.b.ins().brif(more, body, &[], done, &[]);
        self.b.seal_block(body);
        self.b.switch_to_block(body);
        let row = self.b.ins().imul_imm_s(k, 8 * width as i64);
        let row = self.b.ins().iadd(out, row);
        for (j, &(s, acc, op, combine)) in r.reds.iter().enumerate() {
            let st_c = self.state(combine)?;
            let partial = match st_c[s as usize] {
                T::Val(Ty::Float) => V::Float(self.b.ins().load(F64, MemFlagsData::trusted(), row, 8 * j as i32)),
                T::Val(Ty::Int) => V::Int(self.b.ins().load(I64, MemFlagsData::trusted(), row, 8 * j as i32)),
                other => return Err(format!("internal: a reduction of type {other:?}")),
            };
            let before = self.get(st_c, acc)?;
            let sum = self.combine(combine, op, before, partial)?;
            self.put(acc, sum);
        }
        let next = self.b.ins().iadd_imm_s(k, 1);
        self.b.ins().jump(head, &[cranelift::codegen::ir::BlockArg::Value(next)]);
        self.b.seal_block(head);
        self.b.switch_to_block(done);
        self.b.seal_block(done);
        let failed = self.b.ins().icmp(IntCC::SignedLessThan, lowest, nblocks);
        let raise = self.b.create_block();
        let after = self.block(r.next + 1)?;
        self.b.set_cold_block(raise);
        self.b.ins().brif(failed, raise, &[], after, &[]);
        self.b.seal_block(raise);
        self.b.switch_to_block(raise);
        // the failed block recorded its frame (this function's, at the failing instruction);
        // prange loops are never inlined, so no caller frame is missing
        let st = self.call_helper(Helper::PrangeFailure, &[])[0];
        let mut values = self.zeros(self.plan.ret_ty());
        values.push(st);
        self.b.ins().return_(&values);
        Ok(())
    }

    /// `acc op partial`, as `ReduceCombine` computes it at `pc`.
    fn combine(&mut self, pc: usize, op: RedOp, acc: V, partial: V) -> Lowered<V> {
        match op {
            RedOp::Add | RedOp::Sub => self.arith(pc, Instr::Add { a: 0, b: 0, c: 0 }, acc, partial),
            RedOp::Mul => self.arith(pc, Instr::Mul { a: 0, b: 0, c: 0 }, acc, partial),
            RedOp::Min => self.builtin(pc, Builtin::Min, &[acc, partial]),
            RedOp::Max => self.builtin(pc, Builtin::Max, &[acc, partial]),
        }
    }

    /// `PrangeBlock`: block k's bounds, and its random generator when the body may draw.
    pub(super) fn prange_block(&mut self, pc: usize, st: &[T], a: Reg) -> Lowered<()> {
        let ints: Vec<CValue> = (0..7)
            .map(|j| match self.get(st, a + j)? {
                V::Int(x) => Ok(x),
                _ => Err("internal: prange registers of non-ints".to_string()),
            })
            .collect::<Lowered<_>>()?;
        let (start, stop, step, k, nblocks, len, base) =
            (ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6]);
        // inside the range, so the products fit (parallel::block_start)
        let first = self.b.ins().imul(k, len);
        let first = self.b.ins().imul(first, step);
        let first = self.b.ins().iadd(start, first);
        let k1 = self.b.ins().iadd_imm_s(k, 1);
        let last = self.b.ins().icmp(IntCC::Equal, k1, nblocks);
        let end = self.b.ins().imul(k1, len);
        let end = self.b.ins().imul(end, step);
        let end = self.b.ins().iadd(start, end);
        let end = self.b.ins().select(last, stop, end);
        self.put(a + 7, V::Int(first));
        self.put(a + 8, V::Int(end));
        self.put(a + 9, V::Int(step));
        if let Some(r) = region(&self.plan.proto.code, pc - 1)
            && self.draws(&r)
        {
            let seed = self.b.ins().iadd(base, k);
            self.call_helper(Helper::SeedPending, &[seed]);
        }
        Ok(())
    }

    /// Whether a block of `r` may draw random numbers (then each block seeds its generator, and
    /// the blocks must be the plan's). A call draws when its callee, or anything it calls, may:
    /// a callee the plan does not know is taken to draw.
    fn draws(&self, r: &Region) -> bool {
        let code = &self.plan.proto.code;
        (r.block..r.next).any(|pc| match &code[pc] {
            Instr::CallBuiltin { f, .. } => uses_generator(*f),
            Instr::Call { .. } => call_draws(self.plans, self.plan, pc, &mut Vec::new()),
            _ => false,
        })
    }

    /// `ReduceInit`: the identity of `op` for the accumulator's type.
    pub(super) fn reduce_init(&mut self, st: &[T], s: Reg, acc: Reg, op: RedOp) -> Lowered<()> {
        let v = match (op, self.get(st, acc)?) {
            (RedOp::Min | RedOp::Max, v) => v,
            (RedOp::Add | RedOp::Sub, V::Int(_)) => V::Int(self.iconst(0)),
            (RedOp::Mul, V::Int(_)) => V::Int(self.iconst(1)),
            (RedOp::Add | RedOp::Sub, V::Float(_)) => V::Float(self.b.ins().f64const(-0.0)),
            (RedOp::Mul, V::Float(_)) => V::Float(self.b.ins().f64const(1.0)),
            _ => return Err("internal: a reduction of a non-number".into()),
        };
        self.put(s, v);
        Ok(())
    }

    /// `ReduceCombine`.
    pub(super) fn reduce_combine(&mut self, pc: usize, st: &[T], acc: Reg, s: Reg, op: RedOp) -> Lowered<()> {
        let (x, y) = (self.get(st, acc)?, self.get(st, s)?);
        let v = self.combine(pc, op, x, y)?;
        self.put(acc, v);
        Ok(())
    }

    /// `PrangeNext`: the next block, or the generator after the loop.
    pub(super) fn prange_next(&mut self, pc: usize, st: &[T], a: Reg, t: u32) -> Lowered<bool> {
        let (V::Int(k), V::Int(nblocks), V::Int(base)) =
            (self.get(st, a + 3)?, self.get(st, a + 4)?, self.get(st, a + 6)?)
        else {
            return Err("internal: prange registers of non-ints".into());
        };
        let k1 = self.b.ins().iadd_imm_s(k, 1);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, k1, nblocks);
        let again = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(more, again, &[], done, &[]);
        self.b.seal_block(again);
        self.b.seal_block(done);
        self.b.switch_to_block(again);
        self.put(a + 3, V::Int(k1));
        self.back_edge(pc, t as usize, None);
        let header = self.block(t as usize)?;
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(done);
        if region(&self.plan.proto.code, t as usize - 1).is_some_and(|r| self.draws(&r)) {
            let seed = self.b.ins().iadd(base, nblocks);
            self.call_helper(Helper::SeedPending, &[seed]);
        }
        let after = self.block(pc + 1)?;
        self.b.ins().jump(after, &[]);
        Ok(true)
    }

    /// The body of an outlined block of the loop `r`: `(room, env, k, out) -> status`. Loads
    /// the live values, runs block k's instructions (`PrangeBlock` to `body_end`), stores the
    /// partials and returns `OK`; its errors return their status (see `fill_fail_block`).
    pub fn outlined_block(mut self, r: &Region, name_index: u32) -> Lowered<()> {
        self.b.func.name = cranelift::codegen::ir::UserFuncName::user(1, name_index);
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        self.b.seal_block(entry);
        let p = self.b.block_params(entry).to_vec();
        let (room, env, k, out) = (p[0], p[1], p[2], p[3]);
        self.room = Some(room);
        let st_block = self.state(r.block)?;
        let mut slot = 0;
        for (reg, ty) in live_in(st_block) {
            let mut params = Vec::new();
            for &machine in param_types(ty) {
                let x = self.b.ins().load(I64, MemFlagsData::trusted(), env, 8 * slot);
                slot += 1;
                params.push(match machine {
                    t if t == F64 => self.b.ins().bitcast(F64, MemFlagsData::new(), x),
                    t if t == super::I8 => self.b.ins().ireduce(super::I8, x),
                    _ => x,
                });
            }
            let v = self.value_of_parts(ty, &params);
            self.put(reg, v);
        }
        self.put(r.a + 3, V::Int(k));
        self.make_fail_block();
        self.make_blocks();
        let first = self.block(r.block)?;
        self.b.ins().jump(first, &[]);
        let derived = self.derived(self.plan);
        let ended = self.lower_pcs(r.block, r.body_end, &derived.loops, true)?;
        let end = self.block(r.body_end)?;
        if !ended {
            self.b.ins().jump(end, &[]);
        }
        self.b.switch_to_block(end);
        let st_end = self.state(r.body_end)?;
        for (j, &(s, ..)) in r.reds.iter().enumerate() {
            match self.get(st_end, s)? {
                V::Int(x) | V::Float(x) => {
                    self.b.ins().store(MemFlagsData::trusted(), x, out, 8 * j as i32);
                }
                _ => return Err("internal: a reduction of a non-number".into()),
            }
        }
        let ok = self.iconst(status::OK);
        self.b.ins().return_(&[ok]);
        self.fill_fail_block();
        self.b.seal_all_blocks();
        let config = self.module.target_config();
        self.b.finalize(config);
        Ok(())
    }
}
