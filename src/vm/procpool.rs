//! `pmap(f, items, workers, "processes")`: a process pool, as joblib's, built on fork
//! (lang-spec/processes.md). Each call forks `workers` children (fork per call, not a
//! persistent pool: every call's children see the program as it is at the call, as pymp's
//! do); the parent hands out work and collects results, and computes nothing.
//!
//! Communicate the minimum: items are never sent (the children have them, copy-on-write, read
//! when `pmap` started); the parent sends each worker *batches*, ranges of item indices, 16
//! bytes each, through the worker's task pipe, and the worker sends back each batch's results
//! in the `wire` format through its results pipe, with the time it spent computing and
//! encoding. Batches are sized from those times ([`Plan`]): the first is one item, later ones
//! aim at [`TARGET_BATCH`] of computing, capped by guided scheduling (at most
//! `remaining / (2 * workers)` items) so that workers finish together. Each worker has at most
//! two batches outstanding, so it finds its next batch waiting when it finishes one.
//!
//! Errors: a failing call sends its item index and report; the parent hands out no index past
//! the lowest failing index known, lets the batches below it finish, and raises that item's
//! error with the child's stack on top of the caller's, the message unchanged (as thread
//! `pmap`). A worker that ends without sending its batch's results fails at that batch's first
//! item. Every child is reaped on every path: told to stop (the end of its task pipe) when all
//! went well, killed at once otherwise (failure, Ctrl-C); each child is killed by the system if
//! the parent dies (`forked::fork_process`).
//!
//! Without the GIL this module only polls pipes (the parent's wait); everything else runs
//! under the GIL, which the parent and each child hold in their own process.

use super::forked::{self, BUDGET, Child};
use super::pool::Items;
use super::{Fail, Shared, Vm, wire};
use crate::gil::Gil;
use crate::source::{Diagnostic, Span};
use crate::value::Value;
use std::collections::VecDeque;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a process `pmap` maps, from its checked arguments (`pool::pmap`).
pub(super) struct Map {
    pub(super) f: Value,
    pub(super) items: Items,
    pub(super) n: usize,
    /// The draw of the caller's generator that seeds each item's (lang-spec/random.md).
    pub(super) seed: u64,
}

/// The computing time a batch aims at, once the time of a call is known.
const TARGET_BATCH: Duration = Duration::from_millis(4);

/// Batches a worker may have outstanding: the one it runs and the one it will run next.
const OUTSTANDING: usize = 2;

/// How long the parent's wait for results lasts before it looks at Ctrl-C again.
const POLL_MS: libc::c_int = 10;

/// A task message: a batch's start and end indices, 8 bytes each (little-endian).
const TASK_BYTES: usize = 16;

/// The longest message a worker sends (its length is written in 4 bytes).
const MAX_MESSAGE: usize = u32::MAX as usize;

/// The tags of a worker's messages: a batch's results, or an item's error.
const RESULTS: u8 = 0;
const FAILURE: u8 = 1;

/// What a worker did for `--stats`, summed over a run's process `pmap` calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerTotals {
    pub items: u64,
    pub batches: u64,
    /// Bytes of tasks sent to the worker, and bytes of results received from it.
    pub sent: u64,
    pub received: u64,
    /// Time in the calls of `f`, in the worker.
    pub compute: Duration,
    /// Time encoding results (in the worker) and decoding them (in the parent).
    pub serialize: Duration,
}

/// The totals of every worker number (index: number - 1), and the number of calls.
static TOTALS: Mutex<(u64, Vec<WorkerTotals>)> = Mutex::new((0, Vec::new()));

