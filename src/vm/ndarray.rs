//! Arrays of several dimensions (lang-spec/builtins.md, "Arrays of several dimensions"):
//! `array([d0, d1, ...], fill)`, `a[i, j, ...]` read and written (`GetIndexN`, `SetIndexN`),
//! `shape(a)`, and the one check the operations that only make sense in one dimension share.
//! An array of several dimensions is an ordinary `ArrayObj` whose `dims` are set: row-major,
//! one contiguous buffer, never a view.

use super::Fail;
use crate::value::{ArrayObj, ElemKind, MAX_ARRAY_LEN, MAX_DIMS, Value};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

/// `array([d0, d1, ...], fill)`: the dimensions from a list of ints, the element type and
/// value from the fill (already checked by the caller, `bits` its bit pattern).
pub fn new_array(shape: &[Value], kind: ElemKind, bits: u64) -> Result<Value, Fail> {
    let dims = dims(shape)?;
    let total = dims.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d as u64)).filter(|n| *n <= MAX_ARRAY_LEN as u64);
    let cannot = || Fail::from(crate::value::cannot_allocate_shape(&dims));
    let total = total.ok_or_else(cannot)? as usize;
    let arr = ArrayObj::new(kind, total, bits).ok_or_else(cannot)?;
    Ok(Value::Array(Rc::new(ArrayObj::from_buffer(kind, arr.into_data(), &dims))))
}

/// The dimensions a shape list asks for (1 to `MAX_DIMS` ints, each `>= 0`), with `array`'s
/// errors in its order; `shared_array` checks its shapes with it too.
pub fn dims(shape: &[Value]) -> Result<Vec<usize>, Fail> {
    if shape.is_empty() || shape.len() > MAX_DIMS {
        return Err(format!("array shape must have 1 to {MAX_DIMS} dimensions, got {}", shape.len()).into());
    }
    let mut dims = Vec::with_capacity(shape.len());
    for (k, d) in shape.iter().enumerate() {
        match d {
            Value::Int(n) if *n >= 0 => dims.push(*n as usize),
            Value::Int(n) => return Err(crate::value::negative_dimension(k, *n).into()),
            other => return Err(format!("array dimension {k} must be an int, not {}", other.type_name()).into()),
        }
    }
    Ok(dims)
}

/// `shape(a)`: the dimensions of an array as a new list of ints.
pub fn shape(args: &[Value], gil: crate::gil::Gil) -> Result<Value, Fail> {
    match args {
        [Value::Array(a)] => Ok(Value::list(a.shape().into_iter().map(|d| Value::Int(d as i64)).collect(), gil)),
        [other] => Err(format!("shape expects an array, not {}", other.type_name()).into()),
        _ => Err(format!("expected 1 argument, got {}", args.len()).into()),
    }
}

/// `len(a)`: the first dimension.
pub fn first_dim(a: &ArrayObj) -> usize {
    a.dims.first().copied().unwrap_or(a.data.len())
}

/// The error of an operation that needs a 1-D array (`what` says what it does: "iterate over",
/// "slice", ...) when `a` has several dimensions.
pub fn one_dim(a: &ArrayObj, what: &str) -> Result<(), Fail> {
    if a.dims.is_empty() {
        return Ok(());
    }
    Err(format!("cannot {what} a {}-D array (only a 1-D one)", a.rank()).into())
}

/// The error of `a[i]` (one index) on an array of several dimensions, or of `a[i, j]` on one
/// of another number of dimensions.
pub fn wrong_count(a: &ArrayObj, given: usize) -> Fail {
    let rank = a.rank();
    let plural = if rank == 1 { "index" } else { "indexes" };
    format!("a {rank}-D array takes {rank} {plural}, not {given}").into()
}

/// The position in the buffer of element `idx` of `a`, each index checked against its
/// dimension: `index 7 out of range for dimension 1 of length 5` (dimensions count from 0, as
/// numpy's axes).
#[inline]
fn position(a: &ArrayObj, idx: &[Value]) -> Result<usize, Fail> {
    if idx.len() != a.rank() || a.dims.is_empty() {
        return Err(wrong_count(a, idx.len()));
    }
    let mut pos = 0usize;
    for (k, (i, d)) in idx.iter().zip(a.dims.iter()).enumerate() {
        let i = match i {
            Value::Int(i) => *i,
            other => return Err(format!("array index must be an int, not {}", other.type_name()).into()),
        };
        if i < 0 || i as u64 >= *d as u64 {
            return Err(format!("index {i} out of range for dimension {k} of length {d}").into());
        }
        pos = pos * d + i as usize;
    }
    Ok(pos)
}

