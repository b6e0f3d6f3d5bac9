//! Loop versioning: an innermost counted loop is lowered twice, a fast copy that leaves out the
//! checks its `Assumed` facts make impossible and the ordinary copy, with one test before the
//! loop choosing between them; and `Loops`, which says when a block's predecessors are known.

use super::{I8, Lower, Lowered, V};
use crate::bytecode::{Instr, Reg, Writes};
use crate::jit::infer::T;
use crate::jit::interval::Interval;
use crate::jit::types::Ty;
use cranelift::prelude::{FunctionBuilder, InstBuilder, IntCC, Value as CValue};
use std::collections::{BTreeSet, HashMap};

/// The fast copy of a versioned loop may assume that the int registers it reads but never
/// writes, its loop variable included, lie within `-INTERVAL_LIMIT..=INTERVAL_LIMIT` (or
/// `0..=INTERVAL_LIMIT` when known to be non-negative): then `(i + j) * (i + j + 1)` cannot
/// overflow. Loops over more than 2^30 values run the checked copy.
const INTERVAL_LIMIT: i64 = 1 << 30;

/// The fast copy of a versioned loop may assume at least this much recursion room: its calls
/// (and the calls inlined into them) need no depth check.
pub(super) const ROOM_ASSUMED: i64 = 16;

/// What the fast copy of a versioned loop may assume; one test before the loop establishes it.
pub(super) struct Assumed {
    /// The inlining scope of the loop's registers.
    pub(super) scope: u32,
    /// The accesses `(array, index)` that are in range.
    pub(super) unchecked: Vec<(Reg, Reg)>,
    /// The indexes into arrays of several dimensions `(array, dimension, index source)` that
    /// are in range (see `Lower::index_source`).
    pub(super) unchecked_dims: Vec<(Reg, u8, super::ndarray::Source)>,
    /// The intervals of the int registers the loop never writes, and of its variable.
    pub(super) regs: HashMap<Reg, Interval>,
    /// Those of `regs` the fast copy read: only they are tested.
    pub(super) read: BTreeSet<Reg>,
    /// The recursion room, assumed to be at least [`ROOM_ASSUMED`], and whether the fast
    /// copy relied on it.
    pub(super) room: CValue,
    pub(super) room_used: bool,
}

/// The bounds checks the test before a versioned loop covers: accesses `(array, index)` of
/// 1-D arrays, and indexes `(array, dimension, (index source, offset))` of arrays of several
/// dimensions.
#[derive(Default)]
pub(super) struct Checks {
    one: Vec<(Reg, Reg)>,
    dims: Vec<(Reg, u8, super::ndarray::Source)>,
}

impl<'a, 'f> Lower<'a, 'f> {
    /// A counted loop (at its `ForPrep`) worth lowering twice: an innermost loop with a
    /// constant positive step, without jumps out of it or native calls (inlined calls are
    /// fine), that checks array accesses, int arithmetic or recursion depth. Returns the `ForLoop`'s index and the accesses
    /// `(array register, index register)` that one test before the loop can check: indexed by
    /// the loop variable (in range when `start >= 0` and `stop <= len`) or by a register the
    /// loop never writes.
    pub(super) fn versionable(&self, p: usize) -> Option<(usize, Checks)> {
        let code = &self.plan.proto.code;
        let Instr::ForPrep { a, t } = code[p] else { return None };
        let end = (t as usize).checked_sub(1)?;
        if !matches!(code.get(end), Some(Instr::ForLoop { a: la, t: back }) if *la == a && *back as usize == p + 1) {
            return None;
        }
        if self.plan.const_int_before(p, a + 2).is_none_or(|step| step <= 0) {
            return None;
        }
        let body = p + 1..end;
        let nested = code[body.clone()].iter().any(|i| matches!(i, Instr::ForPrep { .. } | Instr::IterPrep { .. }));
        let escapes = code[body.clone()]
            .iter()
            .enumerate()
            .any(|(k, i)| i.jump_target().is_some_and(|t| (t as usize) <= p + k + 1 || (t as usize) > end + 1));
        if nested || escapes {
            return None;
        }
        let written_regs = written_in(&code[body.clone()]);
        let written = |r: Reg| written_regs[r as usize];
        let st = self.plan.states[p].as_ref()?;
        let is_array = |r: Reg| matches!(st[r as usize], T::Val(Ty::FloatArray | Ty::IntArray));
        let mut checks = Vec::new();
        let mut dims = Vec::new();
        let mut checked_ops = false;
        for pc in body.clone() {
            let Some(here) = &self.plan.states[pc] else { continue };
            let int = |r: Reg| here[r as usize] == T::Val(Ty::Int);
            let (arr, idx) = match code[pc] {
                Instr::GetIndex { b, c, .. } => (b, c),
                Instr::SetIndex { a: arr, b: idx, .. } => (arr, idx),
                Instr::Call { .. } => {
                    if self.reaches_native_call(self.plan, pc, self.inlined_from.len(), &mut Vec::new()) {
                        return None;
                    }
                    checked_ops = true;
                    continue;
                }
                Instr::GetIndexN { .. } | Instr::SetIndexN { .. } => {
                    for check in self.checks_n(pc, st, a + 3, &written) {
                        if !dims.contains(&check) {
                            dims.push(check);
                        }
                    }
                    continue;
                }
                Instr::Add { b, c, .. }
                | Instr::Sub { b, c, .. }
                | Instr::Mul { b, c, .. }
                | Instr::Div { b, c, .. }
                | Instr::FloorDiv { b, c, .. }
                | Instr::Mod { b, c, .. } => {
                    checked_ops |= int(b) && int(c) || matches!(code[pc], Instr::Div { .. }) && int(c);
                    continue;
                }
                Instr::AddK { b, .. } | Instr::SubK { b, .. } | Instr::MulK { b, .. } | Instr::KMul { b, .. } => {
                    checked_ops |= int(b) && !self.plan.no_overflow.contains(&pc);
                    continue;
                }
                Instr::KAdd { b, .. } | Instr::KSub { b, .. } | Instr::KDiv { b, .. } => {
                    checked_ops |= int(b);
                    continue;
                }
                _ => continue,
            };
            if !is_array(arr) || written(arr) || written(idx) {
                continue;
            }
            let loop_var = idx == a + 3;
            if (loop_var || st[idx as usize] == T::Val(Ty::Int)) && !checks.contains(&(arr, idx)) {
                checks.push((arr, idx));
            }
        }
        let any = checked_ops || !checks.is_empty() || !dims.is_empty();
        any.then_some((end, Checks { one: checks, dims }))
    }

