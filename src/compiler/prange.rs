//! `for i in prange(...)` loops (lang-spec/parallel.md): the race analysis on the AST, the
//! detection of reductions, and the blocked bytecode form (`PrangePrep`, `PrangeBlock`,
//! `ReduceInit`, `ForPrep`/`ForLoop` over one block, `ReduceCombine`, `PrangeNext`). A loop the
//! analysis refuses compiles as a `range` loop, with its reason in `Proto::pranges`.
//!
//! The analysis is conservative and by name: a name the body declares (`let`, `fn`, a loop
//! variable, a parameter of a function literal, a `catch` name) is private to an iteration;
//! any other name is declared outside the loop.

use super::{CResult, Compiler, find_local};
use crate::ast::*;
use crate::builtin::Builtin;
use crate::bytecode::{Instr, PrangeInfo, RedOp, Reduction, Reg};
use crate::source::{Diagnostic, Span};
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The most `prange` loops one function may have (`PrangePrep` names them with a byte).
pub const MAX_PRANGES: usize = 256;

/// The offset of an index from the loop variable: `i`, `i + 3`, `i - k`, `k + i`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Offset {
    /// The loop variable plus this int.
    Lit(i64),
    /// The loop variable plus (`true`) or minus (`false`) a name the body neither declares nor
    /// assigns.
    Name(bool, Rc<str>),
}

impl Offset {
    /// The index as written in a reason, for the loop variable `var`.
    fn show(&self, var: &str) -> String {
        match self {
            Offset::Lit(0) => var.to_string(),
            Offset::Lit(c) if *c < 0 => format!("{var} - {}", c.unsigned_abs()),
            Offset::Lit(c) => format!("{var} + {c}"),
            Offset::Name(true, n) => format!("{var} + {n}"),
            Offset::Name(false, n) => format!("{var} - {n}"),
        }
    }
}

/// Which builtins no definition of the program shadows (the analysis trusts only those).
#[derive(Clone, Copy, Default)]
pub(super) struct Unshadowed {
    pub min: bool,
    pub max: bool,
    pub array: bool,
}

/// One reduction update `s op= e` found in the body.
struct Update {
    op: RedOp,
    span: Span,
}

/// What the walk over the body found.
#[derive(Default)]
struct Walk {
    /// The scopes of the names the body declares, each with whether its `let` made a new array,
    /// list or dict (private to the iteration); the first scope holds the loop variable.
    scopes: Vec<HashMap<Rc<str>, bool>>,
    /// Inside a function literal of the body (its updates are not reductions).
    in_fn: usize,
    /// Inside loops of the body (a `break` there ends the inner loop).
    in_loop: usize,
    /// Every name the body assigns (`x = ...`, `x op= ...`), declared outside or not.
    assigned: HashSet<Rc<str>>,
    /// Names declared outside: the reduction updates of each.
    updates: IndexMap<Rc<str>, Vec<Update>>,
    /// Names declared outside: the first other use (a read, or an assignment that is not an
    /// update), and whether some use assigns.
    other: IndexMap<Rc<str>, Span>,
    /// Names declared outside assigned other than by an update: the first such assignment.
    plain: IndexMap<Rc<str>, Span>,
    /// Array stores `a[e] = v`: the array's name and the index's offset (`None`: not a
    /// loop-variable form), with the statement's span.
    writes: Vec<(Rc<str>, Option<Offset>, Span)>,
    /// Element reads `a[e]` of named arrays.
    reads: Vec<(Rc<str>, Option<Offset>, Span)>,
    /// Whether the body assigns the loop variable.
    var_assigned: bool,
    /// The first construct that refuses the loop outright (rules 4 and 5).
    refused: Option<(String, Span)>,
    /// Which builtins the program does not shadow.
    builtins: Unshadowed,
    /// Stores into elements of new containers the body made (`let t = array(...)`), checked at
    /// the end: private unless the body also assigns the name.
    fresh_writes: Vec<(Rc<str>, Option<Offset>, Span)>,
}

