//! Runtime values and heap objects, with their printing, equality and truthiness.
//!
//! Heap objects are reference counted with non-atomic `Rc`, which makes `Value` `!Send`: values
//! are touched only by the thread holding the GIL (see `gil.rs`). Typed arrays are the exception
//! that native code may touch without the lock: their elements are atomics in a buffer that never
//! moves while the array is reachable. The containers that can form reference cycles (lists,
//! dicts, queues, captured-variable cells, closures with captures, threads) carry a [`Header`]
//! and are registered with the cycle collector when created; freeing them never recurses (see
//! `gc.rs`). Locks and barriers hold no values; their state is in `sync`.

use crate::builtin::Builtin;
use crate::bytecode::Proto;
use crate::gc::{self, Header, Kind, Tracked};
use crate::gil::{Gil, GilCell};
use crate::sync::barrier::BarrierObj;
use crate::sync::lock::LockObj;
use crate::sync::queue::QueueState;
use indexmap::IndexMap;
use std::any::Any;
use std::cell::{OnceCell, Ref, RefMut};
use std::fmt::Write;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A mini value: scalars inline, everything else behind a reference-counted pointer.
///
/// `#[repr(u8)]` fixes the tag's values in declaration order, and the variants that own no
/// reference come first, so that `is_heap` (asked before every register write) is one compare.
#[derive(Clone, Debug, Default)]
#[repr(u8)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Builtin(Builtin),
    /// A global slot that no `let` or `fn` has defined yet (internal).
    Undef,
    // every variant from here on owns a reference (`FIRST_HEAP_TAG`)
    Str(Rc<StrObj>),
    List(Rc<List>),
    Dict(Rc<Dict>),
    Array(Rc<ArrayObj>),
    Func(Rc<Closure>),
    Thread(Rc<ThreadObj>),
    Range(Rc<RangeObj>),
    /// A captured variable's box (internal: never visible to programs).
    Cell(Rc<CellObj>),
    Lock(Rc<LockObj>),
    Queue(Rc<Queue>),
    Barrier(Rc<BarrierObj>),
    /// An imported module (its globals are the program's; it holds their slots).
    Module(Rc<crate::bytecode::Module>),
}

/// The tag of `Value::Str`, the first variant that owns a reference.
const FIRST_HEAP_TAG: u8 = 6;

pub type List = Obj<Vec<Value>>;
pub type Dict = Obj<IndexMap<Key, Value>>;
/// The box of a captured variable, shared by the closures that capture it.
pub type CellObj = Obj<Value>;
/// A queue: its items and waiters (see `sync::queue`).
pub type Queue = Obj<QueueState>;

/// A container object: its contents in a `GilCell` (borrowed with the GIL token) and the cycle
/// collector's header.
///
/// A container is registered with the collector (tracked) once it may reference another
/// container: when it is created holding one, or when its contents are first borrowed mutably
/// (`borrow_mut`, which takes the `Rc` for that reason). A container that holds only numbers,
/// strings and other leaves can be part of no cycle, and short-lived ones such as `[x, y]` then
/// cost the collector nothing. Architecture invariant: an untracked container holds no
/// container (see `may_cycle`); contents change only through `borrow_mut` and
/// `borrow_mut_to_store`.
#[derive(Debug)]
pub struct Obj<T: Contents> {
    /// Dropped by `Obj`'s `Drop`, inside the trashcan's depth count.
    cell: ManuallyDrop<GilCell<T>>,
    gc: Header,
}

/// What a container holds: the values it references.
pub trait Contents: Default + std::fmt::Debug {
    const KIND: Kind;
    /// Whether some value held is a container (so this one must be tracked).
    fn holds_container(&self) -> bool;
    /// Moves the values onto the trash stack, for a drop deferred by `gc::dispose`.
    fn defer(self, trash: &mut Vec<Value>);
}

impl Contents for Vec<Value> {
    const KIND: Kind = Kind::List;
    #[inline]
    fn holds_container(&self) -> bool {
        self.iter().any(Value::may_cycle)
    }
    fn defer(self, trash: &mut Vec<Value>) {
        trash.extend(self.into_iter().filter(Value::is_heap));
    }
}

impl Contents for IndexMap<Key, Value> {
    const KIND: Kind = Kind::Dict;
    #[inline]
    fn holds_container(&self) -> bool {
        self.values().any(Value::may_cycle)
    }
    fn defer(self, trash: &mut Vec<Value>) {
        trash.extend(self.into_values().filter(Value::is_heap));
    }
}

impl Contents for Value {
    const KIND: Kind = Kind::Cell;
    #[inline]
    fn holds_container(&self) -> bool {
        self.may_cycle()
    }
    fn defer(self, trash: &mut Vec<Value>) {
        if self.is_heap() {
            trash.push(self);
        }
    }
}

