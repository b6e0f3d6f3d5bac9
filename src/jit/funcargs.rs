//! Functions as arguments of compiled code: a kernel such as `integrate(f, a, b, n)` is
//! specialized on the function it receives, as numba specializes on a dispatcher. A function
//! without captured variables has the type `Ty::Func`, keyed by its prototype's address; this
//! module keeps every such prototype alive for the rest of the program once a key names it, so
//! that a specialization (or a refusal) keyed by it is never matched by another function that
//! later gets the same address.

use super::types::{Sig, Ty};
use crate::bytecode::Proto;
use crate::value::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The prototypes named by `Ty::Func` keys, with their report names (`fn NAME`, leaked once
/// per prototype: `Ty` is `Copy` and holds a `&'static str`).
#[derive(Default)]
pub struct Functions {
    by_key: RefCell<HashMap<usize, (Rc<Proto>, &'static str)>>,
}

impl Functions {
    /// The `Ty::Func` of a prototype, keeping it alive from now on.
    pub fn key(&self, proto: &Rc<Proto>) -> Ty {
        let key = Rc::as_ptr(proto) as usize;
        let mut map = self.by_key.borrow_mut();
        let (_, name) = map.entry(key).or_insert_with(|| {
            let name: &'static str = Box::leak(format!("fn {}", proto.name).into_boxed_str());
            (proto.clone(), name)
        });
        Ty::Func(key, name)
    }

    /// The prototype a key names.
    pub fn get(&self, key: usize) -> Option<Rc<Proto>> {
        self.by_key.borrow().get(&key).map(|(p, _)| p.clone())
    }

    /// `sig` (the signature of `args`) with each function argument that has no captured
    /// variables typed by its identity.
    pub fn key_args(&self, mut sig: Sig, args: &[Value]) -> Sig {
        for (i, a) in args.iter().enumerate() {
            if let Value::Func(c) = a
                && c.upvals.is_empty()
            {
                sig = sig.with(i, self.key(&c.proto));
            }
        }
        sig
    }
}
