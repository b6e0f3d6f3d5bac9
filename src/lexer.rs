//! The lexer: turns source text into tokens with spans. One logos token enum, [`Tok`], is both
//! the state machine's vocabulary and what the parser reads; its callbacks decode literals.

use crate::source::{Diagnostic, Span};
use logos::{Lexer, Logos};
use std::borrow::Cow;
use std::rc::Rc;

/// Declares [`Tok`]: the variants written out (those that carry a value or that logos does not
/// match by a fixed text), then each fixed-text token once, as `Name = "text"`. The text is both
/// the logos pattern and what [`Tok::symbol`] returns for error messages.
macro_rules! tokens {
    (
        $(#[$meta:meta])*
        pub enum Tok { $($written:tt)* }
        fixed { $($name:ident = $text:tt,)* }
    ) => {
        $(#[$meta])*
        pub enum Tok {
            $($written)*
            $(#[token($text)] $name,)*
        }

        impl Tok {
            /// The text of a fixed-text token (keyword, operator, punctuation), or `None`.
            pub fn symbol(&self) -> Option<&'static str> {
                match self {
                    $(Tok::$name => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

tokens! {
    /// A token kind with its decoded value, as logos recognises it and the parser reads it.
    /// Spaces, tabs, `\r`, form feeds, a byte-order mark and `#` comments are skipped; a line
    /// end is a token, since the parser decides where it ends a statement.
    #[derive(Logos, Clone, Debug, PartialEq)]
    #[logos(error(LexError, LexError::unexpected_char))]
    #[logos(skip r"[ \t\r\f\u{FEFF}]+")]
    #[logos(skip(r"#[^\n]*", allow_greedy = true))]
    pub enum Tok {
        #[token("\n")]
        Newline,
        #[regex(r"[0-9][0-9_]*", decimal_int)]
        #[regex(r"0[xX][0-9a-fA-F_]+", hex_int)]
        Int(i64),
        #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9][0-9_]*)?", float)]
        #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9][0-9_]*", float)]
        Float(f64),
        #[regex(r#""([^"\\\n]|\\[^\n])*""#, string)]
        #[regex(r#""([^"\\\n]|\\[^\n])*\\?"#, unterminated_string)]
        Str(Rc<str>),
        /// An f-string `f"..."`: its text between the quotes as written (escapes and `{}` parts
        /// are taken apart by the parser); string literals inside its fields may contain `"`.
        #[token("f\"", fstring)]
        FStr(Rc<str>),
        #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| Rc::from(lex.slice()))]
        Ident(Rc<str>),
        /// The end of the source; logos never produces it, [`lex`] appends it.
        Eof,
    }
    fixed {
        Fn = "fn",
        Let = "let",
        If = "if",
        Else = "else",
        While = "while",
        For = "for",
        In = "in",
        Break = "break",
        Continue = "continue",
        Return = "return",
        Try = "try",
        Catch = "catch",
        Finally = "finally",
        And = "and",
        Or = "or",
        Not = "not",
        True = "true",
        False = "false",
        Nil = "nil",
        Import = "import",
        LParen = "(",
        RParen = ")",
        LBracket = "[",
        RBracket = "]",
        LBrace = "{",
        RBrace = "}",
        Comma = ",",
        Colon = ":",
        Dot = ".",
        Semi = ";",
        Assign = "=",
        PlusAssign = "+=",
        MinusAssign = "-=",
        StarAssign = "*=",
        SlashAssign = "/=",
        SlashSlashAssign = "//=",
        PercentAssign = "%=",
        Plus = "+",
        Minus = "-",
        Star = "*",
        Slash = "/",
        SlashSlash = "//",
        Percent = "%",
        StarStar = "**",
        EqEq = "==",
        NotEq = "!=",
        Lt = "<",
        LtEq = "<=",
        Gt = ">",
        GtEq = ">=",
        Amp = "&",
        Pipe = "|",
        Caret = "^",
        Tilde = "~",
        LtLt = "<<",
        GtGt = ">>",
    }
}

impl Tok {
    /// How the token is described in syntax errors: `'('`, `'name'`, `a number`, `end of line`.
    pub fn describe(&self) -> String {
        match self {
            Tok::Newline => "end of line".into(),
            Tok::Int(_) | Tok::Float(_) => "a number".into(),
            Tok::Str(_) | Tok::FStr(_) => "a string".into(),
            Tok::Ident(name) => format!("'{name}'"),
            Tok::Eof => "end of file".into(),
            fixed => format!("'{}'", fixed.symbol().unwrap_or("?")),
        }
    }
}

/// A token and where it is.
#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// A malformed token: the message and span of its syntax error. (logos needs `Default` for
/// the error of no match at all, which [`LexError::unexpected_char`] replaces.)
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LexError {
    message: String,
    span: Span,
}

impl LexError {
    /// An error located at `span`.
    fn new(message: impl Into<String>, span: Span) -> LexError {
        LexError { message: message.into(), span }
    }

    /// The error when no token matches: the character that cannot start one.
    fn unexpected_char(lex: &mut Lexer<'_, Tok>) -> LexError {
        let c = lex.slice().chars().next().unwrap_or('?');
        LexError::new(format!("unexpected character '{}'", c.escape_debug()), span_of(lex))
    }
}

/// Splits `src` into tokens, ending with `Eof`. The first malformed token is a syntax error.
pub fn lex(src: &str) -> Result<Vec<Token>, Diagnostic> {
    lex_from(src, 0)
}

/// Splits `src[start..]` into tokens, with spans that are offsets into all of `src` (the
/// prompt's inputs are lexed where they end the session's text); `start` is a char boundary.
pub fn lex_from(src: &str, start: usize) -> Result<Vec<Token>, Diagnostic> {
    let mut out = Vec::new();
    let mut lexer = Tok::lexer(src);
    lexer.bump(start);
    while let Some(tok) = lexer.next() {
        let tok = tok.map_err(|e| Diagnostic::new(e.message, e.span))?;
        out.push(Token { tok, span: span_of(&lexer) });
    }
    let end = Span::new(src.len(), src.len());
    out.push(Token { tok: Tok::Eof, span: end });
    Ok(out)
}

/// The span of the token logos just matched.
fn span_of(lex: &Lexer<'_, Tok>) -> Span {
    let range = lex.span();
    Span::new(range.start, range.end)
}

// ----- number literals -----

/// A decimal int literal, `1_000`.
fn decimal_int(lex: &mut Lexer<'_, Tok>) -> Result<i64, LexError> {
    let digits = number_digits(lex, 0, |c| c.is_ascii_digit())?;
    digits.parse::<i64>().map_err(|_| LexError::new("integer literal too large", span_of(lex)))
}

/// A hexadecimal int literal, `0xff_ff`.
fn hex_int(lex: &mut Lexer<'_, Tok>) -> Result<i64, LexError> {
    let digits = number_digits(lex, 2, |c| c.is_ascii_hexdigit())?;
    i64::from_str_radix(&digits[2..], 16).map_err(|_| LexError::new("integer literal too large", span_of(lex)))
}

/// A float literal, `2.5e-3`; one too large for a double is `inf`.
fn float(lex: &mut Lexer<'_, Tok>) -> Result<f64, LexError> {
    let digits = number_digits(lex, 0, |c| c.is_ascii_digit())?;
    digits.parse::<f64>().map_err(|_| LexError::new("invalid number literal", span_of(lex)))
}

/// Checks a number's form and returns its text without `_`s. A number must not run into a
/// letter, digit or `_` (`12abc`, `1e`, `0x`), nor into a `.` and one of them (`1.e5`, `1.x`,
/// `1.5.2`: a number has no fields), and each `_` after the first `prefix` bytes must stand
/// between two digits (`1_`, `1__0`, `0x_1`, `1_e3` are malformed); each is
/// `invalid number literal`, spanning the number and what it runs into.
fn number_digits<'s>(lex: &Lexer<'s, Tok>, prefix: usize, digit: fn(char) -> bool) -> Result<Cow<'s, str>, LexError> {
    let text = lex.slice();
    let name_char = |c: &char| c.is_alphanumeric() || *c == '_';
    let after = lex.remainder();
    let dot = usize::from(after.starts_with('.') && after[1..].chars().next().is_some_and(|c| name_char(&c)));
    let rest: usize = dot + after[dot..].chars().take_while(name_char).map(char::len_utf8).sum::<usize>();
    if rest > 0 || !underscores_between_digits(&text[prefix..], digit) {
        let start = lex.span().start;
        return Err(LexError::new("invalid number literal", Span::new(start, lex.span().end + rest)));
    }
    Ok(if text.contains('_') { Cow::Owned(text.replace('_', "")) } else { Cow::Borrowed(text) })
}

/// Whether every `_` in `text` has a digit on each side.
fn underscores_between_digits(text: &str, digit: fn(char) -> bool) -> bool {
    let bytes = text.as_bytes();
    let is_digit = |i: Option<usize>| i.and_then(|i| bytes.get(i)).is_some_and(|&b| digit(b as char));
    bytes.iter().enumerate().all(|(i, &b)| b != b'_' || (is_digit(i.checked_sub(1)) && is_digit(Some(i + 1))))
}

// ----- string literals -----

/// A string literal; its escapes `\n \t \r \\ \" \0` are decoded, any other is an error
/// located at the backslash.
fn string(lex: &mut Lexer<'_, Tok>) -> Result<Rc<str>, LexError> {
    let text = lex.slice();
    unescape(&text[1..text.len() - 1], lex.span().start + 1).map(Rc::from).map_err(|d| LexError::new(d.message, d.span))
}

/// The text of a string literal's `body` (which starts at byte `body_start` of the source) with
/// its escapes decoded; an unknown escape is an error located at the backslash.
pub fn unescape(body: &str, body_start: usize) -> Result<String, Diagnostic> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars.next().unwrap_or((i, '\\'));
        out.push(match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            '"' => '"',
            '0' => '\0',
            other => {
                let at = body_start + i;
                let span = Span::new(at, at + 1 + other.len_utf8());
                return Err(Diagnostic::new(format!("unknown escape sequence '\\{other}'"), span));
            }
        });
    }
    Ok(out)
}

/// How far f-strings may nest inside each other's fields (the lexer scans them recursively).
const MAX_FSTRING_NESTING: usize = 50;

/// Why an f-string could not be scanned.
enum Scan {
    /// A line end or the end of the source came first.
    Unterminated,
    TooDeep,
}

/// An f-string, after its `f"`: the text up to the `"` that closes it, where `"` inside a field's
/// string literals (and nested f-strings) does not close it, as in Python 3.12. Text that does not
/// scan that way (a field left open, say) ends at its first unescaped `"` as before, so that the
/// parser reports what is wrong inside; with no such `"` on the line it is an unterminated string.
fn fstring(lex: &mut Lexer<'_, Tok>) -> Result<Rc<str>, LexError> {
    let src = lex.source().as_bytes();
    let (start, quote) = (lex.span().start, lex.span().end - 1);
    let end = match skip_fstring(src, quote, 0) {
        Ok(end) => end,
        Err(Scan::TooDeep) => return Err(LexError::new("nesting too deep", span_of(lex))),
        Err(Scan::Unterminated) => match plain_fstring_end(src, quote) {
            Some(end) => end,
            None => {
                // as the lexer always reported it: the `f` a name, then a string from the quote
                let line_end = src[quote..].iter().position(|&b| b == b'\n').map_or(src.len(), |k| quote + k);
                return Err(LexError::new("unterminated string", Span::new(quote, line_end)));
            }
        },
    };
    lex.bump(end - lex.span().end);
    Ok(Rc::from(&lex.source()[start + 2..end - 1]))
}

/// The end (after the closing quote) of an f-string whose quote is `b[quote]`, by the rule of
/// plain strings: the first `"` not escaped.
fn plain_fstring_end(b: &[u8], quote: usize) -> Option<usize> {
    skip_string(b, quote).ok()
}

/// After the string literal whose opening quote is `b[quote]` (escapes skipped).
fn skip_string(b: &[u8], quote: usize) -> Result<usize, Scan> {
    skip_quoted(b, quote, None)
}

/// After the literal whose opening quote is `b[quote]` inside an f-string field: an f-string
/// when an `f` that does not end a longer name comes just before the quote, else a plain string.
pub fn skip_literal(b: &[u8], quote: usize) -> Option<usize> {
    skip_literal_at(b, quote, 0).ok()
}

fn skip_literal_at(b: &[u8], quote: usize, depth: usize) -> Result<usize, Scan> {
    let name_char = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
    let is_f = quote >= 1 && b[quote - 1] == b'f' && !(quote >= 2 && name_char(quote - 2));
    if is_f { skip_fstring(b, quote, depth + 1) } else { skip_string(b, quote) }
}

/// After the f-string whose opening quote is `b[quote]`, nested `depth` f-strings deep.
fn skip_fstring(b: &[u8], quote: usize, depth: usize) -> Result<usize, Scan> {
    if depth > MAX_FSTRING_NESTING {
        return Err(Scan::TooDeep);
    }
    skip_quoted(b, quote, Some(depth))
}

/// After the literal whose opening quote is `b[quote]`: escapes skipped, and with `fields` (an
/// f-string `fields` deep) each `{...}` field skipped, `{{` being a brace of the text.
fn skip_quoted(b: &[u8], quote: usize, fields: Option<usize>) -> Result<usize, Scan> {
    let mut i = quote + 1;
    loop {
        match (b.get(i), fields) {
            (None | Some(b'\n'), _) => return Err(Scan::Unterminated),
            (Some(b'\\'), _) if matches!(b.get(i + 1), None | Some(b'\n')) => return Err(Scan::Unterminated),
            (Some(b'\\'), _) => i += 2,
            (Some(b'"'), _) => return Ok(i + 1),
            (Some(b'{'), Some(_)) if b.get(i + 1) == Some(&b'{') => i += 2,
            (Some(b'{'), Some(depth)) => i = skip_field(b, i + 1, depth)?,
            (Some(_), _) => i += 1,
        }
    }
}

/// After the field whose expression starts at `b[i]` (just after its `{`): the index after its
/// `}`, or of a `"` that ends the f-string inside the spec (a field left open).
fn skip_field(b: &[u8], mut i: usize, depth: usize) -> Result<usize, Scan> {
    let mut brackets = 0usize;
    loop {
        match b.get(i) {
            None | Some(b'\n') => return Err(Scan::Unterminated),
            Some(b'\\') if matches!(b.get(i + 1), None | Some(b'\n')) => return Err(Scan::Unterminated),
            Some(b'\\') => i += 2,
            Some(b'"') => i = skip_literal_at(b, i, depth)?,
            Some(b'(' | b'[' | b'{') => {
                brackets += 1;
                i += 1;
            }
            Some(b')' | b']') => {
                brackets = brackets.saturating_sub(1);
                i += 1;
            }
            Some(b'}') if brackets == 0 => return Ok(i + 1),
            Some(b'}') => {
                brackets -= 1;
                i += 1;
            }
            Some(b':') if brackets == 0 => return skip_spec(b, i + 1, depth),
            Some(_) => i += 1,
        }
    }
}

/// After a field's spec starting at `b[i]`: the index after its `}`, or of a `"` (which ends the
/// f-string: a spec holds no string literals).
fn skip_spec(b: &[u8], mut i: usize, depth: usize) -> Result<usize, Scan> {
    loop {
        match b.get(i) {
            None | Some(b'\n') => return Err(Scan::Unterminated),
            Some(b'\\') if matches!(b.get(i + 1), None | Some(b'\n')) => return Err(Scan::Unterminated),
            Some(b'\\') => i += 2,
            Some(b'"') => return Ok(i),
            Some(b'{') => i = skip_field(b, i + 1, depth)?,
            Some(b'}') => return Ok(i + 1),
            Some(_) => i += 1,
        }
    }
}

/// A string literal cut off by a line end or the end of the file.
fn unterminated_string(lex: &mut Lexer<'_, Tok>) -> Result<Rc<str>, LexError> {
    Err(LexError::new("unterminated string", span_of(lex)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn error(src: &str) -> (String, Span) {
        let d = lex(src).unwrap_err();
        (d.message, d.span)
    }

    #[test]
    fn numbers_and_operators() {
        assert_eq!(
            kinds("1_000 0xff 2.5e-3 1e1_0 // **"),
            vec![
                Tok::Int(1000),
                Tok::Int(255),
                Tok::Float(0.0025),
                Tok::Float(1e10),
                Tok::SlashSlash,
                Tok::StarStar,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn bit_operators() {
        assert_eq!(
            kinds("a&b|c^~d<<e>>f<=>="),
            vec![
                Tok::Ident("a".into()),
                Tok::Amp,
                Tok::Ident("b".into()),
                Tok::Pipe,
                Tok::Ident("c".into()),
                Tok::Caret,
                Tok::Tilde,
                Tok::Ident("d".into()),
                Tok::LtLt,
                Tok::Ident("e".into()),
                Tok::GtGt,
                Tok::Ident("f".into()),
                Tok::LtEq,
                Tok::GtEq,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn malformed_numbers() {
        let invalid = |src: &str, end| assert_eq!(error(src), ("invalid number literal".into(), Span::new(0, end)));
        invalid("12abc", 5);
        invalid("1__0 x", 4);
        invalid("1_.5", 4);
        invalid("0x_1", 4);
        invalid("1_e3", 4);
        invalid("0x", 2);
        invalid("1e+", 2);
        assert_eq!(error("99999999999999999999").0, "integer literal too large");
        assert_eq!(error("0x8000000000000000").0, "integer literal too large");
        assert_eq!(kinds("0x7fffffffffffffff 1e400"), vec![Tok::Int(i64::MAX), Tok::Float(f64::INFINITY), Tok::Eof]);
    }

    #[test]
    fn strings_and_errors() {
        assert_eq!(kinds(r#""a\n\"b""#), vec![Tok::Str("a\n\"b".into()), Tok::Eof]);
        assert_eq!(error("x \"abc"), ("unterminated string".into(), Span::new(2, 6)));
        assert_eq!(error(r#""é\q""#), (r"unknown escape sequence '\q'".into(), Span::new(3, 5)));
        assert_eq!(error("a @"), ("unexpected character '@'".into(), Span::new(2, 3)));
    }

    #[test]
    fn dots_between_names_and_in_floats() {
        let name = |n: &str| Tok::Ident(n.into());
        assert_eq!(kinds("a.b"), vec![name("a"), Tok::Dot, name("b"), Tok::Eof]);
        assert_eq!(kinds("1.5 x.5"), vec![Tok::Float(1.5), name("x"), Tok::Dot, Tok::Int(5), Tok::Eof]);
        assert_eq!(kinds("p.x.y2"), vec![name("p"), Tok::Dot, name("x"), Tok::Dot, name("y2"), Tok::Eof]);
        assert_eq!(kinds("1 .x 1."), vec![Tok::Int(1), Tok::Dot, name("x"), Tok::Int(1), Tok::Dot, Tok::Eof]);
        let invalid = |src: &str, end| assert_eq!(error(src), ("invalid number literal".into(), Span::new(0, end)));
        invalid("1.x", 3);
        invalid("1.e5", 4);
        invalid("2.5e3.x", 7);
        invalid("1.5.2 ", 5);
        invalid("0xff.b", 6);
    }

    #[test]
    fn keywords_vs_identifiers() {
        assert_eq!(kinds("fn fnx"), vec![Tok::Fn, Tok::Ident("fnx".into()), Tok::Eof]);
        assert_eq!(Tok::SlashSlashAssign.describe(), "'//='");
        assert_eq!(Tok::Ident("x".into()).describe(), "'x'");
    }
}
