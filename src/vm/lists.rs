//! The list and dict builtins of lang-spec/builtins.md ("Lists and dicts"): `sort`, `sorted`,
//! `reverse`, `insert`, `extend`, `index`, `copy`, `values`, `items`, and `get` of a dict. The
//! calls of a sort key are `Vm::sort_by_key` (`vm::blocking`), which uses the orders here.
//!
//! Sorting orders values as `<` does (numbers, exactly; strings by code point) and checks every
//! element's type before comparing any, so the comparison is a total order (NaN sorts after every
//! number) and an incomparable element is an error that leaves the list as it was.
//!
//! What it may touch without the GIL: nothing (builtins run under the GIL).

use super::Fail;
use super::builtins::{key_of, missing_key};
use crate::ast::BinOp;
use crate::builtin::Builtin;
use crate::gil::Gil;
use crate::num::int_float_cmp;
use crate::value::{ArrayObj, MAX_ARRAY_LEN, Value};
use std::cmp::Ordering;
use std::rc::Rc;

type BResult = Result<Value, Fail>;

/// The kinds of elements that `<` orders among themselves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Ints,
    Floats,
    /// Ints and floats mixed.
    Numbers,
    Strings,
    /// Lists, ordered as `<` orders them (lexicographically); sorted by a fallible merge sort.
    Lists,
}

fn arity(n: usize, args: &[Value]) -> Result<(), Fail> {
    if args.len() != n {
        let s = if n == 1 { "" } else { "s" };
        return Err(format!("expected {n} argument{s}, got {}", args.len()).into());
    }
    Ok(())
}

fn list_arg(b: Builtin, v: &Value) -> Result<&Rc<crate::value::List>, Fail> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(format!("{} expects a list, not {}", b.name(), other.type_name()).into()),
    }
}

fn dict_arg(b: Builtin, v: &Value) -> Result<&Rc<crate::value::Dict>, Fail> {
    match v {
        Value::Dict(d) => Ok(d),
        other => Err(format!("{} expects a dict, not {}", b.name(), other.type_name()).into()),
    }
}

/// The class of one value, `None` for a type `<` does not order.
fn class_of(v: &Value) -> Option<Class> {
    match v {
        Value::Int(_) => Some(Class::Ints),
        Value::Float(_) => Some(Class::Floats),
        Value::Str(_) => Some(Class::Strings),
        Value::List(_) => Some(Class::Lists),
        _ => None,
    }
}

/// The class of all of `items`, or `<`'s error for the first pair that cannot be compared:
/// the first element that does not fit the first one's class, against the first one (or the
/// second element against the first, when the first has no order). `None` for fewer than two.
pub fn classify(items: &[Value]) -> Result<Option<Class>, Fail> {
    let Some(first) = items.first() else { return Ok(None) };
    if items.len() < 2 {
        return Ok(None);
    }
    let Some(mut class) = class_of(first) else {
        return Err(super::ops::type_error(BinOp::Lt, &items[1], first).into());
    };
    for v in &items[1..] {
        class = match (class, class_of(v)) {
            (c, Some(d)) if c == d => c,
            (Class::Strings | Class::Lists, _) | (_, None | Some(Class::Strings | Class::Lists)) => {
                return Err(super::ops::type_error(BinOp::Lt, v, first).into());
            }
            _ => Class::Numbers,
        };
    }
    Ok(Some(class))
}

/// Floats in `<`'s order, with NaN after every number and equal to NaN.
#[inline]
fn float_cmp(x: f64, y: f64) -> Ordering {
    x.partial_cmp(&y).unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
}

/// Two numbers or two strings in `<`'s order (NaN last); other pairs never reach here.
#[inline]
pub fn value_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => float_cmp(*x, *y),
        (Value::Int(i), Value::Float(f)) => int_float_cmp(*i, *f).unwrap_or(Ordering::Less),
        (Value::Float(f), Value::Int(i)) => int_float_cmp(*i, *f).map_or(Ordering::Greater, Ordering::reverse),
        (Value::Str(x), Value::Str(y)) => x.text.cmp(&y.text),
        _ => Ordering::Equal,
    }
}

fn as_int(v: &Value) -> i64 {
    if let Value::Int(i) = v { *i } else { 0 }
}

