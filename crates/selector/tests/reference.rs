//! The selector against a reference table of expressions with their known results on one
//! message, and a property test against a small reference evaluator of the same language.
//!
//! The table's expected values follow JMS 2.0 §3.8.1 (three-valued logic, no comparison of
//! strings but by `=` and `<>`, an unknown identifier being NULL) and the JMS names as Qpid JMS
//! maps them onto AMQP (JMSPriority the header's priority, JMSXDeliveryCount one more than the
//! header's delivery-count, JMSType the subject).

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice_codec::messaging::{Body, Header, Message, MessageId, Properties, ScannedMessage};
use sluice_codec::types::{Encode, Str, Value};
use sluice_selector::Selector;

/// What a selector gives: parsed and true, false or unknown; or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    True,
    False,
    Unknown,
    Refused,
}
use Want::*;

/// The message every row is evaluated on.
fn message() -> ScannedMessage {
    let s = |t: &str| Value::String(Str::from(t));
    let message = Message {
        header: Some(Header {
            durable: true,
            priority: 7,
            delivery_count: 2,
            ..Header::default()
        }),
        properties: Some(Properties {
            message_id: Some(MessageId::String(Str::from("m-1"))),
            correlation_id: Some(MessageId::String(Str::from("c-9"))),
            subject: Some(Str::from("order")),
            group_id: Some(Str::from("g1")),
            ..Properties::default()
        }),
        application_properties: Some(vec![
            (s("colour"), s("green")),
            (s("weight"), Value::Int(9)),
            (s("ratio"), Value::Double(0.25)),
            (s("flag"), Value::Boolean(true)),
            (s("name"), s("sluice_broker%")),
            (s("big"), Value::Long(1 << 40)),
            (s("small"), Value::Byte(-3)),
            (s("empty"), s("")),
            (s("accent"), s("café")),
        ]),
        body: Body::Value(Value::Null),
        ..Message::default()
    };
    let mut out = BytesMut::new();
    message.encode(&mut out);
    ScannedMessage::scan(out.freeze()).unwrap()
}

