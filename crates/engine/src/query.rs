//! Queries: a time range, an order, a limit, filters, and a resume cursor.

use crate::error::{Result, StoreError};
use crate::filter::Filter;
use crate::merge::{Merge, Source};
use crate::version::Version;
use logstore_entry::{Entry, Key};
use serde_json::Value;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// The order entries come back in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// What to read. Built with [`Query::new`] (everything, oldest first) and its setters.
///
/// ```
/// use logstore_engine::{Order, Query};
///
/// let query = Query::new()
///     .time_range(1_700_000_000_000..=1_700_000_060_000)
///     .order(Order::Descending)
///     .limit(100)
///     .contains("timeout")
///     .metadata_equals("service", "api");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Oldest timestamp read, inclusive.
    pub from_ms: u64,
    /// Newest timestamp read, inclusive.
    pub to_ms: u64,
    /// Oldest or newest first.
    pub order: Order,
    /// Most entries returned (`None`: all).
    pub limit: Option<usize>,
    /// Only entries whose message contains this text.
    pub contains: Option<String>,
    /// Only entries whose metadata has these top-level fields with these values (JSON
    /// equality: the string `"3"` does not equal the number `3`).
    pub metadata_equals: Vec<(String, Value)>,
    /// Resume after this key (the last one a previous page returned), in the query's order.
    pub after: Option<Key>,
}

impl Default for Query {
    fn default() -> Self {
        Query::new()
    }
}

impl Query {
    /// Every entry, oldest first.
    pub fn new() -> Query {
        Query {
            from_ms: 0,
            to_ms: u64::MAX,
            order: Order::Ascending,
            limit: None,
            contains: None,
            metadata_equals: Vec::new(),
            after: None,
        }
    }

    /// Reads timestamps in `range` (inclusive at both ends).
    pub fn time_range(mut self, range: RangeInclusive<u64>) -> Query {
        (self.from_ms, self.to_ms) = range.into_inner();
        self
    }

    /// Sets the order.
    pub fn order(mut self, order: Order) -> Query {
        self.order = order;
        self
    }

    /// Returns at most `limit` entries.
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }

    /// Keeps entries whose message contains `text`.
    pub fn contains(mut self, text: impl Into<String>) -> Query {
        self.contains = Some(text.into());
        self
    }

    /// Keeps entries whose metadata field `key` equals `value`.
    pub fn metadata_equals(mut self, key: impl Into<String>, value: impl Into<Value>) -> Query {
        self.metadata_equals.push((key.into(), value.into()));
        self
    }

    /// Resumes after `key`.
    pub fn after(mut self, key: Key) -> Query {
        self.after = Some(key);
        self
    }

    /// The keys to read, or `None` if none can match; an error if the range is backwards.
    pub(crate) fn key_range(&self) -> Result<Option<RangeInclusive<Key>>> {
        if self.from_ms > self.to_ms {
            return Err(StoreError::InvalidQuery(format!(
                "from {} ms is after to {} ms",
                self.from_ms, self.to_ms
            )));
        }
        let mut lo = Key::new(self.from_ms, 0);
        let mut hi = Key::new(self.to_ms, u64::MAX);
        if let Some(after) = self.after {
            match self.order {
                Order::Ascending => match after.successor() {
                    Some(next) => lo = lo.max(next),
                    None => return Ok(None),
                },
                Order::Descending => match after.predecessor() {
                    Some(previous) => hi = hi.min(previous),
                    None => return Ok(None),
                },
            }
        }
        Ok((lo <= hi && self.limit != Some(0)).then_some(lo..=hi))
    }
}

/// The entries a query matches, streamed from the memtables and tables of the store as it was
/// when the query started: appends acknowledged before then are all there, each once; later ones
/// are not.
///
/// Use [`QueryIter::next_entry`] to borrow each entry without a copy, or the `Iterator`
/// implementation for owned entries. The first error ends the stream.
pub struct QueryIter {
    merge: Option<Merge<Source>>,
    filter: Filter,
    remaining: usize,
    started: bool,
    failed: bool,
    /// Keeps the tables and memtables of the read alive.
    _version: Arc<Version>,
}

impl QueryIter {
    pub(crate) fn new(
        merge: Option<Merge<Source>>,
        query: &Query,
        version: Arc<Version>,
    ) -> QueryIter {
        QueryIter {
            merge,
            filter: Filter::new(query.contains.as_deref(), &query.metadata_equals),
            remaining: query.limit.unwrap_or(usize::MAX),
            started: false,
            failed: false,
            _version: version,
        }
    }

    /// The next matching entry, borrowed from the read's buffers (valid until the next call).
    pub fn next_entry(&mut self) -> Option<Result<Entry<'_>>> {
        if self.failed || self.remaining == 0 {
            return None;
        }
        let merge = self.merge.as_mut()?;
        loop {
            if self.started {
                if let Err(e) = merge.advance() {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
            self.started = true;
            if self.filter.is_empty() {
                break;
            }
            match merge.entry() {
                None => return None,
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                Some(Ok(entry))
                    if self.filter.matches(&entry.message, entry.metadata.as_deref()) =>
                {
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
        let item = merge.entry()?;
        self.failed = item.is_err();
        if !self.failed {
            self.remaining -= 1;
        }
        Some(item)
    }
}

impl Iterator for QueryIter {
    type Item = Result<Entry<'static>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().map(|item| item.map(Entry::into_owned))
    }
}

impl std::fmt::Debug for QueryIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryIter").field("remaining", &self.remaining).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_range_applies_cursor_in_the_query_order() {
        let q = Query::new().time_range(10..=20);
        assert_eq!(q.key_range().unwrap(), Some(Key::new(10, 0)..=Key::new(20, u64::MAX)));
        let asc = q.clone().after(Key::new(15, 7));
        assert_eq!(asc.key_range().unwrap(), Some(Key::new(15, 8)..=Key::new(20, u64::MAX)));
        let desc = q.clone().order(Order::Descending).after(Key::new(15, 7));
        assert_eq!(desc.key_range().unwrap(), Some(Key::new(10, 0)..=Key::new(15, 6)));
        assert_eq!(q.clone().after(Key::new(20, u64::MAX)).key_range().unwrap(), None);
        assert_eq!(q.clone().limit(0).key_range().unwrap(), None);
        let backwards = Query { from_ms: 5, to_ms: 4, ..Query::new() };
        assert!(backwards.key_range().is_err());
    }
}
