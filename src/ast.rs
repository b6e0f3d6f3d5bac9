//! The abstract syntax tree produced by the parser. Every node carries its source span.

use crate::source::Span;
use std::rc::Rc;

/// A binary operator (the short-circuit `and`/`or` are separate expression kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    /// The operator as written, for error messages.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }

    /// Whether the operator is one of `& | ^ << >>` (ints only).
    pub fn is_bitwise(self) -> bool {
        matches!(self, BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor | BinOp::Shl | BinOp::Shr)
    }

    /// Whether the operator is one of `== != < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
}

/// A unary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    /// `~x`, bitwise complement of an int.
    BitNot,
}

/// An expression and its span.
#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The kinds of expression, one per form of `primary`, operator and postfix in grammar.md.
#[derive(Clone, Debug)]
pub enum ExprKind {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Name(Rc<str>),
    List(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    /// `object[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// `object.name`: the string key `"name"` of a dict, with the span of the name (where its
    /// errors point).
    Field(Box<Expr>, Rc<str>, Span),
    /// `object[start:stop:step]`, each bound absent when omitted.
    Slice(Box<Expr>, [Option<Box<Expr>>; 3]),
    /// `callee(args)`.
    Call(Box<Expr>, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// A function literal `fn(params) { body }`.
    Function(Rc<FnDef>),
    /// A call of a builtin that no definition of the program can shadow: the parts of an
    /// f-string are `format(expr, spec)` calls.
    BuiltinCall(crate::builtin::Builtin, Vec<Expr>),
    /// `import "path"`: the module at that path (a string literal), run once per program, with
    /// the span of the `import` itself (which names it in the loader's table even when the
    /// expression's span grows, to its parentheses say).
    Import(Rc<str>, Span),
    /// `object[i, j, ...]`: an element of an array of several dimensions (at least two indexes).
    IndexN(Box<Expr>, Vec<Expr>),
}

/// A function literal or declaration.
#[derive(Debug)]
pub struct FnDef {
    pub name: Option<Rc<str>>,
    pub params: Vec<(Rc<str>, Span)>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// A statement and its span.
#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// The target of an assignment.
#[derive(Clone, Debug)]
pub enum Target {
    Name(Rc<str>),
    Index(Box<Expr>, Box<Expr>),
    /// `object.name = value`, with the span of the name.
    Field(Box<Expr>, Rc<str>, Span),
    /// `object[i, j, ...] = value` (at least two indexes).
    IndexN(Box<Expr>, Vec<Expr>),
}

/// The kinds of statement, one per alternative of `statement` in grammar.md.
#[derive(Clone, Debug)]
pub enum StmtKind {
    Let(Rc<str>, Expr),
    /// `target = value`, or `target op= value` when the operator is present.
    Assign(Target, Option<BinOp>, Expr),
    /// `if c1 { } else if c2 { } ... else { }`: the arms of a whole `else if` chain, flat, and
    /// the final `else` block.
    If(Vec<(Expr, Vec<Stmt>)>, Option<Vec<Stmt>>),
    While(Expr, Vec<Stmt>),
    /// `for name in sequence { body }`, with the span of the loop variable.
    For(Rc<str>, Span, Expr, Vec<Stmt>),
    Break,
    Continue,
    Return(Option<Expr>),
    /// A function declaration `fn name(params) { body }`.
    Fn(Rc<FnDef>),
    /// An expression evaluated for its effect.
    Expr(Expr),
    /// `try { body } catch [name] { handler } finally { cleanup }`: at least one of the catch
    /// and the finally clause is present (lang-spec/try.md).
    Try(Box<TryStmt>),
}

/// The parts of a `try` statement.
#[derive(Clone, Debug)]
pub struct TryStmt {
    pub body: Vec<Stmt>,
    pub catch: Option<Catch>,
    /// The `finally` block, shared because the compiler emits it once per way out of the try.
    pub finally: Option<Rc<[Stmt]>>,
}

/// A `catch` clause: the name the error record is bound to (with its span), if any, and the block.
#[derive(Clone, Debug)]
pub struct Catch {
    pub name: Option<(Rc<str>, Span)>,
    pub body: Vec<Stmt>,
}
