//! Arrays made by compiled code (`array(n, fill)` in a native call): their buffers, allocated and
//! freed without the GIL, and their hand-over to the interpreter when one escapes.
//!
//! Native code sees every array as three words, `(ptr, len, own)` (see lower/alloc.rs):
//!
//! - `own == 0`: no array (a register that holds none);
//! - `own` odd: an array of the interpreter, `Rc::as_ptr(&rc) | 1`, kept alive for the whole
//!   native call by the caller's argument registers or by the specialization's pins; native code
//!   never touches its `Rc` (only [`take_result`] does, under the GIL, after the call);
//! - `own` even and not 0: a [`NativeArray`] header this thread's native code made, with a
//!   plain (non-atomic) reference count: one per native register, argument or result holding it.
//!
//! A header is on its thread's list of live native arrays from its allocation until it is freed
//! (count 0) or handed to the interpreter. When the outermost native call ends, nothing native
//! refers to any header any more: the VM frees what is left on the list ([`free_all`]), which is
//! how an error exit (a status) frees the arrays its frames owned without code on every error
//! path. A large array's buffer is a `Box<[AtomicU64]>` from the start, so it becomes an
//! `ArrayObj` without copying and its data never moves (the Memory invariant of
//! ARCHITECTURE.md); a small one keeps its elements in its header's allocation, which saves an
//! allocation per temporary, and they are copied into a new buffer after the call that returned
//! it (when no native code points at them any more), before any interpreter code sees them.

use crate::value::{ArrayObj, ElemKind, MAX_ARRAY_LEN, MAX_DIMS, Value};
use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An array of at most this many elements keeps them in its header's allocation (one allocation
/// and one free instead of two each: a temporary `array(8, 0.0)` costs about 10 ns less); they
/// are copied into a buffer of their own if the array reaches the interpreter.
const INLINE_MAX: u64 = 16;

/// A native array's header. `#[repr(C)]`: native code reads `count`, `ptr` and `len` at fixed
/// offsets ([`COUNT_OFFSET`], [`PTR_OFFSET`]).
#[repr(C)]
pub struct NativeArray {
    /// The native references to it (registers, arguments, a result on its way out).
    count: u64,
    /// The buffer: `len` elements after the header in its own allocation when `len` is at most
    /// [`INLINE_MAX`], else a leaked `Box<[AtomicU64]>`.
    ptr: *mut AtomicU64,
    len: u64,
    /// 1 for a float array, 0 for an int array.
    float: u64,
    /// This thread's list of live native arrays (circular, through [`LIVE`]'s sentinel).
    prev: *mut NativeArray,
    next: *mut NativeArray,
    /// The number of dimensions of an array of several dimensions (0 for a 1-D array), and its
    /// dimensions (the first `rank`), which [`take_result`] gives the `ArrayObj`.
    rank: u64,
    dims: [u64; MAX_DIMS],
}

/// Where native code finds a header's count and data pointer.
pub const COUNT_OFFSET: i32 = 0;
pub const PTR_OFFSET: i32 = 8;

thread_local! {
    /// The sentinel of this thread's list of live native arrays (its links start null: an
    /// empty list, made circular at the first allocation). A thread-local lives as long as its
    /// thread, and native code runs on a thread only while it lives, so its address is stable
    /// for every header that links to it.
    static LIVE: UnsafeCell<NativeArray> = const {
        UnsafeCell::new(NativeArray {
            count: 0,
            ptr: ptr::null_mut(),
            len: 0,
            float: 0,
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
            rank: 0,
            dims: [0; MAX_DIMS],
        })
    };
}

/// The sentinel of this thread's list, as a raw pointer (the list is only touched through raw
/// pointers, by native code's helpers and by the VM on the same thread).
fn sentinel() -> *mut NativeArray {
    LIVE.with(|s| {
        let s = s.get();
        // SAFETY: `s` is this thread's sentinel, which only this thread reaches; nothing holds
        // a reference to it across this access (every access is through raw pointers).
        unsafe {
            if (*s).next.is_null() {
                (*s).next = s;
                (*s).prev = s;
            }
        }
        s
    })
}

