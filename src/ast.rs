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
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
}

/// A unary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

/// An expression and its span.
#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

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
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Function(Rc<FnDef>),
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
}

#[derive(Clone, Debug)]
pub enum StmtKind {
    Let(Rc<str>, Expr),
    /// `target = value`, or `target op= value` when the operator is present.
    Assign(Target, Option<BinOp>, Expr),
    If(Vec<(Expr, Vec<Stmt>)>, Option<Vec<Stmt>>),
    While(Expr, Vec<Stmt>),
    For(Rc<str>, Span, Expr, Vec<Stmt>),
    Break,
    Continue,
    Return(Option<Expr>),
    Fn(Rc<FnDef>),
    Expr(Expr),
}
