//! Prompts read from a JSONL file, converted once at start-up to the scenario API's wire form.
//!
//! Each non-empty line is one of:
//! - a JSON string: the user's prompt text;
//! - an object with a `prompt` string (the form most prompt datasets use);
//! - an object with a `messages` array: a multi-turn conversation, each element an object with
//!   a string `role` (`content` and any other fields are passed through as written).
//!
//! What a `messages` line becomes, per API:
//! - `openai` (chat): the `messages` array as written;
//! - `openai-responses`: the `input` array as written (Responses input items take the same
//!   `role`/`content` messages);
//! - `anthropic`: a leading `system` (or `developer`) message becomes the top-level `system`
//!   field (its `content`, string or text blocks), the rest is `messages`. A system message
//!   anywhere else, or no message left after it, is a config error naming the file and line;
//! - `openai-completions` and `openai-embeddings` take text only: a `messages` line is a config
//!   error naming the file and line.
//!
//! Lines are stored JSON-encoded ([`FilePrompt`]), so building a body is a copy.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::client::ApiKind;
use crate::units::ConfigError;

/// Largest prompts file read at start-up.
pub const MAX_PROMPTS_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// One prompt from a file, JSON-encoded for its scenario's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePrompt {
    /// Prompt text as a JSON string literal (with quotes and escapes); the body wraps it the
    /// way its API wants (a user message, the `input` string, the `prompt`, an embeddings
    /// input).
    Text(Box<str>),
    /// A whole conversation, already the value of the field soakd builds (`messages` or
    /// `input`). For Anthropic it may go on with `,"system":…`, a member that follows the
    /// `messages` value in the body object. The offset is where the last user message's text
    /// ends (before its closing quote), where a two-sided soak appends the request id; `None`
    /// when the last user message has no text string.
    Conversation(Box<str>, Option<u32>),
}

/// What a prompts file holds, beyond the prompts themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedPrompts {
    /// The prompts, in file order.
    pub prompts: Arc<[FilePrompt]>,
    /// The first line (1-based) whose conversation sets Anthropic's `system` field.
    pub system_line: Option<usize>,
}

/// Reads a JSONL prompts file for a scenario of `api`; errors name `field`, the file and line.
pub fn load_prompts(path: &Path, field: &str, api: ApiKind) -> Result<LoadedPrompts, ConfigError> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfigError::invalid(field, &shown, format!("cannot read: {e}")))?;
    if meta.len() > MAX_PROMPTS_FILE_BYTES {
        return Err(ConfigError::invalid(
            field,
            &shown,
            format!(
                "file is {} bytes; the limit is {MAX_PROMPTS_FILE_BYTES}",
                meta.len()
            ),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(field, &shown, format!("cannot read: {e}")))?;
    let mut prompts = Vec::new();
    let mut system_line = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| ConfigError::invalid(field, &shown, format!("line {}: {why}", i + 1));
        let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        let prompt = match &v {
            Value::String(s) => text_prompt(s),
            Value::Object(o) => match (o.get("prompt"), o.get("messages")) {
                (Some(_), Some(_)) => {
                    return Err(bad("set either \"prompt\" or \"messages\", not both"))
                }
                (Some(Value::String(s)), None) => text_prompt(s),
                (Some(_), None) => return Err(bad("\"prompt\" must be a string")),
                (None, Some(m)) => {
                    let (p, system) = conversation(m, api).map_err(|why| bad(&why))?;
                    if system && system_line.is_none() {
                        system_line = Some(i + 1);
                    }
                    p
                }
                (None, None) => {
                    return Err(bad(
                        "expected a \"prompt\" string or a \"messages\" array field",
                    ))
                }
            },
            _ => {
                return Err(bad(
                    "expected a JSON string or an object with \"prompt\" or \"messages\"",
                ))
            }
        };
        prompts.push(prompt);
    }
    if prompts.is_empty() {
        return Err(ConfigError::invalid(field, &shown, "no prompts in file"));
    }
    Ok(LoadedPrompts {
        prompts: prompts.into(),
        system_line,
    })
}

fn text_prompt(s: &str) -> FilePrompt {
    FilePrompt::Text(json(&Value::from(s)).into_boxed_str())
}

