//! The builtin functions' implementations. The list (the `Builtin` enum) is defined once, in
//! `crate::builtin`; the compiler pre-declares them as globals and calls unshadowed ones directly.

use super::strings;
use super::thread;
use super::{Fail, Shared};
pub use crate::builtin::Builtin;
use crate::gil::Gil;
use crate::value::{ArrayObj, Dict, ElemKind, Key, List, MAX_ARRAY_LEN, RangeObj, Value};
use std::io::Write;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Instant;

type BResult = Result<Value, Fail>;

/// Calls builtin `b` with `args`.
pub fn call(b: Builtin, args: &[Value], shared: &Rc<Shared>, gil: Gil) -> BResult {
    use Builtin as B;
    match b {
        B::Print => print(args, gil),
        B::Len => len(one(b, args)?, gil),
        B::Str => Ok(Value::str(&one(b, args)?.to_text(gil)?)),
        B::Int => to_int(one(b, args)?),
        B::Float => to_float(one(b, args)?),
        B::Type => Ok(Value::str(one(b, args)?.type_name())),
        B::Range => range(args),
        B::Push => push(args, gil),
        B::Pop => pop(one(b, args)?, gil),
        B::Keys => keys(one(b, args)?, gil),
        B::Has => has(args, gil),
        B::Remove => remove(args, gil),
        B::Array => array(args, gil),
        B::Sqrt => math(b, args, f64::sqrt),
        B::Sin => math(b, args, f64::sin),
        B::Cos => math(b, args, f64::cos),
        B::Tan => math(b, args, f64::tan),
        B::Exp => math(b, args, f64::exp),
        B::Log => math(b, args, f64::ln),
        B::Floor => round(b, args, f64::floor),
        B::Ceil => round(b, args, f64::ceil),
        B::Abs => abs(one(b, args)?),
        B::Min => extreme(b, args, std::cmp::Ordering::Less, gil),
        B::Max => extreme(b, args, std::cmp::Ordering::Greater, gil),
        B::Clock => none(args).map(|()| Value::Float(clock())),
        B::Spawn => thread::spawn(args, shared, gil),
        // `join(parts, sep)` joins strings; `join(t)` waits for a thread (the VM calls it itself)
        B::Join if args.len() == 2 => strings::join(&args[0], &args[1], gil),
        B::Join => thread::join(one(b, args)?, gil),
        B::Args => none(args).map(|()| Value::list(shared.args.iter().map(|a| Value::str(a)).collect(), gil)),
        B::CpuCount => none(args).map(|()| Value::Int(super::pool::cpu_count() as i64)),
        B::Assert => assert(args, gil),
        B::AtomicAdd => arity(3, args).and_then(|()| super::atomics::add(args)),
        B::AtomicCas => arity(4, args).and_then(|()| super::atomics::cas(args)),
        // the VM calls `pmap` itself (`Vm::call_builtin`), with its caller's room for frames
        B::Pmap => super::pool::pmap(args, super::MAX_DEPTH, false, shared, gil),
        // the interpreter calls these itself, with the place of the call (`Vm::call_sync`)
        B::Lock
        | B::Acquire
        | B::Release
        | B::Locked
        | B::Queue
        | B::Put
        | B::TryGet
        | B::Close
        | B::Barrier
        | B::Wait
        | B::Sleep => Err(Fail::Blocking),
        B::Split => strings::split(args, gil),
        B::Strip => strings::strip("strip", strings::Ends::Both, args),
        B::Lower => strings::map("lower", args, str::to_lowercase),
        B::Upper => strings::map("upper", args, str::to_uppercase),
        B::Replace => strings::replace(args),
        B::Find => strings::find(args),
        B::StartsWith => strings::affix("startswith", "prefix", args, |s, p| s.starts_with(p)),
        B::EndsWith => strings::affix("endswith", "suffix", args, |s, p| s.ends_with(p)),
        B::Ord => strings::ord(args),
        B::Chr => strings::chr(args),
        B::In => contains(args, gil),
        B::ReadFile
        | B::ReadLines
        | B::WriteFile
        | B::AppendFile
        | B::Input
        | B::Eprint
        | B::Exit
        | B::Env
        | B::Time => super::io::call(b, args, gil),
        // `get` of a dict here; of a queue by the interpreter (`Fail::Blocking`), as above
        B::Get => super::lists::get(args, gil),
        // with a key function, the two sorts are the interpreter's too (`Vm::sort_by_key`)
        B::Sort => super::lists::sort(args, gil),
        B::Sorted => super::lists::sorted(args, gil),
        B::Reverse => super::lists::reverse(args, gil),
        B::Insert => super::lists::insert(args, gil),
        B::Extend => super::lists::extend(args, gil),
        B::Index => super::lists::index(args, gil),
        B::Copy => super::lists::copy(args, gil),
        B::Values => super::lists::values(args, gil),
        B::Items => super::lists::items(args, gil),
        B::Format => super::format::format(args, gil),
        B::Round => super::format::round(args),
        B::Seed | B::Random | B::Randint | B::Uniform | B::Gauss | B::Shuffle | B::Choice => {
            super::random::call(b, args, gil)
        }
        B::Sum => super::morelib::sum(args, gil),
        B::Any => super::morelib::any_all(b, args, false, gil),
        B::All => super::morelib::any_all(b, args, true, gil),
        B::Enumerate => super::morelib::enumerate(args, gil),
        B::Zip => super::morelib::zip(args, gil),
        B::Count => super::morelib::count(args, gil),
        B::RFind => strings::rfind(args),
        B::IsDigit => strings::is_class("isdigit", strings::Class::Digit, args),
        B::IsAlpha => strings::is_class("isalpha", strings::Class::Alpha, args),
        B::IsSpace => strings::is_class("isspace", strings::Class::Space, args),
        B::IsAlnum => strings::is_class("isalnum", strings::Class::Alnum, args),
        B::LStrip => strings::strip("lstrip", strings::Ends::Left, args),
        B::RStrip => strings::strip("rstrip", strings::Ends::Right, args),
        B::SplitLines => strings::splitlines(args, gil),
        B::Error => super::handlers::error(args),
        B::Prange => range_named("prange", args),
        B::SetThreads => super::prange::set_threads(args),
        B::Threads => none(args).map(|()| Value::Int(crate::parallel::threads() as i64)),
        B::Shape => super::ndarray::shape(args, gil),
        // the VM calls `forked` itself (`Vm::call_builtin`), with its caller's room for frames
        B::Forked => super::forked::forked(args, super::MAX_DEPTH, false, shared, gil),
        B::SharedArray => super::forked::shared_array(args, gil),
        B::MpiRank
        | B::MpiSize
        | B::MpiBarrier
        | B::MpiSend
        | B::MpiRecv
        | B::MpiBcast
        | B::MpiGather
        | B::MpiScatter
        | B::MpiReduce
        | B::MpiAllreduce => super::mpi::call(b, args, gil),
    }
}

