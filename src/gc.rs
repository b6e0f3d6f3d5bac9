//! Memory management on top of the reference counts: the cycle collector, and the trashcan that
//! frees deep structures without recursion.
//!
//! Reference counting frees an object when its last reference goes away, which never happens to
//! a reference cycle. The collector finds unreachable cycles the way CPython's does. Every
//! container that can be part of a cycle (a list, a dict, a captured-variable cell, a closure
//! with captures, a thread) is registered when it is created, in one registry for all threads
//! (everything here runs under the GIL). A collection looks at a range of the registry: for
//! each object it takes the reference count and subtracts the references held by the other
//! objects of the range; an object left with a positive count is referenced from outside the
//! range (a VM register or stack of any thread, a global, a native call's argument, an older
//! object, Rust code) and is a root. Everything the roots reach survives; the rest is garbage:
//! its contents are cleared, which breaks the cycles, and reference counting frees it.
//!
//! Generations, after CPython: the registry is `[old | young]`. Objects created since the last
//! collection are young; the survivors of a collection become old. A collection is requested
//! after `THRESHOLD` registrations (the request is a bit of the GIL's attention word) and runs at
//! the next safe point of the thread holding the GIL: it collects the young range, or the whole
//! registry once the objects promoted since the last full collection outnumber the old generation
//! it left (`full_due`), so the total work stays linear in the allocations.
//!
//! At a safe point no Rust code holds a borrow into any object: the dispatch loop is between
//! instructions, and every borrow the interpreter takes inside an instruction ends with it. The
//! collector still borrows with `try_borrow`: an object it cannot look into is a root whose
//! references it does not subtract, which keeps everything it references alive. Only garbage is
//! written (cleared), and garbage is by definition referenced by no root, so no live borrow,
//! register or raw pointer of the dispatch loop can see it. Mini has no finalizers, so clearing
//! unreachable objects never changes what a program prints.
//!
//! The trashcan: dropping a container drops its contents, which could recurse once per level of
//! a deeply nested structure and overflow the Rust stack. `release` defers each child that
//! would die (a container whose count is 1) to a pending stack while a release is in progress,
//! and the outermost release drains that stack in a loop, so freeing never nests more than a few
//! frames. The collector's own traversal uses explicit work stacks too.

use crate::gil::{self, Gil};
use crate::value::{CellObj, Closure, Dict, List, Value};
use crate::vm::thread::ThreadObj;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Registrations after which a collection is requested.
const THRESHOLD: usize = 2_000;

/// The old generation is collected at the latest when this many objects have been promoted.
const FULL_MIN: usize = 100_000;

/// A container's place in the registry: its index, or `UNTRACKED`.
#[derive(Debug)]
pub struct Header(Cell<usize>);

const UNTRACKED: usize = usize::MAX;

impl Header {
    /// The header of an object not (yet) registered.
    pub const fn new() -> Header {
        Header(Cell::new(UNTRACKED))
    }

    /// Whether the object is registered.
    #[inline]
    pub fn is_tracked(&self) -> bool {
        self.0.get() != UNTRACKED
    }
}

impl Default for Header {
    fn default() -> Header {
        Header::new()
    }
}

/// The kind of a registered object (`Free`: the entry of an object that has been freed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Free,
    List,
    Dict,
    Cell,
    Closure,
    Thread,
}

/// A container the collector can register.
pub trait Tracked {
    const KIND: Kind;
    fn header(&self) -> &Header;
}

/// A registry entry: the object's kind and its address (`Rc::as_ptr`).
#[derive(Clone, Copy)]
struct Entry {
    kind: Kind,
    ptr: *const (),
}

/// Every registered container, and the bookkeeping of the generations.
struct Registry {
    entries: Vec<Entry>,
    /// `entries[..old]` survived a collection.
    old: usize,
    /// Registrations since the last collection.
    allocated: usize,
    /// The old generation's size after the last full collection.
    old_after_full: usize,
    /// Objects promoted to the old generation since then.
    promoted: usize,
}

/// The collector's state, shared by all threads and used only by the GIL holder.
struct Heap {
    registry: RefCell<Registry>,
    /// Values whose drop the outermost `release` will do (the trashcan).
    trash: RefCell<Vec<Value>>,
    /// Whether a `release` is in progress.
    releasing: Cell<bool>,
}

// SAFETY: `Heap` holds `!Sync` cells and `!Send` values. It is touched only by code that holds
// the GIL: `track` and `collect` take the token, and `untrack` and `release` run only when a
// value is dropped, which happens only under the GIL (values are `!Send` and cross threads only
// inside `GilBound`, whose drop leaks its contents when the GIL is not held). The GIL's
// acquisition and release order these accesses, so no two threads ever use it at once.
unsafe impl Sync for Heap {}

