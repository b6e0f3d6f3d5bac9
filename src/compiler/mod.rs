//! The compiler: from the AST to register bytecode, with locals resolved to registers, captured
//! variables to cells, and every other name to a global slot. It never touches the VM heap
//! beyond creating constants.

mod captures;
mod expr;
mod prange;
mod trys;

use crate::ast::*;
use crate::builtin::Builtin;
use crate::bytecode::{Capture, Handler, Instr, PrangeInfo, Proto, Reg};
use crate::source::{Diagnostic, Span};
use crate::value::Value;
use crate::verify;
use captures::Analysis;
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The most registers one function may use (see lang-spec/limits.md).
pub const MAX_REGISTERS: usize = 250;

/// The most variables one function may capture (see lang-spec/limits.md).
pub const MAX_CAPTURES: usize = 250;

type CResult<T> = Result<T, Diagnostic>;

/// A compiled program: the main function and the names of the global slots (builtins first).
#[derive(Debug)]
pub struct Program {
    pub main: Rc<Proto>,
    pub globals: Vec<Rc<str>>,
    /// Names that no declaration can ever provide, at their first use (`mini check` warns).
    pub warnings: Vec<Diagnostic>,
    /// The program's modules, indexed as `Import` names them; the first is the main file.
    pub modules: Vec<Rc<Module>>,
}

pub use crate::bytecode::Module;

/// One parsed file of a program, for [`compile_modules`].
pub struct Source<'a> {
    /// The module's name, as errors about it say it (the file's stem).
    pub name: Rc<str>,
    pub stmts: &'a [Stmt],
    /// The span of the file's text (its top-level function's span).
    pub span: Span,
    /// The module each `import` of the file loads, by the start of the import's span.
    pub imports: HashMap<u32, u16>,
}

/// Compiles a parsed program of one file (and verifies the bytecode when `verify::enabled`).
pub fn compile(stmts: &[Stmt]) -> CResult<Program> {
    let main = Source { name: "<main>".into(), stmts, span: Span::default(), imports: HashMap::new() };
    compile_modules(&[main])
}

/// Compiles a program of several files, the main file first, each in its own global scope:
/// the builtins' slots are shared, and every other top-level name of a file gets a slot of
/// its own (and verifies the bytecode when `verify::enabled`).
pub fn compile_modules(files: &[Source]) -> CResult<Program> {
    let mut names: Vec<Rc<str>> = Builtin::ALL.iter().map(|b| Rc::from(b.name())).collect();
    let mut warnings = Vec::new();
    let mut modules = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mut c = Compiler::for_file(file, std::mem::take(&mut names));
        let main = if i == 0 { c.main(file.stmts, false)? } else { c.module(file.stmts, file.span)? };
        names = c.names;
        let exported = c.globals.into_iter().filter(|(name, _)| c.top_level.contains(name)).collect();
        // Function bodies are compiled when their declaration is hoisted, so warnings are found
        // out of source order; report them in it.
        let mut found: Vec<Diagnostic> = c.warnings.into_values().collect();
        found.sort_by_key(|w| w.span.start);
        warnings.extend(found);
        modules.push(Rc::new(Module { name: file.name.clone(), main, names: exported }));
    }
    if verify::enabled() {
        for m in &modules {
            verify::program(&m.main, names.len())
                .map_err(|e| Diagnostic::new(format!("internal error: {e}"), Span::default()))?;
        }
    }
    let main = modules[0].main.clone();
    Ok(Program { main, globals: names, warnings, modules })
}

/// The global slots of the prompt's inputs so far: name to slot, builtins first; at the prompt
/// the `i`th name has slot `i`.
pub type GlobalTable = IndexMap<Rc<str>, u16, FxBuildHasher>;

/// The global slots of a program before its declarations: the builtins.
pub fn builtin_table() -> GlobalTable {
    Builtin::ALL.iter().enumerate().map(|(i, b)| (Rc::from(b.name()), i as u16)).collect()
}

