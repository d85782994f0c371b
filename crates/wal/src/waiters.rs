//! The followers of group commit: threads waiting until a leader's round covers what they
//! wait for, each woken on its own.
//!
//! A condition variable woken with `notify_all` makes every follower take the state lock again
//! just to learn that it may return: with 32 appenders on two cores that convoy on the lock
//! took as long as the `fdatasync` itself. Here a leader removes from the list the followers it
//! served (and the first one it did not, to lead the next round), and wakes each; a follower
//! woken for a goal met returns without touching the lock (it reads the log's published
//! sequence numbers, see [`Progress`]).
//!
//! A follower first yields its CPU, checking its wake-up flag, for about as long as it
//! expects to wait ([`yield_budget`]), and only then parks. Waking a parked thread costs the
//! leader a `futex` call and, on another core, an inter-processor interrupt (on this VM, the
//! leader's wake calls took 6% of all samples of the ratio bench), and the thread a context
//! switch from idle; 30 of those per round on 2 vCPUs took as long as the sync. A follower
//! still yielding sees the flag at its next turn on a core, and the leader's `unpark` of a
//! thread that is not parked is an atomic swap. A yielding thread stays runnable, so it takes
//! its share of a core from every other thread (the scheduler does not put it behind them all):
//! followers yield only when the wait they expect fits in the budget, and never longer than it.

use crate::commit_delay::SyncLatency;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Default [`WalOptions::follower_yield_max`](crate::WalOptions::follower_yield_max): 1 ms, so
/// followers yield while three recent `fdatasync`s take at most that (syncs up to ~330 µs).
pub const FOLLOWER_YIELD_MAX_DEFAULT: Duration = Duration::from_millis(1);

/// How long a follower yields its CPU, checking for its wake-up, before it parks: three times
/// the recent sync latency, which is the longest it expects to wait. A follower that queued
/// just after a leader took the queue waits for the rest of that leader's round (up to a sync),
/// the next leader's commit delay (at most a sync, see [`crate::commit_delay`]) and that
/// leader's sync. Zero when that exceeds `follower_yield_max`: with slow syncs a follower
/// would mostly yield in vain, then park and need the wake-up anyway, having taken CPU time
/// from the threads doing work. Zero until the first sync, so followers of logs that never
/// sync park at once.
pub(crate) fn yield_budget(follower_yield_max: Duration, recent: SyncLatency) -> Duration {
    let expected_wait = recent.average() * 3;
    if expected_wait <= follower_yield_max { expected_wait } else { Duration::ZERO }
}

/// The sequence numbers a leader publishes after each round, readable without the state lock:
/// the log keeps them here only. Both only grow. Changed only under the log's state lock, by
/// one leader at a time, so a plain store publishes (no read-modify-write needed).
#[derive(Debug)]
pub(crate) struct Progress {
    written_seq: AtomicU64,
    durable_seq: AtomicU64,
}

impl Progress {
    pub(crate) fn new(next_seq: u64) -> Progress {
        Progress { written_seq: AtomicU64::new(next_seq), durable_seq: AtomicU64::new(next_seq) }
    }

    /// Publishes a round's outcome (under the state lock, before waking anyone): every record
    /// below `written_seq` is written, and synced too if `synced`.
    pub(crate) fn publish(&self, written_seq: u64, synced: bool) {
        // Relaxed loads: only the caller, holding the state lock, stores.
        debug_assert!(written_seq >= self.written_seq.load(Ordering::Relaxed), "only grows");
        self.written_seq.store(written_seq, Ordering::Release);
        if synced {
            self.durable_seq.store(written_seq, Ordering::Release);
        }
    }

    /// Every record below this sequence number is written.
    pub(crate) fn written_seq(&self) -> u64 {
        self.written_seq.load(Ordering::Acquire)
    }

    /// Every record below this sequence number is synced.
    pub(crate) fn durable_seq(&self) -> u64 {
        self.durable_seq.load(Ordering::Acquire)
    }

    /// Whether every record below `seq_end` is written (synced, if `durable`).
    pub(crate) fn reached(&self, seq_end: u64, durable: bool) -> bool {
        let seq = if durable { &self.durable_seq } else { &self.written_seq };
        seq.load(Ordering::Acquire) >= seq_end
    }
}

/// One parked thread's wake-up flag. Each thread keeps one (thread-local) and reuses it: it is
/// in at most one list at a time, since the thread waits until a leader has taken it out.
#[derive(Debug)]
struct Slot {
    thread: Thread,
    woken: AtomicBool,
}

thread_local! {
    static SLOT: Arc<Slot> =
        Arc::new(Slot { thread: std::thread::current(), woken: AtomicBool::new(false) });
}

/// A follower's place in the list: what it waits for, and how to wake it.
#[derive(Debug)]
pub(crate) struct Waiter<G> {
    pub goal: G,
    slot: Arc<Slot>,
}

/// Threads waiting for a leader, in arrival order.
#[derive(Debug)]
pub(crate) struct Waiters<G> {
    list: Vec<Waiter<G>>,
}

/// Followers taken out of the list, to be woken once the state lock is released.
#[must_use = "taken waiters stay parked until woken"]
pub(crate) struct Wake(Vec<Arc<Slot>>);

