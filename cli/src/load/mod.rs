//! A load generator for any server speaking the ssehub HTTP contract
//! (`GET /events`, `POST /admin/events`).
//!
//! It opens N real SSE connections, waits until every one has its response
//! head (so the subscription exists), then publishes `load` events through the
//! admin API at a fixed rate or as fast as the server answers, and reports:
//!
//! - delivered frames per second over all connections;
//! - publish→receive latency percentiles (each event carries its publish wall
//!   clock in nanoseconds; the receiver reads the clock once per socket read);
//! - lost and duplicate events per connection, exact by `seq` (a bitset per
//!   connection against the set of events the server accepted); an event
//!   missing before the newest one a connection received is *lost* (a gap),
//!   one after it is *undelivered* (still queued somewhere when the run
//!   stopped: the offered rate was more than the path could carry);
//! - connect errors, streams the server ended, stream errors;
//! - with `--server-pid`, the server's `VmRSS` before and after connecting,
//!   giving memory per connection.
//!
//! The transport is a raw tokio `TcpStream` with a hand-written HTTP/1.1
//! request and chunked/identity body decoding (the private `http1` module):
//! one task and one 16 KiB buffer per connection, no per-frame allocation in
//! the transport. Frames are parsed with [`crate::parse::Parser`]. An
//! `https://` URL wraps the same client in TLS (rustls, trusting
//! `--cacert`); `--http2-connections N` instead spreads the subscriptions as
//! HTTP/2 streams over N connections through hyper's client (h2 by ALPN
//! over TLS, h2c with prior knowledge over plain TCP).
//!
//! The generator raises its own open-file limit to the hard limit
//! (`setrlimit(RLIMIT_NOFILE)`), since 1,000+ sockets exceed the usual 1,024.
//!
//! Everything is bounded in time: connecting by `--connect-timeout`,
//! publishing by `--duration`, draining by `--drain`.
//!
//! A stream the server ends (reset, shutdown, lag) is not reopened: it is
//! counted in [`Report::ended_by_server`] with the last comment it carried,
//! and the events it missed count as undelivered.
//!
//! `--rate 0` is open loop: the publisher goes as fast as the server accepts
//! publishes, whether or not subscribers keep up, so queues and latency grow
//! without bound; use it to find the publish ceiling, and a fixed rate below
//! saturation to compare latency.
//!
//! # Examples
//!
//! ```no_run
//! # async fn demo() -> Result<(), ssehub_cli::load::LoadError> {
//! use clap::Parser as _;
//! use ssehub_cli::load::{run, LoadArgs};
//!
//! #[derive(clap::Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     load: LoadArgs,
//! }
//! let cli = Cli::parse_from(["load", "--url", "http://127.0.0.1:8080", "--token", "t"]);
//! let report = run(cli.load).await?;
//! assert_eq!(report.lost, 0);
//! # Ok(())
//! # }
//! ```

mod http1;
mod publisher;
mod report;
pub mod soak;
mod subscriber;
mod target;
mod transport;

#[cfg(test)]
mod end_to_end;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

pub use report::{ConnReport, Latency, Report, Rss};

use publisher::{PublishPlan, PublishStats};
use subscriber::{ConnStats, Outcome, SeqSet, Shared};
use target::Target;

/// Command-line arguments of `ssehub load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Base URL of the server (`http://host:port[/prefix]`), or several,
    /// comma-separated (the nodes of a cluster): subscribers are spread
    /// over them round-robin; publishes go to the first unless
    /// `--publish-all`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// With several `--url`s: publisher `i` publishes through url
    /// `i mod n` (use `--publishers n` or more to publish through all).
    #[arg(long)]
    pub publish_all: bool,
    /// Admin bearer token for `POST /admin/events`.
    #[arg(long, alias = "admin-token", env = "SSEHUB_ADMIN_TOKEN")]
    pub token: Option<String>,
    /// SSE connections to open.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub connections: u64,
    /// Events per second to publish; 0 publishes as fast as the server answers.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Events per publish request (a JSON array).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// How long to publish.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// After publishing, how long to wait for the last frames.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Concurrent publishing connections (the rate is split between them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub publishers: u64,
    /// Extra bytes of padding in each event's data.
    #[arg(long, default_value_t = 0)]
    pub payload: usize,
    /// Subscribe with `?event_type=` this comma list instead of to
    /// everything (include `load`, the generator's own type, or nothing
    /// arrives; other types measure the filter's cost).
    #[arg(long)]
    pub event_type: Option<String>,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub connect_concurrency: u64,
    /// Give up on connections not established within this time.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// The server's process id, to report its memory (`/proc/PID/status`).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// PEM certificates to trust for an `https://` URL (e.g. the server's
    /// self-signed certificate). Required for `https://`.
    #[arg(long)]
    pub cacert: Option<std::path::PathBuf>,
    /// Spread the SSE subscriptions over this many HTTP/2 connections (h2
    /// by ALPN over TLS, h2c with prior knowledge over plain TCP) instead
    /// of one HTTP/1.1 connection each; 0 = HTTP/1.1.
    #[arg(long, default_value_t = 0)]
    pub http2_connections: usize,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Include one entry per connection in the report (JSON; the text
    /// report lists the connections that lost events).
    #[arg(long)]
    pub per_connection: bool,
}

