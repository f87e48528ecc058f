//! Topic names and patterns: `/`-separated levels; in a receiver's pattern `+` matches exactly
//! one level and `#` any number of levels (zero included) and may only be last, as MQTT and
//! EnMasse's hierarchical topics define them.

use crate::table::RouteError;

/// Splits `name` into its topic (the first level) and the rest, if there is a rest.
pub fn split_topic(name: &str) -> (&str, Option<&str>) {
    match name.split_once('/') {
        Some((topic, rest)) => (topic, Some(rest)),
        None => (name, None),
    }
}

/// A receiver's subscription pattern, checked once when the link attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    levels: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(String),
    One,
    Any,
}

impl TopicPattern {
    /// Parses a pattern such as `orders/eu/+` or `orders/#`.
    pub fn parse(pattern: &str) -> Result<Self, RouteError> {
        let parts: Vec<&str> = pattern.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            levels.push(match *part {
                "+" => Level::One,
                "#" if i + 1 == parts.len() => Level::Any,
                "#" => return Err(RouteError::InvalidPattern("'#' may only be the last level")),
                p if p.contains(['+', '#']) => {
                    return Err(RouteError::InvalidPattern(
                        "'+' and '#' must be whole levels",
                    ));
                }
                p => Level::Literal(p.to_string()),
            });
        }
        Ok(TopicPattern { levels })
    }

    /// Whether the pattern has any wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.levels.iter().any(|l| !matches!(l, Level::Literal(_)))
    }

    /// Whether `name` matches. Linear in the levels: `#` is last, so no backtracking.
    pub fn matches(&self, name: &str) -> bool {
        let mut names = name.split('/');
        for level in &self.levels {
            match level {
                Level::Any => return true,
                Level::One => {
                    if names.next().is_none() {
                        return false;
                    }
                }
                Level::Literal(l) => {
                    if names.next() != Some(l.as_str()) {
                        return false;
                    }
                }
            }
        }
        names.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pattern: &str, name: &str) -> bool {
        TopicPattern::parse(pattern).unwrap().matches(name)
    }

    #[test]
    fn plus_is_one_level_and_hash_is_any_number() {
        assert!(m("orders/eu/+", "orders/eu/de"));
        assert!(!m("orders/eu/+", "orders/eu"));
        assert!(!m("orders/eu/+", "orders/eu/de/berlin"));
        assert!(m("orders/#", "orders"));
        assert!(m("orders/#", "orders/eu/de/berlin"));
        assert!(m("orders/+/de", "orders/eu/de"));
        assert!(!m("orders/+/de", "orders/eu/fr"));
        assert!(m("orders", "orders"));
        assert!(!m("orders", "orders/eu"));
        assert!(!m("orders/#", "ordersx"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert!(TopicPattern::parse("orders/#/eu").is_err());
        assert!(TopicPattern::parse("orders/e+").is_err());
        assert!(TopicPattern::parse("orders/#x").is_err());
        assert!(TopicPattern::parse("orders/+/#").is_ok());
    }

    #[test]
    fn names_split_at_the_first_level() {
        assert_eq!(split_topic("orders/eu/de"), ("orders", Some("eu/de")));
        assert_eq!(split_topic("orders"), ("orders", None));
    }

    proptest! {
        #[test]
        fn a_literal_pattern_matches_exactly_its_own_name(name in "[a-z]{1,3}(/[a-z]{1,3}){0,3}", other in "[a-z]{1,3}(/[a-z]{1,3}){0,3}") {
            let p = TopicPattern::parse(&name).unwrap();
            prop_assert!(p.matches(&name));
            prop_assert_eq!(p.matches(&other), name == other);
        }

        #[test]
        fn hash_matches_every_extension(prefix in "[a-z]{1,3}(/[a-z]{1,3}){0,2}", rest in "(/[a-z]{1,3}){0,3}") {
            let p = TopicPattern::parse(&format!("{prefix}/#")).unwrap();
            let name = format!("{prefix}{rest}");
            prop_assert!(p.matches(&name));
        }
    }
}
