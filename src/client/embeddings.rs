//! OpenAI Embeddings answer (`POST /v1/embeddings`, never streamed).
//!
//! A 2xx body is `ok` only when it is a JSON object without an `error` object whose `data`
//! array holds exactly one item per input sent, each with a non-empty `embedding`: an array
//! of numbers, or a base64 string when the request asked for `encoding_format = "base64"`.
//! Embeddings generate no output tokens, so the answer records none.
//!
//! The vectors are counted, never collected: every number is skipped in place, so checking a
//! large answer allocates nothing.

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    data: Option<Items>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// `data[]`: how many items, and how many of them carry a non-empty embedding.
struct Items {
    total: usize,
    with_embedding: usize,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    embedding: Option<VectorLen>,
}

/// The length of an embedding: elements of an array, or bytes of a base64 string.
struct VectorLen(usize);

impl<'de> Deserialize<'de> for VectorLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VectorLen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of numbers or a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<VectorLen, E> {
                Ok(VectorLen(v.len()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VectorLen, A::Error> {
                let mut n = 0;
                while seq.next_element::<f64>()?.is_some() {
                    n += 1;
                }
                Ok(VectorLen(n))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Items;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of embedding objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let mut it = Items {
                    total: 0,
                    with_embedding: 0,
                };
                while let Some(item) = seq.next_element::<Item>()? {
                    it.total += 1;
                    if item.embedding.is_some_and(|e| e.0 > 0) {
                        it.with_embedding += 1;
                    }
                }
                Ok(it)
            }
        }
        d.deserialize_seq(V)
    }
}

/// Checks a response body against the `inputs` sent. Output tokens: none.
pub fn parse_body(body: &[u8], inputs: u32) -> Result<Option<u64>, &'static str> {
    let b: Body = serde_json::from_slice(body)
        .map_err(|_| "response body is not an embeddings JSON object")?;
    if b.error.is_some() {
        return Err("error object in a 2xx response");
    }
    let Some(data) = b.data else {
        return Err("embeddings response has no data array");
    };
    if data.with_embedding != data.total {
        return Err("an embeddings data item has no embedding");
    }
    if data.total != inputs as usize {
        return Err("embeddings response does not hold one embedding per input");
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_embedding_per_input() {
        let two = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2e-3,3]},{"object":"embedding","index":1,"embedding":[1,2,3]}],"model":"m","usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        assert_eq!(parse_body(two, 2), Ok(None));
        assert!(parse_body(two, 1).is_err());
        assert!(parse_body(two, 3).is_err());
        let b64 = br#"{"data":[{"embedding":"AACAPwAAAEA="}]}"#;
        assert_eq!(parse_body(b64, 1), Ok(None));
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for bad in [
            &br#"{"data":[{"index":0}]}"#[..],
            br#"{"data":[{"embedding":[]}]}"#,
            br#"{"data":[{"embedding":""}]}"#,
            br#"{"data":[{"embedding":["x"]}]}"#,
            br#"{"data":{}}"#,
            br#"{"object":"list"}"#,
            br#"{"error":{"message":"x"},"data":[{"embedding":[1]}]}"#,
            b"[1,2]",
            b"<html>",
        ] {
            assert!(
                parse_body(bad, 1).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
