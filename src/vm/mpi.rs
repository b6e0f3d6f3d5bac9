//! The `mpi_*` builtins (lang-spec/processes.md, "MPI"): message passing between mini
//! processes, one per rank, as mpi4py's lower-case calls. Built with the cargo feature `mpi`
//! and started by `mpirun` (which sets `OMPI_COMM_WORLD_SIZE`), they go through the system's
//! MPI (the `mpi` crate); otherwise the world is this process alone, rank 0 of 1, so every MPI
//! program also runs alone.
//!
//! Values cross as the bytes of `vm::wire`. A message a rank sends to itself waits in a
//! mailbox in this process (never in MPI, where a large one would deadlock the blocking send);
//! a receive from itself with no message waiting is an error, not a hang. Only the program's
//! main thread may call MPI (MPI is initialized `Funneled`), and blocking calls release the GIL.

use super::Fail;
use crate::builtin::Builtin;
use crate::gil::Gil;
use crate::value::{ArrayObj, ElemKind, Value, cannot_allocate_shape};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;

/// The largest tag a program may use: the least upper bound MPI guarantees (`MPI_TAG_UB`).
pub const MAX_TAG: i64 = 32767;

/// The thread that runs the program's main code: the only one allowed to call MPI.
static MAIN: OnceLock<ThreadId> = OnceLock::new();

/// The world as this process sees it, kept on the main thread.
struct World {
    rank: i64,
    size: i64,
    /// Messages this rank sent to itself, oldest first, with their tags.
    mailbox: VecDeque<(i64, Vec<u8>)>,
    /// The MPI environment, when launched by `mpirun` with the feature; dropping it finalizes.
    #[cfg(feature = "mpi")]
    universe: Option<mpi::environment::Universe>,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Chooses Open MPI's point-to-point layer for a job whose ranks all run on this machine,
/// unless the user chose one (`OMPI_MCA_pml`): `ob1` over shared memory. Open MPI's default,
/// UCX, costs about 0.2 s more at start-up here, for no gain within one machine (measured:
/// `mpirun -n 1 mini run` of a one-line program, 0.31 s against 0.10 s). Must be called while
/// the process has a single thread (the CLI calls it before the program's thread starts).
pub fn prepare_environment() {
    use std::env::var_os;
    let (size, local) = (var_os("OMPI_COMM_WORLD_SIZE"), var_os("OMPI_COMM_WORLD_LOCAL_SIZE"));
    if launched_by_mpirun() && size.is_some() && size == local && var_os("OMPI_MCA_pml").is_none() {
        // SAFETY: the process has one thread (see above), so nothing reads or writes the
        // environment while it changes.
        unsafe { std::env::set_var("OMPI_MCA_pml", "ob1") };
    }
}

/// Marks the calling thread as the program's main thread and, when this process was started
/// by `mpirun` and mini has MPI, initializes MPI (every rank must, even one that never calls an
/// `mpi_*` builtin). Called by the CLI before the program runs.
pub fn start() {
    let _ = MAIN.set(std::thread::current().id());
    if launched_by_mpirun() {
        WORLD.with(|w| w.borrow_mut().get_or_insert_with(World::new).rank);
    }
}

/// Ends MPI if it was started: a failed program (`code` not 0) in a world of several ranks
/// aborts the whole job, so that no other rank waits forever for it; otherwise MPI is
/// finalized. Called by the CLI when the program has ended, before the process exits.
pub fn finish(code: u8) {
    let Some(world) = WORLD.with(|w| w.borrow_mut().take()) else { return };
    #[cfg(feature = "mpi")]
    if code != 0 && world.size > 1 {
        use mpi::topology::Communicator;
        mpi::topology::SimpleCommunicator::world().abort(i32::from(code));
    }
    let _ = code;
    #[cfg(feature = "mpi")]
    if world.is_mpi() {
        sys::no_delay_on_tcp_sockets();
    }
    drop(world);
}

/// What starts the report of an uncaught error: `rank R: ` on a rank of a world of several,
/// nothing otherwise (and on threads other than the main one, which has the world).
pub fn report_prefix() -> String {
    WORLD.with(|w| match &*w.borrow() {
        Some(world) if world.size > 1 => format!("rank {}: ", world.rank),
        _ => String::new(),
    })
}

/// Whether this process is one rank of a job that `mpirun` started (and mini can join it).
fn launched_by_mpirun() -> bool {
    cfg!(feature = "mpi") && std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some()
}

impl World {
    /// The world of this process: MPI's when launched by `mpirun`, else rank 0 of 1.
    fn new() -> World {
        #[cfg(feature = "mpi")]
        if launched_by_mpirun()
            && let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled)
        {
            use mpi::topology::Communicator;
            let w = universe.world();
            let (rank, size) = (i64::from(w.rank()), i64::from(w.size()));
            return World { rank, size, mailbox: VecDeque::new(), universe: Some(universe) };
        }
        World {
            rank: 0,
            size: 1,
            mailbox: VecDeque::new(),
            #[cfg(feature = "mpi")]
            universe: None,
        }
    }

