//! The server's own counters and latency histograms, rendered with the store's
//! [`StoreStats`] in the Prometheus text format (`GET /metrics`).

use logstore_engine::StoreStats;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS_S: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A cumulative-free latency histogram (buckets are summed when rendered).
#[derive(Default)]
struct Histogram {
    /// `counts[i]`: observations in bucket `i`; the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS_S.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS_S.iter().position(|&le| seconds <= le).unwrap_or(BUCKETS_S.len());
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = BUCKETS_S.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum_s = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum_s}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// The routes and protocol actions timed, each with its own histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    HttpIngest,
    HttpQuery,
    HttpHealth,
    HttpMetrics,
    HttpOther,
    TcpWrite,
    TcpRead,
    TcpError,
}

const ENDPOINTS: [(Endpoint, &str, &str); 8] = [
    (Endpoint::HttpIngest, "http", "POST /api/v1/logs"),
    (Endpoint::HttpQuery, "http", "GET /api/v1/logs"),
    (Endpoint::HttpHealth, "http", "GET /health"),
    (Endpoint::HttpMetrics, "http", "GET /metrics"),
    (Endpoint::HttpOther, "http", "other"),
    (Endpoint::TcpWrite, "tcp", "write"),
    (Endpoint::TcpRead, "tcp", "read"),
    (Endpoint::TcpError, "tcp", "error"),
];

/// Counters shared by the HTTP and TCP servers.
#[derive(Default)]
pub(crate) struct Metrics {
    latency: [Histogram; ENDPOINTS.len()],
    /// HTTP responses by status class: 2xx, 4xx, 5xx.
    http_responses: [AtomicU64; 3],
    pub(crate) http_entries_written: AtomicU64,
    pub(crate) tcp_entries_written: AtomicU64,
    pub(crate) entries_read: AtomicU64,
    /// Open connections, kept by each connection's [`Slot`](crate::accept::Slot).
    pub(crate) http_connections_open: Arc<AtomicU64>,
    pub(crate) tcp_connections_open: Arc<AtomicU64>,
    pub(crate) tcp_connections_total: AtomicU64,
    pub(crate) tcp_idle_closed_total: AtomicU64,
    /// Connections closed by their [`StallLimit`](crate::stall::StallLimit), by protocol.
    pub(crate) http_stalled_closed_total: Arc<AtomicU64>,
    pub(crate) tcp_stalled_closed_total: Arc<AtomicU64>,
}

impl Metrics {
    pub(crate) fn observe(&self, endpoint: Endpoint, elapsed: Duration) {
        let index = ENDPOINTS.iter().position(|(e, ..)| *e == endpoint).unwrap_or(0);
        self.latency[index].observe(elapsed);
    }