impl Contents for QueueState {
    const KIND: Kind = Kind::Queue;
    #[inline]
    fn holds_container(&self) -> bool {
        self.items.iter().any(Value::may_cycle)
    }
    fn defer(self, trash: &mut Vec<Value>) {
        trash.extend(self.items.into_iter().filter(Value::is_heap));
    }
}

impl<T: Contents> Obj<T> {
    /// A new container, tracked when it holds a container.
    #[inline(always)]
    pub fn new(contents: T, gil: Gil) -> Rc<Obj<T>> {
        let tracked = contents.holds_container();
        let obj = Rc::new(Obj { cell: ManuallyDrop::new(GilCell::new(contents)), gc: Header::new() });
        if tracked {
            gc::track(&obj, gil);
        }
        obj
    }

    /// Borrows the contents.
    pub fn borrow<'a>(&'a self, gil: Gil<'a>) -> Ref<'a, T> {
        self.cell.borrow(gil)
    }

    /// Borrows the contents mutably, first registering the container with the collector if it
    /// was not (whatever is stored may be a container).
    pub fn borrow_mut<'a>(self: &'a Rc<Self>, gil: Gil<'a>) -> RefMut<'a, T> {
        if !self.gc.is_tracked() {
            gc::track(self, gil);
        }
        self.cell.borrow_mut(gil)
    }

    /// Borrows the contents mutably to store `v` (and nothing else), registering the container
    /// first only if `v` is a container: a list of numbers stays untracked.
    #[inline]
    pub fn borrow_mut_to_store<'a>(self: &'a Rc<Self>, v: &Value, gil: Gil<'a>) -> RefMut<'a, T> {
        if v.may_cycle() && !self.gc.is_tracked() {
            gc::track(self, gil);
        }
        self.cell.borrow_mut(gil)
    }

    /// Borrows unless the contents are borrowed mutably (for the collector, which never waits).
    pub fn try_borrow<'a>(&'a self, gil: Gil<'a>) -> Option<Ref<'a, T>> {
        self.cell.try_borrow(gil)
    }

    /// Moves the contents out, leaving the container empty, unless they are borrowed (for the
    /// collector, which clears garbage this way; emptying never breaks the tracking invariant).
    pub fn try_take(&self, gil: Gil) -> Option<T> {
        self.cell.try_borrow_mut(gil).map(|mut contents| std::mem::take(&mut *contents))
    }
}

impl<T: Contents> Tracked for Obj<T> {
    const KIND: Kind = T::KIND;
    fn header(&self) -> &Header {
        &self.gc
    }
}

impl<T: Contents> Drop for Obj<T> {
    /// Leaves the registry, then frees the contents within the trashcan's depth count, or defers
    /// them to its trash stack when the drops in progress are already too deep.
    #[inline]
    fn drop(&mut self) {
        gc::untrack(&self.gc);
        let depth = gc::enter_drop();
        if depth.is_none() {
            std::mem::take(self.cell.get_mut()).defer(&mut gc::trash());
        }
        // SAFETY: the cell is dropped exactly once, here, and `self` is never used again.
        unsafe { ManuallyDrop::drop(&mut self.cell) };
        if let Some(depth) = depth {
            gc::leave_drop(depth);
        }
    }
}

/// An immutable string with its length in characters. A string that is not all ASCII gets, at
/// its first index `s[i]`, a table of the byte offset of every [`STRIDE`]th character, so that
/// finding a character walks at most `STRIDE - 1` others: `s[i]` costs O(1) for every string.
#[derive(Debug)]
pub struct StrObj {
    pub text: String,
    pub chars: usize,
    /// The byte offset of character `k * STRIDE`, for every k (built on first use).
    offsets: OnceCell<Box<[usize]>>,
}

/// Characters per entry of a string's offset table (8 bytes per 32 characters).
const STRIDE: usize = 32;

impl PartialEq for StrObj {
    fn eq(&self, other: &StrObj) -> bool {
        self.text == other.text
    }
}

impl Eq for StrObj {}

impl std::hash::Hash for StrObj {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state)
    }
}

impl StrObj {
    pub fn is_ascii(&self) -> bool {
        self.chars == self.text.len()
    }

    /// A string of `text`.
    pub fn new(text: &str) -> StrObj {
        StrObj { text: text.into(), chars: text.chars().count(), offsets: OnceCell::new() }
    }

    /// `x + y`: one copy of each, the character count added rather than recounted. The text
    /// keeps room to grow, so that [`StrObj::append`] on the result is amortized.
    pub fn concat(x: &StrObj, y: &StrObj) -> StrObj {
        let mut text = String::with_capacity(x.text.len() + y.text.len());
        text.push_str(&x.text);
        text.push_str(&y.text);
        StrObj { text, chars: x.chars + y.chars, offsets: OnceCell::new() }
    }

    /// Appends `tail` to this string in place. Only for a string nothing else references
    /// (`Rc::get_mut`): `s += t` on a local then costs the length of `t`, amortized, as in
    /// CPython, instead of a copy of `s`.
    pub fn append(&mut self, tail: &StrObj) {
        self.text.push_str(&tail.text);
        self.chars += tail.chars;
        self.offsets = OnceCell::new();
    }

