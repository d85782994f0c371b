//! Checking that metadata text is one JSON object.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// Why a metadata text is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The text is not valid JSON.
    #[error("metadata is not valid JSON: {detail}")]
    InvalidJson {
        /// What the JSON parser said, with line and column.
        detail: String,
    },
    /// The text is valid JSON but not an object.
    #[error("metadata must be a JSON object, got {found}")]
    NotAnObject {
        /// The kind of JSON value found instead (`array`, `string`, ...).
        found: &'static str,
    },
}

/// Checks that `text` is exactly one JSON object (surrounding whitespace allowed), without
/// building it in memory.
pub fn validate_metadata(text: &str) -> Result<(), MetadataError> {
    let mut de = serde_json::Deserializer::from_str(text);
    IgnoredAny::deserialize(&mut de)
        .and_then(|_| de.end())
        .map_err(|e| MetadataError::InvalidJson { detail: e.to_string() })?;
    // Valid JSON: its first non-blank byte says which kind of value it is.
    let found = match text.trim_start().as_bytes().first() {
        Some(b'{') => return Ok(()),
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    };
    Err(MetadataError::NotAnObject { found })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_pass() {
        for ok in ["{}", " {\"a\":1} ", r#"{"a":{"b":[1,2,{"c":null}]},"z":"\u00e9"}"#] {
            assert_eq!(validate_metadata(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn other_values_name_their_kind() {
        let cases = [
            ("null", "null"),
            ("true", "boolean"),
            ("5", "number"),
            ("-5", "number"),
            ("1.5", "number"),
            ("\"s\"", "string"),
            ("[1]", "array"),
        ];
        for (text, found) in cases {
            assert_eq!(
                validate_metadata(text),
                Err(MetadataError::NotAnObject { found }),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_json_is_invalid() {
        for bad in ["", "{", "{\"a\"}", "{} {}", "{\"a\":1,}", "{'a':1}"] {
            assert!(
                matches!(validate_metadata(bad), Err(MetadataError::InvalidJson { .. })),
                "{bad:?}"
            );
        }
    }
}
