//! Keys of compiled code taken before lowering: a warm run skips lowering (the larger part of
//! a cached compile) by finding a plan's code under a key of everything lowering reads, and
//! rebuilds the few things lowering leaves behind (the error-site table, the addresses the code
//! names) from their meanings, stored next to the code.
//!
//! A plan's key is the SHA-256 of: this format's version, the ISA (name, triple, shared and ISA
//! flags, as Cranelift's own key has them), the GIL's poll word, the plan's index, and every
//! plan of the session in full (prototype, signature, inferred types, call targets, the globals
//! read with their values, the mirror tag each would be read with and whether the program
//! assigns it, which of them are the same array or function, and what inference proved about
//! overflow, dividends and loop floors). The entry stores the code itself with Cranelift's own
//! key of it, the code of the plan's entry trampoline, and, for each name the code refers to
//! (its external names, in order), what it stands for ([`Name`]): a run that finds the entry
//! reads no other file. With `MINI_JIT_VERIFY` (the test suites) every plan is lowered anyway,
//! and an entry whose Cranelift key or names differ from the lowering's is an internal error:
//! a key that missed an input of lowering shows up as a failing test, not as stale code.
//!
//! Sessions outside what this handles get no such key and are lowered as before: those with a
//! parallel loop, calling a specialization of an earlier session, passing functions as values,
//! or holding values of other kinds.

use super::infer::{Plan, T, Target};
use super::mirror::Mirrors;
use super::runtime::{GlobalSite, Site};
use super::types::Ty;
use crate::bytecode::Proto;
use crate::value::Value;
use cranelift::codegen::isa::TargetIsa;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// The version of the key's contents and of the entry's layout.
const VERSION: &[u8] = b"mini-prekey-2";

/// What an address named in compiled code stands for (lower's `address`), in terms that hold
/// in another run of the same program.
#[derive(Clone, Debug, PartialEq)]
pub enum Named {
    /// The function's error sites: (code, frames as (plan index, pc)).
    Sites(Vec<(i64, Vec<(u32, u32)>)>),
    /// A read of assigned global `g` (its name, and the tag it was compiled for).
    GlobalSite {
        name: String,
        expected: u64,
    },
    /// The bits, or the tag, of global `g`'s mirror cell.
    MirrorBits(u16),
    MirrorTag(u16),
    /// The identity of the array or function global `g` holds.
    Identity(u16),
    /// The data, or the own word, of the array global `g` holds.
    ArrayData(u16),
    ArrayOwn(u16),
    /// Anything else: a function naming it gets no entry.
    Unknown,
}

/// What one external name of a function stands for.
#[derive(Clone, Debug, PartialEq)]
pub enum Name {
    /// A runtime helper, by its index in `lower::helpers()`.
    Helper(u32),
    /// The function of plan `j` of the session.
    Plan(u32),
    /// An address; every meaning lowering gave it (they must all be the same address).
    Data(Vec<Named>),
}

/// What a key's entry holds: the code (Cranelift's key of it and what the cache holds under
/// that key), the code's names, and the plan's entry trampoline (engine's `define_entry`),
/// so that a run that finds the entry reads no other file.
#[derive(Debug, PartialEq)]
pub struct Entry {
    pub code: Code,
    pub names: Vec<Name>,
    pub trampoline: Code,
}

/// Compiled code as the cache holds it: Cranelift's key of the function (`code_key_bytes`) and
/// its code serialized (`incremental_cache::serialize_compiled`).
#[derive(Clone, Debug, PartialEq)]
pub struct Code {
    pub key: [u8; 32],
    pub bytes: Vec<u8>,
}

/// Collects the bytes a key is the SHA-256 of (through `Hash`, which writes them in order).
struct KeyBytes(Vec<u8>);

impl Hasher for KeyBytes {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn finish(&self) -> u64 {
        // never asked: the key is the SHA-256 of the bytes
        0
    }
}

/// The bytes of Cranelift's key of a function's code.
pub fn code_key_bytes(key: &cranelift::codegen::incremental_cache::CacheKeyHash) -> [u8; 32] {
    // `CacheKeyHash` keeps its 32 bytes private but hashes them as a slice: length, then bytes
    let mut b = KeyBytes(Vec::with_capacity(40));
    key.hash(&mut b);
    let mut out = [0u8; 32];
    out.copy_from_slice(&b.0[b.0.len() - 32..]);
    out
}

/// The key of plan `i` given its session's key.
pub fn plan_key(session: &[u8; 32], i: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(session);
    h.update((i as u64).to_le_bytes());
    h.finalize().into()
}