    /// Whether the other ranks are real processes reached through MPI.
    fn is_mpi(&self) -> bool {
        #[cfg(feature = "mpi")]
        return self.universe.is_some();
        #[cfg(not(feature = "mpi"))]
        false
    }
}

/// Calls the MPI builtin `b`.
pub fn call(b: Builtin, args: &[Value], gil: Gil) -> Result<Value, Fail> {
    if *MAIN.get_or_init(|| std::thread::current().id()) != std::thread::current().id() {
        return Err(format!("{} can only be called from the main thread, not from a spawned one", b.name()).into());
    }
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        let world = w.get_or_insert_with(World::new);
        builtin(b, args, world, gil).map_err(Fail::from)
    })
}

/// The builtin `b` in `world`.
fn builtin(b: Builtin, args: &[Value], world: &mut World, gil: Gil) -> Result<Value, String> {
    let name = b.name();
    match (b, args) {
        (Builtin::MpiRank, []) => Ok(Value::Int(world.rank)),
        (Builtin::MpiSize, []) => Ok(Value::Int(world.size)),
        (Builtin::MpiBarrier, []) => barrier(world, gil).map(|()| Value::Nil),
        (Builtin::MpiSend, [v, dest]) => send(v, rank_arg(name, "destination", dest, world)?, 0, world, gil),
        (Builtin::MpiSend, [v, dest, tag]) => {
            send(v, rank_arg(name, "destination", dest, world)?, tag_arg(name, tag)?, world, gil)
        }
        (Builtin::MpiRecv, [src]) => recv(name, rank_arg(name, "source", src, world)?, None, world, gil),
        (Builtin::MpiRecv, [src, tag]) => {
            recv(name, rank_arg(name, "source", src, world)?, Some(tag_arg(name, tag)?), world, gil)
        }
        (Builtin::MpiBcast, [v, root]) => bcast(v, rank_arg(name, "root", root, world)?, world, gil),
        (Builtin::MpiGather, [v, root]) => {
            let root = rank_arg(name, "root", root, world)?;
            let all = gather(name, v, root, world, gil)?;
            Ok(all.map_or(Value::Nil, |all| Value::list(all, gil)))
        }
        (Builtin::MpiScatter, [items, root]) => scatter(items, rank_arg(name, "root", root, world)?, world, gil),
        (Builtin::MpiReduce, [v, op, root]) => {
            let op = reduce_op(name, op, v)?;
            let root = rank_arg(name, "root", root, world)?;
            let all = gather(name, v, root, world, gil)?;
            all.map_or(Ok(Value::Nil), |all| combine(name, op, all, gil))
        }
        (Builtin::MpiAllreduce, [v, op]) => {
            let op = reduce_op(name, op, v)?;
            let all = gather(name, v, 0, world, gil)?;
            let combined = match all {
                Some(all) => combine(name, op, all, gil)?,
                None => Value::Nil,
            };
            bcast(&combined, 0, world, gil)
        }
        _ => Err(arity_error(b, args.len())),
    }
}

/// The error of calling `b` with `n` arguments.
fn arity_error(b: Builtin, n: usize) -> String {
    let expected = match b {
        Builtin::MpiSend => "2 to 3 arguments",
        Builtin::MpiRecv => "1 to 2 arguments",
        Builtin::MpiBcast | Builtin::MpiGather | Builtin::MpiScatter | Builtin::MpiAllreduce => "2 arguments",
        Builtin::MpiReduce => "3 arguments",
        _ => "no arguments",
    };
    format!("{} expects {expected}, got {n}", b.name())
}

/// A rank argument (`what`: destination, source or root): an int from 0 to size - 1.
fn rank_arg(name: &str, what: &str, v: &Value, world: &World) -> Result<i64, String> {
    match v {
        Value::Int(r) if (0..world.size).contains(r) => Ok(*r),
        Value::Int(r) => Err(format!("{name}: {what} rank {r} is out of range (0 to {})", world.size - 1)),
        other => Err(format!("{name}: the {what} rank must be an int, not {}", other.type_name())),
    }
}

