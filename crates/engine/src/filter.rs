//! A query's filters, applied to each entry it reads: a substring of the message and equality
//! of top-level metadata fields.
//!
//! The answer is exactly that of the plain definition (`message.contains(text)`, and the
//! metadata parsed into a `serde_json::Map<String, Value>` has `key` equal to `value`, the
//! last of duplicate keys winning, an unparsable text matching nothing), computed without its
//! cost:
//!
//! - the substring search is `str::contains` (a `memchr::memmem::Finder` built once per query
//!   measured 15% slower on `engine/filtered/contains_1pct`: its rare-byte prefilter guesses
//!   badly on log text);
//! - metadata without a backslash holds no escapes, so every key and string in it appears
//!   verbatim between quotes: if `"key"` (or a wanted string value `"value"`) is not in the
//!   text, the entry cannot match and is rejected without parsing;
//! - otherwise the text is parsed once, keys compared in place as they are read (borrowed from
//!   the text unless escaped): only the values of wanted keys are built into a [`Value`]; the
//!   others are checked by a visitor that accepts exactly what `Value` would (the same numbers,
//!   strings, nesting depth), building only nested objects (through `Value` itself, so its
//!   special keys behave the same), so a text `Value` would refuse still matches nothing.

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// The filters of a query, applied to each entry.
#[derive(Debug)]
pub(crate) struct Filter {
    /// The message must contain this (`None`: no text filter, or an empty one).
    contains: Option<String>,
    /// Wanted top-level fields, in the query's order.
    fields: Vec<(String, Value)>,
    /// Texts that metadata without a backslash must contain to match: each wanted key, and each
    /// wanted string value, quoted.
    needles: Vec<String>,
    /// Some wanted key or string value would need an escape in JSON, so metadata without a
    /// backslash cannot match.
    needs_escape: bool,
    /// Per wanted field, whether the last occurrence of its key so far had the wanted value
    /// (`None`: not seen). Reused from entry to entry.
    seen: Vec<Option<bool>>,
}

impl Filter {
    /// The filter of `contains` (an empty text filters nothing) and `fields`.
    pub(crate) fn new(contains: Option<&str>, fields: &[(String, Value)]) -> Filter {
        let mut needles = Vec::new();
        let mut needs_escape = false;
        let mut quoted = |text: &str| {
            if text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
                needs_escape = true;
            } else {
                needles.push(format!("\"{text}\""));
            }
        };
        for (key, value) in fields {
            quoted(key);
            if let Value::String(text) = value {
                quoted(text);
            }
        }
        Filter {
            contains: contains.filter(|t| !t.is_empty()).map(str::to_owned),
            fields: fields.to_vec(),
            needles,
            needs_escape,
            seen: vec![None; fields.len()],
        }
    }

    /// Whether the filter lets every entry through.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.contains.is_none() && self.fields.is_empty()
    }

    /// Whether an entry with this message and metadata matches.
    #[inline]
    pub(crate) fn matches(&mut self, message: &str, metadata: Option<&str>) -> bool {
        if let Some(text) = &self.contains {
            if !message.contains(text.as_str()) {
                return false;
            }
        }
        if self.fields.is_empty() {
            return true;
        }
        let Some(metadata) = metadata else { return false };
        if !metadata.as_bytes().contains(&b'\\')
            && (self.needs_escape || self.needles.iter().any(|n| !metadata.contains(n.as_str())))
        {
            return false;
        }
        self.fields_match(metadata)
    }

    /// Parses `metadata` (stored metadata is a JSON object) and compares the wanted fields.
    #[inline(never)]
    fn fields_match(&mut self, metadata: &str) -> bool {
        self.seen.fill(None);
        let mut de = serde_json::Deserializer::from_str(metadata);
        let fields = Fields { wanted: &self.fields, seen: &mut self.seen };
        if fields.deserialize(&mut de).and_then(|()| de.end()).is_err() {
            return false;
        }
        self.seen.iter().all(|s| *s == Some(true))
    }
}