    pub(crate) fn http_response(&self, status: u16) {
        let class = match status {
            ..400 => 0,
            400..500 => 1,
            _ => 2,
        };
        self.http_responses[class].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition of these counters and the store's statistics.
    pub(crate) fn render(&self, stats: &StoreStats, poisoned: bool) -> String {
        let mut out = String::with_capacity(8 << 10);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        };
        let load = |counter: &AtomicU64| counter.load(Relaxed);
        metric(
            "logstore_appended_entries_total",
            "counter",
            "Entries appended to the store.",
            &[("", stats.appended_entries)],
        );
        metric(
            "logstore_appended_bytes_total",
            "counter",
            "Bytes of message and metadata appended.",
            &[("", stats.appended_bytes)],
        );
        metric(
            "logstore_written_entries_total",
            "counter",
            "Entries acknowledged to clients, by protocol.",
            &[
                ("protocol=\"http\"", load(&self.http_entries_written)),
                ("protocol=\"tcp\"", load(&self.tcp_entries_written)),
            ],
        );
        metric(
            "logstore_queries_total",
            "counter",
            "Queries run by the store.",
            &[("", stats.queries)],
        );
        metric(
            "logstore_read_entries_total",
            "counter",
            "Entries sent to clients.",
            &[("", load(&self.entries_read))],
        );
        metric(
            "logstore_flushes_total",
            "counter",
            "Memtables flushed to tables.",
            &[("", stats.flushes)],
        );
        metric(
            "logstore_compactions_total",
            "counter",
            "Compactions run.",
            &[("", stats.compactions)],
        );
        metric(
            "logstore_compactions_copied_total",
            "counter",
            "Compactions done by copying blocks (inputs of disjoint key ranges).",
            &[("", stats.compactions_copied)],
        );
        metric(
            "logstore_tables_expired_total",
            "counter",
            "Tables dropped by retention.",
            &[("", stats.tables_expired)],
        );
        metric("logstore_entries", "gauge", "Entries in the store.", &[("", stats.entries)]);
        metric("logstore_tables", "gauge", "Sorted tables.", &[("", stats.tables as u64)]);
        metric(
            "logstore_table_bytes",
            "gauge",
            "Bytes of sorted tables.",
            &[("", stats.table_bytes)],
        );
        metric(
            "logstore_memtable_entries",
            "gauge",
            "Entries in memtables.",
            &[("", stats.memtable_entries)],
        );
        metric(
            "logstore_memtable_bytes",
            "gauge",
            "Bytes of memtable memory.",
            &[("", stats.memtable_bytes)],
        );
        metric(
            "logstore_wal_segments",
            "gauge",
            "WAL segment files.",
            &[("", stats.wal_segments as u64)],
        );
        metric("logstore_wal_bytes", "gauge", "Bytes of WAL segments.", &[("", stats.wal_bytes)]);
        metric(
            "logstore_poisoned",
            "gauge",
            "1 when the store refuses writes after an I/O failure.",
            &[("", u64::from(poisoned))],
        );
        metric(
            "logstore_http_responses_total",
            "counter",
            "HTTP responses by status class.",
            &[
                ("class=\"2xx\"", load(&self.http_responses[0])),
                ("class=\"4xx\"", load(&self.http_responses[1])),
                ("class=\"5xx\"", load(&self.http_responses[2])),
            ],
        );
        metric(
            "logstore_http_connections",
            "gauge",
            "Open HTTP connections.",
            &[("", load(&self.http_connections_open))],
        );
        metric(
            "logstore_tcp_connections",
            "gauge",
            "Open TCP protocol connections.",
            &[("", load(&self.tcp_connections_open))],
        );
        metric(
            "logstore_tcp_connections_total",
            "counter",
            "TCP protocol connections accepted.",
            &[("", load(&self.tcp_connections_total))],
        );
        metric(
            "logstore_tcp_idle_closed_total",
            "counter",
            "TCP protocol connections closed for sending no whole request within the idle timeout.",
            &[("", load(&self.tcp_idle_closed_total))],
        );
        metric(
            "logstore_write_stalled_closed_total",
            "counter",
            "Connections closed because the client accepted no reply bytes within the write stall timeout.",
            &[
                ("protocol=\"http\"", load(&self.http_stalled_closed_total)),
                ("protocol=\"tcp\"", load(&self.tcp_stalled_closed_total)),
            ],
        );
        let name = "logstore_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Request latency (HTTP: until the response head; a streamed body may take longer).\n# TYPE {name} histogram"
        );
        for ((_, protocol, endpoint), histogram) in ENDPOINTS.iter().zip(&self.latency) {
            histogram.render(
                &mut out,
                name,
                &format!("protocol=\"{protocol}\",endpoint=\"{endpoint}\""),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.observe(Endpoint::TcpWrite, Duration::from_micros(100));
        metrics.observe(Endpoint::TcpWrite, Duration::from_millis(3));
        metrics.observe(Endpoint::TcpWrite, Duration::from_secs(60));
        let text = metrics.render(&StoreStats::default(), false);
        let line = |needle: &str| text.lines().find(|l| l.starts_with(needle)).unwrap().to_owned();
        let base = "logstore_request_duration_seconds_bucket{protocol=\"tcp\",endpoint=\"write\"";
        assert!(line(&format!("{base},le=\"0.0005\"}}")).ends_with(" 1"));
        assert!(line(&format!("{base},le=\"0.005\"}}")).ends_with(" 2"));
        assert!(line(&format!("{base},le=\"10\"}}")).ends_with(" 2"));
        assert!(line(&format!("{base},le=\"+Inf\"}}")).ends_with(" 3"));
        assert!(text.contains("logstore_poisoned 0\n"));
    }
}
