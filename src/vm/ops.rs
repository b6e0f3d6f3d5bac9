//! Operator semantics: arithmetic with Python's floor rules and checked integer overflow,
//! comparisons, and the error texts operators give. The interpreter's fast paths handle
//! int-int and float-float inline and call into here for everything else.

use crate::ast::BinOp;
use crate::gil::Gil;
pub use crate::num::{DIV_ZERO, OVERFLOW, checked_int_pow, float_divmod, int_float_cmp, int_floordiv, int_mod};
use crate::value::{StrObj, Value, values_equal};
use std::cmp::Ordering;
use std::rc::Rc;

/// `unsupported operand types for +: int and string`
pub fn type_error(op: BinOp, a: &Value, b: &Value) -> String {
    format!("unsupported operand types for {}: {} and {}", op.symbol(), a.type_name(), b.type_name())
}

/// Integer power: a non-negative exponent gives an int (checked), a negative one a float.
pub fn int_pow(a: i64, b: i64) -> Result<Value, &'static str> {
    if b < 0 {
        if a == 0 {
            return Err(DIV_ZERO);
        }
        return Ok(Value::Float((a as f64).powf(b as f64)));
    }
    checked_int_pow(a, b as u64).map(Value::Int).ok_or(OVERFLOW)
}

pub fn float_pow(a: f64, b: f64) -> Result<f64, &'static str> {
    if a == 0.0 && b < 0.0 {
        return Err(DIV_ZERO);
    }
    Ok(a.powf(b))
}

/// Both operands as floats, when both are numbers.
fn as_floats(a: &Value, b: &Value) -> Option<(f64, f64)> {
    let f = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    Some((f(a)?, f(b)?))
}

/// The general (slow) path of every arithmetic operator.
/// `s += tail` where `slot` holds the string `s`: appended in place when `slot` holds the only
/// reference (amortized, as CPython does for a local), else `slot` gets a new string.
pub fn add_assign_str(slot: &mut Value, tail: &StrObj) {
    let Value::Str(s) = slot else { return };
    match Rc::get_mut(s) {
        Some(only) => only.append(tail),
        None => *slot = Value::Str(Rc::new(StrObj::concat(s, tail))),
    }
}

pub fn arith(op: BinOp, a: &Value, b: &Value, gil: Gil) -> Result<Value, String> {
    use Value::*;
    if let (Int(x), Int(y)) = (a, b) {
        return int_arith(op, *x, *y).map_err(String::from);
    }
    if let Some((x, y)) = as_floats(a, b) {
        return float_arith(op, x, y).map(Float).map_err(String::from);
    }
    match (op, a, b) {
        (BinOp::Add, Str(x), Str(y)) => Ok(Value::Str(Rc::new(StrObj::concat(x, y)))),
        (BinOp::Add, List(x), List(y)) => {
            let mut items = x.borrow(gil).clone();
            items.extend(y.borrow(gil).iter().cloned());
            Ok(Value::list(items, gil))
        }
        (BinOp::Mul, Str(x), Int(n)) | (BinOp::Mul, Int(n), Str(x)) => repeat_str(&x.text, *n),
        (BinOp::Mul, List(x), Int(n)) | (BinOp::Mul, Int(n), List(x)) => {
            let items = x.borrow(gil);
            let total = usize::try_from(*n).unwrap_or(0).checked_mul(items.len());
            let mut out = Vec::new();
            if total.is_none_or(|t| out.try_reserve_exact(t).is_err()) {
                return Err("repeated list is too long".to_string());
            }
            for _ in 0..*n {
                out.extend(items.iter().cloned());
            }
            drop(items);
            Ok(Value::list(out, gil))
        }
        _ => Err(type_error(op, a, b)),
    }
}

/// `s * n` and `n * s`: `s` repeated `n` times (empty when `n <= 0`, as in Python).
fn repeat_str(s: &str, n: i64) -> Result<Value, String> {
    let total = usize::try_from(n).unwrap_or(0).checked_mul(s.len());
    let mut out = String::new();
    if total.is_none_or(|t| out.try_reserve_exact(t).is_err()) {
        return Err("repeated string is too long".to_string());
    }
    for _ in 0..n.max(0) {
        out.push_str(s);
    }
    Ok(Value::str(&out))
}

pub fn int_arith(op: BinOp, x: i64, y: i64) -> Result<Value, &'static str> {
    Ok(Value::Int(match op {
        BinOp::Add => x.checked_add(y).ok_or(OVERFLOW)?,
        BinOp::Sub => x.checked_sub(y).ok_or(OVERFLOW)?,
        BinOp::Mul => x.checked_mul(y).ok_or(OVERFLOW)?,
        BinOp::Div if y == 0 => return Err(DIV_ZERO),
        BinOp::Div => return Ok(Value::Float(x as f64 / y as f64)),
        BinOp::FloorDiv => int_floordiv(x, y)?,
        BinOp::Mod => int_mod(x, y)?,
        BinOp::Pow => return int_pow(x, y),
        _ => unreachable!("not an arithmetic operator"),
    }))
}

