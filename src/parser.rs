//! The parser: a hand-written recursive-descent parser from tokens to the AST. It never panics:
//! every malformed input, including nesting too deep to parse, is a syntax error with a span.

use crate::ast::*;
use crate::lexer::{Tok, Token, lex};
use crate::source::{Diagnostic, Span};
use std::rc::Rc;

/// The deepest nesting of expressions and blocks the parser accepts (see lang-spec/limits.md).
pub const MAX_NESTING: usize = 200;

type PResult<T> = Result<T, Diagnostic>;

/// Parses a whole program into its top-level statements.
pub fn parse(src: &str) -> PResult<Vec<Stmt>> {
    let tokens = lex(src)?;
    let mut parser = Parser { tokens, pos: 0, skip_newlines: vec![false], depth: 0 };
    parser.program()
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Whether newlines are insignificant at the current bracket level (inside `( )`, `[ ]`
    /// and dict literals they are; inside blocks they end statements).
    skip_newlines: Vec<bool>,
    depth: usize,
}

impl Parser {
    // ----- token access -----

    fn skip_insignificant(&mut self) {
        if *self.skip_newlines.last().unwrap_or(&false) {
            self.skip_nl();
        }
    }

    fn skip_nl(&mut self) {
        while self.tokens[self.pos].tok == Tok::Newline {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> &Tok {
        self.skip_insignificant();
        &self.tokens[self.pos].tok
    }

    fn peek_span(&mut self) -> Span {
        self.skip_insignificant();
        self.tokens[self.pos].span
    }

    fn advance(&mut self) -> Token {
        self.skip_insignificant();
        let t = self.tokens[self.pos].clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok, context: &str) -> PResult<Span> {
        if self.peek() == &tok {
            Ok(self.advance().span)
        } else {
            Err(self.error_here(&format!("expected '{}' {}", tok.symbol().unwrap_or("?"), context)))
        }
    }

    fn expect_ident(&mut self, context: &str) -> PResult<(Rc<str>, Span)> {
        let span = self.peek_span();
        match self.peek().clone() {
            Tok::Ident(name) => {
                self.advance();
                Ok((name, span))
            }
            _ => Err(self.error_here(&format!("expected a name {context}"))),
        }
    }

    fn error_here(&mut self, what: &str) -> Diagnostic {
        let span = self.peek_span();
        let found = self.peek().describe();
        Diagnostic::new(format!("{what}, found {found}"), span)
    }

    fn enter(&mut self, span: Span) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(Diagnostic::new("nesting too deep", span));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ----- statements -----

    fn program(&mut self) -> PResult<Vec<Stmt>> {
        let stmts = self.statements()?;
        if self.peek() != &Tok::Eof {
            return Err(self.error_here("expected a statement"));
        }
        Ok(stmts)
    }

    /// Statements up to a `}` or the end of file (neither consumed).
    fn statements(&mut self) -> PResult<Vec<Stmt>> {
        let mut stmts = Vec::new();
        loop {
            while matches!(self.tokens[self.pos].tok, Tok::Newline | Tok::Semi) {
                self.pos += 1;
            }
            if matches!(self.tokens[self.pos].tok, Tok::RBrace | Tok::Eof) {
                return Ok(stmts);
            }
            stmts.push(self.statement()?);
            match self.tokens[self.pos].tok {
                Tok::Newline | Tok::Semi => self.pos += 1,
                Tok::RBrace | Tok::Eof => {}
                _ if self.tokens[self.pos - 1].tok == Tok::RBrace => {}
                _ => return Err(self.error_here("expected end of line after statement")),
            }
        }
    }

    fn block(&mut self) -> PResult<Vec<Stmt>> {
        let open = self.expect(Tok::LBrace, "to start a block")?;
        self.enter(open)?;
        self.skip_newlines.push(false);
        let body = self.statements();
        self.skip_newlines.pop();
        let body = body?;
        if self.tokens[self.pos].tok != Tok::RBrace {
            return Err(self.error_here("expected '}' to close the block"));
        }
        self.pos += 1;
        self.leave();
        Ok(body)
    }

    fn statement(&mut self) -> PResult<Stmt> {
        let start = self.peek_span();
        let kind = match self.peek().clone() {
            Tok::Let => self.let_stmt()?,
            Tok::Fn if matches!(self.tokens[self.pos + 1].tok, Tok::Ident(_)) => StmtKind::Fn(self.function(true)?),
            Tok::If => self.if_stmt()?,
            Tok::While => {
                self.advance();
                let cond = self.expr()?;
                StmtKind::While(cond, self.block()?)
            }
            Tok::For => self.for_stmt()?,
            Tok::Break => {
                self.advance();
                StmtKind::Break
            }
            Tok::Continue => {
                self.advance();
                StmtKind::Continue
            }
            Tok::Return => {
                self.advance();
                match self.tokens[self.pos].tok {
                    Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof => StmtKind::Return(None),
                    _ => StmtKind::Return(Some(self.expr()?)),
                }
            }
            _ => self.expr_or_assign()?,
        };
        let end = self.tokens[self.pos.saturating_sub(1)].span;
        Ok(Stmt { kind, span: start.to(end) })
    }

    fn let_stmt(&mut self) -> PResult<StmtKind> {
        self.advance();
        let (name, _) = self.expect_ident("after 'let'")?;
        self.expect(Tok::Assign, "after the name in 'let'")?;
        self.skip_nl();
        Ok(StmtKind::Let(name, self.expr()?))
    }

    fn if_stmt(&mut self) -> PResult<StmtKind> {
        let mut arms = Vec::new();
        let mut otherwise = None;
        self.advance();
        loop {
            let cond = self.expr()?;
            arms.push((cond, self.block()?));
            if !self.eat_else() {
                break;
            }
            if self.peek() == &Tok::If {
                self.advance();
                continue;
            }
            otherwise = Some(self.block()?);
            break;
        }
        Ok(StmtKind::If(arms, otherwise))
    }

    /// Consumes `else`, which may stand on the line after the closing `}`.
    fn eat_else(&mut self) -> bool {
        let mut look = self.pos;
        while self.tokens[look].tok == Tok::Newline {
            look += 1;
        }
        if self.tokens[look].tok == Tok::Else {
            self.pos = look + 1;
            true
        } else {
            false
        }
    }

    fn for_stmt(&mut self) -> PResult<StmtKind> {
        self.advance();
        let (name, span) = self.expect_ident("after 'for'")?;
        self.expect(Tok::In, "after the loop variable")?;
        let iter = self.expr()?;
        Ok(StmtKind::For(name, span, iter, self.block()?))
    }

    fn expr_or_assign(&mut self) -> PResult<StmtKind> {
        let target = self.expr()?;
        let op = match self.tokens[self.pos].tok {
            Tok::Assign => None,
            Tok::PlusAssign => Some(BinOp::Add),
            Tok::MinusAssign => Some(BinOp::Sub),
            Tok::StarAssign => Some(BinOp::Mul),
            Tok::SlashAssign => Some(BinOp::Div),
            Tok::SlashSlashAssign => Some(BinOp::FloorDiv),
            Tok::PercentAssign => Some(BinOp::Mod),
            _ => return Ok(StmtKind::Expr(target)),
        };
        let op_span = self.advance().span;
        let target = match target.kind {
            ExprKind::Name(name) => Target::Name(name),
            ExprKind::Index(obj, idx) => Target::Index(obj, idx),
            _ => return Err(Diagnostic::new("cannot assign to this expression", target.span.to(op_span))),
        };
        self.skip_nl();
        Ok(StmtKind::Assign(target, op, self.expr()?))
    }

    /// `fn name(params) { body }` when `named`, else `fn(params) { body }`.
    fn function(&mut self, named: bool) -> PResult<Rc<FnDef>> {
        let start = self.advance().span;
        let name = if named { Some(self.expect_ident("after 'fn'")?.0) } else { None };
        self.expect(Tok::LParen, "before the parameters")?;
        self.skip_newlines.push(true);
        let params = self.params();
        self.skip_newlines.pop();
        let params = params?;
        let body = self.block()?;
        let end = self.tokens[self.pos - 1].span;
        Ok(Rc::new(FnDef { name, params, body, span: start.to(end) }))
    }

    fn params(&mut self) -> PResult<Vec<(Rc<str>, Span)>> {
        let mut params: Vec<(Rc<str>, Span)> = Vec::new();
        while self.peek() != &Tok::RParen {
            let (name, span) = self.expect_ident("for a parameter")?;
            if params.iter().any(|(p, _)| *p == name) {
                return Err(Diagnostic::new(format!("duplicate parameter '{name}'"), span));
            }
            params.push((name, span));
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(Tok::RParen, "after the parameters")?;
        Ok(params)
    }

    // ----- expressions, lowest precedence first -----

    fn expr(&mut self) -> PResult<Expr> {
        let span = self.peek_span();
        self.enter(span)?;
        let e = self.or_expr();
        self.leave();
        e
    }

    fn or_expr(&mut self) -> PResult<Expr> {
        let mark = self.depth;
        let result = self.or_chain();
        self.depth = mark;
        result
    }

    /// Each operator of a left-associative chain counts as one level of nesting, since the
    /// tree it builds is as deep as the chain is long.
    fn chain_link(&mut self) -> PResult<()> {
        let span = self.advance().span;
        self.enter(span)?;
        self.skip_nl();
        Ok(())
    }

    fn or_chain(&mut self) -> PResult<Expr> {
        let mut left = self.and_expr()?;
        while self.peek() == &Tok::Or {
            self.chain_link()?;
            self.skip_nl();
            let right = self.and_expr()?;
            let span = left.span.to(right.span);
            left = Expr { kind: ExprKind::Or(Box::new(left), Box::new(right)), span };
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> PResult<Expr> {
        let mark = self.depth;
        let mut left = self.not_expr()?;
        while self.peek() == &Tok::And {
            self.chain_link()?;
            let right = self.not_expr()?;
            let span = left.span.to(right.span);
            left = Expr { kind: ExprKind::And(Box::new(left), Box::new(right)), span };
        }
        self.depth = mark;
        Ok(left)
    }

    fn not_expr(&mut self) -> PResult<Expr> {
        if self.peek() == &Tok::Not {
            let start = self.advance().span;
            self.enter(start)?;
            let operand = self.not_expr();
            self.leave();
            let operand = operand?;
            let span = start.to(operand.span);
            return Ok(Expr { kind: ExprKind::Unary(UnOp::Not, Box::new(operand)), span });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> PResult<Expr> {
        let left = self.sum()?;
        let Some(op) = comparison_op(self.peek()) else { return Ok(left) };
        self.advance();
        self.skip_nl();
        let right = self.sum()?;
        if comparison_op(self.peek()).is_some() {
            let span = self.peek_span();
            return Err(Diagnostic::new("comparison operators cannot be chained", span));
        }
        Ok(binary(op, left, right))
    }

    fn sum(&mut self) -> PResult<Expr> {
        let mark = self.depth;
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => {
                    self.depth = mark;
                    return Ok(left);
                }
            };
            self.chain_link()?;
            let right = self.product()?;
            left = binary(op, left, right);
        }
    }

    fn product(&mut self) -> PResult<Expr> {
        let mark = self.depth;
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::SlashSlash => BinOp::FloorDiv,
                Tok::Percent => BinOp::Mod,
                _ => {
                    self.depth = mark;
                    return Ok(left);
                }
            };
            self.chain_link()?;
            let right = self.unary()?;
            left = binary(op, left, right);
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.peek() == &Tok::Minus {
            let start = self.advance().span;
            self.enter(start)?;
            let operand = self.unary();
            self.leave();
            let operand = operand?;
            let span = start.to(operand.span);
            return Ok(Expr { kind: ExprKind::Unary(UnOp::Neg, Box::new(operand)), span });
        }
        self.power()
    }

    /// `**` is right-associative and binds tighter than unary minus on its left,
    /// while its right operand may itself carry a unary minus (`2 ** -1`).
    fn power(&mut self) -> PResult<Expr> {
        let base = self.postfix()?;
        if self.peek() != &Tok::StarStar {
            return Ok(base);
        }
        self.advance();
        self.skip_nl();
        let span = self.peek_span();
        self.enter(span)?;
        let exponent = self.unary();
        self.leave();
        Ok(binary(BinOp::Pow, base, exponent?))
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Tok::LParen => {
                    self.advance();
                    let (args, end) = self.list_of(Tok::RParen, "after the arguments")?;
                    let span = e.span.to(end);
                    e = Expr { kind: ExprKind::Call(Box::new(e), args), span };
                }
                Tok::LBracket => {
                    self.advance();
                    self.skip_newlines.push(true);
                    let index = self.expr();
                    let end = index.and_then(|i| Ok((i, self.expect(Tok::RBracket, "after the index")?)));
                    self.skip_newlines.pop();
                    let (index, end) = end?;
                    let span = e.span.to(end);
                    e = Expr { kind: ExprKind::Index(Box::new(e), Box::new(index)), span };
                }
                _ => return Ok(e),
            }
        }
    }

    /// Comma-separated expressions up to `close`, newlines ignored, trailing comma allowed.
    fn list_of(&mut self, close: Tok, context: &str) -> PResult<(Vec<Expr>, Span)> {
        self.skip_newlines.push(true);
        let result = self.list_items(close, context);
        self.skip_newlines.pop();
        result
    }

    fn list_items(&mut self, close: Tok, context: &str) -> PResult<(Vec<Expr>, Span)> {
        let mut items = Vec::new();
        while self.peek() != &close {
            items.push(self.expr()?);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        let end = self.expect(close, context)?;
        Ok((items, end))
    }

    fn dict_items(&mut self) -> PResult<(Vec<(Expr, Expr)>, Span)> {
        let mut items = Vec::new();
        while self.peek() != &Tok::RBrace {
            let key = self.expr()?;
            self.expect(Tok::Colon, "after a dict key")?;
            let value = self.expr()?;
            items.push((key, value));
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        let end = self.expect(Tok::RBrace, "to close the dict")?;
        Ok((items, end))
    }

    fn primary(&mut self) -> PResult<Expr> {
        let span = self.peek_span();
        let kind = match self.peek().clone() {
            Tok::Int(v) => ExprKind::Int(v),
            Tok::Float(v) => ExprKind::Float(v),
            Tok::Str(s) => ExprKind::Str(s),
            Tok::True => ExprKind::Bool(true),
            Tok::False => ExprKind::Bool(false),
            Tok::Nil => ExprKind::Nil,
            Tok::Ident(name) => ExprKind::Name(name),
            Tok::LParen => return self.paren(),
            Tok::LBracket => {
                self.advance();
                let (items, end) = self.list_of(Tok::RBracket, "to close the list")?;
                return Ok(Expr { kind: ExprKind::List(items), span: span.to(end) });
            }
            Tok::LBrace => {
                self.advance();
                self.skip_newlines.push(true);
                let items = self.dict_items();
                self.skip_newlines.pop();
                let (items, end) = items?;
                return Ok(Expr { kind: ExprKind::Dict(items), span: span.to(end) });
            }
            Tok::Fn => {
                let def = self.function(false)?;
                let span = def.span;
                return Ok(Expr { kind: ExprKind::Function(def), span });
            }
            _ => return Err(self.error_here("expected an expression")),
        };
        self.advance();
        Ok(Expr { kind, span })
    }

    fn paren(&mut self) -> PResult<Expr> {
        let start = self.advance().span;
        self.skip_newlines.push(true);
        let inner = self.expr().and_then(|e| Ok((e, self.expect(Tok::RParen, "to close '('")?)));
        self.skip_newlines.pop();
        let (mut inner, end) = inner?;
        inner.span = start.to(end);
        Ok(inner)
    }
}

fn comparison_op(tok: &Tok) -> Option<BinOp> {
    Some(match tok {
        Tok::EqEq => BinOp::Eq,
        Tok::NotEq => BinOp::Ne,
        Tok::Lt => BinOp::Lt,
        Tok::LtEq => BinOp::Le,
        Tok::Gt => BinOp::Gt,
        Tok::GtEq => BinOp::Ge,
        _ => return None,
    })
}

fn binary(op: BinOp, left: Expr, right: Expr) -> Expr {
    let span = left.span.to(right.span);
    Expr { kind: ExprKind::Binary(op, Box::new(left), Box::new(right)), span }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse(src).unwrap_err().message
    }

    #[test]
    fn precedence_of_power_and_minus() {
        let prog = parse("-2 ** 2").unwrap();
        let StmtKind::Expr(e) = &prog[0].kind else { panic!() };
        assert!(matches!(e.kind, ExprKind::Unary(UnOp::Neg, _)));
    }

    #[test]
    fn newline_rules() {
        assert!(parse("let x = 1 +\n 2\nprint(x,\n 3)\nlet d = {\n\"a\": 1\n}").is_ok());
        assert!(parse("if true {\n} \n else {\n}").is_ok());
    }

    #[test]
    fn errors_never_panic() {
        assert!(err("a < b < c").contains("chained"));
        assert!(err(&"(".repeat(100_000)).contains("nesting too deep"));
        assert!(err(&"-".repeat(100_000)).contains("nesting too deep"));
        assert!(err(&"1+".repeat(100_000)).contains("nesting too deep"));
        assert!(parse(&format!("1{}", "+1".repeat(150))).is_ok());
        assert!(err("let = 3").contains("expected a name"));
        assert!(err("1 = 2").contains("cannot assign"));
        assert!(err("f(").contains("expected"));
        assert!(err("x = {").contains("expected"));
    }
}
