//! A TCP proxy in front of the model server that counts what is on the wire, seen from
//! the server's side: requests in flight (from a request's first byte until the last byte
//! of its response has been read from the server, before it is passed on), the most ever
//! at once, and when clients close their connections.
//!
//! A response ends where HTTP/1.1 framing says: after `content-length` bytes, after the
//! last chunk of a chunked body, or when the server closes. The count goes down *before*
//! the response's last byte is forwarded, so a client can never start its next request
//! while the previous one is still counted.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the proxy has seen.
#[derive(Debug, Default)]
pub struct Wire {
    busy: AtomicUsize,
    peak: AtomicUsize,
    requests: AtomicUsize,
    client_closes: Mutex<Vec<Instant>>,
}

impl Wire {
    /// Requests in flight now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// The most requests ever in flight at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Requests started.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// When clients closed their connections (before the server did), in order.
    pub fn client_closes(&self) -> Vec<Instant> {
        self.client_closes.lock().expect("not poisoned").clone()
    }
}

/// A running proxy; it runs until the test process ends.
pub struct Proxy {
    /// The proxy's `/v1` URL.
    pub url: String,
    pub wire: Arc<Wire>,
}

/// Starts a proxy to `upstream` (`host:port`).
pub fn start(upstream: &str) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!(
        "http://127.0.0.1:{}/v1",
        listener.local_addr().expect("bound").port()
    );
    let wire = Arc::new(Wire::default());
    let (w, upstream) = (wire.clone(), upstream.to_string());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue; // the client sees its connection closed
            };
            relay(client, server, w.clone());
        }
    });
    Proxy { url, wire }
}

/// One connection's request state, shared by its two directions.
#[derive(Default)]
struct Conn {
    in_request: AtomicBool,
    /// The server hung up first (its idle timeout, a crash): not a client close.
    server_closed: AtomicBool,
}

impl Conn {
    fn start(&self, wire: &Wire) {
        if !self.in_request.swap(true, Ordering::SeqCst) {
            wire.requests.fetch_add(1, Ordering::SeqCst);
            let now = wire.busy.fetch_add(1, Ordering::SeqCst) + 1;
            wire.peak.fetch_max(now, Ordering::SeqCst);
        }
    }

    fn end(&self, wire: &Wire) {
        if self.in_request.swap(false, Ordering::SeqCst) {
            wire.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn relay(client: TcpStream, server: TcpStream, wire: Arc<Wire>) {
    let conn = Arc::new(Conn::default());
    let (mut c_read, mut s_write) = (
        client.try_clone().expect("clone socket"),
        server.try_clone().expect("clone socket"),
    );
    let (w, k) = (wire.clone(), conn.clone());
    // Client → server: a request starts with its first byte.
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match c_read.read(&mut buf) {
                Ok(0) | Err(_) => {
                    if !k.server_closed.load(Ordering::SeqCst) {
                        w.client_closes
                            .lock()
                            .expect("not poisoned")
                            .push(Instant::now());
                    }
                    k.end(&w);
                    let _ = s_write.shutdown(Shutdown::Both);
                    return;
                }
                Ok(n) => {
                    k.start(&w);
                    if s_write.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // Server → client: a request ends with its response's last byte.
    let (mut s_read, mut c_write) = (server, client);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut framing = Framing::default();
        loop {
            match s_read.read(&mut buf) {
                Ok(0) | Err(_) => {
                    conn.server_closed.store(true, Ordering::SeqCst);
                    conn.end(&wire);
                    let _ = c_write.shutdown(Shutdown::Both);
                    return;
                }
                Ok(n) => {
                    if framing.feed(&buf[..n]) {
                        conn.end(&wire);
                    }
                    if c_write.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Where a response is in its HTTP/1.1 framing.
#[derive(Debug, Default)]
enum Framing {
    /// Reading the status line and headers (kept until the blank line).
    #[default]
    Head,
    HeadBytes(Vec<u8>),
    /// This many body bytes left.
    Length(usize),
    /// Reading a chunk-size line.
    ChunkSize(Vec<u8>),
    /// This many chunk bytes left, then CRLF.
    ChunkData(usize),
    ChunkEnd(usize),
    /// After the last chunk: trailer lines until a blank one.
    Trailer(Vec<u8>),
    /// No length: the body ends when the server closes.
    UntilClose,
}

impl Framing {
    /// Feeds bytes; true if a response ended within them.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut ended = false;
        for &b in bytes {
            if self.byte(b) {
                ended = true;
            }
        }
        ended
    }

    fn byte(&mut self, b: u8) -> bool {
        match std::mem::take(self) {
            Framing::Head => *self = Framing::HeadBytes(vec![b]),
            Framing::HeadBytes(mut head) => {
                head.push(b);
                if head.ends_with(b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                    };
                    if head.starts_with("http/1.1 1") {
                        return false; // an interim response; the real one follows
                    }
                    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
                        *self = Framing::ChunkSize(Vec::new());
                    } else if let Some(n) = header("content-length:").and_then(|v| v.parse().ok()) {
                        if n == 0 {
                            return true;
                        }
                        *self = Framing::Length(n);
                    } else {
                        *self = Framing::UntilClose;
                    }
                } else {
                    *self = Framing::HeadBytes(head);
                }
            }
            Framing::Length(1) => return true,
            Framing::Length(n) => *self = Framing::Length(n - 1),
            Framing::ChunkSize(mut line) => {
                line.push(b);
                if line.ends_with(b"\r\n") {
                    let text = String::from_utf8_lossy(&line);
                    let hex = text.trim().split(';').next().unwrap_or("0");
                    let size = usize::from_str_radix(hex.trim(), 16).unwrap_or(0);
                    *self = if size == 0 {
                        Framing::Trailer(Vec::new())
                    } else {
                        Framing::ChunkData(size)
                    };
                } else {
                    *self = Framing::ChunkSize(line);
                }
            }
            Framing::ChunkData(1) => *self = Framing::ChunkEnd(2),
            Framing::ChunkData(n) => *self = Framing::ChunkData(n - 1),
            Framing::ChunkEnd(1) => *self = Framing::ChunkSize(Vec::new()),
            Framing::ChunkEnd(n) => *self = Framing::ChunkEnd(n - 1),
            Framing::Trailer(mut line) => {
                line.push(b);
                if line == b"\r\n" {
                    return true;
                }
                if line.ends_with(b"\r\n") {
                    line.clear();
                }
                *self = Framing::Trailer(line);
            }
            Framing::UntilClose => *self = Framing::UntilClose,
        }
        false
    }
}

#[test]
fn framing_finds_the_end_of_each_response() {
    let mut f = Framing::default();
    assert!(!f.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc"));
    assert!(f.feed(b"de"));
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n2;x=1\r\nhi\r\n0\r\n\r\n";
    let mut f = Framing::default();
    assert!(!f.feed(&chunked[..chunked.len() - 1]));
    assert!(f.feed(&chunked[chunked.len() - 1..]));
    let mut f = Framing::default();
    let ends: Vec<bool> = chunked.iter().map(|b| f.feed(&[*b])).collect();
    assert_eq!(ends.iter().filter(|e| **e).count(), 1);
    assert!(ends[ends.len() - 1]);
    // Two responses on one connection.
    let mut f = Framing::default();
    assert!(f.feed(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"));
    assert!(f.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx"));
}