/// The key of a session's plans (see the module's comment), or None when the session is
/// outside what this handles.
pub fn session_key(plans: &[Plan], mirrors: &Mirrors, isa: &dyn TargetIsa) -> Option<[u8; 32]> {
    let mut h = KeyBytes(Vec::with_capacity(4096));
    h.write(VERSION);
    isa.name().hash(&mut h);
    isa.triple().hash(&mut h);
    isa.flags().hash(&mut h);
    isa.isa_flags_hash_key().hash(&mut h);
    let (word, mask) = crate::gil::native_poll_word();
    (word as usize, mask).hash(&mut h);
    plans.len().hash(&mut h);
    let mut identities = HashMap::new();
    for plan in plans {
        hash_plan(plan, plans, mirrors, &mut identities, &mut h)?;
    }
    Some(Sha256::digest(&h.0).into())
}

/// Hashes everything of `plan` that lowering reads.
fn hash_plan(
    plan: &Plan,
    plans: &[Plan],
    mirrors: &Mirrors,
    identities: &mut HashMap<u64, usize>,
    h: &mut KeyBytes,
) -> Option<()> {
    if !plan.proto.pranges.is_empty() || plan.sig.tys().iter().any(|t| matches!(t, Ty::Func(_))) {
        return None;
    }
    hash_proto(&plan.proto, h)?;
    plan.sig.hash(h);
    hash_t(plan.ret, h)?;
    plan.states.len().hash(h);
    for state in &plan.states {
        match state {
            None => h.write_u8(0),
            Some(ts) => {
                h.write_u8(1);
                ts.len().hash(h);
                for t in ts.iter() {
                    hash_t(*t, h)?;
                }
            }
        }
    }
    let mut calls: Vec<_> = plan.calls.iter().collect();
    calls.sort_by_key(|(pc, _)| **pc);
    calls.len().hash(h);
    for (pc, target) in calls {
        pc.hash(h);
        match target {
            Target::Plan(j) => (0u8, *j).hash(h),
            Target::Builtin(b) => (1u8, *b).hash(h),
            Target::Spec(_) => return None,
        }
    }
    plan.globals.len().hash(h);
    for (g, v) in &plan.globals {
        g.hash(h);
        hash_value(v, plans, h)?;
        mirrors.assigned(*g as usize).hash(h);
        mirrors.expected(*g, v).hash(h);
        if let Value::Array(_) | Value::Func(_) = v {
            // which globals hold the same array or function: code names each identity once
            let n = identities.len();
            identities.entry(Mirrors::bits_of(v)).or_insert(n).hash(h);
        }
    }
    plan.global_names.hash(h);
    sorted(plan.module_names.iter().map(|(k, v)| (*k, *v))).hash(h);
    plan.caller.hash(h);
    plan.targets().hash(h);
    sorted(plan.no_overflow.iter().copied()).hash(h);
    sorted(plan.nonneg_dividend.iter().copied()).hash(h);
    sorted(plan.floors_at_loops.iter().map(|(k, v)| (*k, v.clone()))).hash(h);
    plan.num_regs.hash(h);
    Some(())
}

fn sorted<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.collect();
    v.sort();
    v
}

/// Hashes an inferred type; None for a function passed as a value.
fn hash_t(t: T, h: &mut KeyBytes) -> Option<()> {
    if matches!(t, T::Fn(_) | T::Val(Ty::Func(_))) {
        return None;
    }
    t.hash(h);
    Some(())
}

/// Hashes the parts of a prototype that its code depends on, and those of the functions it
/// creates.
fn hash_proto(p: &Proto, h: &mut KeyBytes) -> Option<()> {
    p.name.hash(h);
    (p.nparams, p.nregs).hash(h);
    p.code.hash(h);
    p.consts.len().hash(h);
    for k in &p.consts {
        match k {
            Value::Nil => h.write_u8(0),
            Value::Bool(b) => (1u8, *b).hash(h),
            Value::Int(i) => (2u8, *i).hash(h),
            Value::Float(f) => (3u8, f.to_bits()).hash(h),
            Value::Str(s) => (4u8, &**s).hash(h),
            _ => return None,
        }
    }
    p.captures.hash(h);
    p.constant_captures.hash(h);
    p.handlers.hash(h);
    p.pranges.len().hash(h);
    p.protos.len().hash(h);
    for child in &p.protos {
        hash_proto(child, h)?;
    }
    Some(())
}

