//! The interpreter's dispatch is copied into every handler (ARCHITECTURE.md, "Speed"): a build
//! property that a harmless-looking edit silently undoes (an empty match arm in `run_loop` makes
//! the dispatch block its own successor, and LLVM then keeps one shared indirect jump), so it is
//! checked on the binary the tests run.

mod common;

use std::process::Command;

/// The number of indirect jumps (`jmp *%reg`) in the `Vm::run_loop` instances of the mini binary,
/// or `None` where it cannot be counted (no `objdump`, another architecture, a debug build).
fn run_loop_indirect_jumps() -> Option<usize> {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) || cfg!(debug_assertions) {
        return None;
    }
    let out = Command::new("objdump").args(["-d", "--no-show-raw-insn"]).arg(common::MINI).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut inside = false;
    let mut jumps = 0;
    for line in text.lines() {
        if line.ends_with(">:") {
            inside = line.contains("2vm2Vm8run_loop");
        } else if inside && line.contains("jmp") && line.contains("*%r") {
            jumps += 1;
        }
    }
    Some(jumps)
}

#[test]
fn every_handler_ends_in_its_own_dispatch() {
    // an explicit RUSTFLAGS replaces .cargo/config.toml's flags, and with them the copies
    if std::env::var_os("RUSTFLAGS").is_some_and(|f| !f.is_empty()) {
        eprintln!("skipped: RUSTFLAGS replaces .cargo/config.toml's tail-duplication flags");
        return;
    }
    let Some(jumps) = run_loop_indirect_jumps() else {
        eprintln!("skipped: no objdump, not x86_64 Linux, or not a release build");
        return;
    };
    // ~320 per instance with the copies (two instances: counting bytecodes or not); 6 without
    assert!(
        jumps >= 200,
        "Vm::run_loop has {jumps} indirect jumps: the dispatch is shared again (an empty match arm? the tail-dup flags?)"
    );
}
