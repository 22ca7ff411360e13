//! The soak's subscribers, one function per behaviour: steady readers,
//! readers that pause (and so lag), readers that stop for good, and readers
//! that hang up in the middle of a frame and resume.
//!
//! Each runs until the `stop` signal and returns what it saw; none panics on
//! anything the server sends, and every wait is bounded (by `stop`, by a
//! timeout, or by a retry count).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{timeout, timeout_at, Instant};

use super::super::target::Target;
use super::client::{nap, open_events, Answer, Opened, Sse};
use super::sequence::Sequence;

/// How long opening a stream may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Receive buffer of readers meant to fall behind.
const SMALL_RECV_BUFFER: u32 = 4096;
/// Most failures kept verbatim per role.
const KEPT_FAILURES: usize = 5;

/// Failures of one role: a count and the first few messages.
#[derive(Debug, Default, Clone)]
pub(crate) struct Failures {
    pub(crate) count: u64,
    pub(crate) first: Vec<String>,
}

impl Failures {
    pub(crate) fn push(&mut self, message: String) {
        self.count += 1;
        if self.first.len() < KEPT_FAILURES {
            self.first.push(message);
        }
    }

    pub(crate) fn absorb(&mut self, other: Failures) {
        self.count += other.count;
        for message in other.first {
            if self.first.len() < KEPT_FAILURES {
                self.first.push(message);
            }
        }
    }

    /// `none`, or the count and first messages.
    pub(crate) fn describe(&self) -> String {
        if self.count == 0 {
            "none".into()
        } else {
            format!("{} ({})", self.count, self.first.join("; "))
        }
    }
}

/// The verdict on a resume from an id the server can no longer serve.
enum Resume {
    /// 410 with `errorCode` `resume_point_expired`.
    Gone,
    /// Anything else.
    Other(String),
}

/// Resumes after `id` (`gen-n`) and expects 410 `resume_point_expired`;
/// a 503 (the limit, during a burst) is retried a few times.
async fn resume_expect_gone(target: &Target, id: (u64, u64)) -> Resume {
    let id = format!("{:016x}-{}", id.0, id.1);
    for _ in 0..10 {
        match timeout(OPEN_TIMEOUT, open_events(target, Some(&id), None)).await {
            Err(_) => return Resume::Other(format!("resume {id}: timed out")),
            Ok(Err(error)) => return Resume::Other(format!("resume {id}: {error}")),
            Ok(Ok(Opened::Stream(sse))) => {
                sse.close(true);
                return Resume::Other(format!("resume {id}: 200 stream instead of 410"));
            }
            Ok(Ok(Opened::Refused(answer))) if answer.status == 503 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(Ok(Opened::Refused(answer))) => {
                return if answer.status == 410
                    && answer.error_code().as_deref() == Some("resume_point_expired")
                {
                    Resume::Gone
                } else {
                    Resume::Other(format!("resume {id}: {}", answer.describe()))
                };
            }
        }
    }
    Resume::Other(format!("resume {id}: 503 ten times"))
}

/// Opens a stream, waiting out 503s (the subscriber limit during a burst)
/// until `stop`. `None` when stopped or on a failure (recorded).
async fn open_retrying(
    target: &Target,
    resume: Option<&str>,
    recv_buffer: Option<u32>,
    stop: &mut watch::Receiver<bool>,
    failures: &mut Failures,
    refused: &mut u64,
) -> Option<Result<Box<Sse>, Answer>> {
    while !*stop.borrow() {
        match timeout(OPEN_TIMEOUT, open_events(target, resume, recv_buffer)).await {
            Err(_) => failures.push("opening a stream timed out".into()),
            Ok(Err(error)) => failures.push(format!("opening a stream: {error}")),
            Ok(Ok(Opened::Stream(sse))) => return Some(Ok(sse)),
            Ok(Ok(Opened::Refused(answer))) if answer.status == 503 => *refused += 1,
            Ok(Ok(Opened::Refused(answer))) => return Some(Err(answer)),
        }
        nap(Duration::from_secs(1), stop).await;
    }
    None
}

