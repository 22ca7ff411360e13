//! The load generator's result: what was published, what arrived, how late,
//! and what the server's memory did.

use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Publish→receive latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Number of samples (unique load events received).
    pub samples: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Latency {
    pub(crate) fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Latency {
            samples: histogram.len(),
            p50_us: us(histogram.value_at_quantile(0.50)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
            mean_us: histogram.mean() / 1_000.0,
        }
    }
}

/// The server's resident memory, from `/proc/PID/status` (`VmRSS`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Rss {
    /// Before any connection was opened, KiB.
    pub before_kib: u64,
    /// Once every connection was established (before publishing), KiB.
    pub connected_kib: u64,
    /// At the end of the run, connections still open, KiB.
    pub end_kib: u64,
    /// `(connected - before) / established connections`, bytes.
    pub per_connection_bytes: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    /// The server's base URL.
    pub url: String,
    /// Connections asked for.
    pub connections: u64,
    /// Connections that got a 200 event stream.
    pub established: u64,
    /// Connections that failed to connect or got a non-200 answer.
    pub connect_errors: u64,
    /// The first connect error, if any.
    pub first_connect_error: Option<String>,
    /// Seconds to establish all connections.
    pub connect_secs: f64,
    /// Events the server accepted (200).
    pub published: u64,
    /// Publish requests made.
    pub publish_requests: u64,
    /// Publish requests that failed.
    pub publish_errors: u64,
    /// The first publish error, if any.
    pub first_publish_error: Option<String>,
    /// Seconds spent publishing.
    pub publish_secs: f64,
    /// `published / publish_secs`.
    pub publish_rate: f64,
    /// Unique load events received, summed over connections.
    pub delivered: u64,
    /// `published × established`: what a lossless run delivers.
    pub expected: u64,
    /// `delivered / (last delivery − publish start)`.
    pub delivered_per_sec: f64,
    /// Publish→receive latency.
    pub latency: Latency,
    /// Published events missing before the newest event a connection
    /// received (gaps), summed.
    pub lost: u64,
    /// Published events after the newest one a connection received: still
    /// in flight when the run stopped, summed.
    pub undelivered: u64,
    /// Connections that lost at least one event.
    pub connections_with_loss: u64,
    /// The most events one connection lost.
    pub max_lost_per_connection: u64,
    /// Events a connection received more than once, summed.
    pub duplicates: u64,
    /// Load events with a `seq` never published or malformed data.
    pub bogus: u64,
    /// Events of other types.
    pub foreign: u64,
    /// Comment lines (keep-alives) received.
    pub comments: u64,
    /// Streams the server ended before the run stopped them.
    pub ended_by_server: u64,
    /// The last comment of the first stream the server ended (its reason).
    pub first_end_comment: Option<String>,
    /// Streams that broke (bad framing, parser limit, socket error).
    pub stream_errors: u64,
    /// The first stream error, if any.
    pub first_stream_error: Option<String>,
    /// Body bytes received, all connections.
    pub bytes_received: u64,
    /// Server memory, with `--server-pid`.
    pub rss: Option<Rss>,
    /// Server CPU-seconds (user + system) from the moment every connection
    /// was established to the end of the drain, with `--server-pid`: the
    /// cost of publishing and delivering, without connecting (TLS
    /// handshakes included).
    pub server_cpu_secs: Option<f64>,
    /// One entry per established connection, with `--per-connection`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_connection: Vec<ConnReport>,
}

