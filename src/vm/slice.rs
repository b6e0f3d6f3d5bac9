//! Slicing, `x[start:stop:step]` (lang-spec/expressions.md, "Slicing"): Python's rules for
//! omitted, negative and out-of-range bounds, and a new string, list or array of the selected
//! elements. A slice copies only what it selects: a string slice finds its first character in
//! constant time (`StrObj::byte_offset`), so its cost is the length of the result.

use super::Fail;
use crate::gil::Gil;
use crate::value::{ArrayObj, StrObj, Value};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

/// The positions a slice selects: `first`, `first + step`, ..., `count` of them, each in
/// `0..len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Picks {
    first: i64,
    step: i64,
    count: usize,
}

impl Picks {
    /// The `k`th selected position (`k < count`, so it is in `0..len`).
    fn at(self, k: usize) -> usize {
        (self.first as i128 + k as i128 * self.step as i128) as usize
    }

    /// The positions in order.
    fn iter(self) -> impl Iterator<Item = usize> {
        (0..self.count).map(move |k| self.at(k))
    }
}

/// `obj[start:stop:step]`, with nil for an omitted bound.
pub fn get(obj: &Value, start: &Value, stop: &Value, step: &Value, gil: Gil) -> Result<Value, Fail> {
    match obj {
        Value::Str(s) => Ok(Value::str(&string(s, picks(s.chars, start, stop, step)?))),
        Value::List(l) => {
            let items = l.borrow(gil);
            let out: Vec<Value> = picks(items.len(), start, stop, step)?.iter().map(|i| items[i].clone()).collect();
            drop(items);
            Ok(Value::list(out, gil))
        }
        Value::Array(a) => {
            super::ndarray::one_dim(a, "slice")?;
            array(a, picks(a.len(), start, stop, step)?)
        }
        other => Err(format!("cannot slice {}", other.type_name()).into()),
    }
}

/// A bound or the step: an int, or nil for an omitted one.
fn bound(v: &Value, which: &str) -> Result<Option<i64>, Fail> {
    match v {
        Value::Nil => Ok(None),
        Value::Int(i) => Ok(Some(*i)),
        other => Err(format!("slice {which} must be an int or nil, not {}", other.type_name()).into()),
    }
}

/// The positions `[start:stop:step]` selects from `len` elements, by Python's rules
/// (`PySlice_AdjustIndices`): the step first (nil is 1, 0 is an error), then a negative bound
/// counts from the end, and a bound still outside is clamped to just before the first or just
/// after the last element, which side depending on the step's sign.
fn picks(len: usize, start: &Value, stop: &Value, step: &Value) -> Result<Picks, Fail> {
    let step = bound(step, "step")?.unwrap_or(1);
    if step == 0 {
        return Err("slice step cannot be zero".to_string().into());
    }
    let (start, stop) = (bound(start, "start")?, bound(stop, "stop")?);
    let len = len as i128;
    let (low, high) = if step > 0 { (0, len) } else { (-1, len - 1) };
    let adjust = |b: Option<i64>, omitted: i128| match b {
        None => omitted,
        Some(b) => {
            let b = b as i128;
            (if b < 0 { b + len } else { b }).clamp(low, high)
        }
    };
    let (first, last) =
        if step > 0 { (adjust(start, 0), adjust(stop, len)) } else { (adjust(start, len - 1), adjust(stop, -1)) };
    let (span, by) = if step > 0 { (last - first, step as i128) } else { (first - last, -(step as i128)) };
    let count = if span > 0 { (span - 1) / by + 1 } else { 0 };
    // `first` lies in -1..=len and `count` is at most `len`, so both fit.
    Ok(Picks { first: first as i64, step, count: count as usize })
}

/// The selected characters of `s`. A step of 1 copies one byte range; any other step finds
/// each character in constant time.
fn string(s: &StrObj, picks: Picks) -> String {
    if picks.count == 0 {
        return String::new();
    }
    if picks.step == 1 {
        let from = s.byte_offset(picks.at(0)).unwrap_or(0);
        let to = s.byte_offset(picks.at(picks.count - 1) + 1).unwrap_or(s.text.len());
        return s.text[from..to].to_string();
    }
    picks.iter().filter_map(|i| s.char_at(i)).collect()
}

/// A new array of `a`'s element type holding the selected elements.
fn array(a: &ArrayObj, picks: Picks) -> Result<Value, Fail> {
    let n = picks.count;
    let fresh = ArrayObj::new(a.kind, n, 0).ok_or_else(|| crate::value::cannot_allocate(n))?;
    for (to, from) in fresh.data.iter().zip(picks.iter()) {
        to.store(a.data[from].load(Relaxed), Relaxed);
    }
    Ok(Value::Array(Rc::new(fresh)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The positions Python's `range(len)[start:stop:step]` gives, for the bounds as ints or nil.
    fn positions(len: usize, start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Vec<usize> {
        let v = |b: Option<i64>| b.map_or(Value::Nil, Value::Int);
        picks(len, &v(start), &v(stop), &v(step)).expect("a valid slice").iter().collect()
    }

    #[test]
    fn bounds_follow_python() {
        assert_eq!(positions(5, None, None, None), [0, 1, 2, 3, 4]);
        assert_eq!(positions(5, None, None, Some(-1)), [4, 3, 2, 1, 0]);
        assert_eq!(positions(5, Some(-2), None, None), [3, 4]);
        assert_eq!(positions(5, Some(-100), Some(100), Some(2)), [0, 2, 4]);
        assert_eq!(positions(5, Some(100), Some(-100), Some(-2)), [4, 2, 0]);
        assert_eq!(positions(5, Some(3), Some(1), None), Vec::<usize>::new());
        assert_eq!(positions(0, None, None, Some(-1)), Vec::<usize>::new());
        assert_eq!(positions(5, Some(i64::MIN), Some(i64::MAX), Some(i64::MAX)), [0]);
        assert_eq!(positions(5, Some(i64::MAX), Some(i64::MIN), Some(i64::MIN)), [4]);
    }

    #[test]
    fn zero_step_is_an_error() {
        assert!(picks(5, &Value::Nil, &Value::Nil, &Value::Int(0)).is_err());
    }
}