fn json(v: &Value) -> String {
    // Serialising a `Value` cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn role(m: &Value) -> Option<&str> {
    m.get("role").and_then(Value::as_str)
}

fn is_system(m: &Value) -> bool {
    matches!(role(m), Some("system" | "developer"))
}

/// A `messages` array in `api`'s form; the flag says whether it sets Anthropic's `system`.
fn conversation(m: &Value, api: ApiKind) -> Result<(FilePrompt, bool), String> {
    let Some(msgs) = m.as_array() else {
        return Err("\"messages\" must be an array".into());
    };
    if msgs.is_empty() {
        return Err("\"messages\" is empty".into());
    }
    if let Some(k) = msgs
        .iter()
        .position(|m| !m.is_object() || role(m).is_none())
    {
        return Err(format!(
            "messages[{k}] must be an object with a string \"role\""
        ));
    }
    match api {
        ApiKind::OpenAiChat | ApiKind::OpenAiResponses => {
            Ok((tagged_conversation(msgs, ""), false))
        }
        ApiKind::AnthropicMessages => {
            let (system, rest) = match msgs.split_first() {
                Some((first, rest)) if is_system(first) => (first.get("content"), rest),
                _ => (None, &msgs[..]),
            };
            if let Some(k) = rest.iter().position(is_system) {
                let k = k + usize::from(system.is_some());
                return Err(format!(
                    "messages[{k}] is a system message; for anthropic only a leading one is \
                     allowed (it becomes the system field)"
                ));
            }
            if rest.is_empty() {
                return Err("no user or assistant message after the system message".into());
            }
            let after = match system {
                Some(content) => format!(",\"system\":{}", json(content)),
                None => String::new(),
            };
            Ok((tagged_conversation(rest, &after), system.is_some()))
        }
        ApiKind::OpenAiCompletions | ApiKind::OpenAiEmbeddings => Err(format!(
            "a \"messages\" line needs a chat API (openai, openai-responses or anthropic); \
             {api} takes text: a JSON string or {{\"prompt\": …}}"
        )),
    }
}

/// Where a request id can go: the end of the last user message's text (its `content`
/// string, or the `text` of its last text part).
const TAG_SPOT: &str = "\u{1}soakd-tag\u{1}";

