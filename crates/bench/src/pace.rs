//! Sending at a fixed rate without coordinated omission: message `i` is due at
//! `start + i / rate`, and its latency is measured from then, not from when it could finally
//! go, so a broker that stalls the sender is charged for the wait.

use std::time::{Duration, Instant};

/// The schedule of one sender.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start: Instant,
    /// Nanoseconds between messages.
    interval_ns: f64,
}

impl Pacer {
    /// `rate` messages a second from `start`; `None` for a rate that is not positive.
    pub fn new(rate: f64, start: Instant) -> Option<Self> {
        (rate > 0.0 && rate.is_finite()).then(|| Pacer {
            start,
            interval_ns: 1e9 / rate,
        })
    }

    /// How many messages are due by `now` in all (the first is due at `start`).
    pub fn due_by(&self, now: Instant) -> u64 {
        if now < self.start {
            return 0;
        }
        let elapsed = now.duration_since(self.start).as_nanos() as f64;
        (elapsed / self.interval_ns) as u64 + 1
    }

    /// When message `index` (0-based) is due.
    pub fn due_at(&self, index: u64) -> Instant {
        self.start + Duration::from_nanos((index as f64 * self.interval_ns) as u64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_fall_due_at_the_rate() {
        let start = Instant::now();
        let p = Pacer::new(1000.0, start).unwrap();
        assert_eq!(p.due_by(start), 1);
        assert_eq!(p.due_by(start + Duration::from_micros(999)), 1);
        assert_eq!(p.due_by(start + Duration::from_millis(1)), 2);
        assert_eq!(p.due_by(start + Duration::from_secs(1)), 1001);
        assert_eq!(p.due_at(250), start + Duration::from_millis(250));
    }

    #[test]
    fn a_late_sender_owes_every_message_since_start() {
        // Coordinated omission: after a 100 ms stall, 100 messages are due at once, each
        // stamped with its own due time.
        let start = Instant::now();
        let p = Pacer::new(1000.0, start).unwrap();
        let due = p.due_by(start + Duration::from_millis(100));
        assert_eq!(due, 101);
        assert_eq!(p.due_at(50), start + Duration::from_millis(50));
    }

    #[test]
    fn a_rate_must_be_positive() {
        assert!(Pacer::new(0.0, Instant::now()).is_none());
        assert!(Pacer::new(f64::NAN, Instant::now()).is_none());
    }
}
