//! A queue's policy: limits, the TTL clamp, the redelivery limit and which targets exist.

/// Default [`QueuePolicy::messages_max`]: a bound, not a target; plans set their own.
pub const MESSAGES_MAX_DEFAULT: usize = 1_000_000;
/// Default [`QueuePolicy::bytes_max`]: 256 MiB.
pub const BYTES_MAX_DEFAULT: usize = 256 * 1024 * 1024;

/// The `messageTtl` clamp of an address and its plan (anchors/enmasse.md §1.5), as Artemis's
/// `minExpiryDelay`/`maxExpiryDelay` apply it: a message with no TTL, or one above `maximum_ms`,
/// gets `maximum_ms`; one below `minimum_ms` gets `minimum_ms`.
///
/// Combining plan and address values, dropping values below 1 and ignoring a pair whose
/// maximum is not above its minimum is `sluice-config`'s job; this applies what it resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TtlPolicy {
    /// The least time a message lives, in milliseconds.
    pub minimum_ms: Option<u64>,
    /// The most time a message lives, in milliseconds; also the TTL of a message with none.
    pub maximum_ms: Option<u64>,
}

/// How a queue behaves at its limits and what it does with messages it gives up on.
/// Not `Eq`: the redelivery multiplier is a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueuePolicy {
    /// Most messages held, queued and in flight together; enqueue beyond is refused.
    pub messages_max: usize,
    /// Most message bytes held, queued and in flight together; enqueue beyond is refused.
    pub bytes_max: usize,
    /// EnMasse's `messageRedelivery.maximumDeliveryAttempts`: once a message's delivery count
    /// (failed deliveries: modified with delivery-failed, or a consumer gone with it
    /// unsettled) reaches this, it is dead-lettered as if rejected. `None` is infinite (`-1`).
    pub delivery_attempts_max: Option<u32>,
    /// The TTL clamp.
    pub ttl: TtlPolicy,
    /// Whether the address has a dead-letter target (`spec.deadletter`). Without one, rejected
    /// messages and those past the redelivery limit are dropped and counted.
    pub dead_letter_target: bool,
    /// Whether the address has an expiry target (`spec.expiry`). Without one, expired messages
    /// are dropped and counted.
    pub expiry_target: bool,
    /// Whether the queue keeps its durable messages (header `durable`) across a restart: every
    /// change to one is logged as a [`crate::Change`] for the journal.
    pub durable: bool,
    /// Whether the queue may page: take messages' bodies out of memory into the journal
    /// (durable messages as [`crate::Change::Stored`], others as [`crate::Change::Paged`]) and
    /// read them back when consumers come to them. Only a queue with a journal may.
    pub paging: bool,
    /// Most bytes of messages held in memory, available and in flight; past it a queue that
    /// may page keeps new messages on disk. Without paging it has no effect.
    pub memory_max: usize,
    /// Artemis `redeliveryDelay`: after a failed delivery attempt (modified with
    /// delivery-failed, or a consumer gone with it unsettled; not `released`, which Artemis
    /// does not count as an attempt either) a message waits this long before it is offered
    /// again. 0 is no delay.
    pub redelivery_delay_ms: u64,
    /// Artemis `redeliveryMultiplier`: the delay after the `n`-th failed attempt is
    /// `redelivery_delay_ms × multiplier^(n − 1)`.
    pub redelivery_multiplier: f64,
    /// Artemis `maxRedeliveryDelay`: the most a redelivery delay grows to. `None` is no cap.
    pub redelivery_delay_max_ms: Option<u64>,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy {
            messages_max: MESSAGES_MAX_DEFAULT,
            bytes_max: BYTES_MAX_DEFAULT,
            delivery_attempts_max: None,
            ttl: TtlPolicy::default(),
            dead_letter_target: false,
            expiry_target: false,
            durable: false,
            paging: false,
            memory_max: usize::MAX,
            redelivery_delay_ms: 0,
            redelivery_multiplier: 1.0,
            redelivery_delay_max_ms: None,
        }
    }
}

