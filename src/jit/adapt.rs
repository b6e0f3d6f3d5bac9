//! When a native call releases the GIL (lang-spec/jit.md, "When native code releases the GIL"):
//! each specialization times a sample of its native calls and keeps the GIL across calls too
//! short to profit from releasing it, releases it around the others, and keeps re-measuring so
//! that it switches back when its calls change length. Used under the GIL only (plain `Cell`s).
//!
//! The thresholds come from measurements on a 2-core AMD EPYC (numbers in lang-spec/jit.md):
//! an uncontended release and re-acquire costs about 24 ns, a hand-off to a thread waiting for
//! the lock and back about 1.8 µs, and two threads calling a compiled function in a loop run
//! faster with the GIL released than kept once a call takes more than about 2.5 µs.

use std::cell::Cell;
use std::fmt::Write;
use std::time::Duration;

/// A specialization whose recent calls took at least this long (ns) releases the GIL.
pub const RELEASE_NS: u64 = 4_000;
/// A releasing specialization whose recent calls took less than this (ns) keeps the GIL again
/// (the gap between the two thresholds keeps calls near the limit from flipping back and forth).
pub const KEEP_NS: u64 = 2_000;
/// The first calls of a specialization are all timed (so that a long call after a few short
/// ones, such as a warm-up, is seen at once).
const TIME_FIRST: u64 = 64;
/// After the first calls, one call in this many is timed while the GIL is kept (a clock read
/// costs about 30 ns here, a tiny call about 5 ns)...
const KEPT_STRIDE: u64 = 256;
const _: () = assert!(KEPT_STRIDE.is_power_of_two() && RELEASED_STRIDE.is_power_of_two());
/// ...and one in this many while it is released (those calls take microseconds).
const RELEASED_STRIDE: u64 = 4;

/// One specialization's GIL decision and the statistics it is made from.
pub struct GilPolicy {
    /// Whether the next call releases the GIL (true at first: an unknown call may be long).
    releasing: Cell<bool>,
    kept: Cell<u64>,
    released: Cell<u64>,
    /// Timed calls, and their total time in ns (for the mean in `--stats`).
    timed: Cell<u64>,
    timed_ns: Cell<u64>,
    /// A moving average of the timed calls (ns), weighting the latest by 1/4: what the
    /// decision follows.
    recent_ns: Cell<u64>,
}

impl Default for GilPolicy {
    fn default() -> GilPolicy {
        GilPolicy {
            releasing: Cell::new(true),
            kept: Cell::new(0),
            released: Cell::new(0),
            timed: Cell::new(0),
            timed_ns: Cell::new(0),
            recent_ns: Cell::new(0),
        }
    }
}

/// What the next native call does: release the GIL around the call, and time the call.
#[derive(Clone, Copy)]
pub struct Plan {
    pub release: bool,
    pub time: bool,
}

impl GilPolicy {
    /// Counts a native call about to start and says how to run it. `keep_gil` is `--keep-gil`,
    /// which keeps the GIL across every call.
    #[inline]
    pub fn next_call(&self, keep_gil: bool) -> Plan {
        let n = self.kept.get() + self.released.get();
        let release = self.releasing.get() && !keep_gil;
        let stride = if release {
            self.released.set(self.released.get() + 1);
            RELEASED_STRIDE
        } else {
            self.kept.set(self.kept.get() + 1);
            KEPT_STRIDE
        };
        // the strides are powers of two: a mask, not a division, on every call
        Plan { release, time: n < TIME_FIRST || n & (stride - 1) == 0 }
    }

    /// Records how long a timed call ran (the native code only, not the wait for the GIL
    /// afterwards), and decides whether the following calls release the GIL.
    pub fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let timed = self.timed.get() + 1;
        self.timed.set(timed);
        self.timed_ns.set(self.timed_ns.get().saturating_add(ns));
        let recent = if timed == 1 {
            ns
        } else {
            let r = self.recent_ns.get();
            r - r / 4 + ns / 4
        };
        self.recent_ns.set(recent);
        if self.releasing.get() && recent < KEEP_NS {
            self.releasing.set(false);
        } else if !self.releasing.get() && recent >= RELEASE_NS {
            self.releasing.set(true);
        }
    }

    /// Native calls made so far.
    pub fn calls(&self) -> u64 {
        self.kept.get() + self.released.get()
    }

    /// The `--stats` summary: `(K kept the GIL, R released it; mean M us)`, the mean over the
    /// timed calls (omitted when none was timed).
    pub fn summary(&self) -> String {
        let mut out = format!("({} kept the GIL, {} released it", self.kept.get(), self.released.get());
        let timed = self.timed.get();
        if timed > 0 {
            let mean_us = self.timed_ns.get() as f64 / timed as f64 / 1e3;
            let _ = write!(out, "; mean {mean_us:.3} us");
        }
        out.push(')');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &GilPolicy, calls: u64, each: Duration) -> (u64, u64) {
        let (mut kept, mut released) = (0, 0);
        for _ in 0..calls {
            let plan = policy.next_call(false);
            if plan.release {
                released += 1;
            } else {
                kept += 1;
            }
            if plan.time {
                policy.record(each);
            }
        }
        (kept, released)
    }

    #[test]
    fn short_calls_keep_the_gil_after_the_first() {
        let p = GilPolicy::default();
        let (kept, released) = run(&p, 10_000, Duration::from_nanos(20));
        assert_eq!((kept, released), (9_999, 1));
        assert_eq!(p.summary(), format!("(9999 kept the GIL, 1 released it; mean 0.020 us)"));
    }

    #[test]
    fn calls_that_become_long_release_it_again_and_short_ones_keep_it() {
        let p = GilPolicy::default();
        run(&p, 1_000, Duration::from_nanos(20));
        // one in 256 is timed: a long call is seen within 256 calls
        let (_, released) = run(&p, 1_000, Duration::from_millis(1));
        assert!(released > 1_000 - 256, "{released}");
        let (kept, _) = run(&p, 1_000, Duration::from_nanos(20));
        assert!(kept > 900, "{kept}");
    }

    #[test]
    fn a_long_call_after_a_warm_up_is_seen_at_once() {
        let p = GilPolicy::default();
        run(&p, 10, Duration::from_nanos(500));
        assert!(!p.next_call(false).release);
        p.record(Duration::from_secs(1));
        assert!(p.next_call(false).release);
    }

    #[test]
    fn keep_gil_keeps_every_call() {
        let p = GilPolicy::default();
        for _ in 0..10 {
            assert!(!p.next_call(true).release);
            p.record(Duration::from_secs(1));
        }
        assert!(p.summary().starts_with("(10 kept the GIL, 0 released it; mean 1000000.000 us"));
    }
}
