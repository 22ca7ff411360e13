//! Gap and duplicate detection on auto ids (`<16 hex generation>-<n>`).
//!
//! Within one generation the server numbers events 1, 2, 3, … with no hole,
//! so a subscriber that receives every event it is owed sees consecutive
//! numbers; a stream never spans two generations (a reset ends it). A
//! [`Sequence`] follows one reader across its streams: a fresh stream
//! starts anywhere, a resumed one must continue right after the id it
//! resumed from.

/// Splits an auto id into its generation token and number.
///
/// ```text
/// 0123456789abcdef-42 -> (0x0123456789abcdef, 42)
/// ```
pub(crate) fn parse_auto_id(id: &str) -> Option<(u64, u64)> {
    let (generation, number) = id.split_once('-')?;
    if generation.len() != 16 || !generation.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        u64::from_str_radix(generation, 16).ok()?,
        number.parse().ok()?,
    ))
}

/// What one reader saw, checked event by event.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sequence {
    /// The generation and number of the last event, while a stream is open.
    last: Option<(u64, u64)>,
    /// Events received.
    pub(crate) events: u64,
    /// Events skipped inside a generation (holes).
    pub(crate) missed: u64,
    /// Events received twice or out of order.
    pub(crate) duplicates: u64,
    /// Events without an auto id.
    pub(crate) bad_ids: u64,
    /// Streams that changed generation without ending.
    pub(crate) crossed_generations: u64,
    /// The first problem, for the report.
    pub(crate) first_problem: Option<String>,
}

impl Sequence {
    /// A new stream from "now": its first event may have any number.
    pub(crate) fn fresh_stream(&mut self) {
        self.last = None;
    }

    /// A stream resumed after `id`: its first event must be the next one.
    pub(crate) fn resumed_after(&mut self, id: (u64, u64)) {
        self.last = Some(id);
    }

    /// The last event received on the current stream.
    pub(crate) fn last(&self) -> Option<(u64, u64)> {
        self.last
    }

    /// Checks one event's id against the previous one.
    pub(crate) fn observe(&mut self, id: Option<&str>) {
        self.events += 1;
        let Some((generation, number)) = id.and_then(parse_auto_id) else {
            self.bad_ids += 1;
            self.problem(|| format!("event without an auto id: {id:?}"));
            return;
        };
        if let Some((last_generation, last_number)) = self.last {
            if last_generation != generation {
                self.crossed_generations += 1;
                self.problem(|| {
                    format!("stream went from generation {last_generation:016x} to {generation:016x} without ending")
                });
            } else if number <= last_number {
                self.duplicates += 1;
                self.problem(|| format!("event {number} after {last_number} (duplicate)"));
            } else if number > last_number + 1 {
                self.missed += number - last_number - 1;
                self.problem(|| format!("event {number} after {last_number} (gap)"));
            }
        }
        self.last = Some((generation, number));
    }

    /// True when every event so far was consecutive.
    pub(crate) fn clean(&self) -> bool {
        self.missed == 0
            && self.duplicates == 0
            && self.bad_ids == 0
            && self.crossed_generations == 0
    }

    /// Adds `other`'s counts (the first problem is kept).
    pub(crate) fn absorb(&mut self, other: &Sequence) {
        self.events += other.events;
        self.missed += other.missed;
        self.duplicates += other.duplicates;
        self.bad_ids += other.bad_ids;
        self.crossed_generations += other.crossed_generations;
        if self.first_problem.is_none() {
            self.first_problem.clone_from(&other.first_problem);
        }
    }

    fn problem(&mut self, message: impl FnOnce() -> String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(message());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_auto_ids() {
        assert_eq!(
            parse_auto_id("0123456789abcdef-42"),
            Some((0x0123_4567_89ab_cdef, 42))
        );
        for bad in [
            "",
            "x-1",
            "0123456789abcdef-",
            "0123456789abcdeg-1",
            "0123456789abcdef-1a",
            "123-1",
        ] {
            assert_eq!(parse_auto_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn finds_gaps_duplicates_and_crossings() {
        let mut seq = Sequence::default();
        seq.observe(Some("00000000000000aa-5"));
        seq.observe(Some("00000000000000aa-6"));
        assert!(seq.clean());
        seq.observe(Some("00000000000000aa-9"));
        assert_eq!(seq.missed, 2);
        seq.observe(Some("00000000000000aa-9"));
        assert_eq!(seq.duplicates, 1);
        seq.observe(Some("00000000000000bb-10"));
        assert_eq!(seq.crossed_generations, 1);
        seq.observe(None);
        assert_eq!(seq.bad_ids, 1);
        assert_eq!(seq.events, 6);
        assert!(!seq.clean());
        assert!(seq.first_problem.unwrap().contains("gap"));
    }

    #[test]
    fn a_resumed_stream_must_continue_at_the_next_event() {
        let mut seq = Sequence::default();
        seq.resumed_after((0xaa, 7));
        seq.observe(Some("00000000000000aa-9"));
        assert_eq!(seq.missed, 1);
        let mut seq = Sequence::default();
        seq.resumed_after((0xaa, 7));
        seq.observe(Some("00000000000000aa-8"));
        assert!(seq.clean());
        seq.fresh_stream();
        seq.observe(Some("00000000000000bb-100"));
        assert!(seq.clean());
    }
}