/// A tag argument: an int from 0 to `MAX_TAG`.
fn tag_arg(name: &str, v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(t) if (0..=MAX_TAG).contains(t) => Ok(*t),
        Value::Int(t) => Err(format!("{name}: tag {t} is out of range (0 to {MAX_TAG})")),
        other => Err(format!("{name}: the tag must be an int, not {}", other.type_name())),
    }
}

/// The bytes of `v`, or why it cannot be sent.
fn encode(name: &str, v: &Value, gil: Gil) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    super::wire::encode(v, gil, &mut bytes).map_err(|e| format!("{name}: {e}"))?;
    // MPI counts are 32-bit: every message, and every part of a gather or scatter, fits one
    if bytes.len() > i32::MAX as usize {
        return Err(format!("{name}: the value is too large to send ({} bytes; at most 2 GiB)", bytes.len()));
    }
    Ok(bytes)
}

/// `mpi_barrier()`: waits until every rank has called it.
fn barrier(world: &World, gil: Gil) -> Result<(), String> {
    if world.is_mpi() {
        gil.allow_threads(sys::barrier);
    }
    Ok(())
}

/// A value on its way to other ranks: its bytes (the `wire` format, or for an array its header
/// alone) and, for an array, the array itself, whose elements cross as MPI words read straight
/// from its buffer (mpi4py's upper-case calls), never copied into the bytes.
struct Parcel {
    head: Vec<u8>,
    array: Option<Rc<ArrayObj>>,
}

impl Parcel {
    /// The parcel of `v` for builtin `name`, or why `v` cannot be sent.
    fn of(name: &str, v: &Value, gil: Gil) -> Result<Parcel, String> {
        let Value::Array(a) = v else { return Ok(Parcel { head: encode(name, v, gil)?, array: None }) };
        if a.len() > i32::MAX as usize {
            return Err(format!("{name}: the array is too large to send ({} elements; at most 2^31 - 1)", a.len()));
        }
        let mut head = Vec::new();
        super::wire::put_array_header(a, &mut head);
        Ok(Parcel { head, array: Some(a.clone()) })
    }

    /// Where MPI reads the array's elements from (none for another value).
    fn words(&self) -> Option<sys::Words> {
        self.array.as_deref().map(sys::Words::of)
    }
}

/// What a head received from another rank announces: a value, or an array whose elements
/// arrive next, into the buffer made for them here.
enum Arrival {
    Value(Value),
    Array(ElemKind, Vec<usize>, ArrayObj),
}

impl Arrival {
    /// Reads a head: a value's bytes are decoded; an array's header makes a zeroed buffer of
    /// its shape for its elements.
    fn of(name: &str, head: &[u8], gil: Gil) -> Result<Arrival, String> {
        let Some((kind, dims)) = super::wire::array_header(head).map_err(|e| format!("{name}: {e}"))? else {
            return super::wire::decode(head, gil).map(Arrival::Value).map_err(|e| format!("{name}: {e}"));
        };
        let len = dims.iter().product();
        let buffer = ArrayObj::new(kind, len, 0).ok_or_else(|| format!("{name}: {}", cannot_allocate_shape(&dims)))?;
        Ok(Arrival::Array(kind, dims, buffer))
    }

    /// Where MPI writes the array's elements (none for a value).
    fn words(&self) -> Option<sys::Words> {
        match self {
            Arrival::Value(_) => None,
            Arrival::Array(_, _, buffer) => Some(sys::Words::of(buffer)),
        }
    }

    /// The value received, once the array's elements (if any) are in.
    fn value(self) -> Value {
        match self {
            Arrival::Value(v) => v,
            Arrival::Array(kind, dims, buffer) => {
                Value::Array(Rc::new(ArrayObj::from_buffer(kind, buffer.into_data(), &dims)))
            }
        }
    }
}

/// `mpi_send(v, dest, tag)`: sends a copy of `v` to rank `dest`; returns nil.
fn send(v: &Value, dest: i64, tag: i64, world: &mut World, gil: Gil) -> Result<Value, String> {
    if dest == world.rank {
        world.mailbox.push_back((tag, encode("mpi_send", v, gil)?));
        return Ok(Value::Nil);
    }
    let parcel = Parcel::of("mpi_send", v, gil)?;
    let (head, words) = (&parcel.head[..], parcel.words());
    // `parcel` keeps the array alive while MPI reads it without the GIL
    gil.allow_threads(move || sys::send(head, words, dest as i32, tag as i32));
    Ok(Value::Nil)
}

