//! Lowering arrays of several dimensions: a compiled function receives such an array as its
//! data pointer followed by its dimensions (row-major, so the strides follow), and `a[i, j]`
//! checks each index against its dimension, with the interpreter's error naming the
//! dimension, before one load or store at `((i * d1) + j) * 8`. In the fast copy of a versioned
//! loop (versions.rs) the checks that the test before the loop covered are left out.

use super::{BOUNDS_CHECKED, I64, Kind, Lower, Lowered, Named, V};
use crate::builtin::Builtin;
use crate::bytecode::{Instr, Reg};
use crate::jit::infer::T;
use crate::jit::runtime::status;
use crate::jit::types::Ty;
use crate::value::{ArrayObj, ElemKind, MAX_DIMS};
use cranelift::prelude::{InstBuilder, IntCC, MemFlagsData, Type, Value as CValue, types};

/// The dimensions of an array in native code (the first `rank` of them are used).
pub(super) type Dims = [CValue; MAX_DIMS];

/// The machine parameters of an array of `rank` dimensions: the data pointer, each dimension,
/// and the own word (jit/alloc.rs).
pub(super) fn param_types(rank: u8) -> &'static [Type] {
    const P: [Type; MAX_DIMS + 2] = [I64; MAX_DIMS + 2];
    &P[..rank as usize + 2]
}

/// The array of type `t` from its parameters (the pointer, the dimensions, the own word).
pub(super) fn from_params(t: Ty, params: &[CValue]) -> V {
    let mut dims = [params[0]; MAX_DIMS];
    dims[..t.rank()].copy_from_slice(&params[1..=t.rank()]);
    let own = params[t.rank() + 1];
    V::ArrN { ptr: params[0], dims, rank: t.rank() as u8, float: t.element() == Ty::Float, own }
}

/// How many instructions back an index's register is traced to the `Move` that filled it
/// (the compiler writes each index just before the access; a longer index expression is simply
/// not traced).
const TRACE_BACK: usize = 16;

/// The largest constant offset `i + c` (or `i - c`) an index may add to its source and still have
/// its check made before a versioned loop: small enough that the tests `stop <= d - c` and
/// `start >= -c` need no overflow check (a dimension is at most 2^31).
const MAX_OFFSET: i64 = 1 << 20;

/// Where an index's value comes from: register `reg` plus the constant `offset`.
pub(super) type Source = (Reg, i64);

impl<'a, 'f> Lower<'a, 'f> {
    /// Register `r`, an array of type `t` of several dimensions (or dimensions only, with no
    /// own word, when `array` is false: `shape(a)` or a shape literal).
    pub(super) fn get_array_n(&mut self, r: Reg, t: Ty, array: bool) -> V {
        let ptr = self.use_var(r, Kind::Ptr);
        let mut dims = [ptr; MAX_DIMS];
        for (k, d) in dims.iter_mut().enumerate().take(t.rank()) {
            *d = self.use_var(r, Kind::Dim(k as u8));
        }
        let own = if array { self.use_var(r, Kind::Own) } else { self.iconst(0) };
        V::ArrN { ptr, dims, rank: t.rank() as u8, float: t.element() == Ty::Float, own }
    }

    /// `R[a] := [R[b], ..., R[b+n-1]]`, the ints of an `array` call's shape (`T::Dims`): kept
    /// as the dimensions of an array are, for `new_array_shaped`.
    pub(super) fn shape_literal(&mut self, st: &[T], a: Reg, b: Reg, n: u8) -> Lowered<()> {
        let zero = self.iconst(0);
        let mut dims = [zero; MAX_DIMS];
        for k in 0..n {
            let V::Int(d) = self.get(st, b + k as Reg)? else { return Err("internal: a non-int dimension".into()) };
            dims[k as usize] = d;
        }
        self.put(a, V::ArrN { ptr: zero, dims, rank: n, float: false, own: zero });
        Ok(())
    }

