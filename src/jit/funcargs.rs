//! Functions as arguments of compiled code: a kernel such as `integrate(f, a, b, n)` is
//! specialized on the function it receives, as numba specializes on a dispatcher. A function
//! has the type `Ty::Func(key)`: its prototype, and the types of its captured variables when
//! each is never assigned after its declaration (their values are read once per call and
//! passed to native code after the arguments). This module makes the keys, once per prototype
//! and capture types, and keeps every prototype a key names alive for the rest of the program,
//! so that a specialization (or a refusal) keyed by it is never matched by another function
//! that later gets the same address.

use super::lower::param_types;
use super::types::{FnKey, MAX_PARAMS, Sig, Ty};
use crate::bytecode::Proto;
use crate::gil::Gil;
use crate::value::{Closure, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The most captured variables of a function passed as an argument to compiled code.
const MAX_CAPTURES: usize = MAX_PARAMS / 2;

/// The keys made so far, and the prototypes they name.
#[derive(Default)]
pub struct Functions {
    keys: RefCell<HashMap<(usize, Vec<Ty>), &'static FnKey>>,
    protos: RefCell<HashMap<usize, Rc<Proto>>>,
}

impl Functions {
    /// The key of `proto` with captured values of types `captures`, keeping `proto` alive from
    /// now on. The key is made once and never freed (`Ty` is `Copy`).
    pub fn key(&self, proto: &Rc<Proto>, captures: Vec<Ty>) -> Ty {
        let addr = Rc::as_ptr(proto) as usize;
        self.protos.borrow_mut().entry(addr).or_insert_with(|| proto.clone());
        let mut keys = self.keys.borrow_mut();
        let key = keys.entry((addr, captures.clone())).or_insert_with(|| {
            // `fn f`, or `fn f [int, float array]` with the captured values' types
            let mut name = format!("fn {}", proto.name);
            if !captures.is_empty() {
                let tys: Vec<&str> = captures.iter().map(|t| t.name()).collect();
                name = format!("{name} [{}]", tys.join(", "));
            }
            let name: &'static str = Box::leak(name.into_boxed_str());
            let params = captures.iter().flat_map(|t| param_types(*t).iter().copied()).collect();
            Box::leak(Box::new(FnKey { proto: addr, name, captures: captures.into(), params }))
        });
        Ty::Func(key)
    }

    /// The prototype a key names.
    pub fn get(&self, addr: usize) -> Option<Rc<Proto>> {
        self.protos.borrow().get(&addr).cloned()
    }

    /// The type of a function argument, if compiled code can call it: a function without
    /// captured variables, or one whose captured variables are all never assigned after their
    /// declaration and hold (now) numbers, bools, nil or arrays.
    pub fn key_of(&self, closure: &Closure, gil: Gil) -> Option<Ty> {
        let proto = &closure.proto;
        if closure.upvals.len() > MAX_CAPTURES || proto.nparams + closure.upvals.len() > MAX_PARAMS {
            return None;
        }
        let mut captures = Vec::with_capacity(closure.upvals.len());
        for (u, cell) in closure.upvals.iter().enumerate() {
            if !proto.constant_captures.get(u).copied().unwrap_or(false) {
                return None;
            }
            match Ty::of(&cell.borrow(gil)) {
                t @ (Ty::Int | Ty::Float | Ty::Bool | Ty::Nil) => captures.push(t),
                t if t.is_any_array() => captures.push(t),
                // a variable not assigned yet, a string, a list, a function...
                _ => return None,
            }
        }
        Some(self.key(proto, captures))
    }

    /// `sig` (the signature of `args`) with each function argument that compiled code can call
    /// typed by its identity.
    pub fn key_args(&self, mut sig: Sig, args: &[Value], gil: Gil) -> Sig {
        for (i, a) in args.iter().enumerate() {
            if let Value::Func(c) = a
                && let Some(t) = self.key_of(c, gil)
            {
                sig = sig.with(i, t);
            }
        }
        sig
    }
}

/// Writes the captured values of `closure` (a function argument whose key has captures) into
/// the argument slots from `k` on, as `call_with_slots` writes arguments.
pub fn unbox_captures(closure: &Closure, slots: &mut [u64], k: &mut usize, gil: Gil) {
    for cell in &closure.upvals {
        match &*cell.borrow(gil) {
            Value::Int(i) => slots[*k] = *i as u64,
            Value::Float(f) => slots[*k] = f.to_bits(),
            Value::Bool(b) => slots[*k] = *b as u64,
            // the words `param_types` gives the captured value's type, which the entry
            // trampoline loads one by one: an array of several dimensions as its pointer, each
            // dimension and its own word, a 1-D array as its pointer, length and own word
            // (jit/alloc.rs)
            Value::Array(arr) if !arr.dims.is_empty() => {
                slots[*k] = arr.data.as_ptr() as u64;
                for d in arr.dims.iter() {
                    *k += 1;
                    slots[*k] = *d as u64;
                }
                *k += 1;
                slots[*k] = super::alloc::interpreter_own(arr);
            }
            Value::Array(arr) => {
                slots[*k] = arr.data.as_ptr() as u64;
                slots[*k + 1] = arr.len() as u64;
                slots[*k + 2] = super::alloc::interpreter_own(arr);
                *k += 2;
            }
            _ => continue,
        }
        *k += 1;
    }
}