/// The number of process `pmap` calls of the run, and each worker number's totals.
pub fn totals() -> (u64, Vec<WorkerTotals>) {
    TOTALS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The `--stats` section on process `pmap` calls (empty when there was none): a line per
/// worker number, summed over the calls (lang-spec/cli.md).
pub fn report() -> String {
    let (calls, workers) = totals();
    if calls == 0 {
        return String::new();
    }
    let mut out = format!("pmap processes: {calls} call{}\n", if calls == 1 { "" } else { "s" });
    for (i, t) in workers.iter().enumerate() {
        out.push_str(&format!(
            "  worker {}: {} items, {} batches, {} bytes sent, {} bytes received, {:.3} ms computing, {:.3} ms serializing\n",
            i + 1,
            t.items,
            t.batches,
            t.sent,
            t.received,
            t.compute.as_secs_f64() * 1000.0,
            t.serialize.as_secs_f64() * 1000.0
        ));
    }
    out
}

/// Checks that a process `pmap` may fork here: on the main thread, no spawned thread running.
pub(super) fn check(on_main: bool) -> Result<(), Fail> {
    forked::check_alone("pmap(..., \"processes\")", on_main)
}

/// Runs the map on `workers` child processes (fewer when there are fewer items, or when the
/// process budget is smaller); the caller has checked the arguments, `check`ed the thread,
/// and made sure there is at least one item.
pub(super) fn pmap(map: Map, workers: usize, room: usize, shared: &Rc<Shared>, gil: Gil) -> Result<Value, Fail> {
    let budget = BUDGET.load(Ordering::Relaxed);
    let workers = workers.min(map.n).min((budget - 1).max(1) as usize);
    super::flush_stdout();
    let mut pool = Pool::start(&map, workers, room, shared, gil)?;
    let outcome = pool.run(gil);
    pool.finish(outcome.is_ok());
    record(&pool.workers);
    outcome
}

/// A worker as its parent sees it.
struct Worker {
    /// Its process id and the read end of its results pipe.
    child: Child,
    /// The write end of its task pipe (-1 once closed).
    tasks: libc::c_int,
    /// Bytes read from it that do not yet make a whole message.
    inbox: Vec<u8>,
    /// Batches sent and not yet answered, oldest first.
    outstanding: VecDeque<Range<usize>>,
    /// Whether its results pipe is still open (it has not ended).
    open: bool,
    totals: WorkerTotals,
}

/// The parent's side of one call.
struct Pool {
    workers: Vec<Worker>,
    plan: Plan,
    results: Vec<Value>,
    /// The lowest failing index known and its error.
    error: Option<(usize, Fail)>,
}

/// Which indices go out next, in batches of which size.
struct Plan {
    next: usize,
    /// No index from here on is handed out: the item count, or the lowest failing index known.
    limit: usize,
    workers: usize,
    /// The latest measured computing time of one call.
    per_item: Option<Duration>,
}

impl Plan {
    /// The next batch: one item until a call has been timed, then about [`TARGET_BATCH`] of
    /// calls, at most `remaining / (2 * workers)` items (at least one).
    fn next_batch(&mut self) -> Option<Range<usize>> {
        if self.next >= self.limit {
            return None;
        }
        let remaining = self.limit - self.next;
        let wanted = match self.per_item {
            None => 1,
            Some(t) => (TARGET_BATCH.as_nanos() / t.as_nanos().max(1)).clamp(1, usize::MAX as u128) as usize,
        };
        let size = wanted.min((remaining / (2 * self.workers)).max(1));
        let batch = self.next..self.next + size;
        self.next = batch.end;
        Some(batch)
    }
}

impl Pool {
    /// Forks the workers, then makes room for the results (after forking, so that the children
    /// do not copy it); on a failure, kills and reaps the workers already started.
    fn start(map: &Map, workers: usize, room: usize, shared: &Rc<Shared>, gil: Gil) -> Result<Pool, Fail> {
        let plan = Plan { next: 0, limit: map.n, workers, per_item: None };
        let mut pool = Pool { workers: Vec::with_capacity(workers), plan, results: Vec::new(), error: None };
        for _ in 0..workers {
            match fork_worker(map, workers, &pool.workers, room, shared, gil) {
                Ok(w) => pool.workers.push(w),
                Err(message) => {
                    pool.finish(false);
                    return Err(message.into());
                }
            }
        }
        if pool.results.try_reserve_exact(map.n).is_err() {
            pool.finish(false);
            return Err(format!("cannot allocate a list of {} elements", map.n).into());
        }
        pool.results.resize(map.n, Value::Nil);
        Ok(pool)
    }

    /// Hands out batches and collects results until every item below the limit is done:
    /// the results in input order, or the lowest failing index's error.
    fn run(&mut self, gil: Gil) -> Result<Value, Fail> {
        loop {
            self.top_up();
            if self.done() {
                break;
            }
            let ready = self.wait(gil)?;
            for w in ready {
                self.receive(w, gil);
            }
            if !self.workers.iter().any(|w| w.open) && !self.done() {
                // (not expected: a worker ends with batches outstanding, which fail)
                self.fail(self.plan.next, Fail::Msg("pmap: every worker process ended".into()));
            }
        }
        match self.error.take() {
            Some((_, fail)) => Err(fail),
            None => Ok(Value::list(std::mem::take(&mut self.results), gil)),
        }
    }

    /// Gives each live worker batches until it has [`OUTSTANDING`] of them, a round at a time
    /// (every worker gets its first batch before any gets its second).
    fn top_up(&mut self) {
        for round in 1..=OUTSTANDING {
            for w in self.workers.iter_mut().filter(|w| w.open && w.outstanding.len() < round) {
                let Some(batch) = self.plan.next_batch() else { return };
                send_task(w, batch);
            }
        }
    }

    /// Whether no batch that holds an item below the limit is outstanding, and none is left
    /// to hand out.
    fn done(&self) -> bool {
        self.plan.next >= self.plan.limit
            && self.workers.iter().all(|w| w.outstanding.iter().all(|b| b.start >= self.plan.limit))
    }

    /// Waits, without the GIL, until some workers' results pipes have bytes or their end:
    /// their indices. On the main thread (the only one that gets here), Ctrl-C is `interrupted`.
    fn wait(&self, gil: Gil) -> Result<Vec<usize>, Fail> {
        let mut fds: Vec<libc::pollfd> = self
            .workers
            .iter()
            .map(|w| libc::pollfd { fd: if w.open { w.child.fd } else { -1 }, events: libc::POLLIN, revents: 0 })
            .collect();
        loop {
            let (ready, polled) = gil.allow_threads(move || {
                // SAFETY: `fds` is a valid array of `fds.len()` pollfds; negative fds are ignored.
                let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_MS) };
                (r, fds)
            });
            fds = polled;
            if crate::gil::interrupted() {
                return Err("interrupted".into());
            }
            if ready > 0 {
                return Ok(fds.iter().enumerate().filter(|(_, p)| p.revents != 0).map(|(i, _)| i).collect());
            }
        }
    }

    /// Reads what worker `w` sent and handles its whole messages; at the end of its pipe, the
    /// worker has ended: its outstanding batches fail.
    fn receive(&mut self, w: usize, gil: Gil) {
        let worker = &mut self.workers[w];
        let got = read_some(worker.child.fd, &mut worker.inbox);
        worker.totals.received += got as u64;
        if got == 0 {
            worker.open = false;
        }
        while let Some(message) = take_message(&mut self.workers[w].inbox) {
            self.handle(w, &message, gil);
        }
        if !self.workers[w].open {
            self.ended(w);
        }
    }

    /// Worker `w` ended (its results pipe is at its end): its first outstanding batch, if any,
    /// fails at its first item with how the process ended.
    fn ended(&mut self, w: usize) {
        let worker = &mut self.workers[w];
        forked::close(worker.tasks);
        worker.tasks = -1;
        let Some(first) = worker.outstanding.front().map(|b| b.start) else { return };
        worker.outstanding.clear();
        let status = forked::reap(worker.child.pid);
        worker.child.pid = 0;
        let how = forked::describe(status);
        self.fail(first, Fail::Msg(format!("pmap worker {}: the process ended without a result ({how})", w + 1)));
    }

    /// Handles one message of worker `w`: the results of its oldest outstanding batch, or the
    /// error of one of its items.
    fn handle(&mut self, w: usize, message: &[u8], gil: Gil) {
        let Some(batch) = self.workers[w].outstanding.pop_front() else {
            return self.fail(0, corrupt(w));
        };
        let totals = &mut self.workers[w].totals;
        totals.batches += 1;
        let mut r = Cursor { bytes: message, pos: 0 };
        let (Some(tag), Some(compute), Some(encode)) = (r.byte(), r.u64(), r.u64()) else {
            return self.fail(batch.start, corrupt(w));
        };
        totals.compute += Duration::from_nanos(compute);
        totals.serialize += Duration::from_nanos(encode);
        match tag {
            RESULTS => {
                totals.items += batch.len() as u64;
                let calls = u32::try_from(batch.len()).unwrap_or(u32::MAX).max(1);
                self.plan.per_item = Some(Duration::from_nanos(compute) / calls);
                self.store(w, batch, &mut r, gil);
            }
            FAILURE => {
                let Some(i) = r.u64().map(|i| i as usize).filter(|i| batch.contains(i)) else {
                    return self.fail(batch.start, corrupt(w));
                };
                totals.items += (i - batch.start + 1) as u64;
                let report = wire::decode(r.rest(), gil).ok().and_then(|v| forked::report_from(&v, gil));
                match report {
                    Some(d) => self.fail(i, Fail::Call(Box::new(d))),
                    None => self.fail(i, corrupt(w)),
                }
            }
            _ => self.fail(batch.start, corrupt(w)),
        }
    }

    /// Decodes a batch's results into their places (a batch past a known failure is skipped).
    fn store(&mut self, w: usize, batch: Range<usize>, r: &mut Cursor, gil: Gil) {
        if batch.start >= self.plan.limit {
            return;
        }
        let started = Instant::now();
        for i in batch.clone() {
            let value = r.value().and_then(|bytes| wire::decode(bytes, gil).ok());
            let Some(value) = value else { return self.fail(batch.start, corrupt(w)) };
            self.results[i] = value;
        }
        self.workers[w].totals.serialize += started.elapsed();
    }

    /// Records the error of item `i`, keeping the lowest failing index's; no index from `i` on
    /// is handed out any more.
    fn fail(&mut self, i: usize, fail: Fail) {
        if self.error.as_ref().is_none_or(|(j, _)| i < *j) {
            self.error = Some((i, fail));
        }
        self.plan.limit = self.plan.limit.min(i);
    }

    /// Ends every worker and reaps it: told to stop (its task pipe closed) after a success,
    /// killed otherwise.
    fn finish(&mut self, success: bool) {
        for w in &mut self.workers {
            if w.tasks >= 0 {
                forked::close(w.tasks);
                w.tasks = -1;
            }
        }
        let live: Vec<Child> = self
            .workers
            .iter_mut()
            .filter(|w| w.child.pid != 0)
            .map(|w| Child { pid: std::mem::take(&mut w.child.pid), fd: w.child.fd })
            .collect();
        if success {
            for c in &live {
                forked::close(c.fd);
                forked::reap(c.pid);
            }
        } else {
            forked::stop_all(&live);
        }
        // workers already reaped had their results pipes left open
        for w in &self.workers {
            if !live.iter().any(|c| c.fd == w.child.fd) {
                forked::close(w.child.fd);
            }
        }
    }
}

