//! The builtins `sum`, `any`, `all`, `enumerate`, `zip` and `count` (lang-spec/builtins.md,
//! "Sequences"): Python's builtins of the same names, over the values a `for` loop visits. mini
//! has no tuples, so `enumerate` and `zip` return lists of 2-element lists.
//!
//! What it may touch without the GIL: nothing (builtins run under the GIL).

use super::Fail;
use super::lists::elements;
use crate::ast::BinOp;
use crate::builtin::Builtin;
use crate::gil::Gil;
use crate::value::{ArrayObj, RangeObj, Value, values_equal};

type BResult = Result<Value, Fail>;

/// `sum(x)`, `sum(x, start)`: `start` (0) plus the numbers of a list, array or range, added
/// left to right with `+`'s rules, so exactly what a `for` loop adding them computes.
pub fn sum(args: &[Value], gil: Gil) -> BResult {
    let (x, start) = match args {
        [x] => (x, Value::Int(0)),
        [x, start] => (x, start.clone()),
        _ => return Err(format!("expected 1 to 2 arguments, got {}", args.len()).into()),
    };
    if !matches!(start, Value::Int(_) | Value::Float(_)) {
        return Err(format!("sum start must be a number, not {}", start.type_name()).into());
    }
    match x {
        Value::List(l) => {
            let items = l.borrow(gil).clone();
            add_all(start, items.iter().cloned(), gil)
        }
        Value::Array(a) => sum_array(a, start, gil),
        Value::Range(r) => sum_range(r, start, gil),
        other => Err(format!("sum expects a list, array or range, not {}", other.type_name()).into()),
    }
}

/// `acc + v0 + v1 + ...`, left to right; a value that is not a number is an error naming its
/// index.
fn add_all(mut acc: Value, items: impl Iterator<Item = Value>, gil: Gil) -> BResult {
    for (i, v) in items.enumerate() {
        acc = match (&acc, &v) {
            (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_add(*y).ok_or(super::ops::OVERFLOW)?),
            (Value::Float(x), Value::Float(y)) => Value::Float(x + y),
            (_, Value::Int(_) | Value::Float(_)) => super::ops::arith(BinOp::Add, &acc, &v, gil)?,
            _ => return Err(format!("sum expects numbers, not {} at index {i}", v.type_name()).into()),
        };
    }
    Ok(acc)
}

/// The sum of an int or float array. A float array's sum is a float even when it is empty:
/// `float(start)` plus the elements (for a non-empty array that is `+`'s result anyway), as
/// compiled code computes it.
fn sum_array(a: &ArrayObj, start: Value, gil: Gil) -> BResult {
    let start = match start {
        Value::Int(i) if a.kind == crate::value::ElemKind::Float => Value::Float(i as f64),
        other => other,
    };
    match start {
        Value::Float(mut acc) if a.kind == crate::value::ElemKind::Float => {
            for i in 0..a.len() {
                if let Value::Float(f) = a.get(i) {
                    acc += f;
                }
            }
            Ok(Value::Float(acc))
        }
        start => add_all(start, (0..a.len()).map(|i| a.get(i)), gil),
    }
}

/// The sum of a range. With an int start it is computed in closed form, in constant time: the
/// partial sums fall (rise) while the elements are negative (positive) and then move the other
/// way, so `integer overflow` happens at some step exactly when the sum up to the last element of
/// the first sign, or the whole sum, does not fit.
fn sum_range(r: &RangeObj, start: Value, gil: Gil) -> BResult {
    let Value::Int(init) = start else {
        return add_all(start, (0..r.len()).map(|i| Value::Int(r.get(i))), gil);
    };
    let n = r.exact_len();
    let (first, step) = (r.start as i128, r.step as i128);
    // the number of leading elements of the sign opposite to `step`
    let (num, den) = if step > 0 { (-first, step) } else { (first, -step) };
    let turn = (-(-num).div_euclid(den)).clamp(0, n);
    let partial = |k: i128| -> Option<i64> {
        let pairs = if k % 2 == 0 { (k / 2).checked_mul(k - 1)? } else { k.checked_mul((k - 1) / 2)? };
        let s = (init as i128).checked_add(k.checked_mul(first)?)?.checked_add(pairs.checked_mul(step)?)?;
        i64::try_from(s).ok()
    };
    partial(turn).ok_or(super::ops::OVERFLOW)?;
    Ok(Value::Int(partial(n).ok_or(super::ops::OVERFLOW)?))
}

/// `any(x)` (`want_all` false) and `all(x)` (true): whether some (every) value a `for` loop over
/// `x` visits is true; a range is decided by arithmetic.
pub fn any_all(b: Builtin, args: &[Value], want_all: bool, gil: Gil) -> BResult {
    let [x] = args else { return Err(format!("expected 1 argument, got {}", args.len()).into()) };
    if let Value::Range(r) = x {
        let has_zero = r.contains(0);
        return Ok(Value::Bool(if want_all { !has_zero } else { r.exact_len() > i128::from(has_zero) }));
    }
    let items = elements(b, x, gil)?;
    Ok(Value::Bool(if want_all { items.iter().all(|v| v.truthy(gil)) } else { items.iter().any(|v| v.truthy(gil)) }))
}

/// `enumerate(x)`, `enumerate(x, start)`: `[[start, v0], [start + 1, v1], ...]` for the values
/// a `for` loop over `x` visits.
pub fn enumerate(args: &[Value], gil: Gil) -> BResult {
    let (x, start) = match args {
        [x] => (x, 0),
        [x, Value::Int(start)] => (x, *start),
        [_, other] => return Err(format!("enumerate start must be an int, not {}", other.type_name()).into()),
        _ => return Err(format!("expected 1 to 2 arguments, got {}", args.len()).into()),
    };
    let items = elements(Builtin::Enumerate, x, gil)?;
    let mut pairs = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        let at = start.checked_add(i as i64).ok_or(super::ops::OVERFLOW)?;
        pairs.push(Value::list(vec![Value::Int(at), v], gil));
    }
    Ok(Value::list(pairs, gil))
}

/// `zip(a, b, ...)`: `[[a0, b0, ...], [a1, b1, ...], ...]`, as long as the shortest argument.
pub fn zip(args: &[Value], gil: Gil) -> BResult {
    if args.len() < 2 {
        return Err(format!("expected at least 2 arguments, got {}", args.len()).into());
    }
    let columns: Vec<Vec<Value>> = args.iter().map(|x| elements(Builtin::Zip, x, gil)).collect::<Result<_, _>>()?;
    let n = columns.iter().map(Vec::len).min().unwrap_or(0);
    let rows = (0..n).map(|i| Value::list(columns.iter().map(|c| c[i].clone()).collect(), gil)).collect();
    Ok(Value::list(rows, gil))
}

/// `count(s, sub)` of a string (`strings::count`); `count(l, v)` of a list or array: how many
/// elements are `== v`.
pub fn count(args: &[Value], gil: Gil) -> BResult {
    let [x, v] = args else { return Err(format!("expected 2 arguments, got {}", args.len()).into()) };
    let items = match x {
        Value::Str(s) => return super::strings::count(s, v),
        Value::List(l) => l.borrow(gil).clone(),
        Value::Array(a) => (0..a.len()).map(|i| a.get(i)).collect(),
        other => return Err(format!("count expects a string, list or array, not {}", other.type_name()).into()),
    };
    let mut n = 0;
    for item in &items {
        if values_equal(item, v, gil)? {
            n += 1;
        }
    }
    Ok(Value::Int(n))
}
