//! Unit tests of the parser, evaluator and filters.

use std::collections::HashMap;

use bytes::BytesMut;
use sluice_codec::messaging::{
    Body, FieldRef, Header, Message, Properties, PropertyField, ScannedMessage,
};
use sluice_codec::types::{Described, Encode, Str, Symbol, Value};

use crate::eval::Like;
use crate::*;

#[derive(Default)]
struct Map {
    app: HashMap<&'static str, FieldRef<'static>>,
    props: HashMap<u8, FieldRef<'static>>,
    priority: Option<u8>,
}

impl Fields for Map {
    fn priority(&self) -> u8 {
        self.priority.unwrap_or(4)
    }
    fn durable(&self) -> bool {
        false
    }
    fn delivery_count(&self) -> u32 {
        0
    }
    fn property(&self, which: PropertyField) -> Option<FieldRef<'_>> {
        self.props.get(&(which as u8)).copied()
    }
    fn application_property(&self, name: &str) -> Option<FieldRef<'_>> {
        self.app.get(name).copied()
    }
}

fn eval(text: &str, app: &[(&'static str, FieldRef<'static>)]) -> Option<bool> {
    let map = Map {
        app: app.iter().copied().collect(),
        ..Map::default()
    };
    Selector::parse(text).unwrap().evaluate(&map)
}

#[test]
fn literals_and_precedence() {
    assert_eq!(eval("1 + 2 * 3 = 7", &[]), Some(true));
    assert_eq!(eval("(1 + 2) * 3 = 9", &[]), Some(true));
    assert_eq!(eval("0x1F = 31 AND 017 = 15 AND 10L = 10", &[]), Some(true));
    assert_eq!(eval("1.5e1 = 15 AND .5 = 0.5 AND 2. = 2", &[]), Some(true));
    assert_eq!(eval("'it''s' = 'it''s'", &[]), Some(true));
    assert_eq!(eval("true AND NOT false", &[]), Some(true));
    assert_eq!(eval("-3 < -2", &[]), Some(true));
    assert_eq!(eval("7 / 2 = 3 AND 7.0 / 2 = 3.5", &[]), Some(true));
}

#[test]
fn keywords_are_case_insensitive_and_identifiers_are_not() {
    let fields = [("Colour", FieldRef::Str("red"))];
    assert_eq!(
        eval("Colour = 'red' and colour is null", &fields),
        Some(true)
    );
}

#[test]
fn three_valued_logic() {
    assert_eq!(eval("missing = 1", &[]), None);
    assert_eq!(eval("missing = 1 OR TRUE", &[]), Some(true));
    assert_eq!(eval("missing = 1 AND FALSE", &[]), Some(false));
    assert_eq!(eval("NOT (missing = 1)", &[]), None);
    assert_eq!(eval("missing IS NULL AND 1 IS NOT NULL", &[]), Some(true));
    assert_eq!(eval("'a' = 1", &[]), None);
    assert_eq!(eval("'a' < 'b'", &[]), None);
    assert_eq!(eval("TRUE > FALSE", &[]), None);
    assert_eq!(eval("1 / 0 = 1", &[]), None);
}

#[test]
fn like_in_between() {
    let f = [("s", FieldRef::Str("a_b%c")), ("n", FieldRef::Int(5))];
    assert_eq!(eval("s LIKE 'a%'", &f), Some(true));
    assert_eq!(eval("s LIKE 'a!_b!%c' ESCAPE '!'", &f), Some(true));
    assert_eq!(eval("s LIKE 'a!_x%' ESCAPE '!'", &f), Some(false));
    assert_eq!(eval("s NOT LIKE '_'", &f), Some(true));
    assert_eq!(eval("s IN ('x', 'a_b%c')", &f), Some(true));
    assert_eq!(eval("s NOT IN ('x')", &f), Some(true));
    assert_eq!(eval("missing IN ('x')", &f), None);
    assert_eq!(eval("n BETWEEN 5 AND 6.5", &f), Some(true));
    assert_eq!(eval("n NOT BETWEEN 1 AND 4", &f), Some(true));
    assert_eq!(eval("n BETWEEN missing AND 1", &f), Some(false));
    assert_eq!(eval("n BETWEEN missing AND 9", &f), None);
}

#[test]
fn like_backtracks_and_reads_characters_not_bytes() {
    let like = Like::compile("%aab%_é", None);
    assert!(like.matches("xaaaabyyzé"));
    assert!(!like.matches("aab"));
    assert!(Like::compile("_", None).matches("é"));
    assert!(Like::compile("%", None).matches(""));
}

#[test]
fn errors_say_where_and_what() {
    let error = Selector::parse("a = (1 + 2").unwrap_err();
    assert_eq!(error.to_string(), "at column 11: expected ')'");
    assert!(matches!(
        Selector::parse("a = 'open"),
        Err(SelectorError::Syntax { column: 5, .. })
    ));
    assert!(Selector::parse("a NOT 3").is_err());
    assert!(Selector::parse("").is_err());
    assert!(Selector::parse("a LIKE 'x' ESCAPE 'ab'").is_err());
}

#[test]
fn limits_hold() {
    let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
    assert!(matches!(
        Selector::parse(&deep),
        Err(SelectorError::TooDeep { .. })
    ));
    let nots = format!("{} TRUE", "NOT ".repeat(1000));
    assert!(matches!(
        Selector::parse(&nots),
        Err(SelectorError::TooDeep { .. })
    ));
    let sums = format!("1{} = 1", " + 1".repeat(500));
    assert!(matches!(
        Selector::parse(&sums),
        Err(SelectorError::TooDeep { .. })
    ));
    let long = "a".repeat(SELECTOR_BYTES_MAX + 1);
    assert!(matches!(
        Selector::parse(&long),
        Err(SelectorError::TooLong { .. })
    ));
    let items = vec!["'x'"; SELECTOR_IN_ITEMS_MAX + 1].join(",");
    assert!(matches!(
        Selector::parse(&format!("a IN ({items})")),
        Err(SelectorError::TooManyItems { .. })
    ));
    // A long AND chain is flat, not deep.
    let chain = vec!["a = 1"; 300].join(" AND ");
    assert!(Selector::parse(&chain).is_ok());
}