/// `mpi_recv(src, tag)`: the next value rank `src` sent with `tag` (any tag when `None`).
fn recv(name: &str, src: i64, tag: Option<i64>, world: &mut World, gil: Gil) -> Result<Value, String> {
    if src == world.rank {
        let at = world.mailbox.iter().position(|(t, _)| tag.is_none_or(|tag| *t == tag));
        let Some((_, bytes)) = at.and_then(|i| world.mailbox.remove(i)) else {
            let which = tag.map_or(String::new(), |t| format!(" with tag {t}"));
            return Err(format!(
                "{name}: rank {src} receives from itself, but it sent itself no message{which}: it would wait forever"
            ));
        };
        return super::wire::decode(&bytes, gil).map_err(|e| format!("{name}: {e}"));
    }
    let (head, tag) = gil.allow_threads(move || sys::recv(src as i32, tag.map(|t| t as i32)));
    let arrival = Arrival::of(name, &head, gil)?;
    if let Some(words) = arrival.words() {
        // the elements follow the header from the same rank with the same tag (MPI keeps order)
        gil.allow_threads(move || sys::recv_words(words, src as i32, tag));
    }
    Ok(arrival.value())
}

/// `mpi_bcast(v, root)`: the root's `v` on every rank (the root keeps its own value; the
/// others get copies); the other ranks' `v` is ignored.
fn bcast(v: &Value, root: i64, world: &World, gil: Gil) -> Result<Value, String> {
    let name = "mpi_bcast";
    if root != world.rank {
        let head = gil.allow_threads(move || sys::bcast(Vec::new(), root as i32));
        let arrival = Arrival::of(name, &head, gil)?;
        if let Some(words) = arrival.words() {
            gil.allow_threads(move || sys::bcast_words(words, root as i32));
        }
        return Ok(arrival.value());
    }
    let parcel = Parcel::of(name, v, gil)?;
    if world.is_mpi() {
        let (head, words) = (parcel.head.clone(), parcel.words());
        gil.allow_threads(move || {
            sys::bcast(head, root as i32);
            if let Some(words) = words {
                sys::bcast_words(words, root as i32);
            }
        });
    }
    Ok(v.clone())
}

/// Gathers every rank's `v` at `root`: the values in rank order there, `None` elsewhere. Two
/// collectives on every rank: the heads, then the arrays' elements (none from a rank whose
/// value is not an array), straight from each array's buffer into the root's.
fn gather(name: &str, v: &Value, root: i64, world: &World, gil: Gil) -> Result<Option<Vec<Value>>, String> {
    if !world.is_mpi() {
        return Ok(Some(vec![super::wire::decode(&encode(name, v, gil)?, gil)?]));
    }
    let parcel = Parcel::of(name, v, gil)?;
    let (head, words) = (&parcel.head[..], parcel.words());
    let heads = gil.allow_threads(move || sys::gather(head, root as i32));
    let Some(heads) = heads.map_err(|e| format!("{name}: {e}"))? else {
        gil.allow_threads(move || sys::gather_words(words, &[], root as i32));
        return Ok(None);
    };
    let arrivals = heads.iter().map(|h| Arrival::of(name, h, gil)).collect::<Result<Vec<_>, _>>()?;
    let targets: Vec<Option<sys::Words>> = arrivals.iter().map(Arrival::words).collect();
    let total: usize = targets.iter().flatten().map(|w| w.len).sum();
    if total > i32::MAX as usize {
        return Err(format!("{name}: the gathered arrays are too large ({total} elements; at most 2^31 - 1)"));
    }
    gil.allow_threads(move || sys::gather_words(words, &targets, root as i32));
    Ok(Some(arrivals.into_iter().map(Arrival::value).collect()))
}

