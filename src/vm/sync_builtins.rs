//! The synchronisation builtins' argument checks and errors: `lock`, `acquire`, `release`,
//! `queue`, `put`, `get`, `try_get`, `close`, `barrier`, `wait`, `sleep` (`locked` and `join`,
//! which need the interpreter, are in `vm::blocking` and `vm::thread`). Each gets the place of
//! its call, for the deadlock report and the statistics of the objects it makes.
//!
//! What it may touch without the GIL: nothing (it runs under the GIL and blocks through
//! `wait.rs`, which releases it).

use super::Fail;
use crate::builtin::Builtin;
use crate::gil::Gil;
use crate::sync::barrier::BarrierObj;
use crate::sync::lock::{AcquireError, LockObj};
use crate::sync::queue::{self, QueueError};
use crate::sync::wait::{self, Where};
use crate::value::{Queue, Value};
use std::rc::Rc;
use std::time::Duration;

type BResult = Result<Value, Fail>;

/// Calls a synchronisation builtin made or waiting at `at`.
pub fn call(b: Builtin, args: &[Value], at: &Where, gil: Gil) -> BResult {
    use Builtin as B;
    match b {
        B::Lock => arity(0, args).map(|()| Value::Lock(Rc::new(LockObj::new(at)))),
        B::Acquire => acquire(lock_arg(b, one(args)?)?, at, gil).map(|()| Value::Nil),
        B::Release => release(lock_arg(b, one(args)?)?, gil).map(|()| Value::Nil),
        B::Queue => new_queue(args, at, gil),
        B::Put => put(args, at, gil),
        B::Get => get(queue_arg(b, one(args)?)?, at, gil),
        B::TryGet => try_get(args, gil),
        B::Close => close(queue_arg(b, one(args)?)?, gil),
        B::Barrier => barrier(one(args)?),
        B::Wait => barrier_wait(one(args)?, at, gil),
        B::Sleep => sleep(one(args)?, gil),
        _ => Err(format!("internal error: {} is not a synchronisation builtin", b.name()).into()),
    }
}

fn arity(n: usize, args: &[Value]) -> Result<(), Fail> {
    if args.len() != n {
        let s = if n == 1 { "" } else { "s" };
        return Err(format!("expected {n} argument{s}, got {}", args.len()).into());
    }
    Ok(())
}

fn one(args: &[Value]) -> Result<&Value, Fail> {
    arity(1, args)?;
    Ok(&args[0])
}

/// The lock argument of `b`, or `b expects a lock, not int`.
pub fn lock_arg(b: Builtin, v: &Value) -> Result<&Rc<LockObj>, Fail> {
    match v {
        Value::Lock(l) => Ok(l),
        other => Err(format!("{} expects a lock, not {}", b.name(), other.type_name()).into()),
    }
}

fn queue_arg(b: Builtin, v: &Value) -> Result<&Rc<Queue>, Fail> {
    match v {
        Value::Queue(q) => Ok(q),
        other => Err(format!("{} expects a queue, not {}", b.name(), other.type_name()).into()),
    }
}

/// The error of a wait that Ctrl-C or a deadlock ended.
pub fn stopped(stop: wait::Stop) -> Fail {
    Fail::Msg(stop.message())
}

/// `acquire(l)`.
pub fn acquire(l: &LockObj, at: &Where, gil: Gil) -> Result<(), Fail> {
    match l.acquire(Some(at.clone()), gil) {
        Ok(()) => Ok(()),
        Err(AcquireError::AlreadyHeld) => Err("lock is already held by this thread".into()),
        Err(AcquireError::Stopped(stop)) => Err(stopped(stop)),
    }
}

/// `release(l)`.
pub fn release(l: &LockObj, gil: Gil) -> Result<(), Fail> {
    if l.release(gil) { Ok(()) } else { Err("cannot release a lock this thread does not hold".into()) }
}

/// `queue()` or `queue(capacity)`.
fn new_queue(args: &[Value], at: &Where, gil: Gil) -> BResult {
    let capacity = match args {
        [] => 0,
        [Value::Int(n)] if *n >= 1 => usize::try_from(*n).unwrap_or(usize::MAX),
        [Value::Int(_)] => return Err("queue capacity must be at least 1".into()),
        [other] => return Err(format!("queue capacity must be an int, not {}", other.type_name()).into()),
        _ => return Err(format!("expected 0 to 1 arguments, got {}", args.len()).into()),
    };
    Ok(Value::Queue(queue::new(capacity, at, gil)))
}

fn queue_error(e: QueueError, closed: &str) -> Fail {
    match e {
        QueueError::Closed => closed.into(),
        QueueError::Stopped(stop) => stopped(stop),
    }
}

/// `put(q, v)`.
fn put(args: &[Value], at: &Where, gil: Gil) -> BResult {
    arity(2, args)?;
    let q = queue_arg(Builtin::Put, &args[0])?;
    queue::put(q, &args[1], Some(at.clone()), gil).map_err(|e| queue_error(e, "put on a closed queue"))?;
    Ok(Value::Nil)
}

/// `get(q)`.
fn get(q: &Rc<Queue>, at: &Where, gil: Gil) -> BResult {
    queue::get(q, Some(at.clone()), gil).map_err(|e| queue_error(e, "get from a closed and empty queue"))
}

/// `try_get(q, default)`.
fn try_get(args: &[Value], gil: Gil) -> BResult {
    arity(2, args)?;
    let q = queue_arg(Builtin::TryGet, &args[0])?;
    Ok(queue::try_get(q, &args[1], gil))
}

/// `close(q)`.
fn close(q: &Rc<Queue>, gil: Gil) -> BResult {
    if queue::close(q, gil) { Ok(Value::Nil) } else { Err("queue is already closed".into()) }
}

/// `barrier(n)`.
fn barrier(n: &Value) -> BResult {
    match n {
        Value::Int(n) if *n >= 1 => {
            Ok(Value::Barrier(Rc::new(BarrierObj::new(usize::try_from(*n).unwrap_or(usize::MAX)))))
        }
        Value::Int(_) => Err("barrier needs at least 1 thread".into()),
        other => Err(format!("barrier expects an int, not {}", other.type_name()).into()),
    }
}

/// `wait(b)`.
fn barrier_wait(b: &Value, at: &Where, gil: Gil) -> BResult {
    let Value::Barrier(b) = b else {
        return Err(format!("wait expects a barrier, not {}", b.type_name()).into());
    };
    let index = b.wait(Some(at.clone()), gil).map_err(stopped)?;
    Ok(Value::Int(index as i64))
}

/// `sleep(seconds)`.
fn sleep(seconds: &Value, gil: Gil) -> BResult {
    let s = match seconds {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        other => return Err(format!("sleep expects a number, not {}", other.type_name()).into()),
    };
    if s.is_nan() || s < 0.0 {
        return Err("sleep length must be non-negative".into());
    }
    let d = Duration::try_from_secs_f64(s).map_err(|_| Fail::from("sleep length too large"))?;
    wait::sleep(d, gil).map_err(stopped)?;
    Ok(Value::Nil)
}
