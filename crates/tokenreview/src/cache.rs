//! The bounded cache of positive reviews, keyed by the SHA-256 of the token.
//!
//! Sans-IO: time is passed in. The token itself is never stored, only its digest, so a dump of
//! the process's memory does not hand out working credentials. Entries leave when their
//! deadline passes (looked up lazily) or, past `entries_max`, oldest inserted first.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The SHA-256 of a token.
pub(crate) type TokenKey = [u8; 32];

/// The cache key of `token`.
pub(crate) fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// What a positive review said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// `status.user.username`.
    pub(crate) username: String,
    /// `status.audiences`.
    pub(crate) audiences: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    answer: Answer,
    /// When it was stored: a clock that goes back before this makes the entry stale, so a
    /// clock step never stretches an answer's life.
    stored_at: SystemTime,
    /// Reused strictly before this.
    deadline: SystemTime,
    /// Position in `order`.
    sequence: u64,
}

/// Positive answers, at most `entries_max`, each for at most `ttl` and never past the token's
/// own expiry.
#[derive(Debug)]
pub(crate) struct Cache {
    ttl: Duration,
    entries_max: usize,
    entries: HashMap<TokenKey, Entry>,
    /// Insertion order: sequence number to key, oldest first.
    order: BTreeMap<u64, TokenKey>,
    next_sequence: u64,
}

impl Cache {
    /// An empty cache; `entries_max` 0 or `ttl` zero stores nothing.
    pub(crate) fn new(ttl: Duration, entries_max: usize) -> Cache {
        Cache {
            ttl,
            entries_max,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_sequence: 0,
        }
    }

    /// The answer stored for `key` if it is still good at `now`; a stale one is removed.
    pub(crate) fn get(&mut self, key: &TokenKey, now: SystemTime) -> Option<Answer> {
        let entry = self.entries.get(key)?;
        if now >= entry.stored_at && now < entry.deadline {
            return Some(entry.answer.clone());
        }
        self.remove(key);
        None
    }

    /// Stores `answer` for `key` at `now`, good until `now + ttl` or `expires_at`, whichever
    /// comes first; evicts the oldest entries past `entries_max`.
    pub(crate) fn insert(
        &mut self,
        key: TokenKey,
        answer: Answer,
        now: SystemTime,
        expires_at: Option<SystemTime>,
    ) {
        let by_ttl = now.checked_add(self.ttl).unwrap_or(now);
        let deadline = expires_at.map_or(by_ttl, |exp| exp.min(by_ttl));
        if self.entries_max == 0 || deadline <= now {
            return;
        }
        self.remove(&key);
        while self.entries.len() >= self.entries_max {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.order.insert(sequence, key);
        self.entries.insert(
            key,
            Entry {
                answer,
                stored_at: now,
                deadline,
                sequence,
            },
        );
    }

    /// How many answers are stored (stale ones included until looked up or evicted).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn remove(&mut self, key: &TokenKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.sequence);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(name: &str) -> Answer {
        Answer {
            username: name.to_owned(),
            audiences: vec![],
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    #[test]
    fn reuses_an_answer_for_the_ttl() {
        let mut cache = Cache::new(Duration::from_secs(30), 10);
        let key = token_key("t");
        cache.insert(key, answer("a"), at(0), None);
        assert_eq!(cache.get(&key, at(29)), Some(answer("a")));
        assert_eq!(cache.get(&key, at(30)), None);
        assert_eq!(cache.len(), 0, "a stale entry is removed when looked up");
    }

    #[test]
    fn never_past_the_token_expiry() {
        let mut cache = Cache::new(Duration::from_secs(30), 10);
        let key = token_key("t");
        cache.insert(key, answer("a"), at(0), Some(at(10)));
        assert!(cache.get(&key, at(9)).is_some());
        assert!(cache.get(&key, at(10)).is_none());
    }

    #[test]
    fn a_clock_stepping_back_does_not_stretch_an_entry() {
        let mut cache = Cache::new(Duration::from_secs(30), 10);
        let key = token_key("t");
        cache.insert(key, answer("a"), at(100), None);
        assert!(cache.get(&key, at(50)).is_none());
    }

    #[test]
    fn evicts_oldest_first_past_entries_max() {
        let mut cache = Cache::new(Duration::from_secs(30), 3);
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            cache.insert(token_key(name), answer(name), at(i as u64), None);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&token_key("a"), at(5)).is_none());
        for name in ["b", "c", "d"] {
            assert_eq!(cache.get(&token_key(name), at(5)), Some(answer(name)));
        }
    }

    #[test]
    fn reinserting_moves_an_entry_to_the_back() {
        let mut cache = Cache::new(Duration::from_secs(30), 2);
        cache.insert(token_key("a"), answer("a"), at(0), None);
        cache.insert(token_key("b"), answer("b"), at(1), None);
        cache.insert(token_key("a"), answer("a2"), at(2), None);
        cache.insert(token_key("c"), answer("c"), at(3), None);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&token_key("b"), at(4)).is_none());
        assert_eq!(cache.get(&token_key("a"), at(4)), Some(answer("a2")));
        assert_eq!(cache.order.len(), cache.entries.len());
    }

    #[test]
    fn stores_nothing_when_disabled_or_already_expired() {
        let mut off = Cache::new(Duration::from_secs(30), 0);
        off.insert(token_key("a"), answer("a"), at(0), None);
        assert_eq!(off.len(), 0);
        let mut no_ttl = Cache::new(Duration::ZERO, 10);
        no_ttl.insert(token_key("a"), answer("a"), at(0), None);
        assert_eq!(no_ttl.len(), 0);
        let mut cache = Cache::new(Duration::from_secs(30), 10);
        cache.insert(token_key("a"), answer("a"), at(5), Some(at(5)));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn keys_are_the_sha256_of_the_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let hex: String = token_key("abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }
}