    /// The `i`th character as a string slice, if in range.
    pub fn char_at(&self, i: usize) -> Option<&str> {
        if self.is_ascii() {
            return self.text.get(i..i + 1);
        }
        if i >= self.chars {
            return None;
        }
        let start = self.byte_offset(i)?;
        let c = self.text[start..].chars().next()?;
        Some(&self.text[start..start + c.len_utf8()])
    }

    /// The byte offset where character `i` starts (the text's length for `i == chars`), if
    /// `i <= chars`; constant time, like [`StrObj::char_at`].
    pub fn byte_offset(&self, i: usize) -> Option<usize> {
        if self.is_ascii() || i >= self.chars {
            return (i <= self.chars).then_some(if i == self.chars { self.text.len() } else { i });
        }
        let offsets = self.offsets.get_or_init(|| {
            let every = self.text.char_indices().step_by(STRIDE).map(|(b, _)| b);
            every.collect()
        });
        let from = offsets[i / STRIDE];
        let (start, _) = self.text[from..].char_indices().nth(i % STRIDE)?;
        Some(from + start)
    }
}

/// A function value: a prototype and the cells of the variables it captured. A closure with
/// captures is registered with the cycle collector (it can be part of a cycle through a cell).
#[derive(Debug)]
pub struct Closure {
    pub proto: Rc<Proto>,
    pub upvals: Box<[Rc<CellObj>]>,
    gc: Header,
}

impl Closure {
    /// A closure, registered with the cycle collector when it captures anything.
    pub fn new(proto: Rc<Proto>, upvals: Box<[Rc<CellObj>]>, gil: Gil) -> Rc<Closure> {
        let tracked = !upvals.is_empty();
        let closure = Rc::new(Closure { proto, upvals, gc: Header::new() });
        if tracked {
            gc::track(&closure, gil);
        }
        closure
    }

    /// A closure that captures nothing (the main program, `mini check`'s inference); it can be
    /// part of no cycle and is not registered.
    pub fn plain(proto: Rc<Proto>) -> Closure {
        Closure { proto, upvals: Box::new([]), gc: Header::new() }
    }
}

impl Tracked for Closure {
    const KIND: Kind = Kind::Closure;
    fn header(&self) -> &Header {
        &self.gc
    }
}

impl Drop for Closure {
    fn drop(&mut self) {
        gc::untrack(&self.gc);
    }
}

/// What the values need of a thread's state, which `vm::thread::ThreadState` implements (the
/// outcome and the joiners' condition variable live there, created and read only by
/// `vm::thread`): the cycle collector looks into and clears a finished thread's result. Behind
/// this trait the values depend on nothing above them.
pub trait ThreadState: Any + Send + Sync {
    /// Calls `f` with the thread's result, if it has returned one.
    fn visit_result(&self, gil: Gil, f: &mut dyn FnMut(&Value));
    /// Replaces the thread's result with nil and returns it (for a handle the cycle collector
    /// found unreachable); an error outcome holds no values and is kept.
    fn clear_result(&self, gil: Gil) -> Option<Value>;
}

/// The value a program holds for a thread (one per `spawn`). It references the thread's result
/// once the thread is done, so it is registered with the cycle collector.
pub struct ThreadObj {
    pub state: Arc<dyn ThreadState>,
    gc: Header,
}

impl ThreadObj {
    /// A handle for `state`, registered with the collector.
    pub fn new(state: Arc<dyn ThreadState>, gil: Gil) -> Rc<ThreadObj> {
        let obj = Rc::new(ThreadObj { state, gc: Header::new() });
        gc::track(&obj, gil);
        obj
    }

    /// For the cycle collector: calls `f` with the thread's result, if any.
    pub fn visit(&self, gil: Gil, f: &mut dyn FnMut(&Value)) {
        self.state.visit_result(gil, f);
    }

    /// For the cycle collector, on an unreachable handle: takes the thread's result out.
    pub fn clear(&self, gil: Gil) -> Option<Value> {
        self.state.clear_result(gil)
    }
}

impl Tracked for ThreadObj {
    const KIND: Kind = Kind::Thread;
    fn header(&self) -> &Header {
        &self.gc
    }
}

impl Drop for ThreadObj {
    fn drop(&mut self) {
        gc::untrack(&self.gc);
    }
}

impl std::fmt::Debug for ThreadObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<thread>")
    }
}

/// `range(start, stop, step)` as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeObj {
    pub start: i64,
    pub stop: i64,
    pub step: i64,
}

impl RangeObj {
    /// Whether `i` is one of the range's ints (constant time).
    pub fn contains(&self, i: i64) -> bool {
        let (start, stop, step, i) = (self.start as i128, self.stop as i128, self.step as i128, i as i128);
        let inside = if step > 0 { start <= i && i < stop } else { stop < i && i <= start };
        inside && (i - start) % step == 0
    }

