//! Takes an f-string's text apart into literal text (escapes decoded, `{{` and `}}` as single
//! braces) and `{expression[:spec]}` fields, whose expressions the parser then parses.

use crate::lexer::unescape;
use crate::source::{Diagnostic, Span};

/// A piece of an f-string.
#[derive(Debug, PartialEq)]
pub enum Piece<'a> {
    Text(String),
    /// `{expr:spec}`: the expression's text, the byte of the source it starts at, and the spec
    /// (escapes decoded; empty when there is none).
    Field {
        expr: &'a str,
        at: usize,
        spec: String,
    },
}

/// The pieces of `raw`, the text between an f-string's quotes, which starts at byte `start`.
pub fn split(raw: &str, start: usize) -> Result<Vec<Piece<'_>>, Diagnostic> {
    let bytes = raw.as_bytes();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut segment = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b @ (b'{' | b'}') if bytes.get(i + 1) == Some(&b) => {
                text.push_str(&unescape(&raw[segment..i], start + segment)?);
                text.push(b as char);
                i += 2;
                segment = i;
            }
            b'}' => return Err(error("single '}' in f-string (write '}}')", start + i, 1)),
            b'{' => {
                text.push_str(&unescape(&raw[segment..i], start + segment)?);
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                let (piece, end) = field(raw, i, start)?;
                pieces.push(piece);
                i = end + 1;
                segment = i;
            }
            _ => i += 1,
        }
    }
    text.push_str(&unescape(&raw[segment.min(raw.len())..], start + segment)?);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The field opening at `raw[open]` (a `{`) and the index of its closing `}`. The expression
/// ends at the first `:` or `}` outside brackets and string literals; the spec runs to the next
/// `}`.
fn field(raw: &str, open: usize, start: usize) -> Result<(Piece<'_>, usize), Diagnostic> {
    let bytes = raw.as_bytes();
    let unclosed = || error("expected '}' to close '{' in f-string", start + open, 1);
    let mut depth = 0usize;
    let mut i = open + 1;
    let colon = loop {
        match bytes.get(i) {
            None => return Err(unclosed()),
            Some(b'\\') => return Err(error("backslash in an f-string expression", start + i, 1)),
            // a string literal (or nested f-string) is skipped whole: its `"`, `:`, braces and
            // escapes belong to it
            Some(b'"') => {
                i = crate::lexer::skip_literal(bytes, i).ok_or_else(unclosed)?;
                continue;
            }
            Some(b'(' | b'[' | b'{') => depth += 1,
            Some(b')' | b']') => depth = depth.saturating_sub(1),
            Some(b'}') if depth == 0 => break None,
            Some(b'}') => depth -= 1,
            Some(b':') if depth == 0 => break Some(i),
            _ => {}
        }
        i += 1;
    };
    let expr_end = colon.unwrap_or(i);
    let expr = &raw[open + 1..expr_end];
    let Some(spec_start) = colon.map(|c| c + 1) else {
        return Ok((Piece::Field { expr, at: start + open + 1, spec: String::new() }, i));
    };
    let close = raw[spec_start..].find(['{', '}']).map(|k| spec_start + k).ok_or_else(unclosed)?;
    if bytes[close] == b'{' {
        return Err(error("'{' in an f-string format spec is not supported", start + close, 1));
    }
    let spec = unescape(&raw[spec_start..close], start + spec_start)?;
    Ok((Piece::Field { expr, at: start + open + 1, spec }, close))
}

fn error(message: &str, at: usize, len: usize) -> Diagnostic {
    Diagnostic::new(message, Span::new(at, at + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_and_doubled_braces() {
        let pieces = split(r"a{{b}} {x:>5}\n{y}", 0).unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::Text("a{b} ".into()),
                Piece::Field { expr: "x", at: 8, spec: ">5".into() },
                Piece::Text("\n".into()),
                Piece::Field { expr: "y", at: 16, spec: String::new() },
            ]
        );
    }

    #[test]
    fn brackets_keep_colons_and_braces_inside_the_expression() {
        let pieces = split("{d[a:b]:5}{ {1: 2} }", 0).unwrap();
        assert_eq!(pieces[0], Piece::Field { expr: "d[a:b]", at: 1, spec: "5".into() });
        assert_eq!(pieces[1], Piece::Field { expr: " {1: 2} ", at: 11, spec: String::new() });
    }

    #[test]
    fn malformed_fields_are_errors() {
        assert_eq!(split("a}b", 0).unwrap_err().message, "single '}' in f-string (write '}}')");
        assert_eq!(split("{x", 0).unwrap_err().message, "expected '}' to close '{' in f-string");
        assert_eq!(split("{x:5", 0).unwrap_err().message, "expected '}' to close '{' in f-string");
        assert_eq!(split("{x:{w}}", 0).unwrap_err().message, "'{' in an f-string format spec is not supported");
        assert_eq!(split(r"{\n}", 0).unwrap_err().message, "backslash in an f-string expression");
    }

    #[test]
    fn string_literals_inside_fields() {
        let pieces = split(r#"{d["a:}"]:>4}{f"{x["y"]}"}"#, 0).unwrap();
        assert_eq!(pieces[0], Piece::Field { expr: r#"d["a:}"]"#, at: 1, spec: ">4".into() });
        assert_eq!(pieces[1], Piece::Field { expr: r#"f"{x["y"]}""#, at: 14, spec: String::new() });
        let pieces = split(r#"{"a\"b\tc"}"#, 0).unwrap();
        assert_eq!(pieces[0], Piece::Field { expr: r#""a\"b\tc""#, at: 1, spec: String::new() });
    }
}