/// Sends `batch` to worker `w`.
fn send_task(w: &mut Worker, batch: Range<usize>) {
    let mut task = [0u8; TASK_BYTES];
    task[..8].copy_from_slice(&(batch.start as u64).to_le_bytes());
    task[8..].copy_from_slice(&(batch.end as u64).to_le_bytes());
    forked::write_all(w.tasks, &task);
    w.totals.sent += TASK_BYTES as u64;
    w.outstanding.push_back(batch);
}

/// The error of a message that is not what a worker sends.
fn corrupt(w: usize) -> Fail {
    Fail::Msg(format!("pmap worker {}: corrupt message from another process", w + 1))
}

/// Adds a call's worker totals to the run's.
fn record(workers: &[Worker]) {
    let mut all = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    all.0 += 1;
    if all.1.len() < workers.len() {
        all.1.resize(workers.len(), WorkerTotals::default());
    }
    for (sum, w) in all.1.iter_mut().zip(workers) {
        let t = &w.totals;
        sum.items += t.items;
        sum.batches += t.batches;
        sum.sent += t.sent;
        sum.received += t.received;
        sum.compute += t.compute;
        sum.serialize += t.serialize;
    }
}

/// Reads what `fd` has (waiting for it if need be) onto `inbox`: the byte count, 0 at its end
/// (or on an error, which ends the pipe as well).
// never inlined: its 64 KiB buffer would otherwise join the frame of whatever it is inlined
// into (`pool::pmap` had a 64 KiB frame, and recursion through pmap overflowed the stack before
// reaching mini's frame limit, tests/pmap/err_recursion_through_pmap.mini)
#[inline(never)]
fn read_some(fd: libc::c_int, inbox: &mut Vec<u8>) -> usize {
    let mut buf = [0u8; 65536];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes; `fd` is an open read end of this call.
        let got = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if got > 0 {
            inbox.extend_from_slice(&buf[..got as usize]);
            return got as usize;
        }
        if got == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return 0;
        }
    }
}