/// Compiles one input of the interactive prompt against the global slots of the inputs before
/// it (`table`, which gains the input's new names, also when compiling fails: such slots stay
/// unused until an input that compiles names them). When the input's last top-level statement
/// is an expression statement, the main function returns its value (otherwise nil), for the
/// prompt to print. No warnings: a name may be defined by a later input.
pub fn compile_input(stmts: &[Stmt], table: &mut GlobalTable) -> CResult<Rc<Proto>> {
    let analysis = captures::analyze(stmts);
    let top_level = top_level_names(stmts);
    let names = table.keys().cloned().collect();
    let globals = std::mem::take(table);
    let imports = HashMap::new();
    let mut c = Compiler { analysis, globals, names, imports, funcs: Vec::new(), top_level, warnings: IndexMap::new() };
    let main = c.main(stmts, true);
    *table = std::mem::take(&mut c.globals);
    let main = main?;
    if verify::enabled() {
        verify::program(&main, c.names.len())
            .map_err(|e| Diagnostic::new(format!("internal error: {e}"), Span::default()))?;
    }
    Ok(main)
}

/// The names a file's top-level `let` and `fn` declare: the globals it can define.
fn top_level_names(stmts: &[Stmt]) -> HashSet<Rc<str>> {
    stmts
        .iter()
        .filter_map(|s| match &s.kind {
            StmtKind::Let(name, _) => Some(name.clone()),
            StmtKind::Fn(def) => def.name.clone(),
            _ => None,
        })
        .collect()
}

/// Where a name lives.
#[derive(Clone, Copy)]
enum Place {
    Local(Reg),
    CellLocal(Reg),
    Upval(u8),
    Global(u16),
}

struct Local {
    name: Rc<str>,
    id: u32,
    reg: Reg,
    cell: bool,
    visible: bool,
}

struct Loop {
    breaks: Vec<usize>,
    continues: Vec<usize>,
    /// How many `try` regions were open when the loop began (`break` leaves those above).
    regions: usize,
}

/// The state of one function being compiled.
struct FnState {
    name: Rc<str>,
    nparams: usize,
    code: Vec<Instr>,
    spans: Vec<Span>,
    consts: Vec<Value>,
    const_index: HashMap<ConstKey, u16>,
    protos: Vec<Rc<Proto>>,
    captures: Vec<Capture>,
    upval_ids: Vec<u32>,
    scopes: Vec<Vec<Local>>,
    next_reg: usize,
    max_reg: usize,
    loops: Vec<Loop>,
    /// The open `try` regions, innermost last, and the handlers of the closed ones.
    regions: Vec<trys::Region>,
    handlers: Vec<Handler>,
    /// The `prange` loops compiled so far (`Proto::pranges`).
    pranges: Vec<PrangeInfo>,
    span: Span,
}

#[derive(PartialEq, Eq, Hash)]
enum ConstKey {
    Int(i64),
    Float(u64),
    Str(Rc<str>),
}

struct Compiler {
    analysis: Analysis,
    /// The names this file can see, with their slots: the builtins and its own globals.
    globals: GlobalTable,
    /// Every global slot's name, across the program's files.
    names: Vec<Rc<str>>,
    /// The module each `import` of this file loads, by the start of the import's span.
    imports: HashMap<u32, u16>,
    funcs: Vec<FnState>,
    /// Names declared by top-level `let` and `fn`: the globals a program can define.
    top_level: HashSet<Rc<str>>,
    warnings: IndexMap<Rc<str>, Diagnostic>,
}

impl Compiler {
    /// The compiler of one file of a program, given the slot names of the files before it. The
    /// file shares the builtins' slots, except those of the names it declares or assigns: each
    /// of those gets a slot of its own (holding the builtin until the file stores to it), so
    /// that a file's `let len = ...` is not another file's `len`.
    fn for_file(file: &Source, names: Vec<Rc<str>>) -> Compiler {
        let analysis = captures::analyze(file.stmts);
        // (the builtins' names are the first of `names`: shared, not allocated again)
        let globals = (names.iter().take(Builtin::ALL.len()).enumerate())
            .filter(|(_, name)| !analysis.declared.contains(&**name))
            .map(|(i, name)| (name.clone(), i as u16))
            .collect();
        let top_level = top_level_names(file.stmts);
        let imports = file.imports.clone();
        Compiler { analysis, globals, names, imports, funcs: Vec::new(), top_level, warnings: IndexMap::new() }
    }

