//! The wire format of `POST {base}/chat/completions`: the request body, the answer, the
//! streamed answer (server-sent events of `chat.completion.chunk`s), and the error bodies
//! servers send (OpenAI's `{"error": {"message": ..}}` and a few look-alikes).

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
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

/// Asks a streaming server to send the usage in a last chunk (OpenAI, vLLM; others ignore it).
#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: Role,
    content: &'a str,
}

impl<'a> ChatRequest<'a> {
    /// The body for `req`, asking `model`, streamed or not; the system prompt goes first.
    pub(crate) fn new(req: &'a LlmRequest, model: &'a str, stream: bool) -> Self {
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
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
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

/// Decodes a 2xx body; `prompt_estimate` stands in for a prompt token count the server
/// left out.
pub(crate) fn decode_answer(body: &[u8], prompt_estimate: u64) -> Result<Answer, LlmError> {
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
            prompt_tokens: prompt_estimate,
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

/// One `chat.completion.chunk` of a stream, decoded.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// The text it adds (empty for role-only and final chunks).
    pub(crate) text: String,
    pub(crate) finish_reason: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<ChoiceMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// The sentinel that ends an OpenAI stream.
pub(crate) const DONE: &str = "[DONE]";

/// Decodes the data of one server-sent event of a stream (not [`DONE`]).
pub(crate) fn decode_chunk(data: &str) -> Result<Chunk, LlmError> {
    let chunk: WireChunk = serde_json::from_str(data).map_err(|e| {
        LlmError::InvalidResponse(format!(
            "a streamed event is not a chat completion chunk ({e}): {}",
            excerpt(data.as_bytes())
        ))
    })?;
    if let Some(error) = chunk.error {
        return Err(LlmError::InvalidResponse(format!(
            "the server reported an error mid-stream: {}",
            error_message(error.to_string().as_bytes())
        )));
    }
    let choice = chunk.choices.into_iter().next();
    let (text, finish_reason) = match choice {
        Some(c) => (
            c.delta.and_then(|d| d.content).unwrap_or_default(),
            c.finish_reason,
        ),
        None => (String::new(), None),
    };
    Ok(Chunk {
        text,
        finish_reason,
        model: chunk.model,
        usage: chunk.usage.map(|u| Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }),
    })
}

/// An incremental decoder of `text/event-stream` bodies: bytes in, events' data out.
///
/// Lines end in `\n`, `\r\n` or `\r`'s CRLF form; `data:` lines of one event are joined
/// with `\n`; an empty line ends the event; comments (`:`) and other fields are skipped.
/// An `event: error` event's data is reported as an error.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    data: Option<String>,
    error_event: bool,
}

/// One event's data, or the data of an `event: error`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SseEvent {
    Data(String),
    Error(String),
}

impl SseDecoder {
    /// Feeds `bytes`; appends the events they complete to `out`. Fails if one line grows
    /// past `max_line` bytes.
    pub(crate) fn push(
        &mut self,
        bytes: &[u8],
        max_line: usize,
        out: &mut Vec<SseEvent>,
    ) -> Result<(), LlmError> {
        for &b in bytes {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&line, out);
            } else {
                if self.line.len() >= max_line {
                    return Err(LlmError::InvalidResponse(format!(
                        "a streamed event is longer than {max_line} bytes"
                    )));
                }
                self.line.push(b);
            }
        }
        Ok(())
    }

    /// Ends the body: a last event not followed by an empty line still counts.
    pub(crate) fn finish(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line, out);
        }
        self.line_done(b"", out);
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(if self.error_event {
                    SseEvent::Error(data)
                } else {
                    SseEvent::Data(data)
                });
            }
            self.error_event = false;
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.error_event = value == "error",
            _ => {} // comments (empty field name), id, retry
        }
    }
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
        let body = ChatRequest::new(&req, "m1", false);
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
        let streamed = serde_json::to_value(ChatRequest::new(&req, "m1", true)).unwrap();
        assert_eq!(streamed["stream"], true);
        assert_eq!(
            streamed["stream_options"],
            serde_json::json!({"include_usage": true})
        );
    }

    #[test]
    fn answers_decode_with_or_without_usage() {
        let a = decode_answer(
            br#"{"model":"m-2024","choices":[{"index":0,"message":{"role":"assistant","content":"yes"},"finish_reason":"length"}],"usage":{"prompt_tokens":7,"completion_tokens":1,"total_tokens":8}}"#,
            3,
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
        let a = decode_answer(br#"{"choices":[{"message":{"content":"a b"}}]}"#, 3).unwrap();
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
        let e = decode_answer(b"{\"choices\": [", 1).unwrap_err();
        assert_eq!(e.kind(), "invalid-response");
        assert!(e.to_string().contains("is not a chat completion"), "{e}");
        let e = decode_answer(br#"{"choices": []}"#, 1).unwrap_err();
        assert_eq!(e.to_string(), "invalid response: the answer has no choices");
    }

    #[test]
    fn sse_events_split_across_reads_and_line_endings() {
        let body = "data: {\"a\":1}\n\n: keep-alive comment\r\n\r\ndata: one\r\ndata: two\r\n\r\nevent: error\ndata: boom\n\ndata: [DONE]";
        // Fed one byte at a time and all at once, the events are the same.
        for step in [1, body.len()] {
            let mut d = SseDecoder::default();
            let mut out = Vec::new();
            for piece in body.as_bytes().chunks(step) {
                d.push(piece, 1024, &mut out).unwrap();
            }
            d.finish(&mut out);
            assert_eq!(
                out,
                [
                    SseEvent::Data("{\"a\":1}".into()),
                    SseEvent::Data("one\ntwo".into()),
                    SseEvent::Error("boom".into()),
                    SseEvent::Data(DONE.into()),
                ],
                "step {step}"
            );
        }
        let mut d = SseDecoder::default();
        let e = d.push(&[b'x'; 100], 64, &mut Vec::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid response: a streamed event is longer than 64 bytes"
        );
    }

    #[test]
    fn chunks_decode_as_llama_cpp_and_openai_send_them() {
        let c = decode_chunk(r#"{"id": "x", "model": "smollm2", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}, "logprobs": null, "finish_reason": null}]}"#).unwrap();
        assert_eq!(
            c,
            Chunk {
                model: Some("smollm2".into()),
                ..Chunk::default()
            }
        );
        let c = decode_chunk(r#"{"choices": [{"index": 0, "delta": {"content": " welcome"}, "finish_reason": null}]}"#).unwrap();
        assert_eq!(c.text, " welcome");
        let c =
            decode_chunk(r#"{"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}"#)
                .unwrap();
        assert_eq!(
            (c.text.as_str(), c.finish_reason.as_deref()),
            ("", Some("length"))
        );
        let c = decode_chunk(r#"{"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}"#).unwrap();
        assert_eq!(
            c.usage,
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 4
            })
        );
        let e = decode_chunk(r#"{"error": {"message": "model crashed"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid response: the server reported an error mid-stream: model crashed"
        );
        let e = decode_chunk("not json").unwrap_err();
        assert!(
            e.to_string().contains("is not a chat completion chunk"),
            "{e}"
        );
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
