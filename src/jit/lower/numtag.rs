//! Lowering of `Ty::Num`, a register that holds an int on some paths and a float on others
//! (`let s = 0` and then `s += x[i]`), as numba unifies them, but with the interpreter's
//! results: the value is 64 bits (an int's, or a float's bits) with a tag next to it (1 for a
//! float). An operation whose result does not depend on the kind (`num + float` is always a
//! float, `num / x` too, truthiness) converts with a `select` on the tag; the others branch on
//! the tag and do the int operation (with its overflow check) on one side and the float one
//! on the other, merging into a tagged result again. So in the usual loop only the loop
//! header's merge and the return see the tag, and the result is boxed back by its tag.
//!
//! Only registers that some instruction reads as `Ty::Num` (`Plan::num_regs`) keep the tagged
//! form: every write of them, as an int or a float, also defines their tag and bits, so that
//! the merge at a loop header or after an `if` finds them on every path, and their value as a
//! float (`Kind::NumFloat`): `s += x[i]` then reads that float directly, and the loop carries
//! no conversion (a sum starting at `0` runs as fast as one starting at `0.0`).

use super::{F64, I8, I64, Kind, Lower, Lowered, V};
use crate::jit::runtime::status;
use crate::jit::types::Ty;
use cranelift::codegen::ir::BlockArg;
use cranelift::prelude::{Block, Value as CValue};
use cranelift::prelude::{InstBuilder, IntCC, MemFlagsData};

/// What kind of value one side of a split produced.
#[derive(Clone, Copy, PartialEq)]
enum Got {
    Int,
    Float,
    Bool,
    Num,
}

/// Whether an operation on `args` must branch on a tag: one is an int or float and none is a
/// float (with a float, int or float alike convert to a float, and the result is a float).
pub fn needs_split(args: &[V]) -> bool {
    has_num(args) && !args.iter().any(|v| matches!(v, V::Float(_)))
}

/// Whether one of `args` is an int or float.
pub fn has_num(args: &[V]) -> bool {
    args.iter().any(|v| matches!(v, V::Num { .. }))
}

/// The operation a split applies to its arguments, once per kind of its tagged operand.
type SplitOp<'o, 'a, 'f> = dyn FnMut(&mut Lower<'a, 'f>, &[V]) -> Lowered<V> + 'o;

impl<'a, 'f> Lower<'a, 'f> {
    /// The float value of an int or float: the bits as a float, or the int converted.
    pub(super) fn num_float(&mut self, tag: CValue, bits: CValue) -> CValue {
        let as_float = self.b.ins().bitcast(F64, MemFlagsData::new(), bits);
        let converted = self.b.ins().fcvt_from_sint(F64, bits);
        self.b.ins().select(tag, as_float, converted)
    }

    /// The tag and bits of an int, a float, a bool (as an int: only a split's merge sees one)
    /// or an int or float.
    fn pack(&mut self, v: V) -> Lowered<(CValue, CValue)> {
        Ok(match v {
            V::Int(x) => (self.b.ins().iconst(I8, 0), x),
            V::Float(x) => (self.b.ins().iconst(I8, 1), self.b.ins().bitcast(I64, MemFlagsData::new(), x)),
            V::Bool(x) => (self.b.ins().iconst(I8, 0), self.b.ins().uextend(I64, x)),
            V::Num { tag, bits, .. } => (tag, bits),
            _ => return Err("internal: packing a non-number".into()),
        })
    }

    /// Defines register `r`'s tagged form from `v` (an int, a float, or an int or float); other
    /// values leave it alone (a register reused for a bool is never read as a number there).
    pub(super) fn put_num(&mut self, r: crate::bytecode::Reg, v: V) {
        if !matches!(v, V::Int(_) | V::Float(_) | V::Num { .. }) {
            return;
        }
        let Ok((tag, bits)) = self.pack(v) else { return };
        self.def(r, Kind::Tag, tag);
        self.def(r, Kind::Bits, bits);
        // the float form too, so that `s += x[i]` on it needs no `select` (an int's conversion
        // is left out by Cranelift when nothing reads it)
        let Ok(float) = self.as_float(v) else { return };
        self.def(r, Kind::NumFloat, float);
    }

