//! Reading a derived wire type's fields out of a parsed `serde_json::Value` by hand, with serde's
//! rules (an absent or `null` optional field is `None`, integers must fit their type, a float is
//! not an integer): the helpers behind the browser's lighter decoders,
//! [`crate::protocol::ServerMessage::from_frame`] and the chat history's `from_json`
//! (`chat/from_json.rs`). Each decoder is checked natively against its type's derived
//! `Deserialize`. Errors are short sentences for the log. Pure.

use serde_json::{Map, Value};

/// A JSON object's fields.
pub(crate) type Fields = Map<String, Value>;

/// `v` as an object, or why not (`what` names the type expected).
pub(crate) fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Fields, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is a JSON object"))
}

pub(crate) fn get<'a>(f: &'a Fields, name: &str) -> Result<&'a Value, String> {
    f.get(name).ok_or_else(|| format!("missing field `{name}`"))
}

pub(crate) fn wrong(name: &str) -> String {
    format!("field `{name}` has the wrong type")
}

pub(crate) fn string(f: &Fields, name: &str) -> Result<String, String> {
    get(f, name)?
        .as_str()
        .map(String::from)
        .ok_or_else(|| wrong(name))
}

pub(crate) fn uint(f: &Fields, name: &str) -> Result<u64, String> {
    get(f, name)?.as_u64().ok_or_else(|| wrong(name))
}

pub(crate) fn int(f: &Fields, name: &str) -> Result<i64, String> {
    get(f, name)?.as_i64().ok_or_else(|| wrong(name))
}

pub(crate) fn float(f: &Fields, name: &str) -> Result<f64, String> {
    get(f, name)?.as_f64().ok_or_else(|| wrong(name))
}

/// A field read by `read`, which says `None` when the value is not of its type.
pub(crate) fn field<T>(f: &Fields, name: &str, read: fn(&Value) -> Option<T>) -> Result<T, String> {
    read(get(f, name)?).ok_or_else(|| wrong(name))
}

/// An `Option` field with `#[serde(default)]`: absent or `null` is `None`.
pub(crate) fn optional<T>(
    f: &Fields,
    name: &str,
    read: fn(&Value) -> Option<T>,
) -> Result<Option<T>, String> {
    match f.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v).map(Some).ok_or_else(|| wrong(name)),
    }
}

/// A field holding an array, each element read by `read`.
pub(crate) fn list<T>(
    f: &Fields,
    name: &str,
    read: fn(&Value) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    get(f, name)?
        .as_array()
        .ok_or_else(|| wrong(name))?
        .iter()
        .map(read)
        .collect()
}