/// Hashes a global's value as lowering sees it: numbers and flags by value, arrays by kind and
/// shape, functions by the plan or prototype they run.
fn hash_value(v: &Value, plans: &[Plan], h: &mut KeyBytes) -> Option<()> {
    match v {
        Value::Nil => h.write_u8(0),
        Value::Bool(b) => (1u8, *b).hash(h),
        Value::Int(i) => (2u8, *i).hash(h),
        Value::Float(f) => (3u8, f.to_bits()).hash(h),
        Value::Array(a) => (4u8, a.kind as u8, a.len(), &a.dims[..]).hash(h),
        Value::Func(c) => match plans.iter().position(|p| Rc::ptr_eq(&p.proto, &c.proto)) {
            Some(j) => (5u8, j).hash(h),
            None => {
                h.write_u8(6);
                hash_proto(&c.proto, h)?;
            }
        },
        Value::Builtin(b) => (7u8, *b).hash(h),
        _ => return None,
    }
    Some(())
}

/// The value of global `g` as the session read it.
fn global(plans: &[Plan], g: u16) -> Option<&Value> {
    plans.iter().find_map(|p| p.globals.get(&g))
}

/// The address `named` stands for in this run, doing what lowering does when it names it
/// (filling a mirror cell, leaking a table); None when it cannot be rebuilt.
pub fn resolve(named: &Named, plans: &[Plan], mirrors: &Mirrors) -> Option<usize> {
    Some(match named {
        Named::Sites(sites) => {
            let mut table = Vec::with_capacity(sites.len());
            for (code, frames) in sites {
                let frames: Option<Box<[(*const Proto, usize)]>> = frames
                    .iter()
                    .map(|(j, pc)| plans.get(*j as usize).map(|p| (Rc::as_ptr(&p.proto), *pc as usize)))
                    .collect();
                table.push(Site { code: *code, frames: frames? });
            }
            // compiled code is never freed, so neither are its sites (as lowering leaks them)
            let table: &'static [Site] = Box::leak(table.into_boxed_slice());
            table.as_ptr() as usize
        }
        Named::GlobalSite { name, expected } => {
            let site = Box::leak(Box::new(GlobalSite { name: name.clone(), expected: *expected }));
            site as *const GlobalSite as usize
        }
        Named::MirrorBits(g) | Named::MirrorTag(g) => {
            mirrors.expect(*g, global(plans, *g)?);
            let cell = mirrors.cell(*g);
            match named {
                Named::MirrorBits(_) => &cell.bits as *const _ as usize,
                _ => &cell.tag as *const _ as usize,
            }
        }
        Named::Identity(g) => Mirrors::bits_of(global(plans, *g)?) as usize,
        Named::ArrayData(g) | Named::ArrayOwn(g) => {
            let Value::Array(a) = global(plans, *g)? else { return None };
            match named {
                Named::ArrayData(_) => a.data.as_ptr() as usize,
                _ => crate::jit::alloc::interpreter_own(a) as usize,
            }
        }
        Named::Unknown => return None,
    })
}

/// The portable form of a function's error sites: frames by plan index; None when a frame's
/// function is not one of the session's plans.
pub fn portable_sites(sites: &[Site], plans: &[Plan]) -> Named {
    let mut out = Vec::with_capacity(sites.len());
    for site in sites {
        let mut frames = Vec::with_capacity(site.frames.len());
        for (proto, pc) in site.frames.iter() {
            let Some(j) = plans.iter().position(|p| Rc::as_ptr(&p.proto) == *proto) else { return Named::Unknown };
            frames.push((j as u32, *pc as u32));
        }
        out.push((site.code, frames));
    }
    Named::Sites(out)
}

/// Writes an entry's bytes.
pub fn encode(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + entry.code.bytes.len() + entry.trampoline.bytes.len());
    encode_code(&entry.code, &mut out);
    encode_code(&entry.trampoline, &mut out);
    put(&mut out, entry.names.len() as u64);
    for name in &entry.names {
        match name {
            Name::Helper(h) => {
                out.push(0);
                put(&mut out, u64::from(*h));
            }
            Name::Plan(j) => {
                out.push(1);
                put(&mut out, u64::from(*j));
            }
            Name::Data(meanings) => {
                out.push(2);
                put(&mut out, meanings.len() as u64);
                for m in meanings {
                    encode_named(m, &mut out);
                }
            }
        }
    }
    out
}

fn encode_code(code: &Code, out: &mut Vec<u8>) {
    out.extend_from_slice(&code.key);
    put(out, code.bytes.len() as u64);
    out.extend_from_slice(&code.bytes);
}