/// Why a load run could not produce a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The URL is not `http://host[:port][/prefix]` or does not resolve.
    InvalidUrl(String),
    /// No admin token was given.
    NoToken,
    /// An argument is out of range.
    InvalidArgs(String),
    /// Not a single connection was established.
    NoConnections {
        /// The first error seen.
        first_error: String,
    },
    /// The server refused the admin token.
    Unauthorized,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::InvalidUrl(why) => write!(f, "invalid url: {why}"),
            LoadError::NoToken => {
                f.write_str("no admin token: pass --token or set SSEHUB_ADMIN_TOKEN")
            }
            LoadError::InvalidArgs(why) => write!(f, "invalid arguments: {why}"),
            LoadError::NoConnections { first_error } => {
                write!(f, "no connection established (first error: {first_error})")
            }
            LoadError::Unauthorized => f.write_str("the server refused the admin token"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Runs the load test described by `args`, prints the report (text, or JSON
/// with `--json`) and returns it.
///
/// # Errors
///
/// [`LoadError`] when the run cannot measure anything: a bad URL or argument,
/// no token, no connection established, or the token refused. Everything a
/// server does wrong during the run (errors, bad frames, loss) is counted in
/// the [`Report`] instead.
pub async fn run(args: LoadArgs) -> Result<Report, LoadError> {
    let token = args
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or(LoadError::NoToken)?;
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return Err(LoadError::InvalidArgs(
            "--rate must be 0 or positive".into(),
        ));
    }
    let mut targets = Vec::new();
    for url in args
        .url
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
    {
        let mut target = Target::resolve(url).await?;
        if target.https {
            let cacert = args.cacert.as_deref().ok_or_else(|| {
                LoadError::InvalidArgs("an https:// URL needs --cacert PATH".into())
            })?;
            target.tls = Some(transport::TlsClient::new(cacert, &target.host)?);
        }
        if args.http2_connections > 0 {
            let pool = transport::H2Pool::connect(&target, args.http2_connections).await?;
            target.h2 = Some(Arc::new(pool));
        }
        targets.push(target);
    }
    if targets.is_empty() {
        return Err(LoadError::InvalidUrl("no --url".into()));
    }
    if let Some((soft, _)) = raise_fd_limit() {
        if soft < args.connections + 64 {
            eprintln!(
                "load: warning: open-file limit {soft} is below {} connections + 64",
                args.connections
            );
        }
    }
    let query = match &args.event_type {
        Some(types) => format!("?event_type={}", percent_encode(types)),
        None => String::new(),
    };

    let shared = Arc::new(Shared::new());
    let rss_before = args.server_pid.and_then(report::rss_kib);

    // Connect everything, bounded in concurrency and time.
    eprintln!(
        "load: opening {} connections to {}",
        args.connections, args.url
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(args.connect_concurrency as usize));
    let settled = Arc::new(AtomicU64::new(0));
    let connect_start = Instant::now();
    let connect_deadline = deadline(connect_start, args.connect_timeout);
    let established_count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(args.connections as usize);
    for index in 0..args.connections {
        let (target, query, shared, stop, permits, settled, established_count) = (
            targets[index as usize % targets.len()].clone(),
            query.clone(),
            Arc::clone(&shared),
            stop_rx.clone(),
            Arc::clone(&permits),
            Arc::clone(&settled),
            Arc::clone(&established_count),
        );
        tasks.push(tokio::spawn(async move {
            let connected = {
                let _permit = permits.acquire().await;
                tokio::time::timeout_at(connect_deadline, subscriber::connect(&target, &query))
                    .await
                    .unwrap_or_else(|_| Err("connect timed out".into()))
            };
            match connected {
                Ok((stream, decoder, leftover)) => {
                    shared.live.fetch_add(1, Ordering::Relaxed);
                    established_count.fetch_add(1, Ordering::Relaxed);
                    settled.fetch_add(1, Ordering::Release);
                    subscriber::stream(stream, decoder, leftover, shared, stop).await
                }
                Err(error) => {
                    settled.fetch_add(1, Ordering::Release);
                    let mut stats = subscriber::stream_failed();
                    stats.outcome = Outcome::ConnectFailed(error);
                    stats
                }
            }
        }));
    }
    while settled.load(Ordering::Acquire) < args.connections && Instant::now() < connect_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let established = established_count.load(Ordering::Relaxed);
    eprintln!("load: {established} connections established in {connect_secs:.2} s");
    if established == 0 {
        let _ = stop_tx.send(true);
        let first_error = collect(tasks)
            .await
            .into_iter()
            .find_map(|s| match s.outcome {
                Outcome::ConnectFailed(e) => Some(e),
                _ => None,
            })
            .unwrap_or_else(|| "connect timed out".into());
        return Err(LoadError::NoConnections { first_error });
    }
    // Let the server finish registering subscriptions whose heads we have.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rss_connected = args.server_pid.and_then(report::rss_kib);
    let cpu_connected = args.server_pid.and_then(report::cpu_secs);

    // Publish.
    eprintln!(
        "load: publishing for {} at {} events/s in batches of {}",
        humantime::format_duration(args.duration),
        if args.rate > 0.0 {
            format!("{}", args.rate)
        } else {
            "max".into()
        },
        args.batch
    );
    let publish_start = Instant::now();
    let publish_start_ns = shared.start.elapsed().as_nanos() as u64;
    let until = deadline(publish_start, args.duration);
    let publishers: Vec<_> = (0..args.publishers)
        .map(|index| {
            let target = if args.publish_all {
                &targets[index as usize % targets.len()]
            } else {
                &targets[0]
            };
            let plan = PublishPlan {
                token: token.clone(),
                rate: args.rate / args.publishers as f64,
                batch: args.batch as usize,
                pad: args.payload,
                until,
            };
            spawn_publisher(target.clone(), plan, Arc::clone(&shared))
        })
        .collect();
    let mut published = SeqSet::default();
    let mut publish_stats = PublishStats::default();
    for handle in publishers {
        let stats = handle.await.unwrap_or_else(|_| PublishStats {
            errors: 1,
            first_error: Some("publisher thread failed".into()),
            ..PublishStats::default()
        });
        publish_stats.requests += stats.requests;
        publish_stats.errors += stats.errors;
        publish_stats.unauthorized |= stats.unauthorized;
        if publish_stats.first_error.is_none() {
            publish_stats.first_error = stats.first_error;
        }
        published.union_with(&stats.published);
    }
    let publish_secs = publish_start.elapsed().as_secs_f64();
    let published_count = published.len();
    if publish_stats.unauthorized && published_count == 0 {
        let _ = stop_tx.send(true);
        collect(tasks).await;
        return Err(LoadError::Unauthorized);
    }

    // Drain: until every live connection has everything, or the deadline.
    let drain_deadline = deadline(Instant::now(), args.drain);
    while Instant::now() < drain_deadline {
        let live = shared.live.load(Ordering::Relaxed);
        if shared.delivered.load(Ordering::Relaxed) >= published_count * live {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rss_end = args.server_pid.and_then(report::rss_kib);
    let cpu_end = args.server_pid.and_then(report::cpu_secs);
    let _ = stop_tx.send(true);
    let conns = collect(tasks).await;

    let mut report = Report {
        url: args.url.clone(),
        connections: args.connections,
        established,
        connect_secs,
        published: published_count,
        publish_requests: publish_stats.requests,
        publish_errors: publish_stats.errors,
        first_publish_error: publish_stats.first_error,
        publish_secs,
        publish_rate: published_count as f64 / publish_secs.max(1e-9),
        expected: published_count * established,
        ..Report::default()
    };
    for conn in &conns {
        match &conn.outcome {
            Outcome::ConnectFailed(error) => {
                report.connect_errors += 1;
                report
                    .first_connect_error
                    .get_or_insert_with(|| error.clone());
                continue;
            }
            Outcome::Stopped => {}
            Outcome::EndedByServer(comment) => {
                report.ended_by_server += 1;
                if report.first_end_comment.is_none() {
                    report.first_end_comment = comment.clone();
                }
            }
            Outcome::StreamError(error) => {
                report.stream_errors += 1;
                report
                    .first_stream_error
                    .get_or_insert_with(|| error.clone());
            }
        }
        // Missing below the newest event the connection saw is a gap; above
        // it, the tail had not arrived when the run stopped.
        let missing = conn.seen.missing_from(&published);
        let undelivered = published.count_above(conn.seen.max());
        let lost = missing - undelivered.min(missing);
        report.lost += lost;
        report.undelivered += undelivered.min(missing);
        if lost > 0 {
            report.connections_with_loss += 1;
        }
        report.max_lost_per_connection = report.max_lost_per_connection.max(lost);
        report.delivered += conn.received;
        report.duplicates += conn.duplicates;
        report.bogus += conn.bogus;
        report.foreign += conn.foreign;
        report.comments += conn.comments;
        report.bytes_received += conn.bytes;
        if args.per_connection {
            report.per_connection.push(ConnReport {
                index: report.per_connection.len() as u64,
                outcome: match &conn.outcome {
                    Outcome::Stopped => "streaming".into(),
                    Outcome::EndedByServer(_) => "ended_by_server".into(),
                    Outcome::StreamError(error) => format!("stream_error: {error}"),
                    Outcome::ConnectFailed(_) => "connect_failed".into(),
                },
                received: conn.received,
                lost,
                undelivered: undelivered.min(missing),
                duplicates: conn.duplicates,
            });
        }
    }
    let last_ns = shared.last_delivery_ns.load(Ordering::Relaxed);
    let window = last_ns.saturating_sub(publish_start_ns) as f64 / 1e9;
    report.delivered_per_sec = if window > 0.0 {
        report.delivered as f64 / window
    } else {
        0.0
    };
    report.latency = Latency::from_histogram(&shared.latency.lock());
    if let (Some(before), Some(connected)) = (rss_before, rss_connected) {
        report.rss = Some(Rss {
            before_kib: before,
            connected_kib: connected,
            end_kib: rss_end.unwrap_or(0),
            per_connection_bytes: (connected as f64 - before as f64) * 1024.0 / established as f64,
        });
    }

    if let (Some(connected), Some(end)) = (cpu_connected, cpu_end) {
        report.server_cpu_secs = Some(end - connected);
    }

    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => eprintln!("load: cannot serialize the report: {error}"),
        }
    } else {
        print!("{report}");
    }
    Ok(report)
}

/// `from + after`, or a year from `from` if that overflows.
fn deadline(from: Instant, after: Duration) -> Instant {
    from.checked_add(after)
        .unwrap_or_else(|| from + Duration::from_secs(365 * 24 * 3600))
}

/// Runs a publisher on its own thread and current-thread runtime, so its
/// pacing does not depend on how busy the receiving connections keep the
/// main runtime (they would otherwise delay publishes and understate the
/// offered rate).
fn spawn_publisher(
    target: Target,
    plan: PublishPlan,
    shared: Arc<Shared>,
) -> tokio::sync::oneshot::Receiver<PublishStats> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("load-publisher".into())
        .spawn(move || {
            let stats = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(publisher::publish(target, plan, shared)),
                Err(error) => PublishStats {
                    errors: 1,
                    first_error: Some(format!("publisher runtime: {error}")),
                    ..PublishStats::default()
                },
            };
            let _ = tx.send(stats);
        });
    // If the thread could not start, `tx` was dropped with the closure and
    // the receiver reports it as a failed publisher.
    drop(spawned);
    rx
}