/// `array(n, fill)` in native code: a new header with count 1 holding `n` elements of the bits
/// `bits` (a float's bits when `float` is 1), on this thread's list; null when the memory cannot
/// be had (native code then raises `cannot allocate array of n elements`). Native code has
/// checked `0 <= n <= MAX_ARRAY_LEN`. Runs without the GIL: it touches no interpreter object.
pub extern "C" fn mini_array_new(float: i64, bits: i64, n: i64) -> *mut NativeArray {
    let len = n as u64;
    let (layout, tail) = header_layout(len);
    // SAFETY: the layout holds a `NativeArray`, so its size is not zero.
    let h = unsafe { std::alloc::alloc(layout) }.cast::<NativeArray>();
    if h.is_null() {
        return ptr::null_mut();
    }
    let data = if len <= INLINE_MAX {
        // SAFETY: `tail` is the offset of `len` `AtomicU64`s inside the allocation just made
        // (`header_layout`), which nothing else uses; each is written once, before any read.
        unsafe {
            let data = h.cast::<u8>().add(tail).cast::<AtomicU64>();
            for i in 0..len as usize {
                data.add(i).write(AtomicU64::new(bits as u64));
            }
            data
        }
    } else {
        let kind = if float != 0 { ElemKind::Float } else { ElemKind::Int };
        match ArrayObj::new(kind, len as usize, bits as u64) {
            Some(arr) => Box::into_raw(arr.into_data()).cast::<AtomicU64>(),
            None => {
                // SAFETY: `h` was allocated above with `layout` and holds nothing yet.
                unsafe { std::alloc::dealloc(h.cast(), layout) };
                return ptr::null_mut();
            }
        }
    };
    let head = sentinel();
    // SAFETY: `head` is this thread's sentinel (see `sentinel`), and `(*head).next` is a live
    // header of this thread or the sentinel itself; no reference to either is held. `h` is
    // the allocation made above for a `NativeArray`, written whole before it is linked.
    unsafe {
        let next = (*head).next;
        let (rank, dims) = (0, [0; MAX_DIMS]);
        h.write(NativeArray { count: 1, ptr: data, len, float: float as u64 & 1, prev: head, next, rank, dims });
        (*next).prev = h;
        (*head).next = h;
    }
    h
}

/// The layout of the allocation of a header for an array of `len` elements, and the offset of
/// the elements in it when they are kept there (see [`INLINE_MAX`]).
fn header_layout(len: u64) -> (Layout, usize) {
    let tail = if len <= INLINE_MAX { len as usize } else { 0 };
    let elems = Layout::array::<AtomicU64>(tail).expect("at most INLINE_MAX elements");
    let (layout, offset) = Layout::new::<NativeArray>().extend(elems).expect("a small layout");
    (layout.pad_to_align(), offset)
}

/// `array([d0, ..., dk], fill)` in native code: `ndims` (1 to `MAX_DIMS`) dimensions at `dims`,
/// each of which native code has checked to be non-negative (the interpreter's first error).
/// Returns a new header as `mini_array_new` does (one of several dimensions when `ndims` is
/// more than 1), or, when the array cannot be had (its size overflows, exceeds
/// `MAX_ARRAY_LEN` or the memory is not there), an odd word: the interpreter's message
/// `cannot allocate array of shape [...]` ([`shape_failure`]) with its low bit set, for the
/// status `ARRAY_SHAPE_ALLOC`. Runs without the GIL.
pub extern "C" fn mini_array_new_shaped(float: i64, bits: i64, dims: *const i64, ndims: i64) -> i64 {
    let rank = (ndims as usize).clamp(1, MAX_DIMS);
    let mut shape = [0u64; MAX_DIMS];
    for (k, d) in shape.iter_mut().enumerate().take(rank) {
        // SAFETY: native code passes `ndims` dimensions in a stack slot of its frame, which
        // lives during this call.
        *d = unsafe { *dims.add(k) } as u64;
    }
    let total =
        shape[..rank].iter().try_fold(1u64, |acc, d| acc.checked_mul(*d)).filter(|n| *n <= MAX_ARRAY_LEN as u64);
    let h = match total {
        Some(n) => mini_array_new(float, bits, n as i64),
        None => ptr::null_mut(),
    };
    if h.is_null() {
        return shape_failure(&shape[..rank]) as i64 | 1;
    }
    if rank > 1 {
        // SAFETY: `h` is the header just made, to which only this function refers.
        unsafe {
            (*h).rank = rank as u64;
            (*h).dims = shape;
        }
    }
    h as i64
}

/// The message `cannot allocate array of shape [...]` for these dimensions, as the address of
/// a `String` that lives as long as the program (one per shape: a program that fails with the
/// same shape again and again keeps one). Its low bit is clear (a `String` is 8-aligned).
fn shape_failure(shape: &[u64]) -> *const String {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static MESSAGES: Mutex<Option<HashMap<Vec<u64>, &'static String>>> = Mutex::new(None);
    let mut messages = MESSAGES.lock().unwrap_or_else(|e| e.into_inner());
    let message = messages
        .get_or_insert_with(HashMap::new)
        .entry(shape.to_vec())
        .or_insert_with(|| Box::leak(Box::new(crate::value::cannot_allocate_shape(shape))));
    *message as *const String
}