fn encode_named(m: &Named, out: &mut Vec<u8>) {
    match m {
        Named::Sites(sites) => {
            out.push(0);
            put(out, sites.len() as u64);
            for (code, frames) in sites {
                put(out, *code as u64);
                put(out, frames.len() as u64);
                for (j, pc) in frames {
                    put(out, u64::from(*j));
                    put(out, u64::from(*pc));
                }
            }
        }
        Named::GlobalSite { name, expected } => {
            out.push(1);
            put(out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put(out, *expected);
        }
        Named::MirrorBits(g) => put_tagged(out, 2, *g),
        Named::MirrorTag(g) => put_tagged(out, 3, *g),
        Named::Identity(g) => put_tagged(out, 4, *g),
        Named::ArrayData(g) => put_tagged(out, 5, *g),
        Named::ArrayOwn(g) => put_tagged(out, 6, *g),
        Named::Unknown => out.push(7),
    }
}

fn put(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_tagged(out: &mut Vec<u8>, tag: u8, g: u16) {
    out.push(tag);
    put(out, u64::from(g));
}

/// Reads the bytes of an entry (None if they are not one).
pub fn decode(bytes: &[u8]) -> Option<Entry> {
    let mut r = Reader(bytes);
    let code = decode_code(&mut r)?;
    let trampoline = decode_code(&mut r)?;
    let n = r.len()?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(match r.byte()? {
            0 => Name::Helper(u32::try_from(r.u64()?).ok()?),
            1 => Name::Plan(u32::try_from(r.u64()?).ok()?),
            2 => {
                let k = r.len()?;
                let mut meanings = Vec::with_capacity(k);
                for _ in 0..k {
                    meanings.push(decode_named(&mut r)?);
                }
                Name::Data(meanings)
            }
            _ => return None,
        });
    }
    r.0.is_empty().then_some(Entry { code, names, trampoline })
}

fn decode_code(r: &mut Reader) -> Option<Code> {
    let key = r.take(32)?.try_into().ok()?;
    let n = r.len()?;
    Some(Code { key, bytes: r.take(n)?.to_vec() })
}

fn decode_named(r: &mut Reader) -> Option<Named> {
    let g = |r: &mut Reader| u16::try_from(r.u64()?).ok();
    Some(match r.byte()? {
        0 => {
            let n = r.len()?;
            let mut sites = Vec::with_capacity(n);
            for _ in 0..n {
                let code = r.u64()? as i64;
                let k = r.len()?;
                let mut frames = Vec::with_capacity(k);
                for _ in 0..k {
                    frames.push((u32::try_from(r.u64()?).ok()?, u32::try_from(r.u64()?).ok()?));
                }
                sites.push((code, frames));
            }
            Named::Sites(sites)
        }
        1 => {
            let n = r.len()?;
            let name = String::from_utf8(r.take(n)?.to_vec()).ok()?;
            Named::GlobalSite { name, expected: r.u64()? }
        }
        2 => Named::MirrorBits(g(r)?),
        3 => Named::MirrorTag(g(r)?),
        4 => Named::Identity(g(r)?),
        5 => Named::ArrayData(g(r)?),
        6 => Named::ArrayOwn(g(r)?),
        _ => return None,
    })
}

/// Reads an entry's bytes front to back.
struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A count, bounded by the bytes left (every item takes at least one), so that a damaged
    /// entry cannot ask for a huge allocation.
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= self.0.len()).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_truncation_is_refused() {
        let entry = Entry {
            code: Code { key: [7; 32], bytes: vec![1, 2, 3] },
            trampoline: Code { key: [8; 32], bytes: vec![4, 5] },
            names: vec![
                Name::Helper(3),
                Name::Plan(0),
                Name::Data(vec![Named::Sites(vec![(5, vec![(0, 12), (1, 3)]), (-2, vec![])])]),
                Name::Data(vec![Named::GlobalSite { name: "fib".into(), expected: 0x105 }]),
                Name::Data(vec![Named::MirrorBits(4), Named::MirrorTag(4)]),
                Name::Data(vec![Named::Identity(2), Named::ArrayData(9), Named::ArrayOwn(9)]),
            ],
        };
        let bytes = encode(&entry);
        assert_eq!(decode(&bytes), Some(entry));
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "a cut at {cut} bytes");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
    }

    #[test]
    fn plan_keys_differ_by_plan_and_session() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_ne!(plan_key(&a, 0), plan_key(&a, 1));
        assert_ne!(plan_key(&a, 0), plan_key(&b, 0));
        assert_eq!(plan_key(&a, 1), plan_key(&a, 1));
    }
}