static HEAP: Heap = Heap {
    registry: RefCell::new(Registry { entries: Vec::new(), old: 0, allocated: 0, old_after_full: 0, promoted: 0 }),
    trash: RefCell::new(Vec::new()),
    releasing: Cell::new(false),
};

/// Registers a new container; after `THRESHOLD` registrations, asks for a collection.
pub fn track<T: Tracked>(obj: &Rc<T>, _gil: Gil) {
    let mut r = HEAP.registry.borrow_mut();
    obj.header().0.set(r.entries.len());
    r.entries.push(Entry { kind: T::KIND, ptr: Rc::as_ptr(obj).cast() });
    r.allocated += 1;
    if r.allocated == THRESHOLD {
        gil::request_collection();
    }
}

/// Removes a dying container from the registry (called by its `Drop`). The newest entry is
/// popped, so short-lived temporaries do not grow the registry; others become `Free`.
#[inline]
pub fn untrack(header: &Header) {
    if header.is_tracked() {
        remove(header.0.get());
    }
}

/// Removes entry `i` (see `untrack`).
fn remove(i: usize) {
    let mut r = HEAP.registry.borrow_mut();
    if i + 1 == r.entries.len() {
        r.entries.pop();
        r.allocated = r.allocated.saturating_sub(1);
        r.old = r.old.min(i);
    } else {
        r.entries[i].kind = Kind::Free;
    }
}

/// Drops values without recursing into the structures they own: inside a release, a child
/// that would die is pushed on the trash stack; the outermost release frees the stack in a loop.
pub fn release<I: IntoIterator<Item = Value>>(items: I) {
    if HEAP.releasing.get() {
        for v in items {
            if would_die(&v) {
                HEAP.trash.borrow_mut().push(v);
            }
        }
        return;
    }
    HEAP.releasing.set(true);
    for v in items {
        if would_die(&v) {
            drop(v);
            drain_trash();
        }
    }
    HEAP.releasing.set(false);
}

/// Frees the trash stack, each value's own children being deferred onto it in turn.
fn drain_trash() {
    loop {
        let next = HEAP.trash.borrow_mut().pop();
        match next {
            Some(v) => drop(v),
            None => break,
        }
    }
}

/// Whether dropping `v` frees a container, whose drop would release further values.
#[inline]
pub fn would_die(v: &Value) -> bool {
    match v {
        Value::List(l) => Rc::strong_count(l) == 1,
        Value::Dict(d) => Rc::strong_count(d) == 1,
        Value::Cell(c) => Rc::strong_count(c) == 1,
        Value::Func(f) => Rc::strong_count(f) == 1 && !f.upvals.is_empty(),
        Value::Thread(t) => Rc::strong_count(t) == 1,
        _ => false,
    }
}

/// The header of the registered container a value references, if any.
fn header_of(v: &Value) -> Option<&Header> {
    match v {
        Value::List(l) => Some(l.header()),
        Value::Dict(d) => Some(d.header()),
        Value::Cell(c) => Some(c.header()),
        Value::Func(f) => Some(f.header()),
        Value::Thread(t) => Some(t.header()),
        _ => None,
    }
}

impl Entry {
    /// The object's reference count.
    ///
    /// SAFETY (for this and the other `Entry` methods): the entry is not `Free`, so its object
    /// is alive: `untrack`, run by the object's `Drop` before its memory is freed, marks the
    /// entry `Free` or removes it; and `ptr` came from `Rc::as_ptr` of an `Rc` of `kind`'s type.
    unsafe fn strong(self) -> usize {
        // SAFETY: see above; `ManuallyDrop` leaves the count unchanged.
        unsafe {
            match self.kind {
                Kind::List => count(self.ptr.cast::<List>()),
                Kind::Dict => count(self.ptr.cast::<Dict>()),
                Kind::Cell => count(self.ptr.cast::<CellObj>()),
                Kind::Closure => count(self.ptr.cast::<Closure>()),
                Kind::Thread => count(self.ptr.cast::<ThreadObj>()),
                Kind::Free => 0,
            }
        }
    }

    /// A new reference to the object, as a value.
    unsafe fn revive(self) -> Value {
        // SAFETY: see `strong`: the object is alive, so taking one more count is sound.
        unsafe {
            match self.kind {
                Kind::List => Value::List(retain(self.ptr.cast())),
                Kind::Dict => Value::Dict(retain(self.ptr.cast())),
                Kind::Cell => Value::Cell(retain(self.ptr.cast())),
                Kind::Closure => Value::Func(retain(self.ptr.cast())),
                Kind::Thread => Value::Thread(retain(self.ptr.cast())),
                Kind::Free => Value::Nil,
            }
        }
    }

