//! Expression compilation: values into registers, and conditions into jumps.

use super::{CResult, Compiler, ConstKey, Place};
use crate::ast::*;
use crate::builtin::Builtin;
use crate::bytecode::{Instr, Reg};
use crate::source::{Diagnostic, Span};
use crate::value::Value;
use std::rc::Rc;

/// The most elements one `NewList` gathers; longer literals push the rest.
const LIST_CHUNK: usize = 200;
/// The most pairs one `NewDict` gathers; longer literals store the rest.
const DICT_CHUNK: usize = 100;

impl Compiler {
    /// Compiles `e` and returns a register holding its value: a plain local's own register, or
    /// a new temporary.
    pub(super) fn expr_any(&mut self, e: &Expr) -> CResult<Reg> {
        if let ExprKind::Name(name) = &e.kind
            && let Place::Local(r) = self.resolve(name, e.span)?
        {
            return Ok(r);
        }
        let t = self.alloc(1, e.span)?;
        self.expr_to(e, t)?;
        Ok(t)
    }

    /// Compiles `e` into register `dst`. Only calls and `and`/`or` write `dst` before they
    /// have read all their operands, so callers never pass a live local's register for those.
    pub(super) fn expr_to(&mut self, e: &Expr, dst: Reg) -> CResult<()> {
        let span = e.span;
        match &e.kind {
            ExprKind::Nil => {
                self.emit(Instr::LoadNil { a: dst }, span);
            }
            ExprKind::Bool(b) => {
                self.emit(Instr::LoadBool { a: dst, b: *b }, span);
            }
            ExprKind::Int(v) => self.load_int(*v, dst, span)?,
            ExprKind::Float(v) => {
                let k = self.constant(ConstKey::Float(v.to_bits()), Value::Float(*v), span)?;
                self.emit(Instr::LoadK { a: dst, k }, span);
            }
            ExprKind::Str(s) => {
                let k = self.constant(ConstKey::Str(s.clone()), Value::str(s), span)?;
                self.emit(Instr::LoadK { a: dst, k }, span);
            }
            ExprKind::Name(name) => {
                let place = self.resolve(name, span)?;
                self.load_place(place, name, dst, span)?;
            }
            ExprKind::List(items) => self.list(items, dst, span)?,
            ExprKind::Dict(pairs) => self.dict(pairs, dst, span)?,
            ExprKind::Index(obj, idx) => {
                let mark = self.mark();
                let b = self.expr_any(obj)?;
                let c = self.expr_any(idx)?;
                self.emit(Instr::GetIndex { a: dst, b, c }, span);
                self.release(mark);
            }
            ExprKind::Field(obj, name, at) => {
                let mark = self.mark();
                let b = self.expr_any(obj)?;
                let k = self.field_name(name, *at)?;
                self.emit(Instr::GetField { a: dst, b, k }, *at);
                self.release(mark);
            }
            ExprKind::Slice(obj, bounds) => self.slice(obj, bounds, dst, span)?,
            ExprKind::IndexN(obj, idx) => {
                let mark = self.mark();
                let (b, c) = self.index_window(obj, idx, span)?;
                self.emit(Instr::GetIndexN { a: dst, b, c, n: idx.len() as u8 }, span);
                self.release(mark);
            }
            ExprKind::Call(callee, args) => self.call(callee, args, dst, span)?,
            ExprKind::BuiltinCall(f, args) => self.builtin_call(*f, args, dst, span)?,
            ExprKind::Import(_, at) => {
                let Some(&m) = self.imports.get(&at.start) else {
                    return Err(Diagnostic::new("import is available only in a program run from files", span));
                };
                self.emit(Instr::Import { a: dst, m }, *at);
            }
            ExprKind::Unary(UnOp::Neg, operand) => self.negate(operand, dst, span)?,
            ExprKind::Unary(op @ (UnOp::Not | UnOp::BitNot), operand) => {
                let mark = self.mark();
                let b = self.expr_any(operand)?;
                let ins = if *op == UnOp::Not { Instr::Not { a: dst, b } } else { Instr::BitNot { a: dst, b } };
                self.emit(ins, span);
                self.release(mark);
            }
            ExprKind::Binary(op, left, right) => {
                let mark = self.mark();
                if let Some(k) = self.left_constant(*op, left)? {
                    let b = self.expr_any(right)?;
                    let ins = match op {
                        BinOp::Add => Instr::KAdd { a: dst, b, k },
                        BinOp::Sub => Instr::KSub { a: dst, b, k },
                        BinOp::Mul => Instr::KMul { a: dst, b, k },
                        _ => Instr::KDiv { a: dst, b, k },
                    };
                    self.emit(ins, span);
                } else if self.is_fresh(dst) && !matches!(left.kind, ExprKind::Name(_)) {
                    self.expr_to(left, dst)?;
                    self.binary_into(*op, dst, dst, right, span)?;
                } else {
                    let b = self.expr_any(left)?;
                    self.binary_into(*op, dst, b, right, span)?;
                }
                self.release(mark);
            }
            ExprKind::And(left, right) | ExprKind::Or(left, right) => {
                self.expr_to(left, dst)?;
                let is_and = matches!(e.kind, ExprKind::And(..));
                let ins = if is_and { Instr::JumpIfFalse { a: dst, t: 0 } } else { Instr::JumpIfTrue { a: dst, t: 0 } };
                let j = self.emit(ins, span);
                self.expr_to(right, dst)?;
                self.patch_here(vec![j]);
            }
            ExprKind::Function(def) => self.closure(def, dst)?,
        }
        Ok(())
    }