    /// The number of ints, capped at `i64::MAX` (see `exact_len`).
    pub fn len(&self) -> i64 {
        self.exact_len().clamp(0, i64::MAX as i128) as i64
    }

    /// The number of ints, which can exceed `i64::MAX` (`range(-1, 2**63 - 1)` has 2**63).
    pub fn exact_len(&self) -> i128 {
        let (start, stop, step) = (self.start as i128, self.stop as i128, self.step as i128);
        let n = if step > 0 { (stop - start + step - 1) / step } else { (start - stop - step - 1) / -step };
        n.max(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The int at index `i`, which must be below `exact_len`. The true result fits in an i64,
    /// so wrapping arithmetic computes it exactly even where `i * step` alone would overflow.
    pub fn get(&self, i: i64) -> i64 {
        self.start.wrapping_add(i.wrapping_mul(self.step))
    }

    /// The last int of a non-empty range (its length may exceed `i64::MAX`).
    pub fn last(&self) -> i64 {
        (self.start as i128 + (self.exact_len() - 1) * self.step as i128) as i64
    }
}

/// A dict key: the hashable values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Nil,
    Bool(bool),
    Int(i64),
    /// Shares the string value's object; hashed and compared by text.
    Str(Rc<StrObj>),
}

impl Key {
    /// The key for a value, or the value's type name when it cannot be a key.
    pub fn from_value(v: &Value) -> Result<Key, &'static str> {
        Ok(match v {
            Value::Nil => Key::Nil,
            Value::Bool(b) => Key::Bool(*b),
            Value::Int(i) => Key::Int(*i),
            Value::Str(s) => Key::Str(s.clone()),
            other => return Err(other.type_name()),
        })
    }

    pub fn to_value(&self) -> Value {
        match self {
            Key::Nil => Value::Nil,
            Key::Bool(b) => Value::Bool(*b),
            Key::Int(i) => Value::Int(*i),
            Key::Str(s) => Value::Str(s.clone()),
        }
    }
}

/// The element type of a typed array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemKind {
    Float,
    Int,
}

/// A fixed-length typed array. Elements are stored as 64-bit atomics (`f64` as its bits) so that
/// the interpreter and native code on other threads may read and write them concurrently without
/// undefined behaviour; relaxed atomic accesses compile to plain loads and stores.
/// Architecture invariant: the buffer is allocated once and never moves or shrinks.
#[derive(Debug)]
pub struct ArrayObj {
    pub kind: ElemKind,
    pub data: Box<[AtomicU64]>,
    /// The dimensions of an array of several dimensions, row-major (their product is
    /// `data.len()`); empty for a 1-D array, which is all `ArrayObj::new` makes. The slice never
    /// moves while the array lives: native code reads the dimensions through a pointer to it.
    pub dims: Box<[usize]>,
    /// True when `data` is a `MAP_SHARED` mapping (`shared_array`, shared with forked
    /// processes): it is unmapped when the array is dropped, not freed by the allocator.
    pub mapped: bool,
}

impl Drop for ArrayObj {
    fn drop(&mut self) {
        if self.mapped && !self.data.is_empty() {
            let data = std::mem::take(&mut self.data);
            let len = data.len();
            let ptr = Box::into_raw(data);
            // SAFETY: a mapped buffer is a mapping of exactly `len` elements that only this
            // array owns (`map_shared`), never freed otherwise; `len` is not zero (an empty
            // shared array is not mapped).
            unsafe { libc::munmap(ptr.cast(), len * std::mem::size_of::<AtomicU64>()) };
        }
    }
}

/// `n` zeros, from zeroed memory: a large allocation gets pages the system zeroes when first
/// touched, so `array(n, 0.0)` costs nothing per element until used (as `calloc` in C).
fn zeroed(n: usize) -> Option<Box<[AtomicU64]>> {
    let layout = std::alloc::Layout::array::<AtomicU64>(n).ok()?;
    if layout.size() == 0 {
        return Some(Box::new([]));
    }
    // SAFETY: the layout's size is not zero.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<AtomicU64>();
    if ptr.is_null() {
        return None;
    }
    advise_huge_pages(ptr.cast(), layout.size());
    // SAFETY: `ptr` comes from the global allocator with the layout of `[AtomicU64; n]`, which
    // is the layout `Box<[AtomicU64]>` frees with, and all `n` elements are initialized: an
    // all-zero `AtomicU64` is a valid 0 (it has the bit validity of `u64`).
    Some(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n)) })
}

/// The size from which an array's buffer asks for huge pages: numpy's threshold (4 MiB).
const HUGE_PAGE_THRESHOLD: usize = 4 << 20;