/// The outcome of the analysis: the reductions `(name, op, span of the first update)`, or why
/// the loop is refused.
pub(super) enum Plan {
    Blocked(Vec<(Rc<str>, RedOp, Span)>),
    Refused(String, Span),
}

impl Walk {
    fn refuse(&mut self, why: impl Into<String>, span: Span) {
        if self.refused.is_none() {
            self.refused = Some((why.into(), span));
        }
    }

    fn declare(&mut self, name: &Rc<str>, fresh: bool) {
        self.scopes.last_mut().expect("a scope is open").insert(name.clone(), fresh);
    }

    /// Whether `e` makes a new container: `array(...)`, a list or a dict literal.
    fn is_new_container(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::List(_) | ExprKind::Dict(_) => true,
            ExprKind::Call(callee, _) => {
                self.builtins.array && matches!(&callee.kind, ExprKind::Name(f) if &**f == "array")
            }
            _ => false,
        }
    }

    /// Whether `name` is declared in the body by a `let` that made a new container.
    fn is_fresh(&self, name: &str) -> bool {
        self.scopes.iter().rev().find_map(|s| s.get(name)).copied() == Some(true)
    }

    /// The scope depth declaring `name` (0: the loop variable), or `None` for a name declared
    /// outside the loop.
    fn depth(&self, name: &str) -> Option<usize> {
        self.scopes.iter().rposition(|s| s.contains_key(name))
    }

    fn is_loop_var(&self, name: &str) -> bool {
        self.depth(name) == Some(0)
    }

    fn is_outer(&self, name: &str) -> bool {
        self.depth(name).is_none()
    }

    fn block(&mut self, stmts: &[Stmt]) {
        self.scopes.push(HashMap::new());
        for s in stmts {
            if let StmtKind::Fn(def) = &s.kind
                && let Some(name) = &def.name
            {
                self.declare(name, false);
            }
        }
        stmts.iter().for_each(|s| self.stmt(s));
        self.scopes.pop();
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Let(name, e) => {
                self.expr(e);
                let fresh = self.is_new_container(e);
                self.declare(name, fresh);
            }
            StmtKind::Assign(target, op, e) => self.assign(target, *op, e, s.span),
            StmtKind::Expr(e) => self.expr(e),
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
                self.in_loop += 1;
                self.block(body);
                self.in_loop -= 1;
            }
            StmtKind::For(name, _, iter, body) => {
                self.expr(iter);
                self.in_loop += 1;
                self.scopes.push(HashMap::from([(name.clone(), false)]));
                self.block(body);
                self.scopes.pop();
                self.in_loop -= 1;
            }
            StmtKind::Break if self.in_loop == 0 && self.in_fn == 0 => self.refuse("break ends the loop early", s.span),
            StmtKind::Return(_) if self.in_fn == 0 => self.refuse("return ends the loop early", s.span),
            StmtKind::Return(Some(e)) => self.expr(e),
            StmtKind::Break | StmtKind::Continue | StmtKind::Return(None) => {}
            StmtKind::Fn(def) => self.function(def),
            StmtKind::Try(t) => {
                self.block(&t.body);
                if let Some(c) = &t.catch {
                    self.scopes.push(c.name.iter().map(|(n, _)| (n.clone(), false)).collect());
                    self.block(&c.body);
                    self.scopes.pop();
                }
                if let Some(f) = &t.finally {
                    self.block(f);
                }
            }
        }
    }

    fn function(&mut self, def: &FnDef) {
        self.in_fn += 1;
        self.scopes.push(def.params.iter().map(|(n, _)| (n.clone(), false)).collect());
        self.block(&def.body);
        self.scopes.pop();
        self.in_fn -= 1;
    }

    /// An assignment statement: a reduction update, a store into an array, or a plain one.
    fn assign(&mut self, target: &Target, op: Option<BinOp>, e: &Expr, span: Span) {
        match target {
            Target::Name(name) => {
                self.assigned.insert(name.clone());
                if self.is_loop_var(name) {
                    self.var_assigned = true;
                }
                if self.is_outer(name) {
                    match (self.in_fn, update(name, op, e, self.builtins)) {
                        (0, Some((red, operand))) => {
                            self.updates.entry(name.clone()).or_default().push(Update { op: red, span });
                            self.expr(operand);
                            return;
                        }
                        _ => {
                            self.plain.entry(name.clone()).or_insert(span);
                            self.other.entry(name.clone()).or_insert(span);
                        }
                    }
                }
                self.expr(e);
            }
            Target::Index(obj, idx) => {
                self.expr(idx);
                self.expr(e);
                match &obj.kind {
                    ExprKind::Name(a) => {
                        self.name(a, obj.span);
                        let form = self.offset(idx);
                        if self.is_fresh(a) {
                            self.fresh_writes.push((a.clone(), form, span));
                        } else {
                            self.writes.push((a.clone(), form, span));
                        }
                    }
                    _ => {
                        self.expr(obj);
                        self.refuse("stores into an element of something other than a named array", span);
                    }
                }
            }
            // an element of an array of several dimensions: its row (the first index) decides
            // which iteration owns it, as the one index of a 1-D array does
            Target::IndexN(obj, idxs) => {
                idxs.iter().for_each(|i| self.expr(i));
                self.expr(e);
                match &obj.kind {
                    ExprKind::Name(a) => {
                        self.name(a, obj.span);
                        let form = self.offset(&idxs[0]);
                        self.writes.push((a.clone(), form, span));
                    }
                    _ => {
                        self.expr(obj);
                        self.refuse("stores into an element of something other than a named array", span);
                    }
                }
            }
            // a field store, and any target kind this analysis does not know
            #[allow(unreachable_patterns)]
            _ => self.refuse("stores into something other than a variable or an array element", span),
        }
    }

    /// A use of a name that is not an update.
    fn name(&mut self, name: &Rc<str>, span: Span) {
        if self.is_outer(name) {
            self.other.entry(name.clone()).or_insert(span);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Nil | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) => {}
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::List(items) => items.iter().for_each(|x| self.expr(x)),
            ExprKind::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
                self.expr(k);
                self.expr(v);
            }),
            ExprKind::Index(obj, idx) => {
                self.expr(obj);
                self.expr(idx);
                if let ExprKind::Name(a) = &obj.kind {
                    let form = self.offset(idx);
                    self.reads.push((a.clone(), form, e.span));
                }
            }
            ExprKind::IndexN(obj, idxs) => {
                self.expr(obj);
                idxs.iter().for_each(|i| self.expr(i));
                if let ExprKind::Name(a) = &obj.kind {
                    let form = self.offset(&idxs[0]);
                    self.reads.push((a.clone(), form, e.span));
                }
            }
            ExprKind::Field(obj, _, _) => self.expr(obj),
            ExprKind::Slice(obj, bounds) => {
                self.expr(obj);
                bounds.iter().flatten().for_each(|b| self.expr(b));
            }
            ExprKind::Call(callee, args) => {
                self.expr(callee);
                args.iter().for_each(|a| self.expr(a));
            }
            ExprKind::BuiltinCall(_, args) => args.iter().for_each(|a| self.expr(a)),
            ExprKind::Unary(_, x) => self.expr(x),
            ExprKind::Binary(_, x, y) | ExprKind::And(x, y) | ExprKind::Or(x, y) => {
                self.expr(x);
                self.expr(y);
            }
            ExprKind::Function(def) => self.function(def),
            // `import`, and any expression kind this analysis does not know
            #[allow(unreachable_patterns)]
            _ => self.refuse("contains an expression the race analysis cannot classify", e.span),
        }
    }

    /// The offset of index `e` from the loop variable, when `e` is one of the forms of rule 2.
    fn offset(&self, e: &Expr) -> Option<Offset> {
        let var = |x: &Expr| matches!(&x.kind, ExprKind::Name(n) if self.is_loop_var(n));
        let invariant = |x: &Expr, plus: bool| match &x.kind {
            ExprKind::Int(c) if plus => Some(Offset::Lit(*c)),
            ExprKind::Int(c) => c.checked_neg().map(Offset::Lit),
            ExprKind::Name(n) if self.is_outer(n) && !self.assigned.contains(n) => Some(Offset::Name(plus, n.clone())),
            _ => None,
        };
        match &e.kind {
            _ if var(e) => Some(Offset::Lit(0)),
            ExprKind::Binary(BinOp::Add, x, c) if var(x) => invariant(c, true),
            ExprKind::Binary(BinOp::Add, c, x) if var(x) => invariant(c, true),
            ExprKind::Binary(BinOp::Sub, x, c) if var(x) => invariant(c, false),
            _ => None,
        }
    }
}

