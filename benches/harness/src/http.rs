//! Just enough HTTP/1.1 for the harness: read one message (request or response) off a
//! keep-alive connection, with Content-Length or chunked bodies.
//!
//! Hand-written so the load generator and the echo backend spend as little CPU as possible:
//! on a 2-core machine every cycle they save is a cycle the gateway under test can use.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest head the harness accepts; larger means a broken peer.
const MAX_HEAD: usize = 64 * 1024;

/// One HTTP message: its first line ("POST /mcp HTTP/1.1" or "HTTP/1.1 200 OK") and body.
pub struct Message {
    /// The request or status line, without CRLF.
    pub first_line: String,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl Message {
    /// The status code of a response (0 when the line is not a status line).
    pub fn status(&self) -> u16 {
        self.first_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

/// A keep-alive connection with its read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Wraps a connected stream (Nagle off: requests go out whole, at once).
    pub fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        Self { stream, buf: Vec::with_capacity(8192) }
    }

    /// Connects to `addr` ("127.0.0.1:8000").
    pub async fn connect(addr: &str) -> io::Result<Self> {
        Ok(Self::new(TcpStream::connect(addr).await?))
    }

    /// Writes all of `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Reads the next message; `None` when the peer closed between messages.
    pub async fn read(&mut self) -> io::Result<Option<Message>> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            if !self.fill().await? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let first_line = lines.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad length"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
        self.buf.drain(..head_end);
        let body = if chunked { self.read_chunked().await? } else { self.read_exact(length).await? };
        Ok(Some(Message { first_line, body }))
    }

    async fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.read_exact(size).await?);
            self.read_line().await?;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete POST request, built once and sent as-is on every call.
pub fn post(host: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    request.into_bytes()
}

/// One GET over a fresh connection, for the harness's own probes (health, backend counters).
pub async fn get(addr: &str, path: &str) -> io::Result<Message> {
    get_with(addr, path, &[]).await
}

/// [`get`] with more headers (a token).
pub async fn get_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<Message> {
    let mut conn = Conn::connect(addr).await?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    conn.send(request.as_bytes()).await?;
    conn.read().await?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves `raw` bytes to the first connection and returns a client connected to it.
    async fn peer(raw: &'static [u8]) -> Conn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(raw).await.unwrap();
        });
        Conn::connect(&addr).await.unwrap()
    }

    #[tokio::test]
    async fn reads_length_delimited_and_chunked_messages_back_to_back() {
        let mut conn = peer(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello\
              HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .await;
        let first = conn.read().await.unwrap().unwrap();
        assert_eq!((first.status(), first.body.as_slice()), (200, b"hello".as_slice()));
        let second = conn.read().await.unwrap().unwrap();
        assert_eq!((second.status(), second.body.as_slice()), (429, b"abcde".as_slice()));
        assert!(conn.read().await.unwrap().is_none(), "a clean close between messages is None");
    }

    #[tokio::test]
    async fn a_truncated_body_is_an_error_not_a_short_message() {
        let mut conn = peer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await;
        assert!(conn.read().await.is_err());
    }
}
