//! JSON-LD as plain JSON: compacted property names (`gx:legalName`, `schema:name`, full
//! IRIs) matched by their local name, values as strings, `@value`s or lists.

use serde_json::{Map, Value};

/// The local name of a property or type, lower case: `gx:legalName`, `legalName` and
/// `https://w3id.org/gaia-x/development#legalName` all give `legalname`.
pub(crate) fn local(key: &str) -> String {
    let tail = key
        .rsplit(['#', '/'])
        .next()
        .unwrap_or(key)
        .rsplit(':')
        .next()
        .unwrap_or(key);
    tail.to_ascii_lowercase()
}

/// The local names of `type` / `@type`.
pub(crate) fn types(obj: &Map<String, Value>) -> Vec<String> {
    ["type", "@type"]
        .iter()
        .filter_map(|k| obj.get(*k))
        .flat_map(items)
        .filter_map(Value::as_str)
        .map(local)
        .collect()
}

/// A value as a list (a JSON array's items, or the value itself).
pub(crate) fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// A literal: a string, a number, or `{"@value": …}`; the first one of a list.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => o.get("@value").and_then(text),
        Value::Array(a) => a.iter().find_map(text),
        Value::Null => None,
    }
}

/// Every literal of a value (lists flattened).
pub(crate) fn texts(v: &Value) -> Vec<String> {
    items(v).into_iter().filter_map(text).collect()
}

/// An object's own id: `id`, else `@id`.
pub(crate) fn id_of_map(o: &Map<String, Value>) -> Option<&str> {
    o.get("id").or_else(|| o.get("@id")).and_then(Value::as_str)
}

/// A value's own id when it is an object (not a bare string).
pub(crate) fn id_of(v: &Value) -> Option<&str> {
    v.as_object().and_then(id_of_map)
}

/// The node id a value names: `{"id": …}`, `{"@id": …}` or a bare string.
pub(crate) fn id(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("id").or_else(|| o.get("@id")).and_then(Value::as_str),
        Value::Array(a) => a.iter().find_map(id),
        _ => None,
    }
}

/// `base` followed by the property `key`: `$["credentialSubject"]["gx:legalName"]`.
pub(crate) fn at(base: &str, key: &str) -> String {
    format!("{base}[{key:?}]")
}

/// `base` followed by the list index `i`.
pub(crate) fn at_index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_ignore_prefixes_iris_and_case() {
        assert_eq!(local("gx:legalName"), "legalname");
        assert_eq!(local("https://w3id.org/gaia-x/development#EORI"), "eori");
        assert_eq!(local("schema:name"), "name");
        assert_eq!(local("vcard:locality"), "locality");
        assert_eq!(local("type"), "type");
    }

    #[test]
    fn literals_and_ids() {
        let v: Value = serde_json::json!([{"@value": "a"}, "b"]);
        assert_eq!(text(&v).as_deref(), Some("a"));
        assert_eq!(texts(&v), ["a", "b"]);
        assert_eq!(id(&serde_json::json!({"id": "x"})), Some("x"));
        assert_eq!(id(&serde_json::json!({"@id": "y"})), Some("y"));
        assert_eq!(at("$", "gx:a"), "$[\"gx:a\"]");
    }
}
