//! A pre-pass over the AST that finds the variables captured by nested functions (they live in
//! cells) and the names a program declares or assigns (a builtin whose name is never declared
//! nor assigned can be called directly).
//!
//! Scoping rules it shares with the code generator: a block's `fn` declarations are visible from
//! the start of the block; its `let`s are visible to the block's own code from the `let` on, and
//! to nested functions from the start of the block. `let` and `fn` directly at the top level of
//! the program declare globals. A declaration is identified by the start offset of its span.

use crate::ast::*;
use rustc_hash::FxHashSet;
use std::collections::HashSet;
use std::rc::Rc;

/// What the pre-pass found.
#[derive(Default)]
pub struct Analysis {
    /// Declarations (by span start) that some nested function refers to.
    pub captured: HashSet<u32>,
    /// Every name declared by `let`, `fn`, a parameter or a loop variable, or assigned.
    pub declared: FxHashSet<Rc<str>>,
    /// Declarations (by span start) that an assignment changes after their declaration (a
    /// captured variable not among them holds one value for the life of its cell: the JIT
    /// reads it once, lang-spec/jit.md).
    pub reassigned: HashSet<u32>,
}

struct Entry {
    name: Rc<str>,
    id: u32,
    visible: bool,
}

#[derive(Default)]
struct Resolver {
    /// Per function (outermost first), its scopes (outermost first).
    funcs: Vec<Vec<Vec<Entry>>>,
    out: Analysis,
}

/// Runs the pre-pass over a whole program.
pub fn analyze(program: &[Stmt]) -> Analysis {
    let mut r = Resolver { funcs: vec![vec![Vec::new()]], ..Default::default() };
    for s in program {
        match &s.kind {
            StmtKind::Let(name, e) => {
                r.expr(e);
                r.out.declared.insert(name.clone());
            }
            StmtKind::Fn(def) => {
                r.out.declared.insert(def.name.clone().unwrap_or_else(|| "".into()));
                r.function(def);
            }
            _ => r.stmt(s),
        }
    }
    r.out
}

impl Resolver {
    fn scope(&mut self) -> &mut Vec<Entry> {
        self.funcs.last_mut().and_then(|f| f.last_mut()).expect("a scope is open")
    }

    fn declare(&mut self, name: &Rc<str>, id: u32, visible: bool) {
        self.out.declared.insert(name.clone());
        self.scope().push(Entry { name: name.clone(), id, visible });
    }

    fn block(&mut self, stmts: &[Stmt]) {
        self.funcs.last_mut().expect("in a function").push(Vec::new());
        for s in stmts {
            match &s.kind {
                StmtKind::Let(name, _) => self.declare(name, s.span.start, false),
                StmtKind::Fn(def) => {
                    let name = def.name.clone().unwrap_or_else(|| "".into());
                    self.declare(&name, s.span.start, true)
                }
                _ => {}
            }
        }
        for s in stmts {
            self.stmt(s);
        }
        self.funcs.last_mut().expect("in a function").pop();
    }

    fn function(&mut self, def: &FnDef) {
        self.funcs.push(vec![Vec::new()]);
        for (name, span) in &def.params {
            self.declare(name, span.start, true);
        }
        self.block(&def.body);
        self.funcs.pop();
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Let(_, e) => {
                self.expr(e);
                let id = s.span.start;
                if let Some(entry) = self.scope().iter_mut().find(|e| e.id == id) {
                    entry.visible = true;
                }
            }
            StmtKind::Assign(target, _, e) => {
                match target {
                    Target::Name(name) => {
                        self.out.declared.insert(name.clone());
                        if let Some(id) = self.use_name(name) {
                            self.out.reassigned.insert(id);
                        }
                    }
                    Target::Index(obj, idx) => {
                        self.expr(obj);
                        self.expr(idx);
                    }
                    Target::Field(obj, ..) => self.expr(obj),
                    Target::IndexN(obj, idx) => {
                        self.expr(obj);
                        idx.iter().for_each(|i| self.expr(i));
                    }
                }
                self.expr(e);
            }
            StmtKind::If(arms, otherwise) => {
                for (cond, body) in arms {
                    self.expr(cond);
                    self.block(body);
                }
                if let Some(body) = otherwise {
                    self.block(body);
                }
            }
            StmtKind::While(cond, body) => {
                self.expr(cond);
                self.block(body);
            }
            StmtKind::For(name, span, iter, body) => {
                self.expr(iter);
                self.funcs.last_mut().expect("in a function").push(Vec::new());
                self.declare(name, span.start, true);
                self.block(body);
                self.funcs.last_mut().expect("in a function").pop();
            }
            StmtKind::Return(Some(e)) | StmtKind::Expr(e) => self.expr(e),
            StmtKind::Fn(def) => self.function(def),
            StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue => {}
            StmtKind::Try(t) => {
                self.block(&t.body);
                if let Some(c) = &t.catch {
                    // the error's name is declared in a scope around the catch block
                    self.funcs.last_mut().expect("in a function").push(Vec::new());
                    if let Some((name, span)) = &c.name {
                        self.declare(name, span.start, true);
                    }
                    self.block(&c.body);
                    self.funcs.last_mut().expect("in a function").pop();
                }
                if let Some(f) = &t.finally {
                    self.block(f);
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Name(name) => {
                self.use_name(name);
            }
            ExprKind::List(items) => items.iter().for_each(|i| self.expr(i)),
            ExprKind::Dict(pairs) => {
                for (k, v) in pairs {
                    self.expr(k);
                    self.expr(v);
                }
            }
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::IndexN(obj, idx) => {
                self.expr(obj);
                idx.iter().for_each(|i| self.expr(i));
            }
            ExprKind::Slice(obj, bounds) => {
                self.expr(obj);
                bounds.iter().flatten().for_each(|b| self.expr(b));
            }
            ExprKind::Call(callee, args) => {
                self.expr(callee);
                args.iter().for_each(|a| self.expr(a));
            }
            ExprKind::Unary(_, a) | ExprKind::Field(a, ..) => self.expr(a),
            ExprKind::BuiltinCall(_, args) => args.iter().for_each(|a| self.expr(a)),
            ExprKind::Function(def) => self.function(def),
            ExprKind::Nil
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::Import(..) => {}
        }
    }

    /// Resolves a use: a visible local of the current function, else any local of an enclosing
    /// function (which is then captured), else a global.
    /// Returns the declaration it resolves to, if it is a local.
    fn use_name(&mut self, name: &str) -> Option<u32> {
        let current = self.funcs.len() - 1;
        let visible = |e: &&Entry| e.visible && &*e.name == name;
        if let Some(id) =
            self.funcs[current].iter().rev().find_map(|scope| scope.iter().rev().find(visible).map(|e| e.id))
        {
            return Some(id);
        }
        for f in (0..current).rev() {
            let found = self.funcs[f].iter().rev().find_map(|s| s.iter().rev().find(|e| &*e.name == name));
            if let Some(entry) = found {
                let id = entry.id;
                self.out.captured.insert(id);
                return Some(id);
            }
        }
        None
    }
}
