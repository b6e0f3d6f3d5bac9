//! Arrays made in compiled code: the lowering of `array(n, fill)` and the reference counts of
//! native arrays (see jit/alloc.rs for the three words `(ptr, len, own)` of an array value).
//!
//! Ownership, per plan being lowered (`Owned`). A plan *counts* when a native array can reach
//! it in a way that outlives its caller's hold on it: it allocates, returns an array, or calls a
//! function that returns one. In a counting plan every register that may ever hold an array
//! (`Owned::regs`) has an own word that is always 0, an interpreter array's odd word, or a
//! native header for which the register holds one count:
//!
//! - at entry they are 0, and array parameters are retained (the caller keeps its own count);
//! - `put` of a new value into such a register releases the old word after the new one is in
//!   place (a `Move` retains its source first, so `a = a` is a no-op);
//! - `return` jumps to the plan's epilogue (one per function or inlined copy), which retains
//!   the returned array (the result's count, handed to the caller) and then releases every such
//!   register.
//!
//! A plan that does not count borrows: every array it sees is held by its caller (an argument
//! register that the caller does not write during the call) or by the interpreter for the whole
//! native call, and it neither returns one nor receives one from a callee, so no array it holds
//! can be freed while it runs. An error exit releases nothing: the VM frees the thread's list of
//! native arrays when the outermost native call ends (`alloc::free_all`).

use super::{Helper, I64, Kind, Lower, Lowered, V, ret_types, returned};
use crate::builtin::Builtin;
use crate::bytecode::{Instr, Reg};
use crate::jit::alloc::{COUNT_OFFSET, PTR_OFFSET};
use crate::jit::infer::{Plan, T, Target};
use crate::jit::runtime::status;
use crate::jit::types::Ty;
use crate::value::{MAX_ARRAY_LEN, MAX_DIMS};
use cranelift::codegen::ir::BlockArg;
use cranelift::codegen::ir::{InstructionData, Opcode, ValueDef};
use cranelift::codegen::ir::{StackSlotData, StackSlotKind};
use cranelift::prelude::{InstBuilder, IntCC, MemFlagsData, Value as CValue};

/// An epilogue releasing more own words than this does it in one call of
/// `mini_array_release_all`.
const EPILOGUE_INLINE_RELEASES: usize = 2;

/// How the plan being lowered treats native arrays (see the module comment).
#[derive(Clone, Default)]
pub(super) struct Owned {
    /// Whether it counts references.
    pub(super) counting: bool,
    /// The registers that may hold an array at some instruction, when it counts.
    pub(super) regs: Vec<Reg>,
}

impl Owned {
    /// The ownership of `plan`, one of `plans` (the session's, for its callees' result types).
    pub(super) fn of(plan: &Plan, plans: &[Plan]) -> Owned {
        if !counts(plan, plans) {
            return Owned::default();
        }
        let mut may = vec![false; plan.proto.nregs];
        for st in plan.states.iter().flatten() {
            for (r, t) in st.iter().enumerate() {
                may[r] |= match *t {
                    T::Val(ty) => ty.is_any_array(),
                    T::Mixed(a, b) => a.is_any_array() || b.is_any_array(),
                    _ => false,
                };
            }
        }
        let regs = (0..plan.proto.nregs).filter(|&r| may[r]).map(|r| r as Reg).collect();
        Owned { counting: true, regs }
    }

    /// Whether register `r` has a counted own word.
    pub(super) fn holds(&self, r: Reg) -> bool {
        self.counting && self.regs.contains(&r)
    }
}

/// Whether `plan` counts references: it allocates, returns an array, or calls a function
/// that returns one.
fn counts(plan: &Plan, plans: &[Plan]) -> bool {
    plan.ret_ty().is_any_array() || allocates(plan) || plan.calls.values().any(|t| returns_array(t, plans))
}