    fn f(&mut self) -> &mut FnState {
        self.funcs.last_mut().expect("compiling a function")
    }

    // ----- emitting -----

    fn emit(&mut self, ins: Instr, span: Span) -> usize {
        let f = self.f();
        f.code.push(ins);
        f.spans.push(span);
        f.code.len() - 1
    }

    fn here(&mut self) -> u32 {
        self.f().code.len() as u32
    }

    /// Points the jump at `at` to `target`.
    fn patch(&mut self, at: usize, target: u32) {
        let ins = &mut self.f().code[at];
        *ins.jump_target_mut().expect("only jumps are patched") = target;
    }

    fn patch_here(&mut self, jumps: Vec<usize>) {
        let here = self.here();
        for j in jumps {
            self.patch(j, here);
        }
    }

    fn constant(&mut self, key: ConstKey, value: Value, span: Span) -> CResult<u16> {
        if let Some(&k) = self.f().const_index.get(&key) {
            return Ok(k);
        }
        let f = self.f();
        if f.consts.len() > u16::MAX as usize {
            return Err(Diagnostic::new("function too large (too many constants)", span));
        }
        f.consts.push(value);
        let k = (f.consts.len() - 1) as u16;
        f.const_index.insert(key, k);
        Ok(k)
    }

    // ----- registers -----

    fn alloc(&mut self, n: usize, span: Span) -> CResult<Reg> {
        let f = self.f();
        let r = f.next_reg;
        f.next_reg += n;
        if f.next_reg > MAX_REGISTERS {
            return Err(Diagnostic::new(
                format!("function too large (it needs more than {MAX_REGISTERS} registers)"),
                span,
            ));
        }
        f.max_reg = f.max_reg.max(f.next_reg);
        Ok(r as Reg)
    }

    fn mark(&mut self) -> usize {
        self.f().next_reg
    }

    fn release(&mut self, mark: usize) {
        self.f().next_reg = mark;
    }

    // ----- names -----

    fn global_slot(&mut self, name: &Rc<str>, span: Span) -> CResult<u16> {
        if let Some(&g) = self.globals.get(name) {
            return Ok(g);
        }
        if self.names.len() > u16::MAX as usize {
            return Err(Diagnostic::new("too many global names", span));
        }
        let g = self.names.len() as u16;
        self.names.push(name.clone());
        self.globals.insert(name.clone(), g);
        Ok(g)
    }

    fn resolve(&mut self, name: &Rc<str>, span: Span) -> CResult<Place> {
        let cur = self.funcs.len() - 1;
        if let Some(l) = find_local(&self.funcs[cur], name, true) {
            return Ok(if l.cell { Place::CellLocal(l.reg) } else { Place::Local(l.reg) });
        }
        if let Some(u) = self.resolve_upval(cur, name, span)? {
            return Ok(Place::Upval(u));
        }
        if !self.top_level.contains(name) && Builtin::from_name(name).is_none() {
            let warning = Diagnostic::new(format!("undefined variable '{name}'"), span);
            self.warnings.entry(name.clone()).or_insert(warning);
        }
        Ok(Place::Global(self.global_slot(name, span)?))
    }

    /// Finds `name` among the locals of functions enclosing function `f`, adding the chain of
    /// captures that brings it into `f`.
    fn resolve_upval(&mut self, f: usize, name: &Rc<str>, span: Span) -> CResult<Option<u8>> {
        if f == 0 {
            return Ok(None);
        }
        let (capture, id) = match find_local(&self.funcs[f - 1], name, false) {
            Some(l) => (Capture::Local(l.reg), l.id),
            None => {
                let Some(u) = self.resolve_upval(f - 1, name, span)? else { return Ok(None) };
                (Capture::Upval(u), self.funcs[f - 1].upval_ids[u as usize])
            }
        };
        let func = &mut self.funcs[f];
        if let Some(i) = func.upval_ids.iter().position(|&x| x == id) {
            return Ok(Some(i as u8));
        }
        if func.captures.len() >= MAX_CAPTURES {
            let msg = format!("function too large (it captures more than {MAX_CAPTURES} variables)");
            return Err(Diagnostic::new(msg, span));
        }
        func.captures.push(capture);
        func.upval_ids.push(id);
        Ok(Some((func.captures.len() - 1) as u8))
    }

