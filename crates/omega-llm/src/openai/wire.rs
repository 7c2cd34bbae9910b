//! The wire format of `POST {base}/chat/completions`: the request body, the answer, and the
//! error bodies servers send (OpenAI's `{"error": {"message": ..}}` and a few look-alikes).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::{estimate_tokens, LlmError, LlmRequest, Role, Usage};

/// The request body.
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: Role,
    content: &'a str,
}

impl<'a> ChatRequest<'a> {
    /// The body for `req`, asking `model`; the system prompt goes first.
    pub(crate) fn new(req: &'a LlmRequest, model: &'a str) -> Self {
        let system = req.system.as_deref().map(|s| WireMessage {
            role: Role::System,
            content: s,
        });
        let messages = system
            .into_iter()
            .chain(req.messages.iter().map(|m| WireMessage {
                role: m.role,
                content: &m.content,
            }))
            .collect();
        ChatRequest {
            model,
            messages,
            temperature: req.temperature,
            max_tokens: req.max_tokens,
            stop: &req.stop,
        }
    }

    /// A rough count of the tokens this request will use: its prompt plus `max_tokens`,
    /// for client-side tokens-per-minute limits.
    pub(crate) fn estimated_tokens(&self) -> u64 {
        self.estimated_prompt_tokens() + u64::from(self.max_tokens.unwrap_or(0))
    }

    /// A rough count of the prompt's tokens, for servers that report no usage.
    pub(crate) fn estimated_prompt_tokens(&self) -> u64 {
        self.messages
            .iter()
            .map(|m| estimate_tokens(m.content))
            .sum()
    }
}

/// A successful answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatResponse {
    #[serde(default)]
    pub(crate) model: Option<String>,
    pub(crate) choices: Vec<Choice>,
    #[serde(default)]
    pub(crate) usage: Option<WireUsage>,
}

/// One choice of an answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    pub(crate) message: ChoiceMessage,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

/// The message of a choice; `content` is null when the model only called tools.
#[derive(Debug, Deserialize)]
pub(crate) struct ChoiceMessage {
    #[serde(default)]
    pub(crate) content: Option<String>,
}

/// Token counts as servers report them.
#[derive(Debug, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub(crate) prompt_tokens: u64,
    #[serde(default)]
    pub(crate) completion_tokens: u64,
}

/// What a successful answer says, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) text: String,
    pub(crate) model: Option<String>,
    pub(crate) finish_reason: String,
    pub(crate) usage: Usage,
}

/// Decodes a 2xx body; `sent` is what we sent, to estimate usage the server left out.
pub(crate) fn decode_answer(body: &[u8], sent: &ChatRequest<'_>) -> Result<Answer, LlmError> {
    let response: ChatResponse = serde_json::from_slice(body).map_err(|e| {
        LlmError::InvalidResponse(format!(
            "the body is not a chat completion ({e}): {}",
            excerpt(body)
        ))
    })?;
    let Some(choice) = response.choices.into_iter().next() else {
        return Err(LlmError::InvalidResponse(
            "the answer has no choices".into(),
        ));
    };
    let text = choice.message.content.unwrap_or_default();
    let usage = match response.usage {
        Some(u) => Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        },
        None => Usage {
            prompt_tokens: sent.estimated_prompt_tokens(),
            completion_tokens: estimate_tokens(&text),
        },
    };
    Ok(Answer {
        text,
        model: response.model,
        finish_reason: choice.finish_reason.unwrap_or_else(|| "stop".into()),
        usage,
    })
}

/// The server's own words from an error body: `error.message` (OpenAI, vLLM, LiteLLM),
/// `error` as a string, `message` or `detail`; else the start of the body.
pub(crate) fn error_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let text = |v: &Value| v.as_str().map(str::to_string);
        v.get("error")
            .and_then(|e| e.get("message").and_then(text).or_else(|| text(e)))
            .or_else(|| v.get("message").and_then(text))
            .or_else(|| v.get("detail").and_then(text))
    });
    from_json.unwrap_or_else(|| excerpt(body))
}

/// At most 200 characters of a body, for messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    #[test]
    fn request_body_puts_the_system_prompt_first() {
        let mut req = LlmRequest::prompt("hi there");
        req.system = Some("be brief".into());
        req.max_tokens = Some(5);
        req.messages.push(Message {
            role: Role::Assistant,
            content: "hello".into(),
        });
        let body = ChatRequest::new(&req, "m1");
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "model": "m1",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi there"},
                    {"role": "assistant", "content": "hello"},
                ],
                "max_tokens": 5,
            })
        );
        assert_eq!(body.estimated_tokens(), 2 + 2 + 1 + 5);
    }

    #[test]
    fn answers_decode_with_or_without_usage() {
        let req = LlmRequest::prompt("one two three");
        let sent = ChatRequest::new(&req, "m");
        let a = decode_answer(
            br#"{"model":"m-2024","choices":[{"index":0,"message":{"role":"assistant","content":"yes"},"finish_reason":"length"}],"usage":{"prompt_tokens":7,"completion_tokens":1,"total_tokens":8}}"#,
            &sent,
        )
        .unwrap();
        assert_eq!(
            a,
            Answer {
                text: "yes".into(),
                model: Some("m-2024".into()),
                finish_reason: "length".into(),
                usage: Usage {
                    prompt_tokens: 7,
                    completion_tokens: 1
                },
            }
        );
        let a = decode_answer(br#"{"choices":[{"message":{"content":"a b"}}]}"#, &sent).unwrap();
        assert_eq!(
            a.usage,
            Usage {
                prompt_tokens: 3,
                completion_tokens: 2
            }
        );
        assert_eq!(a.finish_reason, "stop");
    }

    #[test]
    fn bad_answers_are_invalid_responses() {
        let req = LlmRequest::prompt("x");
        let sent = ChatRequest::new(&req, "m");
        let e = decode_answer(b"{\"choices\": [", &sent).unwrap_err();
        assert_eq!(e.kind(), "invalid-response");
        assert!(e.to_string().contains("is not a chat completion"), "{e}");
        let e = decode_answer(br#"{"choices": []}"#, &sent).unwrap_err();
        assert_eq!(e.to_string(), "invalid response: the answer has no choices");
    }

    #[test]
    fn error_messages_from_common_shapes() {
        assert_eq!(
            error_message(
                br#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#
            ),
            "Incorrect API key"
        );
        assert_eq!(
            error_message(br#"{"error":"model not loaded"}"#),
            "model not loaded"
        );
        assert_eq!(error_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_message(b"upstream timeout"), "upstream timeout");
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(error_message(&[b'x'; 300]).chars().count(), 201);
    }
}