pub fn float_arith(op: BinOp, x: f64, y: f64) -> Result<f64, &'static str> {
    Ok(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div if y == 0.0 => return Err(DIV_ZERO),
        BinOp::Div => x / y,
        BinOp::FloorDiv => float_divmod(x, y)?.0,
        BinOp::Mod => float_divmod(x, y)?.1,
        BinOp::Pow => float_pow(x, y)?,
        _ => unreachable!("not an arithmetic operator"),
    })
}

/// The error of a shift by a negative count.
pub const NEG_SHIFT: &str = "negative shift count";

/// `x << n` as Python computes it, when the result fits in an int: a lost bit is
/// `integer overflow`, a negative count an error.
#[inline]
pub fn int_shl(x: i64, n: i64) -> Result<i64, &'static str> {
    if n < 0 {
        return Err(NEG_SHIFT);
    }
    if x == 0 {
        return Ok(0);
    }
    if n >= 64 {
        return Err(OVERFLOW);
    }
    let r = x << n;
    if r >> n == x { Ok(r) } else { Err(OVERFLOW) }
}

/// `x >> n`: the floor of `x / 2**n`, so a count of 64 or more gives 0 or -1.
#[inline]
pub fn int_shr(x: i64, n: i64) -> Result<i64, &'static str> {
    if n < 0 {
        return Err(NEG_SHIFT);
    }
    Ok(x >> n.min(63))
}

/// One of `& | ^ << >>` on two ints.
#[inline(always)]
pub fn int_bitwise(op: BinOp, x: i64, y: i64) -> Result<i64, &'static str> {
    match op {
        BinOp::BitAnd => Ok(x & y),
        BinOp::BitOr => Ok(x | y),
        BinOp::BitXor => Ok(x ^ y),
        BinOp::Shl => int_shl(x, y),
        _ => int_shr(x, y),
    }
}

/// `~x`, which is `-x - 1`, for an int.
pub fn bit_not(v: &Value) -> Result<Value, String> {
    match v {
        Value::Int(i) => Ok(Value::Int(!i)),
        other => Err(format!("unsupported operand type for ~: {}", other.type_name())),
    }
}

/// Unary minus.
pub fn negate(v: &Value) -> Result<Value, String> {
    match v {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(|| OVERFLOW.to_string()),
        Value::Float(f) => Ok(Value::Float(-f)),
        other => Err(format!("unsupported operand type for -: {}", other.type_name())),
    }
}

/// The order of two values for `<` and friends: numbers, strings, and lists of them
/// (`None` when a NaN decides).
pub fn compare(op: BinOp, a: &Value, b: &Value, gil: Gil) -> Result<Option<Ordering>, String> {
    use Value::*;
    Ok(match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Int(x), Float(y)) => int_float_cmp(*x, *y),
        (Float(x), Int(y)) => int_float_cmp(*y, *x).map(Ordering::reverse),
        (Str(x), Str(y)) => Some(x.text.cmp(&y.text)),
        (List(x), List(y)) => return lists_compare(op, &x.borrow(gil), &y.borrow(gil), gil, 0),
        _ => return Err(type_error(op, a, b)),
    })
}

/// Two lists in Python's order: the first pair of elements that are not `==` decides, compared
/// with the same rules; when one list is a prefix of the other, the shorter is smaller.
/// Kept out of line: the comparison of scalars stays small where the interpreter calls it.
#[inline(never)]
#[cold]
fn lists_compare(op: BinOp, xs: &[Value], ys: &[Value], gil: Gil, depth: usize) -> Result<Option<Ordering>, String> {
    if depth >= crate::value::MAX_NESTING {
        return Err(crate::value::TOO_DEEP.to_string());
    }
    for (x, y) in xs.iter().zip(ys) {
        if !values_equal(x, y, gil)? {
            return match (x, y) {
                (Value::List(u), Value::List(v)) => lists_compare(op, &u.borrow(gil), &v.borrow(gil), gil, depth + 1),
                _ => compare(op, x, y, gil),
            };
        }
    }
    Ok(Some(xs.len().cmp(&ys.len())))
}

/// Evaluates a comparison operator to a bool.
pub fn compare_op(op: BinOp, a: &Value, b: &Value, gil: Gil) -> Result<bool, String> {
    let ord = match op {
        BinOp::Eq => return Ok(values_equal(a, b, gil)?),
        BinOp::Ne => return Ok(!values_equal(a, b, gil)?),
        _ => compare(op, a, b, gil)?,
    };
    Ok(match (op, ord) {
        (_, None) => false,
        (BinOp::Lt, Some(o)) => o == Ordering::Less,
        (BinOp::Le, Some(o)) => o != Ordering::Greater,
        (BinOp::Gt, Some(o)) => o == Ordering::Greater,
        (_, Some(o)) => o != Ordering::Less,
    })
}