const TABLE: &[(&str, Want)] = &[
    // Comparison of numbers, across integer widths and with floats.
    ("weight = 9", True),
    ("weight <> 9", False),
    ("weight > 8 AND weight < 10", True),
    ("weight >= 9 AND weight <= 9", True),
    ("weight = 9.0", True),
    ("ratio < 0.5", True),
    ("ratio = 0.25", True),
    ("big = 1099511627776", True),
    ("big > weight", True),
    ("small = -3", True),
    ("small < 0 AND -small = 3", True),
    ("weight * 2 = 18", True),
    ("weight / 2 = 4", True),
    ("weight / 2.0 = 4.5", True),
    ("weight - 10 = -1", True),
    ("weight + ratio = 9.25", True),
    ("weight / 0 = 1", Unknown),
    ("big * big * big > 0", Unknown),
    ("1 + 2 * 3 = 7", True),
    ("(1 + 2) * 3 = 9", True),
    ("- - 3 = 3", True),
    // Literals.
    ("0x1F = 31", True),
    ("017 = 15", True),
    ("10L = 10", True),
    ("1.5e1 = 15", True),
    (".5 = 0.5", True),
    ("TRUE", True),
    ("false", False),
    ("'it''s' = 'it''s'", True),
    // Strings and booleans compare by = and <> only.
    ("colour = 'green'", True),
    ("colour <> 'green'", False),
    ("colour = 'Green'", False),
    ("colour < 'z'", Unknown),
    ("colour = 1", Unknown),
    ("flag = TRUE", True),
    ("flag", True),
    ("NOT flag", False),
    ("flag > FALSE", Unknown),
    ("empty = ''", True),
    // Unknown identifiers are NULL; three-valued logic.
    ("missing = 1", Unknown),
    ("missing = 1 OR TRUE", True),
    ("missing = 1 AND FALSE", False),
    ("missing = 1 AND TRUE", Unknown),
    ("missing = 1 OR FALSE", Unknown),
    ("NOT (missing = 1)", Unknown),
    ("missing IS NULL", True),
    ("missing IS NOT NULL", False),
    ("colour IS NULL", False),
    ("colour IS NOT NULL", True),
    ("missing + 1 IS NULL", True),
    ("Colour = 'green'", Unknown),
    // LIKE, with escapes and characters beyond ASCII.
    ("colour LIKE 'gr%'", True),
    ("colour LIKE 'gr__n'", True),
    ("colour LIKE 'gr_n'", False),
    ("colour NOT LIKE '%x%'", True),
    ("name LIKE 'sluice!_%' ESCAPE '!'", True),
    ("name LIKE '%!%' ESCAPE '!'", True),
    ("name LIKE 'sluicex%' ESCAPE 'x'", False),
    ("accent LIKE 'caf_'", True),
    ("missing LIKE '%'", Unknown),
    ("weight LIKE '9'", Unknown),
    // IN and BETWEEN.
    ("colour IN ('red', 'green')", True),
    ("colour NOT IN ('red', 'green')", False),
    ("colour IN ('red')", False),
    ("missing IN ('red')", Unknown),
    ("weight BETWEEN 1 AND 9", True),
    ("weight BETWEEN 10 AND 20", False),
    ("weight NOT BETWEEN 10 AND 20", True),
    ("ratio BETWEEN 0 AND 1", True),
    ("weight BETWEEN missing AND 1", False),
    ("weight BETWEEN missing AND 10", Unknown),
    // The JMS names.
    ("JMSPriority = 7", True),
    ("JMSPriority > 4", True),
    ("JMSDeliveryMode = 'PERSISTENT'", True),
    ("JMSXDeliveryCount = 3", True),
    ("JMSMessageID = 'm-1'", True),
    ("JMSCorrelationID = 'c-9'", True),
    ("JMSType = 'order'", True),
    ("JMSXGroupID = 'g1'", True),
    ("JMSReplyTo IS NULL", True),
    // Keywords in any case; precedence of NOT over AND over OR.
    ("colour = 'green' and weight = 9", True),
    ("NOT colour = 'red' AND weight = 9", True),
    ("FALSE AND FALSE OR TRUE", True),
    ("FALSE AND (FALSE OR TRUE)", False),
    // Refused: syntax and limits.
    ("", Refused),
    ("colour =", Refused),
    ("colour = 'open", Refused),
    ("(weight = 9", Refused),
    ("weight NOT 3", Refused),
    ("colour LIKE 'x' ESCAPE 'ab'", Refused),
    ("colour IN ()", Refused),
    ("weight BETWEEN 1", Refused),
    ("1 = = 1", Refused),
    ("colour # 'x'", Refused),
];

