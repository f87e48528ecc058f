//! A source's `filter` map read into the filters the broker applies (part 3 §3.5.8, and the
//! Qpid "AMQP filters" registry for the descriptors).
//!
//! A filter the node does not support is left out of the attach reply, so the client can see
//! it was not applied (part 3 §3.5.3, `filter`): [`MessageFilter::from_source`] returns the
//! keys of the filters in force for the broker to echo. `apache.org:no-local-filter:list` is
//! one of those left out: it concerns topic subscriptions, and a queue receiver cannot honour
//! it, so claiming it would mislead the client.

use sluice_codec::composite::Fields as FilterMap;
use sluice_codec::messaging::{FieldRef, PropertyField, ScannedMessage};
use sluice_codec::types::{Symbol, Value};

use crate::{Selector, SelectorError};

/// `apache.org:legacy-amqp-direct-binding:string`: the subject equals the key.
pub const DIRECT_BINDING: (&str, u64) = (
    "apache.org:legacy-amqp-direct-binding:string",
    0x0000_468C_0000_0000,
);
/// `apache.org:legacy-amqp-topic-binding:string`: the subject matches an AMQP 0-9-1 pattern.
pub const TOPIC_BINDING: (&str, u64) = (
    "apache.org:legacy-amqp-topic-binding:string",
    0x0000_468C_0000_0001,
);
/// `apache.org:legacy-amqp-headers-binding:map`: application properties match a map.
pub const HEADERS_BINDING: (&str, u64) = (
    "apache.org:legacy-amqp-headers-binding:map",
    0x0000_468C_0000_0002,
);
/// `apache.org:no-local-filter:list`: recognised, never put in force (see the module doc).
pub const NO_LOCAL: (&str, u64) = ("apache.org:no-local-filter:list", 0x0000_468C_0000_0003);
/// `apache.org:selector-filter:string`: a JMS message selector.
pub const SELECTOR_FILTER: (&str, u64) =
    ("apache.org:selector-filter:string", 0x0000_468C_0000_0004);

/// Words of a topic-binding pattern accepted.
pub const TOPIC_WORDS_MAX: usize = 64;
/// Entries of a headers-binding map accepted.
const HEADERS_ENTRIES_MAX: usize = 256;

/// Why a source's filters were refused; the broker refuses the attach with
/// `amqp:invalid-field` and this as the description.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// A selector did not parse.
    #[error("filter '{key}': invalid selector: {error}")]
    Selector {
        /// The filter's key in the source's map.
        key: String,
        /// Where and what.
        error: SelectorError,
    },
    /// A supported filter's value is not what its descriptor defines.
    #[error("filter '{key}': {reason}")]
    Invalid {
        /// The filter's key.
        key: String,
        /// What was wrong.
        reason: &'static str,
    },
}

impl FilterError {
    /// The AMQP error condition of the attach refusal.
    pub const CONDITION: &'static str = "amqp:invalid-field";
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Selector(Selector),
    Direct(String),
    Topic(Vec<String>),
    Headers {
        all: bool,
        entries: Vec<(String, Value)>,
    },
}

/// The filters of one source, all of which a message must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageFilter {
    filters: Vec<Filter>,
}

fn descriptor_is(descriptor: &Value, (name, code): (&str, u64)) -> bool {
    match descriptor {
        Value::Symbol(s) => s.as_str() == name,
        Value::Ulong(c) => *c == code,
        _ => false,
    }
}

fn text<'v>(key: &Symbol, value: &'v Value) -> Result<&'v str, FilterError> {
    match value {
        Value::String(s) => Ok(s.as_str()),
        _ => Err(FilterError::Invalid {
            key: key.as_str().to_owned(),
            reason: "value is not a string",
        }),
    }
}

impl MessageFilter {
    /// Reads a source's `filter` map. Returns the filter and the keys in force, or `None` when
    /// no filter is in force; an error for a supported filter whose value is malformed.
    pub fn from_source(
        filter: &FilterMap,
    ) -> Result<Option<(MessageFilter, Vec<Symbol>)>, FilterError> {
        let mut filters = Vec::new();
        let mut keys = Vec::new();
        for (key, value) in filter {
            let Value::Described(described) = value else {
                continue;
            };
            let (descriptor, value) = (&described.descriptor, &described.value);
            let invalid = |reason| FilterError::Invalid {
                key: key.as_str().to_owned(),
                reason,
            };
            let parsed = if descriptor_is(descriptor, SELECTOR_FILTER) {
                let selector =
                    Selector::parse(text(key, value)?).map_err(|error| FilterError::Selector {
                        key: key.as_str().to_owned(),
                        error,
                    })?;
                Filter::Selector(selector)
            } else if descriptor_is(descriptor, DIRECT_BINDING) {
                Filter::Direct(text(key, value)?.to_owned())
            } else if descriptor_is(descriptor, TOPIC_BINDING) {
                let words: Vec<String> = text(key, value)?.split('.').map(str::to_owned).collect();
                if words.len() > TOPIC_WORDS_MAX {
                    return Err(invalid("topic pattern has too many words"));
                }
                Filter::Topic(words)
            } else if descriptor_is(descriptor, HEADERS_BINDING) {
                headers(value).ok_or_else(|| {
                    invalid("headers binding is not a map of string keys with x-match all or any")
                })?
            } else {
                // Unsupported (including no-local): left out of the reply.
                continue;
            };
            filters.push(parsed);
            keys.push(key.clone());
        }
        Ok((!filters.is_empty()).then_some((MessageFilter { filters }, keys)))
    }