    /// The object's header.
    unsafe fn header<'a>(self) -> &'a Header {
        // SAFETY: see `strong`; the reference is used only while the object is alive.
        unsafe {
            match self.kind {
                Kind::List => (*self.ptr.cast::<List>()).header(),
                Kind::Dict => (*self.ptr.cast::<Dict>()).header(),
                Kind::Cell => (*self.ptr.cast::<CellObj>()).header(),
                Kind::Closure => (*self.ptr.cast::<Closure>()).header(),
                Kind::Thread => (*self.ptr.cast::<ThreadObj>()).header(),
                Kind::Free => unreachable!("a free entry has no object"),
            }
        }
    }

    /// Calls `f` with the header of every registered object this one references (once per
    /// reference). Returns false when the object is borrowed mutably and cannot be looked into.
    unsafe fn visit(self, gil: Gil, f: &mut dyn FnMut(&Header)) -> bool {
        let mut each = |v: &Value| {
            if let Some(h) = header_of(v) {
                f(h)
            }
        };
        // SAFETY: see `strong`.
        unsafe {
            match self.kind {
                Kind::List => match (*self.ptr.cast::<List>()).try_borrow(gil) {
                    Some(items) => items.iter().for_each(each),
                    None => return false,
                },
                Kind::Dict => match (*self.ptr.cast::<Dict>()).try_borrow(gil) {
                    Some(map) => map.values().for_each(each),
                    None => return false,
                },
                Kind::Cell => match (*self.ptr.cast::<CellObj>()).try_borrow(gil) {
                    Some(v) => each(&v),
                    None => return false,
                },
                Kind::Closure => (*self.ptr.cast::<Closure>()).upvals.iter().for_each(|c| f(c.header())),
                Kind::Thread => (*self.ptr.cast::<ThreadObj>()).visit(gil, &mut each),
                Kind::Free => {}
            }
        }
        true
    }
}

/// The strong count of the `Rc` whose value `ptr` points at.
///
/// SAFETY: `ptr` comes from `Rc::as_ptr` and the object is alive.
unsafe fn count<T>(ptr: *const T) -> usize {
    // SAFETY: as the function's contract says; `ManuallyDrop` keeps the count unchanged.
    let rc = std::mem::ManuallyDrop::new(unsafe { Rc::from_raw(ptr) });
    Rc::strong_count(&rc)
}

/// A new `Rc` to the object `ptr` points at.
///
/// SAFETY: `ptr` comes from `Rc::as_ptr` and the object is alive.
unsafe fn retain<T>(ptr: *const T) -> Rc<T> {
    // SAFETY: as the function's contract says; the count is raised before the `Rc` is made.
    unsafe {
        Rc::increment_strong_count(ptr);
        Rc::from_raw(ptr)
    }
}

/// Runs a collection if one was requested; called by the VM at safe points.
pub fn collect_requested(gil: Gil) {
    if gil.take_collection_request() {
        collect(gil);
    }
}

/// Collects: finds the garbage among the young objects (or all of them, when a full collection
/// is due) under the registry's borrow, then clears it with the registry released (clearing
/// drops values, whose `Drop` updates the registry). The garbage stays alive, held by `garbage`,
/// until every garbage object has been cleared, so clearing one never frees another.
pub fn collect(gil: Gil) {
    let garbage = HEAP.registry.borrow_mut().find_garbage(gil);
    for v in &garbage {
        clear(v, gil);
    }
    release(garbage);
}

/// Empties a garbage object and releases what it referenced (the contents are moved out whole,
/// so clearing allocates nothing).
fn clear(v: &Value, gil: Gil) {
    match v {
        Value::List(l) => release(l.try_take(gil).unwrap_or_default()),
        Value::Dict(d) => release(d.try_take(gil).unwrap_or_default().into_values()),
        Value::Cell(c) => release(c.try_take(gil)),
        Value::Thread(t) => release(t.clear(gil)),
        // a closure's captures are immutable; clearing its cells breaks its cycles
        _ => {}
    }
}

impl Registry {
    /// Whether the old generation has doubled since the last full collection (as Lua's
    /// generational mode does), which keeps the total work of full collections within twice the
    /// number of objects ever promoted.
    fn full_due(&self) -> bool {
        self.promoted >= self.old_after_full.max(FULL_MIN)
    }

