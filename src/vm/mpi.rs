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
use crate::value::Value;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::OnceLock;
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
    drop(world);
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
        _ => Err(arity_error(b, args.len())),
    }
}

/// The error of calling `b` with `n` arguments.
fn arity_error(b: Builtin, n: usize) -> String {
    let expected = match b {
        Builtin::MpiSend => "2 to 3 arguments",
        Builtin::MpiRecv => "1 to 2 arguments",
        Builtin::MpiBcast => "2 arguments",
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
    Ok(bytes)
}

/// `mpi_barrier()`: waits until every rank has called it.
fn barrier(world: &World, gil: Gil) -> Result<(), String> {
    if world.is_mpi() {
        gil.allow_threads(sys::barrier);
    }
    Ok(())
}

/// `mpi_send(v, dest, tag)`: sends a copy of `v` to rank `dest`; returns nil.
fn send(v: &Value, dest: i64, tag: i64, world: &mut World, gil: Gil) -> Result<Value, String> {
    let bytes = encode("mpi_send", v, gil)?;
    if dest == world.rank {
        world.mailbox.push_back((tag, bytes));
    } else {
        gil.allow_threads(move || sys::send(&bytes, dest as i32, tag as i32));
    }
    Ok(Value::Nil)
}

/// `mpi_recv(src, tag)`: the next value rank `src` sent with `tag` (any tag when `None`).
fn recv(name: &str, src: i64, tag: Option<i64>, world: &mut World, gil: Gil) -> Result<Value, String> {
    let bytes = if src == world.rank {
        let at = world.mailbox.iter().position(|(t, _)| tag.is_none_or(|tag| *t == tag));
        let Some((_, bytes)) = at.and_then(|i| world.mailbox.remove(i)) else {
            let which = tag.map_or(String::new(), |t| format!(" with tag {t}"));
            return Err(format!(
                "{name}: rank {src} receives from itself, but it sent itself no message{which}: it would wait forever"
            ));
        };
        bytes
    } else {
        gil.allow_threads(move || sys::recv(src as i32, tag.map(|t| t as i32)))
    };
    super::wire::decode(&bytes, gil).map_err(|e| format!("{name}: {e}"))
}

/// `mpi_bcast(v, root)`: the root's `v` on every rank (the root keeps its own value; the
/// others get copies); the other ranks' `v` is ignored.
fn bcast(v: &Value, root: i64, world: &World, gil: Gil) -> Result<Value, String> {
    if root != world.rank {
        let bytes = gil.allow_threads(move || sys::bcast(Vec::new(), root as i32));
        return super::wire::decode(&bytes, gil).map_err(|e| format!("mpi_bcast: {e}"));
    }
    let bytes = encode("mpi_bcast", v, gil)?;
    if world.is_mpi() {
        gil.allow_threads(move || sys::bcast(bytes, root as i32));
    }
    Ok(v.clone())
}

/// Without MPI the world has one rank, so these are never called: every message goes to the
/// rank itself, through its mailbox.
#[cfg(not(feature = "mpi"))]
mod sys {
    pub fn barrier() {}
    pub fn send(_bytes: &[u8], _dest: i32, _tag: i32) {}
    pub fn recv(_src: i32, _tag: Option<i32>) -> Vec<u8> {
        Vec::new()
    }
    pub fn bcast(bytes: Vec<u8>, _root: i32) -> Vec<u8> {
        bytes
    }
}

/// The calls into MPI, on `MPI_COMM_WORLD`; each runs without the GIL, on the main thread.
#[cfg(feature = "mpi")]
mod sys {
    use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
    use mpi::topology::{Communicator, SimpleCommunicator};
    use mpi::traits::Root;

    /// Waits for every rank.
    pub fn barrier() {
        use mpi::collective::CommunicatorCollectives;
        SimpleCommunicator::world().barrier();
    }

    /// Sends `bytes` to rank `dest` with `tag` (blocking, standard mode).
    pub fn send(bytes: &[u8], dest: i32, tag: i32) {
        SimpleCommunicator::world().process_at_rank(dest).send_with_tag(bytes, tag);
    }

    /// Receives the next message from rank `src` with `tag` (any tag when `None`).
    pub fn recv(src: i32, tag: Option<i32>) -> Vec<u8> {
        let world = SimpleCommunicator::world();
        let process = world.process_at_rank(src);
        let probed = match tag {
            Some(tag) => process.matched_probe_with_tag(tag),
            None => process.matched_probe(),
        };
        probed.matched_receive_vec::<u8>().0
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