    /// `shape(a)[k]`: dimension `k`, after the list's bounds check (`index 2 out of range for
    /// list of length 2`); a constant `k` picks it directly.
    pub(super) fn shape_index(&mut self, pc: usize, dims: V, k: V) -> Lowered<V> {
        let (V::ArrN { dims, rank, .. }, V::Int(k)) = (dims, k) else {
            return Err("internal: shape() of a non-array".into());
        };
        let rank = rank as usize;
        let known = self.interval(k);
        if known.lo == known.hi && (0..rank as i128).contains(&known.lo) {
            return Ok(V::Int(dims[known.lo as usize]));
        }
        let len = self.iconst(rank as i64);
        let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, k, len);
        self.fail_unless(inside, pc, status::LIST_INDEX, Some(k), Some(len));
        let mut v = dims[0];
        for (j, d) in dims.iter().enumerate().take(rank).skip(1) {
            let is = self.b.ins().icmp_imm_s(IntCC::Equal, k, j as i64);
            v = self.b.ins().select(is, *d, v);
        }
        Ok(V::Int(v))
    }

    /// A global array of several dimensions, a constant of the code (kept alive by the
    /// specialization's pins): its pointer and dimensions as constants.
    pub(super) fn constant_array_n(&mut self, g: u16, a: &std::rc::Rc<ArrayObj>) -> V {
        let ptr = self.address(a.data.as_ptr() as usize, Named::ArrayData(g));
        let mut dims = [ptr; MAX_DIMS];
        for (k, d) in a.dims.iter().enumerate() {
            dims[k] = self.iconst(*d as i64);
        }
        let own = self.address(crate::jit::alloc::interpreter_own(a) as usize, Named::ArrayOwn(g));
        V::ArrN { ptr, dims, rank: a.dims.len() as u8, float: a.kind == ElemKind::Float, own }
    }

    /// `sum(a)` and `x in a` of an array of several dimensions: as of the 1-D array of all its
    /// elements in row-major order, which is what the interpreter does.
    pub(super) fn whole_array_n(&mut self, pc: usize, f: Builtin, arr: V, rest: &[V]) -> Lowered<V> {
        let V::ArrN { ptr, dims, rank, float, .. } = arr else { return Err("internal: not an array".into()) };
        let mut len = dims[0];
        for d in &dims[1..rank as usize] {
            len = self.b.ins().imul(len, *d);
        }
        match (f, rest) {
            (Builtin::Sum, []) => Ok(self.sum_array(pc, ptr, len, float)),
            (Builtin::In, [x]) => self.array_has(ptr, len, float, *x),
            _ => Err(format!("internal: {} of an array of several dimensions", f.name())),
        }
    }

    /// The truth of an array of several dimensions: whether no dimension is 0.
    pub(super) fn has_elements(&mut self, dims: &[CValue]) -> CValue {
        let mut all = self.b.ins().iconst(types::I8, 1);
        for d in dims {
            let nonzero = self.b.ins().icmp_imm_s(IntCC::NotEqual, *d, 0);
            all = self.b.ins().band(all, nonzero);
        }
        all
    }

    /// `R[a] := R[b][R[c], ..., R[c+n-1]]`
    pub(super) fn get_index_n(&mut self, pc: usize, st: &[T], a: Reg, b: Reg, c: Reg, n: u8) -> Lowered<()> {
        let arr = self.get(st, b)?;
        let (addr, float) = self.element_n(pc, st, arr, b, c, n)?;
        let v = if float {
            V::Float(self.b.ins().load(types::F64, MemFlagsData::trusted(), addr, 0))
        } else {
            V::Int(self.b.ins().load(I64, MemFlagsData::trusted(), addr, 0))
        };
        self.put(a, v);
        Ok(())
    }

    /// `R[a][R[b], ..., R[b+n-1]] := R[c]` (an int stored into a float array is converted).
    pub(super) fn set_index_n(&mut self, pc: usize, st: &[T], a: Reg, b: Reg, c: Reg, n: u8) -> Lowered<()> {
        let (arr, v) = (self.get(st, a)?, self.get(st, c)?);
        let (addr, float) = self.element_n(pc, st, arr, a, b, n)?;
        let x = match v {
            V::Int(x) if float => self.b.ins().fcvt_from_sint(types::F64, x),
            V::Int(x) | V::Float(x) => x,
            _ => return Err("internal: storing a non-number".into()),
        };
        self.b.ins().store(MemFlagsData::trusted(), x, addr, 0);
        Ok(())
    }

    /// The address of element `R[c], ..., R[c+n-1]` of the array `arr` (in register `arr_reg`),
    /// after checking each index against its dimension, in order, unless the test before a
    /// versioned loop did.
    fn element_n(&mut self, pc: usize, st: &[T], arr: V, arr_reg: Reg, c: Reg, n: u8) -> Lowered<(CValue, bool)> {
        let V::ArrN { ptr, dims, rank, float, .. } = arr else { return Err("internal: indexing a non-array".into()) };
        if rank != n {
            return Err("internal: an index count that inference refused".into());
        }
        let mut pos: Option<CValue> = None;
        for k in 0..n {
            let V::Int(i) = self.get(st, c + k)? else { return Err("internal: a non-int index".into()) };
            let d = dims[k as usize];
            let source = self.index_source(pc, c + k);
            let hoisted = self
                .assumed
                .as_ref()
                .is_some_and(|a| a.scope == self.scope && a.unchecked_dims.contains(&(arr_reg, k, source)));
            // one check per index and dimension in a straight run (`a[i, j] += x` checks once)
            if !hoisted && self.checked.insert((BOUNDS_CHECKED, i, d), i).is_none() {
                let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, i, d);
                self.fail_unless(inside, pc, status::INDEX_DIM + k as i64, Some(i), Some(d));
            }
            // every index is below its dimension and the product of the dimensions is at most
            // 2^31, so this neither overflows nor leaves the buffer
            pos = Some(match pos {
                None => i,
                Some(p) => {
                    let scaled = self.b.ins().imul(p, d);
                    self.b.ins().iadd(scaled, i)
                }
            });
        }
        let pos = pos.ok_or("internal: no index")?;
        let offset = self.b.ins().ishl_imm_u(pos, 3);
        Ok((self.b.ins().iadd(ptr, offset), float))
    }

    /// What index register `r` holds at instruction `pc`: the source of the `Move` that filled
    /// it in the same straight run (no jump lands in between, and the source is not written
    /// between the move and `pc`), or of the `i + c` or `i - c` with a small int constant `c`
    /// that computed it (with that offset), else `r` itself. Loop versioning tests that source
    /// before the loop, as it tests the index of a 1-D access.
    pub(super) fn index_source(&self, pc: usize, r: Reg) -> Source {
        let code = &self.plan.proto.code;
        let mut written_since: Vec<Reg> = Vec::new();
        for j in (pc.saturating_sub(TRACE_BACK)..pc).rev() {
            if self.blocks.contains_key(&(j + 1)) {
                return (r, 0);
            }
            let ins = code[j];
            if ins.overwrites(r) {
                let traced = match ins {
                    Instr::Move { b, .. } => Some((b, 0)),
                    Instr::AddK { b, k, .. } => self.small_int(k).map(|c| (b, c)),
                    Instr::SubK { b, k, .. } => self.small_int(k).map(|c| (b, -c)),
                    _ => None,
                };
                return traced.filter(|(b, _)| !written_since.contains(b)).unwrap_or((r, 0));
            }
            match ins.writes() {
                crate::bytecode::Writes::One(a) => written_since.push(a),
                crate::bytecode::Writes::Nothing => {}
                _ => return (r, 0),
            }
        }
        (r, 0)
    }

    /// Constant `k` when it is an int of at most [`MAX_OFFSET`] in size.
    fn small_int(&self, k: u16) -> Option<i64> {
        match self.plan.proto.consts.get(k as usize) {
            Some(crate::value::Value::Int(c)) if c.abs() <= MAX_OFFSET => Some(*c),
            _ => None,
        }
    }

    /// The accesses of the instruction at `pc` (in the body of the counted loop with variable
    /// `var`) that the test before a versioned loop can check: `(array, dimension, index
    /// source)` for an array of several dimensions the loop never writes, indexed by the loop
    /// variable or by an int register the loop never writes.
    pub(super) fn checks_n(
        &self,
        pc: usize,
        st: &[T],
        var: Reg,
        written: &dyn Fn(Reg) -> bool,
    ) -> Vec<(Reg, u8, Source)> {
        let (arr, c, n) = match self.plan.proto.code[pc] {
            Instr::GetIndexN { b, c, n, .. } => (b, c, n),
            Instr::SetIndexN { a, b, n, .. } => (a, b, n),
            _ => return Vec::new(),
        };
        if !matches!(st[arr as usize], T::Val(t) if t.rank() == n as usize) || written(arr) {
            return Vec::new();
        }
        let mut found = Vec::new();
        for k in 0..n {
            let source = self.index_source(pc, c + k);
            let reg = source.0;
            let invariant = !written(reg) && st[reg as usize] == T::Val(Ty::Int);
            if (reg == var && !written(var)) || invariant {
                found.push((arr, k, source));
            }
        }
        found
    }

    /// The test of one hoisted index before a versioned loop: its source plus its offset is in
    /// range of dimension `k` of the array at every iteration. For the loop variable that is
    /// `start + c >= 0` and `stop + c <= d`, tested as `start >= -c` (the caller tests
    /// `start >= 0` once) and `stop <= d - c`, which cannot overflow; for a register the loop
    /// never writes, `i + c` (wrapping, so that an overflow gives a huge unsigned value) below
    /// `d` as an unsigned number.
    pub(super) fn test_dim(
        &mut self,
        st: &[T],
        check: (Reg, u8, Source),
        var: Reg,
        range: (CValue, CValue),
    ) -> Lowered<CValue> {
        let (arr, k, (source, offset)) = check;
        let (start, stop) = range;
        let V::ArrN { dims, .. } = self.get(st, arr)? else { return Err("internal: not an array".into()) };
        let d = dims[k as usize];
        if source == var {
            let limit = self.b.ins().iadd_imm_s(d, -offset);
            let below = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, stop, limit);
            if offset >= 0 {
                return Ok(below);
            }
            let above = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, start, -offset);
            return Ok(self.b.ins().band(below, above));
        }
        let V::Int(i) = self.get(st, source)? else { return Err("internal: index not an int".into()) };
        let at = self.b.ins().iadd_imm_s(i, offset);
        Ok(self.b.ins().icmp(IntCC::UnsignedLessThan, at, d))
    }
}