impl Wake {
    pub(crate) fn none() -> Wake {
        Wake(Vec::new())
    }

    pub(crate) fn wake(self) {
        for slot in self.0 {
            slot.woken.store(true, Ordering::Release);
            slot.thread.unpark();
        }
    }
}

/// Yields the CPU until `done()` or until `budget` has passed (no wait at all if `done()`
/// already or `budget` is zero); returns how long it waited.
pub(crate) fn yield_until(budget: Duration, done: impl Fn() -> bool) -> Duration {
    let began = Instant::now();
    while !done() && !budget.is_zero() && began.elapsed() < budget {
        std::thread::yield_now();
    }
    began.elapsed()
}

/// Returned by [`Waiters::park`]: call [`Parked::wait`] after releasing the state lock.
#[must_use = "a registered waiter must wait for its wake-up"]
pub(crate) struct Parked(Arc<Slot>);

impl Parked {
    /// Blocks until a leader has taken this thread out of the list and woken it: yields its CPU
    /// for up to `yield_for`, checking, then parks. Returns whether it was woken while
    /// yielding (never parked; false when `yield_for` is zero).
    pub(crate) fn wait(self, yield_for: Duration) -> bool {
        let woken = || self.0.woken.load(Ordering::Acquire);
        yield_until(yield_for, woken);
        if !yield_for.is_zero() && woken() {
            return true;
        }
        while !self.0.woken.load(Ordering::Acquire) {
            std::thread::park();
        }
        false
    }
}

impl<G> Waiters<G> {
    pub(crate) fn new() -> Self {
        Waiters { list: Vec::new() }
    }

    /// Registers the calling thread (under the state lock).
    pub(crate) fn park(&mut self, goal: G) -> Parked {
        let slot = SLOT.with(Arc::clone);
        slot.woken.store(false, Ordering::Relaxed);
        self.list.push(Waiter { goal, slot: slot.clone() });
        Parked(slot)
    }

    /// Takes out every waiter whose goal is `met`, and the first whose goal is not (it leads the
    /// next round), or everyone if `all`.
    pub(crate) fn take(&mut self, all: bool, met: impl Fn(&G) -> bool) -> Wake {
        if self.list.is_empty() {
            return Wake::none();
        }
        let mut woken = Vec::new();
        let mut next_leader = false;
        self.list.retain(|waiter| {
            let take = all || met(&waiter.goal) || !std::mem::replace(&mut next_leader, true);
            if take {
                woken.push(waiter.slot.clone());
            }
            !take
        });
        Wake(woken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_wakes_those_served_and_one_more_to_lead() {
        let mut waiters = Waiters::new();
        for goal in [5, 9, 3, 12] {
            let _parked = waiters.park(goal);
        }
        let woken = waiters.take(false, |&goal| goal <= 5);
        assert_eq!(woken.0.len(), 3, "5 and 3 served, 9 leads next");
        assert_eq!(waiters.list.iter().map(|w| w.goal).collect::<Vec<_>>(), [12]);
        woken.wake();
        assert_eq!(waiters.take(true, |_| false).0.len(), 1, "all: everyone");
        assert!(waiters.list.is_empty());
    }

    #[test]
    fn a_waiting_thread_returns_once_woken_whether_yielding_or_parked() {
        // Zero parks at once; a microsecond yields, then parks; an hour only yields.
        for yield_for in [Duration::ZERO, Duration::from_micros(1), Duration::from_secs(3600)] {
            let waiters = std::sync::Mutex::new(Waiters::new());
            std::thread::scope(|scope| {
                let follower = scope.spawn(|| {
                    let parked = waiters.lock().unwrap().park(1);
                    parked.wait(yield_for);
                });
                loop {
                    let wake = waiters.lock().unwrap().take(false, |_| true);
                    let done = !wake.0.is_empty();
                    wake.wake();
                    if done {
                        break;
                    }
                    std::thread::yield_now();
                }
                follower.join().unwrap();
            });
        }
    }

    #[test]
    fn followers_yield_for_three_recent_syncs_if_that_fits_the_cap() {
        let mut latency = SyncLatency::default();
        let cap = Duration::from_millis(1);
        assert_eq!(yield_budget(cap, latency), Duration::ZERO, "no sync measured yet");
        latency.record(Duration::from_micros(200));
        assert_eq!(yield_budget(cap, latency), Duration::from_micros(600));
        assert_eq!(yield_budget(Duration::ZERO, latency), Duration::ZERO, "0 turns it off");
        latency.record(Duration::from_millis(5));
        assert_eq!(yield_budget(cap, latency), Duration::ZERO, "slow syncs: park at once");
    }

    #[test]
    fn progress_publishes_written_and_synced() {
        let progress = Progress::new(3);
        assert!(progress.reached(3, true) && !progress.reached(4, false));
        progress.publish(7, true);
        progress.publish(10, false);
        assert!(progress.reached(10, false) && !progress.reached(11, false));
        assert!(progress.reached(7, true) && !progress.reached(8, true));
        assert_eq!((progress.written_seq(), progress.durable_seq()), (10, 7));
    }
}
