//! Link settings of the `mini` executable for a faster start and a smaller resident set
//! (ARCHITECTURE.md, "Speed"). On Linux with glibc the binary is linked statically and
//! position-dependent: no dynamic loader runs at start (it was a third of the instructions of
//! `mini run` of an empty program: mapping libc, libm and libgcc_s, looking symbols up, and
//! applying the ~12,000 relocations of a PIE), and only the parts of the C library that mini
//! uses are mapped. Only the binary is affected (`rustc-link-arg-bins`); the library, the
//! tests and the benchmarks link as before.
//!
//! `MINI_LINK` chooses: `static` (the default), `dynamic` (position-dependent, dynamically
//! linked, with libgcc's unwinder linked in), or `pie` (the toolchain's defaults). With the
//! `mpi` feature, or when the C compiler has no static C library, `static` falls back to
//! `dynamic`.
//!
//! It also sets `MINI_BUILD_ID`, a hash of everything that makes this build of mini what it is
//! (its sources, Cargo.toml, Cargo.lock, this file, the compiler's version, the target, the
//! profile and the features): the JIT's cache of compiled code (src/jit/cache.rs) keeps the
//! entries of each build apart, so that a changed mini never runs code another build compiled.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The libraries that Rust's standard library links on linux-gnu (`-l` flags), by the name of
/// their static archive, and what to link for each instead of the shared library.
const STATIC_LIBS: &[(&str, &str)] = &[
    ("libgcc_s.a", "libgcc_eh.a"),
    ("libutil.a", "libutil.a"),
    ("librt.a", "librt.a"),
    ("libpthread.a", "libpthread.a"),
    ("libm.a", "libm.a"),
    ("libdl.a", "libdl.a"),
    ("libc.a", "libc.a"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    build_id();
    println!("cargo:rerun-if-env-changed=MINI_LINK");
    println!("cargo:rerun-if-env-changed=CC");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let mode = std::env::var("MINI_LINK").unwrap_or_else(|_| "static".to_string());
    if target_os != "linux" || target_env != "gnu" || mode == "pie" {
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else { return };
    let dir = out.join("link");
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");
    let want_static = mode == "static" && std::env::var_os("CARGO_FEATURE_MPI").is_none();
    // Each `-l` of std finds the archive linked into this directory first: `-L` applies to
    // every `-l` wherever it stands, and this directory comes before the compiler's own.
    if want_static && STATIC_LIBS.iter().all(|(name, from)| link_archive(&dir, name, from)) {
        println!("cargo:rustc-link-arg-bins=-static");
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        if std::fs::create_dir_all(&dir).is_err() || !link_archive(&dir, "libgcc_s.a", "libgcc_eh.a") {
            return;
        }
    }
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    symbol_order();
}

/// Sets `MINI_BUILD_ID` for the crate (see the top of this file): a 64-bit hash, in hex, of the
/// files under src/, Cargo.toml, Cargo.lock and build.rs (by path and content), `rustc -vV`,
/// and the target, profile, optimisation level and enabled features.
fn build_id() {
    use std::hash::{DefaultHasher, Hasher};
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = Vec::new();
    collect_files(&root.join("src"), &mut files);
    for name in ["Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={name}");
        files.push(root.join(name));
    }
    println!("cargo:rerun-if-changed=src");
    files.sort();
    // SipHash with fixed keys: the same in every run of this compiler (whose version is hashed)
    let mut h = DefaultHasher::new();
    for path in &files {
        let name = path.strip_prefix(&root).unwrap_or(path).to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap_or_default();
        for part in [name.as_bytes(), &bytes] {
            h.write_usize(part.len());
            h.write(part);
        }
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    if let Ok(out) = Command::new(rustc).arg("-vV").output() {
        h.write(&out.stdout);
    }
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("CARGO_FEATURE_") || ["TARGET", "PROFILE", "OPT_LEVEL", "DEBUG"].contains(&k.as_str())
        })
        .collect();
    env.sort();
    for part in env.iter().flat_map(|(k, v)| [k, v]) {
        h.write_usize(part.len());
        h.write(part.as_bytes());
    }
    println!("cargo:rustc-env=MINI_BUILD_ID={:016x}", h.finish());
}

/// Appends the files under `dir` (recursively) to `out`.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Passes link/symbol-order.txt to the linker, which places the functions it names first and
/// together (link/symbol_order.py writes it): a run then maps a few hundred KiB of mini's code
/// instead of most of it, since the kernel maps the 64 KiB around each page fault of a file.
/// Only rustc's own linker, rust-lld (the default on x86_64-unknown-linux-gnu), knows the flag;
/// names that no longer exist (after a change of Cargo.lock or the toolchain) are skipped.
fn symbol_order() {
    let order = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = flags.contains("linker") || flags.contains("link-self-contained");
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") || own_linker || !order.is_file() {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Makes `dir/name` stand for the C compiler's archive `from` (found with
/// `cc -print-file-name`); false when the compiler has no such file.
fn link_archive(dir: &Path, name: &str, from: &str) -> bool {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let Ok(out) = Command::new(cc).arg(format!("-print-file-name={from}")).output() else { return false };
    let Ok(text) = String::from_utf8(out.stdout) else { return false };
    let path = PathBuf::from(text.trim());
    // without the file, the compiler prints the bare name back
    if !out.status.success() || !path.is_absolute() || !path.is_file() {
        return false;
    }
    link_or_copy(&path, &dir.join(name))
}

/// Makes `to` a symbolic link to `from`, or a copy of it when links are refused.
fn link_or_copy(from: &Path, to: &Path) -> bool {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return true;
    }
    std::fs::copy(from, to).is_ok()
}
