//! Lowering of functions passed as arguments (`Ty::Func`, jit/funcargs.rs). A function without
//! captured variables is known from the signature and needs nothing at run time (`V::Func`). A
//! closure whose captured variables never change carries their values, read once per call:
//! `V::Closure(i)` names them in `Lower::closure_vals`; a register holding it keeps each part
//! of each value in a variable of its own (`Kind::Cap`), so it survives moves, merges and
//! loops; a call of it passes them after the arguments, where the closure's plan reads them
//! with `GetUpval` (`Lower::upvals`).

use super::{F64, I8, Kind, Lower, V, param_types};
use crate::bytecode::Reg;
use crate::jit::types::{FnKey, Ty};
use cranelift::prelude::Value as CValue;
use cranelift::prelude::{FunctionBuilder, Type};

/// The `Kind::Cap` type code of a machine type.
fn type_code(t: Type) -> u8 {
    if t == F64 {
        1
    } else if t == I8 {
        2
    } else {
        0
    }
}

impl<'a, 'f> Lower<'a, 'f> {
    /// The value of type `t` made of the machine values `parts` (a parameter, or captured values).
    pub(super) fn value_of_parts(&mut self, t: Ty, parts: &[CValue]) -> V {
        match t {
            Ty::Int => V::Int(parts[0]),
            Ty::Float => V::Float(parts[0]),
            Ty::Bool => V::Bool(parts[0]),
            Ty::FloatArray | Ty::IntArray => {
                V::Arr { ptr: parts[0], len: parts[1], own: parts[2], float: t == Ty::FloatArray }
            }
            Ty::FloatArrayN(_) | Ty::IntArrayN(_) => super::ndarray::from_params(t, parts),
            Ty::Num => V::Num { bits: parts[0], tag: parts[1], float: None },
            Ty::Func(key) if !key.captures.is_empty() => {
                let mut vals = Vec::with_capacity(key.captures.len());
                let mut p = 0;
                for c in key.captures.iter() {
                    let n = param_types(*c).len();
                    vals.push(self.value_of_parts(*c, &parts[p..p + n]));
                    p += n;
                }
                self.closure_vals.push(vals);
                V::Closure(self.closure_vals.len() - 1)
            }
            Ty::Func(_) => V::Func,
            Ty::Builtin(_) => V::Builtin,
            Ty::Nil | Ty::Other(_) => V::Nil,
        }
    }

    /// The machine values of `v`, as a call passes it (the inverse of `value_of_parts`).
    pub(super) fn parts_of(&self, v: V) -> Vec<CValue> {
        match v {
            V::Int(x) | V::Float(x) | V::Bool(x) => vec![x],
            V::Arr { ptr, len, own, .. } => vec![ptr, len, own],
            V::ArrN { ptr, dims, rank, own, .. } => {
                std::iter::once(ptr).chain(dims[..rank as usize].iter().copied()).chain([own]).collect()
            }
            V::Num { tag, bits, .. } => vec![bits, tag],
            V::Closure(i) => self.closure_vals[i].iter().flat_map(|c| self.parts_of(*c)).collect(),
            V::Nil | V::Func | V::Builtin => Vec::new(),
        }
    }

    /// Register `r` holds the closure `closure_vals[i]`: its captured values' parts go to the
    /// register's `Kind::Cap` variables.
    pub(super) fn put_closure(&mut self, r: Reg, i: usize) {
        let vals = self.closure_vals[i].clone();
        for (u, v) in vals.into_iter().enumerate() {
            for (part, x) in self.parts_of(v).into_iter().enumerate() {
                let ty = type_code(value_type(&self.b, x));
                self.def(r, Kind::Cap { u: u as u8, part: part as u8, ty }, x);
            }
        }
    }

    /// The closure register `r` holds, of key `key` (with captured values).
    pub(super) fn get_closure(&mut self, r: Reg, key: &FnKey) -> V {
        let mut vals = Vec::with_capacity(key.captures.len());
        for (u, t) in key.captures.iter().enumerate() {
            let parts: Vec<CValue> = param_types(*t)
                .iter()
                .enumerate()
                .map(|(part, ty)| self.use_var(r, Kind::Cap { u: u as u8, part: part as u8, ty: type_code(*ty) }))
                .collect();
            vals.push(self.value_of_parts(*t, &parts));
        }
        self.closure_vals.push(vals);
        V::Closure(self.closure_vals.len() - 1)
    }
}

/// The machine type of a value being built.
fn value_type(b: &FunctionBuilder, x: CValue) -> Type {
    b.func.dfg.value_type(x)
}
