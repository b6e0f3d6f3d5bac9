//! The parser: a hand-written recursive-descent parser from tokens to the AST. It never panics:
//! every malformed input, including nesting too deep to parse, is a syntax error with a span.
//!
//! Each parse function opens with the rule of `lang-spec/grammar.md` that it parses, written
//! as Lua's `lparser.c` writes its rules (`->`, tokens in quotes).

use crate::ast::*;
use crate::lexer::{Tok, Token, lex};

mod fstring;
use crate::source::{Diagnostic, Span};
use std::collections::HashSet;
use std::rc::Rc;

/// The deepest syntactic nesting the parser accepts (see "Nesting depth" in
/// lang-spec/limits.md). It bounds the recursion of the parser and of every later stage that
/// walks the AST, so no program can exhaust their stacks.
pub const MAX_SYNTAX_DEPTH: usize = 200;

type PResult<T> = Result<T, Diagnostic>;

/// `parts` joined by `+` as a balanced tree (an empty list is the empty string).
fn concat(mut parts: Vec<Expr>, span: Span) -> Expr {
    match parts.len() {
        0 => Expr { kind: ExprKind::Str("".into()), span },
        1 => parts.pop().unwrap_or(Expr { kind: ExprKind::Nil, span }),
        n => {
            let right = parts.split_off(n / 2);
            let (l, r) = (concat(parts, span), concat(right, span));
            Expr { kind: ExprKind::Binary(BinOp::Add, Box::new(l), Box::new(r)), span }
        }
    }
}

/// Parses a whole program into its top-level statements.
pub fn parse(src: &str) -> PResult<Vec<Stmt>> {
    parse_file(src, 0).map(|(stmts, _)| stmts)
}

/// An `import "path"` found in a file: the path as written and the span of the expression.
pub type ImportSite = (Rc<str>, Span);

/// Parses one file of a program whose first byte is at offset `base` of the program's byte space
/// (every span is in that space), returning its statements and its imports in source order.
pub fn parse_file(src: &str, base: u32) -> PResult<(Vec<Stmt>, Vec<ImportSite>)> {
    let shift = |s: Span| Span { start: s.start.saturating_add(base), end: s.end.saturating_add(base) };
    let tokens = lex(src).map_err(|mut d| {
        d.span = shift(d.span);
        d
    })?;
    let tokens = tokens.into_iter().map(|t| Token { span: shift(t.span), ..t }).collect();
    let mut parser = Parser { tokens, pos: 0, skip_newlines: vec![false], depth: 0, imports: Vec::new() };
    let stmts = parser.program()?;
    Ok((stmts, parser.imports))
}

/// Parses `src[start..]` (the prompt's last input), with spans that are offsets into `src`. An
/// input of the prompt cannot import (modules belong to files; lang-spec/cli.md).
pub fn parse_from(src: &str, start: usize) -> PResult<Vec<Stmt>> {
    let (stmts, imports) = parse_file(&src[start..], start as u32)?;
    if let Some((_, span)) = imports.first() {
        return Err(Diagnostic::new("import is not supported at the prompt", *span));
    }
    Ok(stmts)
}

/// The parser's state: the tokens (ending with `Eof`) and the position in them.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Whether newlines are insignificant at the current bracket level (inside `( )`, `[ ]`
    /// and dict literals they are; inside blocks they end statements).
    skip_newlines: Vec<bool>,
    /// The current nesting level, counted as "Nesting depth" in lang-spec/limits.md defines.
    depth: usize,
    /// The `import` expressions parsed so far.
    imports: Vec<ImportSite>,
}

impl Parser {
    // ----- token access -----

    /// Skips newlines if the innermost bracket makes them insignificant.
    fn skip_insignificant(&mut self) {
        if *self.skip_newlines.last().unwrap_or(&false) {
            self.skip_nl();
        }
    }

    /// Skips newlines unconditionally (after an operator, `=`, or before `else`).
    fn skip_nl(&mut self) {
        while self.tokens[self.pos].tok == Tok::Newline {
            self.pos += 1;
        }
    }

    /// The next significant token, not consumed.
    fn peek(&mut self) -> &Tok {
        self.skip_insignificant();
        &self.tokens[self.pos].tok
    }

    /// The span of the next significant token.
    fn peek_span(&mut self) -> Span {
        self.skip_insignificant();
        self.tokens[self.pos].span
    }