/// Whether a reachable instruction of `plan` is `array(n, fill)`.
pub fn allocates(plan: &Plan) -> bool {
    plan.proto.code.iter().enumerate().any(|(pc, ins)| {
        plan.states.get(pc).is_some_and(Option::is_some)
            && match ins {
                Instr::CallBuiltin { f: Builtin::Array, .. } => true,
                Instr::Call { .. } => matches!(plan.calls.get(&pc), Some(Target::Builtin(Builtin::Array))),
                _ => false,
            }
    })
}

/// Whether a call target returns an array.
fn returns_array(t: &Target, plans: &[Plan]) -> bool {
    match t {
        Target::Plan(j) => plans[*j].ret_ty().is_any_array(),
        Target::Spec(s) => s.ret.is_any_array(),
        Target::Builtin(_) => false,
    }
}

impl Lower<'_, '_> {
    /// `array(n, fill)`: the interpreter's errors for a negative or too large `n` (at this
    /// instruction), then a native array of `n` copies of `fill` (an int or a float: the
    /// element kind), with one count for the register it goes to.
    pub(super) fn new_array(&mut self, pc: usize, n: V, fill: V) -> Lowered<V> {
        let V::Int(n) = n else { return Err("internal: array() of a non-int length".into()) };
        let (bits, float) = match fill {
            V::Int(x) => (x, false),
            V::Float(x) => (self.b.ins().bitcast(I64, MemFlagsData::new(), x), true),
            _ => return Err("internal: array() of a non-number fill".into()),
        };
        let known = self.interval(n);
        if known.lo < 0 {
            let negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, n, 0);
            self.fail_if(negative, pc, status::ARRAY_NEGATIVE, None, None);
        }
        if known.hi > i128::from(MAX_ARRAY_LEN) {
            let huge = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, n, MAX_ARRAY_LEN);
            self.fail_if(huge, pc, status::ARRAY_ALLOC, Some(n), None);
        }
        let kind = self.iconst(i64::from(float));
        let own = self.call_helper(Helper::ArrayNew, &[kind, bits, n])[0];
        let failed = self.b.ins().icmp_imm_s(IntCC::Equal, own, 0);
        self.fail_if(failed, pc, status::ARRAY_ALLOC, Some(n), None);
        let ptr = self.b.ins().load(I64, MemFlagsData::trusted(), own, PTR_OFFSET);
        Ok(V::Arr { ptr, len: n, own, float })
    }

    /// `array([d0, ..., dk], fill)` (the shape a `T::Dims` register, `shape`): the interpreter's
    /// errors in its order, a negative dimension first (checked here, in order), then a shape
    /// whose size cannot be had (`mini_array_new_shaped`); then a native array of that shape,
    /// 1-D for one dimension, with one count for the register it goes to.
    pub(super) fn new_array_shaped(&mut self, pc: usize, shape: V, fill: V) -> Lowered<V> {
        let V::ArrN { dims, rank, .. } = shape else { return Err("internal: array() of a non-shape".into()) };
        let (bits, float) = match fill {
            V::Int(x) => (x, false),
            V::Float(x) => (self.b.ins().bitcast(I64, MemFlagsData::new(), x), true),
            _ => return Err("internal: array() of a non-number fill".into()),
        };
        let slot =
            self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8 * MAX_DIMS as u32, 3));
        let addr = self.b.ins().stack_addr(I64, slot, 0);
        for (k, d) in dims.iter().take(rank as usize).enumerate() {
            if self.interval(*d).lo < 0 {
                let negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, *d, 0);
                let k_value = self.iconst(k as i64);
                self.fail_if(negative, pc, status::ARRAY_DIM_NEGATIVE, Some(k_value), Some(*d));
            }
            self.b.ins().store(MemFlagsData::trusted(), *d, addr, 8 * k as i32);
        }
        let (kind, n) = (self.iconst(i64::from(float)), self.iconst(i64::from(rank)));
        let own = self.call_helper(Helper::ArrayNewShaped, &[kind, bits, addr, n])[0];
        let low = self.b.ins().band_imm_u(own, 1);
        self.fail_if(low, pc, status::ARRAY_SHAPE_ALLOC, Some(own), None);
        let ptr = self.b.ins().load(I64, MemFlagsData::trusted(), own, PTR_OFFSET);
        if rank == 1 {
            return Ok(V::Arr { ptr, len: dims[0], own, float });
        }
        let mut out = dims;
        for d in out.iter_mut().skip(rank as usize) {
            *d = ptr;
        }
        Ok(V::ArrN { ptr, dims: out, rank, float, own })
    }

    /// The constant an own word is known to be, if it is one.
    fn own_const(&self, own: CValue) -> Option<i64> {
        let dfg = &self.b.func.dfg;
        if let ValueDef::Result(inst, 0) = dfg.value_def(own)
            && let InstructionData::UnaryImm { opcode: Opcode::Iconst, imm } = dfg.insts[inst]
        {
            return Some(imm.bits());
        }
        None
    }

    /// Branches to a new block when `own` is a native header (not 0, even), returning that
    /// block and the one both paths continue in; `None` when `own` is known not to be one.
    fn if_native(&mut self, own: CValue) -> Option<(cranelift::prelude::Block, cranelift::prelude::Block)> {
        if self.own_const(own).is_some_and(|k| k == 0 || k & 1 == 1) {
            return None;
        }
        let nonzero = self.b.ins().icmp_imm_s(IntCC::NotEqual, own, 0);
        let low = self.b.ins().band_imm_u(own, 1);
        let even = self.b.ins().icmp_imm_s(IntCC::Equal, low, 0);
        let native = self.b.ins().band(nonzero, even);
        let then = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(native, then, &[], cont, &[]);
        self.b.seal_block(then);
        self.b.switch_to_block(then);
        Some((then, cont))
    }

    /// Whether reference counts at the instruction being lowered are changed inline (a test and
    /// a branch), not by a helper call: outside any instruction, and in a loop that makes no
    /// call (where a helper call would cost the loop its registers). Elsewhere the code runs
    /// once per call or per iteration of a loop that calls anyway, and an inline count costs
    /// more to compile than the call costs to run.
    fn counts_inline(&mut self) -> bool {
        let Some(pc) = self.now_pc else { return true };
        let plan: *const Plan = self.plan;
        let code = &self.plan.proto.code;
        let hot = self.hot.entry(plan).or_insert_with(|| {
            let mut hot = vec![false; code.len()];
            for (k, ins) in code.iter().enumerate() {
                if let Some(t) = ins.jump_target().map(|t| t as usize).filter(|t| *t <= k)
                    && !code[t..=k].iter().any(|i| matches!(i, Instr::Call { .. }))
                {
                    hot[t..=k].iter_mut().for_each(|h| *h = true);
                }
            }
            hot
        });
        hot.get(pc).copied().unwrap_or(true)
    }

    /// One more count on `own` when it is a native array.
    pub(super) fn retain(&mut self, own: CValue) {
        if self.own_const(own).is_some_and(|k| k == 0 || k & 1 == 1) {
            return;
        }
        if !self.counts_inline() {
            self.call_helper(Helper::ArrayRetain, &[own]);
            return;
        }
        let Some((_, cont)) = self.if_native(own) else { return };
        let flags = MemFlagsData::trusted();
        let count = self.b.ins().load(I64, flags, own, COUNT_OFFSET);
        let more = self.b.ins().iadd_imm_s(count, 1);
        self.b.ins().store(flags, more, own, COUNT_OFFSET);
        self.b.ins().jump(cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// One count less on `own` when it is a native array, freeing it at 0.
    pub(super) fn release(&mut self, own: CValue) {
        if self.own_const(own).is_some_and(|k| k == 0 || k & 1 == 1) {
            return;
        }
        if !self.counts_inline() {
            self.call_helper(Helper::ArrayRelease, &[own]);
            return;
        }
        let Some((_, cont)) = self.if_native(own) else { return };
        let flags = MemFlagsData::trusted();
        let count = self.b.ins().load(I64, flags, own, COUNT_OFFSET);
        let less = self.b.ins().iadd_imm_s(count, -1);
        self.b.ins().store(flags, less, own, COUNT_OFFSET);
        let free = self.b.create_block();
        self.b.ins().brif(less, cont, &[], free, &[]);
        self.b.seal_block(free);
        self.b.switch_to_block(free);
        self.call_helper(Helper::ArrayFree, &[own]);
        self.b.ins().jump(cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// At the entry of the plan's code (its function's, or an inlined copy's): every counted
    /// register starts empty.
    pub(super) fn clear_owned(&mut self) {
        for r in self.owned.regs.clone() {
            let zero = self.iconst(0);
            self.def(r, Kind::Own, zero);
        }
    }

    /// The old own word of register `r` before `put` writes it, when `r` is counted and may
    /// hold an array now: when the types before the instruction say it holds something else,
    /// every path here last put a non-array into it, which left its own word 0.
    pub(super) fn own_before_put(&mut self, r: Reg) -> Option<CValue> {
        if let Some(st) = self.now
            && matches!(st.get(r as usize), Some(T::Val(ty)) if !ty.is_any_array())
        {
            return None;
        }
        self.owned.holds(r).then(|| self.use_var(r, Kind::Own))
    }

    /// After `put` wrote `v` into a counted register: a value that is not an array leaves the
    /// register empty; then the old word's count is dropped (after the new one is in place).
    pub(super) fn after_put(&mut self, r: Reg, v: V, old: CValue) {
        if v.own().is_none() {
            let zero = self.iconst(0);
            self.def(r, Kind::Own, zero);
        }
        self.release(old);
    }

    /// A `return` of `v` in a counting plan: a jump to the plan's epilogue (made at the first
    /// one), which lets go of the registers once for every `return`, so that the code added
    /// stays linear in the function's size. False when the plan does not count.
    pub(super) fn return_through_epilogue(&mut self, v: V) -> bool {
        if !self.owned.counting {
            return false;
        }
        let ret = self.plan.ret_ty();
        let block = match self.epilogue {
            Some(block) => block,
            None => {
                let block = self.b.create_block();
                if ret != Ty::Nil {
                    for t in ret_types(ret) {
                        self.b.append_block_param(block, *t);
                    }
                }
                self.epilogue = Some(block);
                block
            }
        };
        let values = match (ret, v) {
            (Ty::Nil, _) => vec![],
            (_, V::Int(x) | V::Float(x) | V::Bool(x)) => vec![x],
            (_, V::Arr { .. } | V::ArrN { .. }) => self.parts_of(v),
            _ => self.zeros(ret),
        };
        let args: Vec<BlockArg> = values.into_iter().map(BlockArg::Value).collect();
        self.b.ins().jump(block, &args);
        true
    }

    /// The epilogue of the code just lowered, if a `return` made one: the returned array gets
    /// the result's count, every counted register lets go of its own, and the value is
    /// returned (or handed to the code after an inlined call).
    pub(super) fn finish_epilogue(&mut self) {
        let Some(block) = self.epilogue.take() else { return };
        self.b.switch_to_block(block);
        self.b.seal_block(block);
        let values = self.b.block_params(block).to_vec();
        if let Some(own) = returned(self.plan.ret_ty(), &values).own() {
            self.retain(own);
        }
        let mut owns = Vec::new();
        for r in self.owned.regs.clone() {
            let own = self.use_var(r, Kind::Own);
            if !self.own_const(own).is_some_and(|k| k == 0 || k & 1 == 1) {
                owns.push(own);
            }
        }
        if owns.len() <= EPILOGUE_INLINE_RELEASES {
            for own in owns {
                self.release(own);
            }
        } else {
            // one helper call: a test and a branch per register cost more to compile than the
            // call costs once per call of the function
            let size = 8 * owns.len() as u32;
            let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, 3));
            let addr = self.b.ins().stack_addr(I64, slot, 0);
            for (k, own) in owns.iter().enumerate() {
                self.b.ins().store(MemFlagsData::trusted(), *own, addr, 8 * k as i32);
            }
            let n = self.iconst(owns.len() as i64);
            self.call_helper(Helper::ArrayReleaseAll, &[addr, n]);
        }
        self.return_value(&values);
    }
}
