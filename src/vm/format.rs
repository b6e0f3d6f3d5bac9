//! `format(x, spec)` and `round(x)` / `round(x, n)`: Python's format-spec mini-language
//! (`[[fill]align][sign][#][0][width][grouping][.precision][type]`) and Python's correctly
//! rounded, half-to-even results. Rust's `{:.N}` and `{:.Ne}` round the exact binary value half
//! to even, which is what Python's `format` does, so the digits come from them.

use super::Fail;
use crate::gil::Gil;
use crate::value::Value;

type BResult = Result<Value, Fail>;

/// The largest width and precision a spec may ask for (Python allows more; mini keeps a
/// formatted value's size bounded).
const MAX_WIDTH: usize = 100_000;

/// A parsed format spec.
#[derive(Clone, Default)]
struct Spec {
    fill: Option<char>,
    align: Option<char>,
    sign: Option<char>,
    alt: bool,
    zero: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    kind: Option<char>,
}

/// `format(x, spec)`.
pub fn format(args: &[Value], gil: Gil) -> BResult {
    let [x, spec] = args else {
        return Err(format!("expected 2 arguments, got {}", args.len()).into());
    };
    let Value::Str(s) = spec else {
        return Err(format!("format expects a string spec, not {}", spec.type_name()).into());
    };
    let text = &s.text;
    let invalid = || Fail::from(format!("format: invalid format spec '{text}' for {}", x.type_name()));
    if text.is_empty() {
        return Ok(Value::str(&x.to_text(gil)?));
    }
    let spec = parse(text).ok_or_else(invalid)?;
    let out = match x {
        Value::Int(i) => format_int(*i, &spec),
        Value::Bool(b) if spec.kind.is_some_and(|k| k != 's') => format_int(*b as i64, &spec),
        Value::Float(f) => format_float(*f, &spec),
        Value::Str(_) | Value::Bool(_) => format_str(&x.to_text(gil)?, &spec),
        _ => None,
    };
    out.map(|s| Value::str(&s)).ok_or_else(invalid)
}

/// Parses a spec; `None` when it is not one.
fn parse(text: &str) -> Option<Spec> {
    let chars: Vec<char> = text.chars().collect();
    let mut spec = Spec::default();
    let mut i = 0;
    let is_align = |c: char| matches!(c, '<' | '>' | '^' | '=');
    if chars.len() >= 2 && is_align(chars[1]) {
        spec.fill = Some(chars[0]);
        spec.align = Some(chars[1]);
        i = 2;
    } else if !chars.is_empty() && is_align(chars[0]) {
        spec.align = Some(chars[0]);
        i = 1;
    }
    if let Some(&c @ ('+' | '-' | ' ')) = chars.get(i) {
        spec.sign = Some(c);
        i += 1;
    }
    if chars.get(i) == Some(&'#') {
        spec.alt = true;
        i += 1;
    }
    if chars.get(i) == Some(&'0') {
        spec.zero = true;
        i += 1;
    }
    let (width, next) = number(&chars, i)?;
    spec.width = width.unwrap_or(0);
    i = next;
    if let Some(&c @ (',' | '_')) = chars.get(i) {
        spec.grouping = Some(c);
        i += 1;
    }
    if chars.get(i) == Some(&'.') {
        let (p, next) = number(&chars, i + 1)?;
        spec.precision = Some(p?);
        i = next;
    }
    if i + 1 == chars.len() {
        spec.kind = Some(chars[i]);
    } else if i != chars.len() {
        return None;
    }
    Some(spec)
}

/// The decimal number at `chars[i..]`, if any, and the index after it; `None` when too large.
fn number(chars: &[char], mut i: usize) -> Option<(Option<usize>, usize)> {
    let start = i;
    let mut n: usize = 0;
    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
        n = n.checked_mul(10)?.checked_add(d as usize)?;
        if n > MAX_WIDTH {
            return None;
        }
        i += 1;
    }
    Some(((i > start).then_some(n), i))
}