/// The reduction update `name = ...` or `name op= ...` is, if any: its operator and the
/// operand `e` (which must not mention `name`).
fn update<'e>(name: &str, op: Option<BinOp>, e: &'e Expr, builtins: Unshadowed) -> Option<(RedOp, &'e Expr)> {
    let is = |x: &Expr| matches!(&x.kind, ExprKind::Name(n) if &**n == name);
    let (red, operand) = match (op, &e.kind) {
        (Some(BinOp::Add), _) => (RedOp::Add, e),
        (Some(BinOp::Sub), _) => (RedOp::Sub, e),
        (Some(BinOp::Mul), _) => (RedOp::Mul, e),
        (Some(_), _) => return None,
        (None, ExprKind::Binary(BinOp::Add, x, y)) if is(x) => (RedOp::Add, &**y),
        (None, ExprKind::Binary(BinOp::Add, y, x)) if is(x) => (RedOp::Add, &**y),
        (None, ExprKind::Binary(BinOp::Sub, x, y)) if is(x) => (RedOp::Sub, &**y),
        (None, ExprKind::Binary(BinOp::Mul, x, y)) if is(x) => (RedOp::Mul, &**y),
        (None, ExprKind::Binary(BinOp::Mul, y, x)) if is(x) => (RedOp::Mul, &**y),
        (None, ExprKind::Call(callee, args)) if args.len() == 2 => {
            let red = match &callee.kind {
                ExprKind::Name(f) if &**f == "min" && builtins.min => RedOp::Min,
                ExprKind::Name(f) if &**f == "max" && builtins.max => RedOp::Max,
                _ => return None,
            };
            match (&args[0], &args[1]) {
                (x, y) if is(x) => (red, y),
                (y, x) if is(x) => (red, y),
                _ => return None,
            }
        }
        _ => return None,
    };
    (!mentions(operand, name)).then_some((red, operand))
}

