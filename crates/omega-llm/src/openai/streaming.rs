//! Streamed calls: `"stream": true`, and the server-sent events read into an [`LlmStream`].
//!
//! # Implementation details
//!
//! The stream is a small state machine ([`State`]) driven by the caller's polls:
//!
//! ```text
//! Start ──(retry loop up to a 2xx status)──▶ Reading ──(data: [DONE], or EOF after a
//!   │                                          │        finish_reason)──▶ Done event, Ended
//!   └──(error)──▶ Ended                         └──(error, deadline)──▶ Ended
//! ```
//!
//! Nothing is sent before the first poll. Once the status is 2xx nothing is retried: the
//! caller may already have shown the first pieces. `Reading` owns the response, the gate
//! permit and on-the-wire count ([`Hold`]) and the usage record, so reaching `Ended` or
//! dropping the stream releases all of them at once; an unfinished response is dropped
//! with its connection closed.
//!
//! # Invariants
//!
//! 1. Every read of the body is bounded by the call's deadline.
//! 2. The text kept for the final response never exceeds `max_response_bytes`, nor does
//!    one event.
//! 3. The usage record ends exactly once: completed at the final event, failed at an
//!    error, cancelled if the stream is dropped before either.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::time::Instant;

use super::retry::{Admitted, Hold};
use super::wire::{self, SseDecoder, SseEvent, DONE};
use super::{Inner, Prepared};
use crate::gate::CallOptions;
use crate::stream::{LlmStream, StreamEvent};
use crate::types::{LlmError, LlmRequest, LlmResponse, Usage};
use crate::usage::{CallRecord, Ending};

/// Where a stream is.
enum State {
    Start(Box<(Arc<Inner>, LlmRequest, CallOptions)>),
    Reading(Box<Reading>),
    Ended,
}

/// A stream whose answer has begun.
struct Reading {
    inner: Arc<Inner>,
    call: Prepared,
    response: reqwest::Response,
    /// The gate permit and the on-the-wire count, released when this is dropped.
    _hold: Hold,
    record: CallRecord,
    deadline: Instant,
    sent: Instant,
    /// True when the server answered with a whole completion instead of events.
    whole: bool,
    decoder: SseDecoder,
    events: VecDeque<SseEvent>,
    text: String,
    pieces: u64,
    served_model: Option<String>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

/// The stream of `req` (see [`OpenAiCompatible::stream_with`](super::OpenAiCompatible::stream_with)).
pub(super) fn stream(inner: Arc<Inner>, req: LlmRequest, options: CallOptions) -> LlmStream {
    let start = State::Start(Box::new((inner, req, options)));
    LlmStream::new(futures::stream::unfold(start, |state| async move {
        let mut reading = match state {
            State::Ended => return None,
            State::Reading(r) => r,
            State::Start(start) => match open(start.0, &start.1, start.2).await {
                Ok(r) => r,
                Err(e) => return Some((Err(e), State::Ended)),
            },
        };
        match reading.next().await {
            Ok(Some(piece)) => Some((Ok(StreamEvent::Delta(piece)), State::Reading(reading))),
            Ok(None) => Some((Ok(StreamEvent::Done(reading.finish())), State::Ended)),
            Err(e) => {
                reading.fail();
                Some((Err(e), State::Ended))
            }
        }
    }))
}

/// Sends the request, retrying as a whole call would, until the server answers 2xx.
async fn open(
    inner: Arc<Inner>,
    req: &LlmRequest,
    options: CallOptions,
) -> Result<Box<Reading>, LlmError> {
    let start = Instant::now();
    let call = inner.prepare(req, options, true)?;
    let record = CallRecord::new(inner.usage.clone(), call.model.clone());
    let opened = inner
        .run(&call, start, || {
            record.attempt();
            inner.send(&call)
        })
        .await;
    let Admitted {
        value: response,
        hold,
        deadline,
        sent,
    } = match opened {
        Ok(a) => a,
        Err(e) => {
            record.finish(Ending::Failed);
            return Err(e);
        }
    };
    let whole = !response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    Ok(Box::new(Reading {
        inner,
        call,
        response,
        _hold: hold,
        record,
        deadline,
        sent,
        whole,
        decoder: SseDecoder::default(),
        events: VecDeque::new(),
        text: String::new(),
        pieces: 0,
        served_model: None,
        finish_reason: None,
        usage: None,
    }))
}

impl Reading {
    /// The next piece of text, or `None` at the end of the answer.
    async fn next(&mut self) -> Result<Option<String>, LlmError> {
        if self.whole {
            return self.whole_answer().await;
        }
        let max = self.inner.config.max_response_bytes;
        loop {
            while let Some(event) = self.events.pop_front() {
                let data = match event {
                    SseEvent::Data(d) if d.trim() == DONE => return Ok(None),
                    SseEvent::Data(d) => d,
                    SseEvent::Error(e) => {
                        return Err(LlmError::InvalidResponse(format!(
                            "the server reported an error mid-stream: {}",
                            wire::error_message(e.as_bytes())
                        )))
                    }
                };
                let chunk = wire::decode_chunk(&data)?;
                self.served_model = chunk.model.or(self.served_model.take());
                self.finish_reason = chunk.finish_reason.or(self.finish_reason.take());
                self.usage = chunk.usage.or(self.usage);
                if !chunk.text.is_empty() {
                    if self.text.len() + chunk.text.len() > max {
                        return Err(LlmError::InvalidResponse(format!(
                            "the streamed answer is longer than {max} bytes \
                             (OpenAiConfig::max_response_bytes)"
                        )));
                    }
                    self.text.push_str(&chunk.text);
                    self.pieces += 1;
                    return Ok(Some(chunk.text));
                }
            }
            let read = tokio::time::timeout_at(self.deadline, self.response.chunk()).await;
            let mut out = Vec::new();
            match read {
                Err(_) => {
                    return Err(LlmError::Timeout {
                        after: self.deadline.saturating_duration_since(self.sent),
                    })
                }
                Ok(Err(e)) => {
                    return Err(LlmError::Transport(format!(
                        "the stream broke off after {} pieces: {}",
                        self.pieces,
                        super::chain(&e)
                    )))
                }
                Ok(Ok(Some(bytes))) => self.decoder.push(&bytes, max, &mut out)?,
                Ok(Ok(None)) => {
                    self.decoder.finish(&mut out);
                    if out.is_empty() {
                        // Some servers end without [DONE]; a finish reason says the answer
                        // is complete.
                        if self.finish_reason.is_some() {
                            return Ok(None);
                        }
                        return Err(LlmError::Transport(format!(
                            "the server closed the stream after {} pieces, before the answer \
                             was complete",
                            self.pieces
                        )));
                    }
                }
            }
            self.events.extend(out);
        }
    }

