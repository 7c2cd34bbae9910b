//! A tiny in-process HTTP/1.1 server that plays OpenAI's chat completions endpoint, with
//! scripted faults: latency, any status and headers, malformed bodies, dropped connections,
//! requests never answered (reporting when the client hangs up).
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// 0-based arrival number.
    pub n: usize,
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn model(&self) -> &str {
        self.body["model"].as_str().unwrap_or("")
    }
}

/// What to do with a request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer after `delay`.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        delay: Duration,
    },
    /// Close the connection without answering.
    Drop,
    /// Reset the connection (RST) without answering.
    Reset,
    /// Never answer; report [`Event::Closed`] when the client closes the connection.
    Hang,
    /// Answer 200 with server-sent events: each `data` payload after `gap`; then, if
    /// `hang`, wait (reporting [`Event::Closed`] when the client leaves), else close.
    Sse {
        events: Vec<String>,
        gap: Duration,
        hang: bool,
    },
}

impl Reply {
    pub fn ok(text: &str) -> Reply {
        Reply::json(200, &ok_body(text, 3, 2))
    }

    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: vec![],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            &serde_json::json!({"error": {"message": message, "type": "test", "code": null}})
                .to_string(),
        )
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        if let Reply::Respond { delay, .. } = &mut self {
            *delay = d;
        }
        self
    }
}

/// The `data` of a streamed chunk adding `text`.
pub fn delta(text: &str) -> String {
    serde_json::json!({
        "object": "chat.completion.chunk",
        "model": "served-model",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}],
    })
    .to_string()
}

/// The `data` of a stream's last chunk, with a finish reason.
pub fn finish(reason: &str) -> String {
    serde_json::json!({
        "object": "chat.completion.chunk",
        "model": "served-model",
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
    })
    .to_string()
}

/// The events of a whole streamed answer: one delta per piece, a finish, `[DONE]`.
pub fn sse_answer(pieces: &[&str]) -> Vec<String> {
    let mut events: Vec<String> = pieces.iter().map(|p| delta(p)).collect();
    events.push(finish("stop"));
    events.push("[DONE]".into());
    events
}

/// A chat completion body.
pub fn ok_body(text: &str, prompt_tokens: u64, completion_tokens: u64) -> String {
    serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })
    .to_string()
}

/// What the server reports as it goes.
#[derive(Debug)]
pub enum Event {
    /// Request `n` was read in full.
    Received(usize),
    /// The client closed the connection of request `n` (answered with [`Reply::Hang`])
    /// this long after the request was read.
    Closed(usize, Duration),
}

type Script = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The running server; it stops when dropped (with the test's runtime).
pub struct Server {
    /// `http://127.0.0.1:PORT/v1`
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl Server {
    /// Starts a server answering each request as `script` says.
    pub async fn start(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, events) = mpsc::unbounded_channel();
        let script: Arc<Script> = Arc::new(script);
        let count = Arc::new(AtomicUsize::new(0));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (script, log, tx, count) =
                    (script.clone(), log.clone(), tx.clone(), count.clone());
                tokio::spawn(async move {
                    serve(socket, &*script, &log, &tx, &count).await;
                });
            }
        });
        Server {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            seen,
            events,
        }
    }

    /// Requests read so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The next event, failing the test if none comes within `within`.
    pub async fn next_event(&mut self, within: Duration) -> Event {
        tokio::time::timeout(within, self.events.recv())
            .await
            .expect("no server event in time")
            .expect("server gone")
    }
}

/// Serves one connection: one request, then close (`Connection: close`).
async fn serve(
    mut socket: TcpStream,
    script: &Script,
    log: &Mutex<Vec<Seen>>,
    tx: &mpsc::UnboundedSender<Event>,
    count: &AtomicUsize,
) {
    let Some((method, path, headers, body)) = read_request(&mut socket).await else {
        return;
    };
    let seen = Seen {
        n: count.fetch_add(1, Ordering::SeqCst),
        at: Instant::now(),
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    };
    log.lock().unwrap().push(seen.clone());
    let _ = tx.send(Event::Received(seen.n));
    match script(&seen) {
        Reply::Drop => {}
        Reply::Reset => {
            // A zero linger makes the close an RST and never blocks (the deprecation is
            // about non-zero lingers).
            #[allow(deprecated)]
            let _ = socket.set_linger(Some(Duration::ZERO));
        }
        Reply::Hang => wait_for_close(&mut socket, &seen, tx).await,
        Reply::Sse { events, gap, hang } => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for data in events {
                tokio::time::sleep(gap).await;
                if socket
                    .write_all(format!("data: {data}\n\n").as_bytes())
                    .await
                    .is_err()
                {
                    let _ = tx.send(Event::Closed(seen.n, seen.at.elapsed()));
                    return;
                }
            }
            if hang {
                wait_for_close(&mut socket, &seen, tx).await;
            } else {
                let _ = socket.shutdown().await;
            }
        }
        Reply::Respond {
            status,
            headers,
            body,
            delay,
        } => {
            tokio::time::sleep(delay).await;
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    }
}

/// Reads until the client closes the connection, then reports [`Event::Closed`].
async fn wait_for_close(socket: &mut TcpStream, seen: &Seen, tx: &mpsc::UnboundedSender<Event>) {
    let mut buf = [0u8; 256];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = tx.send(Event::Closed(seen.n, seen.at.elapsed()));
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, headers, body))
}