    fn declare_local(&mut self, name: &Rc<str>, id: u32, reg: Reg, visible: bool) {
        let cell = self.analysis.captured.contains(&id);
        let local = Local { name: name.clone(), id, reg, cell, visible };
        self.f().scopes.last_mut().expect("a scope is open").push(local);
    }

    fn is_captured(&self, id: u32) -> bool {
        self.analysis.captured.contains(&id)
    }

    /// The builtin a call to `name` reaches, when no program code can rebind that name.
    fn unshadowed_builtin(&self, name: &str) -> Option<Builtin> {
        if self.analysis.declared.contains(name) {
            return None;
        }
        Builtin::from_name(name)
    }

    // ----- functions -----

    fn begin_function(&mut self, name: Rc<str>, nparams: usize, span: Span) {
        self.funcs.push(FnState {
            name,
            nparams,
            code: Vec::new(),
            spans: Vec::new(),
            consts: Vec::new(),
            const_index: HashMap::new(),
            protos: Vec::new(),
            captures: Vec::new(),
            upval_ids: Vec::new(),
            scopes: vec![Vec::new()],
            next_reg: 0,
            max_reg: 0,
            loops: Vec::new(),
            regions: Vec::new(),
            handlers: Vec::new(),
            pranges: Vec::new(),
            span,
        });
    }

    fn end_function(&mut self) -> Rc<Proto> {
        let end = self.f().span;
        self.emit(Instr::ReturnNil, Span { start: end.end, end: end.end });
        let f = self.funcs.pop().expect("compiling a function");
        let constant_captures = f.upval_ids.iter().map(|id| !self.analysis.reassigned.contains(id)).collect();
        Rc::new(Proto {
            name: f.name,
            nparams: f.nparams,
            nregs: f.max_reg.max(f.nparams).max(1),
            run: crate::bytecode::fuse(&f.code),
            code: f.code,
            spans: f.spans,
            mod_multipliers: crate::bytecode::mod_multipliers(&f.consts),
            consts: f.consts,
            protos: f.protos,
            captures: f.captures,
            span: f.span,
            handlers: f.handlers,
            pranges: f.pranges,
            jit: Default::default(),
            constant_captures,
        })
    }

    /// The main function; with `echo_last`, it returns the value of a last top-level
    /// expression statement.
    fn main(&mut self, stmts: &[Stmt], echo_last: bool) -> CResult<Rc<Proto>> {
        self.begin_function("<main>".into(), 0, Span::default());
        self.top_level_body(stmts, echo_last)
    }

    /// The function that runs an imported module's top level, `<module>`, spanning its file.
    fn module(&mut self, stmts: &[Stmt], span: Span) -> CResult<Rc<Proto>> {
        self.begin_function("<module>".into(), 0, span);
        self.top_level_body(stmts, false)
    }

    /// The body of a file's top-level function: its functions hoisted, then its statements
    /// (with `echo_last`, returning the value of a last expression statement).
    fn top_level_body(&mut self, stmts: &[Stmt], echo_last: bool) -> CResult<Rc<Proto>> {
        let fns: Vec<&Rc<FnDef>> = stmts.iter().filter_map(as_fn_decl).collect();
        for def in fns {
            let mark = self.mark();
            let t = self.alloc(1, def.span)?;
            self.closure(def, t)?;
            let name = def.name.clone().unwrap_or_else(|| "".into());
            let g = self.global_slot(&name, def.span)?;
            self.emit(Instr::DefGlobal { a: t, g }, def.span);
            self.release(mark);
        }
        for s in stmts {
            match &s.kind {
                StmtKind::Let(name, e) => {
                    let mark = self.mark();
                    let r = self.expr_any(e)?;
                    let g = self.global_slot(name, s.span)?;
                    self.emit(Instr::DefGlobal { a: r, g }, s.span);
                    self.release(mark);
                }
                StmtKind::Fn(_) => {}
                StmtKind::Expr(e) if echo_last && std::ptr::eq(s, &stmts[stmts.len() - 1]) => {
                    let r = self.expr_any(e)?;
                    self.emit(Instr::Return { a: r }, s.span);
                }
                _ => self.stmt(s)?,
            }
        }
        Ok(self.end_function())
    }

