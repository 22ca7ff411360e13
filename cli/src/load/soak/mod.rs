//! The soak and fault harness: drives a running `ssehub serve` over
//! loopback for a bounded time with the traffic a server exposed to the
//! internet meets, and checks what must hold throughout.
//!
//! # What it does
//!
//! - a fast publisher (`--rate` events per second in `--batch`es);
//! - a reset every `--reset-every`;
//! - `--steady` readers that read everything;
//! - `--lagging` readers with a 4 KiB receive buffer that stop reading for
//!   `--pause` at a time (the server laps them);
//! - `--stalled` readers that stop reading for good after the first bytes;
//! - `--mid-frame` readers that hang up in the middle of a frame (by `FIN`
//!   and by `RST`, alternately) and resume with `Last-Event-ID`;
//! - every `--burst-every`, `--burst` connects at once, beyond the server's
//!   subscriber limit;
//! - `/healthz` probes, `/admin/stats` and the server's `VmRSS` sampled.
//!
//! # What it checks
//!
//! Each check prints one `PASS name: figures` or `FAIL name: why` line; the
//! run fails if any fails. Every check also requires that the behaviour it
//! judges actually happened (events delivered, streams lagged, connects
//! refused, …), so an idle run cannot pass.
//!
//! 1. `steady_no_gap_or_duplicate` — within a generation, steady readers see
//!    consecutive auto-id numbers (`<16 hex generation>-<n>`), never a hole,
//!    a repeat, or two generations on one stream.
//! 2. `steady_streams_end_cleanly` — a steady stream ends only by a reset,
//!    with `: end reset`; opening one gets 200 or the contract's 503.
//! 3. `resets_start_generations` — every reset answers 204 and the steady
//!    readers meet at least as many generations as there were resets.
//! 4. `old_generation_resume_is_410` — after `: end reset`, resuming from
//!    the last id is 410 `resume_point_expired`.
//! 5. `lagged_streams_end_cleanly` — pausing readers are ended with
//!    `: end lagged` (or `: end reset`), never with a gap or an error.
//! 6. `lagged_resume_is_410` — resuming from a lagged stream's last id is
//!    410 `resume_point_expired`.
//! 7. `mid_frame_resume_continues` — after a hang-up mid-frame, the resumed
//!    stream starts at exactly the next event (or is 410 when a reset came
//!    in between).
//! 8. `stalled_readers_closed` — the server closes every connection that
//!    stopped reading within twice `--write-timeout` (one blocked write,
//!    then the final comment's write) plus 5 s, whichever way it ends it
//!    (lapped, reset, or the write timeout; the server log names the
//!    reason, and `scripts/soak.sh` prints the counts). Each stall is judged
//!    at that bound, so the run lasts up to that much past `--duration`.
//! 9. `burst_refused_cleanly` — connects beyond the limit get 503
//!    `too_many_subscribers` with `Retry-After: 1`; none fails otherwise.
//! 10. `subscriber_limit_holds` — `active_subscribers` never exceeds
//!     `--max-subscribers`.
//! 11. `publisher_accepted` — every publish answers 200.
//! 12. `healthz_throughout` — every probe answers 200 `ok` within 5 s.
//! 13. `rss_bounded` — the server's peak `VmRSS` stays under `--rss-limit`.
//!
//! `scripts/soak.sh` starts the server, runs this, and adds its own checks
//! (no panic in the server log, a clean exit on SIGTERM).

mod client;
mod pressure;
mod sequence;
mod subscribers;
mod watch;

use std::fmt::Write as _;
use std::time::Duration;

use tokio::sync::watch as signal;

use subscribers::{Failures, LaggingReport, MidFrameReport, StalledReport, SteadyReport};

use super::target::Target;
use super::{raise_fd_limit, LoadError};

