//! The lexer: turns source text into tokens with spans, using a `logos` state machine.

use crate::source::{Diagnostic, Span};
use logos::Logos;

/// The raw token kinds recognised by logos. Literal values are decoded by [`lex`].
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(skip r"[ \t\r\f\u{FEFF}]+")]
#[logos(skip(r"#[^\n]*", allow_greedy = true))]
enum Raw {
    #[token("\n")]
    Newline,
    #[regex(r"[0-9][0-9_]*")]
    #[regex(r"0[xX][0-9a-fA-F_]+")]
    Int,
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?")]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9]+")]
    Float,
    #[regex(r#""([^"\\\n]|\\[^\n])*""#)]
    Str,
    #[regex(r#""([^"\\\n]|\\[^\n])*\\?"#)]
    UnterminatedStr,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    #[token("fn")]
    Fn,
    #[token("let")]
    Let,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("while")]
    While,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("break")]
    Break,
    #[token("continue")]
    Continue,
    #[token("return")]
    Return,
    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("not")]
    Not,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("nil")]
    Nil,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(";")]
    Semi,
    #[token("=")]
    Assign,
    #[token("+=")]
    PlusAssign,
    #[token("-=")]
    MinusAssign,
    #[token("*=")]
    StarAssign,
    #[token("/=")]
    SlashAssign,
    #[token("//=")]
    SlashSlashAssign,
    #[token("%=")]
    PercentAssign,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("//")]
    SlashSlash,
    #[token("%")]
    Percent,
    #[token("**")]
    StarStar,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    LtEq,
    #[token(">")]
    Gt,
    #[token(">=")]
    GtEq,
}

/// A token kind with its decoded value, as the parser sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Newline,
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    Fn,
    Let,
    If,
    Else,
    While,
    For,
    In,
    Break,
    Continue,
    Return,
    And,
    Or,
    Not,
    True,
    False,
    Nil,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Semi,
    Assign,
    PlusAssign,
    MinusAssign,
    StarAssign,
    SlashAssign,
    SlashSlashAssign,
    PercentAssign,
    Plus,
    Minus,
    Star,
    Slash,
    SlashSlash,
    Percent,
    StarStar,
    EqEq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Eof,
}

