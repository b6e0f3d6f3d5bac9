//! The interpreter's side of the synchronisation builtins: every builtin call goes through
//! [`Vm::call_builtin`], which hands the blocking ones the place of the call (for the deadlock
//! report and `--stats`), runs `locked(l, f, args...)` as a nested call on this same VM (so its
//! frames, stack limit, Ctrl-C and error stacks are the ordinary ones), and waits for a queue's
//! next item in a `for` loop.
//!
//! What it may touch without the GIL: nothing (it runs under the GIL; waits release it in
//! `sync::wait`).

use super::{Fail, Shared, Vm, arg_count_error, builtins, thread};
use crate::builtin::Builtin;
use crate::jit::Entered;
use crate::source::Span;
use crate::sync::builtins::{self as sync, is_sync, lock_arg};
use crate::sync::queue;
use crate::sync::wait::Where;
use crate::value::{Queue, Value};
use std::rc::Rc;

impl Shared {
    /// A place in the program's file with no span (for a builtin called with no frame running,
    /// as a thread's entry function).
    pub fn nowhere(&self) -> Where {
        Where { file: self.source.clone(), span: Span::default() }
    }
}

impl<'g> Vm<'g> {
    /// Calls builtin `b`. The stack may have grown (a nested call of `locked`): the caller
    /// reloads its pointers into it.
    #[inline(always)]
    pub(super) fn call_builtin(&mut self, b: Builtin, args: &[Value]) -> Result<Value, Fail> {
        if !is_sync(b) {
            return builtins::call(b, args, &self.shared, self.gil);
        }
        self.call_sync(b, args)
    }

    /// The synchronisation builtins, with the place of the call.
    #[cold]
    #[inline(never)]
    fn call_sync(&mut self, b: Builtin, args: &[Value]) -> Result<Value, Fail> {
        let at = self.here();
        match b {
            Builtin::Locked => self.locked(args, &at),
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
    fn here(&self) -> Where {
        let span = self.frames.last().map_or(Span::default(), |f| f.proto().spans[f.ip.saturating_sub(1)]);
        Where { file: self.shared.source.clone(), span }
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

    /// Calls a function value from inside a builtin, on this VM: its frame goes on top of the
    /// current ones, so the stack limit, `--stats` and error stacks count it as any call.
    pub(super) fn call_nested(&mut self, f: Value, args: Vec<Value>) -> Result<Value, Fail> {
        let c = match &f {
            Value::Func(c) => c.clone(),
            Value::Builtin(b) => return self.call_builtin(*b, &args),
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

    /// Waits until the queue a `for` loop iterates over has an item or is closed.
    pub(super) fn wait_for_item(&mut self, q: &Rc<Queue>) -> Result<(), Fail> {
        let at = self.here();
        queue::wait_for_item(q, "get", Some(at), self.gil).map_err(sync::stopped)
    }
}

/// The queue a `for` loop iterates over, if it is one.
pub(super) fn as_queue(v: &Value) -> Option<Rc<Queue>> {
    match v {
        Value::Queue(q) => Some(q.clone()),
        _ => None,
    }
}