/// Asks Linux to back the 2 MiB-aligned interior of a large, not yet touched buffer with
/// transparent huge pages, as numpy does for its arrays: one fault then maps and zeroes 2 MiB
/// instead of 4 KiB, which makes filling a 160 MB array about 3x faster (ARCHITECTURE.md,
/// "Speed"). Only advice: where the system has no huge pages the call fails and nothing changes.
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    if bytes >= HUGE_PAGE_THRESHOLD {
        const HUGE: usize = 2 << 20;
        let start = (ptr as usize).next_multiple_of(HUGE);
        let end = (ptr as usize + bytes) & !(HUGE - 1);
        if end > start {
            // SAFETY: `[start, end)` lies inside the buffer of `bytes` bytes at `ptr`, which the
            // caller just allocated and owns; MADV_HUGEPAGE changes only how the kernel backs
            // those pages, never their contents or whether they are mapped.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, bytes);
}

/// The longest array `array(n, fill)` may create (see lang-spec/limits.md).
pub const MAX_ARRAY_LEN: i64 = 1 << 31;

/// The errors of making an array, defined once for the interpreter and native code.
pub const NEGATIVE_LENGTH: &str = "array length must be non-negative";

/// `cannot allocate array of N elements`.
pub fn cannot_allocate(n: impl std::fmt::Display) -> String {
    format!("cannot allocate array of {n} elements")
}

/// `array dimension K must be non-negative, got N`.
pub fn negative_dimension(k: impl std::fmt::Display, n: i64) -> String {
    format!("array dimension {k} must be non-negative, got {n}")
}

/// `cannot allocate array of shape [d0, d1, ...]`.
pub fn cannot_allocate_shape<D: std::fmt::Display>(dims: &[D]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("cannot allocate array of shape [{}]", parts.join(", "))
}

/// The most dimensions an array may have (see lang-spec/limits.md).
pub const MAX_DIMS: usize = 4;

impl ArrayObj {
    /// Allocates `n` elements holding `bits`, or `None` when the memory cannot be had.
    pub fn new(kind: ElemKind, n: usize, bits: u64) -> Option<ArrayObj> {
        if bits == 0 {
            return Some(ArrayObj { kind, data: zeroed(n)?, dims: Box::new([]), mapped: false });
        }
        let mut v: Vec<AtomicU64> = Vec::new();
        v.try_reserve_exact(n).ok()?;
        advise_huge_pages(v.as_mut_ptr().cast(), n * std::mem::size_of::<AtomicU64>());
        v.resize_with(n, || AtomicU64::new(bits));
        Some(ArrayObj { kind, data: v.into_boxed_slice(), dims: Box::new([]), mapped: false })
    }

    /// An array of the given dimensions (1 to `MAX_DIMS` of them; one for a 1-D array) over
    /// `data`, whose length must be their product: how native code's buffers become arrays too.
    pub fn from_buffer(kind: ElemKind, data: Box<[AtomicU64]>, dims: &[usize]) -> ArrayObj {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        debug_assert!((1..=MAX_DIMS).contains(&dims.len()), "the JIT's types cover ranks up to MAX_DIMS");
        let dims = if dims.len() > 1 { dims.into() } else { Box::new([]) as Box<[usize]> };
        ArrayObj { kind, data, dims, mapped: false }
    }

    /// The buffer of an array made by `new` (not a mapped one), taken out of it to make
    /// another array or to hand it to native code.
    pub fn into_data(mut self) -> Box<[AtomicU64]> {
        debug_assert!(!self.mapped, "a mapped buffer is freed by its own array only");
        std::mem::take(&mut self.data)
    }

    /// The number of dimensions (1 for an array made by `array(n, fill)`).
    #[inline]
    pub fn rank(&self) -> usize {
        self.dims.len().max(1)
    }

    /// The shape: the dimensions, or the one length of a 1-D array.
    pub fn shape(&self) -> Vec<usize> {
        if self.dims.is_empty() { vec![self.data.len()] } else { self.dims.to_vec() }
    }

    /// The number of elements (of all dimensions: `len(a)` is the first dimension).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn get(&self, i: usize) -> Value {
        let bits = self.data[i].load(Ordering::Relaxed);
        match self.kind {
            ElemKind::Float => Value::Float(f64::from_bits(bits)),
            ElemKind::Int => Value::Int(bits as i64),
        }
    }

    /// Stores a value, converting an int into a float array; the error names the bad type.
    pub fn set(&self, i: usize, v: &Value) -> Result<(), String> {
        let bits = match (self.kind, v) {
            (ElemKind::Float, Value::Float(f)) => f.to_bits(),
            (ElemKind::Float, Value::Int(n)) => (*n as f64).to_bits(),
            (ElemKind::Int, Value::Int(n)) => *n as u64,
            (kind, other) => {
                let k = if kind == ElemKind::Float { "float" } else { "int" };
                return Err(format!("cannot store {} in {} array", other.type_name(), k));
            }
        };
        self.data[i].store(bits, Ordering::Relaxed);
        Ok(())
    }
}