/// An int under `spec`; the float types convert it to a float first.
fn format_int(i: i64, spec: &Spec) -> Option<String> {
    let kind = spec.kind.unwrap_or('d');
    if matches!(kind, 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%') {
        return format_float(i as f64, spec);
    }
    if spec.precision.is_some() {
        return None;
    }
    let (radix, group_size, prefix) = match kind {
        'd' => (10, 3, ""),
        'x' => (16, 4, "0x"),
        'X' => (16, 4, "0X"),
        'o' => (8, 4, "0o"),
        'b' => (2, 4, "0b"),
        _ => return None,
    };
    if spec.grouping == Some(',') && radix != 10 {
        return None;
    }
    let m = i.unsigned_abs();
    let mut digits = match radix {
        16 => format!("{m:x}"),
        8 => format!("{m:o}"),
        2 => format!("{m:b}"),
        _ => m.to_string(),
    };
    if kind == 'X' {
        digits.make_ascii_uppercase();
    }
    let prefix = if spec.alt { prefix } else { "" };
    Some(finish_number(i < 0, prefix, &digits, "", group_size, spec))
}

/// A float under `spec`.
fn format_float(x: f64, spec: &Spec) -> Option<String> {
    let kind = spec.kind;
    if !matches!(kind, None | Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%')) {
        return None;
    }
    let upper = matches!(kind, Some('E' | 'F' | 'G'));
    let negative = x.is_sign_negative() && !x.is_nan();
    let a = if kind == Some('%') { x.abs() * 100.0 } else { x.abs() };
    if !a.is_finite() {
        let s = if a.is_nan() { "nan" } else { "inf" };
        let mut s = if kind == Some('%') { format!("{s}%") } else { s.to_string() };
        if upper {
            s.make_ascii_uppercase();
        }
        // nothing to group: the padding zeros stay ungrouped, as in Python
        let plain = Spec { grouping: None, ..spec.clone() };
        return Some(finish_number(negative, "", "", &s, 3, &plain));
    }
    let mut body = {
        match kind {
            Some('e' | 'E') => exponent(a, spec.precision.unwrap_or(6), spec.alt),
            Some('f' | 'F') => fixed(a, spec.precision.unwrap_or(6), spec.alt),
            Some('%') => fixed(a, spec.precision.unwrap_or(6), spec.alt) + "%",
            Some(_) => general(a, spec.precision.unwrap_or(6), spec.alt, false),
            None => match spec.precision {
                Some(p) => general(a, p, spec.alt, true),
                None => {
                    let mut s = String::new();
                    crate::value::write_float(a, &mut s);
                    if spec.alt && !s.contains('.') {
                        s = s.replacen('e', ".e", 1);
                    }
                    s
                }
            },
        }
    };
    if upper {
        body.make_ascii_uppercase();
    }
    // the digits before the point (or exponent) take the grouping; the rest follows them
    let split = body.find(|c: char| !c.is_ascii_digit()).unwrap_or(body.len());
    let (int_part, rest) = body.split_at(split);
    Some(finish_number(negative, "", int_part, rest, 3, spec))
}

/// `x` (finite, not negative) with `p` digits after the point.
fn fixed(x: f64, p: usize, alt: bool) -> String {
    let mut s = format!("{x:.p$}");
    if alt && p == 0 {
        s.push('.');
    }
    s
}

/// `x` (finite, not negative) in exponent notation with `p` digits after the point, the
/// exponent signed and at least two digits as Python writes it.
fn exponent(x: f64, p: usize, alt: bool) -> String {
    let s = format!("{x:.p$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let point = if alt && p == 0 { "." } else { "" };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}{point}e{sign}{:02}", exp.abs())
}