/// Reads a top-level object, recording in `seen` whether each wanted key has its value.
struct Fields<'f> {
    wanted: &'f [(String, Value)],
    seen: &'f mut [Option<bool>],
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // Only an object, as `from_str::<Map<String, Value>>` accepts: serde_json's
        // `deserialize_map` refuses anything else (`null` included) before a visitor runs.
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(first) = map.next_key_seed(WantedKey(self.wanted))? {
            match first {
                Some(first) => {
                    let value: Value = map.next_value()?;
                    let key = &self.wanted[first].0;
                    // Later occurrences of a key replace earlier ones, as in a `Map`.
                    for (i, (k, v)) in self.wanted.iter().enumerate().skip(first) {
                        if k == key {
                            self.seen[i] = Some(*v == value);
                        }
                    }
                }
                None => map.next_value::<Check>().map(|_| ())?,
            }
        }
        Ok(())
    }
}

/// A key, compared in place: the index of the first wanted field with it, if any.
struct WantedKey<'f>(&'f [(String, Value)]);

impl<'de> DeserializeSeed<'de> for WantedKey<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        // As a `String` key is read (escapes resolved), without copying it.
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for WantedKey<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(k, _)| k == key))
    }
}

/// Any JSON value `Value` accepts, checked but not kept: scalars and arrays without building
/// them, objects (rare in metadata values) through `Value` itself, so that its handling of
/// them holds exactly.
struct Check;

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Check, D::Error> {
        // As `Value` does.
        deserializer.deserialize_any(Check)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = Check;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Check, E> {
        Ok(Check)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Check, E> {
        Ok(Check)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Check, E> {
        Ok(Check)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Check, E> {
        Ok(Check)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Check, E> {
        Ok(Check)
    }

    fn visit_none<E: de::Error>(self) -> Result<Check, E> {
        Ok(Check)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Check, E> {
        Ok(Check)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Check, A::Error> {
        while seq.next_element::<Check>()?.is_some() {}
        Ok(Check)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Check, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(|_| Check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    /// The plain definition the filter must agree with.
    fn plain(fields: &[(String, Value)], metadata: &str) -> bool {
        let Ok(map) = serde_json::from_str::<Map<String, Value>>(metadata) else { return false };
        fields.iter().all(|(k, v)| map.get(k) == Some(v))
    }

    /// Whether `metadata` has `key` equal to `value`, checked against the plain definition.
    fn has(metadata: &str, key: &str, value: Value) -> bool {
        let fields = vec![(key.to_owned(), value)];
        let got = Filter::new(None, &fields).matches("m", Some(metadata));
        assert_eq!(got, plain(&fields, metadata), "{metadata} {fields:?}");
        got
    }

    #[test]
    fn message_and_top_level_metadata() {
        let f = |contains: Option<&str>, fields: &[(&str, Value)], metadata: Option<&str>| {
            let fields: Vec<_> = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            Filter::new(contains, &fields).matches("disk full on sda", metadata)
        };
        let m = Some(r#"{"host":"a","n":3,"x":{"y":1}}"#);
        assert!(f(Some("full"), &[], None));
        assert!(f(Some(""), &[], None), "an empty text filters nothing");
        assert!(!f(Some("empty"), &[], m));
        assert!(f(None, &[("host", json!("a")), ("n", json!(3))], m));
        assert!(!f(Some("empty"), &[("host", json!("a"))], m));
        assert!(!f(None, &[("n", json!("3"))], m), "JSON equality, not text");
        assert!(!f(None, &[("y", json!(1))], m), "top-level fields only");
        assert!(f(None, &[("x", json!({"y": 1}))], m), "nested values compare whole");
        assert!(!f(None, &[("host", json!("a"))], None), "no metadata, no match");
    }

    #[test]
    fn escaped_keys_and_values() {
        assert!(has(r#"{"ho\u0073t":"a"}"#, "host", json!("a")));
        // A backslash elsewhere turns the quick reject off; the parse still finds the field.
        assert!(has(r#"{"x":"\n","k":1}"#, "k", json!(1)));
        assert!(!has(r#"{"x":"\n","k":1}"#, "k", json!(2)));
        assert!(has(r#"{"host":"\u0061"}"#, "host", json!("a")));
        assert!(has(r#"{"a\"b":1}"#, "a\"b", json!(1)));
        assert!(has(r#"{"a\\b":1}"#, "a\\b", json!(1)));
        assert!(!has(r#"{"a\\b":1}"#, "a\"b", json!(1)));
        assert!(has(r#"{"k":"say \"hi\""}"#, "k", json!("say \"hi\"")));
        assert!(has(r#"{"k":"tab\there"}"#, "k", json!("tab\there")));
        // Without a backslash, such a key or value cannot be in the text.
        assert!(!has(r#"{"k":"tab"}"#, "k", json!("tab\there")));
        assert!(!has(r#"{"a":1}"#, "a\"", json!(1)));
        // A lone surrogate: `Value` refuses the text, so nothing matches, even other keys.
        assert!(!has(r#"{"a":1,"b":"\ud800"}"#, "a", json!(1)));
        assert!(!has(r#"{"a":1,"\ud800":2}"#, "a", json!(1)));
    }

    #[test]
    fn keys_inside_values_or_nested_objects_do_not_count() {
        assert!(!has(r#"{"x":"host"}"#, "host", json!("x")));
        assert!(!has(r#"{"x":"\"host\":\"a\""}"#, "host", json!("a")));
        assert!(!has(r#"{"x":{"host":"a"}}"#, "host", json!("a")));
        assert!(!has(r#"{"x":[{"host":"a"}]}"#, "host", json!("a")));
        assert!(has(r#"{"x":{"host":"b"},"host":"a"}"#, "host", json!("a")));
        assert!(!has(r#"{"host":"b","x":"a"}"#, "host", json!("a")));
    }

    #[test]
    fn duplicate_keys_last_wins() {
        assert!(has(r#"{"k":1,"k":2}"#, "k", json!(2)));
        assert!(!has(r#"{"k":1,"k":2}"#, "k", json!(1)));
        assert!(has(r#"{"k":2,"k":1,"k":2}"#, "k", json!(2)));
        assert!(has(r#"{"k":"x","\u006b":"y"}"#, "k", json!("y")));
        // The same key asked twice, with equal or different values.
        let fields = vec![("k".to_owned(), json!(1)), ("k".to_owned(), json!(1))];
        assert!(Filter::new(None, &fields).matches("m", Some(r#"{"k":0,"k":1}"#)));
        let fields = vec![("k".to_owned(), json!(1)), ("k".to_owned(), json!(2))];
        assert!(!Filter::new(None, &fields).matches("m", Some(r#"{"k":1,"k":2}"#)));
    }

    #[test]
    fn numbers_compare_as_values() {
        assert!(has(r#"{"n":1}"#, "n", json!(1)));
        assert!(!has(r#"{"n":1.0}"#, "n", json!(1)));
        assert!(has(r#"{"n":1.0}"#, "n", json!(1.0)));
        assert!(!has(r#"{"n":1e0}"#, "n", json!(1)));
        assert!(!has(r#"{"n":-0}"#, "n", json!(0)), "-0 reads as the float -0.0");
        assert!(has(r#"{"n":-5}"#, "n", json!(-5)));
        assert!(has(r#"{"n":18446744073709551615}"#, "n", json!(u64::MAX)));
        assert!(has(r#"{"n":18446744073709551616}"#, "n", json!(18446744073709551616.0)));
        assert!(!has(r#"{"n":"1"}"#, "n", json!(1)));
        // A number out of `f64`'s range: `Value` refuses the text, wherever it is.
        assert!(!has(r#"{"n":1,"x":1e400}"#, "n", json!(1)));
        assert!(!has(r#"{"n":1,"x":[1e400]}"#, "n", json!(1)));
    }

    #[test]
    fn texts_value_refuses_match_nothing() {
        let deep = format!(r#"{{"a":1,"x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(!has(&deep, "a", json!(1)));
        let shallow = format!(r#"{{"a":1,"x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(has(&shallow, "a", json!(1)));
        for bad in [r#"{"a":1"#, r#"{"a":1} x"#, r#"[1]"#, r#""a""#, "", r#"{"a":1,}"#] {
            assert!(!has(bad, "a", json!(1)), "{bad}");
        }
        assert!(has(r#" {"a":1} "#, "a", json!(1)));
        assert!(has(r#"{"a":null}"#, "a", Value::Null));
        assert!(!has(r#"{}"#, "a", Value::Null));
    }
}