/// The message of a failed `mini_array_new_shaped`, from the odd word it returned.
///
/// # Safety
/// `word` is a word `mini_array_new_shaped` returned for a failure.
pub unsafe fn shape_message(word: i64) -> String {
    // SAFETY: the caller's promise: `word & !1` is a `String` leaked by `shape_failure`.
    unsafe { (*((word & !1) as *const String)).clone() }
}

/// Frees a native array whose count native code has just dropped to 0.
pub extern "C" fn mini_array_free(h: *mut NativeArray) {
    // SAFETY: native code calls this once for a header of this thread whose last reference it
    // dropped: no register, argument or result refers to it any more.
    unsafe { free(h) }
}

/// `retain` out of line: one more count on `own` when it is a native header (even, not 0).
pub extern "C" fn mini_array_retain(own: u64) {
    if own != 0 && own & 1 == 0 {
        // SAFETY: as in `mini_array_release_all`: a live header of this thread's list.
        unsafe { (*(own as *mut NativeArray)).count += 1 }
    }
}

/// `release` out of line: one count less on `own` when it is a native header, freeing it at 0.
pub extern "C" fn mini_array_release(own: u64) {
    mini_array_release_all(&own, 1);
}

/// Drops one count of each of the `n` own words at `owns` that is a native header (even and not
/// 0), freeing those whose count reaches 0: what a counting function's epilogue does for its
/// registers in one call instead of a test and a branch each.
pub extern "C" fn mini_array_release_all(owns: *const u64, n: u64) {
    for k in 0..n as usize {
        // SAFETY: native code passes a stack array of `n` own words, live during the call.
        let own = unsafe { owns.add(k).read() };
        if own == 0 || own & 1 == 1 {
            continue;
        }
        let h = own as *mut NativeArray;
        // SAFETY: an even, non-zero own word of a native register is a live header of this
        // thread's list on which that register holds one count (the ownership rules in
        // lower/alloc.rs); the count is only touched on this thread.
        unsafe {
            (*h).count -= 1;
            if (*h).count == 0 {
                free(h);
            }
        }
    }
}

/// Unlinks and frees header `h` and its buffer.
///
/// # Safety
/// `h` is a live header of this thread's list to which nothing refers any more.
unsafe fn free(h: *mut NativeArray) {
    // SAFETY: the caller's promise (see `unlink`).
    unsafe {
        if let Some(buffer) = unlink(h) {
            drop(buffer);
        }
    }
}

/// Takes header `h` off its list and frees it; returns its buffer when the buffer is a
/// separate allocation (an array of more than [`INLINE_MAX`] elements), else frees the
/// elements with it.
///
/// # Safety
/// As for [`free`]; for a small array, nothing may read its elements afterwards.
unsafe fn unlink(h: *mut NativeArray) -> Option<Box<[AtomicU64]>> {
    // SAFETY: `h` is on this thread's circular list, so its neighbours are live headers or the
    // sentinel; it was allocated by `mini_array_new` with `header_layout(len)` and is freed
    // once, here; a large array's `ptr` and `len` are those of its leaked `Box<[AtomicU64]>`.
    unsafe {
        let NativeArray { ptr: data, len, prev, next, .. } = h.read();
        (*prev).next = next;
        (*next).prev = prev;
        std::alloc::dealloc(h.cast(), header_layout(len).0);
        (len > INLINE_MAX).then(|| Box::from_raw(ptr::slice_from_raw_parts_mut(data, len as usize)))
    }
}

/// Frees every native array left on this thread's list. The VM calls it when the outermost
/// native call has ended (after an error status, or after taking a returned array with
/// [`take_result`]): native code then refers to no header, so what is left is unreachable.
pub fn free_all() {
    let head = sentinel();
    // SAFETY: `head` is this thread's sentinel; every other node on the list is a header of
    // this thread that no native code refers to any more (no native call is running on it).
    unsafe {
        loop {
            let first = (*head).next;
            if first == head {
                break;
            }
            free(first);
        }
    }
}

/// The own word of an interpreter array passed to native code (see the module comment).
#[inline]
pub fn interpreter_own(arr: &Rc<ArrayObj>) -> u64 {
    Rc::as_ptr(arr) as u64 | 1
}

