//! The atomic operations on int arrays, `atomic_add` and `atomic_cas`, as the interpreter runs
//! them (compiled code lowers the same operations to Cranelift atomics, in `jit/lower`).
//!
//! What this module touches without the GIL: nothing but array elements. It is called with the
//! GIL held, but compiled code on other threads reads and writes the same `AtomicU64` elements
//! without the lock at any moment, so every access here is a real atomic read-modify-write,
//! sequentially consistent (`SeqCst`), never a load followed by a store.

use super::Fail;
use crate::value::{ArrayObj, ElemKind, Value};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// `atomic_add(a, i, v)`: adds `v` to `a[i]` and returns the old value; on overflow raises
/// `integer overflow` and stores nothing. The arity is checked by the caller.
pub fn add(args: &[Value]) -> Result<Value, Fail> {
    const F: &str = "atomic_add";
    let (a, i) = (int_array(F, &args[0])?, int_arg(F, "index", &args[1])?);
    let v = int_arg(F, "value", &args[2])?;
    let slot = element(a, i)?;
    // A compare-and-swap loop: `fetch_update` retries until no other thread changed the
    // element between the read and the swap, and stores nothing when the sum overflows.
    let old = slot.fetch_update(SeqCst, SeqCst, |old| (old as i64).checked_add(v).map(|new| new as u64));
    match old {
        Ok(old) => Ok(Value::Int(old as i64)),
        Err(_) => Err(super::ops::OVERFLOW.into()),
    }
}

/// `atomic_cas(a, i, expected, new)`: stores `new` in `a[i]` if it holds `expected`, and
/// returns whether it did. The arity is checked by the caller.
pub fn cas(args: &[Value]) -> Result<Value, Fail> {
    const F: &str = "atomic_cas";
    let (a, i) = (int_array(F, &args[0])?, int_arg(F, "index", &args[1])?);
    let expected = int_arg(F, "expected value", &args[2])?;
    let new = int_arg(F, "new value", &args[3])?;
    let slot = element(a, i)?;
    Ok(Value::Bool(slot.compare_exchange(expected as u64, new as u64, SeqCst, SeqCst).is_ok()))
}

/// Element `i` of `a`, or the error of `a[i]` when `i` is out of range (checked after every
/// argument's type, so that errors come in argument order).
fn element(a: &ArrayObj, i: i64) -> Result<&AtomicU64, Fail> {
    super::ndarray::one_dim(a, "update an element atomically in")?;
    if i < 0 || i as u64 >= a.len() as u64 {
        // the text of `a[i]`'s error (vm/index.rs)
        return Err(format!("index {i} out of range for array of length {}", a.len()).into());
    }
    Ok(&a.data[i as usize])
}

/// The array argument, which must be an int array.
fn int_array<'a>(f: &str, v: &'a Value) -> Result<&'a ArrayObj, Fail> {
    match v {
        Value::Array(a) if a.kind == ElemKind::Int => Ok(a),
        Value::Array(_) => Err(format!("{f} expects an int array, not float array").into()),
        other => Err(format!("{f} expects an int array, not {}", other.type_name()).into()),
    }
}

/// An int argument of `f`, called `what` in the error.
fn int_arg(f: &str, what: &str, v: &Value) -> Result<i64, Fail> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!("{f} {what} must be an int, not {}", other.type_name()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn int_array(values: &[i64]) -> Value {
        let a = ArrayObj::new(ElemKind::Int, values.len(), 0).expect("small");
        for (slot, v) in a.data.iter().zip(values) {
            slot.store(*v as u64, SeqCst);
        }
        Value::Array(Rc::new(a))
    }

    fn element(a: &Value, i: usize) -> i64 {
        let Value::Array(a) = a else { unreachable!() };
        a.data[i].load(SeqCst) as i64
    }

    /// An overflowing `atomic_add` fails and leaves the element as it was (a program cannot
    /// observe this after the error, so it is checked here).
    #[test]
    fn overflowing_add_stores_nothing() {
        let a = int_array(&[i64::MAX - 1, i64::MIN]);
        assert!(add(&[a.clone(), Value::Int(0), Value::Int(2)]).is_err());
        assert_eq!(element(&a, 0), i64::MAX - 1);
        assert!(add(&[a.clone(), Value::Int(1), Value::Int(-1)]).is_err());
        assert_eq!(element(&a, 1), i64::MIN);
        assert!(matches!(add(&[a.clone(), Value::Int(0), Value::Int(1)]), Ok(Value::Int(v)) if v == i64::MAX - 1));
        assert_eq!(element(&a, 0), i64::MAX);
    }

    /// A failed type or bounds check stores nothing either.
    #[test]
    fn failed_checks_store_nothing() {
        let a = int_array(&[7]);
        assert!(cas(&[a.clone(), Value::Int(1), Value::Int(7), Value::Int(1)]).is_err());
        assert!(cas(&[a.clone(), Value::Int(0), Value::Int(7), Value::Float(1.0)]).is_err());
        assert!(add(&[a.clone(), Value::Int(0), Value::Bool(true)]).is_err());
        assert_eq!(element(&a, 0), 7);
    }
}
