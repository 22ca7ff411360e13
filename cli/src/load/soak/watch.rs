//! What the soak watches while it runs: `/healthz`, the server's resident
//! memory, and the subscriber count in `/admin/stats`.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{interval, timeout, Instant, MissedTickBehavior};

use super::super::report::rss_kib;
use super::super::target::Target;
use super::client::{request, KeepAlive};
use super::subscribers::Failures;

/// How long a probe may take before it counts as unanswered.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The `/healthz` probes.
#[derive(Debug, Default)]
pub(crate) struct HealthReport {
    pub(crate) probes: u64,
    pub(crate) ok: u64,
    pub(crate) slowest_ms: u64,
    pub(crate) failures: Failures,
}

/// `GET /healthz` on a fresh connection every `every` until `stop`; each
/// must answer 200 `ok` within 5 s.
pub(crate) async fn healthz(
    target: Target,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> HealthReport {
    let mut report = HealthReport::default();
    let mut tick = interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tick.tick() => {}
        }
        report.probes += 1;
        let started = Instant::now();
        match timeout(PROBE_TIMEOUT, request(&target, "GET", "/healthz", None)).await {
            Ok(Ok(answer)) if answer.status == 200 && answer.body.trim() == "ok" => {
                report.ok += 1;
                report.slowest_ms = report.slowest_ms.max(started.elapsed().as_millis() as u64);
            }
            Ok(Ok(answer)) => report.failures.push(format!(
                "/healthz answered {} {:?}",
                answer.status, answer.body
            )),
            Ok(Err(error)) => report.failures.push(format!("/healthz: {error}")),
            Err(_) => report
                .failures
                .push("/healthz: no answer within 5 s".into()),
        }
    }
    report
}

/// The server's resident memory, sampled.
#[derive(Debug, Default)]
pub(crate) struct RssReport {
    pub(crate) samples: u64,
    pub(crate) first_kib: u64,
    pub(crate) peak_kib: u64,
    pub(crate) last_kib: u64,
}

/// Reads `VmRSS` of `pid` every `every` until `stop`.
pub(crate) async fn rss(pid: u32, every: Duration, mut stop: watch::Receiver<bool>) -> RssReport {
    let mut report = RssReport::default();
    loop {
        if let Some(kib) = rss_kib(pid) {
            if report.samples == 0 {
                report.first_kib = kib;
            }
            report.samples += 1;
            report.peak_kib = report.peak_kib.max(kib);
            report.last_kib = kib;
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    report
}

/// The subscriber count the server reports.
#[derive(Debug, Default)]
pub(crate) struct StatsReport {
    pub(crate) samples: u64,
    pub(crate) max_active: u64,
    pub(crate) failures: Failures,
}

/// `GET /admin/stats` every `every` until `stop`, keeping the largest
/// `active_subscribers`.
pub(crate) async fn stats(
    target: Target,
    token: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> StatsReport {
    let mut report = StatsReport::default();
    let mut conn = KeepAlive::new(target.clone());
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep(every) => {}
        }
        let answer = match timeout(
            PROBE_TIMEOUT,
            conn.send("GET", "/admin/stats", Some(&token), None),
        )
        .await
        {
            Ok(Ok(answer)) if answer.status == 200 => answer,
            Ok(Ok(answer)) => {
                report
                    .failures
                    .push(format!("/admin/stats answered {}", answer.describe()));
                continue;
            }
            Ok(Err(error)) => {
                report.failures.push(format!("/admin/stats: {error}"));
                continue;
            }
            Err(_) => {
                report
                    .failures
                    .push("/admin/stats: no answer within 5 s".into());
                conn = KeepAlive::new(target.clone());
                continue;
            }
        };
        let active = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|stats| stats.get("active_subscribers")?.as_u64());
        match active {
            Some(active) => {
                report.samples += 1;
                report.max_active = report.max_active.max(active);
            }
            None => report
                .failures
                .push("/admin/stats without active_subscribers".into()),
        }
    }
    report
}