/// The `g` type (and, with `none`, the type left out with a precision): `p` significant
/// digits, fixed notation when the exponent is in -4..p, trailing zeros removed unless `alt`.
fn general(x: f64, p: usize, alt: bool, none: bool) -> String {
    let p = p.max(1);
    let e = format!("{x:.*e}", p - 1);
    let exp: i64 = e.split_once('e').and_then(|(_, x)| x.parse().ok()).unwrap_or(0);
    // with `none`, a value that rounds to an integer of p digits takes exponent notation too
    let limit = if none { p as i64 - 1 } else { p as i64 };
    let mut s =
        if (-4..limit).contains(&exp) { fixed(x, (p as i64 - 1 - exp) as usize, alt) } else { exponent(x, p - 1, alt) };
    if !alt {
        s = strip_zeros(&s);
    }
    if none && !s.contains(['.', 'e']) {
        s.push_str(".0");
    }
    s
}

/// Removes trailing zeros of the fraction (and a point left alone), keeping any exponent.
fn strip_zeros(s: &str) -> String {
    let (mantissa, exp) = match s.find('e') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    if !mantissa.contains('.') {
        return s.to_string();
    }
    let m = mantissa.trim_end_matches('0').trim_end_matches('.');
    format!("{m}{exp}")
}

/// Puts a number together: sign, prefix, grouped digits, the rest, then fill and alignment.
/// With fill `0` and alignment `=`, the zeros of the padding are grouped too, as in Python.
fn finish_number(negative: bool, prefix: &str, digits: &str, rest: &str, group_size: usize, spec: &Spec) -> String {
    let sign = match (negative, spec.sign) {
        (true, _) => "-",
        (false, Some('+')) => "+",
        (false, Some(' ')) => " ",
        _ => "",
    };
    let (fill, align) = number_fill(spec);
    let mut digits = digits.to_string();
    let fixed_len = sign.len() + prefix.len() + rest.chars().count();
    if fill == '0' && align == '=' && spec.width > fixed_len {
        let want = spec.width - fixed_len;
        while grouped_len(digits.len(), group_size, spec.grouping) < want {
            digits.insert(0, '0');
        }
    }
    let grouped = group(&digits, group_size, spec.grouping);
    let body = format!("{grouped}{rest}");
    pad(sign, prefix, &body, fill, align, spec.width)
}

/// The fill and alignment of a number: right by default; the `0` flag means fill `0` and `=`.
fn number_fill(spec: &Spec) -> (char, char) {
    let fill = spec.fill.unwrap_or(if spec.zero { '0' } else { ' ' });
    let align = spec.align.unwrap_or(if spec.zero { '=' } else { '>' });
    (fill, align)
}

/// The length of `n` digits once grouped.
fn grouped_len(n: usize, size: usize, grouping: Option<char>) -> usize {
    if grouping.is_some() && n > 0 { n + (n - 1) / size } else { n }
}

