//! The types the JIT specializes on: one argument's type (`Ty`) and a call's signature (`Sig`).

use crate::value::{ElemKind, Value};
use std::fmt;

/// The most parameters a compiled function may have.
pub const MAX_PARAMS: usize = 16;

/// The type of one value as the JIT sees it. `Other` names a type compiled code cannot use;
/// a signature may still hold it (the parameter may be unused), and inference refuses any use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Nil,
    Bool,
    Int,
    Float,
    FloatArray,
    IntArray,
    Other(&'static str),
    /// An array of several dimensions (2 to `MAX_DIMS`), of floats or ints: its rank is part of
    /// the type, so code compiled for a 2-D array never runs on a 1-D or 3-D one.
    FloatArrayN(u8),
    IntArrayN(u8),
}

impl Ty {
    /// The type of a runtime value.
    pub fn of(v: &Value) -> Ty {
        match v {
            Value::Nil => Ty::Nil,
            Value::Bool(_) => Ty::Bool,
            Value::Int(_) => Ty::Int,
            Value::Float(_) => Ty::Float,
            Value::Array(a) if !a.dims.is_empty() => Ty::array_n(a.kind == ElemKind::Float, a.rank()),
            Value::Array(a) if a.kind == ElemKind::Float => Ty::FloatArray,
            Value::Array(_) => Ty::IntArray,
            other => Ty::Other(other.type_name()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ty::Nil => "nil",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Float => "float",
            Ty::FloatArray => "float array",
            Ty::IntArray => "int array",
            Ty::Other(name) => name,
            Ty::FloatArrayN(2) => "2-D float array",
            Ty::FloatArrayN(3) => "3-D float array",
            Ty::FloatArrayN(4) => "4-D float array",
            Ty::FloatArrayN(_) => "float array of several dimensions",
            Ty::IntArrayN(2) => "2-D int array",
            Ty::IntArrayN(3) => "3-D int array",
            Ty::IntArrayN(4) => "4-D int array",
            Ty::IntArrayN(_) => "int array of several dimensions",
        }
    }

    /// The type of an array of `rank` (2 or more) dimensions.
    pub fn array_n(float: bool, rank: usize) -> Ty {
        if float { Ty::FloatArrayN(rank as u8) } else { Ty::IntArrayN(rank as u8) }
    }

    /// The number of dimensions of an array of several dimensions (0 for any other type).
    pub fn rank(self) -> usize {
        match self {
            Ty::FloatArrayN(r) | Ty::IntArrayN(r) => r as usize,
            _ => 0,
        }
    }

    /// Whether it is an array of any number of dimensions.
    pub fn is_any_array(self) -> bool {
        self.is_array() || self.rank() > 0
    }

    pub fn is_number(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    pub fn is_array(self) -> bool {
        matches!(self, Ty::FloatArray | Ty::IntArray)
    }

    /// The element type of an array type.
    pub fn element(self) -> Ty {
        if matches!(self, Ty::FloatArray | Ty::FloatArrayN(_)) { Ty::Float } else { Ty::Int }
    }

    /// The plural used in refusals: "lists are not supported in compiled code".
    pub fn plural(self) -> String {
        match self {
            Ty::Other("string") => "strings".into(),
            Ty::Other("function") => "function values".into(),
            Ty::Nil => "nil values".into(),
            other => format!("{}s", other.name()),
        }
    }
}

/// The argument types of one call: the key of a function's specializations.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sig {
    len: u8,
    tys: [Ty; MAX_PARAMS],
}

impl Sig {
    /// The signature of a call with these arguments, or `None` when there are too many.
    #[inline]
    pub fn of(args: &[Value]) -> Option<Sig> {
        if args.len() > MAX_PARAMS {
            return None;
        }
        let mut tys = [Ty::Nil; MAX_PARAMS];
        for (t, a) in tys.iter_mut().zip(args) {
            *t = Ty::of(a);
        }
        Some(Sig { len: args.len() as u8, tys })
    }

    pub fn from_tys(list: &[Ty]) -> Sig {
        let mut tys = [Ty::Nil; MAX_PARAMS];
        tys[..list.len()].copy_from_slice(list);
        Sig { len: list.len() as u8, tys }
    }

    /// Whether these arguments have exactly this signature's types (the dispatcher's test).
    #[inline]
    pub fn matches(&self, args: &[Value]) -> bool {
        args.len() == self.len as usize && args.iter().zip(&self.tys).all(|(a, t)| Ty::of(a) == *t)
    }

    pub fn tys(&self) -> &[Ty] {
        &self.tys[..self.len as usize]
    }

    /// `name(int, float array)`
    pub fn display(&self, name: &str) -> String {
        let tys: Vec<&str> = self.tys().iter().map(|t| t.name()).collect();
        format!("{name}({})", tys.join(", "))
    }
}

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display("fn"))
    }
}