/// What one connection saw (`--per-connection`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConnReport {
    /// Position among the established connections.
    pub index: u64,
    /// `streaming` (stopped by the run), `ended_by_server`, or
    /// `stream_error: ...`.
    pub outcome: String,
    /// Unique load events received.
    pub received: u64,
    /// Gaps: published events missing before the newest one received.
    pub lost: u64,
    /// Published events after the newest one received.
    pub undelivered: u64,
    /// Events received more than once.
    pub duplicates: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ssehub load report: {}", self.url)?;
        writeln!(
            f,
            "  connections   {} of {} established in {:.2} s, {} connect errors{}",
            self.established,
            self.connections,
            self.connect_secs,
            self.connect_errors,
            note(&self.first_connect_error)
        )?;
        writeln!(
            f,
            "  published     {} events in {} requests over {:.2} s ({:.0} events/s), {} errors{}",
            self.published,
            self.publish_requests,
            self.publish_secs,
            self.publish_rate,
            self.publish_errors,
            note(&self.first_publish_error)
        )?;
        writeln!(
            f,
            "  delivered     {} of {} frames ({:.0} frames/s), {:.1} MiB",
            self.delivered,
            self.expected,
            self.delivered_per_sec,
            self.bytes_received as f64 / (1024.0 * 1024.0)
        )?;
        let l = &self.latency;
        writeln!(
            f,
            "  latency       p50 {:.0} us  p99 {:.0} us  p99.9 {:.0} us  max {:.0} us  mean {:.0} us",
            l.p50_us, l.p99_us, l.p999_us, l.max_us, l.mean_us
        )?;
        writeln!(
            f,
            "  lost          {} ({} connections, at most {} on one), undelivered {}, duplicates {}, bogus {}",
            self.lost,
            self.connections_with_loss,
            self.max_lost_per_connection,
            self.undelivered,
            self.duplicates,
            self.bogus
        )?;
        writeln!(
            f,
            "  streams       {} ended by server{}, {} errors{}; {} comments, {} other events",
            self.ended_by_server,
            note(&self.first_end_comment),
            self.stream_errors,
            note(&self.first_stream_error),
            self.comments,
            self.foreign
        )?;
        for conn in self
            .per_connection
            .iter()
            .filter(|c| c.lost + c.duplicates > 0)
        {
            writeln!(
                f,
                "  connection {:<5} {} received, {} lost, {} undelivered, {} duplicates ({})",
                conn.index,
                conn.received,
                conn.lost,
                conn.undelivered,
                conn.duplicates,
                conn.outcome
            )?;
        }
        if let Some(rss) = &self.rss {
            writeln!(
                f,
                "  server rss    {} KiB before, {} KiB connected, {} KiB at end: {:.0} bytes per connection",
                rss.before_kib, rss.connected_kib, rss.end_kib, rss.per_connection_bytes
            )?;
        }
        Ok(())
    }
}

fn note(text: &Option<String>) -> String {
    text.as_ref()
        .map_or_else(String::new, |t| format!(" (first: {t})"))
}

/// `VmRSS` of process `pid` in KiB, if readable.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// CPU time (user + system) of process `pid` in seconds, if readable.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    #[cfg(unix)]
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    #[cfg(not(unix))]
    let ticks_per_sec = 100;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / ticks_per_sec.max(1) as f64)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line; the
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks() {
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 1";
        assert_eq!(parse_cpu_ticks(stat), Some(267));
        assert_eq!(parse_cpu_ticks("42 (x"), None);
        assert!(cpu_secs(std::process::id()).is_some());
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tssehub\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(5120));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn latency_from_histogram() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        assert_eq!(Latency::from_histogram(&histogram), Latency::default());
        for us in 1..=1000u64 {
            histogram.record(us * 1000).unwrap();
        }
        let latency = Latency::from_histogram(&histogram);
        assert_eq!(latency.samples, 1000);
        assert!((latency.p50_us - 500.0).abs() < 1.0, "{latency:?}");
        assert!((latency.max_us - 1000.0).abs() < 1.0, "{latency:?}");
    }

    #[test]
    fn report_prints_and_serializes() {
        let report = Report {
            url: "http://127.0.0.1:1".into(),
            rss: Some(Rss::default()),
            ..Report::default()
        };
        let text = report.to_string();
        assert!(
            text.contains("latency") && text.contains("server rss"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["latency"]["p99_us"], 0.0);
    }
}
