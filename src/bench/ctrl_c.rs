//! Ctrl-C during `mini bench`: the terminal sends SIGINT to the running `mini run` too, which
//! ends with `interrupted`; `mini bench` itself only notes it (an atomic flag set by its
//! handler), stops after that run, removes its drivers and exits with code 1, instead of
//! dying at once and leaving its temporary files behind.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the SIGINT handler.
static PRESSED: AtomicBool = AtomicBool::new(false);

/// The handler: only an atomic store, which is async-signal-safe.
extern "C" fn on_sigint(_: libc::c_int) {
    PRESSED.store(true, Ordering::Relaxed);
}

/// Installs the handler for the rest of the process (`mini bench` runs no mini code itself).
pub fn watch() {
    let handler = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `on_sigint` is an `extern "C"` function of the signature `signal` expects that
    // only stores to an atomic, which is async-signal-safe; replacing SIGINT's disposition
    // affects nothing else in this process, which runs no interpreter (`mini bench` only
    // starts child processes, which reset the disposition at `exec`).
    unsafe {
        libc::signal(libc::SIGINT, handler);
    }
}

/// Whether Ctrl-C has been pressed since `watch`.
pub fn pressed() -> bool {
    PRESSED.load(Ordering::Relaxed)
}
