//! Objects to YAML text, and reading a user's value into a Kubernetes type exactly.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{File, Target};

/// `object` as JSON. The Kubernetes types (string keys, no floats) always serialise.
pub(super) fn value<T: Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// A file of `objects`, one YAML document each, under a header saying where it came from.
pub(super) fn file(target: &Target<'_>, name: &str, objects: &[Value]) -> File {
    let mut text = format!(
        "# Rendered by `sluice render` for address space {}; do not edit: change the EnMasse\n# manifests and render again.\n",
        target.space.qualified_name()
    );
    for object in objects {
        text.push_str("---\n");
        text.push_str(&to_yaml(object));
    }
    (name.to_owned(), text)
}

/// One YAML document, ending in a newline. serde-saphyr quotes every string that would read
/// back as another type (`"5672"`, `"true"`), and writes multi-line text as a block.
pub(super) fn to_yaml(value: &Value) -> String {
    let mut text = serde_saphyr::to_string(value).unwrap_or_default();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Reads `value` as `T`, refusing a field `T` does not have (k8s-openapi's types ignore
/// unknown fields; Kubernetes would drop them too, so a misspelt field would silently do
/// nothing). The error is the field path (under `path`) and what is wrong with it.
pub(super) fn exact<T: DeserializeOwned + Serialize>(
    value: &Value,
    path: &str,
) -> Result<T, (String, String)> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| {
        (
            path.to_owned(),
            format!("not what Kubernetes takes here: {e}"),
        )
    })?;
    match difference(value, &self::value(&typed), path) {
        None => Ok(typed),
        Some(field) => Err((field, "not a field Kubernetes knows here".to_owned())),
    }
}

/// The first path where `written` has something `typed` lacks.
fn difference(written: &Value, typed: &Value, path: &str) -> Option<String> {
    match (written, typed) {
        (Value::Object(w), Value::Object(t)) => w.iter().find_map(|(key, value)| {
            let at = format!("{path}.{key}");
            match t.get(key) {
                Some(typed) => difference(value, typed, &at),
                None if value.is_null() => None,
                None => Some(at),
            }
        }),
        (Value::Array(w), Value::Array(t)) => w
            .iter()
            .zip(t.iter().map(Some).chain(std::iter::repeat(None)))
            .enumerate()
            .find_map(|(i, (w, t))| {
                let at = format!("{path}[{i}]");
                match t {
                    Some(t) => difference(w, t, &at),
                    None => Some(at),
                }
            }),
        (w, t) if w == t => None,
        // 5672 and "5672" (an int-or-string port) are the same to Kubernetes.
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n))
            if n.to_string() == *s =>
        {
            None
        }
        _ => Some(path.to_owned()),
    }
}