/// Takes the first whole message (a 4-byte length, then that many bytes) off `inbox`.
fn take_message(inbox: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = u32::from_le_bytes(inbox.get(..4)?.try_into().ok()?) as usize;
    if inbox.len() < 4 + len {
        return None;
    }
    let message = inbox[4..4 + len].to_vec();
    inbox.drain(..4 + len);
    Some(message)
}

/// A reader over a message's bytes.
struct Cursor<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl<'b> Cursor<'b> {
    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len())?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// One value's bytes: a 4-byte length, then that many bytes.
    fn value(&mut self) -> Option<&'b [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(len)
    }

    fn rest(&mut self) -> &'b [u8] {
        let s = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        s
    }
}

/// Forks worker number `earlier.len() + 1` of `count`: in the parent, returns it; in the child,
/// runs batches until told to stop, then exits (never returns).
fn fork_worker(
    map: &Map,
    count: usize,
    earlier: &[Worker],
    room: usize,
    shared: &Rc<Shared>,
    gil: Gil,
) -> Result<Worker, String> {
    const WHAT: &str = "pmap(..., \"processes\")";
    let tasks = forked::pipe(WHAT)?;
    let results = match forked::pipe(WHAT) {
        Ok(fds) => fds,
        Err(e) => {
            tasks.iter().for_each(|&fd| forked::close(fd));
            return Err(e);
        }
    };
    let pid = match forked::fork_process(WHAT) {
        Ok(pid) => pid,
        Err(e) => {
            tasks.iter().chain(&results).for_each(|&fd| forked::close(fd));
            return Err(e);
        }
    };
    if pid == 0 {
        // the parent's ends, this worker's and the earlier workers'
        forked::close(tasks[1]);
        forked::close(results[0]);
        for w in earlier {
            forked::close(w.tasks);
            forked::close(w.child.fd);
        }
        BUDGET.store((BUDGET.load(Ordering::Relaxed) / (count as i64 + 1)).max(1), Ordering::Relaxed);
        worker_main(map, tasks[0], results[1], room, shared, gil);
    }
    forked::close(tasks[0]);
    forked::close(results[1]);
    Ok(Worker {
        child: Child { pid, fd: results[0] },
        tasks: tasks[1],
        inbox: Vec::new(),
        outstanding: VecDeque::new(),
        open: true,
        totals: WorkerTotals::default(),
    })
}