#[test]
fn reference_table() {
    let message = message();
    let mut wrong = Vec::new();
    for &(text, want) in TABLE {
        let got = match Selector::parse(text) {
            Err(_) => Refused,
            Ok(selector) => match selector.evaluate(&message) {
                Some(true) => True,
                Some(false) => False,
                None => Unknown,
            },
        };
        if got != want {
            wrong.push(format!("{text:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(TABLE.len() >= 80, "the table has {} rows", TABLE.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn limits_refuse_what_they_say() {
    let long = format!("colour = '{}'", "x".repeat(5000));
    assert!(Selector::parse(&long).is_err());
    let deep = format!("{}TRUE{}", "(".repeat(200), ")".repeat(200));
    assert!(Selector::parse(&deep).is_err());
    let items = (0..300).map(|i| format!("'{i}'")).collect::<Vec<_>>();
    assert!(Selector::parse(&format!("colour IN ({})", items.join(", "))).is_err());
}

// The property test: random expressions over integer properties `a`, `b`, `c` (and `m`, never
// set), rendered to text and evaluated both by the selector and by `Expr::eval` below, which is
// the JMS semantics written as directly as it can be.

#[derive(Debug, Clone)]
enum Num {
    Lit(i64),
    Var(usize),
    Add(Box<Num>, Box<Num>),
    Sub(Box<Num>, Box<Num>),
    Mul(Box<Num>, Box<Num>),
    Neg(Box<Num>),
}

#[derive(Debug, Clone)]
enum Cond {
    Lit(bool),
    Cmp(&'static str, Num, Num),
    Between(bool, Num, Num, Num),
    IsNull(bool, Num),
    In(bool, usize, Vec<usize>),
    Like(bool, usize, &'static str),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

const VARS: [&str; 4] = ["a", "b", "c", "m"];
const WORDS: [&str; 4] = ["red", "green", "grey", "blue"];
const PATTERNS: [&str; 5] = ["gr%", "%e%", "_ed", "blue", "%"];

fn num() -> impl Strategy<Value = Num> {
    let leaf = prop_oneof![
        (-6i64..6).prop_map(Num::Lit),
        (0usize..4).prop_map(Num::Var)
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Num::Add(l.into(), r.into())),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Num::Sub(l.into(), r.into())),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Num::Mul(l.into(), r.into())),
            inner.prop_map(|n| Num::Neg(n.into())),
        ]
    })
}

fn cond() -> impl Strategy<Value = Cond> {
    let ops = prop_oneof![
        Just("="),
        Just("<>"),
        Just("<"),
        Just(">"),
        Just("<="),
        Just(">=")
    ];
    // Comparisons weigh most: they are where integer edge cases (equality, overflow) show.
    let leaf = prop_oneof![
        1 => any::<bool>().prop_map(Cond::Lit),
        6 => (ops, num(), num()).prop_map(|(op, l, r)| Cond::Cmp(op, l, r)),
        2 => (any::<bool>(), num(), num(), num()).prop_map(|(n, v, l, h)| Cond::Between(n, v, l, h)),
        1 => (any::<bool>(), num()).prop_map(|(n, v)| Cond::IsNull(n, v)),
        1 => (any::<bool>(), 0usize..3, prop::collection::vec(0usize..4, 1..4))
            .prop_map(|(n, v, items)| Cond::In(n, v, items)),
        1 => (any::<bool>(), 0usize..3, prop::sample::select(&PATTERNS[..]))
            .prop_map(|(n, v, p)| Cond::Like(n, v, p)),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| Cond::Not(c.into())),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Cond::And(l.into(), r.into())),
            (inner.clone(), inner).prop_map(|(l, r)| Cond::Or(l.into(), r.into())),
        ]
    })
}

impl Num {
    fn text(&self) -> String {
        match self {
            Num::Lit(v) if *v < 0 => format!("({v})"),
            Num::Lit(v) => v.to_string(),
            Num::Var(i) => VARS[*i].to_string(),
            Num::Add(l, r) => format!("({} + {})", l.text(), r.text()),
            Num::Sub(l, r) => format!("({} - {})", l.text(), r.text()),
            Num::Mul(l, r) => format!("({} * {})", l.text(), r.text()),
            Num::Neg(n) => format!("-{}", n.text()),
        }
    }

    fn eval(&self, vars: &[Option<i64>; 4]) -> Option<i64> {
        match self {
            Num::Lit(v) => Some(*v),
            Num::Var(i) => vars[*i],
            Num::Add(l, r) => l.eval(vars)?.checked_add(r.eval(vars)?),
            Num::Sub(l, r) => l.eval(vars)?.checked_sub(r.eval(vars)?),
            Num::Mul(l, r) => l.eval(vars)?.checked_mul(r.eval(vars)?),
            Num::Neg(n) => n.eval(vars)?.checked_neg(),
        }
    }
}

