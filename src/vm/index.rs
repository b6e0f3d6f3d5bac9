//! Indexing (`x[i]`, `x[i] = v`) and iteration over every indexable type.

use super::Fail;
use super::builtins::{key_of, missing_key};
use crate::gil::Gil;
use crate::sync::queue;
use crate::value::Value;

fn out_of_range(i: i64, what: &str, len: usize) -> Fail {
    format!("index {i} out of range for {what} of length {len}").into()
}

fn int_index(idx: &Value, what: &str) -> Result<i64, Fail> {
    match idx {
        Value::Int(i) => Ok(*i),
        other => Err(format!("{what} index must be an int, not {}", other.type_name()).into()),
    }
}

/// Checks `0 <= i < len`.
#[inline]
fn position(i: i64, what: &str, len: usize) -> Result<usize, Fail> {
    if i >= 0 && (i as u64) < len as u64 { Ok(i as usize) } else { Err(out_of_range(i, what, len)) }
}

/// `obj[idx]`
pub fn get(obj: &Value, idx: &Value, gil: Gil) -> Result<Value, Fail> {
    match obj {
        Value::List(l) => {
            let items = l.borrow(gil);
            let i = position(int_index(idx, "list")?, "list", items.len())?;
            Ok(items[i].clone())
        }
        Value::Array(a) if !a.dims.is_empty() => Err(super::ndarray::wrong_count(a, 1)),
        Value::Array(a) => Ok(a.get(position(int_index(idx, "array")?, "array", a.len())?)),
        Value::Str(s) => {
            let i = position(int_index(idx, "string")?, "string", s.chars)?;
            Ok(Value::str(s.char_at(i).unwrap_or_default()))
        }
        Value::Dict(d) => {
            let k = key_of(idx)?;
            let found = d.borrow(gil).get(&k).cloned();
            found.ok_or_else(|| missing_key(idx, gil))
        }
        Value::Range(r) => {
            // At most 2**64 - 1 ints, which a usize holds exactly.
            let len = r.exact_len() as usize;
            let i = position(int_index(idx, "range")?, "range", len)?;
            Ok(Value::Int(r.get(i as i64)))
        }
        other => Err(format!("cannot index {}", other.type_name()).into()),
    }
}

/// `obj[idx] = v`
pub fn set(obj: &Value, idx: &Value, v: Value, gil: Gil) -> Result<(), Fail> {
    match obj {
        Value::List(l) => {
            let mut items = l.borrow_mut_to_store(&v, gil);
            let i = position(int_index(idx, "list")?, "list", items.len())?;
            let old = std::mem::replace(&mut items[i], v);
            drop(items);
            drop(old);
            Ok(())
        }
        Value::Array(a) if !a.dims.is_empty() => Err(super::ndarray::wrong_count(a, 1)),
        Value::Array(a) => {
            let i = position(int_index(idx, "array")?, "array", a.len())?;
            a.set(i, &v).map_err(Fail::from)
        }
        Value::Dict(d) => {
            let k = key_of(idx)?;
            let old = d.borrow_mut_to_store(&v, gil).insert(k, v);
            drop(old);
            Ok(())
        }
        Value::Str(_) => Err("strings are immutable".to_string().into()),
        other => Err(format!("cannot assign to an index of {}", other.type_name()).into()),
    }
}

/// Prepares a value for a `for` loop: dicts iterate over a snapshot of their keys.
pub fn iterable(v: &Value, gil: Gil) -> Result<Value, Fail> {
    match v {
        Value::Array(a) => super::ndarray::one_dim(a, "iterate over").map(|_| v.clone()),
        Value::List(_) | Value::Str(_) | Value::Range(_) | Value::Queue(_) => Ok(v.clone()),
        Value::Dict(d) => Ok(Value::list(d.borrow(gil).keys().map(|k| k.to_value()).collect(), gil)),
        other => Err(format!("cannot iterate over {}", other.type_name()).into()),
    }
}

/// The element at position `pos` of an iterable and the next position, or `None` at the end.
/// Strings are walked by byte offset. A queue gives its first item without waiting; when it has
/// none, the VM waits for one (`Vm::finish_blocking`) unless it is closed.
pub fn next(seq: &Value, pos: usize, gil: Gil) -> Option<(Value, usize)> {
    match seq {
        Value::List(l) => l.borrow(gil).get(pos).map(|v| (v.clone(), pos + 1)),
        Value::Array(a) => (pos < a.len()).then(|| (a.get(pos), pos + 1)),
        Value::Range(r) => (pos < r.len() as usize).then(|| (Value::Int(r.get(pos as i64)), pos + 1)),
        Value::Str(s) => {
            let c = s.text[pos..].chars().next()?;
            let end = pos + c.len_utf8();
            Some((Value::str(&s.text[pos..end]), end))
        }
        Value::Queue(q) => queue::next(q, gil).map(|v| (v, pos)),
        _ => None,
    }
}