/// `mpi_scatter(items, root)`: element i of the root's list `items` (one per rank) on rank i;
/// the other ranks' `items` is ignored. Arrays among the items cross as their elements.
fn scatter(items: &Value, root: i64, world: &World, gil: Gil) -> Result<Value, String> {
    let name = "mpi_scatter";
    let parcels = if root == world.rank {
        let Value::List(list) = items else {
            return Err(format!("{name}: the root's items must be a list, not {}", items.type_name()));
        };
        let items = list.borrow(gil).clone();
        if items.len() as i64 != world.size {
            return Err(format!(
                "{name}: the root's list has {} items, not one per rank ({})",
                items.len(),
                world.size
            ));
        }
        if !world.is_mpi() {
            return super::wire::decode(&encode(name, &items[0], gil)?, gil).map_err(|e| format!("{name}: {e}"));
        }
        let parcels = items.iter().map(|v| Parcel::of(name, v, gil)).collect::<Result<Vec<_>, _>>()?;
        let total: usize = parcels.iter().map(|p| p.head.len()).sum();
        let elements: usize = parcels.iter().filter_map(|p| p.array.as_ref()).map(|a| a.len()).sum();
        if total > i32::MAX as usize || elements > i32::MAX as usize {
            return Err(format!(
                "{name}: the items are too large to send (at most 2 GiB, and 2^31 - 1 array elements)"
            ));
        }
        parcels
    } else {
        Vec::new()
    };
    let heads: Vec<Vec<u8>> = parcels.iter().map(|p| p.head.clone()).collect();
    let head = gil.allow_threads(move || sys::scatter(heads, root as i32));
    let arrival = Arrival::of(name, &head, gil)?;
    let (sources, target) = (parcels.iter().map(Parcel::words).collect::<Vec<_>>(), arrival.words());
    gil.allow_threads(move || sys::scatter_words(&sources, target, root as i32));
    Ok(arrival.value())
}

/// The operations of `mpi_reduce` and `mpi_allreduce`.
#[derive(Clone, Copy)]
enum Op {
    Add,
    Mul,
    Min,
    Max,
}

/// The operation named by `op`, after checking that `v` is something it combines.
fn reduce_op(name: &str, op: &Value, v: &Value) -> Result<Op, String> {
    let op = match op {
        Value::Str(s) if &*s.text == "+" => Op::Add,
        Value::Str(s) if &*s.text == "*" => Op::Mul,
        Value::Str(s) if &*s.text == "min" => Op::Min,
        Value::Str(s) if &*s.text == "max" => Op::Max,
        Value::Str(s) => {
            return Err(format!("{name}: unknown operation \"{}\" (\"+\", \"*\", \"min\" or \"max\")", s.text));
        }
        other => return Err(format!("{name}: the operation must be a string, not {}", other.type_name())),
    };
    match v {
        Value::Int(_) | Value::Float(_) | Value::Array(_) => Ok(op),
        other => Err(format!("{name} combines numbers and arrays, not {}", other.type_name())),
    }
}

/// Combines `values` with `op` from left to right, in rank order, so a float result is the
/// same on every run.
fn combine(name: &str, op: Op, values: Vec<Value>, gil: Gil) -> Result<Value, String> {
    let mut values = values.into_iter();
    let mut acc = values.next().unwrap_or(Value::Nil);
    for v in values {
        acc = match (&acc, &v) {
            (Value::Array(a), Value::Array(b)) => Value::Array(std::rc::Rc::new(combine_arrays(name, op, a, b, gil)?)),
            (Value::Array(_), _) | (_, Value::Array(_)) => {
                return Err(format!("{name}: cannot combine {} with {}", acc.type_name(), v.type_name()));
            }
            _ => combine_numbers(op, &acc, &v, gil).map_err(|e| format!("{name}: {e}"))?,
        };
    }
    Ok(acc)
}

/// `a op b` for two numbers, with mini's arithmetic (int overflow is an error).
fn combine_numbers(op: Op, a: &Value, b: &Value, gil: Gil) -> Result<Value, String> {
    use crate::ast::BinOp;
    match op {
        Op::Add => super::ops::arith(BinOp::Add, a, b, gil),
        Op::Mul => super::ops::arith(BinOp::Mul, a, b, gil),
        Op::Min | Op::Max => {
            let less = super::ops::compare_op(BinOp::Lt, b, a, gil)?;
            let greater = super::ops::compare_op(BinOp::Gt, b, a, gil)?;
            let take_b = if matches!(op, Op::Min) { less } else { greater };
            Ok(if take_b { b.clone() } else { a.clone() })
        }
    }
}