fn and3(l: Option<bool>, r: Option<bool>) -> Option<bool> {
    match (l, r) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn not3(v: Option<bool>) -> Option<bool> {
    v.map(|b| !b)
}

impl Cond {
    fn text(&self) -> String {
        let not = |n: &bool| if *n { "NOT " } else { "" };
        match self {
            Cond::Lit(b) => b.to_string().to_uppercase(),
            Cond::Cmp(op, l, r) => format!("{} {op} {}", l.text(), r.text()),
            Cond::Between(n, v, l, h) => {
                format!(
                    "{} {}BETWEEN {} AND {}",
                    v.text(),
                    not(n),
                    l.text(),
                    h.text()
                )
            }
            Cond::IsNull(n, v) => format!("{} IS {}NULL", v.text(), not(n)),
            Cond::In(n, v, items) => {
                let items: Vec<String> = items.iter().map(|i| format!("'{}'", WORDS[*i])).collect();
                format!("s{v} {}IN ({})", not(n), items.join(", "))
            }
            Cond::Like(n, v, p) => format!("s{v} {}LIKE '{p}'", not(n)),
            Cond::Not(c) => format!("NOT ({})", c.text()),
            Cond::And(l, r) => format!("({}) AND ({})", l.text(), r.text()),
            Cond::Or(l, r) => format!("({}) OR ({})", l.text(), r.text()),
        }
    }

    /// `s0`..`s2` are string properties: `s0` = "red", `s1` = "green", `s2` never set.
    fn eval(&self, vars: &[Option<i64>; 4]) -> Option<bool> {
        let strings = [Some("red"), Some("green"), None];
        match self {
            Cond::Lit(b) => Some(*b),
            Cond::Cmp(op, l, r) => {
                let (l, r) = (l.eval(vars)?, r.eval(vars)?);
                Some(match *op {
                    "=" => l == r,
                    "<>" => l != r,
                    "<" => l < r,
                    ">" => l > r,
                    "<=" => l <= r,
                    _ => l >= r,
                })
            }
            Cond::Between(n, v, l, h) => {
                let v = v.eval(vars);
                let ge = v.zip(l.eval(vars)).map(|(v, l)| v >= l);
                let le = v.zip(h.eval(vars)).map(|(v, h)| v <= h);
                let inside = and3(ge, le);
                if *n { not3(inside) } else { inside }
            }
            Cond::IsNull(n, v) => Some(v.eval(vars).is_none() != *n),
            Cond::In(n, v, items) => {
                let s = strings[*v]?;
                Some(items.iter().any(|i| WORDS[*i] == s) != *n)
            }
            Cond::Like(n, v, p) => {
                let s = strings[*v]?;
                Some(like(p, s) != *n)
            }
            Cond::Not(c) => not3(c.eval(vars)),
            Cond::And(l, r) => and3(l.eval(vars), r.eval(vars)),
            Cond::Or(l, r) => not3(and3(not3(l.eval(vars)), not3(r.eval(vars)))),
        }
    }
}

/// LIKE for the patterns above: `%` any run, `_` one character, by recursion.
fn like(pattern: &str, s: &str) -> bool {
    match pattern.chars().next() {
        None => s.is_empty(),
        Some('%') => (0..=s.len())
            .filter(|i| s.is_char_boundary(*i))
            .any(|i| like(&pattern[1..], &s[i..])),
        Some('_') => s
            .chars()
            .next()
            .is_some_and(|c| like(&pattern[1..], &s[c.len_utf8()..])),
        Some(c) => s.starts_with(c) && like(&pattern[c.len_utf8()..], &s[c.len_utf8()..]),
    }
}

fn message_with(vars: &[Option<i64>; 4]) -> ScannedMessage {
    let s = |t: &str| Value::String(Str::from(t));
    let mut props = vec![(s("s0"), s("red")), (s("s1"), s("green"))];
    for (name, value) in VARS.iter().zip(vars) {
        if let Some(v) = value {
            props.push((s(name), Value::Long(*v)));
        }
    }
    let message = Message {
        application_properties: Some(props),
        body: Body::Data(vec![Bytes::from_static(b"x")]),
        ..Message::default()
    };
    let mut out = BytesMut::new();
    message.encode(&mut out);
    ScannedMessage::scan(out.freeze()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn agrees_with_the_reference_evaluator(
        expr in cond(),
        a in proptest::option::weighted(0.9, -6i64..6),
        b in proptest::option::weighted(0.9, -6i64..6),
        c in prop_oneof![Just(None), Just(Some(i64::MAX)), (-6i64..6).prop_map(Some)],
    ) {
        let vars = [a, b, c, None];
        let text = expr.text();
        let selector = Selector::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let message = message_with(&vars);
        prop_assert_eq!(selector.evaluate(&message), expr.eval(&vars), "{}", text);
        prop_assert_eq!(selector.matches(&message), expr.eval(&vars) == Some(true));
    }
}