    /// The constant holding a field's name, the key `GetField` and `SetField` look up.
    pub(super) fn field_name(&mut self, name: &Rc<str>, span: Span) -> CResult<u16> {
        self.constant(ConstKey::Str(name.clone()), Value::str(name), span)
    }

    /// Whether `dst` is the newest register and no visible variable lives in it, so that an
    /// expression may use it for intermediate results.
    fn is_fresh(&mut self, dst: Reg) -> bool {
        dst as usize + 1 == self.mark() && !self.f().scopes.iter().flatten().any(|l| l.visible && l.reg == dst)
    }

    fn load_int(&mut self, v: i64, dst: Reg, span: Span) -> CResult<()> {
        if let Ok(small) = i32::try_from(v) {
            self.emit(Instr::LoadInt { a: dst, v: small }, span);
        } else {
            let k = self.constant(ConstKey::Int(v), Value::Int(v), span)?;
            self.emit(Instr::LoadK { a: dst, k }, span);
        }
        Ok(())
    }

    fn negate(&mut self, operand: &Expr, dst: Reg, span: Span) -> CResult<()> {
        match operand.kind {
            ExprKind::Int(v) if v != i64::MIN => return self.load_int(-v, dst, span),
            ExprKind::Float(v) => {
                let k = self.constant(ConstKey::Float((-v).to_bits()), Value::Float(-v), span)?;
                self.emit(Instr::LoadK { a: dst, k }, span);
                return Ok(());
            }
            _ => {}
        }
        let mark = self.mark();
        let b = self.expr_any(operand)?;
        self.emit(Instr::Neg { a: dst, b }, span);
        self.release(mark);
        Ok(())
    }

    /// `R[dst] := R[b] op right`, using the constant-operand forms when `right` is a number.
    pub(super) fn binary_into(&mut self, op: BinOp, dst: Reg, b: Reg, right: &Expr, span: Span) -> CResult<()> {
        if let Some(k) = self.number_constant(op, right)? {
            let ins = match op {
                BinOp::Add => Instr::AddK { a: dst, b, k },
                BinOp::Sub => Instr::SubK { a: dst, b, k },
                BinOp::Mul => Instr::MulK { a: dst, b, k },
                BinOp::Div => Instr::DivK { a: dst, b, k },
                _ => Instr::ModK { a: dst, b, k },
            };
            self.emit(ins, span);
            return Ok(());
        }
        let mark = self.mark();
        let c = self.expr_any(right)?;
        let ins = match op {
            BinOp::Add => Instr::Add { a: dst, b, c },
            BinOp::Sub => Instr::Sub { a: dst, b, c },
            BinOp::Mul => Instr::Mul { a: dst, b, c },
            BinOp::Div => Instr::Div { a: dst, b, c },
            BinOp::FloorDiv => Instr::FloorDiv { a: dst, b, c },
            BinOp::Mod => Instr::Mod { a: dst, b, c },
            BinOp::Pow => Instr::Pow { a: dst, b, c },
            BinOp::BitAnd => Instr::BitAnd { a: dst, b, c },
            BinOp::BitOr => Instr::BitOr { a: dst, b, c },
            BinOp::BitXor => Instr::BitXor { a: dst, b, c },
            BinOp::Shl => Instr::Shl { a: dst, b, c },
            BinOp::Shr => Instr::Shr { a: dst, b, c },
            BinOp::Eq => Instr::Eq { a: dst, b, c },
            BinOp::Ne => Instr::Ne { a: dst, b, c },
            BinOp::Lt => Instr::Lt { a: dst, b, c },
            BinOp::Le => Instr::Le { a: dst, b, c },
            BinOp::Gt => Instr::Gt { a: dst, b, c },
            BinOp::Ge => Instr::Ge { a: dst, b, c },
        };
        self.emit(ins, span);
        self.release(mark);
        Ok(())
    }