/// `digits` with `sep` between groups of `size`, counted from the right.
fn group(digits: &str, size: usize, grouping: Option<char>) -> String {
    let Some(sep) = grouping else {
        return digits.to_string();
    };
    let n = digits.len();
    let mut out = String::with_capacity(n + n / size);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(size) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// Pads `sign prefix body` to `width` characters with `fill` under `align`; `=` puts the
/// padding between the sign and prefix and the body.
fn pad(sign: &str, prefix: &str, body: &str, fill: char, align: char, width: usize) -> String {
    let len = sign.chars().count() + prefix.len() + body.chars().count();
    let n = width.saturating_sub(len);
    let fills = |k: usize| std::iter::repeat_n(fill, k).collect::<String>();
    match align {
        '<' => format!("{sign}{prefix}{body}{}", fills(n)),
        '^' => format!("{}{sign}{prefix}{body}{}", fills(n / 2), fills(n - n / 2)),
        '=' => format!("{sign}{prefix}{}{body}", fills(n)),
        _ => format!("{}{sign}{prefix}{body}", fills(n)),
    }
}

/// A string (or a bool's text) under `spec`: type `s` or none, precision truncates, no sign,
/// `#`, grouping or `=`.
fn format_str(s: &str, spec: &Spec) -> Option<String> {
    if !matches!(spec.kind, None | Some('s')) || spec.sign.is_some() || spec.alt || spec.grouping.is_some() {
        return None;
    }
    if spec.align == Some('=') {
        return None;
    }
    let body: String = match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    let fill = spec.fill.unwrap_or(if spec.zero { '0' } else { ' ' });
    Some(pad("", "", &body, fill, spec.align.unwrap_or('<'), spec.width))
}

/// `round(x)` and `round(x, n)`.
pub fn round(args: &[Value]) -> BResult {
    match args {
        [x] => match x {
            Value::Int(i) => Ok(Value::Int(*i)),
            Value::Float(f) => Ok(Value::Int(super::builtins::float_to_int(f.round_ties_even())?)),
            other => Err(not_number(other)),
        },
        [x, n] => {
            let Value::Int(n) = n else {
                return Err(format!("round: ndigits must be an int, not {}", n.type_name()).into());
            };
            match x {
                Value::Int(i) => round_int(*i, *n).map(Value::Int),
                Value::Float(f) => round_float(*f, *n).map(Value::Float),
                other => Err(not_number(other)),
            }
        }
        _ => Err(format!("expected 1 to 2 arguments, got {}", args.len()).into()),
    }
}

fn not_number(v: &Value) -> Fail {
    format!("round expects a number, not {}", v.type_name()).into()
}

/// An int rounded to a multiple of `10^-n` (itself when `n >= 0`), half to even.
fn round_int(i: i64, n: i64) -> Result<i64, Fail> {
    if n >= 0 {
        return Ok(i);
    }
    if n < -19 {
        return Ok(0);
    }
    let unit = 10i128.pow((-n) as u32);
    let x = i as i128;
    let (q, r) = (x.div_euclid(unit), x.rem_euclid(unit));
    let up = 2 * r > unit || (2 * r == unit && q % 2 != 0);
    let result = (q + up as i128) * unit;
    i64::try_from(result).map_err(|_| Fail::from("integer overflow"))
}

/// A float rounded to `n` decimal places (`n` may be negative), correctly rounded half to even
/// on the exact binary value, as Python's `round`.
fn round_float(x: f64, n: i64) -> Result<f64, Fail> {
    if !x.is_finite() || x == 0.0 || n > 400 {
        return Ok(x);
    }
    if n >= 0 {
        return Ok(format!("{x:.*}", n as usize).parse().unwrap_or(x));
    }
    if n < -400 {
        return Ok(0.0f64.copysign(x));
    }
    let a = x.abs();
    let int_digits = format!("{:.0}", a.trunc());
    let frac = a - a.trunc();
    let k = (-n) as usize;
    if k > int_digits.len() {
        return Ok(0.0f64.copysign(x));
    }
    let (head, tail) = int_digits.split_at(int_digits.len() - k);
    let half = format!("5{}", "0".repeat(k - 1));
    let up = match tail.cmp(&half) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => frac > 0.0 || head.bytes().last().is_some_and(|d| (d - b'0') % 2 == 1),
    };
    let head = if up { increment(head) } else { head.to_string() };
    let value: f64 = format!("{head}{}", "0".repeat(k)).parse().unwrap_or(0.0);
    if value.is_infinite() {
        return Err("round: rounded value too large to represent".into());
    }
    Ok(value.copysign(x))
}

/// A decimal digit string plus one (`""` is zero).
fn increment(digits: &str) -> String {
    let mut d: Vec<u8> = digits.bytes().collect();
    let mut i = d.len();
    loop {
        if i == 0 {
            d.insert(0, b'1');
            break;
        }
        i -= 1;
        if d[i] == b'9' {
            d[i] = b'0';
        } else {
            d[i] += 1;
            break;
        }
    }
    String::from_utf8(d).unwrap_or_default()
}
