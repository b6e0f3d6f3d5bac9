//! Per-site counters for `--stats`: for each place in the program that makes locks or queues,
//! how often they were used and how often a thread had to wait. Every lock and queue keeps an
//! `Arc` of its site's counters; all locks made at one place share them.
//!
//! What it may touch without the GIL: everything here (a `Mutex` and atomics).

use super::wait::Where;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The counters of one creation site.
#[derive(Debug)]
pub struct Site {
    /// `lock` or `queue`.
    pub what: &'static str,
    /// Where the objects were made (`file:line:col`).
    pub made_at: String,
    /// The line, for sorting.
    line: usize,
    /// Acquires of a lock; puts into a queue.
    pub first: AtomicU64,
    /// Gets from a queue (unused for locks).
    pub second: AtomicU64,
    /// Times a thread had to wait.
    pub waited: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The sites by kind and the offset of the call that made their objects.
type Sites = HashMap<(&'static str, u32), Arc<Site>>;

static SITES: Mutex<Option<Sites>> = Mutex::new(None);

/// The counters for objects of kind `what` made at `at` (shared by every object made there).
pub fn site(what: &'static str, at: &Where) -> Arc<Site> {
    let mut sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    let map = sites.get_or_insert_with(HashMap::new);
    map.entry((what, at.span.start))
        .or_insert_with(|| {
            let line = at.file.line_col(at.span.start).0;
            let zero = || AtomicU64::new(0);
            Arc::new(Site { what, made_at: at.to_string(), line, first: zero(), second: zero(), waited: zero() })
        })
        .clone()
}

/// One line per creation site, in source order: `lock made at prog.mini:3:9: 1000 acquires,
/// 12 waited`, `queue made at prog.mini:5:9: 200 puts, 200 gets, 31 waited`.
pub fn site_lines() -> Vec<String> {
    let sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    let mut all: Vec<Arc<Site>> = sites.iter().flat_map(|m| m.values().cloned()).collect();
    drop(sites);
    all.sort_by_key(|s| (s.line, s.made_at.clone(), s.what));
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    all.iter()
        .map(|s| match s.what {
            "queue" => format!(
                "queue made at {}: {} puts, {} gets, {} waited",
                s.made_at,
                n(&s.first),
                n(&s.second),
                n(&s.waited)
            ),
            _ => format!("{} made at {}: {} acquires, {} waited", s.what, s.made_at, n(&s.first), n(&s.waited)),
        })
        .collect()
}