    /// The constant index of `right` when `op` has a constant form and `right` is a literal number.
    fn number_constant(&mut self, op: BinOp, right: &Expr) -> CResult<Option<u16>> {
        if !matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod) {
            return Ok(None);
        }
        self.number_literal(right)
    }

    /// The constant index of `left` when `op` has a constant-left form and `left` is a number.
    fn left_constant(&mut self, op: BinOp, left: &Expr) -> CResult<Option<u16>> {
        if !matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div) {
            return Ok(None);
        }
        self.number_literal(left)
    }

    /// The constant index of `right` when `op` orders and `right` is a literal number.
    fn ordering_constant(&mut self, op: BinOp, right: &Expr) -> CResult<Option<u16>> {
        if !matches!(op, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge) {
            return Ok(None);
        }
        self.number_literal(right)
    }

    fn number_literal(&mut self, e: &Expr) -> CResult<Option<u16>> {
        let (key, value) = match e.kind {
            ExprKind::Int(v) => (ConstKey::Int(v), Value::Int(v)),
            ExprKind::Float(v) => (ConstKey::Float(v.to_bits()), Value::Float(v)),
            _ => return Ok(None),
        };
        Ok(Some(self.constant(key, value, e.span)?))
    }

    fn call(&mut self, callee: &Expr, args: &[Expr], dst: Reg, span: Span) -> CResult<()> {
        if args.len() > u8::MAX as usize - 1 {
            return Err(Diagnostic::new("too many arguments (at most 254)", span));
        }
        let n = args.len() as u8;
        let mark = self.mark();
        let builtin = match &callee.kind {
            ExprKind::Name(name) => self.unshadowed_builtin(name),
            _ => None,
        };
        let top = dst as usize + 1 == mark;
        let base = if top { dst } else { self.alloc(1, span)? };
        if let Some(f) = builtin {
            self.args_from(args, base, span)?;
            self.emit(Instr::CallBuiltin { a: base, n, f }, span);
        } else {
            self.expr_to(callee, base)?;
            self.args_from(args, base + 1, span)?;
            self.emit(Instr::Call { a: base, n }, span);
        }
        if !top {
            self.emit(Instr::Move { a: dst, b: base }, span);
        }
        self.release(mark);
        Ok(())
    }

    /// `obj[i, j, ...]` (`GetIndexN`, `SetIndexN`): the object in any register and the indexes
    /// in consecutive new registers, returned as `(object, first index)`. More indexes than an
    /// array has dimensions can never be right, so they are an error here.
    pub(super) fn index_window(&mut self, obj: &Expr, idx: &[Expr], span: Span) -> CResult<(Reg, Reg)> {
        let most = crate::value::MAX_DIMS;
        if idx.len() > most {
            let msg = format!("too many indexes: an array has at most {most} dimensions, here {}", idx.len());
            return Err(Diagnostic::new(msg, span));
        }
        let b = self.expr_any(obj)?;
        let c = self.alloc(idx.len(), span)?;
        for (k, e) in idx.iter().enumerate() {
            self.expr_to(e, c + k as Reg)?;
        }
        Ok((b, c))
    }

    /// `obj[start:stop:step]`: the object and the three bounds (nil when omitted) in four
    /// consecutive new registers, then `Slice`.
    fn slice(&mut self, obj: &Expr, bounds: &[Option<Box<Expr>>; 3], dst: Reg, span: Span) -> CResult<()> {
        let mark = self.mark();
        let b = self.alloc(4, span)?;
        self.expr_to(obj, b)?;
        for (i, bound) in bounds.iter().enumerate() {
            let r = b + 1 + i as Reg;
            match bound {
                Some(e) => self.expr_to(e, r)?,
                None => {
                    self.emit(Instr::LoadNil { a: r }, span);
                }
            }
        }
        self.emit(Instr::Slice { a: dst, b }, span);
        self.release(mark);
        Ok(())
    }

    /// A call of builtin `f` itself, whatever the program defines under its name.
    fn builtin_call(&mut self, f: Builtin, args: &[Expr], dst: Reg, span: Span) -> CResult<()> {
        let mark = self.mark();
        let top = dst as usize + 1 == mark;
        let base = if top { dst } else { self.alloc(1, span)? };
        self.args_from(args, base, span)?;
        self.emit(Instr::CallBuiltin { a: base, n: args.len() as u8, f }, span);
        if !top {
            self.emit(Instr::Move { a: dst, b: base }, span);
        }
        self.release(mark);
        Ok(())
    }

    /// Evaluates `args` into consecutive registers starting at `first`.
    fn args_from(&mut self, args: &[Expr], first: Reg, span: Span) -> CResult<()> {
        let have = self.mark();
        let need = first as usize + args.len();
        if need > have {
            self.alloc(need - have, span)?;
        }
        for (i, a) in args.iter().enumerate() {
            self.expr_to(a, first + i as u8)?;
        }
        Ok(())
    }

    fn list(&mut self, items: &[Expr], dst: Reg, span: Span) -> CResult<()> {
        let mark = self.mark();
        let first = items.len().min(LIST_CHUNK);
        let base = self.alloc(first.max(1), span)?;
        for (i, item) in items[..first].iter().enumerate() {
            self.expr_to(item, base + i as u8)?;
        }
        self.emit(Instr::NewList { a: dst, b: base, n: first as u8 }, span);
        self.release(mark);
        for item in &items[first..] {
            let t = self.alloc(2, span)?;
            self.emit(Instr::Move { a: t, b: dst }, span);
            self.expr_to(item, t + 1)?;
            self.emit(Instr::CallBuiltin { a: t, n: 2, f: Builtin::Push }, item.span);
            self.release(mark);
        }
        Ok(())
    }

    fn dict(&mut self, pairs: &[(Expr, Expr)], dst: Reg, span: Span) -> CResult<()> {
        let mark = self.mark();
        let first = pairs.len().min(DICT_CHUNK);
        let base = self.alloc((2 * first).max(1), span)?;
        for (i, (k, v)) in pairs[..first].iter().enumerate() {
            self.expr_to(k, base + 2 * i as u8)?;
            self.expr_to(v, base + 2 * i as u8 + 1)?;
        }
        self.emit(Instr::NewDict { a: dst, b: base, n: first as u8 }, span);
        self.release(mark);
        for (k, v) in &pairs[first..] {
            let kr = self.expr_any(k)?;
            let vr = self.expr_any(v)?;
            self.emit(Instr::SetIndex { a: dst, b: kr, c: vr }, k.span.to(v.span));
            self.release(mark);
        }
        Ok(())
    }

    /// Emits a test of `cond` that jumps when it is false; returns the jumps to patch. The
    /// literal `true` needs no test, so the code after `while true { }` is reached only by
    /// `break` (and the JIT does not see a `nil` return that cannot happen).
    pub(super) fn jump_if_false(&mut self, cond: &Expr) -> CResult<Vec<usize>> {
        match &cond.kind {
            ExprKind::Bool(true) => Ok(Vec::new()),
            ExprKind::Binary(op, left, right) if op.is_comparison() => {
                let a = self.expr_any(left)?;
                if let Some(k) = self.ordering_constant(*op, right)? {
                    let ins = match op {
                        BinOp::Lt => Instr::JumpIfNotLtK { a, k, t: 0 },
                        BinOp::Le => Instr::JumpIfNotLeK { a, k, t: 0 },
                        BinOp::Gt => Instr::JumpIfNotGtK { a, k, t: 0 },
                        _ => Instr::JumpIfNotGeK { a, k, t: 0 },
                    };
                    return Ok(vec![self.emit(ins, cond.span)]);
                }
                let b = self.expr_any(right)?;
                let ins = match op {
                    BinOp::Lt => Instr::JumpIfNotLt { a, b, t: 0 },
                    BinOp::Le => Instr::JumpIfNotLe { a, b, t: 0 },
                    BinOp::Gt => Instr::JumpIfNotGt { a, b, t: 0 },
                    BinOp::Ge => Instr::JumpIfNotGe { a, b, t: 0 },
                    BinOp::Eq => Instr::JumpIfNotEq { a, b, t: 0 },
                    _ => Instr::JumpIfNotNe { a, b, t: 0 },
                };
                Ok(vec![self.emit(ins, cond.span)])
            }
            ExprKind::And(left, right) => {
                let mut jumps = self.jump_if_false(left)?;
                jumps.extend(self.jump_if_false(right)?);
                Ok(jumps)
            }
            ExprKind::Or(left, right) => {
                let r = self.expr_any(left)?;
                let to_body = self.emit(Instr::JumpIfTrue { a: r, t: 0 }, left.span);
                let jumps = self.jump_if_false(right)?;
                self.patch_here(vec![to_body]);
                Ok(jumps)
            }
            ExprKind::Unary(UnOp::Not, inner) => {
                let r = self.expr_any(inner)?;
                Ok(vec![self.emit(Instr::JumpIfTrue { a: r, t: 0 }, cond.span)])
            }
            _ => {
                let r = self.expr_any(cond)?;
                Ok(vec![self.emit(Instr::JumpIfFalse { a: r, t: 0 }, cond.span)])
            }
        }
    }
}
