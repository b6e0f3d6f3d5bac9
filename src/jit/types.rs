//! The types the JIT specializes on: one argument's type (`Ty`) and a call's signature (`Sig`).

use crate::builtin::Builtin;
use crate::gil::Gil;
use crate::value::{ElemKind, Value};
use std::fmt;
use std::rc::Rc;

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
    /// An int on some paths and a float on others (a local that starts as `0` and adds
    /// floats): native code keeps a tag next to the 64 bits (lower/numtag.rs). No runtime
    /// value has this type; inference makes it where an int and a float merge.
    Num,
    /// A function passed as an argument, by identity (see [`FnKey`]). Compiled code calls it
    /// directly (specializing on it as numba specializes on a dispatcher).
    Func(&'static FnKey),
    /// A builtin passed as an argument (`integrate(sqrt, ...)`).
    Builtin(Builtin),
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
            Value::Builtin(b) => Ty::Builtin(*b),
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
            Ty::Num => "int or float",
            Ty::Func(key) => key.name,
            Ty::Builtin(b) => b.name(),
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
        matches!(self, Ty::Int | Ty::Float | Ty::Num)
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
            Ty::Other("function") | Ty::Func(..) | Ty::Builtin(_) => "function values".into(),
            Ty::Nil => "nil values".into(),
            Ty::Num => "values that are an int or a float".into(),
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
    pub fn matches(&self, args: &[Value], gil: Gil) -> bool {
        args.len() == self.len as usize
            && args.iter().zip(&self.tys).all(|(a, t)| Ty::of(a) == *t || is_func(a, *t, gil))
    }

    pub fn tys(&self) -> &[Ty] {
        &self.tys[..self.len as usize]
    }

    /// This signature with parameter `i`'s type replaced.
    pub fn with(mut self, i: usize, t: Ty) -> Sig {
        self.tys[i] = t;
        self
    }

    /// `name(int, float array)`
    pub fn display(&self, name: &str) -> String {
        let tys: Vec<&str> = self.tys().iter().map(|t| t.name()).collect();
        format!("{name}({})", tys.join(", "))
    }
}

/// The identity of a function passed as an argument: its prototype (by address: the JIT keeps
/// every prototype a key names alive for the rest of the program, `funcargs::Functions`, so no
/// other function ever has it) and the types of the values its captured variables hold, when
/// they are never assigned after their declaration (read once per call, passed to native code
/// after the arguments). Made once per prototype and capture types, and never freed, so that
/// `Ty` stays `Copy`; compared by address.
pub struct FnKey {
    pub proto: usize,
    /// `fn NAME`, for the reports.
    pub name: &'static str,
    pub captures: Box<[Ty]>,
    /// The machine parameters of the captured values (see `lower::param_types`).
    pub params: Box<[cranelift::prelude::Type]>,
}

impl PartialEq for FnKey {
    fn eq(&self, other: &FnKey) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for FnKey {}

impl std::hash::Hash for FnKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self as *const FnKey).hash(state);
    }
}

impl fmt::Debug for FnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl FnKey {
    /// Whether `closure` is this function: the same prototype, and captured values of the
    /// same types.
    pub fn holds(&self, closure: &crate::value::Closure, gil: Gil) -> bool {
        Rc::as_ptr(&closure.proto) as usize == self.proto
            && closure.upvals.len() == self.captures.len()
            && closure.upvals.iter().zip(&self.captures).all(|(cell, t)| Ty::of(&cell.borrow(gil)) == *t)
    }
}

/// Whether `v` is the function that `Ty::Func` `t` names.
fn is_func(v: &Value, t: Ty, gil: Gil) -> bool {
    match (v, t) {
        (Value::Func(c), Ty::Func(key)) => key.holds(c, gil),
        _ => false,
    }
}

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display("fn"))
    }
}
