//! `try` statements: protected regions, the handler table, and the `finally` code emitted on
//! every way out (lang-spec/try.md).
//!
//! A `try` costs nothing until an error: the code runs as written, and the prototype's handler
//! table (`Proto::handlers`, as Lua's and CPython 3.11's exception tables) says where an error
//! raised by an instruction of a protected range goes. A *region* is what a handler protects:
//! the `try` block (for the `catch` clause, or for the `finally` clause when there is no catch),
//! and the `catch` block when there is a `finally`. Its ranges are the instructions compiled
//! while it is open, less the `finally` code emitted inside it for a `return`, `break` or
//! `continue` that leaves it (an error there is not the try block's).
//!
//! `finally` is compiled once per way out, as CPython does: after the try block and after the
//! catch block (the normal ends), before each `return`, `break` and `continue` that leaves the
//! region (innermost region first, each compiled as if its own and the inner regions were
//! closed), and in a handler that stores the error, runs the `finally` code and raises the error
//! again with `Reraise`. A `return` evaluates its value before the `finally` code runs.

use super::{CResult, Compiler};
use crate::ast::{Catch, Stmt, TryStmt};
use crate::bytecode::{Handler, HandlerKind, Instr, Reg};
use crate::source::{Diagnostic, Span};
use std::rc::Rc;

/// The most instructions a function may have when a `finally` block is compiled into it (see
/// lang-spec/limits.md).
pub const MAX_FINALLY_CODE: usize = 1_000_000;

/// An open protected region of the function being compiled.
pub(super) struct Region {
    /// The ranges closed so far, `start..end`.
    ranges: Vec<(u32, u32)>,
    /// Where the range being compiled started, while it is open.
    open: Option<u32>,
    /// The `finally` code a jump out of the region runs.
    finally: Option<Rc<[Stmt]>>,
    /// How many loops enclosed the region when it opened (a `break` in the `finally` code
    /// belongs to those).
    loops: usize,
}

impl Region {
    /// Ends the open range at `here`.
    fn close(&mut self, here: u32) {
        if let Some(start) = self.open.take()
            && start < here
        {
            self.ranges.push((start, here));
        }
    }
}

impl Compiler {
    // try_stmt -> 'try' block ( catch_clause [ finally_clause ] | finally_clause )
    /// Compiles a `try` statement (see the module comment for its shape).
    pub(super) fn try_stmt(&mut self, t: &TryStmt, span: Span) -> CResult<()> {
        let mark = self.mark();
        let err = self.alloc(1, span)?;
        let keyword = Span { start: span.start, end: span.start + 3 };
        self.emit(Instr::Try, keyword);
        let fin = t.finally.clone();
        let mut ends = Vec::new();
        self.open_region(fin.clone());
        self.block(&t.body)?;
        let body = self.close_region();
        self.finally_code(fin.as_deref())?;
        ends.push(self.emit(Instr::Jump { t: 0 }, keyword));
        match &t.catch {
            Some(c) => {
                self.add_handler(&body, err, HandlerKind::Catch);
                if fin.is_some() {
                    self.open_region(fin.clone());
                }
                self.catch_block(c, err)?;
                if let Some(f) = &fin {
                    let handler = self.close_region();
                    self.finally_code(Some(f))?;
                    ends.push(self.emit(Instr::Jump { t: 0 }, keyword));
                    self.reraise_after(&handler, err, f, keyword)?;
                }
            }
            None => {
                let f = fin.as_deref().expect("a try without catch has a finally");
                self.reraise_after(&body, err, f, keyword)?;
            }
        }
        self.patch_here(ends);
        self.release(mark);
        Ok(())
    }

    /// The catch block, with the error record (in `err`) bound to its name.
    fn catch_block(&mut self, c: &Catch, err: Reg) -> CResult<()> {
        self.f().scopes.push(Vec::new());
        if let Some((name, span)) = &c.name {
            self.declare_local(name, span.start, err, true);
            if self.is_captured(span.start) {
                self.emit(Instr::NewCell { a: err }, *span);
            }
        }
        let result = self.block(&c.body);
        self.f().scopes.pop();
        result
    }

    /// The handler that runs `finally` on an error's way out of `ranges`, then raises it again.
    fn reraise_after(&mut self, ranges: &[(u32, u32)], err: Reg, fin: &[Stmt], keyword: Span) -> CResult<()> {
        self.add_handler(ranges, err, HandlerKind::Finally);
        self.finally_code(Some(fin))?;
        self.emit(Instr::Reraise { a: err }, keyword);
        Ok(())
    }

    /// A handler for `ranges` whose code starts here.
    fn add_handler(&mut self, ranges: &[(u32, u32)], reg: Reg, kind: HandlerKind) {
        let target = self.here();
        let handlers = ranges.iter().map(|&(start, end)| Handler { start, end, target, reg, kind });
        self.f().handlers.extend(handlers);
    }

    /// The `finally` code, if any, as a block of its own. Copies of `finally` blocks nested in
    /// `finally` blocks multiply (each level at least doubles them), so the function's size is
    /// bounded here: past [`MAX_FINALLY_CODE`] instructions it is `function too large`.
    fn finally_code(&mut self, fin: Option<&[Stmt]>) -> CResult<()> {
        let Some(stmts) = fin else { return Ok(()) };
        if self.f().code.len() > MAX_FINALLY_CODE {
            let span = stmts.first().map_or(self.f().span, |s| s.span);
            let msg = format!("function too large (more than {MAX_FINALLY_CODE} instructions with its finally blocks)");
            return Err(Diagnostic::new(msg, span));
        }
        self.block(stmts)
    }

    fn open_region(&mut self, finally: Option<Rc<[Stmt]>>) {
        let here = self.here();
        let loops = self.f().loops.len();
        self.f().regions.push(Region { ranges: Vec::new(), open: Some(here), finally, loops });
    }

    /// Closes the innermost region and returns its ranges.
    fn close_region(&mut self) -> Vec<(u32, u32)> {
        let here = self.here();
        let mut r = self.f().regions.pop().expect("a region is open");
        r.close(here);
        r.ranges
    }

    /// How many regions are open (a loop records it, to know which ones a `break` leaves).
    pub(super) fn open_regions(&mut self) -> usize {
        self.f().regions.len()
    }

    /// Whether leaving the regions above `depth` runs any `finally` code.
    pub(super) fn leaves_finally(&mut self, depth: usize) -> bool {
        self.f().regions[depth..].iter().any(|r| r.finally.is_some())
    }

    /// Leaves the regions above `depth`, innermost first: closes each one's range and emits
    /// its `finally` code as it would be compiled outside it (the region and the loops opened
    /// inside it set aside). Returns the regions, for [`Compiler::reenter_regions`] once the
    /// jump out is emitted.
    pub(super) fn leave_regions(&mut self, depth: usize) -> CResult<Vec<Region>> {
        let mut left = Vec::new();
        while self.f().regions.len() > depth {
            let here = self.here();
            let mut r = self.f().regions.pop().expect("a region is open");
            r.close(here);
            let inner_loops = self.f().loops.split_off(r.loops);
            let result = self.finally_code(r.finally.clone().as_deref());
            self.f().loops.extend(inner_loops);
            left.push(r);
            result?;
        }
        Ok(left)
    }

    /// Opens again, at the current instruction, the regions [`Compiler::leave_regions`] left.
    pub(super) fn reenter_regions(&mut self, left: Vec<Region>) {
        let here = self.here();
        for mut r in left.into_iter().rev() {
            r.open = Some(here);
            self.f().regions.push(r);
        }
    }
}
