//! Which tables to merge, and which to drop: pure decisions over the current set of tables,
//! testable and simulatable without a disk.
//!
//! # Strategy: size-tiered by generation
//! A flush writes a table of generation 0. When `fan_in` tables of one generation exist, the
//! oldest `fan_in` of them (by their oldest key) are merged into one table of the next
//! generation. A log store receives time-ordered data, so tables of one generation cover
//! consecutive stretches of time and merging them keeps the number of tables a query must open
//! logarithmic in the data: with `fan_in` 8 and 1,000-entry flushes, 1,000,000 entries end up in
//! fewer than 8 tables per generation across 4 generations. A merge whose inputs add up to more
//! than `table_bytes_max` is not chosen, so tables stop growing at that size; retention then
//! drops them whole.

use logstore_entry::Key;

/// What the strategy knows of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSummary {
    /// The table's id (ids increase with creation).
    pub id: u64,
    /// How many merges produced it (0 for a flushed table).
    pub generation: u32,
    /// Its size on disk.
    pub bytes: u64,
    /// Its smallest key.
    pub min_key: Key,
    /// Its largest key.
    pub max_key: Key,
}

/// Knobs of the strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionOptions {
    /// Tables of one generation merged at once (at least 2). Default 8.
    pub fan_in: usize,
    /// A merge whose inputs exceed this many bytes is not chosen. Default 256 MiB.
    pub table_bytes_max: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions { fan_in: 8, table_bytes_max: 256 << 20 }
    }
}

/// One merge to do: these tables (ids) into one table of `generation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// Ids of the input tables, oldest key first.
    pub inputs: Vec<u64>,
    /// Generation of the output table.
    pub generation: u32,
}

/// The merge to do next, if any: the lowest generation holding `fan_in` tables whose oldest
/// `fan_in` fit in `table_bytes_max`.
pub fn choose(tables: &[TableSummary], options: &CompactionOptions) -> Option<Compaction> {
    let fan_in = options.fan_in.max(2);
    let mut generations: Vec<u32> = tables.iter().map(|t| t.generation).collect();
    generations.sort_unstable();
    generations.dedup();
    for generation in generations {
        let mut candidates: Vec<&TableSummary> =
            tables.iter().filter(|t| t.generation == generation).collect();
        if candidates.len() < fan_in {
            continue;
        }
        candidates.sort_by_key(|t| (t.min_key, t.id));
        // The oldest run of `fan_in` that fits; a big table blocks only the runs it is in.
        for window in candidates.windows(fan_in) {
            let bytes: u64 = window.iter().map(|t| t.bytes).sum();
            if bytes <= options.table_bytes_max {
                return Some(Compaction {
                    inputs: window.iter().map(|t| t.id).collect(),
                    generation: generation + 1,
                });
            }
        }
    }
    None
}

/// What retention removes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOptions {
    /// Tables whose newest entry is older than this many milliseconds before now are dropped.
    pub retention_ms: Option<u64>,
    /// While the tables add up to more bytes than this, the table with the oldest newest entry
    /// is dropped.
    pub disk_bytes_max: Option<u64>,
}

