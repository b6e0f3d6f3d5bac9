//! The string builtins: `split`, `join(parts, sep)`, `strip`, `lower`, `upper`, `replace`,
//! `find`, `startswith`, `endswith`, `ord`, `chr`, and `rfind`, `count` of a string, `lstrip`,
//! `rstrip`, `splitlines`, `isalpha`, `isdigit`, `isalnum`, `isspace` (lang-spec/builtins.md,
//! "Strings"). Each
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

/// `find(s, sub)`, `find(s, sub, start)`: the character index of the first occurrence of `sub`
/// at or after `start` (negative counts from the end, as in a Python slice), or -1.
pub fn find(args: &[Value]) -> BResult {
    let (s, sub, start) = match args {
        [s, sub] => (s, sub, 0),
        [s, sub, start] => (s, sub, int("find", "start", start)?),
        _ => return Err(format!("expected 2 to 3 arguments, got {}", args.len()).into()),
    };
    let s = string("find", "argument", s)?;
    let sub = string("find", "substring", sub)?;
    let start = if start < 0 { start.saturating_add(s.chars as i64).max(0) } else { start };
    if start > s.chars as i64 {
        return Ok(Value::Int(-1));
    }
    let from = byte_of(s, start as usize);
    Ok(Value::Int(match s.text[from..].find(&*sub.text) {
        Some(byte) => char_of(s, from + byte) as i64,
        None => -1,
    }))
}

/// `rfind(s, sub)`: the character index of the last occurrence of `sub`, or -1.
pub fn rfind(args: &[Value]) -> BResult {
    arity(2, args)?;
    let s = string("rfind", "argument", &args[0])?;
    let sub = string("rfind", "substring", &args[1])?;
    Ok(Value::Int(match s.text.rfind(&*sub.text) {
        Some(byte) => char_of(s, byte) as i64,
        None => -1,
    }))
}

/// `count(s, sub)`: the number of non-overlapping occurrences of `sub`, left to right; an empty
/// `sub` occurs between every two characters and at both ends (`len(s) + 1` times).
pub fn count(s: &StrObj, sub: &Value) -> BResult {
    let sub = string("count", "substring", sub)?;
    if sub.text.is_empty() {
        return Ok(Value::Int(s.chars as i64 + 1));
    }
    Ok(Value::Int(s.text.matches(&*sub.text).count() as i64))
}

/// An int argument of builtin `name`; `what` names it in the error.
fn int(name: &str, what: &str, v: &Value) -> Result<i64, Fail> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!("{name} {what} must be an int, not {}", other.type_name()).into()),
    }
}

/// The byte offset of character `i` (at most the string's length in characters).
fn byte_of(s: &StrObj, i: usize) -> usize {
    if s.is_ascii() { i } else { s.text.char_indices().nth(i).map_or(s.text.len(), |(b, _)| b) }
}

/// The character index of byte offset `byte` (a character boundary).
fn char_of(s: &StrObj, byte: usize) -> usize {
    if s.is_ascii() { byte } else { s.text[..byte].chars().count() }
}

/// Which ends `strip`, `lstrip` and `rstrip` remove characters from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    Both,
    Left,
    Right,
}

/// `strip(s)`, `lstrip(s)`, `rstrip(s)`: whitespace removed from the ends; with a second
/// argument `chars`, every character of `chars` is removed instead (as Python's).
pub fn strip(name: &str, ends: Ends, args: &[Value]) -> BResult {
    let (s, chars) = match args {
        [s] => (string(name, "argument", s)?, None),
        [s, chars] => (string(name, "argument", s)?, Some(string(name, "chars", chars)?)),
        _ => return Err(format!("expected 1 to 2 arguments, got {}", args.len()).into()),
    };
    let set: &str = chars.map_or("", |c| &c.text);
    let strip = |c: char| if chars.is_some() { set.contains(c) } else { c.is_whitespace() };
    let text: &str = &s.text;
    let text = if ends != Ends::Right { text.trim_start_matches(strip) } else { text };
    let text = if ends != Ends::Left { text.trim_end_matches(strip) } else { text };
    Ok(Value::str(text))
}

/// `splitlines(s)`: the lines of `s` without their line ends, as Python's `str.splitlines`: a
/// line ends at `\r\n` or at any one of `\n \r \v \f \x1c \x1d \x1e \x85 \u2028 \u2029`;
/// a line end at the very end of `s` starts no further, empty line.
pub fn splitlines(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    let s = &string("splitlines", "argument", &args[0])?.text;
    let is_end =
        |c: char| matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c'..='\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let mut lines = Vec::new();
    let mut rest: &str = s;
    while let Some(at) = rest.find(is_end) {
        lines.push(Value::str(&rest[..at]));
        let end = &rest[at..];
        let skip = if end.starts_with("\r\n") { 2 } else { end.chars().next().map_or(1, char::len_utf8) };
        rest = &end[skip..];
    }
    if !rest.is_empty() {
        lines.push(Value::str(rest));
    }
    Ok(Value::list(lines, gil))
}

/// A character class test of Python's `str` methods: `isalpha`, `isdigit`, `isalnum`,
/// `isspace`.
#[derive(Clone, Copy)]
pub enum Class {
    Alpha,
    Digit,
    Alnum,
    Space,
}

/// Whether `c` is in `class`, as Python's `str` method of one character decides.
fn in_class(class: Class, c: char) -> bool {
    use super::char_classes::{ALNUM_NOT_ALPHA, ALPHA, DIGIT, SPACE};
    let within = |table: &[(u32, u32)]| {
        let cp = c as u32;
        table
            .binary_search_by(|&(lo, hi)| {
                if hi < cp {
                    std::cmp::Ordering::Less
                } else if lo > cp {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    };
    if c.is_ascii() {
        return match class {
            Class::Alpha => c.is_ascii_alphabetic(),
            Class::Digit => c.is_ascii_digit(),
            Class::Alnum => c.is_ascii_alphanumeric(),
            Class::Space => matches!(c, '\t'..='\r' | '\x1c'..='\x1f' | ' '),
        };
    }
    match class {
        Class::Alpha => within(ALPHA),
        Class::Digit => within(DIGIT),
        Class::Alnum => within(ALPHA) || within(ALNUM_NOT_ALPHA),
        Class::Space => within(SPACE),
    }
}

/// `isalpha(s)`, `isdigit(s)`, `isalnum(s)`, `isspace(s)`: whether `s` is not empty and every
/// character of it is in the class.
pub fn is_class(name: &str, class: Class, args: &[Value]) -> BResult {
    arity(1, args)?;
    let s = &string(name, "argument", &args[0])?.text;
    Ok(Value::Bool(!s.is_empty() && s.chars().all(|c| in_class(class, c))))
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