    /// Applies `op` to `args`, where the first int or float is split by its tag: the int
    /// operation on one branch, the float one on the other (further tagged arguments split
    /// again inside), merged into one value. When both branches produce the same kind (a
    /// comparison's bool, a float), the result is of that kind; otherwise it is tagged.
    pub(super) fn split_num(&mut self, args: &[V], op: &mut SplitOp<'_, 'a, 'f>) -> Lowered<V> {
        let Some(at) = args.iter().position(|v| matches!(v, V::Num { .. })) else {
            return op(self, args);
        };
        let V::Num { tag, bits, .. } = args[at] else { unreachable!("found above") };
        let int_side = self.b.create_block();
        let float_side = self.b.create_block();
        let merge = self.b.create_block();
        let merged_tag = self.b.append_block_param(merge, I8);
        let merged_bits = self.b.append_block_param(merge, I64);
        self.b.ins().brif(tag, float_side, &[], int_side, &[]);
        self.b.seal_block(int_side);
        self.b.seal_block(float_side);
        let mut got = [Got::Num; 2];
        for (side, block) in [int_side, float_side].into_iter().enumerate() {
            self.b.switch_to_block(block);
            // a checked operation of one side does not dominate the other side or the merge
            self.checked.clear();
            let mut these = args.to_vec();
            these[at] =
                if side == 0 { V::Int(bits) } else { V::Float(self.b.ins().bitcast(F64, MemFlagsData::new(), bits)) };
            let v = self.split_num(&these, op)?;
            got[side] = kind_of(v);
            self.jump_packed(merge, v)?;
        }
        self.b.seal_block(merge);
        self.b.switch_to_block(merge);
        self.checked.clear();
        Ok(match got {
            [Got::Int, Got::Int] => V::Int(merged_bits),
            [Got::Float, Got::Float] => V::Float(self.b.ins().bitcast(F64, MemFlagsData::new(), merged_bits)),
            [Got::Bool, Got::Bool] => V::Bool(self.b.ins().ireduce(I8, merged_bits)),
            _ => V::Num { tag: merged_tag, bits: merged_bits, float: None },
        })
    }

    /// Jumps to `block` with `v`'s tag and bits.
    fn jump_packed(&mut self, block: Block, v: V) -> Lowered<()> {
        let (tag, bits) = self.pack(v)?;
        self.b.ins().jump(block, &[BlockArg::Value(tag), BlockArg::Value(bits)]);
        Ok(())
    }

    /// `cond ? a : b` for an int and a float (or tagged values): `min`/`max` of mixed kinds.
    pub(super) fn select_num(&mut self, cond: CValue, a: V, b: V) -> Lowered<V> {
        let (ta, xa) = self.pack(a)?;
        let (tb, xb) = self.pack(b)?;
        let tag = self.b.ins().select(cond, ta, tb);
        let bits = self.b.ins().select(cond, xa, xb);
        // the float form too (a running `max` over floats then carries no conversion)
        let (fa, fb) = (self.as_float(a)?, self.as_float(b)?);
        let float = Some(self.b.ins().select(cond, fa, fb));
        Ok(V::Num { tag, bits, float })
    }

    /// `-x`: an int (checked), a float, or either by its tag.
    pub(super) fn negate(&mut self, pc: usize, x: V) -> Lowered<V> {
        Ok(match x {
            V::Int(x) => {
                let min = self.b.ins().icmp_imm_s(IntCC::Equal, x, i64::MIN);
                self.fail_if(min, pc, status::OVERFLOW, None, None);
                V::Int(self.b.ins().ineg(x))
            }
            V::Float(x) => V::Float(self.b.ins().fneg(x)),
            V::Num { .. } => self.split_num(&[x], &mut |l, v| l.negate(pc, v[0]))?,
            _ => return Err("internal: negating a non-number".into()),
        })
    }

    /// Whether the code being lowered returns an int or float (its own function's result, or
    /// an inlined callee's).
    pub(super) fn returns_num(&self) -> bool {
        match self.ret_to {
            Some((_, t)) => t == Ty::Num,
            None => self.plan.ret_ty() == Ty::Num,
        }
    }

    /// `return v` from code that returns an int or float: the bits, and the tag (as the status
    /// of a real return: `FLOAT_RESULT` for a float).
    pub(super) fn return_num(&mut self, v: V) -> Lowered<()> {
        let (tag, bits) = self.pack(v)?;
        if let Some((cont, _)) = self.ret_to {
            self.b.ins().jump(cont, &[BlockArg::Value(bits), BlockArg::Value(tag)]);
            return Ok(());
        }
        let int_ok = self.b.ins().iconst(I64, status::OK);
        let float_ok = self.b.ins().iconst(I64, super::FLOAT_RESULT);
        let st = self.b.ins().select(tag, float_ok, int_ok);
        self.b.ins().return_(&[bits, st]);
        Ok(())
    }
}

/// The kind of a lowered number.
fn kind_of(v: V) -> Got {
    match v {
        V::Int(_) => Got::Int,
        V::Float(_) => Got::Float,
        V::Bool(_) => Got::Bool,
        _ => Got::Num,
    }
}
