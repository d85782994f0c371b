//! Commit delay: how long a group-commit leader waits for the appenders already on their way
//! before it writes and syncs (PostgreSQL's `commit_delay`, made adaptive).
//!
//! # Why
//! Without it, the appenders a leader has just acknowledged are still waking up when the next
//! leader takes the queue: with 32 threads and a 0.3 ms `fdatasync`, the writers split into
//! two halves that take turns, about 15 records per sync. Waiting the time the acknowledged
//! threads need to come back puts 28-31 of the 32 in each sync. Here, on 2 vCPUs, that time
//! was 0.15-0.16 ms per sync while every follower parked and had to be woken, and 41-87 us
//! once followers yield before they park (see the `waiters` module).
//!
//! # What the leader knows
//! [`Arrivals`] counts *requests in flight*: from the moment a caller enters
//! [`Wal::submit`](crate::Wal::submit) until its [`Ticket`](crate::Ticket) is dropped, or enters
//! [`Wal::append`](crate::Wal::append) (or `append_batch`) until it returns, and *requests
//! queued* for the next leader. A request in flight but not queued belongs to a caller that is
//! on its way: encoding its records, or acknowledged and about to return and come back.
//!
//! # The rule ([`gather_budget`], [`Arrivals::all_queued`])
//! A leader about to sync waits while some request in flight is not queued, for at most
//! `min(commit_delay_max, recent fdatasync latency)`. It waits without the state lock, polling
//! the two counts and yielding its CPU to the appenders it waits for (as RocksDB's write
//! leaders do, `write_thread_max_yield_usec`): a leader put to sleep and woken again would
//! add a wake-up of its own to the very latency it waits out. Consequences:
//! - a lone appender never waits: its own request is the only one in flight, and it is queued;
//! - the wait never exceeds one sync's time, so in the worst case (a caller in flight that does
//!   not come back soon, e.g. one holding a ticket it waits for later) a round costs at most
//!   twice its sync;
//! - only leaders that sync wait (not `Durability::None`, nor the writes of `Durability::Batch`).
//!
//! `commit_delay_max = 0` turns it off.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Default [`WalOptions::commit_delay_max`](crate::WalOptions::commit_delay_max): 1 ms. The
/// recent `fdatasync` latency usually bounds the wait well below it.
pub const COMMIT_DELAY_MAX_DEFAULT: Duration = Duration::from_millis(1);

/// Requests in flight and queued, readable without the log's state lock (a gathering leader
/// polls them while the others take the lock to queue).
#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    in_flight: AtomicUsize,
    /// Changed only under the state lock.
    queued: AtomicUsize,
}

impl Arrivals {
    /// A caller entered `submit`, `append` or `append_batch`.
    pub(crate) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// A caller is done with its request: its ticket dropped, or its `append` or
    /// `append_batch` returned, or its `submit` failed.
    pub(crate) fn leave(&self) {
        let before = self.in_flight.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "a request left that never entered");
    }

    /// A request was queued (under the state lock).
    ///
    /// A load and a store rather than a read-modify-write: only callers holding the state lock
    /// change `queued`, so no update is lost, and the store is a plain one. Its ordering against
    /// `in_flight` need not be sequentially consistent: [`all_queued`](Self::all_queued) is the
    /// commit delay's guess, polled until true or the budget ends, and a reading a moment stale
    /// only shortens or lengthens that wait within the budget.
    pub(crate) fn queue(&self) {
        let queued = self.queued.load(Ordering::Relaxed);
        self.queued.store(queued + 1, Ordering::Release);
    }

    /// A leader took the queue (under the state lock; ordering as for [`queue`](Self::queue)).
    pub(crate) fn take_queue(&self) {
        self.queued.store(0, Ordering::Release);
    }

    /// Whether every request in flight is queued.
    pub(crate) fn all_queued(&self) -> bool {
        self.queued.load(Ordering::SeqCst) >= self.in_flight.load(Ordering::SeqCst)
    }
}

/// A moving average of `fdatasync` latency (weight 1/8 to the newest), the commit delay's
/// adaptive bound. Zero until the first sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncLatency {
    average_ns: u64,
}

impl SyncLatency {
    pub(crate) fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.average_ns =
            if self.average_ns == 0 { ns } else { self.average_ns - self.average_ns / 8 + ns / 8 };
    }

    pub(crate) fn average(&self) -> Duration {
        Duration::from_nanos(self.average_ns)
    }
}

/// The longest a leader may wait for the requests in flight: the recent sync latency, at most
/// `commit_delay_max`.
pub(crate) fn gather_budget(commit_delay_max: Duration, recent: SyncLatency) -> Duration {
    commit_delay_max.min(recent.average())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_is_queued_once_each_request_in_flight_is_queued_or_gone() {
        let arrivals = Arrivals::default();
        assert!(arrivals.all_queued(), "nobody in flight");
        arrivals.enter();
        assert!(!arrivals.all_queued(), "entered, not yet queued");
        arrivals.queue();
        assert!(arrivals.all_queued(), "a lone appender is all there is");
        for _ in 0..2 {
            arrivals.enter();
        }
        arrivals.queue();
        assert!(!arrivals.all_queued(), "2 of 3 queued");
        arrivals.leave();
        assert!(arrivals.all_queued(), "the third left without queuing");
        arrivals.take_queue();
        assert!(!arrivals.all_queued(), "taken by a leader, their holders still in flight");
        arrivals.leave();
        arrivals.leave();
        assert!(arrivals.all_queued());
    }

    #[test]
    fn the_budget_is_the_recent_sync_latency_capped() {
        let mut latency = SyncLatency::default();
        let cap = Duration::from_millis(1);
        assert_eq!(gather_budget(cap, latency), Duration::ZERO, "no sync measured yet");
        latency.record(Duration::from_micros(400));
        assert_eq!(gather_budget(cap, latency), Duration::from_micros(400));
        assert_eq!(gather_budget(Duration::ZERO, latency), Duration::ZERO, "0 turns it off");
        for _ in 0..100 {
            latency.record(Duration::from_millis(5));
        }
        assert_eq!(gather_budget(cap, latency), cap);
        for _ in 0..100 {
            latency.record(Duration::from_micros(200));
        }
        let budget = gather_budget(cap, latency);
        assert!(budget >= Duration::from_micros(200) && budget < Duration::from_micros(210));
    }
}
