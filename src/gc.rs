//! Memory management on top of the reference counts: the cycle collector, and the trashcan that
//! frees deep structures without recursion.
//!
//! Reference counting frees an object when its last reference goes away, which never happens to
//! a reference cycle. The collector finds unreachable cycles the way CPython's does. Every
//! container that may be part of a cycle (a list, dict, queue or captured-variable cell once it
//! may hold a container, a closure with captures, a thread) is registered (tracked) in one registry
//! for all threads (everything here runs under the GIL). A collection looks at a range of the
//! registry: for each object it takes the reference count and subtracts the references held by
//! the other objects of the range; an object left with a positive count is referenced from
//! outside the range (a VM register or stack of any thread, a global, a native call's argument,
//! an older or untracked object, Rust code) and is a root. Everything the roots reach survives;
//! the rest is garbage: its contents are cleared, which breaks the cycles, and reference
//! counting frees it.
//!
//! The registry is a vector, `[old | young]`, and each object's `Header` holds its index. A dying
//! object's entry is replaced by another (`Registry::remove`), so the registry holds exactly the
//! live tracked objects. Generations, after CPython: objects tracked since the last collection
//! are young; the survivors of a collection become old. When the young generation reaches
//! `THRESHOLD` live objects (so a program that frees what it allocates never collects), a
//! collection is requested (a bit of the GIL's attention word) and runs at the next safe point
//! of the thread holding the GIL. It collects the young range, or the whole registry once the
//! objects promoted since the last full collection outnumber the old generation that one left
//! (`full_due`, as Lua's generational mode), so the total work stays linear in the allocations.
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
//! a deeply nested structure and overflow the Rust stack. `enter_drop`/`leave_drop` count the
//! container drops in progress and, beyond `MAX_DROP_DEPTH`, the contents go to a trash stack
//! that the outermost drop empties in a loop, so freeing never nests deeper than that. The collector's own
//! traversal uses explicit work stacks too.

use crate::gil::{self, Gil};
use crate::value::{CellObj, Closure, Dict, List, Queue, ThreadObj, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Live young objects at which a collection is requested.
const THRESHOLD: usize = 2_000;

/// Thread handles registered after which a collection is requested, even with fewer than
/// `THRESHOLD` young objects: a handle keeps its thread's state and result, typically much more
/// than one container's worth, and starting a thread costs far more than a collection.
const THREAD_THRESHOLD: usize = 100;

/// A full collection needs at least this many objects promoted since the last one.
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

/// The kind of a registered object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    List,
    Dict,
    Cell,
    Closure,
    Thread,
    Queue,
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

/// Every registered container, and the bookkeeping of the generations. Architecture
/// invariant: an entry is removed (`untrack`) at the start of its object's `Drop`, before anything
/// else of it is freed, so every entry's object is alive; and each object knows its index.
struct Registry {
    entries: Vec<Entry>,
    /// `entries[..old]` survived a collection; the rest are young.
    old: usize,
    /// The old generation's size after the last full collection.
    old_after_full: usize,
    /// Objects promoted to the old generation since then.
    promoted: usize,
    /// Thread handles registered since the last collection.
    young_threads: usize,
}

/// The collector's state, shared by all threads and used only by the GIL holder.
struct Heap {
    registry: RefCell<Registry>,
    /// How many container drops are in progress on the stack (see `dispose`).
    depth: Cell<usize>,
    /// Values whose drop was deferred because the drops in progress were too deep.
    trash: RefCell<Vec<Value>>,
    /// Whether `trash` may hold values, and whether it is being emptied.
    trashed: Cell<bool>,
    draining: Cell<bool>,
}

// SAFETY: `Heap` holds `!Sync` cells and `!Send` values. It is touched only by code that holds
// the GIL: `track` and `collect` take the token, and `untrack` and the trashcan run only when a
// value is dropped, which happens only under the GIL (values are `!Send` and cross threads only
// inside `GilBound`, whose drop leaks its contents when the GIL is not held). The GIL's
// acquisition and release order these accesses, so no two threads ever use it at once.
unsafe impl Sync for Heap {}

static HEAP: Heap = Heap {
    registry: RefCell::new(Registry { entries: Vec::new(), old: 0, old_after_full: 0, promoted: 0, young_threads: 0 }),
    depth: Cell::new(0),
    trash: RefCell::new(Vec::new()),
    trashed: Cell::new(false),
    draining: Cell::new(false),
};

/// Registers a new container; when the young generation reaches `THRESHOLD` objects, asks for
/// a collection.
#[inline(never)]
pub fn track<T: Tracked>(obj: &Rc<T>, _gil: Gil) {
    let mut r = HEAP.registry.borrow_mut();
    obj.header().0.set(r.entries.len());
    r.entries.push(Entry { kind: T::KIND, ptr: Rc::as_ptr(obj).cast() });
    if T::KIND == Kind::Thread {
        r.young_threads += 1;
    }
    if r.entries.len() - r.old == THRESHOLD || r.young_threads == THREAD_THRESHOLD {
        gil::request_collection();
    }
}

/// Removes a dying container from the registry (the first thing its `Drop` does).
#[inline]
pub fn untrack(header: &Header) {
    if header.is_tracked() {
        HEAP.registry.borrow_mut().remove(header.0.get());
    }
}

/// Drops in progress beyond which a dying container's contents are deferred to the trash.
const MAX_DROP_DEPTH: usize = 64;

/// Enters the drop of a container's contents (called by its `Drop`), as CPython's trashcan
/// does: drops may free further containers, recursively, but at most `MAX_DROP_DEPTH` levels
/// deep. `None` means too deep: the caller moves the contents to the trash stack (`trash`)
/// instead, which the outermost drop empties in a loop. So freeing a structure of any depth uses
/// a bounded stack, and otherwise costs a counter update before and after each container.
#[inline]
pub fn enter_drop() -> Option<usize> {
    let depth = HEAP.depth.get();
    if depth >= MAX_DROP_DEPTH {
        HEAP.trashed.set(true);
        return None;
    }
    HEAP.depth.set(depth + 1);
    Some(depth)
}

/// Leaves the drop that `enter_drop` entered; the outermost one empties the trash.
#[inline]
pub fn leave_drop(depth: usize) {
    HEAP.depth.set(depth);
    if depth == 0 && HEAP.trashed.get() && !HEAP.draining.get() {
        drain_trash();
    }
}

/// The trash stack, for a deferred drop to push onto.
pub fn trash() -> std::cell::RefMut<'static, Vec<Value>> {
    HEAP.trash.borrow_mut()
}