    /// Loop versioning: after the `ForPrep` at `p`, one test chooses between a fast copy of the
    /// loop and the ordinary copy (which raises any error at the right iteration). The fast
    /// copy leaves out the bounds checks of `checks`, and the overflow, division and depth
    /// checks that the intervals of [`Assumed`] make impossible. It is lowered first, so that
    /// the test only covers the registers it read.
    pub(super) fn versioned_loop(
        &mut self,
        p: usize,
        end: usize,
        checks: &Checks,
        st: &[T],
        loops: &Loops,
    ) -> Lowered<()> {
        let Instr::ForPrep { a, .. } = self.plan.proto.code[p] else { return Err("internal: not a ForPrep".into()) };
        let (start, stop, _) = self.range_start(p, st, a)?;
        let more = self.b.ins().icmp(IntCC::SignedLessThan, start, stop);
        let dispatch = self.b.create_block();
        let exit = self.block(end + 1)?;
        self.b.ins().brif(more, dispatch, &[], exit, &[]);
        self.b.seal_block(dispatch);
        let mut fast_blocks = self.blocks.clone();
        for pc in p + 1..=end {
            if self.blocks.contains_key(&pc) {
                let fresh = self.b.create_block();
                fast_blocks.insert(pc, fresh);
            }
        }
        let fast_entry = fast_blocks[&(p + 1)];
        let slow_entry = self.block(p + 1)?;
        let assumed = self.assumptions(p, end, st, checks);
        let saved = (self.assumed.replace(assumed), self.intervals.clone(), self.unsealed.replace(fast_entry));
        let slow_blocks = std::mem::replace(&mut self.blocks, fast_blocks);
        let fast = self.lower_pcs(p + 1, end + 1, loops, true);
        self.blocks = slow_blocks;
        let assumed = std::mem::replace(&mut self.assumed, saved.0).expect("set above");
        (self.intervals, self.unsealed) = (saved.1, saved.2);
        fast?;
        self.b.switch_to_block(dispatch);
        let ok = self.test_assumptions(&assumed, st, a, (start, stop))?;
        self.b.ins().brif(ok, fast_entry, &[], slow_entry, &[]);
        self.b.seal_block(fast_entry);
        self.lower_pcs(p + 1, end + 1, loops, true)?;
        Ok(())
    }

    /// What the fast copy of the loop `p..=end` may assume once tested.
    fn assumptions(&self, p: usize, end: usize, st: &[T], checks: &Checks) -> Assumed {
        let Instr::ForPrep { a, .. } = self.plan.proto.code[p] else { unreachable!("a versionable loop") };
        let code = &self.plan.proto.code;
        let floors: HashMap<Reg, i64> =
            self.plan.floors_at_loops.get(&p).map(|f| f.iter().copied().collect()).unwrap_or_default();
        let low = |r: Reg| floors.get(&r).copied().filter(|f| *f >= 0).unwrap_or(-INTERVAL_LIMIT);
        let written = written_in(&code[p + 1..end]);
        let mut regs = HashMap::new();
        for (r, t) in st.iter().enumerate() {
            let loop_reg = (a as usize..=a as usize + 3).contains(&r);
            if *t == T::Val(Ty::Int) && !loop_reg && !written[r] {
                regs.insert(r as Reg, Interval::new(low(r as Reg).min(INTERVAL_LIMIT), INTERVAL_LIMIT));
            }
        }
        if !written[a as usize + 3] {
            regs.insert(a + 3, Interval::new(low(a).min(INTERVAL_LIMIT), INTERVAL_LIMIT - 1));
        }
        Assumed {
            scope: self.scope,
            unchecked: checks.one.clone(),
            unchecked_dims: checks.dims.clone(),
            regs,
            read: BTreeSet::new(),
            room: self.room.expect("set in the entry block"),
            room_used: false,
        }
    }

