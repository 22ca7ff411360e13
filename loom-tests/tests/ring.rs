//! loom models of the seqlock ring: a reader racing a writer that laps it
//! must get either the exact frames or `Lapped`, never torn bytes — across
//! an early wrap, with filters, with two readers; and a timestamp seek on a
//! full ring finds a retained timestamp however the writer moves `tail`.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ssehub-loom-tests --release`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ssehub::ring::{Lapped, ReadError, Ring};
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
                Err(ReadError::Lapped(Lapped { missed })) => assert!(missed >= 1),
                Err(error) => panic!("sequence 0 is published: {error:?}"),
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

/// Frame `n` of type "even"/"odd" by parity (for filtered reads).
fn tag_of(n: u8) -> TypeTag {
    TypeTag::of(if n % 2 == 0 { "even" } else { "odd" })
}

#[test]
fn filtered_and_unfiltered_readers_get_exact_frames_or_lapped() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(2, 1 << 10));
        let mut writer = Ring::claim_writer(&ring).expect("first writer");
        writer.append(b"", &frame(0), tag_of(0), 0, 0).unwrap();
        let readers: Vec<_> = [vec![tag_of(0)], vec![]]
            .into_iter()
            .map(|tags| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let mut out = Vec::new();
                    match ring.read_batch(0, 8, usize::MAX, &tags, &mut out) {
                        Ok(read) => {
                            let expected: Vec<u8> = (0..read.next as u8)
                                .filter(|&n| tags.is_empty() || tags.contains(&tag_of(n)))
                                .flat_map(frame)
                                .collect();
                            assert_eq!(out, expected, "torn or unfiltered batch");
                        }
                        Err(Lapped { missed }) => assert!(missed >= 1),
                    }
                })
            })
            .collect();
        for n in 1..3 {
            writer.append(b"", &frame(n), tag_of(n), 0, 0).unwrap();
        }
        for reader in readers {
            reader.join().unwrap();
        }
    });
}

#[test]
fn batch_read_across_an_early_wrap_is_exact_or_lapped() {
    loom::model(|| {
        // A 256-byte arena, two slots of 12-byte frames: the window is about
        // two frames, so the write position jumps to the next lap early, at
        // sequence 6 (byte 72 >= 2 * (window + frame)).
        let ring = Arc::new(Ring::new(2, 256));
        let mut writer = Ring::claim_writer(&ring).expect("first writer");
        for n in 0..6 {
            writer
                .append(b"", &frame(n), TypeTag::of("t"), 0, 0)
                .unwrap();
        }
        let reader = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut out = Vec::new();
                match ring.read_batch(5, 8, usize::MAX, &[], &mut out) {
                    Ok(read) => {
                        let expected: Vec<u8> = (5..read.next as u8).flat_map(frame).collect();
                        assert_eq!(out, expected, "torn batch across the wrap");
                    }
                    Err(Lapped { missed }) => assert!(missed >= 1),
                }
            })
        };
        for n in 6..8 {
            writer
                .append(b"", &frame(n), TypeTag::of("t"), 0, 0)
                .unwrap();
        }
        reader.join().unwrap();
        assert_eq!(ring.position_of(6), 256, "the model reached an early wrap");
    });
}

#[test]
fn seek_on_a_full_ring_finds_a_retained_timestamp() {
    loom::model(|| {
        // Full ring of 4, timestamp == sequence. The writer appends two more
        // (evicting 0 and 1) while the reader seeks timestamp 2, which stays
        // retained throughout: the seek must find it, however `tail` moved.
        let ring = Arc::new(Ring::new(4, 1 << 10));
        let mut writer = Ring::claim_writer(&ring).expect("first writer");
        for n in 0..4 {
            writer
                .append(b"", &frame(n), TypeTag::of("t"), u64::from(n), 0)
                .unwrap();
        }
        let reader = {
            let ring = ring.clone();
            thread::spawn(move || ring.seek_timestamp(2))
        };
        for n in 4..6 {
            writer
                .append(b"", &frame(n), TypeTag::of("t"), u64::from(n), 0)
                .unwrap();
        }
        assert_eq!(reader.join().unwrap(), Ok(2));
    });
}