/// The array and the position of element `idx` when `obj` is an array of that many dimensions
/// and every index is an int in range (the interpreter's fast path; `get` and `set` give the
/// errors otherwise).
#[inline(always)]
pub fn element<'v>(obj: &'v Value, idx: &[Value]) -> Option<(&'v ArrayObj, usize)> {
    let Value::Array(a) = obj else { return None };
    if idx.len() != a.dims.len() {
        return None;
    }
    let mut pos = 0usize;
    for (i, d) in idx.iter().zip(a.dims.iter()) {
        match i {
            Value::Int(i) if (*i as u64) < *d as u64 => pos = pos * d + *i as usize,
            _ => return None,
        }
    }
    Some((a, pos))
}

/// `obj[i, j, ...]`
pub fn get(obj: &Value, idx: &[Value]) -> Result<Value, Fail> {
    match obj {
        Value::Array(a) => Ok(a.get(position(a, idx)?)),
        other => Err(not_array(other, idx.len())),
    }
}

/// `obj[i, j, ...] = v`
pub fn set(obj: &Value, idx: &[Value], v: &Value) -> Result<(), Fail> {
    match obj {
        Value::Array(a) => {
            let pos = position(a, idx)?;
            a.set(pos, v).map_err(Fail::from)
        }
        other => Err(not_array(other, idx.len())),
    }
}

/// The error of several indexes on something that is not an array.
fn not_array(v: &Value, n: usize) -> Fail {
    format!("cannot index {} with {n} indexes (only an array of several dimensions)", v.type_name()).into()
}

/// `copy(a)`: a new array of the same shape and elements.
pub fn copy(a: &ArrayObj) -> Result<Value, Fail> {
    let n = a.len();
    let fresh = ArrayObj::new(a.kind, n, 0).ok_or_else(|| crate::value::cannot_allocate(n))?;
    for (to, from) in fresh.data.iter().zip(a.data.iter()) {
        to.store(from.load(Relaxed), Relaxed);
    }
    Ok(Value::Array(Rc::new(ArrayObj::from_buffer(a.kind, fresh.into_data(), &a.shape()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of a failure.
    fn message(r: Result<impl std::fmt::Debug, Fail>) -> String {
        match r {
            Err(Fail::Msg(m)) => m,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn ints(v: &[i64]) -> Vec<Value> {
        v.iter().map(|i| Value::Int(*i)).collect()
    }

    #[test]
    fn shapes_are_checked_and_bounded() {
        assert_eq!(message(new_array(&[], ElemKind::Int, 0)), "array shape must have 1 to 4 dimensions, got 0");
        assert_eq!(
            message(new_array(&ints(&[1; 5]), ElemKind::Int, 0)),
            "array shape must have 1 to 4 dimensions, got 5"
        );
        assert_eq!(
            message(new_array(&ints(&[2, -1]), ElemKind::Int, 0)),
            "array dimension 1 must be non-negative, got -1"
        );
        let big = ints(&[1 << 32, 1 << 32, 2]);
        assert_eq!(
            message(new_array(&big, ElemKind::Int, 0)),
            "cannot allocate array of shape [4294967296, 4294967296, 2]"
        );
        let Ok(Value::Array(one)) = new_array(&ints(&[3]), ElemKind::Float, 0) else { panic!() };
        assert!(one.dims.is_empty(), "a 1-D array has no dims");
        assert_eq!(one.shape(), vec![3]);
    }

    #[test]
    fn elements_are_row_major_and_bounds_name_the_dimension() {
        let Ok(Value::Array(a)) = new_array(&ints(&[2, 3, 4]), ElemKind::Int, 0) else { panic!() };
        let arr = Value::Array(a.clone());
        assert_eq!(element(&arr, &ints(&[1, 2, 3])).map(|(_, p)| p), Some(23));
        assert_eq!(element(&arr, &ints(&[0, 1, 0])).map(|(_, p)| p), Some(4));
        assert!(element(&arr, &ints(&[0, 3, 0])).is_none());
        assert!(element(&arr, &ints(&[0, 0])).is_none());
        assert_eq!(message(get(&arr, &ints(&[0, 3, 9]))), "index 3 out of range for dimension 1 of length 3");
        assert_eq!(message(get(&arr, &ints(&[0, 0, -1]))), "index -1 out of range for dimension 2 of length 4");
        assert_eq!(message(get(&arr, &ints(&[0, 0]))), "a 3-D array takes 3 indexes, not 2");
        set(&arr, &ints(&[1, 2, 3]), &Value::Int(7)).expect("in range");
        assert!(matches!(a.get(23), Value::Int(7)));
    }
}