fn as_float(v: &Value) -> f64 {
    if let Value::Float(f) = v { *f } else { 0.0 }
}

/// Two elements of lists being sorted, in `<`'s order as `value_cmp` totals it (NaN last):
/// equal (`==`) values, whatever their type, are equal; lists compare lexicographically; a pair
/// that `<` does not order is its error.
fn element_cmp(a: &Value, b: &Value, gil: Gil, depth: usize) -> Result<Ordering, Fail> {
    if let (Value::List(x), Value::List(y)) = (a, b) {
        if depth >= crate::value::MAX_NESTING {
            return Err(crate::value::TOO_DEEP.into());
        }
        // no list is borrowed mutably while a sort compares (`sort` takes the items out)
        let (xs, ys) = (x.borrow(gil), y.borrow(gil));
        for (u, v) in xs.iter().zip(ys.iter()) {
            if crate::value::values_equal(u, v, gil)? {
                continue;
            }
            let o = element_cmp(u, v, gil, depth + 1)?;
            if o != Ordering::Equal {
                return Ok(o);
            }
        }
        return Ok(xs.len().cmp(&ys.len()));
    }
    match (class_of(a), class_of(b)) {
        (Some(Class::Strings), Some(Class::Strings)) => Ok(value_cmp(a, b)),
        (Some(Class::Ints | Class::Floats), Some(Class::Ints | Class::Floats)) => Ok(value_cmp(a, b)),
        _ if crate::value::values_equal(a, b, gil)? => Ok(Ordering::Equal),
        _ => Err(super::ops::type_error(BinOp::Lt, a, b).into()),
    }
}

/// A stable merge sort of `v` by a comparison that can fail; on failure `v` is unchanged. (The
/// standard sorts take infallible comparisons and may panic on an inconsistent one.)
fn merge_sort<T: Clone>(v: &mut [T], cmp: &mut impl FnMut(&T, &T) -> Result<Ordering, Fail>) -> Result<(), Fail> {
    let mut src = v.to_vec();
    let mut width = 1;
    while width < src.len() {
        let mut out = Vec::with_capacity(src.len());
        for lo in (0..src.len()).step_by(2 * width) {
            let mid = (lo + width).min(src.len());
            let hi = (lo + 2 * width).min(src.len());
            let (mut i, mut j) = (lo, mid);
            while i < mid && j < hi {
                // the right run's element goes first only when strictly smaller: stable
                if cmp(&src[j], &src[i])? == Ordering::Less {
                    out.push(src[j].clone());
                    j += 1;
                } else {
                    out.push(src[i].clone());
                    i += 1;
                }
            }
            out.extend_from_slice(&src[i..mid]);
            out.extend_from_slice(&src[j..hi]);
        }
        src = out;
        width *= 2;
    }
    v.clone_from_slice(&src);
    Ok(())
}

/// Sorts `items` stably in `<`'s order: all ints or all floats unboxed, others as values.
pub fn sort_values(items: &mut [Value], gil: Gil) -> Result<(), Fail> {
    match classify(items)? {
        None => {}
        Some(Class::Ints) => {
            // equal ints cannot be told apart, so an unstable sort is stable here
            let mut keys: Vec<i64> = items.iter().map(as_int).collect();
            keys.sort_unstable();
            for (slot, k) in items.iter_mut().zip(keys) {
                *slot = Value::Int(k);
            }
        }
        Some(Class::Floats) => {
            let mut keys: Vec<f64> = items.iter().map(as_float).collect();
            keys.sort_by(|x, y| float_cmp(*x, *y));
            for (slot, k) in items.iter_mut().zip(keys) {
                *slot = Value::Float(k);
            }
        }
        // equal strings cannot be told apart either (mini has no identity test for them)
        Some(Class::Strings) => items.sort_unstable_by(value_cmp),
        Some(Class::Lists) => merge_sort(items, &mut |a, b| element_cmp(a, b, gil, 0))?,
        Some(_) => items.sort_by(value_cmp),
    }
    Ok(())
}