/// The math builtins of one float, computed without the general call path.
#[inline(always)]
pub fn float_math(b: Builtin, x: f64) -> Option<f64> {
    Some(match b {
        Builtin::Sqrt => x.sqrt(),
        Builtin::Sin => x.sin(),
        Builtin::Cos => x.cos(),
        Builtin::Tan => x.tan(),
        Builtin::Exp => x.exp(),
        Builtin::Log => x.ln(),
        _ => return None,
    })
}

/// Checks that a builtin taking no arguments got none.
fn none(args: &[Value]) -> Result<(), Fail> {
    arity(0, args)
}

fn arity(n: usize, args: &[Value]) -> Result<(), Fail> {
    if args.len() != n {
        let s = if n == 1 { "" } else { "s" };
        return Err(format!("expected {n} argument{s}, got {}", args.len()).into());
    }
    Ok(())
}

fn one(_b: Builtin, args: &[Value]) -> Result<&Value, Fail> {
    arity(1, args)?;
    Ok(&args[0])
}

fn print(args: &[Value], gil: Gil) -> BResult {
    write_stdout(print_line(args, gil)?.as_bytes());
    Ok(Value::Nil)
}

/// The line `print` (and `eprint`) writes: the values' texts separated by spaces, and a newline.
pub fn print_line(args: &[Value], gil: Gil) -> Result<String, Fail> {
    let mut line = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(&a.to_text(gil)?);
    }
    line.push('\n');
    Ok(line)
}