    /// Compiles a function literal or declaration into a child prototype and emits the
    /// instruction that makes its closure in `dst`.
    fn closure(&mut self, def: &FnDef, dst: Reg) -> CResult<()> {
        let name = def.name.clone().unwrap_or_else(|| "anonymous".into());
        self.begin_function(name, def.params.len(), def.span);
        for (param, span) in &def.params {
            let r = self.alloc(1, *span)?;
            self.declare_local(param, span.start, r, true);
            if self.is_captured(span.start) {
                self.emit(Instr::NewCell { a: r }, *span);
            }
        }
        self.block(&def.body)?;
        let proto = self.end_function();
        let f = self.f();
        if f.protos.len() > u16::MAX as usize {
            return Err(Diagnostic::new("function too large (too many nested functions)", def.span));
        }
        f.protos.push(proto);
        let p = (f.protos.len() - 1) as u16;
        self.emit(Instr::Closure { a: dst, p }, def.span);
        Ok(())
    }

    // ----- statements -----

    /// A block: its captured `let`s get their cells and its `fn`s their closures up front.
    fn block(&mut self, stmts: &[Stmt]) -> CResult<()> {
        let mark = self.mark();
        self.f().scopes.push(Vec::new());
        self.hoist(stmts)?;
        let result = stmts.iter().try_for_each(|s| self.stmt(s));
        self.f().scopes.pop();
        self.release(mark);
        result
    }