/// What the steady readers saw.
#[derive(Debug, Default)]
pub(crate) struct SteadyReport {
    pub(crate) sequence: Sequence,
    pub(crate) streams: u64,
    /// How server-ended streams ended: the `end` reason, or a description.
    pub(crate) ends: BTreeMap<String, u64>,
    pub(crate) generations: BTreeSet<u64>,
    /// 503 answers while (re)connecting.
    pub(crate) refused: u64,
    /// Resumes from an id of the generation a reset ended that got 410.
    pub(crate) old_generation_gone: u64,
    pub(crate) old_generation_wrong: Failures,
    pub(crate) failures: Failures,
}

impl SteadyReport {
    pub(crate) fn absorb(&mut self, other: SteadyReport) {
        self.sequence.absorb(&other.sequence);
        self.streams += other.streams;
        for (reason, count) in other.ends {
            *self.ends.entry(reason).or_default() += count;
        }
        self.generations.extend(other.generations);
        self.refused += other.refused;
        self.old_generation_gone += other.old_generation_gone;
        self.old_generation_wrong.absorb(other.old_generation_wrong);
        self.failures.absorb(other.failures);
    }
}

/// Reads `sse` until it ends (`Some(reason)`) or `stop` (`None`), feeding
/// every event to `sequence`. `deadline` bounds the reading (`Some("")`
/// when it passes).
async fn read_until_end(
    sse: &mut Sse,
    sequence: &mut Sequence,
    stop: &mut watch::Receiver<bool>,
    deadline: Option<Instant>,
) -> Option<Result<String, String>> {
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        let read = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return None,
            read = timeout_at(deadline.unwrap_or(far), sse.read_events(|id| sequence.observe(id))) => read,
        };
        match read {
            Err(_) => return Some(Ok(String::new())),
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return Some(Ok(sse.end_reason().map_or_else(
                    || "(closed without an end comment)".into(),
                    str::to_owned,
                )))
            }
            Ok(Err(error)) => return Some(Err(error)),
        }
    }
}

/// A reader that reads everything as fast as it arrives; after a reset it
/// checks that the old position is refused (410), then subscribes afresh.
pub(crate) async fn steady(target: Target, mut stop: watch::Receiver<bool>) -> SteadyReport {
    let mut report = SteadyReport::default();
    loop {
        let opened = open_retrying(
            &target,
            None,
            None,
            &mut stop,
            &mut report.failures,
            &mut report.refused,
        )
        .await;
        let mut sse = match opened {
            None => break,
            Some(Ok(sse)) => sse,
            Some(Err(answer)) => {
                report
                    .failures
                    .push(format!("GET /events answered {}", answer.describe()));
                nap(Duration::from_secs(1), &mut stop).await;
                continue;
            }
        };
        report.streams += 1;
        report.sequence.fresh_stream();
        let ended = read_until_end(&mut sse, &mut report.sequence, &mut stop, None).await;
        if let Some((generation, _)) = report.sequence.last() {
            report.generations.insert(generation);
        }
        match ended {
            None => break,
            Some(Err(error)) => report.failures.push(format!("stream: {error}")),
            Some(Ok(reason)) => {
                *report.ends.entry(reason.clone()).or_default() += 1;
                if reason == "reset" {
                    if let Some(last) = report.sequence.last() {
                        match resume_expect_gone(&target, last).await {
                            Resume::Gone => report.old_generation_gone += 1,
                            Resume::Other(why) => report.old_generation_wrong.push(why),
                        }
                    }
                }
            }
        }
        sse.close(false);
    }
    report
}

/// What the pausing readers saw.
#[derive(Debug, Default)]
pub(crate) struct LaggingReport {
    pub(crate) sequence: Sequence,
    pub(crate) streams: u64,
    pub(crate) ends: BTreeMap<String, u64>,
    /// Streams ended with `: end lagged`.
    pub(crate) lagged: u64,
    /// Of those, resumes refused with 410 `resume_point_expired`.
    pub(crate) lagged_gone: u64,
    pub(crate) lagged_wrong: Failures,
    pub(crate) refused: u64,
    pub(crate) failures: Failures,
}

impl LaggingReport {
    pub(crate) fn absorb(&mut self, other: LaggingReport) {
        self.sequence.absorb(&other.sequence);
        self.streams += other.streams;
        for (reason, count) in other.ends {
            *self.ends.entry(reason).or_default() += count;
        }
        self.lagged += other.lagged;
        self.lagged_gone += other.lagged_gone;
        self.lagged_wrong.absorb(other.lagged_wrong);
        self.refused += other.refused;
        self.failures.absorb(other.failures);
    }
}