/// When a message enqueued at `now_ms` expires, in milliseconds since the epoch, or `None` if
/// never.
///
/// The message's own expiry is the earlier of `now_ms + ttl_ms` (header) and
/// `absolute_expiry_ms` (properties); the policy then clamps the time left from `now_ms`.
pub fn expiry_instant_ms(
    now_ms: i64,
    ttl_ms: Option<u32>,
    absolute_expiry_ms: Option<i64>,
    policy: TtlPolicy,
) -> Option<i64> {
    let from_ttl = ttl_ms.map(|ttl| now_ms.saturating_add(i64::from(ttl)));
    let own = match (from_ttl, absolute_expiry_ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let clamp_ms = |ms: Option<u64>| ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
    // Time left, in ms; may be negative for an absolute expiry already past.
    let mut left = own.map(|at| at.saturating_sub(now_ms));
    if let Some(max) = clamp_ms(policy.maximum_ms) {
        left = Some(left.map_or(max, |left| left.min(max)));
    }
    if let Some(min) = clamp_ms(policy.minimum_ms) {
        left = left.map(|left| left.max(min));
    }
    left.map(|left| now_ms.saturating_add(left))
}

impl QueuePolicy {
    /// How long a message waits after its `delivery_count`-th failed attempt, in ms.
    pub fn redelivery_delay_after_ms(&self, delivery_count: u32) -> u64 {
        if self.redelivery_delay_ms == 0 {
            return 0;
        }
        let exponent = i32::try_from(delivery_count.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = self.redelivery_delay_ms as f64 * self.redelivery_multiplier.powi(exponent);
        let cap = self.redelivery_delay_max_ms.unwrap_or(u64::MAX);
        // `as` saturates a float (NaN to 0), which is what a delay wants.
        (grown as u64).min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn clamp(min: Option<u64>, max: Option<u64>) -> TtlPolicy {
        TtlPolicy {
            minimum_ms: min,
            maximum_ms: max,
        }
    }

    #[test]
    fn no_ttl_and_no_policy_never_expires() {
        assert_eq!(
            expiry_instant_ms(NOW, None, None, TtlPolicy::default()),
            None
        );
    }

    #[test]
    fn header_ttl_counts_from_enqueue() {
        let at = expiry_instant_ms(NOW, Some(500), None, TtlPolicy::default());
        assert_eq!(at, Some(NOW + 500));
    }

    #[test]
    fn absolute_expiry_is_used_as_is() {
        let at = expiry_instant_ms(NOW, None, Some(NOW + 42), TtlPolicy::default());
        assert_eq!(at, Some(NOW + 42));
    }

    #[test]
    fn the_earlier_of_ttl_and_absolute_expiry_wins() {
        let policy = TtlPolicy::default();
        assert_eq!(
            expiry_instant_ms(NOW, Some(100), Some(NOW + 50), policy),
            Some(NOW + 50)
        );
        assert_eq!(
            expiry_instant_ms(NOW, Some(100), Some(NOW + 500), policy),
            Some(NOW + 100)
        );
    }

    #[test]
    fn the_maximum_applies_to_messages_without_ttl_and_caps_longer_ones() {
        let policy = clamp(None, Some(1_000));
        assert_eq!(
            expiry_instant_ms(NOW, None, None, policy),
            Some(NOW + 1_000)
        );
        assert_eq!(
            expiry_instant_ms(NOW, Some(5_000), None, policy),
            Some(NOW + 1_000)
        );
        assert_eq!(
            expiry_instant_ms(NOW, Some(200), None, policy),
            Some(NOW + 200)
        );
    }

    #[test]
    fn the_minimum_raises_shorter_ttls_but_gives_none_to_messages_without() {
        let policy = clamp(Some(1_000), None);
        assert_eq!(
            expiry_instant_ms(NOW, Some(10), None, policy),
            Some(NOW + 1_000)
        );
        assert_eq!(expiry_instant_ms(NOW, None, None, policy), None);
        assert_eq!(
            expiry_instant_ms(NOW, None, Some(NOW - 5), policy),
            Some(NOW + 1_000)
        );
    }

    #[test]
    fn huge_values_saturate() {
        let policy = clamp(None, Some(u64::MAX));
        assert_eq!(
            expiry_instant_ms(i64::MAX - 1, Some(10), None, policy),
            Some(i64::MAX)
        );
        assert_eq!(expiry_instant_ms(NOW, None, None, policy), Some(i64::MAX));
    }
}