/// Command-line arguments of the soak.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Base URL of the server (`http://host:port`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin bearer token.
    #[arg(long, env = "SSEHUB_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The server's process id (its `VmRSS` is sampled).
    #[arg(long)]
    pub server_pid: u32,
    /// How long to run the traffic.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Readers that read everything.
    #[arg(long, default_value_t = 60)]
    pub steady: u64,
    /// Readers that pause (and get lapped).
    #[arg(long, default_value_t = 6)]
    pub lagging: u64,
    /// How long a pausing reader stops reading at a time (keep it under
    /// the server's write timeout).
    #[arg(long, default_value = "4500ms", value_parser = humantime::parse_duration)]
    pub pause: Duration,
    /// Readers that stop reading for good.
    #[arg(long, default_value_t = 6)]
    pub stalled: u64,
    /// Readers that hang up mid-frame and resume.
    #[arg(long, default_value_t = 8)]
    pub mid_frame: u64,
    /// Events published per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Events per publish request.
    #[arg(long, default_value_t = 10)]
    pub batch: u64,
    /// Bytes of padding in each event (large enough that a paused reader's
    /// socket buffers hold well under a ring's worth of frames).
    #[arg(long, default_value_t = 600)]
    pub payload: usize,
    /// Interval between resets (longer than `--pause`, or a reset ends a
    /// pausing reader before it is lapped).
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    pub reset_every: Duration,
    /// Connects per burst.
    #[arg(long, default_value_t = 300)]
    pub burst: u64,
    /// Interval between bursts.
    #[arg(long, default_value = "7s", value_parser = humantime::parse_duration)]
    pub burst_every: Duration,
    /// How long a burst connection that got a stream holds it.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub burst_hold: Duration,
    /// The server's `--max-subscribers`.
    #[arg(long)]
    pub max_subscribers: u64,
    /// The server's write timeout for a client that does not read.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub write_timeout: Duration,
    /// Bound on the server's peak resident memory.
    #[arg(long, default_value = "96MiB", value_parser = crate::config::parse_size)]
    pub rss_limit: usize,
}

/// One verdict.
#[derive(Debug, Clone)]
pub struct Check {
    /// Stable snake_case name.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// Figures when it passed, the reason when it did not.
    pub detail: String,
}

/// Everything a soak run measured and judged.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// The verdicts, in the order of the module docs.
    pub checks: Vec<Check>,
    /// One line of figures: events, reconnects, resets, RSS.
    pub figures: String,
}

impl SoakReport {
    /// Number of failed checks.
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|check| !check.passed).count()
    }
}

fn check(name: &'static str, passed: bool, detail: String) -> Check {
    Check {
        name,
        passed,
        detail,
    }
}

