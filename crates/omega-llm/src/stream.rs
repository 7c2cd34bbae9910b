//! Streamed completions: [`LlmStream`] hands out the reply's text as the model produces it,
//! then the whole [`LlmResponse`] (text, usage, finish reason) once it has ended.
//!
//! Providers build one from a stream of [`StreamEvent`]s: any number of
//! [`Delta`](StreamEvent::Delta)s, then one [`Done`](StreamEvent::Done) (or an error). The
//! stream owns everything it needs (`'static`), including its gate permit, so it can be kept
//! across awaits or handed to another task.
//!
//! # Cancellation safety
//!
//! Dropping an `LlmStream` before its end abandons the call at once: an HTTP provider closes
//! the connection (a llama.cpp server then stops generating), frees the gate slot and counts
//! the call as cancelled.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{BoxStream, Stream, StreamExt};

use crate::types::{LlmError, LlmResponse};

/// What a provider's stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// The next piece of the reply's text.
    Delta(String),
    /// The call ended: the whole response, its `text` the concatenation of the deltas.
    Done(LlmResponse),
}

/// A streamed completion: pieces of text as they come, then the whole response.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use omega_llm::{CallOptions, LlmProvider, LlmRequest, MockProvider};
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// rt.block_on(async {
///     let llm: Arc<dyn LlmProvider> = Arc::new(MockProvider::new());
///     let mut stream = llm.stream_with(LlmRequest::prompt("a b c"), CallOptions::new());
///     let mut pieces = Vec::new();
///     while let Some(piece) = stream.next().await {
///         pieces.push(piece.unwrap());
///     }
///     assert_eq!(pieces, ["echo: ", "a ", "b ", "c"]);
///     assert_eq!(stream.response().unwrap().text, "echo: a b c");
/// });
/// ```
pub struct LlmStream {
    events: Option<BoxStream<'static, Result<StreamEvent, LlmError>>>,
    response: Option<LlmResponse>,
}

impl fmt::Debug for LlmStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmStream")
            .field("ended", &self.events.is_none())
            .field("response", &self.response)
            .finish()
    }
}

impl LlmStream {
    /// A stream over a provider's events (see the module docs for their order).
    pub fn new(events: impl Stream<Item = Result<StreamEvent, LlmError>> + Send + 'static) -> Self {
        LlmStream {
            events: Some(events.boxed()),
            response: None,
        }
    }

    /// A stream of one piece: the whole answer of `call`, for providers that cannot stream.
    pub fn from_future(
        call: impl Future<Output = Result<LlmResponse, LlmError>> + Send + 'static,
    ) -> Self {
        let events = futures::stream::once(call).flat_map(|r| {
            let events: Vec<Result<StreamEvent, LlmError>> = match r {
                Ok(response) => vec![
                    Ok(StreamEvent::Delta(response.text.clone())),
                    Ok(StreamEvent::Done(response)),
                ],
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(events)
        });
        LlmStream::new(events)
    }

    /// The next piece of text; `None` once the stream has ended (after its last piece, or
    /// after an error, which is returned once).
    pub async fn next(&mut self) -> Option<Result<String, LlmError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The whole response, once the stream has ended without an error.
    pub fn response(&self) -> Option<&LlmResponse> {
        self.response.as_ref()
    }

    /// Reads the stream to its end and returns the whole response.
    pub async fn collect(mut self) -> Result<LlmResponse, LlmError> {
        while let Some(piece) = self.next().await {
            piece?;
        }
        self.response.ok_or_else(|| {
            LlmError::InvalidResponse("the stream ended without a final response".into())
        })
    }
}

impl Stream for LlmStream {
    type Item = Result<String, LlmError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let Some(events) = this.events.as_mut() else {
                return Poll::Ready(None);
            };
            let event = match events.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(e) => e,
            };
            match event {
                Some(Ok(StreamEvent::Delta(text))) if text.is_empty() => continue,
                Some(Ok(StreamEvent::Delta(text))) => return Poll::Ready(Some(Ok(text))),
                Some(Ok(StreamEvent::Done(response))) => {
                    this.response = Some(response);
                    this.events = None; // drops the connection, the permit, the records
                }
                Some(Err(e)) => {
                    this.events = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.events = None;
                    if this.response.is_none() {
                        return Poll::Ready(Some(Err(LlmError::InvalidResponse(
                            "the stream ended without a final response".into(),
                        ))));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::types::Usage;

    fn response(text: &str) -> LlmResponse {
        LlmResponse {
            text: text.into(),
            model: "m".into(),
            usage: Usage::default(),
            latency: Duration::ZERO,
            finish_reason: "stop".into(),
        }
    }

    #[tokio::test]
    async fn deltas_then_the_response_then_nothing() {
        let mut s = LlmStream::new(futures::stream::iter([
            Ok(StreamEvent::Delta("a".into())),
            Ok(StreamEvent::Delta(String::new())),
            Ok(StreamEvent::Delta("b".into())),
            Ok(StreamEvent::Done(response("ab"))),
        ]));
        assert_eq!(s.next().await, Some(Ok("a".into())));
        assert_eq!(
            s.next().await,
            Some(Ok("b".into())),
            "empty deltas are skipped"
        );
        assert!(s.response().is_none());
        assert_eq!(s.next().await, None);
        assert_eq!(s.response().map(|r| r.text.as_str()), Some("ab"));
        assert_eq!(s.next().await, None);
    }

    #[tokio::test]
    async fn an_error_is_returned_once_and_ends_the_stream() {
        let mut s = LlmStream::new(futures::stream::iter([
            Ok(StreamEvent::Delta("a".into())),
            Err(LlmError::Transport("reset".into())),
            Ok(StreamEvent::Delta("never".into())),
        ]));
        assert_eq!(s.next().await, Some(Ok("a".into())));
        assert_eq!(
            s.next().await,
            Some(Err(LlmError::Transport("reset".into())))
        );
        assert_eq!(s.next().await, None);
        let s = LlmStream::new(futures::stream::iter([Ok(StreamEvent::Delta("a".into()))]));
        assert_eq!(
            s.collect().await.unwrap_err().to_string(),
            "invalid response: the stream ended without a final response"
        );
    }

    #[test]
    fn a_stream_can_be_handed_to_another_task_or_thread() {
        fn owned_and_sendable<T: Send + 'static>() {}
        owned_and_sendable::<LlmStream>();
    }

    #[tokio::test]
    async fn from_future_is_one_piece() {
        let s = LlmStream::from_future(async { Ok(response("whole")) });
        assert_eq!(s.collect().await.unwrap().text, "whole");
    }
}