/// The value of an array a native call returned, as the own word `own`, under the GIL after
/// the call: an interpreter array is that array again; a native one leaves its thread's list
/// and becomes an ordinary `ArrayObj` holding its buffer (without a copy, except for the
/// elements of a small one, which lived in its header).
pub fn take_result(own: u64) -> Value {
    if own & 1 == 1 {
        let p = (own & !1) as *const ArrayObj;
        // SAFETY: an odd own word is `Rc::as_ptr` of an interpreter array that the call's
        // argument slots' values or a specialization's pins keep alive (strong count >= 1)
        // until after this; we hold the GIL, as every `Rc` count change needs.
        return Value::Array(unsafe {
            Rc::increment_strong_count(p);
            Rc::from_raw(p)
        });
    }
    let h = own as *mut NativeArray;
    // SAFETY: an even non-zero own word returned by native code is a live header of this
    // thread's list (the result's reference); the native call has ended, so nothing else
    // refers to it.
    unsafe {
        let kind = if (*h).float == 1 { ElemKind::Float } else { ElemKind::Int };
        let (elems, len) = ((*h).ptr, (*h).len as usize);
        // a small array's elements are copied out of its header before it is freed (the
        // call has ended: no native code points at them any more)
        let small: Option<Box<[AtomicU64]>> = (len as u64 <= INLINE_MAX)
            .then(|| (0..len).map(|i| AtomicU64::new((*elems.add(i)).load(Ordering::Relaxed))).collect());
        let (rank, dims) = ((*h).rank as usize, (*h).dims);
        let data = unlink(h).or(small).unwrap_or_default();
        if rank > 1 {
            let dims: Vec<usize> = dims[..rank].iter().map(|d| *d as usize).collect();
            return Value::Array(Rc::new(ArrayObj::from_buffer(kind, data, &dims)));
        }
        Value::Array(Rc::new(ArrayObj { kind, data, dims: Box::new([]), mapped: false }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many native arrays this thread's list holds.
    fn live() -> usize {
        let head = sentinel();
        let mut n = 0;
        // SAFETY: walks this thread's list, whose nodes are live headers, by raw pointers.
        unsafe {
            let mut p = (*head).next;
            while p != head {
                n += 1;
                p = (*p).next;
            }
        }
        n
    }

    #[test]
    fn small_and_large_arrays_become_interpreter_arrays() {
        let small = mini_array_new(0, 7, 3);
        let large = mini_array_new(1, 1.5f64.to_bits() as i64, 100);
        let empty = mini_array_new(1, 0, 0);
        assert_eq!(live(), 3);
        let arrays: Vec<Rc<ArrayObj>> = [small, large, empty]
            .iter()
            .map(|h| match take_result(*h as u64) {
                Value::Array(a) => a,
                _ => panic!("not an array"),
            })
            .collect();
        assert_eq!((arrays[0].kind, arrays[0].len()), (ElemKind::Int, 3));
        assert!((0..3).all(|i| matches!(arrays[0].get(i), Value::Int(7))));
        assert_eq!((arrays[1].kind, arrays[1].len()), (ElemKind::Float, 100));
        assert!((0..100).all(|i| matches!(arrays[1].get(i), Value::Float(x) if x == 1.5)));
        assert_eq!((arrays[2].kind, arrays[2].len()), (ElemKind::Float, 0));
        assert_eq!(live(), 0);
    }

    #[test]
    fn free_all_empties_the_list_and_free_unlinks_one() {
        let hs: Vec<_> = (0..40).map(|n| mini_array_new(n % 2, n, n)).collect();
        assert_eq!(live(), 40);
        mini_array_free(hs[17]);
        mini_array_free(hs[39]);
        assert_eq!(live(), 38);
        free_all();
        assert_eq!(live(), 0);
        let again = mini_array_new(0, 0, 5);
        assert_eq!(live(), 1);
        mini_array_free(again);
        assert_eq!(live(), 0);
    }

    #[test]
    fn shaped_arrays_keep_their_dimensions_and_fail_with_the_shape() {
        let dims = [2i64, 3, 4];
        let h = mini_array_new_shaped(1, 2.5f64.to_bits() as i64, dims.as_ptr(), 3);
        assert_eq!(h & 1, 0);
        let Value::Array(a) = take_result(h as u64) else { panic!("not an array") };
        assert_eq!((a.kind, &a.dims[..], a.len()), (ElemKind::Float, &[2usize, 3, 4][..], 24));
        let one = mini_array_new_shaped(0, 9, dims.as_ptr(), 1);
        let Value::Array(b) = take_result(one as u64) else { panic!("not an array") };
        assert_eq!((b.kind, b.dims.len(), b.len()), (ElemKind::Int, 0, 2));
        let huge = [1i64 << 40, 1 << 40, 1 << 40];
        let failed = mini_array_new_shaped(0, 0, huge.as_ptr(), 3);
        assert_eq!(failed & 1, 1);
        // SAFETY: `failed` is the odd word of a failure.
        let message = unsafe { shape_message(failed) };
        assert_eq!(message, "cannot allocate array of shape [1099511627776, 1099511627776, 1099511627776]");
        assert_eq!(live(), 0);
    }

    #[test]
    fn an_impossible_size_is_null() {
        assert!(mini_array_new(0, 1, 1 << 61).is_null());
        assert_eq!(live(), 0);
    }
}