/// Whether `e` mentions the name anywhere (function literals included).
fn mentions(e: &Expr, name: &str) -> bool {
    let mut w = Walk { scopes: vec![HashMap::new()], ..Walk::default() };
    w.expr(e);
    w.other.contains_key(name) || w.updates.contains_key(name) || w.assigned.contains(name)
}

/// The operator family of a reduction's updates: `+=` and `-=` are one family (`Sub` when
/// every update subtracts); `None` when updates of different families are mixed.
fn family(updates: &[Update]) -> Option<RedOp> {
    let additive = |op: RedOp| matches!(op, RedOp::Add | RedOp::Sub);
    let first = updates[0].op;
    if updates.iter().all(|u| u.op == first) {
        return Some(first);
    }
    updates.iter().all(|u| additive(u.op)).then_some(RedOp::Add)
}

/// The race analysis of a `prange` loop over `body` with loop variable `var`. `local(name)`
/// says whether a name declared outside the loop is a plain local of the function (a register,
/// not shared with a closure): only those can be reductions.
pub(super) fn analyze(var: &Rc<str>, body: &[Stmt], builtins: Unshadowed, local: impl Fn(&str) -> bool) -> Plan {
    let mut w = Walk { scopes: vec![HashMap::from([(var.clone(), false)])], builtins, ..Walk::default() };
    w.block(body);
    // a store into a container the iteration made is private, unless the name is reassigned
    for write in std::mem::take(&mut w.fresh_writes) {
        if w.assigned.contains(&write.0) {
            w.writes.push(write);
        }
    }
    if let Some((why, span)) = w.refused.take() {
        return Plan::Refused(why, span);
    }
    // rule 1: every variable declared outside and assigned is a reduction
    let mut reductions = Vec::new();
    for (name, ups) in &w.updates {
        if w.other.contains_key(name) {
            continue;
        }
        let Some(op) = family(ups) else {
            let why = format!("updates '{name}' with operators of different kinds, so it is not a reduction");
            return Plan::Refused(why, ups[0].span);
        };
        if !local(name) {
            let why = format!(
                "assigns '{name}', which is not a plain local variable (a global, or shared with a closure), so it is not a reduction"
            );
            return Plan::Refused(why, ups[0].span);
        }
        reductions.push((name.clone(), op, ups[0].span));
    }
    let assigned_outer = (w.updates.iter().map(|(n, u)| (n, u[0].span)))
        .chain(w.plain.iter().map(|(n, s)| (n, *s)))
        .filter(|(n, _)| !reductions.iter().any(|r| &r.0 == *n))
        .min_by_key(|(_, s)| s.start);
    if let Some((name, span)) = assigned_outer {
        let why = format!("assigns '{name}', declared outside the loop, which is not a reduction");
        return Plan::Refused(why, span);
    }
    match array_races(&w, var) {
        Some((why, span)) => Plan::Refused(why, span),
        None => Plan::Blocked(reductions),
    }
}