/// `items` reordered stably by `keys` (one key per item, computed once).
pub fn sort_decorated(items: &[Value], keys: &[Value], gil: Gil) -> Result<Vec<Value>, Fail> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    match classify(keys)? {
        None => {}
        Some(Class::Ints) => {
            // (key, position) pairs are all distinct: the unstable sort keeps equal keys in order
            let mut pairs: Vec<(i64, usize)> = keys.iter().map(as_int).zip(0..).collect();
            pairs.sort_unstable();
            order = pairs.into_iter().map(|(_, i)| i).collect();
        }
        Some(Class::Floats) => {
            let fs: Vec<f64> = keys.iter().map(as_float).collect();
            order.sort_by(|&i, &j| float_cmp(fs[i], fs[j]));
        }
        Some(Class::Lists) => merge_sort(&mut order, &mut |&i, &j| element_cmp(&keys[i], &keys[j], gil, 0))?,
        Some(_) => order.sort_by(|&i, &j| value_cmp(&keys[i], &keys[j])),
    }
    Ok(order.into_iter().map(|i| items[i].clone()).collect())
}

/// The values a `for` loop over `x` visits, for `sorted` and `extend` (a queue is refused:
/// taking its items would wait).
pub fn elements(b: Builtin, x: &Value, gil: Gil) -> Result<Vec<Value>, Fail> {
    Ok(match x {
        Value::List(l) => l.borrow(gil).clone(),
        Value::Array(a) => {
            super::ndarray::one_dim(a, "iterate over")?;
            (0..a.len()).map(|i| a.get(i)).collect()
        }
        Value::Range(r) => {
            let n = r.exact_len();
            if n > MAX_ARRAY_LEN as i128 {
                return Err(format!("cannot allocate list of {n} elements").into());
            }
            (0..n as i64).map(|i| Value::Int(r.get(i))).collect()
        }
        Value::Str(s) => s.text.chars().map(|c| Value::str(c.encode_utf8(&mut [0; 4]))).collect(),
        Value::Dict(d) => d.borrow(gil).keys().map(|k| k.to_value()).collect(),
        other => {
            let t = other.type_name();
            return Err(format!("{} expects a list, string, array, range or dict, not {t}", b.name()).into());
        }
    })
}

/// The arguments of `sort(l, key)` / `sorted(x, key)`, checked: the key must be a function.
pub fn key_arg(b: Builtin, args: &[Value]) -> Result<Value, Fail> {
    arity(2, args)?;
    if b == Builtin::Sort {
        list_arg(b, &args[0])?;
    }
    match &args[1] {
        f @ (Value::Func(_) | Value::Builtin(_)) => Ok(f.clone()),
        other => Err(format!("{} key must be a function, not {}", b.name(), other.type_name()).into()),
    }
}

/// `sort(l)`; `sort(l, key)` needs the VM (`Fail::Blocking`, then `Vm::sort_by_key`).
pub fn sort(args: &[Value], gil: Gil) -> BResult {
    match args {
        [l] => {
            let l = list_arg(Builtin::Sort, l)?;
            // the list is empty while its items are compared (which borrows lists, perhaps this
            // one), as CPython's is; a permutation stores no new value: a list of numbers stays
            // untracked
            let mut items = std::mem::take(&mut *l.borrow_mut_to_store(&Value::Nil, gil));
            let sorted = sort_values(&mut items, gil);
            *l.borrow_mut_to_store(&Value::Nil, gil) = items;
            sorted.map(|()| Value::Nil)
        }
        [_, _] => Err(Fail::Blocking),
        _ => Err(format!("expected 1 to 2 arguments, got {}", args.len()).into()),
    }
}

/// `sorted(x)`; `sorted(x, key)` needs the VM (`Fail::Blocking`, then `Vm::sort_by_key`).
pub fn sorted(args: &[Value], gil: Gil) -> BResult {
    match args {
        [x] => {
            let mut items = elements(Builtin::Sorted, x, gil)?;
            sort_values(&mut items, gil)?;
            Ok(Value::list(items, gil))
        }
        [_, _] => Err(Fail::Blocking),
        _ => Err(format!("expected 1 to 2 arguments, got {}", args.len()).into()),
    }
}

/// `reverse(l)`.
pub fn reverse(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    // a permutation stores no new value: a list of numbers stays untracked
    list_arg(Builtin::Reverse, &args[0])?.borrow_mut_to_store(&Value::Nil, gil).reverse();
    Ok(Value::Nil)
}

