//! `forked(n, f)`: runs `f(rank, n)` in n processes (lang-spec/processes.md). Ranks 1 to n - 1
//! run in child processes made with Linux `fork` (copy-on-write: each child has its own copy of
//! every value), rank 0 in the calling process; each child sends its result, or its error, back
//! through a pipe in the `wire` format, then `_exit`s. The parent reads every pipe without the
//! GIL, reaps every child, and returns the results in rank order or raises the error of the
//! lowest failing rank, prefixed `rank R: `, with the child's stack on top of the caller's.
//!
//! No zombie or orphan: every child is `waitpid`ed on every path (the parent kills the others
//! first when rank 0 fails or a fork fails), and each child asks the kernel for `SIGKILL` when
//! its parent dies (`PR_SET_PDEATHSIG`), checking right after that the parent is still there.
//!
//! Forking happens with the GIL held by the forking thread, which is the only thread the child
//! has: the child holds the GIL it inherited. Forking while other mini threads run is an error
//! (they could hold locks, or the GIL's queue, that would never be released in the child); the
//! idle pool threads of `pmap` and `prange` are allowed: they wait for work in the parent only
//! and hold no lock the child takes. Program output is flushed before forking, so no buffered
//! line is printed twice, and each child flushes its own before it exits.

use super::{Fail, Shared, Vm, thread, wire};
use crate::gil::Gil;
use crate::source::{Diagnostic, Span, TraceFrame};
use crate::value::{ArrayObj, ElemKind, MAX_ARRAY_LEN, Value};
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The most processes a program's `forked` and process `pmap` calls may run at once, nested
/// calls included.
const MAX_PROCESSES: i64 = 256;

/// How many processes a `forked` call made in this process may ask for: `MAX_PROCESSES` in the
/// program's first process, and in a child of a call of n processes, its parent's budget / n (so
/// nested calls never run more than `MAX_PROCESSES` processes in all). A process `pmap` of w
/// workers shares it: at most budget - 1 workers (at least 1), each child's budget / (w + 1)
/// (vm/procpool.rs).
pub(super) static BUDGET: AtomicI64 = AtomicI64::new(MAX_PROCESSES);

/// A child: its process id and the read end of its pipe.
pub(super) struct Child {
    pub(super) pid: libc::pid_t,
    pub(super) fd: libc::c_int,
}

/// `forked(n, f)`: `room` is how many frames each call may use, `on_main` whether the caller is
/// the main thread (which raises `interrupted` on Ctrl-C).
pub fn forked(args: &[Value], room: usize, on_main: bool, shared: &Rc<Shared>, gil: Gil) -> Result<Value, Fail> {
    let (n, f) = arguments(args)?;
    check_alone("forked()", on_main)?;
    super::flush_stdout();
    let mut children = Vec::with_capacity(n as usize - 1);
    for rank in 1..n {
        match fork_one(rank, n, &f, room, on_main, shared, gil) {
            Ok(child) => children.push(child),
            Err(message) => {
                stop_all(&children);
                return Err(message.into());
            }
        }
    }
    let mut vm = Vm::for_calls(gil, shared.clone(), room, on_main);
    let budget = BUDGET.load(Ordering::Relaxed);
    BUDGET.store(budget / n, Ordering::Relaxed);
    let own = vm.call_value(f, vec![Value::Int(0), Value::Int(n)]);
    BUDGET.store(budget, Ordering::Relaxed);
    drop(vm);
    let own = match own {
        Ok(v) => v,
        Err(d) => {
            stop_all(&children);
            // Ctrl-C stops the caller as `interrupted`, whichever rank it stopped
            let d = if on_main && crate::gil::interrupted() && d.message == "interrupted" { d } else { ranked(0, d) };
            return Err(Fail::Call(Box::new(d)));
        }
    };
    let raw = gil.allow_threads(move || collect_all(&children, on_main));
    let Some(raw) = raw else { return Err("interrupted".into()) };
    let mut results = vec![own];
    for (i, (bytes, status)) in raw.into_iter().enumerate() {
        results.push(outcome(i as i64 + 1, &bytes, status, gil)?);
    }
    Ok(Value::list(results, gil))
}

