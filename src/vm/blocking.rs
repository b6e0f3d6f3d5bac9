//! The interpreter's side of the synchronisation builtins. `builtins::call` answers
//! `Fail::Blocking` for them (and for `join`), and so does a `for` loop's `IterNext` over an
//! empty queue: the dispatch loop stops as at an error, and `Vm::run` calls
//! [`Vm::finish_blocking`], which finishes the instruction here and lets the loop resume after
//! it. Here the builtins get the place of the call (for the deadlock report and `--stats`), and
//! `locked(l, f, args...)` runs its function as a nested call on this same VM (so its frames,
//! stack limit, Ctrl-C and error stacks are the ordinary ones); so do `sort(l, key)` and
//! `sorted(x, key)` for their key function. The common builtins pay nothing
//! for this: the test is on the dispatch loop's error path.
//!
//! What it may touch without the GIL: nothing (it runs under the GIL; waits release it in
//! `sync::wait`).

use super::sync_builtins::{self as sync, lock_arg};
use super::{Fail, Vm, arg_count_error, lists, thread};
use crate::builtin::Builtin;
use crate::bytecode::Instr;
use crate::jit::Entered;
use crate::source::Span;
use crate::sync::queue::{self, QueueError};
use crate::sync::wait::Where;
use crate::value::Value;

impl<'g> Vm<'g> {
    /// Finishes the instruction that stopped the dispatch loop with `Fail::Blocking`: a call of
    /// a blocking builtin (its result goes to the call's register), or a `for` loop's next step
    /// over an empty queue (waits for an item, or leaves the loop once the queue is closed).
    #[cold]
    #[inline(never)]
    pub(super) fn finish_blocking(&mut self) -> Result<(), Fail> {
        let Some(frame) = self.frames.last() else {
            return Err("internal error: a blocking builtin outside a frame".into());
        };
        let (base, ip) = (frame.base, frame.ip);
        match frame.proto().code[ip - 1] {
            Instr::Call { a, n } => {
                let Value::Builtin(b) = self.stack[base + a as usize] else {
                    return Err("internal error: a blocking call of a function".into());
                };
                let args = self.stack[base + a as usize + 1..][..n as usize].to_vec();
                let v = self.call_sync(b, &args)?;
                self.stack[base + a as usize] = v;
            }
            Instr::CallBuiltin { a, n, f } => {
                let args = self.stack[base + a as usize..][..n as usize].to_vec();
                let v = self.call_sync(f, &args)?;
                self.stack[base + a as usize] = v;
            }
            Instr::IterNext { a, t } => match self.next_from_queue(a)? {
                Some(v) => self.stack[base + a as usize + 2] = v,
                None => self.frames.last_mut().expect("the frame above").ip = t as usize,
            },
            Instr::Import { a, m } => {
                let v = self.import(m)?;
                self.stack[base + a as usize] = v;
            }
            other => return Err(format!("internal error: {other:?} cannot block").into()),
        }
        Ok(())
    }

    /// Calls builtin `b` from Rust code, which holds no pointer into the stack, so that a
    /// blocking builtin is finished here rather than by `run`.
    pub(super) fn call_builtin_outside_loop(&mut self, b: Builtin, args: &[Value]) -> Result<Value, Fail> {
        match self.call_builtin(b, args) {
            Err(Fail::Blocking) => self.call_sync(b, args),
            r => r,
        }
    }

    /// The synchronisation builtins and `join`, with the place of the call. (A nested call of
    /// `locked` may grow the stack: `args` must not point into it.)
    fn call_sync(&mut self, b: Builtin, args: &[Value]) -> Result<Value, Fail> {
        let at = self.here();
        match b {
            Builtin::Locked => self.locked(args, &at),
            Builtin::Sort | Builtin::Sorted => self.sort_by_key(b, args),
            Builtin::Join => {
                let [t] = args else {
                    return Err(format!("expected 1 argument, got {}", args.len()).into());
                };
                thread::join_at(t, Some(at), self.gil)
            }
            _ => sync::call(b, args, &at, self.gil),
        }
    }

    /// Where the running instruction is (the call being made).
    pub(super) fn here(&self) -> Where {
        let span = self.frames.last().map_or(Span::default(), |f| f.proto().spans[f.ip.saturating_sub(1)]);
        Where { file: self.shared.source.borrow().clone(), span }
    }

