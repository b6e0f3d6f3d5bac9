//! mini: a small dynamic language with a global interpreter lock, a register bytecode VM, and
//! (with `--jit`) native compilation of hot, type-stable functions. See ARCHITECTURE.md.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod ast;
pub mod bench;
pub mod builtin;
pub mod bytecode;
pub mod cli;
pub mod compiler;
pub mod gc;
pub mod gil;
pub mod interrupt;
pub mod jit;
pub mod lexer;
pub mod modules;
pub mod num;
pub mod parallel;
pub mod parser;
pub mod plot;
pub mod repl;
pub mod source;
pub mod sync;
pub mod value;
pub mod verify;
pub mod vm;
