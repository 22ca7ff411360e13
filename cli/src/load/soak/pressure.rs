//! What the soak does to the server besides subscribing: a fast publisher,
//! periodic resets, and bursts of connects beyond the subscriber limit.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{interval, timeout, MissedTickBehavior};

use super::super::target::Target;
use super::client::{nap, open_events, KeepAlive, Opened};
use super::subscribers::Failures;

/// How long one admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the publisher did.
#[derive(Debug, Default)]
pub(crate) struct PublishReport {
    pub(crate) events: u64,
    pub(crate) requests: u64,
    pub(crate) failures: Failures,
}

/// Publishes batches of `batch` events (`{"type":"soak","pad":"…"}`) at
/// `rate` events per second on one keep-alive connection until `stop`.
pub(crate) async fn publish(
    target: Target,
    token: String,
    rate: f64,
    batch: u64,
    payload: usize,
    mut stop: watch::Receiver<bool>,
) -> PublishReport {
    let mut report = PublishReport::default();
    let event = format!(r#"{{"type":"soak","pad":"{}"}}"#, "x".repeat(payload));
    let body = format!(
        "[{}]",
        std::iter::repeat_n(event.as_str(), batch as usize)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut conn = KeepAlive::new(target.clone());
    let mut tick = interval(Duration::from_secs_f64(batch as f64 / rate));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tick.tick() => {}
        }
        report.requests += 1;
        match timeout(
            REQUEST_TIMEOUT,
            conn.send("POST", "/admin/events", Some(&token), Some(&body)),
        )
        .await
        {
            Ok(Ok(answer)) if answer.status == 200 => report.events += batch,
            Ok(Ok(answer)) => report
                .failures
                .push(format!("publish answered {}", answer.describe())),
            Ok(Err(error)) => report.failures.push(format!("publish: {error}")),
            Err(_) => {
                report.failures.push("publish timed out".into());
                conn = KeepAlive::new(target.clone());
            }
        }
    }
    report
}

/// What the resetter did.
#[derive(Debug, Default)]
pub(crate) struct ResetReport {
    /// Resets answered 204.
    pub(crate) resets: u64,
    pub(crate) failures: Failures,
}

/// `POST /admin/reset` every `every` until `stop`.
pub(crate) async fn reset(
    target: Target,
    token: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> ResetReport {
    let mut report = ResetReport::default();
    let mut conn = KeepAlive::new(target.clone());
    loop {
        nap(every, &mut stop).await;
        if *stop.borrow() {
            break;
        }
        match timeout(
            REQUEST_TIMEOUT,
            conn.send("POST", "/admin/reset", Some(&token), None),
        )
        .await
        {
            Ok(Ok(answer)) if answer.status == 204 => report.resets += 1,
            Ok(Ok(answer)) => report
                .failures
                .push(format!("reset answered {}", answer.describe())),
            Ok(Err(error)) => report.failures.push(format!("reset: {error}")),
            Err(_) => {
                report.failures.push("reset timed out".into());
                conn = KeepAlive::new(target.clone());
            }
        }
    }
    report
}

/// What the connect bursts met.
#[derive(Debug, Default)]
pub(crate) struct BurstReport {
    pub(crate) bursts: u64,
    /// Connects answered with a stream.
    pub(crate) accepted: u64,
    /// Connects answered 503 `too_many_subscribers` with `Retry-After: 1`.
    pub(crate) refused: u64,
    /// Anything else (another status, a missing header, an error, a timeout).
    pub(crate) failures: Failures,
}

/// Every `every`, opens `size` streams at once; a stream that opens is held
/// for `hold` and reset. Refusals must be the contract's 503.
pub(crate) async fn bursts(
    target: Target,
    size: u64,
    every: Duration,
    hold: Duration,
    mut stop: watch::Receiver<bool>,
) -> BurstReport {
    let mut report = BurstReport::default();
    loop {
        nap(every, &mut stop).await;
        if *stop.borrow() {
            break;
        }
        report.bursts += 1;
        let connects: Vec<_> = (0..size)
            .map(|_| {
                let target = target.clone();
                tokio::spawn(async move {
                    match timeout(REQUEST_TIMEOUT, open_events(&target, None, None)).await {
                        Err(_) => Err("connect timed out".to_owned()),
                        Ok(Err(error)) => Err(error),
                        Ok(Ok(Opened::Stream(sse))) => {
                            tokio::time::sleep(hold).await;
                            sse.close(true);
                            Ok(true)
                        }
                        Ok(Ok(Opened::Refused(answer))) => {
                            let retry_after = answer.head.header("retry-after");
                            if answer.status == 503
                                && retry_after == Some("1")
                                && answer.error_code().as_deref() == Some("too_many_subscribers")
                            {
                                Ok(false)
                            } else {
                                Err(format!(
                                    "refused with {} (Retry-After {retry_after:?})",
                                    answer.describe()
                                ))
                            }
                        }
                    }
                })
            })
            .collect();
        for connect in connects {
            match connect.await {
                Ok(Ok(true)) => report.accepted += 1,
                Ok(Ok(false)) => report.refused += 1,
                Ok(Err(error)) => report.failures.push(error),
                Err(error) => report.failures.push(format!("connect task: {error}")),
            }
        }
    }
    report
}