/// `forked` (and a process `pmap`, both named by `what` in the errors) runs on the main thread,
/// with no spawned thread running: the child would lack that thread, and could inherit a lock
/// it held.
pub(super) fn check_alone(what: &str, on_main: bool) -> Result<(), Fail> {
    // in the calls of a pmap of several workers, other items may be running on pool threads,
    // whichever thread runs this one: one message for both cases, so the lowest failing item's
    // error does not depend on which thread ran it
    if !on_main || super::pool::sharing_a_job() {
        return Err(format!("{what} can only be called by the main thread (not in a spawned thread, nor in the calls of a pmap of several workers)").into());
    }
    match thread::running() {
        0 => Ok(()),
        1 => Err(format!("{what} needs the only running thread; another thread is running (join it first)").into()),
        n => {
            Err(format!("{what} needs the only running thread; {n} other threads are running (join them first)").into())
        }
    }
}

/// Checks `forked`'s arguments: a process count from 1 to `MAX_PROCESSES`, and a function.
fn arguments(args: &[Value]) -> Result<(i64, Value), Fail> {
    let [n, f] = args else {
        return Err(format!("forked() expects 2 arguments (n, f), got {}", args.len()).into());
    };
    let Value::Int(n) = *n else {
        return Err(format!("forked() expects an int process count, got {}", n.type_name()).into());
    };
    let most = BUDGET.load(Ordering::Relaxed);
    if !(1..=most).contains(&n) {
        let nested = if most < MAX_PROCESSES { " in this nested call" } else { "" };
        return Err(format!("forked() process count must be from 1 to {most}{nested}, got {n}").into());
    }
    if !matches!(f, Value::Func(_) | Value::Builtin(_)) {
        return Err(format!("forked() expects a function, got {}", f.type_name()).into());
    }
    Ok((n, f.clone()))
}

/// Forks the child of `rank`: in the parent, returns it; in the child, runs `f(rank, n)`, writes
/// its outcome to the pipe and exits (never returns).
fn fork_one(
    rank: i64,
    n: i64,
    f: &Value,
    room: usize,
    on_main: bool,
    shared: &Rc<Shared>,
    gil: Gil,
) -> Result<Child, String> {
    let fds = pipe("forked()")?;
    let pid = match fork_process("forked()") {
        Ok(pid) => pid,
        Err(e) => {
            close(fds[0]);
            close(fds[1]);
            return Err(e);
        }
    };
    if pid == 0 {
        close(fds[0]);
        child_main(rank, n, f, fds[1], room, on_main, shared, gil);
    }
    close(fds[1]);
    Ok(Child { pid, fd: fds[0] })
}

/// A pipe, both ends closed on `exec`: [read end, write end]. `what` names the caller in the
/// error.
pub(super) fn pipe(what: &str) -> Result<[libc::c_int; 2], String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for `pipe2` to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("{what} cannot make a pipe: {}", std::io::Error::last_os_error()));
    }
    Ok(fds)
}

/// Forks this process (`what` names the caller in the error): the child's id in the parent, 0
/// in the child. The child is killed by the system when its parent dies (`PR_SET_PDEATHSIG`;
/// if the parent died before the request, the child leaves at once).
pub(super) fn fork_process(what: &str) -> Result<libc::pid_t, String> {
    // SAFETY: the parent's id, read before forking, for the child to compare.
    let parent = unsafe { libc::getpid() };
    // SAFETY: `fork` in a process whose only other threads are idle pool threads (checked by
    // the caller with `check_alone`: no mini thread runs); the child continues only on this
    // thread, which holds the GIL, and takes no lock another thread could have held (the
    // caller flushed output).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("{what} cannot start a process: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: `prctl` with PR_SET_PDEATHSIG takes a signal number; `getppid` and `_exit`
        // have no preconditions.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
        }
        // the parent's pool threads are not in the child
        super::pool::forget_after_fork();
        crate::jit::parallel::forget_pools_after_fork();
    }
    Ok(pid)
}

/// The child of `rank`: runs the call, sends its outcome to `fd`, flushes output and exits.
#[allow(clippy::too_many_arguments)]
fn child_main(
    rank: i64,
    n: i64,
    f: &Value,
    fd: libc::c_int,
    room: usize,
    on_main: bool,
    shared: &Rc<Shared>,
    gil: Gil,
) -> ! {
    BUDGET.store(BUDGET.load(Ordering::Relaxed) / n, Ordering::Relaxed);
    let mut vm = Vm::for_calls(gil, shared.clone(), room, on_main);
    let outcome = vm.call_value(f.clone(), vec![Value::Int(rank), Value::Int(n)]);
    let mut bytes = Vec::new();
    let sent = match &outcome {
        Ok(v) => {
            bytes.push(0);
            wire::encode(v, gil, &mut bytes)
        }
        Err(_) => Ok(()),
    };
    let failure = match (outcome, sent) {
        (Err(d), _) => Some(d),
        (Ok(_), Err(message)) => Some(Diagnostic::new(format!("its result: {message}"), Span::default())),
        (Ok(_), Ok(())) => None,
    };
    if let Some(d) = failure {
        bytes.clear();
        bytes.push(1);
        // a report is made of strings and ints only: it always encodes
        let _ = wire::encode(&report_value(&d, gil), gil, &mut bytes);
    }
    write_all(fd, &bytes);
    super::flush_stdout();
    // SAFETY: `_exit` ends the child without running the parent's exit handlers or destructors
    // (which belong to the parent's copy of the program).
    unsafe { libc::_exit(0) }
}

