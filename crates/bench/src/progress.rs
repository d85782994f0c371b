//! Progress of a case, from the child process that runs it to the parent that draws the bar.
//!
//! The child writes lines `@progress <phase> <done> <total>` on stderr (about a hundred per
//! phase); the parent ([`ProgressBar`](indicatif::ProgressBar) per case, hidden when stderr is
//! not a terminal) reads them and passes every other line through.

use std::io::Write;
use std::sync::Mutex;

/// Prefix of progress lines.
pub const PREFIX: &str = "@progress ";

/// The child's side: reports how far a phase is.
#[derive(Debug)]
pub struct Progress {
    total: u64,
    every: u64,
    emit: bool,
    phase: Mutex<&'static str>,
}

impl Progress {
    /// Reports on stderr when `emit`, for a phase of `total` steps.
    pub fn new(total: u64, emit: bool) -> Progress {
        Progress { total, every: (total / 100).max(1), emit, phase: Mutex::new("start") }
    }

    /// Reports nothing.
    pub fn hidden() -> Progress {
        Progress::new(0, false)
    }

    /// Starts the phase `name` (`write`, `read`, ...).
    pub fn phase(&self, name: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = name;
        self.line(0);
    }

    /// `done` steps of the phase are done.
    #[inline]
    pub fn tick(&self, done: u64) {
        if self.emit && (done % self.every == 0 || done == self.total) {
            self.line(done);
        }
    }

    fn line(&self, done: u64) {
        if self.emit {
            let phase = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(std::io::stderr().lock(), "{PREFIX}{phase} {done} {}", self.total);
        }
    }
}

/// A parsed progress line: phase, done, total.
pub fn parse(line: &str) -> Option<(&str, u64, u64)> {
    let mut parts = line.strip_prefix(PREFIX)?.split(' ');
    let phase = parts.next()?;
    let done = parts.next()?.parse().ok()?;
    let total = parts.next()?.parse().ok()?;
    Some((phase, done, total))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_parse() {
        assert_eq!(super::parse("@progress write 5 10"), Some(("write", 5, 10)));
        assert_eq!(super::parse("note: hello"), None);
    }
}