impl Value {
    /// Whether the value owns a heap reference (scalars need no clone or drop work).
    #[inline(always)]
    pub fn is_heap(&self) -> bool {
        // SAFETY: `Value` is `#[repr(u8)]`: its first byte is the tag, the variant's index.
        let tag = unsafe { *(self as *const Value).cast::<u8>() };
        debug_assert_eq!(
            tag >= FIRST_HEAP_TAG,
            !matches!(
                self,
                Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Builtin(_) | Value::Undef
            )
        );
        tag >= FIRST_HEAP_TAG
    }

    /// Whether the value references a container that can be part of a reference cycle (one
    /// the collector tracks: a list, dict, queue, cell, closure with captures or thread).
    #[inline]
    pub fn may_cycle(&self) -> bool {
        match self {
            Value::List(_) | Value::Dict(_) | Value::Cell(_) | Value::Thread(_) | Value::Queue(_) => true,
            Value::Func(f) => !f.upvals.is_empty(),
            _ => false,
        }
    }

    /// `clone`, with the numbers copied inline (field by field, which keeps store-to-load
    /// forwarding working after a register was just written).
    #[inline(always)]
    pub fn clone_fast(&self) -> Value {
        match self {
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            other => other.clone(),
        }
    }

    pub fn str(s: &str) -> Value {
        Value::Str(Rc::new(StrObj::new(s)))
    }

    /// A new list (registered with the cycle collector, hence the token).
    #[inline(always)]
    pub fn list(items: Vec<Value>, gil: Gil) -> Value {
        Value::List(List::new(items, gil))
    }

    /// A new dict.
    #[inline(always)]
    pub fn dict(map: IndexMap<Key, Value>, gil: Gil) -> Value {
        Value::Dict(Dict::new(map, gil))
    }

    /// A new captured-variable cell holding `v`.
    #[inline(always)]
    pub fn cell(v: Value, gil: Gil) -> Value {
        Value::Cell(CellObj::new(v, gil))
    }

    /// The name `type()` gives.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil | Value::Undef => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Array(_) => "array",
            Value::Func(_) | Value::Builtin(_) => "function",
            Value::Thread(_) => "thread",
            Value::Range(_) => "range",
            Value::Lock(_) => "lock",
            Value::Queue(_) => "queue",
            Value::Barrier(_) => "barrier",
            Value::Cell(_) => "cell",
            Value::Module(_) => "module",
        }
    }

    /// Truthiness: false, nil, zero, and empty strings and containers are false.
    pub fn truthy(&self, gil: Gil) -> bool {
        match self {
            Value::Nil | Value::Undef => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.text.is_empty(),
            Value::List(l) => !l.borrow(gil).is_empty(),
            Value::Dict(d) => !d.borrow(gil).is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Func(_)
            | Value::Builtin(_)
            | Value::Thread(_)
            | Value::Range(_)
            | Value::Cell(_)
            | Value::Lock(_)
            | Value::Queue(_)
            | Value::Barrier(_)
            | Value::Module(_) => true,
        }
    }

    /// The text `print` and `str` give; containers nested deeper than `MAX_NESTING` are the
    /// error `stack overflow`.
    pub fn to_text(&self, gil: Gil) -> Result<String, &'static str> {
        if let Value::Str(s) = self {
            return Ok(s.text.to_string());
        }
        let mut out = String::new();
        write_value(self, gil, &mut out, &mut Vec::new())?;
        Ok(out)
    }
}

/// How deeply containers may nest for printing and `==` (see lang-spec/limits.md).
pub const MAX_NESTING: usize = 1000;

/// The error for values nested deeper than `MAX_NESTING`.
pub const TOO_DEEP: &str = "stack overflow";

type Written = Result<(), &'static str>;

/// Writes a value as it appears inside a container (strings quoted), guarding against cycles;
/// `seen` holds the containers being written, outermost first.
fn write_value(v: &Value, gil: Gil, out: &mut String, seen: &mut Vec<*const ()>) -> Written {
    if seen.len() > MAX_NESTING {
        return Err(TOO_DEEP);
    }
    match v {
        Value::Nil | Value::Undef => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(*f, out),
        Value::Str(s) => write_quoted(&s.text, out),
        Value::List(l) => {
            let items = l.borrow(gil);
            return write_seq(Rc::as_ptr(l) as *const (), &items, gil, out, seen);
        }
        Value::Dict(d) => return write_dict(d, gil, out, seen),
        Value::Array(a) => {
            out.push_str("array(");
            write_rows(a, &a.shape(), 0, out);
            out.push(')');
        }
        Value::Func(c) => {
            let _ = write!(out, "<fn {}>", c.proto.name);
        }
        Value::Builtin(b) => {
            let _ = write!(out, "<fn {}>", b.name());
        }
        Value::Thread(_) => out.push_str("<thread>"),
        Value::Lock(_) => out.push_str("<lock>"),
        Value::Queue(_) => out.push_str("<queue>"),
        Value::Barrier(_) => out.push_str("<barrier>"),
        Value::Module(m) => {
            let _ = write!(out, "<module {}>", m.name);
        }
        Value::Range(r) if r.step == 1 => {
            let _ = write!(out, "range({}, {})", r.start, r.stop);
        }
        Value::Range(r) => {
            let _ = write!(out, "range({}, {}, {})", r.start, r.stop, r.step);
        }
        Value::Cell(c) => return write_value(&c.borrow(gil), gil, out, seen),
    }
    Ok(())
}