/// Writes program output; a closed pipe is not an error of the program.
pub fn write_stdout(bytes: &[u8]) {
    let mut out = super::stdout();
    let _ = out.write_all(bytes);
    if super::stdout_is_terminal() {
        let _ = out.flush();
    }
}

fn len(v: &Value, gil: Gil) -> BResult {
    let n = match v {
        Value::Str(s) => s.chars,
        Value::List(l) => l.borrow(gil).len(),
        Value::Dict(d) => d.borrow(gil).len(),
        Value::Array(a) => super::ndarray::first_dim(a),
        Value::Range(r) => {
            let n = i64::try_from(r.exact_len()).map_err(|_| super::ops::OVERFLOW.to_string())?;
            return Ok(Value::Int(n));
        }
        other => return Err(format!("len() not supported for {}", other.type_name()).into()),
    };
    Ok(Value::Int(n as i64))
}

/// Converts a float to an int by truncation, as `int()` does.
pub fn float_to_int(f: f64) -> Result<i64, Fail> {
    if f.is_nan() {
        return Err("cannot convert nan to int".to_string().into());
    }
    if f.is_infinite() {
        return Err("cannot convert inf to int".to_string().into());
    }
    let t = f.trunc();
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t) {
        return Err("integer overflow".to_string().into());
    }
    Ok(t as i64)
}

fn to_int(v: &Value) -> BResult {
    Ok(Value::Int(match v {
        Value::Int(i) => *i,
        Value::Float(f) => float_to_int(*f)?,
        Value::Bool(b) => *b as i64,
        Value::Str(s) => parse_int(&s.text)?,
        other => return Err(format!("cannot convert {} to int", other.type_name()).into()),
    }))
}

/// `int` of a string: optional whitespace, an optional sign, decimal digits, optional whitespace.
/// Digits outside the int range are `integer overflow`; anything else is an invalid literal,
/// quoted as inside a list so that the error stays on one line.
fn parse_int(text: &str) -> Result<i64, Fail> {
    let t = text.trim_matches([' ', '\t', '\n', '\r']);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_literal("int", text));
    }
    t.parse::<i64>().map_err(|_| Fail::from("integer overflow"))
}

/// The error `invalid literal for int(): "text"`, with `text` quoted as inside a list.
fn invalid_literal(function: &str, text: &str) -> Fail {
    let mut quoted = String::new();
    crate::value::write_quoted(text, &mut quoted);
    format!("invalid literal for {function}(): {quoted}").into()
}

fn to_float(v: &Value) -> BResult {
    Ok(Value::Float(match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => *b as i64 as f64,
        Value::Str(s) => parse_float(&s.text).ok_or_else(|| invalid_literal("float", &s.text))?,
        other => return Err(format!("cannot convert {} to float", other.type_name()).into()),
    }))
}

fn parse_float(text: &str) -> Option<f64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        return t.parse::<f64>().ok().or_else(|| lower.replace("infinity", "inf").parse().ok());
    }
    let ok = !body.is_empty() && body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'));
    if ok { t.parse::<f64>().ok() } else { None }
}

fn int_arg(v: &Value, what: &str) -> Result<i64, Fail> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!("{what} must be an int, not {}", other.type_name()).into()),
    }
}

/// `range(stop)`, `range(start, stop)`, `range(start, stop, step)`.
pub fn range(args: &[Value]) -> BResult {
    range_named("range", args)
}

