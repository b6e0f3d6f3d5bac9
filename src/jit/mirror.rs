//! Mirrors of the *assigned* globals: the globals a program assigns somewhere after defining them
//! (a `SetGlobal` anywhere in its bytecode, or a second top-level `let` of the same name). Compiled
//! code cannot bake such a global in as a constant, since a native call that is already running
//! must see a later assignment by another thread (lang-spec/threads.md, "Memory model"); it reads
//! the global's mirror cell at every read instead. The interpreter writes the cell under the GIL
//! whenever it assigns the global ([`Mirrors::write`]); native code reads it without the GIL, with
//! atomic loads only. Globals never assigned after their definition stay compile-time constants.
//!
//! A cell is two words: the value's bits (an int, a float's bits, a bool, or the identity of an
//! array, function or builtin) and a tag, the value's type with a count of the type changes above
//! it. The writer stores the tag before the bits (release); a reader loads the bits (acquire),
//! then the tag, and uses the bits only when the tag is the one it was compiled for: if the bits
//! came from a write of another type, the tag it then sees is that write's or a later one, and
//! the count in it never repeats, so a stale tag can never vouch for bits of another type.

use crate::bytecode::{Instr, Proto};
use crate::value::{ElemKind, Value};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The type part of a tag (the low byte); the count of type changes is above it.
pub const TYPE_MASK: u64 = 0xff;

/// The types a mirror cell tells apart.
pub mod ty {
    pub const UNDEF: u64 = 0;
    pub const NIL: u64 = 1;
    pub const BOOL: u64 = 2;
    pub const INT: u64 = 3;
    pub const FLOAT: u64 = 4;
    pub const INT_ARRAY: u64 = 5;
    pub const FLOAT_ARRAY: u64 = 6;
    pub const FUNCTION: u64 = 7;
    pub const BUILTIN: u64 = 8;
    pub const OTHER: u64 = 9;
}

/// The name of a tag's type, for the error of a global that changed type under native code.
pub fn type_name(tag: u64) -> &'static str {
    match tag & TYPE_MASK {
        ty::NIL => "nil",
        ty::BOOL => "bool",
        ty::INT => "int",
        ty::FLOAT => "float",
        ty::INT_ARRAY | ty::FLOAT_ARRAY => "array",
        ty::FUNCTION | ty::BUILTIN => "function",
        ty::UNDEF => "undefined",
        _ => "value of another type",
    }
}

/// Whether values of a tag's type are told apart by identity (arrays, functions), so that a
/// different value of the same type is a change compiled code cannot follow.
pub fn by_identity(tag: u64) -> bool {
    matches!(tag & TYPE_MASK, ty::INT_ARRAY | ty::FLOAT_ARRAY | ty::FUNCTION | ty::BUILTIN | ty::OTHER)
}

/// One global's cell, read by native code (its address is stable: cells are allocated once).
#[repr(C)]
pub struct Mirror {
    pub bits: AtomicU64,
    pub tag: AtomicU64,
}

/// The cells of a program's assigned globals.
pub struct Mirrors {
    cells: Box<[Mirror]>,
    assigned: Box<[bool]>,
}

/// A value's type and bits, as a cell holds them.
fn type_and_bits(v: &Value) -> (u64, u64) {
    match v {
        Value::Undef => (ty::UNDEF, 0),
        Value::Nil => (ty::NIL, 0),
        Value::Bool(b) => (ty::BOOL, *b as u64),
        Value::Int(i) => (ty::INT, *i as u64),
        Value::Float(f) => (ty::FLOAT, f.to_bits()),
        Value::Array(a) => {
            let t = if a.kind == ElemKind::Float { ty::FLOAT_ARRAY } else { ty::INT_ARRAY };
            (t, Rc::as_ptr(a) as u64)
        }
        Value::Func(f) => (ty::FUNCTION, Rc::as_ptr(f) as u64),
        Value::Builtin(b) => (ty::BUILTIN, *b as u64),
        _ => (ty::OTHER, 0),
    }
}

