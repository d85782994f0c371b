//! `logstore`: serve a store over HTTP and the original's TCP protocol, or work on a data
//! directory directly (write, import, query, export, inspect, compact).
//!
//! Errors are one line on stderr and a non-zero exit status.
#![deny(unsafe_code)]

mod inspect;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use logstore_engine::{
    Durability, Key, LogStore, NewEntry, Order, Query, StoreError, StoreOptions,
};
use logstore_server::{
    Server, ServerConfig, filter_value, metadata_text, parse_time, single_line_json,
};
use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "logstore",
    version,
    about = "A log store: serve it, or work on its data directory"
)]
struct Cli {
    /// The data directory.
    #[arg(long, global = true, env = "LOGSTORE_DATA_DIR", default_value = "./logstore-data")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and the TCP protocol until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Append one entry and print its key.
    Write {
        /// Metadata: a JSON object.
        #[arg(long)]
        metadata: Option<String>,
        /// Timestamp: milliseconds, RFC 3339 or relative (-15m); default now.
        #[arg(long, allow_hyphen_values = true)]
        timestamp: Option<String>,
        /// The log message.
        message: String,
    },
    /// Append entries from NDJSON or plain lines, in durable batches.
    Import {
        /// `ndjson`: one `{"message", "metadata"?, "timestamp"?}` per line; `text`: each
        /// non-empty line is a message.
        #[arg(long, value_enum, default_value = "ndjson")]
        format: ImportFormat,
        /// Entries per durable batch.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch_entries: u32,
        /// The file to read; `-` is standard input.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Print matching entries (newest first, 1,000 by default).
    Query(QueryArgs),
    /// Print every entry, oldest first (a query with no bounds).
    Export {
        /// `ndjson` or `text`.
        #[arg(long, value_enum, default_value = "ndjson")]
        format: OutputFormat,
    },
    /// Describe the WAL segments and tables on disk; --verify checks every checksum.
    Inspect {
        /// Read every block of every table and every WAL record, checking checksums.
        #[arg(long)]
        verify: bool,
    },
    /// Merge all tables into one.
    Compact,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// HTTP address, or `off`.
    #[arg(long, env = "LOGSTORE_HTTP", default_value = logstore_server::HTTP_ADDR_DEFAULT)]
    http: String,
    /// TCP protocol address, or `off`. The protocol has no authentication.
    #[arg(long, env = "LOGSTORE_TCP", default_value = logstore_server::TCP_ADDR_DEFAULT)]
    tcp: String,
    /// When appends are acknowledged: `sync` (durable), `batch` (synced within 10 ms), `none`.
    #[arg(long, env = "LOGSTORE_DURABILITY", value_enum, default_value = "sync")]
    durability: DurabilityArg,
    /// Require `Authorization: Bearer <token>` on the HTTP API (all but /health).
    #[arg(long, env = "LOGSTORE_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Largest POST body, in bytes.
    #[arg(long, env = "LOGSTORE_BODY_BYTES_MAX", default_value_t = logstore_server::BODY_BYTES_MAX_DEFAULT)]
    body_bytes_max: usize,
    /// Most HTTP connections at once.
    #[arg(long, env = "LOGSTORE_HTTP_CONNECTIONS_MAX", default_value_t = logstore_server::HTTP_CONNECTIONS_MAX_DEFAULT)]
    http_connections_max: usize,
    /// Seconds an HTTP connection may take to send a whole request head (from opening, or from
    /// the previous response) before it is closed (0: no limit).
    #[arg(long, env = "LOGSTORE_HTTP_HEADER_TIMEOUT_S", default_value_t = logstore_server::HTTP_HEADER_TIMEOUT_DEFAULT.as_secs())]
    http_header_timeout_s: u64,
    /// Seconds an HTTP request body may take to arrive whole after its head before the request
    /// is answered 408 and the connection closed (0: no limit).
    #[arg(long, env = "LOGSTORE_HTTP_BODY_TIMEOUT_S", default_value_t = logstore_server::HTTP_BODY_TIMEOUT_DEFAULT.as_secs())]
    http_body_timeout_s: u64,
    /// Most TCP protocol connections at once.
    #[arg(long, env = "LOGSTORE_TCP_CONNECTIONS_MAX", default_value_t = logstore_server::TCP_CONNECTIONS_MAX_DEFAULT)]
    tcp_connections_max: usize,
    /// Seconds a TCP connection may wait for its next whole request before it is closed (0: no
    /// limit).
    #[arg(long, env = "LOGSTORE_TCP_IDLE_TIMEOUT_S", default_value_t = logstore_server::TCP_IDLE_TIMEOUT_DEFAULT.as_secs())]
    tcp_idle_timeout_s: u64,
    /// Seconds a connection (HTTP or TCP) may leave the server's replies unread, its writes
    /// blocked, before it is closed (0: no limit).
    #[arg(long, env = "LOGSTORE_WRITE_STALL_TIMEOUT_S", default_value_t = logstore_server::WRITE_STALL_TIMEOUT_DEFAULT.as_secs())]
    write_stall_timeout_s: u64,
    /// Most queries streaming at once; more wait their turn.
    #[arg(long, env = "LOGSTORE_QUERIES_MAX", default_value_t = logstore_server::QUERIES_MAX_DEFAULT)]
    queries_max: usize,
    /// Seconds requests in flight may take after SIGINT/SIGTERM before the server stops anyway.
    #[arg(long, env = "LOGSTORE_SHUTDOWN_GRACE_S", default_value_t = logstore_server::SHUTDOWN_GRACE_DEFAULT.as_secs())]
    shutdown_grace_s: u64,
}

#[derive(clap::Args)]
struct QueryArgs {
    /// Oldest time: milliseconds, RFC 3339 or relative (-15m, -2h, -7d).
    #[arg(long, allow_hyphen_values = true)]
    from: Option<String>,
    /// Newest time, as --from.
    #[arg(long, allow_hyphen_values = true)]
    to: Option<String>,
    /// Most entries printed.
    #[arg(long, default_value_t = logstore_server::QUERY_LIMIT_DEFAULT)]
    limit: usize,
    /// `desc` (newest first) or `asc`.
    #[arg(long, value_enum, default_value = "desc")]
    order: OrderArg,
    /// Only messages containing this text.
    #[arg(long)]
    contains: Option<String>,
    /// Only entries whose metadata field KEY equals VALUE (JSON if it parses, else a string).
    #[arg(long = "where", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// `ndjson` or `text`.
    #[arg(long, value_enum, default_value = "ndjson")]
    format: OutputFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportFormat {
    Ndjson,
    Text,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Ndjson,
    Text,
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    Asc,
    Desc,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Sync,
    Batch,
    None,
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("logstore: internal error: {info}");
    }));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS; // `logstore export | head`
            }
            eprintln!("logstore: error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<()> {
    let dir = cli.data_dir;
    match cli.command {
        Command::Serve(args) => serve(&dir, args),
        Command::Write { metadata, timestamp, message } => {
            let store = open(&dir, StoreOptions::default())?;
            let mut entry = NewEntry::new(message);
            if let Some(metadata) = &metadata {
                entry = entry
                    .metadata(metadata_text(metadata).map_err(|e| anyhow!("--metadata: {e}"))?);
            }
            if let Some(timestamp) = &timestamp {
                entry = entry.timestamp_ms(
                    parse_time(timestamp, now_ms()).map_err(|e| anyhow!("--timestamp: {e}"))?,
                );
            }
            let key = store.append_entry(&entry).context("write")?;
            store.close().context("close the store")?;
            println!("{key}");
            Ok(())
        }
        Command::Import { format, batch_entries, file } => {
            import(&dir, format, batch_entries as usize, &file)
        }
        Command::Query(args) => {
            let now = now_ms();
            let time = |text: &Option<String>, flag: &str, default: u64| match text {
                None => Ok(default),
                Some(text) => parse_time(text, now).map_err(|e| anyhow!("{flag}: {e}")),
            };
            let mut query = Query::new()
                .time_range(time(&args.from, "--from", 0)?..=time(&args.to, "--to", u64::MAX)?)
                .limit(args.limit)
                .order(match args.order {
                    OrderArg::Asc => Order::Ascending,
                    OrderArg::Desc => Order::Descending,
                });
            query.contains = args.contains;
            for filter in &args.filters {
                let (key, value) = filter
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--where {filter:?}: expected KEY=VALUE"))?;
                query = query.metadata_equals(key, filter_value(value));
            }
            print_query(&dir, &query, args.format)
        }
        Command::Export { format } => print_query(&dir, &Query::new(), format),
        Command::Inspect { verify } => inspect::run(&dir, verify),
        Command::Compact => {
            let store = open(&dir, StoreOptions::default())?;
            let before = store.stats();
            store.flush().context("flush")?;
            store.compact().context("compact")?;
            let after = store.stats();
            store.close().context("close the store")?;
            println!(
                "tables: {} ({} bytes) -> {} ({} bytes); {} entries",
                before.tables, before.table_bytes, after.tables, after.table_bytes, after.entries
            );
            Ok(())
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Opens the store, saying what to do when a server holds it.
fn open(dir: &Path, options: StoreOptions) -> Result<LogStore> {
    LogStore::open(dir, options).map_err(|e| match e {
        StoreError::Locked { .. } => {
            anyhow!("{e} (is `logstore serve` running on it? use its HTTP API instead)")
        }
        e => anyhow::Error::new(e).context(format!("open data directory {}", dir.display())),
    })
}

fn address(text: &str, flag: &str) -> Result<Option<SocketAddr>> {
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| anyhow!("{flag} {text:?}: {e} (expected IP:PORT or off)"))
}

fn serve(dir: &Path, args: ServeArgs) -> Result<()> {
    let durability = match args.durability {
        DurabilityArg::Sync => Durability::Sync,
        DurabilityArg::Batch => {
            Durability::Batch { max_delay: Duration::from_millis(10), max_bytes: 4 << 20 }
        }
        DurabilityArg::None => Durability::None,
    };
    let config = ServerConfig {
        http_addr: address(&args.http, "--http")?,
        tcp_addr: address(&args.tcp, "--tcp")?,
        auth_token: args.auth_token.filter(|t| !t.is_empty()),
        body_bytes_max: args.body_bytes_max,
        http_connections_max: args.http_connections_max,
        http_header_timeout: Duration::from_secs(args.http_header_timeout_s),
        http_body_timeout: Duration::from_secs(args.http_body_timeout_s),
        tcp_connections_max: args.tcp_connections_max,
        tcp_idle_timeout: Duration::from_secs(args.tcp_idle_timeout_s),
        write_stall_timeout: Duration::from_secs(args.write_stall_timeout_s),
        queries_max: args.queries_max,
        shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
    };
    if config.http_addr.is_none() && config.tcp_addr.is_none() {
        bail!("both --http and --tcp are off: nothing to serve");
    }
    let store = Arc::new(open(dir, StoreOptions { durability, ..StoreOptions::default() })?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the runtime")?;
    let served = runtime.block_on(async {
        let server = Server::bind(store.clone(), config.clone()).await?;
        let show = |addr: Option<SocketAddr>| addr.map_or("off".to_owned(), |a| a.to_string());
        println!(
            "logstore: serving data_dir={} http={} tcp={} durability={}",
            dir.display(),
            show(server.http_addr()),
            show(server.tcp_addr()),
            args.durability.to_possible_value().map_or("?".into(), |v| v.get_name().to_owned()),
        );
        if config.auth_token.is_some() && config.tcp_addr.is_some_and(|a| !a.ip().is_loopback()) {
            eprintln!("logstore: warning: the TCP protocol has no authentication and listens beyond loopback");
        }
        let _ = std::io::stdout().flush();
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("install the SIGTERM handler")?;
        server
            .run(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                eprintln!("logstore: shutting down: finishing requests in flight");
            })
            .await;
        anyhow::Ok(())
    });
    // Requests in flight are done (or the server failed): make everything durable either way.
    let closed = store.flush().and_then(|()| store.close());
    runtime.shutdown_timeout(Duration::from_secs(5));
    served?;
    closed.context("flush and close the store")?;
    eprintln!("logstore: stopped");
    Ok(())
}

fn import(dir: &Path, format: ImportFormat, batch_entries: usize, file: &Path) -> Result<()> {
    let (input, size): (Box<dyn BufRead>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let opened =
            std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
        let size = opened.metadata().ok().map(|m| m.len());
        (Box::new(std::io::BufReader::with_capacity(1 << 20, opened)), size)
    };
    let progress = match size {
        Some(size) => indicatif::ProgressBar::new(size),
        None => indicatif::ProgressBar::no_length(),
    };
    if !std::io::stderr().is_terminal() {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let store = open(dir, StoreOptions::default())?;
    let mut importer = Importer { store: &store, batch: Vec::new(), lines: Vec::new(), written: 0 };
    let outcome = (|| -> Result<()> {
        for (index, line) in input.split(b'\n').enumerate() {
            let number = index as u64 + 1;
            let line = line.with_context(|| format!("read line {number}"))?;
            progress.inc(line.len() as u64 + 1);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry = match format {
                ImportFormat::Text => NewEntry::new(
                    String::from_utf8(line.to_vec())
                        .map_err(|e| anyhow!("line {number}: not UTF-8: {e}"))?,
                ),
                ImportFormat::Ndjson => {
                    let parsed = logstore_server::fuzzing::parse_ingest_body(line)
                        .map_err(|e| anyhow!("line {number}: {}", e.message))?;
                    let [entry] = <[_; 1]>::try_from(parsed.entries)
                        .map_err(|_| anyhow!("line {number}: expected one JSON object per line"))?;
                    owned(entry)
                }
            };
            importer.batch.push(entry);
            importer.lines.push(number);
            if importer.batch.len() >= batch_entries {
                importer.commit()?;
                progress.set_message(format!("{} entries", importer.written));
            }
        }
        importer.commit()
    })();
    progress.finish_and_clear();
    let written = importer.written;
    let closed = store.close();
    match outcome {
        Ok(()) => {
            closed.context("close the store")?;
            println!("imported {written} entries");
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "import stopped; the {written} entries before it are written and durable, none after"
        ))),
    }
}

/// Entries gathered for the next durable batch, and the input line of each.
struct Importer<'s> {
    store: &'s LogStore,
    batch: Vec<NewEntry<'static>>,
    lines: Vec<u64>,
    written: u64,
}