/// Rules 2 and 3: stores only at one loop-variable form per array, into arrays the body does
/// not assign, and reads of stored arrays only at that form.
fn array_races(w: &Walk, var: &str) -> Option<(String, Span)> {
    let mut forms: IndexMap<&Rc<str>, &Offset> = IndexMap::new();
    for (a, form, span) in &w.writes {
        if w.var_assigned {
            return Some((format!("stores into {a}[...] but the loop body assigns the loop variable '{var}'"), *span));
        }
        let Some(form) = form else {
            let why = format!(
                "stores into an element of '{a}' whose index is not the loop variable plus or minus a loop-invariant int"
            );
            return Some((why, *span));
        };
        if w.assigned.contains(a) {
            return Some((format!("stores into an element of '{a}', which the loop body assigns"), *span));
        }
        match forms.get(a) {
            Some(f) if *f != form => {
                let why = format!(
                    "stores into {a}[{}] and {a}[{}]: different iterations may write one element",
                    f.show(var),
                    form.show(var)
                );
                return Some((why, *span));
            }
            _ => {
                forms.insert(a, form);
            }
        }
    }
    for (a, form, span) in &w.reads {
        if let Some(f) = forms.get(a)
            && form.as_ref() != Some(*f)
        {
            let why = format!(
                "reads an element of '{a}' that another iteration may write (it stores only {a}[{}])",
                f.show(var)
            );
            return Some((why, *span));
        }
    }
    None
}

impl Compiler {
    /// `for name in prange(args) { body }`: blocked when the analysis finds no race, else a
    /// `range` loop recorded as refused.
    pub(super) fn for_prange(
        &mut self,
        name: &Rc<str>,
        span: Span,
        call: Span,
        args: &[Expr],
        body: &[Stmt],
    ) -> CResult<()> {
        if self.f().pranges.len() >= MAX_PRANGES {
            return Err(Diagnostic::new(
                format!("function too large (it has more than {MAX_PRANGES} prange loops)"),
                call,
            ));
        }
        let header = Span { start: span.start.min(call.start), end: call.end };
        let builtins = Unshadowed {
            min: self.unshadowed_builtin("min").is_some(),
            max: self.unshadowed_builtin("max").is_some(),
            array: self.unshadowed_builtin("array").is_some(),
        };
        let plan = {
            let f = self.f();
            analyze(name, body, builtins, |n| find_local(f, n, true).is_some_and(|l| !l.cell))
        };
        // the entry is reserved first: prange loops nested in the body come after it
        let slot = self.f().pranges.len();
        let info = PrangeInfo {
            span: header,
            prep: 0,
            var: 0,
            reductions: Vec::new(),
            refused: None,
            counts: Default::default(),
        };
        self.f().pranges.push(info);
        match plan {
            Plan::Refused(why, at) => {
                let prep = self.for_range(name, span, call, args, body)?;
                let var = self.f().code[prep as usize].facts().regs[0].0 + 3;
                let info = &mut self.f().pranges[slot];
                (info.prep, info.var, info.refused) = (prep, var, Some((why, at)));
                Ok(())
            }
            Plan::Blocked(found) => self.blocked(name, span, call, slot, args, body, found),
        }
    }