fn write_seq(id: *const (), items: &[Value], gil: Gil, out: &mut String, seen: &mut Vec<*const ()>) -> Written {
    if seen.contains(&id) {
        out.push_str("[...]");
        return Ok(());
    }
    seen.push(id);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_value(item, gil, out, seen)?;
    }
    out.push(']');
    seen.pop();
    Ok(())
}

fn write_dict(d: &Rc<Dict>, gil: Gil, out: &mut String, seen: &mut Vec<*const ()>) -> Written {
    let id = Rc::as_ptr(d) as *const ();
    if seen.contains(&id) {
        out.push_str("{...}");
        return Ok(());
    }
    seen.push(id);
    out.push('{');
    for (i, (k, v)) in d.borrow(gil).iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_value(&k.to_value(), gil, out, seen)?;
        out.push_str(": ");
        write_value(v, gil, out, seen)?;
    }
    out.push('}');
    seen.pop();
    Ok(())
}

/// Writes `s` as a string is written inside a list: quoted, with `"`, `\\`, line breaks, tabs and
/// NULs escaped.
pub fn write_quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a float exactly as Python's `repr` does: the shortest digits that read back to the
/// same double, fixed notation for decimal exponents -4..16, exponent notation otherwise.
pub fn write_float(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str("nan");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
    } else if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
    } else {
        let sci = shortest_digits(x.abs());
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
        if x < 0.0 {
            out.push('-');
        }
        if (-4..16).contains(&exp) {
            write_fixed(&digits, exp, out);
        } else {
            write_exponent(&digits, exp, out);
        }
    }
}

/// The shortest decimal digits that read back as `x`, in `{:e}` form. When two strings of that
/// length are equally close to `x`, Python's `repr` takes the one with the even last digit, and
/// Rust's shortest formatting may take the other; formatting with exactly that many digits
/// rounds the exact value half to even, which is Python's choice.
fn shortest_digits(x: f64) -> String {
    let shortest = format!("{x:e}");
    let count = shortest.split('e').next().map_or(0, |m| m.bytes().filter(u8::is_ascii_digit).count());
    let exact = format!("{:.*e}", count.saturating_sub(1), x);
    if exact.parse::<f64>() == Ok(x) { exact } else { shortest }
}

fn write_fixed(digits: &str, exp: i32, out: &mut String) {
    let point = exp + 1;
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
}

fn write_exponent(digits: &str, exp: i32, out: &mut String) {
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = write!(out, "e{}{:02}", sign, exp.abs());
}

/// `==`: numbers compare numerically, containers elementwise, functions and threads by identity,
/// values of unrelated types are unequal. Nesting deeper than `MAX_NESTING` is an error.
pub fn values_equal(a: &Value, b: &Value, gil: Gil) -> Result<bool, &'static str> {
    equal_at(a, b, gil, 0)
}

fn equal_at(a: &Value, b: &Value, gil: Gil, depth: usize) -> Result<bool, &'static str> {
    use Value::*;
    if depth > MAX_NESTING {
        return Err(TOO_DEEP);
    }
    Ok(match (a, b) {
        (Nil, Nil) => true,
        (Bool(x), Bool(y)) => x == y,
        (Int(x), Int(y)) => x == y,
        (Float(x), Float(y)) => x == y,
        (Int(i), Float(f)) | (Float(f), Int(i)) => crate::num::int_float_cmp(*i, *f) == Some(std::cmp::Ordering::Equal),
        (Str(x), Str(y)) => x.text == y.text,
        (List(x), List(y)) => Rc::ptr_eq(x, y) || seqs_equal(&x.borrow(gil), &y.borrow(gil), gil, depth)?,
        (Dict(x), Dict(y)) => Rc::ptr_eq(x, y) || dicts_equal(x, y, gil, depth)?,
        (Array(x), Array(y)) => Rc::ptr_eq(x, y) || arrays_equal(x, y),
        (Func(x), Func(y)) => Rc::ptr_eq(x, y),
        (Builtin(x), Builtin(y)) => x == y,
        (Thread(x), Thread(y)) => Rc::ptr_eq(x, y),
        (Lock(x), Lock(y)) => Rc::ptr_eq(x, y),
        (Queue(x), Queue(y)) => Rc::ptr_eq(x, y),
        (Barrier(x), Barrier(y)) => Rc::ptr_eq(x, y),
        (Module(x), Module(y)) => Rc::ptr_eq(x, y),
        (Range(x), Range(y)) => {
            let (lx, ly) = (x.len(), y.len());
            lx == ly && (lx == 0 || (x.start == y.start && (lx == 1 || x.step == y.step)))
        }
        _ => false,
    })
}