/// Runs the soak, prints one line per check and the figures, and returns
/// the report.
///
/// # Errors
///
/// [`LoadError`] when it cannot start: a bad URL, no token, bad arguments.
/// Everything the server does wrong is a failed [`Check`] instead.
pub async fn run(args: SoakArgs) -> Result<SoakReport, LoadError> {
    let token = args
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or(LoadError::NoToken)?;
    if !(args.rate.is_finite() && args.rate > 0.0) || args.batch == 0 {
        return Err(LoadError::InvalidArgs(
            "--rate must be positive and --batch at least 1".into(),
        ));
    }
    let target = Target::resolve(&args.url).await?;
    raise_fd_limit();
    let (stop_tx, stop) = signal::channel(false);
    let rss = tokio::spawn(watch::rss(
        args.server_pid,
        Duration::from_millis(250),
        stop.clone(),
    ));
    let health = tokio::spawn(watch::healthz(
        target.clone(),
        Duration::from_millis(500),
        stop.clone(),
    ));
    let stats = tokio::spawn(watch::stats(
        target.clone(),
        token.clone(),
        Duration::from_secs(1),
        stop.clone(),
    ));
    let steady: Vec<_> = (0..args.steady)
        .map(|_| tokio::spawn(subscribers::steady(target.clone(), stop.clone())))
        .collect();
    let lagging: Vec<_> = (0..args.lagging)
        .map(|_| {
            tokio::spawn(subscribers::lagging(
                target.clone(),
                args.pause,
                stop.clone(),
            ))
        })
        .collect();
    let close_within = args.write_timeout * 2 + Duration::from_secs(5);
    let stalled: Vec<_> = (0..args.stalled)
        .map(|_| {
            tokio::spawn(subscribers::stalled(
                target.clone(),
                close_within,
                stop.clone(),
            ))
        })
        .collect();
    let mid_frame: Vec<_> = (0..args.mid_frame)
        .map(|seed| {
            tokio::spawn(subscribers::mid_frame(
                target.clone(),
                seed * 13,
                stop.clone(),
            ))
        })
        .collect();
    // Let the first subscribers in before the traffic starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let publisher = tokio::spawn(pressure::publish(
        target.clone(),
        token.clone(),
        args.rate,
        args.batch,
        args.payload,
        stop.clone(),
    ));
    let resets = tokio::spawn(pressure::reset(
        target.clone(),
        token.clone(),
        args.reset_every,
        stop.clone(),
    ));
    let bursts = tokio::spawn(pressure::bursts(
        target.clone(),
        args.burst,
        args.burst_every,
        args.burst_hold,
        stop.clone(),
    ));
    eprintln!(
        "soak: {} steady, {} lagging, {} stalled, {} mid-frame readers; {} events/s; reset every {}; {} connects every {}; for {}",
        args.steady,
        args.lagging,
        args.stalled,
        args.mid_frame,
        args.rate,
        humantime::format_duration(args.reset_every),
        args.burst,
        humantime::format_duration(args.burst_every),
        humantime::format_duration(args.duration),
    );
    tokio::time::sleep(args.duration).await;
    let _ = stop_tx.send(true);

    let mut task_failures = Failures::default();
    let publish = joined(publisher.await, &mut task_failures);
    let resets = joined(resets.await, &mut task_failures);
    let bursts = joined(bursts.await, &mut task_failures);
    let health = joined(health.await, &mut task_failures);
    let stats = joined(stats.await, &mut task_failures);
    let mut steady_report = SteadyReport::default();
    for task in steady {
        steady_report.absorb(joined(task.await, &mut task_failures));
    }
    let mut lagging_report = LaggingReport::default();
    for task in lagging {
        lagging_report.absorb(joined(task.await, &mut task_failures));
    }
    let mut mid_report = MidFrameReport::default();
    for task in mid_frame {
        mid_report.absorb(joined(task.await, &mut task_failures));
    }
    let mut stalled_report = StalledReport::default();
    for task in stalled {
        stalled_report.absorb(joined(task.await, &mut task_failures));
    }
    let rss = joined(rss.await, &mut task_failures);

    let mut checks = Vec::new();
    let seq = &steady_report.sequence;
    checks.push(check(
        "steady_no_gap_or_duplicate",
        seq.clean() && seq.events > 0,
        format!(
            "{} events on {} streams, {} missed, {} duplicates, {} without auto id, {} crossed generations{}",
            seq.events,
            steady_report.streams,
            seq.missed,
            seq.duplicates,
            seq.bad_ids,
            seq.crossed_generations,
            first(&seq.first_problem)
        ),
    ));
    let unclean_ends: u64 = steady_report
        .ends
        .iter()
        .filter(|(reason, _)| reason.as_str() != "reset")
        .map(|(_, count)| count)
        .sum();
    checks.push(check(
        "steady_streams_end_cleanly",
        unclean_ends == 0 && steady_report.failures.count == 0 && steady_report.streams > 0,
        format!(
            "ends {:?}; {} refused 503 on reconnect; failures: {}",
            steady_report.ends,
            steady_report.refused,
            steady_report.failures.describe()
        ),
    ));
    checks.push(check(
        "resets_start_generations",
        resets.resets > 0
            && resets.failures.count == 0
            && steady_report.generations.len() as u64 >= resets.resets,
        format!(
            "{} resets answered 204, {} generations seen by steady readers; failures: {}",
            resets.resets,
            steady_report.generations.len(),
            resets.failures.describe()
        ),
    ));
    checks.push(check(
        "old_generation_resume_is_410",
        steady_report.old_generation_gone > 0 && steady_report.old_generation_wrong.count == 0,
        format!(
            "{} resumes from a reset generation got 410 resume_point_expired; wrong: {}",
            steady_report.old_generation_gone,
            steady_report.old_generation_wrong.describe()
        ),
    ));
    let lseq = &lagging_report.sequence;
    let lagging_bad_ends: u64 = lagging_report
        .ends
        .iter()
        .filter(|(reason, _)| !matches!(reason.as_str(), "lagged" | "reset"))
        .map(|(_, count)| count)
        .sum();
    checks.push(check(
        "lagged_streams_end_cleanly",
        lagging_report.lagged > 0
            && lseq.clean()
            && lagging_bad_ends == 0
            && lagging_report.failures.count == 0,
        format!(
            "{} streams, ends {:?}, {} events, {} missed, {} duplicates{}; failures: {}",
            lagging_report.streams,
            lagging_report.ends,
            lseq.events,
            lseq.missed,
            lseq.duplicates,
            first(&lseq.first_problem),
            lagging_report.failures.describe()
        ),
    ));
    checks.push(check(
        "lagged_resume_is_410",
        lagging_report.lagged_gone > 0 && lagging_report.lagged_wrong.count == 0,
        format!(
            "{} of {} lagged streams' resumes got 410 resume_point_expired; wrong: {}",
            lagging_report.lagged_gone,
            lagging_report.lagged,
            lagging_report.lagged_wrong.describe()
        ),
    ));
    let mseq = &mid_report.sequence;
    checks.push(check(
        "mid_frame_resume_continues",
        mid_report.hangups > 0
            && mid_report.resumed > 0
            && mseq.clean()
            && mid_report.failures.count == 0,
        format!(
            "{} hang-ups mid-frame, {} resumed streams, {} resumes 410 (reset in between), {} events, {} missed, {} duplicates{}; failures: {}",
            mid_report.hangups,
            mid_report.resumed,
            mid_report.resume_gone,
            mseq.events,
            mseq.missed,
            mseq.duplicates,
            first(&mseq.first_problem),
            mid_report.failures.describe()
        ),
    ));
    checks.push(check(
        "stalled_readers_closed",
        stalled_report.stalls > 0
            && stalled_report.closed == stalled_report.stalls
            && stalled_report.failures.count == 0,
        format!(
            "{} of {} stalled connections closed by the server within {} of the stall (largest backlog read after: {} bytes); failures: {}",
            stalled_report.closed,
            stalled_report.stalls,
            humantime::format_duration(close_within),
            stalled_report.largest_backlog,
            stalled_report.failures.describe()
        ),
    ));
    checks.push(check(
        "burst_refused_cleanly",
        bursts.refused > 0 && bursts.failures.count == 0,
        format!(
            "{} bursts of {}: {} streams, {} refused 503 too_many_subscribers Retry-After 1; failures: {}",
            bursts.bursts,
            args.burst,
            bursts.accepted,
            bursts.refused,
            bursts.failures.describe()
        ),
    ));
    checks.push(check(
        "subscriber_limit_holds",
        stats.samples > 0 && stats.max_active <= args.max_subscribers && stats.failures.count == 0,
        format!(
            "largest active_subscribers {} of {} samples, limit {}; failures: {}",
            stats.max_active,
            stats.samples,
            args.max_subscribers,
            stats.failures.describe()
        ),
    ));
    checks.push(check(
        "publisher_accepted",
        publish.events > 0 && publish.failures.count == 0,
        format!(
            "{} events in {} requests; failures: {}",
            publish.events,
            publish.requests,
            publish.failures.describe()
        ),
    ));
    checks.push(check(
        "healthz_throughout",
        health.probes > 0 && health.ok == health.probes,
        format!(
            "{} of {} probes answered ok, slowest {} ms; failures: {}",
            health.ok,
            health.probes,
            health.slowest_ms,
            health.failures.describe()
        ),
    ));
    let limit_kib = (args.rss_limit / 1024) as u64;
    checks.push(check(
        "rss_bounded",
        rss.samples > 0 && rss.peak_kib <= limit_kib && task_failures.count == 0,
        format!(
            "VmRSS first {} KiB, peak {} KiB, last {} KiB over {} samples, bound {} KiB{}",
            rss.first_kib,
            rss.peak_kib,
            rss.last_kib,
            rss.samples,
            limit_kib,
            if task_failures.count == 0 {
                String::new()
            } else {
                format!("; soak tasks failed: {}", task_failures.describe())
            }
        ),
    ));

    let reconnects = steady_report.streams.saturating_sub(args.steady)
        + lagging_report.streams.saturating_sub(args.lagging)
        + mid_report.resumed
        + mid_report.resume_gone;
    let mut figures = String::new();
    let _ = write!(
        figures,
        "published {} events; delivered {} (steady {}, lagging {}, mid-frame {}); reconnects {}; resets {}; lagged ends {}; mid-frame hang-ups {}; burst connects {} ({} refused); RSS peak {:.1} MiB (first {:.1}, last {:.1}); healthz {} probes, slowest {} ms",
        publish.events,
        seq.events + lseq.events + mseq.events,
        seq.events,
        lseq.events,
        mseq.events,
        reconnects,
        resets.resets,
        lagging_report.lagged,
        mid_report.hangups,
        bursts.accepted + bursts.refused,
        bursts.refused,
        rss.peak_kib as f64 / 1024.0,
        rss.first_kib as f64 / 1024.0,
        rss.last_kib as f64 / 1024.0,
        health.probes,
        health.slowest_ms,
    );
    let report = SoakReport { checks, figures };
    for check in &report.checks {
        let verdict = if check.passed { "PASS" } else { "FAIL" };
        println!("{verdict} {}: {}", check.name, check.detail);
    }
    println!("soak figures: {}", report.figures);
    Ok(report)
}

/// A task's result; a task that panicked counts in `failures` and yields
/// an empty report (so its checks fail for want of figures).
fn joined<T: Default>(result: Result<T, tokio::task::JoinError>, failures: &mut Failures) -> T {
    result.unwrap_or_else(|error| {
        failures.push(format!("task failed: {error}"));
        T::default()
    })
}

/// `; first: <problem>` or nothing.
fn first(problem: &Option<String>) -> String {
    problem
        .as_ref()
        .map(|p| format!("; first: {p}"))
        .unwrap_or_default()
}