impl Importer<'_> {
    fn commit(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.append_batch(&self.batch) {
            let line = match &e {
                StoreError::InvalidEntry { index, .. }
                | StoreError::TimestampOutOfRange { index, .. } => self.lines.get(*index).copied(),
                _ => None,
            };
            return Err(match line {
                Some(line) => anyhow!("line {line}: {e}"),
                None => anyhow::Error::new(e).context("append"),
            });
        }
        self.written += self.batch.len() as u64;
        self.batch.clear();
        self.lines.clear();
        Ok(())
    }
}

fn owned(entry: NewEntry<'_>) -> NewEntry<'static> {
    NewEntry {
        message: entry.message.into_owned().into(),
        metadata: entry.metadata.map(|m| m.into_owned().into()),
        timestamp_ms: entry.timestamp_ms,
    }
}

fn print_query(dir: &Path, query: &Query, format: OutputFormat) -> Result<()> {
    let store = open(dir, StoreOptions::default())?;
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut iter = store.query(query).context("query")?;
    while let Some(entry) = iter.next_entry() {
        let entry = entry.context("read")?;
        let metadata = entry.metadata.as_deref().unwrap_or("null");
        match format {
            OutputFormat::Ndjson => {
                write!(
                    out,
                    r#"{{"timestamp":{},"seq":{},"message":"#,
                    entry.key.timestamp_ms, entry.key.seq
                )?;
                serde_json::to_writer(&mut out, &*entry.message)?;
                writeln!(out, r#","metadata":{}}}"#, single_line_json(metadata))?;
            }
            OutputFormat::Text => {
                write!(out, "{} {}", rfc3339(entry.key), entry.message)?;
                match &entry.metadata {
                    Some(metadata) => writeln!(out, " {}", single_line_json(metadata))?,
                    None => writeln!(out)?,
                }
            }
        }
    }
    out.flush()?;
    drop(iter);
    store.close().context("close the store")?;
    Ok(())
}

fn rfc3339(key: Key) -> String {
    i64::try_from(key.timestamp_ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| format!("{}ms", key.timestamp_ms), |t| format!("{t:.3}"))
}
