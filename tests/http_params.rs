//! Property tests of the HTTP parameter parsers (the fuzz target
//! `fuzz/fuzz_targets/http_params.rs` explores the same on nightly): no
//! input panics, and accepted input keeps the contract's invariants.

use proptest::prelude::*;
use ssehub::http::__private::parse_events;
use ssehub::http::__private::parse_events_query;
use ssehub::http::__private::parse_rfc3339;

/// Query-ish strings: parameter names the parser knows, separators and
/// escapes mixed with anything.
fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("event_type=".to_owned()),
            Just("from=".to_owned()),
            Just("from_timestamp=".to_owned()),
            Just("&".to_owned()),
            Just(",".to_owned()),
            Just("%0A".to_owned()),
            Just("%2B".to_owned()),
            Just("+".to_owned()),
            "[a-z ]{0,4}",
            any::<String>(),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn events_queries_never_panic(query in query(), max_types in 0usize..5) {
        if let Ok(parsed) = parse_events_query(Some(&query), &axum::http::HeaderMap::new(), max_types) {
            prop_assert!(parsed.options.types.len() <= max_types);
            for t in &parsed.options.types {
                prop_assert!(!t.is_empty() && !t.contains(['\r', '\n']) && t.trim() == t);
            }
        }
    }

    #[test]
    fn timestamps_never_panic(text in "[0-9T:.Zz+ -]{0,40}|\\PC{0,30}") {
        let _ = parse_rfc3339(&text);
    }

    #[test]
    fn valid_timestamps_round_trip(
        secs in 0i64..253_402_300_799,
        nanos in 0u32..1_000_000_000,
        offset_minutes in -(23 * 60 + 59)..(23 * 60 + 59i64),
        plus_as_space in any::<bool>(),
    ) {
        // Format `secs` (UTC) shifted into the offset, then parse it back.
        let local = secs + offset_minutes * 60;
        prop_assume!(local >= 0);
        let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        prop_assume!((0..=9999).contains(&y));
        let sign = if offset_minutes < 0 { '-' } else if plus_as_space { ' ' } else { '+' };
        let text = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}{sign}{:02}:{:02}",
            rem / 3600, rem / 60 % 60, rem % 60,
            offset_minutes.abs() / 60, offset_minutes.abs() % 60,
        );
        prop_assert_eq!(
            parse_rfc3339(&text),
            Ok(i128::from(secs) * 1_000_000_000 + i128::from(nanos)),
            "{}", text
        );
    }

    #[test]
    fn publish_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_events(&body, 3, 100);
    }

    #[test]
    fn accepted_events_are_compact_json_objects(
        types in prop::collection::vec("[a-z]{1,5}", 0..4),
        spaces in "[ \t\n]{0,3}",
    ) {
        let body = format!(
            "[{spaces}{}{spaces}]",
            types
                .iter()
                .map(|t| format!("{{{spaces}\"type\"{spaces}:{spaces}\"{t}\", \"x\" : [1, \"a b\"]}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let events = parse_events(body.as_bytes(), 10, 1000).expect("valid body");
        prop_assert_eq!(events.len(), types.len());
        for (event, t) in events.iter().zip(&types) {
            prop_assert_eq!(event.event_type(), t.as_str());
            let expected = format!("{{\"type\":\"{t}\",\"x\":[1,\"a b\"]}}");
            prop_assert_eq!(event.data(), expected.as_str());
        }
    }
}

/// (year, month, day) of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