/// Frees the trash stack, one value at a time (each may defer more).
#[cold]
fn drain_trash() {
    HEAP.draining.set(true);
    loop {
        let next = HEAP.trash.borrow_mut().pop();
        match next {
            Some(v) => drop(v),
            None => break,
        }
    }
    HEAP.trashed.set(false);
    HEAP.draining.set(false);
}

/// The header of the registered container a value references, if any.
fn header_of(v: &Value) -> Option<&Header> {
    match v {
        Value::List(l) => Some(l.header()),
        Value::Dict(d) => Some(d.header()),
        Value::Cell(c) => Some(c.header()),
        Value::Func(f) => Some(f.header()),
        Value::Thread(t) => Some(t.header()),
        Value::Queue(q) => Some(q.header()),
        _ => None,
    }
}

impl Entry {
    /// The object's reference count.
    ///
    /// SAFETY (for this and the other `Entry` methods): the entry is in the registry, so its
    /// object is alive (see `Registry`), and `ptr` came from `Rc::as_ptr` of an `Rc` of
    /// `kind`'s type.
    unsafe fn strong(self) -> usize {
        // SAFETY: see above; `ManuallyDrop` leaves the count unchanged.
        unsafe {
            match self.kind {
                Kind::List => count(self.ptr.cast::<List>()),
                Kind::Dict => count(self.ptr.cast::<Dict>()),
                Kind::Cell => count(self.ptr.cast::<CellObj>()),
                Kind::Closure => count(self.ptr.cast::<Closure>()),
                Kind::Thread => count(self.ptr.cast::<ThreadObj>()),
                Kind::Queue => count(self.ptr.cast::<Queue>()),
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
                Kind::Queue => Value::Queue(retain(self.ptr.cast())),
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
                Kind::Queue => (*self.ptr.cast::<Queue>()).header(),
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
                Kind::Queue => match (*self.ptr.cast::<Queue>()).try_borrow(gil) {
                    Some(q) => q.items.iter().for_each(each),
                    None => return false,
                },
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
    drop(garbage);
}

/// Empties a garbage object and drops what it referenced (moved out whole, so clearing
/// allocates nothing).
fn clear(v: &Value, gil: Gil) {
    match v {
        Value::List(l) => drop(l.try_take(gil)),
        Value::Dict(d) => drop(d.try_take(gil)),
        Value::Cell(c) => drop(c.try_take(gil)),
        Value::Thread(t) => drop(t.clear(gil)),
        Value::Queue(q) => drop(q.try_take(gil)),
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

    /// Finds the unreachable objects of the range collected now, orders the registry as
    /// `[old | survivors | garbage]` (the survivors become old; the garbage stays young until it
    /// is freed) and returns new references to the garbage.
    fn find_garbage(&mut self, gil: Gil) -> Vec<Value> {
        let full = self.full_due();
        let start = if full { 0 } else { self.old };
        let range = &self.entries[start..];
        let refs = external_refs(range, start, gil);
        let reached = reach(range, start, &refs, gil);
        let mut survivors = start;
        let mut dead = Vec::new();
        // survivors move down (to an index at most their own), so each entry is read before
        // it could be overwritten
        for (k, &alive) in reached.iter().enumerate() {
            let e = self.entries[start + k];
            if alive {
                self.place(e, survivors);
                survivors += 1;
            } else {
                dead.push(e);
            }
        }
        for (k, &e) in dead.iter().enumerate() {
            self.place(e, survivors + k);
        }
        self.promoted += survivors - start;
        if full {
            self.old_after_full = survivors;
            self.promoted = 0;
        }
        self.old = survivors;
        self.young_threads = 0;
        // SAFETY: the garbage's objects are alive (they are in the registry).
        dead.into_iter().map(|e| unsafe { e.revive() }).collect()
    }

    /// Moves an entry to index `i` and tells its object.
    fn place(&mut self, e: Entry, i: usize) {
        self.entries[i] = e;
        // SAFETY: `e` is in the registry, so its object is alive.
        unsafe { e.header() }.0.set(i);
    }

    /// Removes entry `i` by moving another into its place: the last old entry into an old
    /// hole (keeping the generations contiguous), then the last entry into the remaining hole.
    fn remove(&mut self, i: usize) {
        let mut hole = i;
        if i < self.old {
            self.old -= 1;
            if hole != self.old {
                self.place(self.entries[self.old], hole);
            }
            hole = self.old;
        }
        let last = self.entries.len() - 1;
        if hole != last {
            self.place(self.entries[last], hole);
        }
        self.entries.pop();
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
    // SAFETY: the registry's objects are alive.
    let mut refs: Vec<isize> = range.iter().map(|e| unsafe { e.strong() } as isize).collect();
    for (k, e) in range.iter().enumerate() {
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
    for (k, &r) in refs.iter().enumerate() {
        if r > 0 {
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
        // SAFETY: as above.
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