    /// `locked(l, f, args...)`: calls `f(args...)` holding `l`, and releases it whether the
    /// call returns or fails (the error then goes on up). `f` releasing the lock itself is the
    /// error of `release` at the `locked` call.
    fn locked(&mut self, args: &[Value], at: &Where) -> Result<Value, Fail> {
        if args.len() < 2 {
            return Err(format!("expected at least 2 arguments, got {}", args.len()).into());
        }
        let lock = lock_arg(Builtin::Locked, &args[0])?.clone();
        let f = args[1].clone();
        if !matches!(f, Value::Func(_) | Value::Builtin(_)) {
            return Err(format!("not callable: {}", f.type_name()).into());
        }
        // copied now: `args` points into the stack, which the call may move
        let rest = args[2..].to_vec();
        sync::acquire(&lock, at, self.gil)?;
        let result = self.call_nested(f, rest);
        let released = sync::release(&lock, self.gil);
        let value = result?;
        released?;
        Ok(value)
    }

    /// `sort(l, key)` and `sorted(x, key)`: calls `key` once per element, as a nested call (its
    /// errors go on up with their stack), then sorts by the keys. While the keys are computed,
    /// `sort`'s list is empty (as in CPython); a list that is no longer empty afterwards was
    /// modified by the key function, which is an error once the list holds its sorted elements.
    fn sort_by_key(&mut self, b: Builtin, args: &[Value]) -> Result<Value, Fail> {
        let key = lists::key_arg(b, args)?;
        let Value::List(l) = &args[0] else {
            let items = lists::elements(b, &args[0], self.gil)?;
            let keys = self.keys_of(&items, &key)?;
            return Ok(Value::list(lists::sort_decorated(&items, &keys, self.gil)?, self.gil));
        };
        if b == Builtin::Sorted {
            let items = l.borrow(self.gil).clone();
            let keys = self.keys_of(&items, &key)?;
            return Ok(Value::list(lists::sort_decorated(&items, &keys, self.gil)?, self.gil));
        }
        // emptying and then refilling with the same values keeps the collector's invariant (an
        // untracked list holds no container): a list of numbers stays untracked
        let items = std::mem::take(&mut *l.borrow_mut_to_store(&Value::Nil, self.gil));
        let sorted = self.keys_of(&items, &key).and_then(|keys| lists::sort_decorated(&items, &keys, self.gil));
        let (result, back) = match sorted {
            Ok(sorted) => (Ok(Value::Nil), sorted),
            Err(e) => (Err(e), items),
        };
        let added = std::mem::replace(&mut *l.borrow_mut_to_store(&Value::Nil, self.gil), back);
        if !added.is_empty() && result.is_ok() {
            return Err("list modified during sort".into());
        }
        result
    }

    /// `key(v)` for each of `items`, in order.
    fn keys_of(&mut self, items: &[Value], key: &Value) -> Result<Vec<Value>, Fail> {
        items.iter().map(|v| self.call_nested(key.clone(), vec![v.clone()])).collect()
    }

    /// Calls a function value from inside a builtin, on this VM: its frame goes on top of the
    /// current ones, so the stack limit, `--stats` and error stacks count it as any call.
    pub(super) fn call_nested(&mut self, f: Value, args: Vec<Value>) -> Result<Value, Fail> {
        let c = match &f {
            Value::Func(c) => c.clone(),
            Value::Builtin(b) => return self.call_builtin_outside_loop(*b, &args),
            other => return Err(format!("not callable: {}", other.type_name()).into()),
        };
        if c.proto.nparams != args.len() {
            return Err(arg_count_error(c.proto.nparams, args.len()).into());
        }
        if self.frames.len() >= self.frame_limit {
            return Err("stack overflow".into());
        }
        if let Some(jit) = self.shared.jit.as_ref() {
            let room = (self.frame_limit - self.frames.len()) as i64 - 1;
            match jit.enter(&c, &args, room, &*self.shared, self.gil) {
                Entered::Interpret => {}
                Entered::Returned(v) => return Ok(v),
                Entered::Failed(message, frames) => return Err(Fail::Native(message, frames)),
            }
        }
        let top = self.stack.len();
        self.stack.push(f);
        self.stack.extend(args);
        self.push_frame(&c, top + 1);
        let stop = self.frames.len() - 1;
        let result = self.run(stop);
        self.stack.truncate(top);
        result.map_err(|d| Fail::Done(Box::new(d)))
    }

    /// The next item for a `for` loop over the queue in register `a` of the top frame, which
    /// found none without waiting: waits for one (as `get` does), or `None` once the queue is
    /// closed and drained (the loop ends).
    fn next_from_queue(&mut self, a: u8) -> Result<Option<Value>, Fail> {
        let base = self.frames.last().map_or(0, |f| f.base);
        let Value::Queue(q) = self.stack[base + a as usize].clone() else {
            return Ok(None);
        };
        match queue::get(&q, Some(self.here()), self.gil) {
            Ok(v) => Ok(Some(v)),
            Err(QueueError::Closed) => Ok(None),
            Err(QueueError::Stopped(stop)) => Err(sync::stopped(stop)),
        }
    }
}
