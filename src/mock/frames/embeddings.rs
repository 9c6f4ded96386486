//! OpenAI Embeddings: the `list` body, one `embedding` object per input (never streamed).
//!
//! Every input gets the same vector: `dimensions` numbers when the request asks for them (up to
//! [`MAX_DIMENSIONS`]), else [`DEFAULT_DIMENSIONS`]. The default vector's text is built once at
//! start-up; an answer is one buffer.

use std::fmt::Write as _;

use bytes::Bytes;

use super::json_str;

/// Vector length when the request does not ask for `dimensions`.
pub(crate) const DEFAULT_DIMENSIONS: u32 = 256;
/// Largest `dimensions` answered (larger requests get HTTP 400).
pub(crate) const MAX_DIMENSIONS: u32 = 8192;
/// Most inputs in one request (larger requests get HTTP 400).
pub(crate) const MAX_INPUTS: u32 = 2048;

/// The JSON array of a `dims`-long unit-ish vector: `[0.0123,-0.0456,…]`.
pub(crate) fn vector(dims: u32) -> String {
    let mut out = String::with_capacity(2 + dims as usize * 9);
    out.push('[');
    for i in 0..dims {
        if i > 0 {
            out.push(',');
        }
        let x = (i64::from(i) * 7919 % 2001 - 1000) as f64 / 16_000.0;
        let _ = write!(out, "{x:.5}");
    }
    out.push(']');
    out
}

/// The answer to `inputs` inputs, each embedded as `vector` (a JSON array).
pub(crate) fn body(model: &str, inputs: u32, vector: &str, prompt_tokens: u64) -> Bytes {
    let per = vector.len() + 48;
    let mut out = String::with_capacity(160 + model.len() * 4 + per * inputs as usize);
    out.push_str("{\"object\":\"list\",\"data\":[");
    for i in 0..inputs {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"object\":\"embedding\",\"index\":{i},\"embedding\":{vector}}}"
        );
    }
    out.push_str("],\"model\":");
    json_str(&mut out, model);
    let _ = write!(
        out,
        ",\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"total_tokens\":{prompt_tokens}}}}}"
    );
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::client::ApiKind;

    #[test]
    fn one_embedding_per_input() {
        let v = vector(5);
        let b = body("text-embedding-3-small", 3, &v, 7);
        let j: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(j["object"], "list");
        let data = j["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d["index"], i);
            let e = d["embedding"].as_array().unwrap();
            assert_eq!(e.len(), 5);
            assert!(e.iter().all(|x| x.as_f64().is_some_and(|x| x.abs() < 0.1)));
        }
        assert_eq!(j["usage"]["prompt_tokens"], 7);
        let kind = ApiKind::OpenAiEmbeddings;
        assert_eq!(crate::client::parser::parse_body(kind, 3, &b), Ok(None));
        assert!(crate::client::parser::parse_body(kind, 2, &b).is_err());
        assert_eq!(
            vector(DEFAULT_DIMENSIONS).matches(',').count() as u32,
            DEFAULT_DIMENSIONS - 1
        );
    }
}