impl Tok {
    /// How the token is described in syntax errors.
    pub fn describe(&self) -> String {
        match self {
            Tok::Newline => "end of line".into(),
            Tok::Int(_) | Tok::Float(_) => "a number".into(),
            Tok::Str(_) => "a string".into(),
            Tok::Ident(name) => format!("'{name}'"),
            Tok::Eof => "end of file".into(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        use Tok::*;
        match self {
            Fn => "fn",
            Let => "let",
            If => "if",
            Else => "else",
            While => "while",
            For => "for",
            In => "in",
            Break => "break",
            Continue => "continue",
            Return => "return",
            And => "and",
            Or => "or",
            Not => "not",
            True => "true",
            False => "false",
            Nil => "nil",
            LParen => "(",
            RParen => ")",
            LBracket => "[",
            RBracket => "]",
            LBrace => "{",
            RBrace => "}",
            Comma => ",",
            Colon => ":",
            Semi => ";",
            Assign => "=",
            PlusAssign => "+=",
            MinusAssign => "-=",
            StarAssign => "*=",
            SlashAssign => "/=",
            SlashSlashAssign => "//=",
            PercentAssign => "%=",
            Plus => "+",
            Minus => "-",
            Star => "*",
            Slash => "/",
            SlashSlash => "//",
            Percent => "%",
            StarStar => "**",
            EqEq => "==",
            NotEq => "!=",
            Lt => "<",
            LtEq => "<=",
            Gt => ">",
            GtEq => ">=",
            Newline | Int(_) | Float(_) | Str(_) | Ident(_) | Eof => "?",
        }
    }
}

/// A token and where it is.
#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Splits `src` into tokens, ending with `Eof`. The first malformed token is a syntax error.
pub fn lex(src: &str) -> Result<Vec<Token>, Diagnostic> {
    let mut out = Vec::new();
    let mut lexer = Raw::lexer(src);
    while let Some(raw) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(range.start, range.end);
        let text = lexer.slice();
        let tok = match raw {
            Ok(Raw::Int | Raw::Float) => {
                check_number_end(src, range.start, range.end)?;
                decode(raw.expect("matched"), text, span)?
            }
            Ok(raw) => decode(raw, text, span)?,
            Err(()) => return Err(unexpected_char(text, span)),
        };
        out.push(Token { tok, span });
    }
    let end = Span::new(src.len(), src.len());
    out.push(Token { tok: Tok::Eof, span: end });
    Ok(out)
}

/// A number must not run into a letter, digit or `_` (`12abc`, `1e`, `0x`), and its `_`s must
/// stand between digits (`1_`, `1__0` are malformed).
fn check_number_end(src: &str, start: usize, end: usize) -> Result<(), Diagnostic> {
    let text = &src[start..end];
    let rest = src[end..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').map(char::len_utf8).sum::<usize>();
    let bad_underscore = text.ends_with('_') || text.contains("__") || text.contains("_.") || text.contains("._");
    if rest > 0 || bad_underscore {
        return Err(Diagnostic::new("invalid number literal", Span::new(start, end + rest)));
    }
    Ok(())
}

fn unexpected_char(text: &str, span: Span) -> Diagnostic {
    let c = text.chars().next().unwrap_or('?');
    Diagnostic::new(format!("unexpected character '{}'", c.escape_debug()), span)
}

/// Turns a raw token into a parser token, decoding numbers and strings.
fn decode(raw: Raw, text: &str, span: Span) -> Result<Tok, Diagnostic> {
    use Raw as R;
    Ok(match raw {
        R::Newline => Tok::Newline,
        R::Int => Tok::Int(parse_int(text, span)?),
        R::Float => Tok::Float(parse_float(text, span)?),
        R::Str => Tok::Str(unescape(&text[1..text.len() - 1], span)?),
        R::UnterminatedStr => return Err(Diagnostic::new("unterminated string", span)),
        R::Ident => Tok::Ident(text.to_string()),
        R::Fn => Tok::Fn,
        R::Let => Tok::Let,
        R::If => Tok::If,
        R::Else => Tok::Else,
        R::While => Tok::While,
        R::For => Tok::For,
        R::In => Tok::In,
        R::Break => Tok::Break,
        R::Continue => Tok::Continue,
        R::Return => Tok::Return,
        R::And => Tok::And,
        R::Or => Tok::Or,
        R::Not => Tok::Not,
        R::True => Tok::True,
        R::False => Tok::False,
        R::Nil => Tok::Nil,
        R::LParen => Tok::LParen,
        R::RParen => Tok::RParen,
        R::LBracket => Tok::LBracket,
        R::RBracket => Tok::RBracket,
        R::LBrace => Tok::LBrace,
        R::RBrace => Tok::RBrace,
        R::Comma => Tok::Comma,
        R::Colon => Tok::Colon,
        R::Semi => Tok::Semi,
        R::Assign => Tok::Assign,
        R::PlusAssign => Tok::PlusAssign,
        R::MinusAssign => Tok::MinusAssign,
        R::StarAssign => Tok::StarAssign,
        R::SlashAssign => Tok::SlashAssign,
        R::SlashSlashAssign => Tok::SlashSlashAssign,
        R::PercentAssign => Tok::PercentAssign,
        R::Plus => Tok::Plus,
        R::Minus => Tok::Minus,
        R::Star => Tok::Star,
        R::Slash => Tok::Slash,
        R::SlashSlash => Tok::SlashSlash,
        R::Percent => Tok::Percent,
        R::StarStar => Tok::StarStar,
        R::EqEq => Tok::EqEq,
        R::NotEq => Tok::NotEq,
        R::Lt => Tok::Lt,
        R::LtEq => Tok::LtEq,
        R::Gt => Tok::Gt,
        R::GtEq => Tok::GtEq,
    })
}

fn parse_int(text: &str, span: Span) -> Result<i64, Diagnostic> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    let parsed = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some("") => return Err(Diagnostic::new("invalid number literal", span)),
        Some(hex) => i64::from_str_radix(hex, 16),
        None => digits.parse::<i64>(),
    };
    parsed.map_err(|_| Diagnostic::new("integer literal too large", span))
}

fn parse_float(text: &str, span: Span) -> Result<f64, Diagnostic> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    digits.parse::<f64>().map_err(|_| Diagnostic::new("invalid number literal", span))
}

/// Decodes the escapes `\n \t \r \\ \" \0` in a string literal's body.
fn unescape(body: &str, span: Span) -> Result<String, Diagnostic> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (j, e) = chars.next().unwrap_or((i, '\\'));
        out.push(match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            '"' => '"',
            '0' => '\0',
            other => {
                let at = span.start as usize + 1 + i;
                let esc_span = Span::new(at, at + 1 + other.len_utf8());
                let _ = j;
                return Err(Diagnostic::new(format!("unknown escape sequence '\\{other}'"), esc_span));
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_and_operators() {
        assert_eq!(
            kinds("1_000 0xff 2.5e-3 // **"),
            vec![Tok::Int(1000), Tok::Int(255), Tok::Float(0.0025), Tok::SlashSlash, Tok::StarStar, Tok::Eof]
        );
    }

    #[test]
    fn strings_and_errors() {
        assert_eq!(kinds(r#""a\n\"b""#), vec![Tok::Str("a\n\"b".into()), Tok::Eof]);
        assert_eq!(lex("\"abc").unwrap_err().message, "unterminated string");
        assert!(lex(r#""\q""#).unwrap_err().message.contains("unknown escape"));
        assert_eq!(lex("99999999999999999999").unwrap_err().message, "integer literal too large");
    }

    #[test]
    fn keywords_vs_identifiers() {
        assert_eq!(kinds("fn fnx"), vec![Tok::Fn, Tok::Ident("fnx".into()), Tok::Eof]);
    }
}