impl Mirrors {
    /// The cells of the program whose files' top-level functions are `mains`, with `globals`
    /// global slots.
    pub fn new(mains: &[&Proto], globals: usize) -> Mirrors {
        let mut defs = vec![0u32; globals];
        let mut assigned = vec![false; globals];
        let mut stack = mains.to_vec();
        while let Some(proto) = stack.pop() {
            for ins in &proto.code {
                match *ins {
                    Instr::SetGlobal { g, .. } => assigned[g as usize] = true,
                    Instr::DefGlobal { g, .. } => defs[g as usize] += 1,
                    _ => {}
                }
            }
            stack.extend(proto.protos.iter().map(|p| &**p));
        }
        for (a, d) in assigned.iter_mut().zip(&defs) {
            *a |= *d > 1;
        }
        let cells = (0..globals).map(|_| Mirror { bits: AtomicU64::new(0), tag: AtomicU64::new(ty::UNDEF) }).collect();
        Mirrors { cells, assigned: assigned.into() }
    }

    /// The cells of the interactive prompt's `globals` slots, every one of them assigned: a
    /// later input may define or assign any global again, so no global is ever a constant of
    /// compiled code, and an input that redefines a global another function's native code reads
    /// is seen by that code at its next read (or invalidates it, if the type or identity changed).
    pub fn all_assigned(globals: usize) -> Mirrors {
        let cells = (0..globals).map(|_| Mirror { bits: AtomicU64::new(0), tag: AtomicU64::new(ty::UNDEF) }).collect();
        Mirrors { cells, assigned: vec![true; globals].into() }
    }

    /// Whether global `g` is assigned after its definition (and so read from its cell).
    #[inline]
    pub fn assigned(&self, g: usize) -> bool {
        self.assigned.get(g).copied().unwrap_or(false)
    }

    pub fn cell(&self, g: u16) -> &Mirror {
        &self.cells[g as usize]
    }

    /// Records that assigned global `g` now holds `v` (under the GIL: one writer at a time).
    /// Returns whether code compiled for the old value cannot read the new one: its type
    /// changed, or it is another array or function.
    pub fn write(&self, g: usize, v: &Value) -> bool {
        let cell = &self.cells[g];
        let (t, bits) = type_and_bits(v);
        let old = cell.tag.load(Ordering::Relaxed);
        if old & TYPE_MASK != t {
            let changes = (old >> 8) + 1;
            cell.tag.store(t | (changes << 8), Ordering::Relaxed);
            cell.bits.store(bits, Ordering::Release);
            return true;
        }
        let old_bits = cell.bits.swap(bits, Ordering::Release);
        by_identity(t) && old_bits != bits
    }

    /// The tag that compiled code reading global `g`, inferred to hold `v`, expects. A cell is
    /// written at every assignment, so it already holds the global's value, except a builtin's
    /// slot before any assignment (the builtin is there from the start): such a cell is filled
    /// now. A written cell is never overwritten here: `v` may come from the kept plan of an
    /// earlier, still valid specialization (being inlined), whose number may be out of date,
    /// while its type and identity are the cell's (a change would have invalidated it).
    pub fn expect(&self, g: u16, v: &Value) -> u64 {
        let cell = self.cell(g);
        if cell.tag.load(Ordering::Relaxed) & TYPE_MASK == ty::UNDEF {
            self.write(g as usize, v);
        }
        cell.tag.load(Ordering::Relaxed)
    }

    /// What [`Mirrors::expect`] would return, without filling the cell (the key of compiled
    /// code, prekey.rs, is taken before lowering calls `expect`).
    pub fn expected(&self, g: u16, v: &Value) -> u64 {
        let old = self.cell(g).tag.load(Ordering::Relaxed);
        let t = type_and_bits(v).0;
        if old & TYPE_MASK != ty::UNDEF || t == ty::UNDEF {
            return old;
        }
        // the tag `write` stores for a change of type
        t | (((old >> 8) + 1) << 8)
    }

    /// The bits compiled code expects for `v` (its identity, for arrays and functions).
    pub fn bits_of(v: &Value) -> u64 {
        type_and_bits(v).1
    }
}