    /// The test before a versioned loop (in the current block): true when everything the
    /// fast copy assumed holds. `range` is the loop's start and stop.
    fn test_assumptions(&mut self, assumed: &Assumed, st: &[T], a: Reg, range: (CValue, CValue)) -> Lowered<CValue> {
        let (start, stop) = range;
        let mut ok = self.b.ins().iconst(I8, 1);
        let mut all = |b: &mut FunctionBuilder, c: CValue| ok = b.ins().band(ok, c);
        if !assumed.unchecked.is_empty() || !assumed.unchecked_dims.is_empty() {
            let c = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, start, 0);
            all(&mut self.b, c);
        }
        for &check in &assumed.unchecked_dims {
            let c = self.test_dim(st, check, a + 3, (start, stop))?;
            all(&mut self.b, c);
        }
        // the arrays' lengths, grouped by index, meet one compare with their minimum: an
        // array's length never changes, so the minimum is loop-invariant and Cranelift computes
        // it once before an enclosing loop (nbody's 7 arrays indexed by `i` and by `j` had 14
        // compares at each of the inner loop's entries; `i < n` for every `n` is `i < min(n)`)
        let mut by_index: Vec<(Reg, CValue)> = Vec::new();
        for &(arr, idx) in &assumed.unchecked {
            let V::Arr { len, .. } = self.get(st, arr)? else { return Err("internal: not an array".into()) };
            match by_index.iter_mut().find(|(r, _)| *r == idx) {
                // lengths are non-negative: the signed and the unsigned minimum agree
                Some((_, min)) => *min = self.b.ins().umin(*min, len),
                None => by_index.push((idx, len)),
            }
        }
        for (idx, min) in by_index {
            let c = if idx == a + 3 {
                self.b.ins().icmp(IntCC::SignedLessThanOrEqual, stop, min)
            } else {
                let V::Int(i) = self.get(st, idx)? else { return Err("internal: index not an int".into()) };
                self.b.ins().icmp(IntCC::UnsignedLessThan, i, min)
            };
            all(&mut self.b, c);
        }
        for &r in &assumed.read {
            let interval = assumed.regs[&r];
            let (lo, hi) = (interval.lo as i64, interval.hi as i64);
            // the loop variable runs from start to stop - 1
            let (low_end, high_end) = if r == a + 3 {
                (start, stop)
            } else {
                let V::Int(v) = self.get(st, r)? else { return Err("internal: not an int".into()) };
                (v, v)
            };
            let high = if r == a + 3 { hi + 1 } else { hi };
            let c = self.b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, high_end, high);
            all(&mut self.b, c);
            if lo < 0 {
                let c = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, low_end, lo);
                all(&mut self.b, c);
            }
        }
        if assumed.room_used {
            let c = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, assumed.room, ROOM_ASSUMED);
            all(&mut self.b, c);
        }
        Ok(ok)
    }
}

/// The registers some instruction of `code` writes (one pass, so that asking about every
/// register of a long loop body stays linear).
fn written_in(code: &[Instr]) -> [bool; 256] {
    let mut written = [false; 256];
    for ins in code {
        match ins.writes() {
            Writes::Nothing => {}
            Writes::One(a) => written[a as usize] = true,
            Writes::Two(a, b) => {
                written[a as usize] = true;
                written[b as usize] = true;
            }
            Writes::From(a) => written[a as usize..].fill(true),
            Writes::Window(a, n) => written[a as usize..a as usize + n as usize].fill(true),
        }
    }
    written
}

/// The loops of a function's bytecode, for sealing blocks as soon as their predecessors are
/// known: a block entered only from earlier instructions when it is reached, a loop header
/// once its last back-edge has been lowered. Sealing early lets the SSA builder see that a
/// value unchanged around a loop needs no block parameter.
pub(super) struct Loops {
    /// Whether a back-edge jumps to the instruction.
    pub(super) is_header: Vec<bool>,
    /// The loop header whose last back-edge is the instruction.
    pub(super) closes: Vec<Option<usize>>,
}

impl Loops {
    pub(super) fn new(code: &[Instr]) -> Loops {
        let mut last_back_edge = vec![None; code.len()];
        for (pc, ins) in code.iter().enumerate() {
            if let Some(t) = ins.jump_target().filter(|_| ins.is_back_edge(pc)) {
                last_back_edge[t as usize] = Some(pc);
            }
        }
        let mut closes = vec![None; code.len()];
        for (header, last) in last_back_edge.iter().enumerate() {
            if let Some(pc) = last {
                closes[*pc] = Some(header);
            }
        }
        Loops { is_header: last_back_edge.iter().map(Option::is_some).collect(), closes }
    }
}
