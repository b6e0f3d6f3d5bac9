//! The `mini` executable: hands the command line to `mini::cli`. On Linux with glibc it starts
//! without Rust's runtime start-up (`#![no_main]`, a C `main`): `mini::cli::start` does what
//! of it mini needs (ARCHITECTURE.md, "Speed"). Its test build (`cargo test` of this file, which
//! has no tests) keeps the test harness's own `main`.
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

/// The process's entry point, called by the C library's start-up code; `std::env::args` still
/// works, since on glibc Rust's standard library captures the arguments before `main` runs.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    mini::cli::start()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(test))))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(mini::cli::main())
}