    /// Consumes and returns the next significant token; at the end it stays on `Eof`.
    fn advance(&mut self) -> Token {
        self.skip_insignificant();
        let t = self.tokens[self.pos].clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    /// Consumes the next token if it is `tok`.
    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.advance();
            true
        } else {
            false
        }
    }

    /// Consumes `tok` (a fixed-text token), or fails with `expected 'tok' context, found ...`.
    fn expect(&mut self, tok: Tok, context: &str) -> PResult<Span> {
        if self.peek() == &tok {
            Ok(self.advance().span)
        } else {
            Err(self.error_here(&format!("expected '{}' {}", tok.symbol().unwrap_or("?"), context)))
        }
    }

    /// Consumes an identifier, or fails with `expected a name context, found ...`.
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

    /// A syntax error at the next token: `what, found <the token>`.
    fn error_here(&mut self, what: &str) -> Diagnostic {
        let span = self.peek_span();
        let found = self.peek().describe();
        Diagnostic::new(format!("{what}, found {found}"), span)
    }

    /// Goes one nesting level deeper; past [`MAX_SYNTAX_DEPTH`] that is the error
    /// `nesting too deep` at `span`.
    fn enter(&mut self, span: Span) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_SYNTAX_DEPTH {
            return Err(Diagnostic::new("nesting too deep", span));
        }
        Ok(())
    }

    /// Comes back up one nesting level.
    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Runs `parse` one nesting level deeper (entered at `span`).
    fn nested<T>(&mut self, span: Span, parse: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.enter(span)?;
        let result = parse(self);
        self.leave();
        result
    }

    /// Runs `parse` with newlines significant (`false`) or not (`true`), as inside a block or
    /// a bracket.
    fn with_newlines<T>(&mut self, skip: bool, parse: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.skip_newlines.push(skip);
        let result = parse(self);
        self.skip_newlines.pop();
        result
    }

    /// Consumes the operator of a left-associative chain of binary operators.
    /// Each counts as one level of nesting for what follows it, since the tree the chain
    /// builds is as deep as the chain is long; the chain's caller restores the depth at its end.
    fn chain_link(&mut self) -> PResult<Span> {
        let span = self.advance().span;
        self.enter(span)?;
        Ok(span)
    }

    // ----- statements -----

    // program -> stmts EOF
    fn program(&mut self) -> PResult<Vec<Stmt>> {
        let stmts = self.statements()?;
        if self.peek() != &Tok::Eof {
            return Err(self.error_here("expected a statement"));
        }
        Ok(stmts)
    }

    // stmts -> { sep } [ statement { end statement } { sep } ]
    // end -> sep { sep } | (nothing, after a statement whose last token is '}')
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

    // block -> '{' stmts '}'
    /// A block is one nesting level; newlines in it end statements even inside brackets.
    fn block(&mut self) -> PResult<Vec<Stmt>> {
        let open = self.expect(Tok::LBrace, "to start a block")?;
        self.nested(open, |p| {
            let body = p.with_newlines(false, Self::statements)?;
            if p.tokens[p.pos].tok != Tok::RBrace {
                return Err(p.error_here("expected '}' to close the block"));
            }
            p.pos += 1;
            Ok(body)
        })
    }

    // statement -> let_stmt | fn_decl | if_stmt | while_stmt | for_stmt
    //            | 'break' | 'continue' | return_stmt | try_stmt | simple_stmt
    fn statement(&mut self) -> PResult<Stmt> {
        let start = self.peek_span();
        let kind = match self.peek().clone() {
            Tok::Let => self.let_stmt()?,
            Tok::Fn if matches!(self.tokens[self.pos + 1].tok, Tok::Ident(_)) => StmtKind::Fn(self.function(true)?),
            Tok::If => self.if_stmt()?,
            Tok::While => self.while_stmt()?,
            Tok::For => self.for_stmt()?,
            Tok::Break => {
                self.advance();
                StmtKind::Break
            }
            Tok::Continue => {
                self.advance();
                StmtKind::Continue
            }
            Tok::Return => self.return_stmt()?,
            Tok::Try => self.try_stmt()?,
            Tok::Catch | Tok::Finally => {
                let word = if self.peek() == &Tok::Catch { "catch" } else { "finally" };
                return Err(Diagnostic::new(format!("'{word}' without a 'try' block before it"), start));
            }
            _ => self.simple_stmt()?,
        };
        let end = self.tokens[self.pos.saturating_sub(1)].span;
        Ok(Stmt { kind, span: start.to(end) })
    }

    // let_stmt -> 'let' IDENT '=' expression
    fn let_stmt(&mut self) -> PResult<StmtKind> {
        self.advance();
        let (name, _) = self.expect_ident("after 'let'")?;
        self.expect(Tok::Assign, "after the name in 'let'")?;
        self.skip_nl();
        Ok(StmtKind::Let(name, self.expr()?))
    }

    // if_stmt -> 'if' expression block [ 'else' ( if_stmt | block ) ]
    /// An `else if` chain is parsed as a loop into one flat statement, so a long chain nests
    /// no deeper than a single `if` (like Lua's `elseif`).
    fn if_stmt(&mut self) -> PResult<StmtKind> {
        let mut arms = Vec::new();
        self.advance();
        loop {
            let cond = self.expr()?;
            arms.push((cond, self.block()?));
            if !self.eat_else() {
                return Ok(StmtKind::If(arms, None));
            }
            if !self.eat(&Tok::If) {
                return Ok(StmtKind::If(arms, Some(self.block()?)));
            }
        }
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

    // while_stmt -> 'while' expression block
    fn while_stmt(&mut self) -> PResult<StmtKind> {
        self.advance();
        let cond = self.expr()?;
        Ok(StmtKind::While(cond, self.block()?))
    }

    // for_stmt -> 'for' IDENT 'in' expression block
    fn for_stmt(&mut self) -> PResult<StmtKind> {
        self.advance();
        let (name, span) = self.expect_ident("after 'for'")?;
        self.expect(Tok::In, "after the loop variable")?;
        let iter = self.expr()?;
        Ok(StmtKind::For(name, span, iter, self.block()?))
    }

    // try_stmt -> 'try' block ( catch_clause [ finally_clause ] | finally_clause )
    // catch_clause -> 'catch' [ IDENT ] block
    // finally_clause -> 'finally' block
    /// `catch` and `finally` may stand on the line after the closing `}`, as `else` may.
    fn try_stmt(&mut self) -> PResult<StmtKind> {
        self.advance();
        let body = self.block()?;
        let mut catch = None;
        if self.eat_after_newlines(&Tok::Catch) {
            let name = match self.peek().clone() {
                Tok::Ident(_) => Some(self.expect_ident("after 'catch'")?),
                _ => None,
            };
            catch = Some(Catch { name, body: self.block()? });
        }
        let finally = if self.eat_after_newlines(&Tok::Finally) { Some(self.block()?.into()) } else { None };
        if catch.is_none() && finally.is_none() {
            return Err(self.error_here("expected 'catch' or 'finally' after the 'try' block"));
        }
        Ok(StmtKind::Try(Box::new(TryStmt { body, catch, finally })))
    }

    /// Consumes `tok`, which may stand on a later line (a clause after a closing `}`).
    fn eat_after_newlines(&mut self, tok: &Tok) -> bool {
        let mut look = self.pos;
        while self.tokens[look].tok == Tok::Newline {
            look += 1;
        }
        if &self.tokens[look].tok == tok {
            self.pos = look + 1;
            true
        } else {
            false
        }
    }

    // return_stmt -> 'return' [ expression ]
    /// The expression is absent when `return` is followed by a separator, `}` or the end.
    fn return_stmt(&mut self) -> PResult<StmtKind> {
        self.advance();
        match self.tokens[self.pos].tok {
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof => Ok(StmtKind::Return(None)),
            _ => Ok(StmtKind::Return(Some(self.expr()?))),
        }
    }

    // simple_stmt -> expression [ assign_op expression ]
    // assign_op -> '=' | '+=' | '-=' | '*=' | '/=' | '//=' | '%='
    /// With an `assign_op`, the left expression must be a name, an index or a field.
    fn simple_stmt(&mut self) -> PResult<StmtKind> {
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
            ExprKind::Field(obj, name, at) => Target::Field(obj, name, at),
            ExprKind::IndexN(obj, idx) => Target::IndexN(obj, idx),
            ExprKind::Slice(..) => {
                return Err(Diagnostic::new(
                    "cannot assign to a slice (slice assignment is not supported)",
                    target.span.to(op_span),
                ));
            }
            _ => return Err(Diagnostic::new("cannot assign to this expression", target.span.to(op_span))),
        };
        self.skip_nl();
        Ok(StmtKind::Assign(target, op, self.expr()?))
    }

    // fn_decl -> 'fn' IDENT params block      (when `named`)
    // fn_lit -> 'fn' params block
    fn function(&mut self, named: bool) -> PResult<Rc<FnDef>> {
        let start = self.advance().span;
        let name = if named { Some(self.expect_ident("after 'fn'")?.0) } else { None };
        self.expect(Tok::LParen, "before the parameters")?;
        let params = self.with_newlines(true, Self::params)?;
        let body = self.block()?;
        let end = self.tokens[self.pos - 1].span;
        Ok(Rc::new(FnDef { name, params, body, span: start.to(end) }))
    }

    // params -> '(' [ IDENT { ',' IDENT } [ ',' ] ] ')'      (the '(' already consumed)
    /// The parameter names, which must be distinct (checked with a set: a list of thousands
    /// stays linear).
    fn params(&mut self) -> PResult<Vec<(Rc<str>, Span)>> {
        let mut params: Vec<(Rc<str>, Span)> = Vec::new();
        let mut seen = HashSet::new();
        while self.peek() != &Tok::RParen {
            let (name, span) = self.expect_ident("for a parameter")?;
            if !seen.insert(name.clone()) {
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

    // expression -> or_expr
    /// A whole expression is one nesting level.
    fn expr(&mut self) -> PResult<Expr> {
        let span = self.peek_span();
        self.nested(span, Self::or_expr)
    }

    // or_expr -> and_expr { 'or' and_expr }
    fn or_expr(&mut self) -> PResult<Expr> {
        let mark = self.depth;
        let result = self.or_chain();
        self.depth = mark;
        result
    }

    /// The loop of [`Parser::or_expr`], which restores the depth however it ends.
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

    // and_expr -> not_expr { 'and' not_expr }
    fn and_expr(&mut self) -> PResult<Expr> {
        let mark = self.depth;
        let mut left = self.not_expr()?;
        while self.peek() == &Tok::And {
            self.chain_link()?;
            self.skip_nl();
            let right = self.not_expr()?;
            let span = left.span.to(right.span);
            left = Expr { kind: ExprKind::And(Box::new(left), Box::new(right)), span };
        }
        self.depth = mark;
        Ok(left)
    }

    // not_expr -> 'not' not_expr | comparison
    /// The operand of `not` is one level deeper; a newline may follow `not`.
    fn not_expr(&mut self) -> PResult<Expr> {
        if self.peek() != &Tok::Not {
            return self.comparison();
        }
        let start = self.advance().span;
        let operand = self.nested(start, |p| {
            p.skip_nl();
            p.not_expr()
        })?;
        let span = start.to(operand.span);
        Ok(Expr { kind: ExprKind::Unary(UnOp::Not, Box::new(operand)), span })
    }

    // comparison -> bit_or [ comp_op bit_or ]
    // comp_op -> '==' | '!=' | '<' | '<=' | '>' | '>='
    /// A second comparison operator is an error: comparisons do not chain.
    fn comparison(&mut self) -> PResult<Expr> {
        let left = self.bit_or()?;
        if let Some(negated) = self.membership_op() {
            return self.membership(left, negated);
        }
        let Some(op) = comparison_op(self.peek()) else { return Ok(left) };
        self.advance();
        self.skip_nl();
        let right = self.bit_or()?;
        self.no_chained_comparison()?;
        Ok(binary(op, left, right))
    }

    /// The error when a comparison (`in` and `not in` included) follows a comparison.
    fn no_chained_comparison(&mut self) -> PResult<()> {
        let tok = self.peek().clone();
        let membership =
            tok == Tok::In || (tok == Tok::Not && self.tokens.get(self.pos + 1).is_some_and(|t| t.tok == Tok::In));
        if comparison_op(&tok).is_some() || membership {
            let span = self.peek_span();
            return Err(Diagnostic::new("comparison operators cannot be chained", span));
        }
        Ok(())
    }

    /// `in` or `not in` next (consumed): whether it is `not in`.
    fn membership_op(&mut self) -> Option<bool> {
        let tok = self.peek().clone();
        match tok {
            Tok::In => {
                self.advance();
                Some(false)
            }
            Tok::Not if self.tokens.get(self.pos + 1).is_some_and(|t| t.tok == Tok::In) => {
                self.advance();
                self.advance();
                Some(true)
            }
            _ => None,
        }
    }

    // membership -> bit_or ( 'in' | 'not' 'in' ) bit_or
    /// `x in c` is a call of the builtin `in` (`c` first), which no program can shadow (`in` is a
    /// keyword); `x not in c` is `not` of it. Like comparisons, they cannot be chained.
    fn membership(&mut self, left: Expr, negated: bool) -> PResult<Expr> {
        self.skip_nl();
        let right = self.bit_or()?;
        self.no_chained_comparison()?;
        let span = left.span.to(right.span);
        let test = Expr { kind: ExprKind::BuiltinCall(crate::builtin::Builtin::In, vec![right, left]), span };
        Ok(if negated { Expr { kind: ExprKind::Unary(UnOp::Not, Box::new(test)), span } } else { test })
    }

    // bit_or -> bit_xor { '|' bit_xor }
    fn bit_or(&mut self) -> PResult<Expr> {
        self.left_chain(Self::bit_xor, |t| (t == &Tok::Pipe).then_some(BinOp::BitOr))
    }

    // bit_xor -> bit_and { '^' bit_and }
    fn bit_xor(&mut self) -> PResult<Expr> {
        self.left_chain(Self::bit_and, |t| (t == &Tok::Caret).then_some(BinOp::BitXor))
    }

    // bit_and -> shift { '&' shift }
    fn bit_and(&mut self) -> PResult<Expr> {
        self.left_chain(Self::shift, |t| (t == &Tok::Amp).then_some(BinOp::BitAnd))
    }

    // shift -> sum { ( '<<' | '>>' ) sum }
    fn shift(&mut self) -> PResult<Expr> {
        self.left_chain(Self::sum, |t| match t {
            Tok::LtLt => Some(BinOp::Shl),
            Tok::GtGt => Some(BinOp::Shr),
            _ => None,
        })
    }

    // sum -> product { ( '+' | '-' ) product }
    fn sum(&mut self) -> PResult<Expr> {
        self.left_chain(Self::product, |t| match t {
            Tok::Plus => Some(BinOp::Add),
            Tok::Minus => Some(BinOp::Sub),
            _ => None,
        })
    }

    // product -> unary { ( '*' | '/' | '//' | '%' ) unary }
    fn product(&mut self) -> PResult<Expr> {
        self.left_chain(Self::unary, |t| match t {
            Tok::Star => Some(BinOp::Mul),
            Tok::Slash => Some(BinOp::Div),
            Tok::SlashSlash => Some(BinOp::FloorDiv),
            Tok::Percent => Some(BinOp::Mod),
            _ => None,
        })
    }

    /// A left-associative chain `operand { op operand }` of one precedence level, where `op_of`
    /// says which tokens are the level's operators. A newline may follow each operator.
    fn left_chain(
        &mut self,
        operand: fn(&mut Self) -> PResult<Expr>,
        op_of: fn(&Tok) -> Option<BinOp>,
    ) -> PResult<Expr> {
        let mark = self.depth;
        let mut left = operand(self)?;
        while let Some(op) = op_of(self.peek()) {
            self.chain_link()?;
            self.skip_nl();
            let right = operand(self)?;
            left = binary(op, left, right);
        }
        self.depth = mark;
        Ok(left)
    }

    // unary -> ( '-' | '~' ) unary | power
    /// The operand of a unary minus or `~` is one level deeper.
    fn unary(&mut self) -> PResult<Expr> {
        let op = match self.peek() {
            Tok::Minus => UnOp::Neg,
            Tok::Tilde => UnOp::BitNot,
            _ => return self.power(),
        };
        let start = self.advance().span;
        let operand = self.nested(start, Self::unary)?;
        let span = start.to(operand.span);
        Ok(Expr { kind: ExprKind::Unary(op, Box::new(operand)), span })
    }

    // power -> postfix [ '**' unary ]
    /// `**` is right-associative and binds tighter than unary minus on its left, while its
    /// right operand, one level deeper, may itself carry a unary minus (`2 ** -1`).
    fn power(&mut self) -> PResult<Expr> {
        let base = self.postfix()?;
        if self.peek() != &Tok::StarStar {
            return Ok(base);
        }
        self.advance();
        self.skip_nl();
        let span = self.peek_span();
        let exponent = self.nested(span, Self::unary)?;
        Ok(binary(BinOp::Pow, base, exponent))
    }

    // postfix -> primary { args | index | field }
    /// A chain of calls and indexes is as deep a tree as it is long, so each call or index
    /// after the first is one more level for what follows it (`f(a)(b)`: `b` is a level
    /// deeper than `a`), like the operators of a binary chain.
    fn postfix(&mut self) -> PResult<Expr> {
        let mark = self.depth;
        let result = self.postfix_chain();
        self.depth = mark;
        result
    }

    /// The loop of [`Parser::postfix`], which restores the depth however it ends.
    fn postfix_chain(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        let mut first = true;
        loop {
            if !matches!(self.peek(), Tok::LParen | Tok::LBracket | Tok::Dot) {
                return Ok(e);
            }
            if !first {
                let span = self.peek_span();
                self.enter(span)?;
            }
            first = false;
            e = match self.advance().tok {
                Tok::LParen => self.call(e)?,
                Tok::Dot => self.field_access(e)?,
                _ => self.index(e)?,
            };
        }
    }

    // args -> '(' [ expression { ',' expression } [ ',' ] ] ')'      (the '(' already consumed)
    /// A call of `callee`.
    fn call(&mut self, callee: Expr) -> PResult<Expr> {
        let (args, end) = self.list_of(Tok::RParen, "after the arguments")?;
        let span = callee.span.to(end);
        Ok(Expr { kind: ExprKind::Call(Box::new(callee), args), span })
    }

    // field -> '.' IDENT      (the '.' already consumed)
    /// The field `obj.name`; the name is an identifier (a keyword is not one).
    fn field_access(&mut self, obj: Expr) -> PResult<Expr> {
        let (name, at) = match self.peek().clone() {
            Tok::Ident(name) => (name, self.advance().span),
            _ => return Err(self.error_here("expected a field name after '.'")),
        };
        let span = obj.span.to(at);
        Ok(Expr { kind: ExprKind::Field(Box::new(obj), name, at), span })
    }

    // index -> '[' ( expression { ',' expression } | slice ) ']'      (the '[' already consumed)
    // slice -> [ expression ] ':' [ expression ] [ ':' [ expression ] ]
    /// An index into `obj`, several for an array of several dimensions, or a slice of it when a
    /// `:` follows the first bound (or stands in its place); newlines inside the brackets are
    /// insignificant.
    fn index(&mut self, obj: Expr) -> PResult<Expr> {
        let obj_span = obj.span;
        let (kind, end) = self.with_newlines(true, |p| {
            let start = if p.peek() == &Tok::Colon { None } else { Some(Box::new(p.expr()?)) };
            match start {
                Some(index) if p.peek() == &Tok::Comma => {
                    let mut indexes = vec![*index];
                    while p.eat(&Tok::Comma) {
                        indexes.push(p.expr()?);
                    }
                    Ok((ExprKind::IndexN(Box::new(obj), indexes), p.expect(Tok::RBracket, "after the indexes")?))
                }
                Some(index) if p.peek() != &Tok::Colon => {
                    Ok((ExprKind::Index(Box::new(obj), index), p.expect(Tok::RBracket, "after the index")?))
                }
                start => {
                    p.advance(); // the ':' (a missing start means it is next)
                    let stop = p.slice_bound()?;
                    let step = if p.eat(&Tok::Colon) { p.slice_bound()? } else { None };
                    let end = p.expect(Tok::RBracket, "after the slice")?;
                    Ok((ExprKind::Slice(Box::new(obj), [start, stop, step]), end))
                }
            }
        })?;
        Ok(Expr { kind, span: obj_span.to(end) })
    }

    /// One bound of a slice, absent when a `:` or the `]` comes first.
    fn slice_bound(&mut self) -> PResult<Option<Box<Expr>>> {
        match self.peek() {
            Tok::Colon | Tok::RBracket => Ok(None),
            _ => Ok(Some(Box::new(self.expr()?))),
        }
    }

    // [ expression { ',' expression } [ ',' ] ] close      (the tail of args and list_lit)
    /// Comma-separated expressions up to `close`, newlines ignored, trailing comma allowed.
    fn list_of(&mut self, close: Tok, context: &str) -> PResult<(Vec<Expr>, Span)> {
        self.with_newlines(true, |p| {
            let mut items = Vec::new();
            while p.peek() != &close {
                items.push(p.expr()?);
                if !p.eat(&Tok::Comma) {
                    break;
                }
            }
            let end = p.expect(close, context)?;
            Ok((items, end))
        })
    }

    // primary -> INT | FLOAT | STRING | 'true' | 'false' | 'nil' | IDENT
    //          | '(' expression ')' | list_lit | dict_lit | fn_lit
    fn primary(&mut self) -> PResult<Expr> {
        let span = self.peek_span();
        let kind = match self.peek() {
            Tok::Int(v) => ExprKind::Int(*v),
            Tok::Float(v) => ExprKind::Float(*v),
            Tok::Str(s) => ExprKind::Str(s.clone()),
            Tok::FStr(raw) => {
                let raw = raw.clone();
                self.advance();
                return self.fstring(&raw, span);
            }
            Tok::True => ExprKind::Bool(true),
            Tok::False => ExprKind::Bool(false),
            Tok::Nil => ExprKind::Nil,
            Tok::Ident(name) => ExprKind::Name(name.clone()),
            Tok::LParen => return self.paren(),
            Tok::LBracket => return self.list_lit(),
            Tok::LBrace => return self.dict_lit(),
            Tok::Import => return self.import(),
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

    // primary -> "import" STRING
    /// `import "path"`: the operand must be a string literal (not an f-string), so that every
    /// module of a program is known before it runs.
    fn import(&mut self) -> PResult<Expr> {
        let start = self.advance().span;
        let span = self.peek_span();
        let Tok::Str(path) = self.peek().clone() else {
            return Err(self.error_here("expected a string literal after 'import'"));
        };
        self.advance();
        let span = start.to(span);
        self.imports.push((path.clone(), span));
        Ok(Expr { kind: ExprKind::Import(path, span), span })
    }

    // primary -> FSTRING
    /// An f-string: its literal text and `{expression[:spec]}` parts concatenated, each part
    /// `format(expression, spec)` (the builtin itself, whatever the program calls `format`).
    /// The parts form a balanced tree of `+`, whose depth counts as nesting.
    fn fstring(&mut self, raw: &str, span: Span) -> PResult<Expr> {
        let body_start = span.start as usize + 2;
        let braces = raw.matches('{').count();
        let tree_depth = (usize::BITS - (2 * braces + 1).leading_zeros()) as usize;
        let inner_depth = self.depth + tree_depth;
        if inner_depth > MAX_SYNTAX_DEPTH {
            return Err(Diagnostic::new("nesting too deep", span));
        }
        let pieces = fstring::split(raw, body_start)?;
        let mut parts = Vec::with_capacity(pieces.len());
        for piece in pieces {
            parts.push(match piece {
                fstring::Piece::Text(text) => Expr { kind: ExprKind::Str(text.into()), span },
                fstring::Piece::Field { expr, at, spec } => {
                    let e = self.field(expr, at, inner_depth)?;
                    let at = e.span;
                    let spec = Expr { kind: ExprKind::Str(spec.into()), span: at };
                    Expr { kind: ExprKind::BuiltinCall(crate::builtin::Builtin::Format, vec![e, spec]), span: at }
                }
            });
        }
        Ok(concat(parts, span))
    }

    /// The expression of an f-string field: `text`, starting at byte `at` of the source, parsed
    /// alone at nesting depth `depth`.
    fn field(&mut self, text: &str, at: usize, depth: usize) -> PResult<Expr> {
        let shift = |s: Span| Span::new(s.start as usize + at, s.end as usize + at);
        let tokens = lex(text).map_err(|mut d| {
            d.span = shift(d.span);
            d
        })?;
        let tokens = tokens.into_iter().map(|t| Token { span: shift(t.span), ..t }).collect();
        let mut inner = Parser { tokens, pos: 0, skip_newlines: vec![true], depth, imports: Vec::new() };
        if inner.peek() == &Tok::Eof {
            return Err(Diagnostic::new("empty expression in f-string", Span::new(at, at + text.len())));
        }
        let e = inner.expr()?;
        if inner.peek() != &Tok::Eof {
            return Err(inner.error_here("expected ':' or '}' in f-string"));
        }
        self.imports.append(&mut inner.imports);
        Ok(e)
    }

    // primary -> '(' expression ')'
    /// A parenthesized expression: the inner expression, with the parentheses' span.
    fn paren(&mut self) -> PResult<Expr> {
        let start = self.advance().span;
        let (mut inner, end) = self.with_newlines(true, |p| {
            let inner = p.expr()?;
            Ok((inner, p.expect(Tok::RParen, "to close '('")?))
        })?;
        inner.span = start.to(end);
        Ok(inner)
    }

    // list_lit -> '[' [ expression { ',' expression } [ ',' ] ] ']'
    fn list_lit(&mut self) -> PResult<Expr> {
        let start = self.advance().span;
        let (items, end) = self.list_of(Tok::RBracket, "to close the list")?;
        Ok(Expr { kind: ExprKind::List(items), span: start.to(end) })
    }

    // dict_lit -> '{' [ entry { ',' entry } [ ',' ] ] '}'
    // entry -> expression ':' expression
    fn dict_lit(&mut self) -> PResult<Expr> {
        let start = self.advance().span;
        let (items, end) = self.with_newlines(true, |p| {
            let mut items = Vec::new();
            while p.peek() != &Tok::RBrace {
                let key = p.expr()?;
                p.expect(Tok::Colon, "after a dict key")?;
                let value = p.expr()?;
                items.push((key, value));
                if !p.eat(&Tok::Comma) {
                    break;
                }
            }
            Ok((items, p.expect(Tok::RBrace, "to close the dict")?))
        })?;
        Ok(Expr { kind: ExprKind::Dict(items), span: start.to(end) })
    }
}

/// The comparison operator a token stands for, if any.
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

/// A binary expression spanning both operands.
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

    /// The binary operators of `e`'s tree, in prefix order, for checking how it parsed.
    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Binary(op, l, r) => format!("({} {} {})", shape(l), op.symbol(), shape(r)),
            ExprKind::Unary(op, x) => format!("({op:?} {})", shape(x)),
            ExprKind::Int(v) => v.to_string(),
            ExprKind::Name(n) => n.to_string(),
            _ => "?".into(),
        }
    }

    fn parsed(src: &str) -> String {
        let prog = parse(src).unwrap();
        let StmtKind::Expr(e) = &prog[0].kind else { panic!() };
        shape(e)
    }

    #[test]
    fn precedence_of_bit_operators() {
        assert_eq!(parsed("1 | 2 ^ 3 & 4 << 1"), "(1 | (2 ^ (3 & (4 << 1))))");
        assert_eq!(parsed("a & b == c"), "((a & b) == c)");
        assert_eq!(parsed("a << b + c >> d"), "((a << (b + c)) >> d)");
        assert_eq!(parsed("~-x"), "(BitNot (Neg x))");
        assert_eq!(parsed("~x ** 2"), "(BitNot (x ** 2))");
        assert_eq!(parsed("a |\n b"), "(a | b)");
        assert!(err("a < b | c < d").contains("chained"));
    }

    #[test]
    fn newline_rules() {
        assert!(parse("let x = 1 +\n 2\nprint(x,\n 3)\nlet d = {\n\"a\": 1\n}").is_ok());
        assert!(parse("if true {\n} \n else {\n}").is_ok());
        assert!(parse("let x = not\ntrue").is_ok());
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

    #[test]
    fn fields_chain_and_assign() {
        let prog = parse("a.b[0].c(1).d = 2").unwrap();
        let StmtKind::Assign(Target::Field(obj, name, at), None, _) = &prog[0].kind else { panic!() };
        assert_eq!((&**name, at.start, at.end), ("d", 12, 13));
        assert!(matches!(obj.kind, ExprKind::Call(..)));
        assert!(parse("p.x += 1\nprint(p.y)").is_ok());
        assert!(err("p.if").starts_with("expected a field name after '.', found 'if'"));
        assert!(err("p.").contains("found end of file"));
        assert!(err("p.\nx").contains("found end of line"));
        assert!(err("p.5").contains("found a number"));
        assert_eq!(err(&format!("a{}", ".b".repeat(100_000))), "nesting too deep");
        assert!(parse(&format!("a{} = 1", ".b".repeat(200))).is_ok());
        assert_eq!(err(&format!("a{} = 1", ".b".repeat(201))), "nesting too deep");
    }

    #[test]
    fn postfix_chains_count_toward_depth() {
        assert_eq!(err(&format!("f{}", "()".repeat(100_000))), "nesting too deep");
        assert_eq!(err(&format!("a{}", "[0]".repeat(100_000))), "nesting too deep");
        assert!(parse(&format!("f{}", "()".repeat(200))).is_ok());
        assert_eq!(err(&format!("f{}", "()".repeat(201))), "nesting too deep");
        assert!(parse(&format!("a{} = 1", "[0]".repeat(199))).is_ok());
        assert_eq!(err(&format!("a{} = 1", "[0]".repeat(200))), "nesting too deep");
    }
}
