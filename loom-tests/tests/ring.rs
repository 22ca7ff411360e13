//! loom models of the seqlock ring: a reader racing a writer that laps it
//! must get either the exact frames or `Lapped`, never torn bytes.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ssehub-loom-tests --release`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ssehub::ring::{Lapped, Ring};
use ssehub::TypeTag;

/// Frame `n`: 12 bytes (two arena words, the second partly padding), every
/// byte distinct per frame so any mix of two frames is detected.
fn frame(n: u8) -> Vec<u8> {
    vec![b'a' + n; 12]
}

/// Publishes frame 0, then races `reader` against two more appends that
/// overwrite it (by slot reuse or by byte budget, depending on `ring`).
fn race_reader_against_lapping_writer(ring: Ring, reader: impl FnOnce(&Ring) + Send + 'static) {
    let ring = Arc::new(ring);
    let mut writer = Ring::claim_writer(&ring).expect("first writer");
    writer
        .append(b"", &frame(0), TypeTag::of("t"), 0, 0)
        .unwrap();
    let reader = {
        let ring = ring.clone();
        thread::spawn(move || reader(&ring))
    };
    for n in 1..3 {
        writer
            .append(b"", &frame(n), TypeTag::of("t"), 0, 0)
            .unwrap();
    }
    reader.join().unwrap();
}

#[test]
fn single_read_is_exact_or_lapped() {
    loom::model(|| {
        // Two slots: the third append overwrites sequence 0.
        race_reader_against_lapping_writer(Ring::new(2, 1 << 10), |ring| {
            let mut out = Vec::new();
            match ring.read(0, &mut out) {
                Ok(meta) => {
                    assert_eq!(out, frame(0), "torn frame");
                    assert_eq!(meta.seq, 0);
                }
                Err(Lapped { missed }) => assert!(missed >= 1),
            }
        });
    });
}

#[test]
fn batch_read_is_exact_or_lapped_under_byte_budget_eviction() {
    loom::model(|| {
        // 32-byte budget: 12-byte frames span at most 32 bytes of words two
        // at a time, so appends from the third on evict by bytes while slots
        // are still free.
        race_reader_against_lapping_writer(Ring::new(8, 32), |ring| {
            let mut out = Vec::new();
            match ring.read_batch(0, 8, usize::MAX, &[], &mut out) {
                Ok(read) => {
                    let expected: Vec<u8> = (0..read.next as u8).flat_map(frame).collect();
                    assert_eq!(out, expected, "torn batch");
                }
                Err(Lapped { missed }) => assert!(missed >= 1),
            }
        });
    });
}

#[test]
fn reader_sees_published_frames_in_order() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(4, 1 << 10));
        let mut writer = Ring::claim_writer(&ring).expect("first writer");
        let reader = {
            let ring = ring.clone();
            thread::spawn(move || {
                // Whatever head says is published must read back exactly.
                let head = ring.head();
                for seq in 0..head {
                    let mut out = Vec::new();
                    ring.read(seq, &mut out).expect("not lapped: no wrap");
                    assert_eq!(out, frame(seq as u8));
                }
            })
        };
        for n in 0..2 {
            writer
                .append(b"", &frame(n), TypeTag::of("t"), 0, 0)
                .unwrap();
        }
        reader.join().unwrap();
    });
}

#[test]
fn only_one_writer() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(2, 64));
        let other = ring.clone();
        let claimer = thread::spawn(move || Ring::claim_writer(&other).is_some());
        let mine = Ring::claim_writer(&ring).is_some();
        let theirs = claimer.join().unwrap();
        assert!(mine ^ theirs, "exactly one writer claim succeeds");
    });
}