/// Ids of the tables retention drops at `now_ms`: those too old, then the oldest ones until the
/// rest fit in `disk_bytes_max`.
pub fn expired(tables: &[TableSummary], now_ms: u64, options: &RetentionOptions) -> Vec<u64> {
    let mut by_age: Vec<&TableSummary> = tables.iter().collect();
    by_age.sort_by_key(|t| (t.max_key, t.id));
    let mut dropped = Vec::new();
    let mut total: u64 = tables.iter().map(|t| t.bytes).sum();
    for table in by_age {
        let too_old = options
            .retention_ms
            .is_some_and(|keep| table.max_key.timestamp_ms < now_ms.saturating_sub(keep));
        let too_big = options.disk_bytes_max.is_some_and(|max| total > max);
        if !(too_old || too_big) {
            break;
        }
        dropped.push(table.id);
        total -= table.bytes;
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(id: u64, generation: u32, bytes: u64, min_ts: u64, max_ts: u64) -> TableSummary {
        TableSummary {
            id,
            generation,
            bytes,
            min_key: Key::new(min_ts, id * 10),
            max_key: Key::new(max_ts, id * 10 + 9),
        }
    }

    #[test]
    fn merges_the_oldest_fan_in_of_the_lowest_full_generation() {
        let options = CompactionOptions { fan_in: 3, table_bytes_max: 1000 };
        let mut tables: Vec<TableSummary> =
            (1..=4).map(|i| table(i, 0, 10, i * 100, i * 100 + 99)).collect();
        tables.push(table(9, 1, 30, 0, 50));
        let choice = choose(&tables, &options).unwrap();
        assert_eq!(choice, Compaction { inputs: vec![1, 2, 3], generation: 1 });
        assert_eq!(choose(&tables[..2], &options), None);
    }

    #[test]
    fn a_merge_over_the_size_limit_is_not_chosen() {
        let options = CompactionOptions { fan_in: 2, table_bytes_max: 100 };
        let tables = [table(1, 0, 90, 0, 9), table(2, 0, 20, 10, 19), table(3, 0, 20, 20, 29)];
        let choice = choose(&tables, &options).unwrap();
        assert_eq!(choice.inputs, [2, 3], "the big table is skipped, not the whole generation");
        let tables = [table(1, 0, 90, 0, 9), table(2, 0, 20, 10, 19)];
        assert_eq!(choose(&tables, &options), None);
    }

    #[test]
    fn retention_drops_old_tables_then_oldest_until_under_the_byte_limit() {
        let tables =
            [table(1, 0, 100, 0, 999), table(2, 0, 100, 1000, 1999), table(3, 0, 100, 2000, 2999)];
        let by_age = RetentionOptions { retention_ms: Some(1500), disk_bytes_max: None };
        assert_eq!(expired(&tables, 3000, &by_age), [1]);
        let by_size = RetentionOptions { retention_ms: None, disk_bytes_max: Some(150) };
        assert_eq!(expired(&tables, 3000, &by_size), [1, 2]);
        assert!(expired(&tables, 3000, &RetentionOptions::default()).is_empty());
    }

    proptest! {
        /// Simulates a store flushing and compacting: the number of tables stays logarithmic
        /// and every merge takes tables of one generation, each table once.
        #[test]
        fn simulated_compaction_keeps_few_tables(flushes in 1usize..400, fan_in in 2usize..10) {
            let options = CompactionOptions { fan_in, table_bytes_max: u64::MAX };
            let mut tables = Vec::new();
            let mut next_id = 1;
            for flush in 0..flushes as u64 {
                tables.push(table(next_id, 0, 10, flush * 10, flush * 10 + 9));
                next_id += 1;
                while let Some(choice) = choose(&tables, &options) {
                    let inputs: Vec<TableSummary> = tables.iter().filter(|t| choice.inputs.contains(&t.id)).cloned().collect();
                    prop_assert_eq!(inputs.len(), fan_in);
                    prop_assert!(inputs.iter().all(|t| t.generation + 1 == choice.generation));
                    tables.retain(|t| !choice.inputs.contains(&t.id));
                    tables.push(TableSummary {
                        id: next_id,
                        generation: choice.generation,
                        bytes: inputs.iter().map(|t| t.bytes).sum(),
                        min_key: inputs.iter().map(|t| t.min_key).min().unwrap(),
                        max_key: inputs.iter().map(|t| t.max_key).max().unwrap(),
                    });
                    next_id += 1;
                }
                let generations = tables.iter().map(|t| t.generation).max().unwrap_or(0) as usize + 1;
                prop_assert!(tables.len() < fan_in * generations, "{} tables", tables.len());
                let total: u64 = tables.iter().map(|t| t.bytes).sum();
                prop_assert_eq!(total, (flush + 1) * 10, "no data lost or duplicated");
            }
        }
    }
}