/// `insert(l, i, v)`: `0 <= i <= len(l)`, else an index error.
pub fn insert(args: &[Value], gil: Gil) -> BResult {
    arity(3, args)?;
    let l = list_arg(Builtin::Insert, &args[0])?;
    let i = match &args[1] {
        Value::Int(i) => *i,
        other => return Err(format!("insert index must be an int, not {}", other.type_name()).into()),
    };
    let mut items = l.borrow_mut_to_store(&args[2], gil);
    if i < 0 || i as u64 > items.len() as u64 {
        return Err(format!("insert index {i} out of range for list of length {}", items.len()).into());
    }
    items.insert(i as usize, args[2].clone());
    Ok(Value::Nil)
}

/// `extend(l, other)`: appends the values a `for` loop over `other` visits.
pub fn extend(args: &[Value], gil: Gil) -> BResult {
    arity(2, args)?;
    let l = list_arg(Builtin::Extend, &args[0])?;
    let more = elements(Builtin::Extend, &args[1], gil)?;
    l.borrow_mut(gil).extend(more);
    Ok(Value::Nil)
}

/// `index(l, v)`: the first position holding a value `== v`.
pub fn index(args: &[Value], gil: Gil) -> BResult {
    arity(2, args)?;
    let l = list_arg(Builtin::Index, &args[0])?;
    // a copy: `==` does not run mini code, but keeps no borrow across the comparisons anyway
    let items = l.borrow(gil).clone();
    for (i, v) in items.iter().enumerate() {
        if crate::value::values_equal(v, &args[1], gil)? {
            return Ok(Value::Int(i as i64));
        }
    }
    Err(not_in_list(&args[1], gil))
}

/// `value 3 not in list`, the value written as `key ... not found` writes a key.
fn not_in_list(v: &Value, gil: Gil) -> Fail {
    let Fail::Msg(text) = missing_key(v, gil) else { return "value not in list".into() };
    let shown = text.strip_prefix("key ").and_then(|t| t.strip_suffix(" not found")).unwrap_or("");
    format!("value {shown} not in list").into()
}

/// `copy(x)`: a shallow copy of a list, dict or array.
pub fn copy(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    match &args[0] {
        Value::List(l) => Ok(Value::list(l.borrow(gil).clone(), gil)),
        Value::Dict(d) => Ok(Value::dict(d.borrow(gil).clone(), gil)),
        Value::Array(a) if !a.dims.is_empty() => super::ndarray::copy(a),
        Value::Array(a) => {
            let n = a.len();
            let fresh = ArrayObj::new(a.kind, n, 0).ok_or_else(|| crate::value::cannot_allocate(n))?;
            for (to, from) in fresh.data.iter().zip(a.data.iter()) {
                to.store(from.load(std::sync::atomic::Ordering::Relaxed), std::sync::atomic::Ordering::Relaxed);
            }
            Ok(Value::Array(Rc::new(fresh)))
        }
        other => Err(format!("copy expects a list, dict or array, not {}", other.type_name()).into()),
    }
}

/// `values(d)`.
pub fn values(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    let d = dict_arg(Builtin::Values, &args[0])?.borrow(gil);
    Ok(Value::list(d.values().cloned().collect(), gil))
}

/// `items(d)`: `[key, value]` pairs in insertion order.
pub fn items(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    let d = dict_arg(Builtin::Items, &args[0])?.borrow(gil);
    let pairs = d.iter().map(|(k, v)| Value::list(vec![k.to_value(), v.clone()], gil)).collect();
    Ok(Value::list(pairs, gil))
}

/// `get(d, k)`, `get(d, k, default)` of a dict; `get(q)` of anything else is the queue's
/// (`Fail::Blocking`, then `vm::sync_builtins`).
pub fn get(args: &[Value], gil: Gil) -> BResult {
    match args {
        [Value::Dict(d), k, rest @ ..] if rest.len() <= 1 => {
            let key = key_of(k)?;
            let found = d.borrow(gil).get(&key).cloned();
            Ok(found.unwrap_or_else(|| rest.first().cloned().unwrap_or(Value::Nil)))
        }
        [Value::Dict(_), ..] => Err(format!("expected 2 to 3 arguments, got {}", args.len()).into()),
        [] | [_] | [Value::Queue(_), ..] => Err(Fail::Blocking),
        [other, ..] => Err(format!("get expects a dict, not {}", other.type_name()).into()),
    }
}
