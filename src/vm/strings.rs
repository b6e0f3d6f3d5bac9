//! The string builtins: `split`, `join(parts, sep)`, `strip`, `lower`, `upper`, `replace`,
//! `find`, `startswith`, `endswith`, `ord`, `chr` (lang-spec/builtins.md, "Strings"). Each
//! returns a new string or value; strings are immutable. Positions are counted in characters, as
//! `s[i]` counts them. Run under the GIL, as every builtin.

use super::Fail;
use crate::gil::Gil;
use crate::value::{StrObj, Value};

type BResult = Result<Value, Fail>;

/// An argument of builtin `name` that must be a string; `what` names it in the error.
fn string<'a>(name: &str, what: &str, v: &'a Value) -> Result<&'a StrObj, Fail> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(format!("{name} {what} must be a string, not {}", other.type_name()).into()),
    }
}

/// Checks the argument count of a builtin that takes exactly `n`.
fn arity(n: usize, args: &[Value]) -> Result<(), Fail> {
    if args.len() != n {
        let s = if n == 1 { "" } else { "s" };
        return Err(format!("expected {n} argument{s}, got {}", args.len()).into());
    }
    Ok(())
}

/// `split(s)`: the words between runs of whitespace; `split(s, sep)`: the pieces between each
/// occurrence of `sep` (empty pieces kept), as Python's `str.split`.
pub fn split(args: &[Value], gil: Gil) -> BResult {
    let parts: Vec<Value> = match args {
        [s] => string("split", "argument", s)?.text.split_whitespace().map(Value::str).collect(),
        [s, sep] => {
            let (s, sep) = (string("split", "argument", s)?, string("split", "separator", sep)?);
            if sep.text.is_empty() {
                return Err("split separator must not be empty".to_string().into());
            }
            s.text.split(&*sep.text).map(Value::str).collect()
        }
        _ => return Err(format!("expected 1 to 2 arguments, got {}", args.len()).into()),
    };
    Ok(Value::list(parts, gil))
}

/// `join(parts, sep)`: the strings of list `parts` with `sep` between them, built in one
/// buffer (linear in the length of the result).
pub fn join(parts: &Value, sep: &Value, gil: Gil) -> BResult {
    let Value::List(list) = parts else {
        return Err(format!("join expects a list of strings, not {}", parts.type_name()).into());
    };
    let sep = string("join", "separator", sep)?;
    let list = list.borrow(gil);
    let mut out = String::new();
    for (i, part) in list.iter().enumerate() {
        let Value::Str(part) = part else {
            return Err(format!("join expects a list of strings, not {} at index {i}", part.type_name()).into());
        };
        if i > 0 {
            out.push_str(&sep.text);
        }
        out.push_str(&part.text);
    }
    Ok(Value::str(&out))
}

/// `strip(s)`, `lower(s)`, `upper(s)`: a string made from one string.
pub fn map(name: &str, args: &[Value], f: impl Fn(&str) -> String) -> BResult {
    arity(1, args)?;
    Ok(Value::str(&f(&string(name, "argument", &args[0])?.text)))
}

/// `replace(s, old, new)`: every occurrence of `old` replaced by `new` (an empty `old` matches
/// between every two characters and at both ends, as in Python).
pub fn replace(args: &[Value]) -> BResult {
    arity(3, args)?;
    let s = string("replace", "argument", &args[0])?;
    let old = string("replace", "old", &args[1])?;
    let new = string("replace", "new", &args[2])?;
    Ok(Value::str(&s.text.replace(&*old.text, &new.text)))
}

/// `find(s, sub)`: the character index of the first occurrence of `sub`, or -1.
pub fn find(args: &[Value]) -> BResult {
    arity(2, args)?;
    let s = string("find", "argument", &args[0])?;
    let sub = string("find", "substring", &args[1])?;
    Ok(Value::Int(match s.text.find(&*sub.text) {
        Some(byte) if s.is_ascii() => byte as i64,
        Some(byte) => s.text[..byte].chars().count() as i64,
        None => -1,
    }))
}

/// `startswith(s, p)` and `endswith(s, p)`.
pub fn affix(name: &str, what: &str, args: &[Value], test: impl Fn(&str, &str) -> bool) -> BResult {
    arity(2, args)?;
    let s = string(name, "argument", &args[0])?;
    let p = string(name, what, &args[1])?;
    Ok(Value::Bool(test(&s.text, &p.text)))
}

/// `ord(c)`: the code point of a one-character string.
pub fn ord(args: &[Value]) -> BResult {
    arity(1, args)?;
    let c = string("ord", "argument", &args[0])?;
    match (c.chars, c.text.chars().next()) {
        (1, Some(ch)) => Ok(Value::Int(ch as i64)),
        (n, _) => Err(format!("ord expects a string of one character, not of {n}").into()),
    }
}

/// `chr(n)`: the one-character string of code point `n`.
pub fn chr(args: &[Value]) -> BResult {
    arity(1, args)?;
    let n = match &args[0] {
        Value::Int(n) => *n,
        other => return Err(format!("chr argument must be an int, not {}", other.type_name()).into()),
    };
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some(c) => Ok(Value::str(c.encode_utf8(&mut [0; 4]))),
        None => Err(format!("chr argument {n} is not a Unicode code point (0 to 0x10FFFF, not a surrogate)").into()),
    }
}