/// Waits for every connection task; a task that panicked counts as a stream
/// error rather than taking the run down.
async fn collect(tasks: Vec<tokio::task::JoinHandle<ConnStats>>) -> Vec<ConnStats> {
    let mut all = Vec::with_capacity(tasks.len());
    for task in tasks {
        all.push(task.await.unwrap_or_else(|error| {
            let mut stats = subscriber::stream_failed();
            stats.outcome = Outcome::StreamError(format!("task failed: {error}"));
            stats
        }));
    }
    all
}

/// Raises the soft open-file limit to the hard limit; returns the new
/// `(soft, hard)` pair, or `None` if the limit cannot be read.
///
/// # Examples
///
/// ```
/// let (soft, hard) = ssehub_cli::load::raise_fd_limit().unwrap();
/// assert!(soft <= hard);
/// ```
#[cfg(unix)]
pub fn raise_fd_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid `rlimit`; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    #[allow(clippy::unnecessary_cast)] // `rlim_t` is not u64 on every unix
    Some((limit.rlim_cur as u64, limit.rlim_max as u64))
}

/// Raising the open-file limit is not supported here.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> Option<(u64, u64)> {
    None
}

/// Percent-encodes a query value (everything but unreserved characters and
/// commas, which the contract uses as the list separator).
fn percent_encode(value: &str) -> String {
    /// Everything but letters, digits and `-._~,` (the comma keeps a type
    /// list readable; the server splits on it either way).
    const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b',');
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_the_fd_limit() {
        let (soft, hard) = raise_fd_limit().unwrap();
        assert!(soft > 0 && soft <= hard);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(percent_encode("a,b c&d"), "a,b%20c%26d");
    }
}