/// A report as a value: [message, span start, span end, [[function, start, end]...]].
pub(super) fn report_value(d: &Diagnostic, gil: Gil) -> Value {
    let frame = |t: &TraceFrame| {
        let parts = vec![Value::str(&t.function), Value::Int(t.span.start.into()), Value::Int(t.span.end.into())];
        Value::list(parts, gil)
    };
    let trace = Value::list(d.trace.iter().map(frame).collect(), gil);
    let parts = vec![Value::str(&d.message), Value::Int(d.span.start.into()), Value::Int(d.span.end.into()), trace];
    Value::list(parts, gil)
}

/// The report `report_value` made, back from bytes.
pub(super) fn report_from(v: &Value, gil: Gil) -> Option<Diagnostic> {
    let Value::List(l) = v else { return None };
    let parts = l.borrow(gil);
    let [Value::Str(message), start, end, Value::List(trace)] = &parts[..] else { return None };
    let mut frames = Vec::new();
    for t in trace.borrow(gil).iter() {
        let Value::List(t) = t else { return None };
        let t = t.borrow(gil);
        let [Value::Str(function), start, end] = &t[..] else { return None };
        frames.push(TraceFrame { function: function.text.to_string(), span: span(start, end)? });
    }
    Some(Diagnostic::runtime(message.text.to_string(), span(start, end)?, frames))
}

/// A span from two int values.
fn span(start: &Value, end: &Value) -> Option<Span> {
    match (start, end) {
        (Value::Int(s), Value::Int(e)) => Some(Span { start: u32::try_from(*s).ok()?, end: u32::try_from(*e).ok()? }),
        _ => None,
    }
}

/// A report of rank `rank`'s error, its message prefixed with the rank.
fn ranked(rank: i64, d: Diagnostic) -> Diagnostic {
    Diagnostic { message: format!("rank {rank}: {}", d.message), ..d }
}

/// The result of rank `rank` from the bytes it sent and its exit status.
fn outcome(rank: i64, bytes: &[u8], status: i32, gil: Gil) -> Result<Value, Fail> {
    let died = || Fail::Msg(format!("rank {rank}: the process ended without a result ({})", describe(status)));
    let Some((&tag, rest)) = bytes.split_first() else { return Err(died()) };
    let v = wire::decode(rest, gil).map_err(|m| Fail::Msg(format!("rank {rank}: {m}")))?;
    match tag {
        0 => Ok(v),
        1 => match report_from(&v, gil) {
            Some(d) => Err(Fail::Call(Box::new(ranked(rank, d)))),
            None => Err(died()),
        },
        _ => Err(died()),
    }
}

/// How a process ended, from its `waitpid` status.
pub(super) fn describe(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

/// Every child's bytes and exit status, in rank order; `None` when the main thread's wait is
/// interrupted by Ctrl-C (then every child has been killed and reaped).
fn collect_all(children: &[Child], on_main: bool) -> Option<Vec<(Vec<u8>, i32)>> {
    let mut raw = Vec::with_capacity(children.len());
    for (i, child) in children.iter().enumerate() {
        while on_main && !readable(child.fd) {
            if crate::gil::interrupted() {
                raw.clear();
                stop_all(&children[i..]);
                return None;
            }
        }
        raw.push(collect(child));
    }
    if on_main && crate::gil::interrupted() {
        return None;
    }
    Some(raw)
}

/// Whether `fd` has bytes or its end to read, waiting at most 10 ms (the main thread's wait
/// looks at Ctrl-C in between, well within the watcher's grace even on a loaded machine).
pub(super) fn readable(fd: libc::c_int) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: `p` is one valid `pollfd` for the call.
    unsafe { libc::poll(&mut p, 1, 10) > 0 }
}