/// Two arrays of the same shape and element type combined element by element.
fn combine_arrays(name: &str, op: Op, a: &ArrayObj, b: &ArrayObj, gil: Gil) -> Result<ArrayObj, String> {
    if a.kind != b.kind || a.shape() != b.shape() {
        return Err(format!("{name}: the ranks' arrays differ in shape or element type"));
    }
    if a.kind == ElemKind::Float {
        // floats cannot fail: combined word by word, as `combine_numbers` would
        let word = |e: &AtomicU64| f64::from_bits(e.load(Ordering::Relaxed));
        let data = a.data.iter().zip(b.data.iter()).map(|(x, y)| {
            let (x, y) = (word(x), word(y));
            let v = match op {
                Op::Add => x + y,
                Op::Mul => x * y,
                Op::Min if y < x => y,
                Op::Max if y > x => y,
                Op::Min | Op::Max => x,
            };
            AtomicU64::new(v.to_bits())
        });
        return Ok(ArrayObj::from_buffer(a.kind, data.collect(), &a.shape()));
    }
    let out = ArrayObj::from_buffer(a.kind, (0..a.len()).map(|_| AtomicU64::new(0)).collect(), &a.shape());
    for i in 0..a.len() {
        let v = combine_numbers(op, &a.get(i), &b.get(i), gil).map_err(|e| format!("{name}: {e}"))?;
        out.set(i, &v).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(out)
}

/// An array's elements as MPI reads or writes them: where they are and how many 8-byte words.
#[derive(Clone, Copy)]
pub struct Words {
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    ptr: *mut u64,
    len: usize,
}

// SAFETY: a `Words` is only an address and a length; it crosses to the code that runs without
// the GIL during one MPI call, while the array it points into is kept alive by its caller (a
// `Parcel` or an `Arrival` that outlives the call).
unsafe impl Send for Words {}

impl Words {
    /// The elements of `a`. `AtomicU64` has the size and alignment of `u64`, and writes
    /// through this pointer are allowed because the elements are atomics (interior mutability).
    fn of(a: &ArrayObj) -> Words {
        Words { ptr: a.data.as_ptr().cast::<u64>().cast_mut(), len: a.data.len() }
    }
}

/// Without MPI the world has one rank, so these are never called: every message goes to the
/// rank itself, through its mailbox.
#[cfg(not(feature = "mpi"))]
mod sys {
    pub use super::Words;
    pub fn barrier() {}
    pub fn send(_bytes: &[u8], _words: Option<Words>, _dest: i32, _tag: i32) {}
    pub fn recv(_src: i32, tag: Option<i32>) -> (Vec<u8>, i32) {
        (Vec::new(), tag.unwrap_or(0))
    }
    pub fn recv_words(_words: Words, _src: i32, _tag: i32) {}
    pub fn bcast_words(_words: Words, _root: i32) {}
    pub fn gather_words(_words: Option<Words>, _targets: &[Option<Words>], _root: i32) {}
    pub fn scatter_words(_sources: &[Option<Words>], _target: Option<Words>, _root: i32) {}
    pub fn bcast(bytes: Vec<u8>, _root: i32) -> Vec<u8> {
        bytes
    }
    pub fn gather(bytes: &[u8], _root: i32) -> Result<Option<Vec<Vec<u8>>>, String> {
        Ok(Some(vec![bytes.to_vec()]))
    }
    pub fn scatter(parts: Vec<Vec<u8>>, _root: i32) -> Vec<u8> {
        parts.into_iter().next().unwrap_or_default()
    }
}

/// The calls into MPI, on `MPI_COMM_WORLD`; each runs without the GIL, on the main thread.
#[cfg(feature = "mpi")]
mod sys {
    pub use super::Words;
    use mpi::Count;
    use mpi::datatype::{DynBuffer, DynBufferMut, Equivalence, Partition, PartitionMut};
    use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
    use mpi::topology::{Communicator, SimpleCommunicator};
    use mpi::traits::Root;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Turns off Nagle's algorithm on this process's TCP sockets (Open MPI's own: PMIx's
    /// connection to `mpirun`, say). `MPI_Finalize` sends `mpirun` a few small messages over that
    /// connection and waits for the answer; with Nagle's algorithm the later ones wait for the
    /// first one's acknowledgement, which Linux delays by 40 ms: 45 ms of every rank's end
    /// (measured with a C program too: `MPI_Finalize` 0.045 s, 0.003 s after this).
    pub fn no_delay_on_tcp_sockets() {
        let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
        let fds = entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<libc::c_int>().ok());
        for fd in fds.filter(|&fd| is_tcp(fd)) {
            let one: libc::c_int = 1;
            // SAFETY: `fd` is a TCP socket of this process and `one` a valid int of the size
            // given; TCP_NODELAY changes only when small segments are sent. (A descriptor
            // closed and reused meanwhile by a library thread is at worst another TCP socket
            // sending sooner, or an error ignored.)
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&raw const one).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
    }

    /// Whether `fd` is an IPv4 or IPv6 stream socket.
    fn is_tcp(fd: libc::c_int) -> bool {
        let mut kind: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        let mut addr: libc::sockaddr_storage = zeroed_storage();
        let mut addr_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `kind`, `addr` and their lengths are valid for the sizes given; on a
        // descriptor that is not a socket both calls fail and nothing is written.
        unsafe {
            libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, (&raw mut kind).cast(), &mut len) == 0
                && kind == libc::SOCK_STREAM
                && libc::getsockname(fd, (&raw mut addr).cast(), &mut addr_len) == 0
                && matches!(i32::from(addr.ss_family), libc::AF_INET | libc::AF_INET6)
        }
    }

    /// A `sockaddr_storage` of zeros, for `getsockname` to fill.
    fn zeroed_storage() -> libc::sockaddr_storage {
        // SAFETY: `sockaddr_storage` is a C struct of integers, for which all-zero is valid.
        unsafe { std::mem::zeroed() }
    }

    /// Waits for every rank.
    pub fn barrier() {
        use mpi::collective::CommunicatorCollectives;
        SimpleCommunicator::world().barrier();
    }

    /// The elements `w` points at, as a buffer MPI reads.
    fn readable(w: &Words) -> DynBuffer<'_> {
        // SAFETY: `w` points at `w.len` initialized 8-byte words of an array its caller keeps
        // alive for the whole MPI call this buffer is made for; MPI only reads them. A thread
        // of this rank may store into the array meanwhile (the GIL is released): each element
        // then arrives old or new (lang-spec/processes.md says which is not specified).
        unsafe { DynBuffer::from_raw(w.ptr.cast_const(), w.len as Count, u64::equivalent_datatype()) }
    }

    /// The elements `w` points at, as a buffer MPI writes.
    fn writable(w: &Words) -> DynBufferMut<'_> {
        // SAFETY: `w` points at `w.len` words of a buffer made for this receive (an `Arrival`'s,
        // not yet a value any other code can reach) or, for the root of a broadcast, of the
        // array being sent, which MPI then only reads; each stays alive for the whole call.
        unsafe { DynBufferMut::from_raw(w.ptr, w.len as Count, u64::equivalent_datatype()) }
    }

    /// Sends `bytes` to rank `dest` with `tag` (blocking, standard mode), then an array's
    /// elements as a second message with the same tag.
    pub fn send(bytes: &[u8], words: Option<Words>, dest: i32, tag: i32) {
        let world = SimpleCommunicator::world();
        let process = world.process_at_rank(dest);
        process.send_with_tag(bytes, tag);
        if let Some(w) = words {
            process.send_with_tag(&readable(&w), tag);
        }
    }

    /// Receives the next message from rank `src` with `tag` (any tag when `None`): its bytes
    /// and its tag.
    pub fn recv(src: i32, tag: Option<i32>) -> (Vec<u8>, i32) {
        let world = SimpleCommunicator::world();
        let process = world.process_at_rank(src);
        let probed = match tag {
            Some(tag) => process.matched_probe_with_tag(tag),
            None => process.matched_probe(),
        };
        let (bytes, status) = probed.matched_receive_vec::<u8>();
        (bytes, status.tag())
    }

    /// Receives an array's elements, sent by rank `src` with `tag` right after its header.
    pub fn recv_words(words: Words, src: i32, tag: i32) {
        let world = SimpleCommunicator::world();
        world.process_at_rank(src).receive_into_with_tag(&mut writable(&words), tag);
    }

    /// Broadcasts an array's elements from the root into every other rank's buffer.
    pub fn bcast_words(words: Words, root: i32) {
        SimpleCommunicator::world().process_at_rank(root).broadcast_into(&mut writable(&words));
    }

    /// Gathers the arrays' elements at the root: each rank sends its array's (or nothing);
    /// the root gets them in one buffer and copies each rank's into its target.
    pub fn gather_words(words: Option<Words>, targets: &[Option<Words>], root: i32) {
        let world = SimpleCommunicator::world();
        let root_process = world.process_at_rank(root);
        let empty = Words { ptr: std::ptr::NonNull::dangling().as_ptr(), len: 0 };
        let mine = readable(words.as_ref().unwrap_or(&empty));
        if world.rank() != root {
            root_process.gather_varcount_into(&mine);
            return;
        }
        let counts: Vec<i32> = targets.iter().map(|t| t.map_or(0, |w| w.len as i32)).collect();
        let displs = offsets(&counts);
        let mut all = vec![0u64; counts.iter().map(|&c| c as usize).sum()];
        root_process.gather_varcount_into_root(&mine, &mut PartitionMut::new(&mut all[..], &counts[..], &displs[..]));
        for (t, at) in targets.iter().zip(displs) {
            if let Some(w) = t {
                // SAFETY: `w` is a buffer of `w.len` words made for this gather, reachable by
                // no other code; `all` holds `w.len` words from `at` (its count), and the two
                // are different allocations.
                unsafe { std::ptr::copy_nonoverlapping(all.as_ptr().add(at as usize), w.ptr, w.len) };
            }
        }
    }

    /// Scatters the arrays' elements from the root (copied into one buffer there): each rank
    /// gets its item's (nothing for an item that is not an array) into `target`.
    pub fn scatter_words(sources: &[Option<Words>], target: Option<Words>, root: i32) {
        let world = SimpleCommunicator::world();
        let root_process = world.process_at_rank(root);
        let empty = Words { ptr: std::ptr::NonNull::dangling().as_ptr(), len: 0 };
        let mut mine = writable(target.as_ref().unwrap_or(&empty));
        if world.rank() != root {
            root_process.scatter_varcount_into(&mut mine);
            return;
        }
        let counts: Vec<i32> = sources.iter().map(|s| s.map_or(0, |w| w.len as i32)).collect();
        let displs = offsets(&counts);
        let mut all = Vec::with_capacity(counts.iter().map(|&c| c as usize).sum());
        for w in sources.iter().flatten() {
            // SAFETY: `w` points at `w.len` elements of an array the caller keeps alive; they
            // are read as the atomics they are (a thread may store into them meanwhile).
            let elements = unsafe { std::slice::from_raw_parts(w.ptr.cast_const().cast::<AtomicU64>(), w.len) };
            all.extend(elements.iter().map(|e| e.load(Ordering::Relaxed)));
        }
        root_process.scatter_varcount_into_root(&Partition::new(&all[..], &counts[..], &displs[..]), &mut mine);
    }

    /// Gathers every rank's `bytes` at `root`: their lengths, then them; `Some` of them in
    /// rank order at the root, `None` elsewhere. The root fails (and its failure aborts the
    /// job) when the parts together pass MPI's 32-bit counts.
    pub fn gather(bytes: &[u8], root: i32) -> Result<Option<Vec<Vec<u8>>>, String> {
        let world = SimpleCommunicator::world();
        let root_process = world.process_at_rank(root);
        let len = bytes.len() as i32;
        if world.rank() != root {
            root_process.gather_into(&len);
            root_process.gather_varcount_into(bytes);
            return Ok(None);
        }
        let mut counts = vec![0i32; world.size() as usize];
        root_process.gather_into_root(&len, &mut counts[..]);
        let total: i64 = counts.iter().map(|&c| i64::from(c)).sum();
        if total > i64::from(i32::MAX) {
            return Err(format!("the gathered values are too large ({total} bytes; at most 2 GiB)"));
        }
        let displs = offsets(&counts);
        let mut all = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
        let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
        root_process.gather_varcount_into_root(bytes, &mut partition);
        Ok(Some(split(&all, &counts)))
    }

    /// Scatters the root's `parts` (one per rank): their lengths, then them; each rank's part.
    pub fn scatter(parts: Vec<Vec<u8>>, root: i32) -> Vec<u8> {
        let world = SimpleCommunicator::world();
        let root_process = world.process_at_rank(root);
        let mut len = 0i32;
        if world.rank() != root {
            root_process.scatter_into(&mut len);
            let mut mine = vec![0u8; len as usize];
            root_process.scatter_varcount_into(&mut mine[..]);
            return mine;
        }
        let counts: Vec<i32> = parts.iter().map(|p| p.len() as i32).collect();
        root_process.scatter_into_root(&counts[..], &mut len);
        let displs = offsets(&counts);
        let all = parts.concat();
        let partition = Partition::new(&all[..], &counts[..], &displs[..]);
        let mut mine = vec![0u8; len as usize];
        root_process.scatter_varcount_into_root(&partition, &mut mine[..]);
        mine
    }

    /// Where each of the parts of these lengths starts in their concatenation.
    fn offsets(counts: &[i32]) -> Vec<i32> {
        counts.iter().scan(0, |at, &c| Some(std::mem::replace(at, *at + c))).collect()
    }

    /// The concatenation `all` cut into parts of these lengths.
    fn split(all: &[u8], counts: &[i32]) -> Vec<Vec<u8>> {
        let mut at = 0;
        counts
            .iter()
            .map(|&c| {
                let part = all[at..at + c as usize].to_vec();
                at += c as usize;
                part
            })
            .collect()
    }

    /// Broadcasts the root's `bytes`: their length, then them; returns them on every rank.
    pub fn bcast(mut bytes: Vec<u8>, root: i32) -> Vec<u8> {
        let world = SimpleCommunicator::world();
        let root = world.process_at_rank(root);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        bytes
    }
}