/// The elements of array `a` from position `first` on, in the nested brackets of `dims` (the
/// dimensions still to write): `[[1.0, 2.0], [3.0, 4.0]]`.
fn write_rows(a: &ArrayObj, dims: &[usize], first: usize, out: &mut String) {
    out.push('[');
    let (n, inner) = (dims[0], &dims[1..]);
    let step: usize = inner.iter().product();
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        if !inner.is_empty() {
            write_rows(a, inner, first + i * step, out);
            continue;
        }
        match a.get(first + i) {
            Value::Float(f) => write_float(f, out),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            _ => {}
        }
    }
    out.push(']');
}

/// Equal shapes and elements equal by `==`.
fn arrays_equal(x: &ArrayObj, y: &ArrayObj) -> bool {
    x.len() == y.len()
        && x.dims == y.dims
        && (0..x.len()).all(|i| match (x.get(i), y.get(i)) {
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Int(i), Value::Float(f)) | (Value::Float(f), Value::Int(i)) => {
                crate::num::int_float_cmp(i, f) == Some(std::cmp::Ordering::Equal)
            }
            _ => false,
        })
}

fn seqs_equal(x: &[Value], y: &[Value], gil: Gil, depth: usize) -> Result<bool, &'static str> {
    if x.len() != y.len() {
        return Ok(false);
    }
    for (a, b) in x.iter().zip(y) {
        if !equal_at(a, b, gil, depth + 1)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn dicts_equal(x: &Dict, y: &Dict, gil: Gil, depth: usize) -> Result<bool, &'static str> {
    let (x, y) = (x.borrow(gil), y.borrow(gil));
    if x.len() != y.len() {
        return Ok(false);
    }
    for (k, v) in x.iter() {
        match y.get(k) {
            Some(w) if equal_at(v, w, gil, depth + 1)? => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(x: f64) -> String {
        let mut s = String::new();
        write_float(x, &mut s);
        s
    }

    #[test]
    fn floats_print_like_python_repr() {
        assert_eq!(repr(3.0), "3.0");
        assert_eq!(repr(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(repr(1e20), "1e+20");
        assert_eq!(repr(1e16), "1e+16");
        assert_eq!(repr(1e15), "1000000000000000.0");
        assert_eq!(repr(1.5e-7), "1.5e-07");
        assert_eq!(repr(0.0001), "0.0001");
        assert_eq!(repr(0.00001), "1e-05");
        assert_eq!(repr(-0.0), "-0.0");
        assert_eq!(repr(f64::NEG_INFINITY), "-inf");
        assert_eq!(repr(123.456), "123.456");
        assert_eq!(repr(1e100), "1e+100");
        assert_eq!(repr(-2.5e-300), "-2.5e-300");
    }

    /// The `VmFlags` of the mapping of this process that holds `addr` (Linux's smaps).
    #[cfg(target_os = "linux")]
    fn vm_flags_at(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().and_then(|r| r.split_once('-'));
            if let Some((lo, hi)) = range
                && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return Some(flags.trim().to_string());
            }
        }
        None
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn large_arrays_ask_for_huge_pages() {
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
            return; // a kernel without transparent huge pages: nothing to ask for
        }
        let n = 2 << 20; // 16 MiB of elements
        for (bits, fill) in [(0, 0.0), (1.5f64.to_bits(), 1.5)] {
            let a = ArrayObj::new(ElemKind::Float, n, bits).expect("allocates");
            let middle = a.data.as_ptr() as usize + n * 4;
            let flags = vm_flags_at(middle).expect("the buffer is mapped");
            assert!(flags.split(' ').any(|f| f == "hg"), "{n} floats filled with {fill}: VmFlags {flags}");
            assert!(a.data.iter().all(|x| f64::from_bits(x.load(Ordering::Relaxed)) == fill));
        }
        let small = ArrayObj::new(ElemKind::Float, 1000, 0).expect("allocates");
        let flags = vm_flags_at(small.data.as_ptr() as usize).expect("the buffer is mapped");
        assert!(!flags.split(' ').any(|f| f == "hg"), "a small array is left alone: VmFlags {flags}");
    }

    #[test]
    fn range_lengths() {
        assert_eq!(RangeObj { start: 0, stop: 10, step: 3 }.len(), 4);
        assert_eq!(RangeObj { start: 10, stop: 0, step: -3 }.len(), 4);
        assert_eq!(RangeObj { start: 5, stop: 0, step: 1 }.len(), 0);
        assert_eq!(RangeObj { start: i64::MIN, stop: i64::MAX, step: 1 }.len(), i64::MAX);
    }
}
