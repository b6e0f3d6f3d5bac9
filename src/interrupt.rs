//! Ctrl-C without a thread of its own: the SIGINT handler raises the interpreter's interrupt flag
//! and writes a byte to a pipe; the process's first thread, idle while the program runs on the
//! thread `main`, reads it and does what cannot be done in a signal handler: it wakes the main
//! thread wherever it waits (for a thread, or for the GIL) so that it raises `interrupted`
//! where it stands, and if the program has not ended [`GRACE`] later (the main thread is in
//! native code, or another thread holds the GIL without reaching a safe point), it ends the
//! process itself. A thread of its own (the `ctrlc` crate) cost about 0.3 ms per run.
//!
//! The end of the process is claimed once ([`claim_end`]), by the program's thread before its
//! final reports, by this watcher, or by a failed write to stdout, so that two of them never
//! both report.

#[cfg(not(unix))]
compile_error!("mini needs a Unix system: Ctrl-C is handled with a POSIX signal handler");

use crate::gil;
use std::cell::Cell;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long after Ctrl-C the program may take to end by itself (the main thread raising
/// `interrupted` at its location) before the watcher ends it: with the process's exit, well
/// within the 200 ms that lang-spec/errors.md promises.
pub const GRACE: Duration = Duration::from_millis(100);

/// Set once a thread has begun to end the process.
static ENDING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread claimed the end of the process.
    static ENDS_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Claims the end of the process for this thread: true when this thread claims it now or had
/// claimed it already, false when another thread has begun to end the process.
pub fn try_claim_end() -> bool {
    if ENDS_HERE.get() {
        return true;
    }
    let won = !ENDING.swap(true, Ordering::SeqCst);
    ENDS_HERE.set(won);
    won
}

/// Claims the end of the process, or, when another thread has begun to end it, waits for that
/// thread to exit the process and never returns. Whoever ends the process needs neither the
/// GIL nor the stdout lock after claiming, so a thread waiting here may hold them.
pub fn claim_end() {
    if !try_claim_end() {
        loop {
            std::thread::park();
        }
    }
}

/// Set by the interactive prompt: Ctrl-C only interrupts the running input, and the watcher
/// never ends the process (an input stuck outside a safe point goes on until it reaches one).
static PROMPT: AtomicBool = AtomicBool::new(false);

/// At the prompt: a Ctrl-C has been pressed and the input it interrupts has not ended yet.
static UNANSWERED: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C interrupt the running input instead of ending the process (the prompt).
pub fn keep_running_on_ctrl_c() {
    PROMPT.store(true, Ordering::SeqCst);
}

/// Tells the watcher that the prompt's input has ended (and forgets its Ctrl-C): the next
/// Ctrl-C interrupts the next input again.
pub fn answered() {
    gil::clear_interrupt();
    UNANSWERED.store(false, Ordering::SeqCst);
}

/// The byte the signal handler writes for each Ctrl-C.
const CTRL_C: u8 = b'c';
/// The byte the program's thread writes when it unwinds (it ends the process itself otherwise).
const UNWOUND: u8 = b'u';

/// The pipe's write end, for the signal handler (-1 until `install`). It is never closed, so
/// the handler can never write to a descriptor that has come to mean something else.
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

/// The pipe's read end, for the thread that waits for the program.
pub struct Watch {
    read: File,
}

/// Installs the SIGINT handler. `None` when the system refuses (Ctrl-C then ends the program
/// the default way).
pub fn install() -> Option<Watch> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe2` writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: `pipe2` succeeded, so both descriptors are open and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write = write.into_raw_fd();
    // A full pipe must not block the signal handler: its write end never blocks.
    // SAFETY: `fcntl` on an open descriptor with integer arguments.
    unsafe {
        let flags = libc::fcntl(write, libc::F_GETFL);
        libc::fcntl(write, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    WRITE_END.store(write, Ordering::SeqCst);
    // SAFETY: a zeroed `sigaction` is a valid empty one, and the handler is an `extern "C"`
    // function that only does async-signal-safe work: an atomic operation, and write(2) to a
    // descriptor that stays open for the life of the process.
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) == 0
    };
    installed.then(|| Watch { read: File::from(read) })
}

extern "C" fn on_sigint(_signal: libc::c_int) {
    gil::interrupt();
    let fd = WRITE_END.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe, and `CTRL_C` is a byte that lives forever. A
        // failed write (a full pipe) only loses a repeated Ctrl-C.
        unsafe { libc::write(fd, (&CTRL_C as *const u8).cast(), 1) };
    }
}

impl Watch {
    /// A writer that tells the waiting thread, when dropped, that the program's thread is
    /// unwinding from a panic (on a normal end that thread exits the process instead).
    pub fn unwind_signal(&self) -> Option<UnwindSignal> {
        // SAFETY: `WRITE_END` was set by `install` (which made `self`) and is never closed.
        let write = unsafe { BorrowedFd::borrow_raw(WRITE_END.load(Ordering::SeqCst)) };
        write.try_clone_to_owned().ok().map(|fd| UnwindSignal(File::from(fd)))
    }

    /// Waits on this thread while the program's thread runs, answering each Ctrl-C
    /// ([`on_ctrl_c`]); returns when that thread has unwound (it ends the process itself when
    /// the program ends), with what `join` gives. The program's thread must hold an
    /// [`UnwindSignal`], or an unwind is never noticed.
    pub fn wait<T>(mut self, program: JoinHandle<T>) -> std::thread::Result<T> {
        let mut byte = [0u8; 1];
        loop {
            match self.read.read(&mut byte) {
                Ok(1) if byte[0] == CTRL_C => on_ctrl_c(),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // `UNWOUND`, or a pipe that failed: only join is left
                _ => break,
            }
        }
        program.join()
    }
}

/// Answers Ctrl-C: wakes the main thread wherever it waits, gives the program [`GRACE`] to end
/// itself, then ends it with `error: interrupted` (exit code 1) unless it is already ending.
fn on_ctrl_c() {
    gil::interrupt_and_hand_over();
    crate::vm::thread::wake_main();
    // At the prompt the first Ctrl-C only interrupts the input; a second one before the input
    // has ended (it runs native code that never reaches a safe point) ends mini at once.
    if PROMPT.load(Ordering::SeqCst) && !UNANSWERED.swap(true, Ordering::SeqCst) {
        return;
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        let prompt_answered = PROMPT.load(Ordering::SeqCst) && !UNANSWERED.load(Ordering::SeqCst);
        if ENDING.load(Ordering::SeqCst) || prompt_answered {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if !try_claim_end() {
        return;
    }
    crate::vm::try_flush_stdout();
    let _ = std::io::stderr().write_all(b"error: interrupted\n");
    std::process::exit(1);
}

/// Held by the program's thread; dropping it (when unwinding) wakes the waiting thread.
pub struct UnwindSignal(File);

impl Drop for UnwindSignal {
    fn drop(&mut self) {
        let _ = self.0.write_all(&[UNWOUND]);
    }
}