/// `range` under the name `name` (`prange` outside a `for` header is `range`).
fn range_named(name: &str, args: &[Value]) -> BResult {
    // the argument's description is made only for an error
    let int = |v: &Value| match v {
        Value::Int(i) => Ok(*i),
        other => int_arg(other, &format!("{name}() argument")),
    };
    let ints: Vec<i64> = args.iter().map(int).collect::<Result<_, _>>()?;
    let (start, stop, step) = match ints[..] {
        [stop] => (0, stop, 1),
        [start, stop] => (start, stop, 1),
        [start, stop, step] => (start, stop, step),
        _ => return Err(format!("expected 1 to 3 arguments, got {}", args.len()).into()),
    };
    if step == 0 {
        return Err(format!("{name}() step must not be zero").into());
    }
    Ok(Value::Range(Rc::new(RangeObj { start, stop, step })))
}

fn list_arg<'a>(v: &'a Value, f: &str) -> Result<&'a Rc<List>, Fail> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(format!("{f} expects a list, not {}", other.type_name()).into()),
    }
}

fn dict_arg<'a>(v: &'a Value, f: &str) -> Result<&'a Rc<Dict>, Fail> {
    match v {
        Value::Dict(d) => Ok(d),
        other => Err(format!("{f} expects a dict, not {}", other.type_name()).into()),
    }
}

/// The dict key for a value, or the `unhashable type` error.
pub fn key_of(v: &Value) -> Result<Key, Fail> {
    Key::from_value(v).map_err(|t| format!("unhashable type: {t}").into())
}

/// `key "k" not found`
pub fn missing_key(k: &Value, gil: Gil) -> Fail {
    let mut text = String::new();
    if let Value::Str(_) = k {
        text = Value::list(vec![k.clone()], gil).to_text(gil).unwrap_or_default();
        text = text[1..text.len() - 1].to_string();
    } else {
        text.push_str(&k.to_text(gil).unwrap_or_default());
    }
    format!("key {text} not found").into()
}

fn push(args: &[Value], gil: Gil) -> BResult {
    arity(2, args)?;
    list_arg(&args[0], "push")?.borrow_mut_to_store(&args[1], gil).push(args[1].clone());
    Ok(Value::Nil)
}

fn pop(v: &Value, gil: Gil) -> BResult {
    let popped = list_arg(v, "pop")?.borrow_mut(gil).pop();
    popped.ok_or_else(|| "pop from empty list".to_string().into())
}

fn keys(v: &Value, gil: Gil) -> BResult {
    let d = dict_arg(v, "keys")?.borrow(gil);
    Ok(Value::list(d.keys().map(Key::to_value).collect(), gil))
}

fn has(args: &[Value], gil: Gil) -> BResult {
    arity(2, args)?;
    let d = dict_arg(&args[0], "has")?;
    let k = key_of(&args[1])?;
    Ok(Value::Bool(d.borrow(gil).contains_key(&k)))
}

fn remove(args: &[Value], gil: Gil) -> BResult {
    arity(2, args)?;
    let d = dict_arg(&args[0], "remove")?;
    let k = key_of(&args[1])?;
    let removed = d.borrow_mut(gil).shift_remove(&k);
    removed.ok_or_else(|| missing_key(&args[1], gil))
}

fn array(args: &[Value], gil: Gil) -> BResult {
    arity(2, args)?;
    let n = match &args[0] {
        Value::Int(n) => *n,
        Value::List(_) => 0,
        other => return Err(format!("array length must be an int, not {}", other.type_name()).into()),
    };
    if n < 0 {
        return Err(crate::value::NEGATIVE_LENGTH.to_string().into());
    }
    let (kind, bits) = match &args[1] {
        Value::Float(f) => (ElemKind::Float, f.to_bits()),
        Value::Int(i) => (ElemKind::Int, *i as u64),
        other => return Err(format!("array fill must be an int or a float, not {}", other.type_name()).into()),
    };
    if let Value::List(shape) = &args[0] {
        let shape = shape.borrow(gil).clone();
        return super::ndarray::new_array(&shape, kind, bits);
    }
    let cannot = || Fail::from(crate::value::cannot_allocate(n));
    if n > MAX_ARRAY_LEN {
        return Err(cannot());
    }
    let arr = ArrayObj::new(kind, n as usize, bits).ok_or_else(cannot)?;
    Ok(Value::Array(Rc::new(arr)))
}

