//! YAML to documents: each non-empty document of a stream becomes a JSON value plus a map from
//! field paths to the lines they were written on, so that later checks can point at a line.
//!
//! serde-saphyr parses the stream (budgets against alias bombs and deep nesting included);
//! [`Node`] records every key's and value's location through [`Spanned`]. The typed resources
//! are then deserialized from the JSON value, which lets unknown fields be collected as warnings
//! (`serde_ignored`) and type errors carry their field path (`serde_path_to_error`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

/// One parsed document: its value and where each field path starts.
#[derive(Clone, Debug, Default)]
pub(crate) struct Document {
    pub(crate) value: Value,
    pub(crate) lines: LineMap,
}

/// Field path (`spec.plan`, `spec.forwarders[0]`; empty for the document) to its 1-based line.
#[derive(Clone, Debug, Default)]
pub(crate) struct LineMap {
    lines: BTreeMap<String, u64>,
}

impl LineMap {
    /// The line of `path`, or of its nearest ancestor that has one.
    pub(crate) fn line(&self, path: &str) -> Option<u64> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → ``.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(at) => path.get(..at).unwrap_or(""),
        None => "",
    }
}

/// A YAML syntax error: the message and the line.
#[derive(Clone, Debug)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) line: Option<u64>,
}

/// Parses every non-empty document of `contents`.
pub(crate) fn parse_documents(contents: &str) -> Result<Vec<Document>, SyntaxError> {
    let nodes: Vec<Spanned<Node>> =
        serde_saphyr::from_multiple(contents).map_err(|error| SyntaxError {
            message: plain_message(&error),
            line: error.location().map(|location| location.line()),
        })?;
    Ok(nodes
        .into_iter()
        .map(|node| {
            let mut lines = LineMap::default();
            let value = node.value.into_json(String::new(), &mut lines);
            lines
                .lines
                .entry(String::new())
                .or_insert(node.referenced.line());
            Document { value, lines }
        })
        .collect())
}

/// The error's message without the snippet and without the location, which we print ourselves.
fn plain_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    // "line 2 column 4: unclosed bracket '['" → "unclosed bracket '['"
    match text.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_owned(),
        _ => text.to_owned(),
    }
}

/// A YAML node with the location of every key and value below it.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    fn into_json(self, path: String, lines: &mut LineMap) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(b),
            Node::Int(i) => Value::Number(i.into()),
            Node::Uint(u) => Value::Number(u.into()),
            Node::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Node::Str(s) => Value::String(s),
            Node::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| {
                        let path = format!("{path}[{index}]");
                        lines.lines.insert(path.clone(), item.referenced.line());
                        item.value.into_json(path, lines)
                    })
                    .collect(),
            ),
            Node::Map(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let path = if path.is_empty() {
                        key.value.clone()
                    } else {
                        format!("{path}.{}", key.value)
                    };
                    lines.lines.insert(path.clone(), key.referenced.line());
                    map.insert(key.value, value.value.into_json(path, lines));
                }
                Value::Object(map)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Node, E> {
        Ok(Node::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Node, E> {
        Ok(Node::Uint(u))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Node, E> {
        Ok(Node::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Str(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Node, E> {
        Ok(Node::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_paths_and_their_ancestors() {
        let docs = parse_documents("# c\n---\na: 1\nb:\n  c: [x, y]\n---\nd: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        let first = &docs[0];
        assert_eq!(first.lines.line("a"), Some(3));
        assert_eq!(first.lines.line("b.c"), Some(5));
        assert_eq!(first.lines.line("b.c[1]"), Some(5));
        assert_eq!(first.lines.line("b.missing"), Some(4));
        assert_eq!(docs[1].lines.line("d"), Some(7));
    }

    #[test]
    fn syntax_error_has_a_line_and_no_snippet() {
        let error = parse_documents("a: 1\nb: [1, 2\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(!error.message.contains('\n'), "{}", error.message);
    }
}