/// A worker process: runs each batch read from `tasks` and sends its message to `results`,
/// until the task pipe ends; then flushes its output and exits.
fn worker_main(map: &Map, tasks: libc::c_int, results: libc::c_int, room: usize, shared: &Rc<Shared>, gil: Gil) -> ! {
    let mut vm = Vm::for_calls(gil, shared.clone(), room, true);
    let mut values = Vec::new();
    let mut out = Vec::new();
    while let Some(batch) = read_task(tasks) {
        out.clear();
        out.extend_from_slice(&[0; 4]);
        run_batch(map, batch, &mut vm, &mut values, &mut out, gil);
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_le_bytes());
        // the batch's output first: a worker killed later (after another item failed) has
        // printed what its finished batches printed, as a pool thread would have
        super::flush_stdout();
        forked::write_all(results, &out);
    }
    drop(vm);
    super::flush_stdout();
    // SAFETY: `_exit` ends the child without running the parent's exit handlers or destructors
    // (which belong to the parent's copy of the program).
    unsafe { libc::_exit(0) }
}

/// The next batch from the parent, `None` at the end of the task pipe (or of the parent).
fn read_task(fd: libc::c_int) -> Option<Range<usize>> {
    let mut task = [0u8; TASK_BYTES];
    let mut have = 0;
    while have < TASK_BYTES {
        // SAFETY: `task[have..]` is valid for `TASK_BYTES - have` bytes; `fd` is this worker's
        // open task pipe.
        let got = unsafe { libc::read(fd, task[have..].as_mut_ptr().cast(), TASK_BYTES - have) };
        if got > 0 {
            have += got as usize;
        } else if got == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
    let start = u64::from_le_bytes(task[..8].try_into().ok()?) as usize;
    let end = u64::from_le_bytes(task[8..].try_into().ok()?) as usize;
    Some(start..end)
}

/// Calls `f` on every item of `batch` and writes the message for the parent onto `out`: its
/// results with the time spent computing and encoding, or the first failing item's error.
fn run_batch(map: &Map, batch: Range<usize>, vm: &mut Vm, values: &mut Vec<Value>, out: &mut Vec<u8>, gil: Gil) {
    let started = Instant::now();
    values.clear();
    for i in batch.clone() {
        // item i draws from a generator of its own, as with threads
        let generator = super::random::ItemGenerator::enter(map.seed, i);
        let result = vm.call_value(map.f.clone(), vec![map.items.get(i)]);
        drop(generator);
        match result {
            Ok(v) => values.push(v),
            Err(d) => return failure(i, &d, started.elapsed(), out, gil),
        }
        // a collection asked for during a builtin's call (which has no safe point)
        if gil.needs_attention() {
            crate::gc::collect_requested(gil);
        }
    }
    encode_results(batch.start, values, started.elapsed(), out, gil);
    values.clear();
}

/// Writes the message of a batch's results onto `out`: its computing time, its encoding time,
/// then each result (a 4-byte length and its bytes); or, when a result cannot be sent, the
/// error of its item (`first` is the batch's first index).
fn encode_results(first: usize, values: &[Value], compute: Duration, out: &mut Vec<u8>, gil: Gil) {
    let started = Instant::now();
    out.push(RESULTS);
    out.extend_from_slice(&(compute.as_nanos() as u64).to_le_bytes());
    let timing = out.len();
    out.extend_from_slice(&[0; 8]);
    for (k, v) in values.iter().enumerate() {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        let sent = wire::encode(v, gil, out).and_then(|()| {
            if out.len() > MAX_MESSAGE {
                Err(format!("cannot send more than {MAX_MESSAGE} bytes at once"))
            } else {
                Ok(())
            }
        });
        if let Err(m) = sent {
            let i = first + k;
            let d = Diagnostic::new(format!("pmap item {i}: its result: {m}"), Span::default());
            out.truncate(4);
            return failure(i, &d, compute, out, gil);
        }
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    let encode = started.elapsed().as_nanos() as u64;
    out[timing..timing + 8].copy_from_slice(&encode.to_le_bytes());
}

/// Writes the message of item `i`'s error onto `out`.
fn failure(i: usize, d: &Diagnostic, compute: Duration, out: &mut Vec<u8>, gil: Gil) {
    out.push(FAILURE);
    out.extend_from_slice(&(compute.as_nanos() as u64).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&(i as u64).to_le_bytes());
    // a report is made of strings and ints only: it always encodes
    let _ = wire::encode(&forked::report_value(d, gil), gil, out);
}
