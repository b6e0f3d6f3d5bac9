//! Link settings of the `mini` executable for a faster start (notes/arch-startup.md): on Linux
//! with glibc, a position-dependent executable (`-no-pie`: ld.so applies none of the ~12,000
//! relative relocations of a PIE at every start) with libgcc's unwinder linked in statically
//! (one shared library fewer to map and to look symbols up in). Only the binary is affected
//! (`rustc-link-arg-bins`); the library, the tests and the benchmarks link as before.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MINI_PIE");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // MINI_PIE=1 keeps the toolchain's defaults (a PIE, libgcc_s.so), e.g. to compare
    if target_os != "linux" || target_env != "gnu" || std::env::var_os("MINI_PIE").is_some() {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");
    if let Some(dir) = static_libgcc_dir() {
        // `-L` applies to every `-l`, wherever it stands; this directory is searched before
        // the compiler's own, so std's `-lgcc_s` finds the static unwinder first
        println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    }
}

/// A directory holding `libgcc_s.a`, a link to the C compiler's `libgcc_eh.a` (the unwinder
/// that `gcc -static-libgcc` links), or `None` when the compiler has none: then the binary
/// links `libgcc_s.so` as usual.
fn static_libgcc_dir() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(cc).arg("-print-file-name=libgcc_eh.a").output().ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // without the file, the compiler prints the bare name back
    if !out.status.success() || !path.is_absolute() || !path.is_file() {
        return None;
    }
    let dir = PathBuf::from(std::env::var_os("OUT_DIR")?).join("static-libgcc");
    std::fs::create_dir_all(&dir).ok()?;
    let link = dir.join("libgcc_s.a");
    let _ = std::fs::remove_file(&link);
    link_or_copy(&path, &link).then_some(dir)
}

/// Makes `to` a symbolic link to `from`, or a copy of it when links are refused.
fn link_or_copy(from: &Path, to: &Path) -> bool {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return true;
    }
    std::fs::copy(from, to).is_ok()
}