fn number(b: Builtin, v: &Value) -> Result<f64, Fail> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        other => Err(format!("{} expects a number, not {}", b.name(), other.type_name()).into()),
    }
}

fn math(b: Builtin, args: &[Value], f: fn(f64) -> f64) -> BResult {
    let x = number(b, one(b, args)?)?;
    Ok(Value::Float(f(x)))
}

fn round(b: Builtin, args: &[Value], f: fn(f64) -> f64) -> BResult {
    match one(b, args)? {
        Value::Int(i) => Ok(Value::Int(*i)),
        other => Ok(Value::Int(float_to_int(f(number(b, other)?))?)),
    }
}

fn abs(v: &Value) -> BResult {
    match v {
        Value::Int(i) => i.checked_abs().map(Value::Int).ok_or_else(|| "integer overflow".to_string().into()),
        Value::Float(f) => Ok(Value::Float(f.abs())),
        other => Err(format!("abs expects a number, not {}", other.type_name()).into()),
    }
}

/// `min`/`max`: the first argument that is smallest (largest); one list or array argument
/// means its elements.
pub(super) fn extreme(b: Builtin, args: &[Value], want: std::cmp::Ordering, gil: Gil) -> BResult {
    let elements: Vec<Value> = match args {
        [Value::List(l)] => l.borrow(gil).clone(),
        [Value::Array(a)] => (0..a.len()).map(|i| a.get(i)).collect(),
        [Value::Range(r)] if r.is_empty() => Vec::new(),
        [Value::Range(r)] => vec![Value::Int(r.start), Value::Int(r.last())],
        _ => args.to_vec(),
    };
    let mut best = elements.first().ok_or_else(|| format!("{} expects at least one value", b.name()))?.clone();
    let op = if want == std::cmp::Ordering::Less { crate::ast::BinOp::Lt } else { crate::ast::BinOp::Gt };
    for v in &elements[1..] {
        if super::ops::compare(op, v, &best, gil)? == Some(want) {
            best = v.clone();
        }
    }
    Ok(best)
}

fn clock() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

fn assert(args: &[Value], gil: Gil) -> BResult {
    let (cond, msg) = match args {
        [c] => (c, "assertion failed".to_string()),
        [c, m] => (c, m.to_text(gil)?),
        _ => return Err(format!("expected 1 to 2 arguments, got {}", args.len()).into()),
    };
    if cond.truthy(gil) { Ok(Value::Nil) } else { Err(msg.into()) }
}

/// `x in c`, called as `in(c, x)` (parser.rs): a substring of a string, an element of a list or
/// array (`==`), a key of a dict, a value of a range (by arithmetic, in constant time).
fn contains(args: &[Value], gil: Gil) -> BResult {
    let [c, x] = args else { return Err(format!("expected 2 arguments, got {}", args.len()).into()) };
    let found = match c {
        Value::Str(s) => match x {
            Value::Str(sub) => s.text.contains(&*sub.text),
            other => {
                return Err(format!("'in <string>' requires a string on the left, not {}", other.type_name()).into());
            }
        },
        Value::List(l) => {
            let items = l.borrow(gil).clone();
            let mut found = false;
            for v in &items {
                if crate::value::values_equal(v, x, gil)? {
                    found = true;
                    break;
                }
            }
            found
        }
        Value::Array(a) => (0..a.len()).any(|i| crate::value::values_equal(&a.get(i), x, gil).unwrap_or(false)),
        Value::Dict(d) => {
            let key = key_of(x)?;
            d.borrow(gil).contains_key(&key)
        }
        Value::Range(r) => match x {
            Value::Int(i) => r.contains(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => r.contains(*f as i64),
            _ => false,
        },
        other => return Err(format!("'in' is not supported for {}", other.type_name()).into()),
    };
    Ok(Value::Bool(found))
}
