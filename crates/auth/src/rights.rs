//! Address patterns and the rights they carry.
//!
//! Matching follows EnMasse (anchors/enmasse.md §3.2):
//! - **standard** space (the router's prefix match): a literal matches only itself; a trailing
//!   `*` is a prefix match (`top*` matches `topic` and `topic/sub`); `*` alone matches
//!   everything; a `*` anywhere else is a literal character.
//! - **brokered** space (Artemis wildcards over `/`-separated words): `+` matches exactly one
//!   word; `*` and `#` match any number of words, zero included (EnMasse's broker plugin
//!   turned `*` into Artemis' `#`), so `topic/+` matches `topic/sub` but not `topic/s/sub`,
//!   `topic/#` matches both and `topic` itself, and `#` or `*` alone matches everything. A
//!   wildcard character inside a longer word (`top*`) is literal.
//!
//! A subscription is addressed `topic::sub`; patterns are matched against that whole string.

use sluice_config::resources::{AddressSpaceType, AuthorizationRule, Operation as RuleOperation};

/// A messaging operation that needs a right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Attach a sender to the address, or send a message to it through the anonymous relay.
    Send,
    /// Attach a receiver to the address.
    Recv,
    /// Operate on the address through `$management`: purge it, move its messages.
    Manage,
    /// Read the address's figures through `$management` (`manage` implies it).
    View,
}

impl Operation {
    /// The verb for messages: "send to" or "receive from".
    pub(crate) fn phrase(self) -> &'static str {
        match self {
            Operation::Send => "send to",
            Operation::Recv => "receive from",
            Operation::Manage => "manage",
            Operation::View => "view",
        }
    }
}

/// One compiled address pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// Matches every address.
    All,
    /// Matches exactly this address.
    Exact(String),
    /// Matches every address starting with this (standard space, trailing `*`).
    Prefix(String),
    /// Brokered words with at least one wildcard word.
    Words(Vec<Word>),
}

/// One `/`-separated word of a brokered pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Word {
    Literal(String),
    /// `+`: exactly one word.
    One,
    /// `#` or `*`: zero or more words.
    Any,
}

impl Pattern {
    fn compile(pattern: &str, space: AddressSpaceType) -> Pattern {
        match space {
            AddressSpaceType::Standard => Self::standard(pattern),
            AddressSpaceType::Brokered => Self::brokered(pattern),
        }
    }

    fn standard(pattern: &str) -> Pattern {
        match pattern.strip_suffix('*') {
            Some("") => Pattern::All,
            Some(prefix) => Pattern::Prefix(prefix.to_owned()),
            None => Pattern::Exact(pattern.to_owned()),
        }
    }

    fn brokered(pattern: &str) -> Pattern {
        let words: Vec<Word> = pattern
            .split('/')
            .map(|word| match word {
                "+" => Word::One,
                "#" | "*" => Word::Any,
                literal => Word::Literal(literal.to_owned()),
            })
            .collect();
        if words.iter().all(|w| matches!(w, Word::Literal(_))) {
            Pattern::Exact(pattern.to_owned())
        } else if words.iter().all(|w| *w == Word::Any) {
            Pattern::All
        } else {
            Pattern::Words(words)
        }
    }

    fn matches(&self, address: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(exact) => exact == address,
            Pattern::Prefix(prefix) => address.starts_with(prefix.as_str()),
            Pattern::Words(words) => words_match(words, address),
        }
    }
}

/// Whether `words` match the `/`-separated words of `address`.
///
/// Dynamic programming over the address's words, so that several `#` in one pattern cost
/// O(pattern × address) rather than exponential backtracking on a peer-chosen address.
/// `reachable[j]` says whether the pattern words seen so far can consume the first `j`
/// address words.
fn words_match(words: &[Word], address: &str) -> bool {
    let parts: Vec<&str> = address.split('/').collect();
    let mut reachable: Vec<bool> = std::iter::once(true)
        .chain(parts.iter().map(|_| false))
        .collect();
    for word in words {
        reachable = match word {
            Word::Any => reachable
                .iter()
                .scan(false, |seen, r| {
                    *seen |= *r;
                    Some(*seen)
                })
                .collect(),
            Word::One | Word::Literal(_) => std::iter::once(false)
                .chain(reachable.iter().zip(&parts).map(|(r, part)| {
                    *r && match word {
                        Word::Literal(literal) => literal == part,
                        _ => true,
                    }
                }))
                .collect(),
        };
    }
    reachable.last().copied().unwrap_or(false)
}

/// A list of address patterns, each granting send and/or receive. Compiled once at load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    pattern: Pattern,
    send: bool,
    recv: bool,
    manage: bool,
    view: bool,
}

impl Rights {
    /// No right at all.
    pub fn new() -> Rights {
        Rights::default()
    }

    /// The rights of a MessagingUser's `spec.authorization`: `send` and `recv` for links,
    /// `manage` and `view` for `$management` (purge and move; read). A rule granting none
    /// of them is dropped.
    pub fn from_rules(rules: &[AuthorizationRule], space: AddressSpaceType) -> Rights {
        let mut rights = Rights::new();
        for rule in rules {
            let has = |op| rule.operations.contains(&op);
            let manage = has(RuleOperation::Manage);
            let view = manage || has(RuleOperation::View);
            for pattern in &rule.addresses {
                rights.push(
                    pattern,
                    [
                        has(RuleOperation::Send),
                        has(RuleOperation::Recv),
                        manage,
                        view,
                    ],
                    space,
                );
            }
        }
        rights
    }

    /// Adds `pattern` (read with `space`'s matching rules) with the given messaging rights.
    pub fn grant(&mut self, pattern: &str, send: bool, recv: bool, space: AddressSpaceType) {
        self.push(pattern, [send, recv, false, false], space);
    }

    fn push(&mut self, pattern: &str, ops: [bool; 4], space: AddressSpaceType) {
        let [send, recv, manage, view] = ops;
        if ops.contains(&true) {
            self.entries.push(Entry {
                pattern: Pattern::compile(pattern, space),
                send,
                recv,
                manage,
                view,
            });
        }
    }

    /// Whether some pattern granting `op` matches `address`.
    pub fn allows(&self, op: Operation, address: &str) -> bool {
        self.entries.iter().any(|entry| {
            let granted = match op {
                Operation::Send => entry.send,
                Operation::Recv => entry.recv,
                Operation::Manage => entry.manage,
                Operation::View => entry.view,
            };
            granted && entry.pattern.matches(address)
        })
    }

    /// Whether no pattern is granted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests;