/// A reader with a small receive buffer that stops reading for `pause`,
/// reads for a moment, and pauses again, until the server ends its stream;
/// after `: end lagged` its position must be refused with 410.
pub(crate) async fn lagging(
    target: Target,
    pause: Duration,
    mut stop: watch::Receiver<bool>,
) -> LaggingReport {
    let mut report = LaggingReport::default();
    loop {
        let opened = open_retrying(
            &target,
            None,
            Some(SMALL_RECV_BUFFER),
            &mut stop,
            &mut report.failures,
            &mut report.refused,
        )
        .await;
        let mut sse = match opened {
            None => break,
            Some(Ok(sse)) => sse,
            Some(Err(answer)) => {
                report
                    .failures
                    .push(format!("GET /events answered {}", answer.describe()));
                nap(Duration::from_secs(1), &mut stop).await;
                continue;
            }
        };
        report.streams += 1;
        report.sequence.fresh_stream();
        let ended = loop {
            // Read for a moment, then stop reading.
            let window = Instant::now() + Duration::from_millis(300);
            match read_until_end(&mut sse, &mut report.sequence, &mut stop, Some(window)).await {
                Some(Ok(reason)) if reason.is_empty() => {}
                other => break other,
            }
            nap(pause, &mut stop).await;
        };
        match ended {
            None => break,
            Some(Err(error)) => report.failures.push(format!("stream: {error}")),
            Some(Ok(reason)) => {
                *report.ends.entry(reason.clone()).or_default() += 1;
                match (reason.as_str(), report.sequence.last()) {
                    ("lagged", Some(last)) => {
                        report.lagged += 1;
                        match resume_expect_gone(&target, last).await {
                            Resume::Gone => report.lagged_gone += 1,
                            Resume::Other(why) => report.lagged_wrong.push(why),
                        }
                    }
                    ("lagged", None) => report.lagged += 1,
                    ("reset", _) => {}
                    (other, _) => report
                        .failures
                        .push(format!("a pausing reader's stream ended with {other:?}")),
                }
            }
        }
        sse.close(false);
    }
    report
}

/// What the readers that stopped reading for good saw.
#[derive(Debug, Default)]
pub(crate) struct StalledReport {
    /// Stalls judged.
    pub(crate) stalls: u64,
    /// Of those, connections the server had closed by the bound.
    pub(crate) closed: u64,
    /// Bytes still buffered on the way (read after the stall, up to the
    /// server's close): how much the path absorbs before a write blocks.
    pub(crate) largest_backlog: u64,
    pub(crate) failures: Failures,
}

impl StalledReport {
    pub(crate) fn absorb(&mut self, other: StalledReport) {
        self.stalls += other.stalls;
        self.closed += other.closed;
        self.largest_backlog = self.largest_backlog.max(other.largest_backlog);
        self.failures.absorb(other.failures);
    }
}

/// Until `stop`, over and over: a reader with a small receive buffer reads
/// the response head and one piece, then stops reading for `close_within`;
/// then it reads what is left and expects the end of the stream (the server
/// closed the connection) within a further 5 s. A stall that began before
/// `stop` is always judged, so the last one may outlast `stop` by up to
/// `close_within` + 5 s.
pub(crate) async fn stalled(
    target: Target,
    close_within: Duration,
    mut stop: watch::Receiver<bool>,
) -> StalledReport {
    let mut report = StalledReport::default();
    let mut refused = 0;
    while !*stop.borrow() {
        let Some(opened) = open_retrying(
            &target,
            None,
            Some(SMALL_RECV_BUFFER),
            &mut stop,
            &mut report.failures,
            &mut refused,
        )
        .await
        else {
            break;
        };
        let mut sse = match opened {
            Ok(sse) => sse,
            Err(answer) => {
                report
                    .failures
                    .push(format!("GET /events answered {}", answer.describe()));
                nap(Duration::from_secs(1), &mut stop).await;
                continue;
            }
        };
        if let Err(error) = sse.read_body().await {
            report.failures.push(format!("first read: {error}"));
            continue;
        }
        tokio::time::sleep(close_within).await;
        report.stalls += 1;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut backlog = 0u64;
        loop {
            match timeout_at(deadline, sse.read_body()).await {
                Err(_) => {
                    report.failures.push(format!(
                        "still open {} after the stall",
                        humantime::format_duration(close_within)
                    ));
                    break;
                }
                Ok(Ok(Some(body))) => backlog += body.len() as u64,
                // Closed by the server: an end of stream or a reset.
                Ok(Ok(None)) | Ok(Err(_)) => {
                    report.closed += 1;
                    break;
                }
            }
        }
        report.largest_backlog = report.largest_backlog.max(backlog);
        sse.close(true);
    }
    report
}