/// Reads a child's pipe to its end, then reaps it: its bytes and exit status.
// never inlined: its 64 KiB buffer would otherwise join the frame of whatever it is inlined
// into (`pool::pmap` had a 64 KiB frame, and recursion through pmap overflowed the stack before
// reaching mini's frame limit, tests/pmap/err_recursion_through_pmap.mini)
#[inline(never)]
fn collect(child: &Child) -> (Vec<u8>, i32) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes; `child.fd` is this call's open read end.
        let got = unsafe { libc::read(child.fd, buf.as_mut_ptr().cast(), buf.len()) };
        if got > 0 {
            bytes.extend_from_slice(&buf[..got as usize]);
        } else if got == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    close(child.fd);
    (bytes, reap(child.pid))
}

/// Kills and reaps every child (the call failed in the parent).
pub(super) fn stop_all(children: &[Child]) {
    for c in children {
        // SAFETY: `c.pid` is this process's child, not yet reaped, so the id is still its own.
        unsafe { libc::kill(c.pid, libc::SIGKILL) };
    }
    for c in children {
        close(c.fd);
        reap(c.pid);
    }
}

/// Waits for child `pid` to end: its status.
pub(super) fn reap(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int for `waitpid` to fill; `pid` is an unreaped child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return status;
        }
    }
}

/// Writes all of `bytes` to `fd`, a pipe's write end, giving up quietly when its reader has
/// gone: a child's parent that stopped reading has been killed, and a process pool's parent
/// sees a worker that died by the end of its results pipe.
pub(super) fn write_all(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for its length; `fd` is an open write end of this module's
        // caller.
        let put = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if put > 0 {
            bytes = &bytes[put as usize..];
        } else if put == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Closes a file descriptor this module opened.
pub(super) fn close(fd: libc::c_int) {
    // SAFETY: `fd` is open and owned by this module, closed once.
    unsafe { libc::close(fd) };
}

/// `shared_array(n, fill)` and `shared_array([d0, d1...], fill)`: an array like `array`'s whose
/// buffer is an anonymous `MAP_SHARED` mapping, so that what forked children store in it is
/// seen by every process that has it.
pub fn shared_array(args: &[Value], gil: Gil) -> Result<Value, Fail> {
    let [shape, fill] = args else {
        return Err(format!("expected 2 arguments, got {}", args.len()).into());
    };
    let (kind, bits) = match fill {
        Value::Float(f) => (ElemKind::Float, f.to_bits()),
        Value::Int(i) => (ElemKind::Int, *i as u64),
        other => return Err(format!("array fill must be an int or a float, not {}", other.type_name()).into()),
    };
    let dims = dimensions(shape, gil)?;
    let total = dims.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d as u64)).filter(|n| *n <= MAX_ARRAY_LEN as u64);
    let cannot = || match dims.len() {
        1 => Fail::from(crate::value::cannot_allocate(dims[0] as i64)),
        _ => Fail::from(crate::value::cannot_allocate_shape(&dims)),
    };
    let total = total.ok_or_else(cannot)? as usize;
    let Some(data) = map_shared(total) else { return Err(cannot()) };
    for e in data.iter() {
        e.store(bits, Ordering::Relaxed);
    }
    let mut arr = ArrayObj::from_buffer(kind, data, &dims);
    arr.mapped = total > 0;
    Ok(Value::Array(Rc::new(arr)))
}

/// The dimensions `shared_array` is asked for: an int length, or a list of 1 to `MAX_DIMS`
/// ints, with `array`'s errors.
fn dimensions(shape: &Value, gil: Gil) -> Result<Vec<usize>, Fail> {
    match shape {
        Value::Int(n) if *n < 0 => Err(crate::value::NEGATIVE_LENGTH.to_string().into()),
        Value::Int(n) => Ok(vec![*n as usize]),
        Value::List(l) => super::ndarray::dims(&l.borrow(gil)),
        other => Err(format!("array length must be an int, not {}", other.type_name()).into()),
    }
}

/// A buffer of `n` zeroed elements in an anonymous shared mapping (an empty ordinary buffer
/// for 0), or `None` when the system refuses the memory. Only an array marked `mapped` may
/// own it: that array unmaps it (`ArrayObj`'s `Drop`); the global allocator never frees it.
fn map_shared(n: usize) -> Option<Box<[AtomicU64]>> {
    if n == 0 {
        return Some(Box::new([]));
    }
    let bytes = n.checked_mul(std::mem::size_of::<AtomicU64>())?;
    // SAFETY: an anonymous mapping at an address the kernel chooses touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the mapping is `bytes` long, page-aligned (so aligned for `AtomicU64`), zeroed
    // (a valid 0 for every element) and owned by nothing else; the box is never freed by the
    // global allocator: its array is marked `mapped` and unmaps it instead.
    Some(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr.cast::<AtomicU64>(), n)) })
}
