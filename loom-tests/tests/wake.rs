//! loom models of the wake-up protocol: a reader that parks is never left
//! asleep after a publish, a reset or a shutdown (no lost wake-up), and the
//! writer pays one RMW when nobody is parked.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ssehub-loom-tests --release`
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use ssehub::generation::Generation;
use ssehub::ring::Ring;
use ssehub::wait::WakeSignal;
use ssehub::{EndReason, TypeTag};

#[test]
fn publish_never_loses_a_parked_reader() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(2, 64));
        let signal = Arc::new(WakeSignal::new());
        let mut writer = Ring::claim_writer(&ring).unwrap();

        let reader = {
            let (ring, signal) = (ring.clone(), signal.clone());
            thread::spawn(move || {
                // Caught up at 0: announce the park, then re-check.
                signal.begin_park();
                ring.head() > 0
            })
        };
        writer
            .append(b"id: 1\n", b"data", TypeTag::of("t"), 0, 0)
            .unwrap();
        let kicked = signal.anyone_parked();
        let reader_saw_data = reader.join().unwrap();
        assert!(
            kicked || reader_saw_data,
            "lost wake-up: reader sleeps with data available and no kick"
        );
    });
}

#[test]
fn close_never_loses_a_parked_reader() {
    loom::model(|| {
        let generation = Arc::new(Generation::new(1, 7, Ring::new(2, 64), 0));
        let signal = Arc::new(WakeSignal::new());
        let reader = {
            let (generation, signal) = (generation.clone(), signal.clone());
            thread::spawn(move || {
                signal.begin_park();
                generation.closed()
            })
        };
        generation.close(EndReason::Reset);
        let kicked = signal.anyone_parked();
        let seen = reader.join().unwrap();
        assert!(
            kicked || seen == Some(EndReason::Reset),
            "lost close wake-up"
        );
    });
}

#[test]
fn first_close_reason_wins() {
    loom::model(|| {
        let generation = Arc::new(Generation::new(1, 7, Ring::new(2, 64), 0));
        let other = generation.clone();
        let resetter = thread::spawn(move || other.close(EndReason::Reset));
        generation.close(EndReason::Shutdown);
        resetter.join().unwrap();
        let reason = generation.closed();
        assert!(reason == Some(EndReason::Reset) || reason == Some(EndReason::Shutdown));
        // Once closed it stays closed with the same reason.
        assert_eq!(generation.closed(), reason);
    });
}

#[test]
fn kick_is_claimed_once_and_never_lost() {
    loom::model(|| {
        let signal = Arc::new(WakeSignal::new());
        let delivered = Arc::new(AtomicBool::new(false));
        // Two writers race to kick; the notifier takes the kick.
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let signal = signal.clone();
                thread::spawn(move || signal.claim_kick())
            })
            .collect();
        let notifier = {
            let (signal, delivered) = (signal.clone(), delivered.clone());
            thread::spawn(move || {
                if signal.take_kick() {
                    delivered.store(true, Ordering::Relaxed);
                }
            })
        };
        let claims = writers
            .into_iter()
            .map(|w| w.join().unwrap())
            .filter(|&claimed| claimed)
            .count();
        notifier.join().unwrap();
        assert!(claims >= 1, "someone must unpark the notifier");
        // Either the notifier consumed the kick, or it is still pending for
        // the notifier's next round: never both lost.
        let pending = signal.take_kick();
        assert!(delivered.load(Ordering::Relaxed) || pending);
    });
}