    /// Whether the message passes every filter.
    pub fn matches(&self, message: &ScannedMessage) -> bool {
        self.filters.iter().all(|filter| match filter {
            Filter::Selector(s) => s.matches(message),
            Filter::Direct(key) => subject(message) == Some(key.as_str()),
            Filter::Topic(pattern) => subject(message).is_some_and(|s| topic_matches(pattern, s)),
            Filter::Headers { all, entries } => {
                let mut hits = entries
                    .iter()
                    .map(|(k, v)| header_matches(v, message.application_property(k)));
                if *all {
                    hits.all(|h| h)
                } else {
                    hits.any(|h| h)
                }
            }
        })
    }
}

fn subject(message: &ScannedMessage) -> Option<&str> {
    match message.property_field(PropertyField::Subject)? {
        FieldRef::Str(s) => Some(s),
        _ => None,
    }
}

fn headers(value: &Value) -> Option<Filter> {
    let Value::Map(map) = value else { return None };
    if map.len() > HEADERS_ENTRIES_MAX {
        return None;
    }
    let mut all = true;
    let mut entries = Vec::new();
    for (k, v) in map {
        let k = match k {
            Value::String(s) => s.as_str(),
            Value::Symbol(s) => s.as_str(),
            _ => return None,
        };
        if k == "x-match" {
            let mode = match v {
                Value::String(s) => s.as_str(),
                Value::Symbol(s) => s.as_str(),
                _ => return None,
            };
            all = match mode {
                "all" => true,
                "any" => false,
                _ => return None,
            };
        } else if !k.starts_with("x-") {
            // AMQP 0-9-1 ignores binding arguments starting with `x-` when matching.
            entries.push((k.to_owned(), v.clone()));
        }
    }
    Some(Filter::Headers { all, entries })
}

/// A binding argument against a message's application property: a null argument asks only
/// that the property be present (AMQP 0-9-1 "void"); otherwise the values must be equal.
fn header_matches(want: &Value, got: Option<FieldRef<'_>>) -> bool {
    let Some(got) = got else { return false };
    match (want, got) {
        (Value::Null, _) => true,
        (Value::String(a), FieldRef::Str(b) | FieldRef::Symbol(b)) => a.as_str() == b,
        (Value::Symbol(a), FieldRef::Str(b) | FieldRef::Symbol(b)) => a.as_str() == b,
        (Value::Boolean(a), FieldRef::Bool(b)) => *a == b,
        (want, FieldRef::Int(b)) => integer(want) == Some(b),
        _ => false,
    }
}

fn integer(v: &Value) -> Option<i64> {
    Some(match v {
        Value::Ubyte(x) => i64::from(*x),
        Value::Ushort(x) => i64::from(*x),
        Value::Uint(x) => i64::from(*x),
        Value::Ulong(x) => i64::try_from(*x).ok()?,
        Value::Byte(x) => i64::from(*x),
        Value::Short(x) => i64::from(*x),
        Value::Int(x) => i64::from(*x),
        Value::Long(x) => *x,
        _ => return None,
    })
}

/// AMQP 0-9-1 topic matching: `*` is one word, `#` zero or more, words split at `.`. Run as a
/// set of pattern positions (at most [`TOPIC_WORDS_MAX`] + 1) advanced word by word, so a
/// pattern of many `#` costs linear time and nothing is allocated.
fn topic_matches(pattern: &[String], subject: &str) -> bool {
    let mut states = [false; TOPIC_WORDS_MAX + 1];
    let n = pattern.len().min(TOPIC_WORDS_MAX);
    if let Some(first) = states.first_mut() {
        *first = true;
    }
    close(pattern, &mut states, n);
    for word in subject.split('.') {
        let mut next = [false; TOPIC_WORDS_MAX + 1];
        for (i, part) in pattern.iter().take(n).enumerate() {
            if !states.get(i).copied().unwrap_or(false) {
                continue;
            }
            match part.as_str() {
                "#" => set(&mut next, i),
                "*" => set(&mut next, i + 1),
                literal if literal == word => set(&mut next, i + 1),
                _ => {}
            }
        }
        close(pattern, &mut next, n);
        states = next;
    }
    states.get(n).copied().unwrap_or(false)
}

fn set(states: &mut [bool], i: usize) {
    if let Some(s) = states.get_mut(i) {
        *s = true;
    }
}

/// A `#` may match no word: a state before one also stands after it.
fn close(pattern: &[String], states: &mut [bool; TOPIC_WORDS_MAX + 1], n: usize) {
    for (i, part) in pattern.iter().take(n).enumerate() {
        if part == "#" && states.get(i).copied().unwrap_or(false) {
            set(states, i + 1);
        }
    }
}
