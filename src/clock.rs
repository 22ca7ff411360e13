//! Injectable wall clock for event timestamps (Unix nanoseconds), so
//! timestamp resume is testable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
#[cfg(not(unix))]
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in Unix nanoseconds.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Nanoseconds since the Unix epoch.
    fn now_unix_nanos(&self) -> u64;
}

/// The system wall clock, read cheaply on the publish path.
///
/// Reading the OS wall clock costs a `clock_gettime` per event (70–100 ns on
/// this project's VMs under load, a third of a publish). Instead this reads
/// the CPU's counter through `quanta` (calibrated to nanoseconds; it falls
/// back to the OS monotonic clock where the counter is unreliable) and adds
/// an offset to the wall clock taken from the OS. The offset is re-taken at
/// least every [`SystemClock::REANCHOR`], so the timestamps follow the OS
/// wall clock (NTP steps included) to within that interval's drift —
/// microseconds. Event timestamps stay non-decreasing regardless: the writer
/// clamps them.
#[derive(Debug)]
pub struct SystemClock {
    counter: quanta::Clock,
    base: u64,
    /// Wall-clock nanoseconds minus counter nanoseconds at the last anchor.
    offset: AtomicU64,
    /// Counter nanoseconds at the last anchor.
    anchored_at: AtomicU64,
}

impl SystemClock {
    /// How often the offset to the OS wall clock is re-taken.
    pub const REANCHOR: Duration = Duration::from_millis(250);

    /// A clock anchored to the OS wall clock now.
    pub fn new() -> SystemClock {
        let counter = quanta::Clock::new();
        let base = counter.raw();
        let clock = SystemClock {
            counter,
            base,
            offset: AtomicU64::new(0),
            anchored_at: AtomicU64::new(0),
        };
        clock.anchor(0);
        clock
    }

    fn counter_nanos(&self) -> u64 {
        self.counter.delta_as_nanos(self.base, self.counter.raw())
    }

    fn anchor(&self, counter_nanos: u64) {
        let wall = os_wall_clock_nanos();
        // Two separate words: a concurrent reader may pair the new offset
        // with the old anchor time or the reverse. Both offsets are the wall
        // clock minus the counter, which differ by the drift of one interval
        // (microseconds), so that reader is off by at most that much; at
        // worst it re-anchors once more. The writer clamps timestamps to be
        // non-decreasing either way.
        self.offset
            .store(wall.wrapping_sub(counter_nanos), Ordering::Relaxed);
        self.anchored_at.store(counter_nanos, Ordering::Relaxed);
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_unix_nanos(&self) -> u64 {
        let now = self.counter_nanos();
        if now.wrapping_sub(self.anchored_at.load(Ordering::Relaxed))
            > Self::REANCHOR.as_nanos() as u64
        {
            self.anchor(now);
        }
        now.wrapping_add(self.offset.load(Ordering::Relaxed))
    }
}

/// The OS wall clock, Unix nanoseconds.
#[cfg(unix)]
pub fn os_wall_clock_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_REALTIME is always
    // supported, and on failure `now` stays zeroed.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64)
}

/// The OS wall clock, Unix nanoseconds.
#[cfg(not(unix))]
pub fn os_wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// A clock that only moves when told to; for tests.
///
/// # Examples
///
/// ```
/// use ssehub::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_nanos(5));
/// assert_eq!(clock.now_unix_nanos(), 1_005);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `unix_nanos`.
    pub fn new(unix_nanos: u64) -> ManualClock {
        ManualClock {
            nanos: Arc::new(AtomicU64::new(unix_nanos)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, unix_nanos: u64) {
        self.nanos.store(unix_nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn system_clock_follows_the_wall_clock() {
        let clock = SystemClock::new();
        for _ in 0..3 {
            let std_now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            let ours = clock.now_unix_nanos();
            // The same instant, give or take scheduling on a busy machine.
            assert!(ours.abs_diff(std_now) < 50_000_000, "{ours} vs {std_now}");
            std::thread::sleep(SystemClock::REANCHOR + Duration::from_millis(10));
        }
    }
}