/// The conversation `msgs` serialised (followed by `after`), with the offset of the end of the
/// last user message's text.
fn tagged_conversation(msgs: &[Value], after: &str) -> FilePrompt {
    let mut msgs = msgs.to_vec();
    let spot = msgs
        .iter_mut()
        .rev()
        .find(|m| role(m) == Some("user"))
        .and_then(|m| match m.get_mut("content")? {
            Value::String(s) => Some(s),
            Value::Array(parts) => parts
                .iter_mut()
                .rev()
                .find_map(|p| match p.get_mut("text") {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                }),
            _ => None,
        });
    let marked = spot.map(|s| s.push_str(TAG_SPOT)).is_some();
    let mut out = json(&Value::Array(msgs));
    let mut tag_at = None;
    if marked {
        let escaped = json(&Value::from(TAG_SPOT));
        let escaped = &escaped[1..escaped.len() - 1];
        if let Some(at) = out.rfind(escaped) {
            out.replace_range(at..at + escaped.len(), "");
            tag_at = u32::try_from(at).ok();
        }
    }
    out.push_str(after);
    FilePrompt::Conversation(out.into_boxed_str(), tag_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchFile;

    const F: &str = "scenarios[0].prompts_file";

    fn load(text: &str, api: ApiKind) -> Result<LoadedPrompts, String> {
        let t = ScratchFile::with("prompts", "prompts.jsonl", text);
        load_prompts(t.path(), F, api).map_err(|e| e.to_string())
    }

    #[test]
    fn strings_and_prompt_objects_are_text_for_every_api() {
        for api in ApiKind::ALL {
            let l = load(
                "\"hello \\\"world\\\"\"\n\n{\"prompt\":\"line\\nbreak\",\"id\":3}\n",
                api,
            )
            .unwrap();
            assert_eq!(
                &*l.prompts,
                &[
                    FilePrompt::Text(r#""hello \"world\"""#.into()),
                    FilePrompt::Text(r#""line\nbreak""#.into())
                ]
            );
            assert_eq!(l.system_line, None);
        }
    }

    const CONV: &str = r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":[{"type":"text","text":"more"}]}]}"#;

    #[test]
    fn conversations_pass_through_for_chat_and_responses() {
        for api in [ApiKind::OpenAiChat, ApiKind::OpenAiResponses] {
            let l = load(CONV, api).unwrap();
            let FilePrompt::Conversation(c, _) = &l.prompts[0] else {
                panic!("a conversation")
            };
            let v: Value = serde_json::from_str(c).unwrap();
            let want: Value = serde_json::from_str(CONV).unwrap();
            assert_eq!(v, want["messages"]);
            assert_eq!(l.system_line, None);
        }
    }

    #[test]
    fn anthropic_takes_a_leading_system_message_as_the_system_field() {
        let l = load(&format!("\"plain\"\n{CONV}\n"), ApiKind::AnthropicMessages).unwrap();
        assert_eq!(l.system_line, Some(2));
        let FilePrompt::Conversation(c, _) = &l.prompts[1] else {
            panic!("a conversation")
        };
        // The fragment follows `"messages":` inside the body object.
        let v: Value = serde_json::from_str(&format!("{{\"messages\":{c}}}")).unwrap();
        assert_eq!(v["system"], "be brief");
        assert_eq!(v["messages"].as_array().unwrap().len(), 3);
        assert_eq!(v["messages"][0]["role"], "user");
        // Without a system message, nothing is added.
        let l = load(
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            ApiKind::AnthropicMessages,
        )
        .unwrap();
        let FilePrompt::Conversation(c, _) = &l.prompts[0] else {
            panic!("a conversation")
        };
        let v: Value = serde_json::from_str(c).unwrap();
        assert_eq!(v, serde_json::json!([{"role": "user", "content": "x"}]));
        assert_eq!(l.system_line, None);
    }

    #[test]
    fn bad_lines_name_the_field_the_file_and_the_line() {
        let cases: &[(&str, ApiKind, &str)] = &[
            ("\"ok\"\n{\"text\":\"x\"}\n", ApiKind::OpenAiChat, "line 2"),
            ("{\"prompt\":1}\n", ApiKind::OpenAiChat, "must be a string"),
            (
                "{\"prompt\":\"a\",\"messages\":[]}\n",
                ApiKind::OpenAiChat,
                "not both",
            ),
            ("{\"messages\":[]}\n", ApiKind::OpenAiChat, "empty"),
            (
                "{\"messages\":{}}\n",
                ApiKind::OpenAiChat,
                "must be an array",
            ),
            (
                "{\"messages\":[{\"content\":\"x\"}]}\n",
                ApiKind::OpenAiChat,
                "messages[0]",
            ),
            ("[1]\n", ApiKind::OpenAiChat, "expected a JSON string"),
            ("{nope\n", ApiKind::OpenAiChat, "line 1"),
            ("\n\n", ApiKind::OpenAiChat, "no prompts"),
            (
                CONV,
                ApiKind::OpenAiCompletions,
                "openai-completions takes text",
            ),
            (
                CONV,
                ApiKind::OpenAiEmbeddings,
                "openai-embeddings takes text",
            ),
            (
                r#"{"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"}]}"#,
                ApiKind::AnthropicMessages,
                "messages[1] is a system message",
            ),
            (
                r#"{"messages":[{"role":"system","content":"b"}]}"#,
                ApiKind::AnthropicMessages,
                "no user or assistant message",
            ),
        ];
        for (text, api, needle) in cases {
            let e = load(text, *api).unwrap_err();
            assert!(e.contains(F) && e.contains("soakd-prompts-"), "{e}");
            assert!(e.contains(needle), "{text:?} {api}: {e}");
        }
        let e = load_prompts(Path::new("/nonexistent/p.jsonl"), F, ApiKind::OpenAiChat)
            .unwrap_err()
            .to_string();
        assert!(e.contains(F) && e.contains("cannot read"), "{e}");
    }
}
