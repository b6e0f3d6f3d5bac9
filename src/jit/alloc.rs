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
//! path. The buffer is a `Box<[AtomicU64]>` from the start, so an escaping array becomes an
//! `ArrayObj` without copying: its data never moves (the Memory invariant of ARCHITECTURE.md).

use crate::value::{ArrayObj, ElemKind, Value};
use std::cell::UnsafeCell;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;

/// A native array's header. `#[repr(C)]`: native code reads `count`, `ptr` and `len` at fixed
/// offsets ([`COUNT_OFFSET`], [`PTR_OFFSET`]).
#[repr(C)]
pub struct NativeArray {
    /// The native references to it (registers, arguments, a result on its way out).
    count: u64,
    /// The buffer: a leaked `Box<[AtomicU64]>` of `len` elements.
    ptr: *mut AtomicU64,
    len: u64,
    /// 1 for a float array, 0 for an int array.
    float: u64,
    /// This thread's list of live native arrays (circular, through [`LIVE`]'s sentinel).
    prev: *mut NativeArray,
    next: *mut NativeArray,
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
    let kind = if float != 0 { ElemKind::Float } else { ElemKind::Int };
    let Some(arr) = ArrayObj::new(kind, n as usize, bits as u64) else { return ptr::null_mut() };
    let data = Box::into_raw(arr.data).cast::<AtomicU64>();
    let head = sentinel();
    // SAFETY: `head` is this thread's sentinel (see `sentinel`), and `(*head).next` is a live
    // header of this thread or the sentinel itself; no reference to either is held.
    let next = unsafe { (*head).next };
    let h = Box::into_raw(Box::new(NativeArray {
        count: 1,
        ptr: data,
        len: n as u64,
        float: float as u64 & 1,
        prev: head,
        next,
    }));
    // SAFETY: as above; linking `h` between the sentinel and its successor.
    unsafe {
        (*next).prev = h;
        (*head).next = h;
    }
    h
}

/// Frees a native array whose count native code has just dropped to 0.
pub extern "C" fn mini_array_free(h: *mut NativeArray) {
    // SAFETY: native code calls this once for a header of this thread whose last reference it
    // dropped: no register, argument or result refers to it any more.
    unsafe { free(h) }
}

/// Unlinks and frees header `h` and its buffer.
///
/// # Safety
/// `h` is a live header of this thread's list to which nothing refers any more.
unsafe fn free(h: *mut NativeArray) {
    // SAFETY: the caller's promise; rebuilding the buffer's box with the length it was made
    // with frees it with its own layout.
    unsafe {
        let data = unlink(h);
        drop(data);
    }
}

/// Takes header `h` off its list and frees it, returning its buffer.
///
/// # Safety
/// As for [`free`].
unsafe fn unlink(h: *mut NativeArray) -> Box<[AtomicU64]> {
    // SAFETY: `h` is on this thread's circular list, so its neighbours are live headers or the
    // sentinel; `h` came from `Box::into_raw` in `mini_array_new` and is freed once, here; its
    // `ptr` and `len` are those of the leaked `Box<[AtomicU64]>`.
    unsafe {
        let header = Box::from_raw(h);
        (*header.prev).next = header.next;
        (*header.next).prev = header.prev;
        Box::from_raw(ptr::slice_from_raw_parts_mut(header.ptr, header.len as usize))
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
/// and becomes an ordinary `ArrayObj` holding its buffer (no copy).
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
        let data = unlink(h);
        Value::Array(Rc::new(ArrayObj { kind, data }))
    }
}