fn scanned(message: &Message) -> ScannedMessage {
    let mut out = BytesMut::new();
    message.encode(&mut out);
    ScannedMessage::scan(out.freeze()).unwrap()
}

fn message() -> ScannedMessage {
    scanned(&Message {
        header: Some(Header {
            durable: true,
            priority: 7,
            delivery_count: 2,
            ..Header::default()
        }),
        properties: Some(Properties {
            subject: Some(Str::from("stock.nyse.ibm")),
            message_id: None,
            group_id: Some(Str::from("g1")),
            group_sequence: Some(3),
            ..Properties::default()
        }),
        application_properties: Some(vec![
            (
                Value::String(Str::from("colour")),
                Value::String(Str::from("green")),
            ),
            (Value::String(Str::from("weight")), Value::Long(9)),
        ]),
        body: Body::Value(Value::Null),
        ..Message::default()
    })
}

#[test]
fn jms_names_read_the_header_and_properties() {
    let m = message();
    for text in [
        "JMSPriority = 7",
        "JMSDeliveryMode = 'PERSISTENT'",
        "JMSXDeliveryCount = 3",
        "JMSType = 'stock.nyse.ibm'",
        "JMSXGroupID = 'g1' AND JMSXGroupSeq = 3",
        "JMSMessageID IS NULL",
        "colour = 'green' AND weight > 5",
    ] {
        assert!(Selector::parse(text).unwrap().matches(&m), "{text}");
    }
    assert!(!Selector::parse("weight > 9").unwrap().matches(&m));
}

fn described(descriptor: Value, value: Value) -> Value {
    Value::Described(Box::new(Described { descriptor, value }))
}

fn source_filter(entries: Vec<(&'static str, Value)>) -> Vec<(Symbol, Value)> {
    entries
        .into_iter()
        .map(|(k, v)| (Symbol::from_static(k), v))
        .collect()
}

#[test]
fn source_filters_in_force_and_left_out() {
    let map = source_filter(vec![
        (
            "sel",
            described(
                Value::Ulong(SELECTOR_FILTER.1),
                Value::String(Str::from("weight > 5")),
            ),
        ),
        (
            "topic",
            described(
                Value::Symbol(Symbol::from_static(TOPIC_BINDING.0)),
                Value::String(Str::from("stock.#")),
            ),
        ),
        (
            "nolocal",
            described(Value::Ulong(NO_LOCAL.1), Value::List(vec![])),
        ),
        ("other", described(Value::Ulong(99), Value::Null)),
    ]);
    let (filter, keys) = MessageFilter::from_source(&map).unwrap().unwrap();
    assert_eq!(
        keys,
        vec![Symbol::from_static("sel"), Symbol::from_static("topic")]
    );
    assert!(filter.matches(&message()));
    let map = source_filter(vec![(
        "sel",
        described(
            Value::Ulong(SELECTOR_FILTER.1),
            Value::String(Str::from("weight >")),
        ),
    )]);
    let error = MessageFilter::from_source(&map).unwrap_err();
    assert_eq!(
        error.to_string(),
        "filter 'sel': invalid selector: at column 9: expected a value, an identifier or '('"
    );
    assert!(
        MessageFilter::from_source(&source_filter(vec![]))
            .unwrap()
            .is_none()
    );
}

#[test]
fn legacy_bindings() {
    let m = message();
    let one = |descriptor: (&str, u64), value: Value| {
        let map = source_filter(vec![("f", described(Value::Ulong(descriptor.1), value))]);
        MessageFilter::from_source(&map)
            .unwrap()
            .unwrap()
            .0
            .matches(&m)
    };
    let s = |t: &str| Value::String(Str::from(t));
    assert!(one(DIRECT_BINDING, s("stock.nyse.ibm")));
    assert!(!one(DIRECT_BINDING, s("stock")));
    for (pattern, want) in [
        ("stock.*.ibm", true),
        ("stock.#", true),
        ("#", true),
        ("#.ibm", true),
        ("stock.#.nyse.ibm", true),
        ("stock.*", false),
        ("*.ibm", false),
        ("stock.nyse.ibm.#", true),
        ("stock.nyse.ibm.*", false),
    ] {
        assert_eq!(one(TOPIC_BINDING, s(pattern)), want, "{pattern}");
    }
    let headers = |mode: &str, entries: Vec<(&str, Value)>| {
        let mut map = vec![(s("x-match"), s(mode))];
        map.extend(entries.into_iter().map(|(k, v)| (s(k), v)));
        Value::Map(map)
    };
    assert!(one(
        HEADERS_BINDING,
        headers(
            "all",
            vec![("colour", s("green")), ("weight", Value::Int(9))]
        )
    ));
    assert!(!one(
        HEADERS_BINDING,
        headers(
            "all",
            vec![("colour", s("green")), ("weight", Value::Int(8))]
        )
    ));
    assert!(one(
        HEADERS_BINDING,
        headers("any", vec![("colour", s("blue")), ("weight", Value::Null)])
    ));
    assert!(!one(
        HEADERS_BINDING,
        headers("any", vec![("colour", s("blue"))])
    ));
}
