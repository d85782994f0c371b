//! The store's clock: wall-clock milliseconds that never go backwards.

use std::time::{SystemTime, UNIX_EPOCH};

/// Where the current time comes from; a test can drive it by hand.
pub trait TimeSource: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch, as the wall clock says (it may jump either way).
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemTimeSource;

impl TimeSource for SystemTimeSource {
    fn now_ms(&self) -> u64 {
        // Before 1970 only on a badly broken clock; 0 then, and the monotonic floor takes over.
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// Hands out timestamps that never decrease: `max(wall clock, last handed out)`.
#[derive(Debug)]
pub(crate) struct MonotonicClock {
    last_ms: u64,
}

impl MonotonicClock {
    /// A clock that will never hand out less than `floor_ms` (the newest store-assigned
    /// timestamp already in the store).
    pub(crate) fn new(floor_ms: u64) -> Self {
        MonotonicClock { last_ms: floor_ms }
    }

    /// The next timestamp: the wall clock's, unless it went backwards.
    pub(crate) fn tick(&mut self, wall_ms: u64) -> u64 {
        self.last_ms = self.last_ms.max(wall_ms);
        self.last_ms
    }

    /// The newest timestamp handed out (or the floor).
    #[cfg(test)]
    pub(crate) fn last_ms(&self) -> u64 {
        self.last_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let mut clock = MonotonicClock::new(100);
        assert_eq!(clock.tick(50), 100, "below the floor");
        assert_eq!(clock.tick(150), 150);
        assert_eq!(clock.tick(120), 150, "wall clock stepped back");
        assert_eq!(clock.tick(151), 151);
        assert_eq!(clock.last_ms(), 151);
    }
}