    /// Finds the unreachable objects of the range collected now, compacts the registry (the
    /// survivors become old; the garbage stays young until it is freed) and returns new
    /// references to the garbage.
    fn find_garbage(&mut self, gil: Gil) -> Vec<Value> {
        let full = self.full_due();
        let start = if full { 0 } else { self.old.min(self.entries.len()) };
        let range = &self.entries[start..];
        let refs = external_refs(range, start, gil);
        let reached = reach(range, start, &refs, gil);
        let mut survivors = start;
        let mut dead = Vec::new();
        // survivors move down (to an index at most their own), so each entry is read before
        // it could be overwritten
        for (k, &alive) in reached.iter().enumerate() {
            let e = self.entries[start + k];
            if e.kind == Kind::Free {
                continue;
            }
            if alive {
                self.place(e, survivors);
                survivors += 1;
            } else {
                dead.push(e);
            }
        }
        let mut end = survivors;
        for &e in &dead {
            self.place(e, end);
            end += 1;
        }
        self.entries.truncate(end);
        self.promoted += survivors - start;
        if full {
            self.old_after_full = survivors;
            self.promoted = 0;
        }
        self.old = survivors;
        self.allocated = 0;
        // SAFETY: the garbage entries are not free; their objects are alive.
        dead.into_iter().map(|e| unsafe { e.revive() }).collect()
    }

    /// Moves an entry to index `i` and tells its object.
    fn place(&mut self, e: Entry, i: usize) {
        self.entries[i] = e;
        // SAFETY: `e` is not free.
        unsafe { e.header() }.0.set(i);
    }
}

/// The index within `range` (which starts at registry index `start`) of a header in it.
fn slot(h: &Header, start: usize, len: usize) -> Option<usize> {
    let k = h.0.get().wrapping_sub(start);
    (k < len).then_some(k)
}

/// For each object of the range, its reference count minus the references other objects of the
/// range hold (an object that cannot be looked into counts as referenced from outside).
fn external_refs(range: &[Entry], start: usize, gil: Gil) -> Vec<isize> {
    let n = range.len();
    // SAFETY: entries that are not free have live objects.
    let mut refs: Vec<isize> = range.iter().map(|e| unsafe { e.strong() } as isize).collect();
    for (k, e) in range.iter().enumerate() {
        if e.kind == Kind::Free {
            continue;
        }
        let mut subtract = |h: &Header| {
            if let Some(j) = slot(h, start, n) {
                refs[j] -= 1;
            }
        };
        // SAFETY: as above.
        if !unsafe { e.visit(gil, &mut subtract) } {
            refs[k] = isize::MAX / 2;
        }
    }
    refs
}

/// Which objects of the range the roots (objects with external references) reach, found with an
/// explicit stack.
fn reach(range: &[Entry], start: usize, refs: &[isize], gil: Gil) -> Vec<bool> {
    let n = range.len();
    let mut reached = vec![false; n];
    let mut stack = Vec::new();
    for (k, e) in range.iter().enumerate() {
        if e.kind != Kind::Free && refs[k] > 0 {
            reached[k] = true;
            stack.push(k);
        }
    }
    while let Some(k) = stack.pop() {
        let mut mark = |h: &Header| {
            if let Some(j) = slot(h, start, n)
                && !reached[j]
            {
                reached[j] = true;
                stack.push(j);
            }
        };
        // SAFETY: only live entries are pushed.
        unsafe { range[k].visit(gil, &mut mark) };
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gil::with_gil;
    use crate::value::Key;

    #[test]
    fn an_unreachable_cycle_is_freed_and_a_reachable_one_is_kept() {
        with_gil(|gil| {
            let (a, b) = (List::new(vec![Value::Int(1)], gil), List::new(vec![Value::Int(2)], gil));
            a.borrow_mut(gil).push(Value::List(b.clone()));
            b.borrow_mut(gil).push(Value::List(a.clone()));
            let (weak_a, weak_b) = (Rc::downgrade(&a), Rc::downgrade(&b));
            let d = Dict::new(Default::default(), gil);
            d.borrow_mut(gil).insert(Key::Int(0), Value::Dict(d.clone()));
            let kept = Value::Dict(d.clone());
            drop((a, b, d));
            collect(gil);
            assert!(weak_a.upgrade().is_none() && weak_b.upgrade().is_none());
            let Value::Dict(d) = &kept else { unreachable!() };
            assert!(matches!(d.borrow(gil).get(&Key::Int(0)), Some(Value::Dict(e)) if Rc::ptr_eq(d, e)));
        });
    }

    #[test]
    fn a_closure_that_captures_itself_is_freed() {
        with_gil(|gil| {
            let proto = crate::compiler::compile(&[]).expect("an empty program compiles").main;
            let cell = CellObj::new(Value::Undef, gil);
            let f = Closure::new(proto, Box::new([cell.clone()]), gil);
            *cell.borrow_mut(gil) = Value::Func(f.clone());
            let weak = Rc::downgrade(&f);
            drop((cell, f));
            collect(gil);
            assert!(weak.upgrade().is_none());
        });
    }

    #[test]
    fn freeing_a_deep_list_does_not_recurse() {
        // the test thread's stack is small: a recursive drop of a million levels overflows it
        with_gil(|gil| {
            let mut l = Value::list(Vec::new(), gil);
            for _ in 0..1_000_000 {
                l = Value::list(vec![l], gil);
            }
            drop(l);
        });
    }
}