/// What the readers that hang up mid-frame saw.
#[derive(Debug, Default)]
pub(crate) struct MidFrameReport {
    pub(crate) sequence: Sequence,
    /// Hang-ups in the middle of a frame.
    pub(crate) hangups: u64,
    /// Resumes answered with a stream.
    pub(crate) resumed: u64,
    /// Resumes answered 410 (a reset or a lap came in between).
    pub(crate) resume_gone: u64,
    pub(crate) refused: u64,
    pub(crate) failures: Failures,
}

impl MidFrameReport {
    pub(crate) fn absorb(&mut self, other: MidFrameReport) {
        self.sequence.absorb(&other.sequence);
        self.hangups += other.hangups;
        self.resumed += other.resumed;
        self.resume_gone += other.resume_gone;
        self.refused += other.refused;
        self.failures.absorb(other.failures);
    }
}

/// A reader that, after a few events, parses only half of what it just
/// received and hangs up (alternately with `FIN` and `RST`), then resumes
/// with `Last-Event-ID` = the last complete event: the resumed stream must
/// continue at exactly the next event.
pub(crate) async fn mid_frame(
    target: Target,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> MidFrameReport {
    let mut report = MidFrameReport::default();
    let mut resume: Option<(u64, u64)> = None;
    let mut round = seed;
    while !*stop.borrow() {
        round += 1;
        let id = resume.map(|(generation, number)| format!("{generation:016x}-{number}"));
        let opened = open_retrying(
            &target,
            id.as_deref(),
            None,
            &mut stop,
            &mut report.failures,
            &mut report.refused,
        )
        .await;
        let mut sse = match opened {
            None => break,
            Some(Ok(sse)) => sse,
            Some(Err(answer))
                if resume.is_some()
                    && answer.status == 410
                    && answer.error_code().as_deref() == Some("resume_point_expired") =>
            {
                report.resume_gone += 1;
                resume = None;
                continue;
            }
            Some(Err(answer)) => {
                report.failures.push(format!(
                    "GET /events (resume {id:?}) answered {}",
                    answer.describe()
                ));
                resume = None;
                nap(Duration::from_secs(1), &mut stop).await;
                continue;
            }
        };
        match resume {
            Some(last) => {
                report.resumed += 1;
                report.sequence.resumed_after(last);
            }
            None => report.sequence.fresh_stream(),
        }
        // Hang up after 5..=44 events.
        let wanted = report.sequence.events + 5 + (round * 7) % 40;
        let outcome: Result<Option<String>, String> = loop {
            let read = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break Ok(None),
                read = timeout(OPEN_TIMEOUT, sse.read_body()) => read,
            };
            let body = match read {
                Err(_) => break Err("no data for 10 s".into()),
                Ok(Err(error)) => break Err(error),
                Ok(Ok(None)) => {
                    break Ok(Some(sse.end_reason().map_or_else(
                        || "(closed without an end comment)".into(),
                        str::to_owned,
                    )))
                }
                Ok(Ok(Some(body))) => body,
            };
            let sequence = &mut report.sequence;
            if sequence.events >= wanted {
                // Keep half of this piece: the parser is left mid-frame.
                let half = body.len() / 2;
                if let Err(error) = sse.parse(&body[..half], |id| sequence.observe(id)) {
                    break Err(error);
                }
                report.hangups += 1;
                break Ok(None);
            }
            if let Err(error) = sse.parse(&body, |id| sequence.observe(id)) {
                break Err(error);
            }
        };
        resume = None;
        match outcome {
            Ok(None) => resume = report.sequence.last(),
            Ok(Some(reason)) if reason == "reset" || reason == "lagged" => {}
            Ok(Some(reason)) => report
                .failures
                .push(format!("a stream ended with {reason:?}")),
            Err(error) => report.failures.push(format!("stream: {error}")),
        }
        sse.close(round.is_multiple_of(2));
    }
    report
}