    /// The blocked form of a `prange` loop (see `Instr::PrangePrep` and HANDOFF.md).
    #[allow(clippy::too_many_arguments)]
    fn blocked(
        &mut self,
        name: &Rc<str>,
        span: Span,
        call: Span,
        slot: usize,
        args: &[Expr],
        body: &[Stmt],
        found: Vec<(Rc<str>, RedOp, Span)>,
    ) -> CResult<()> {
        let a = self.alloc(11, span)?;
        self.range_args(a, call, args)?;
        let mut reductions = Vec::new();
        for (rname, op, at) in found {
            let var = find_local(self.f(), &rname, true).map(|l| l.reg).expect("a reduction is a local");
            let acc = self.alloc(1, at)?;
            self.emit(Instr::Move { a: acc, b: var }, at);
            reductions.push(Reduction { var, acc, op, span: at, name: rname });
        }
        let p = slot as u8;
        let prep = self.emit(Instr::PrangePrep { a, p, t: 0 }, call);
        let top = self.here();
        self.emit(Instr::PrangeBlock { a }, call);
        for r in &reductions {
            self.emit(Instr::ReduceInit { a: r.var, b: r.acc, op: r.op }, r.span);
        }
        let inner = self.emit(Instr::ForPrep { a: a + 7, t: 0 }, call);
        let body_start = self.here();
        self.loop_body(body, Some((name, span, a + 10)))?;
        let lp = self.f().loops.pop().expect("loop");
        let step = self.here();
        for c in lp.continues {
            self.patch(c, step);
        }
        self.emit(Instr::ForLoop { a: a + 7, t: body_start }, call);
        self.patch_here(vec![inner]);
        for r in &reductions {
            self.emit(Instr::ReduceCombine { a: r.acc, b: r.var, op: r.op }, r.span);
        }
        self.emit(Instr::PrangeNext { a, t: top }, call);
        self.patch_here(vec![prep]);
        self.patch_here(lp.breaks);
        for r in &reductions {
            self.emit(Instr::Move { a: r.var, b: r.acc }, r.span);
        }
        let info = &mut self.f().pranges[slot];
        (info.prep, info.var, info.reductions) = (prep as u32, a + 10, reductions);
        Ok(())
    }

    /// Whether `iter` is a call of the builtin `prange` (not shadowed) with 1 to 3 arguments.
    pub(super) fn is_prange(&self, iter: &Expr) -> bool {
        matches!(&iter.kind, ExprKind::Call(callee, args)
            if matches!(&callee.kind, ExprKind::Name(n) if self.unshadowed_builtin(n) == Some(Builtin::Prange))
                && (1..=3).contains(&args.len()))
    }

    /// Loads a range's start, stop and step into `a`, `a+1`, `a+2`.
    pub(super) fn range_args(&mut self, a: Reg, call: Span, args: &[Expr]) -> CResult<()> {
        match args {
            [stop] => {
                self.emit(Instr::LoadInt { a, v: 0 }, call);
                self.expr_to(stop, a + 1)?;
                self.emit(Instr::LoadInt { a: a + 2, v: 1 }, call);
            }
            [start, stop] => {
                self.expr_to(start, a)?;
                self.expr_to(stop, a + 1)?;
                self.emit(Instr::LoadInt { a: a + 2, v: 1 }, call);
            }
            [start, stop, step] => {
                self.expr_to(start, a)?;
                self.expr_to(stop, a + 1)?;
                self.expr_to(step, a + 2)?;
            }
            _ => unreachable!("range arity checked by the caller"),
        }
        Ok(())
    }
}