    /// A server that ignored `"stream": true`: its whole completion as one piece.
    async fn whole_answer(&mut self) -> Result<Option<String>, LlmError> {
        if self.finish_reason.is_some() {
            return Ok(None);
        }
        let body = tokio::time::timeout_at(self.deadline, self.inner.read_body(&mut self.response))
            .await
            .map_err(|_| LlmError::Timeout {
                after: self.deadline.saturating_duration_since(self.sent),
            })?
            .map_err(|f| f.error)?;
        let answer = wire::decode_answer(&body, self.call.prompt_estimate)?;
        self.served_model = answer.model;
        self.finish_reason = Some(answer.finish_reason);
        self.usage = Some(answer.usage);
        self.text = answer.text.clone();
        self.pieces = 1;
        Ok(Some(answer.text))
    }

    /// Records the call as failed; dropping the rest closes the connection.
    fn fail(self: Box<Self>) {
        let Reading { record, .. } = *self;
        record.finish(Ending::Failed);
    }

    /// The final response; settles the rate limiter and records the usage (invariant 3).
    fn finish(self: Box<Self>) -> LlmResponse {
        let usage = self.usage.unwrap_or(Usage {
            prompt_tokens: self.call.prompt_estimate,
            completion_tokens: self.pieces,
        });
        self.inner.limiter.settle(
            self.call.charged,
            usage.prompt_tokens + usage.completion_tokens,
        );
        let Reading {
            call,
            record,
            sent,
            text,
            served_model,
            finish_reason,
            ..
        } = *self;
        record.finish(Ending::Completed(usage));
        LlmResponse {
            text,
            model: served_model.unwrap_or(call.model),
            usage,
            latency: sent.elapsed(),
            finish_reason: finish_reason.unwrap_or_else(|| "stop".into()),
        }
    }
}