    fn hoist(&mut self, stmts: &[Stmt]) -> CResult<()> {
        let mut fns = Vec::new();
        for s in stmts {
            match &s.kind {
                StmtKind::Let(name, _) if self.is_captured(s.span.start) => {
                    let r = self.alloc(1, s.span)?;
                    self.emit(Instr::NewEmptyCell { a: r }, s.span);
                    self.declare_local(name, s.span.start, r, false);
                }
                StmtKind::Fn(def) => {
                    let r = self.alloc(1, s.span)?;
                    if self.is_captured(s.span.start) {
                        self.emit(Instr::NewEmptyCell { a: r }, s.span);
                    }
                    let name = def.name.clone().unwrap_or_else(|| "".into());
                    self.declare_local(&name, s.span.start, r, true);
                    fns.push((r, def, s.span.start));
                }
                _ => {}
            }
        }
        for (r, def, id) in fns {
            if self.is_captured(id) {
                let mark = self.mark();
                let t = self.alloc(1, def.span)?;
                self.closure(def, t)?;
                self.emit(Instr::SetCell { a: r, b: t }, def.span);
                self.release(mark);
            } else {
                self.closure(def, r)?;
            }
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> CResult<()> {
        let mark = self.mark();
        let result = self.stmt_inner(s);
        if !matches!(s.kind, StmtKind::Let(..)) {
            self.release(mark);
        }
        result
    }

    fn stmt_inner(&mut self, s: &Stmt) -> CResult<()> {
        match &s.kind {
            StmtKind::Let(name, e) => self.let_stmt(name, e, s.span),
            StmtKind::Assign(target, op, e) => self.assign(target, *op, e, s.span),
            StmtKind::Expr(e) => {
                let t = self.alloc(1, e.span)?;
                self.expr_to(e, t)
            }
            StmtKind::If(arms, otherwise) => self.if_stmt(arms, otherwise.as_deref()),
            StmtKind::While(cond, body) => self.while_stmt(cond, body),
            StmtKind::For(name, span, iter, body) => self.for_stmt(name, *span, iter, body),
            StmtKind::Break | StmtKind::Continue => self.loop_jump(s),
            StmtKind::Return(value) => self.return_stmt(value.as_ref(), s.span),
            StmtKind::Fn(_) => Ok(()),
            StmtKind::Try(t) => self.try_stmt(t, s.span),
        }
    }

    fn let_stmt(&mut self, name: &Rc<str>, e: &Expr, span: Span) -> CResult<()> {
        let id = span.start;
        if self.is_captured(id) {
            let mark = self.mark();
            let t = self.expr_any(e)?;
            let reg = self.find_declared(id);
            self.emit(Instr::SetCell { a: reg, b: t }, span);
            self.release(mark);
            self.set_visible(id);
            return Ok(());
        }
        let r = self.alloc(1, span)?;
        self.expr_to(e, r)?;
        self.declare_local(name, id, r, true);
        Ok(())
    }

    fn find_declared(&mut self, id: u32) -> Reg {
        let scope = self.f().scopes.last().expect("a scope is open");
        scope.iter().find(|l| l.id == id).map(|l| l.reg).expect("captured let was hoisted")
    }

    fn set_visible(&mut self, id: u32) {
        if let Some(l) = self.f().scopes.last_mut().and_then(|s| s.iter_mut().find(|l| l.id == id)) {
            l.visible = true;
        }
    }

    fn assign(&mut self, target: &Target, op: Option<BinOp>, e: &Expr, span: Span) -> CResult<()> {
        match target {
            Target::Name(name) => self.assign_name(name, op, e, span),
            Target::Index(obj, idx) => {
                let o = self.expr_any(obj)?;
                let i = self.expr_any(idx)?;
                let v = match op {
                    None => self.expr_any(e)?,
                    Some(op) => {
                        let t = self.alloc(1, span)?;
                        self.emit(Instr::GetIndex { a: t, b: o, c: i }, span);
                        self.binary_into(op, t, t, e, span)?;
                        t
                    }
                };
                self.emit(Instr::SetIndex { a: o, b: i, c: v }, span);
                Ok(())
            }
            Target::IndexN(obj, idx) => {
                let n = idx.len() as u8;
                let (o, i) = self.index_window(obj, idx, span)?;
                let v = match op {
                    None => self.expr_any(e)?,
                    Some(op) => {
                        let t = self.alloc(1, span)?;
                        self.emit(Instr::GetIndexN { a: t, b: o, c: i, n }, span);
                        self.binary_into(op, t, t, e, span)?;
                        t
                    }
                };
                self.emit(Instr::SetIndexN { a: o, b: i, c: v, n }, span);
                Ok(())
            }
            Target::Field(obj, name, at) => {
                let o = self.expr_any(obj)?;
                let k = self.field_name(name, *at)?;
                let v = match op {
                    None => self.expr_any(e)?,
                    Some(op) => {
                        let t = self.alloc(1, span)?;
                        self.emit(Instr::GetField { a: t, b: o, k }, *at);
                        self.binary_into(op, t, t, e, span)?;
                        t
                    }
                };
                self.emit(Instr::SetField { a: o, k, c: v }, *at);
                Ok(())
            }
        }
    }

    fn assign_name(&mut self, name: &Rc<str>, op: Option<BinOp>, e: &Expr, span: Span) -> CResult<()> {
        let place = self.resolve(name, span)?;
        if let (Place::Local(r), Some(op)) = (place, op) {
            return self.binary_into(op, r, r, e, span);
        }
        if let (Place::Local(r), None) = (place, op)
            && !matches!(e.kind, ExprKind::Call(..) | ExprKind::And(..) | ExprKind::Or(..))
        {
            return self.expr_to(e, r);
        }
        let t = self.alloc(1, span)?;
        match op {
            None => self.expr_to(e, t)?,
            Some(op) => {
                self.load_place(place, name, t, span)?;
                self.binary_into(op, t, t, e, span)?;
            }
        }
        self.store_place(place, name, t, span)
    }

    /// The constant holding a variable's name, for `undefined variable` errors.
    fn name_constant(&mut self, name: &Rc<str>, span: Span) -> CResult<u16> {
        self.constant(ConstKey::Str(name.clone()), Value::str(name), span)
    }

    pub(super) fn load_place(&mut self, place: Place, name: &Rc<str>, dst: Reg, span: Span) -> CResult<()> {
        let ins = match place {
            Place::Local(r) if r == dst => return Ok(()),
            Place::Local(r) => Instr::Move { a: dst, b: r },
            Place::CellLocal(r) => Instr::GetCell { a: dst, b: r, k: self.name_constant(name, span)? },
            Place::Upval(u) => Instr::GetUpval { a: dst, u, k: self.name_constant(name, span)? },
            Place::Global(g) => Instr::GetGlobal { a: dst, g },
        };
        self.emit(ins, span);
        Ok(())
    }

    fn store_place(&mut self, place: Place, name: &Rc<str>, src: Reg, span: Span) -> CResult<()> {
        let ins = match place {
            Place::Local(r) if r == src => return Ok(()),
            Place::Local(r) => Instr::Move { a: r, b: src },
            Place::CellLocal(r) => Instr::SetCell { a: r, b: src },
            Place::Upval(u) => Instr::SetUpval { a: src, u, k: self.name_constant(name, span)? },
            Place::Global(g) => Instr::SetGlobal { a: src, g },
        };
        self.emit(ins, span);
        Ok(())
    }

    fn if_stmt(&mut self, arms: &[(Expr, Vec<Stmt>)], otherwise: Option<&[Stmt]>) -> CResult<()> {
        let mut to_end = Vec::new();
        for (i, (cond, body)) in arms.iter().enumerate() {
            let mark = self.mark();
            let skip = self.jump_if_false(cond)?;
            self.release(mark);
            self.block(body)?;
            if i + 1 < arms.len() || otherwise.is_some() {
                to_end.push(self.emit(Instr::Jump { t: 0 }, cond.span));
            }
            self.patch_here(skip);
        }
        if let Some(body) = otherwise {
            self.block(body)?;
        }
        self.patch_here(to_end);
        Ok(())
    }

    fn while_stmt(&mut self, cond: &Expr, body: &[Stmt]) -> CResult<()> {
        let top = self.here();
        let mark = self.mark();
        let exit = self.jump_if_false(cond)?;
        self.release(mark);
        self.loop_body(body, None)?;
        let lp = self.f().loops.pop().expect("loop");
        self.emit(Instr::Jump { t: top }, cond.span);
        for c in lp.continues {
            self.patch(c, top);
        }
        self.patch_here(exit);
        self.patch_here(lp.breaks);
        Ok(())
    }

    /// Compiles a loop body (pushing the loop context, left for the caller to pop); when
    /// `var` is given, the loop variable is declared in a scope around the body.
    fn loop_body(&mut self, body: &[Stmt], var: Option<(&Rc<str>, Span, Reg)>) -> CResult<()> {
        let regions = self.open_regions();
        self.f().loops.push(Loop { breaks: Vec::new(), continues: Vec::new(), regions });
        self.f().scopes.push(Vec::new());
        if let Some((name, span, reg)) = var {
            self.declare_local(name, span.start, reg, true);
            if self.is_captured(span.start) {
                self.emit(Instr::NewCell { a: reg }, span);
            }
        }
        let result = self.block(body);
        self.f().scopes.pop();
        result
    }

    fn for_stmt(&mut self, name: &Rc<str>, span: Span, iter: &Expr, body: &[Stmt]) -> CResult<()> {
        if let ExprKind::Call(callee, args) = &iter.kind
            && matches!(&callee.kind, ExprKind::Name(n) if self.unshadowed_builtin(n) == Some(Builtin::Range))
            && (1..=3).contains(&args.len())
        {
            return self.for_range(name, span, iter.span, args, body).map(|_| ());
        }
        if let ExprKind::Call(_, args) = &iter.kind
            && self.is_prange(iter)
        {
            return self.for_prange(name, span, iter.span, args, body);
        }
        let base = self.alloc(3, span)?;
        self.expr_to(iter, base)?;
        self.emit(Instr::IterPrep { a: base }, iter.span);
        let top = self.here();
        let next = self.emit(Instr::IterNext { a: base, t: 0 }, iter.span);
        self.loop_body(body, Some((name, span, base + 2)))?;
        let lp = self.f().loops.pop().expect("loop");
        self.emit(Instr::Jump { t: top }, iter.span);
        for c in lp.continues {
            self.patch(c, top);
        }
        self.patch_here(vec![next]);
        self.patch_here(lp.breaks);
        Ok(())
    }

    /// A counted loop; returns the index of its `ForPrep`.
    fn for_range(&mut self, name: &Rc<str>, span: Span, call: Span, args: &[Expr], body: &[Stmt]) -> CResult<u32> {
        let base = self.alloc(4, span)?;
        self.range_args(base, call, args)?;
        let prep = self.emit(Instr::ForPrep { a: base, t: 0 }, call);
        let body_start = self.here();
        self.loop_body(body, Some((name, span, base + 3)))?;
        let lp = self.f().loops.pop().expect("loop");
        let step = self.here();
        for c in lp.continues {
            self.patch(c, step);
        }
        self.emit(Instr::ForLoop { a: base, t: body_start }, call);
        self.patch_here(vec![prep]);
        self.patch_here(lp.breaks);
        Ok(prep as u32)
    }

    fn loop_jump(&mut self, s: &Stmt) -> CResult<()> {
        let is_break = matches!(s.kind, StmtKind::Break);
        if self.f().loops.is_empty() {
            let word = if is_break { "break" } else { "continue" };
            return Err(Diagnostic::new(format!("'{word}' outside a loop"), s.span));
        }
        let depth = self.f().loops.last().expect("loop").regions;
        let left = self.leave_regions(depth)?;
        let j = self.emit(Instr::Jump { t: 0 }, s.span);
        self.reenter_regions(left);
        let lp = self.f().loops.last_mut().expect("loop");
        if is_break {
            lp.breaks.push(j)
        } else {
            lp.continues.push(j)
        }
        Ok(())
    }

    fn return_stmt(&mut self, value: Option<&Expr>, span: Span) -> CResult<()> {
        if self.funcs.len() == 1 {
            return Err(Diagnostic::new("'return' outside a function", span));
        }
        if self.leaves_finally(0) {
            return self.return_through_finally(value, span);
        }
        match value {
            None => {
                self.emit(Instr::ReturnNil, span);
            }
            Some(e) => {
                let r = self.expr_any(e)?;
                self.emit(Instr::Return { a: r }, span);
            }
        }
        Ok(())
    }

    /// A `return` inside `try` regions with `finally` code: the value is computed into a
    /// register of its own first (the `finally` code may assign the variable it came from).
    fn return_through_finally(&mut self, value: Option<&Expr>, span: Span) -> CResult<()> {
        let r = self.alloc(1, span)?;
        match value {
            Some(e) => self.expr_to(e, r)?,
            None => {
                self.emit(Instr::LoadNil { a: r }, span);
            }
        }
        let left = self.leave_regions(0)?;
        self.emit(Instr::Return { a: r }, span);
        self.reenter_regions(left);
        Ok(())
    }
}

fn as_fn_decl(s: &Stmt) -> Option<&Rc<FnDef>> {
    match &s.kind {
        StmtKind::Fn(def) => Some(def),
        _ => None,
    }
}

/// The innermost local named `name`; `direct` lookups see only locals whose `let` has run.
fn find_local<'a>(f: &'a FnState, name: &str, direct: bool) -> Option<&'a Local> {
    // Of several declarations of `name` in one block, the latest in the source wins: for the
    // block's own code the latest whose `let` has run, for nested functions the last of all.
    // (Hoisting declares them out of source order, so the position in the scope says nothing.)
    let candidates = |scope: &'a Vec<Local>| scope.iter().filter(move |l| &*l.name == name && (l.visible || !direct));
    f.scopes.iter().rev().find_map(|scope| candidates(scope).max_by_key(|l| l.id))
}
