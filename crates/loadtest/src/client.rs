//! A minimal HTTP/1.1 keep-alive client for load generation: one request at
//! a time per connection, `Content-Length` bodies only. Cheap on purpose, so
//! the load generator takes little of the CPU it shares with the servers.

use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad response: {0}")]
    Bad(String),
}

pub struct HttpConn {
    stream: BufStream<TcpStream>,
    host: String,
}

impl HttpConn {
    pub async fn connect(addr: SocketAddr) -> Result<Self, HttpError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Self {
            stream: BufStream::new(tcp),
            host: addr.to_string(),
        })
    }

    /// Sends one request and reads the whole answer: (status, body).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), HttpError> {
        self.request_with(method, path, &[], body).await
    }

    /// [`Self::request`] with extra request headers (e.g. `Idempotency-Key`).
    pub async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await?;
        self.stream.flush().await?;

        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(HttpError::Bad("connection closed".into()));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HttpError::Bad(format!("status line '{}'", line.trim_end())))?;
        let mut length = None;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(HttpError::Bad("connection closed in headers".into()));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| HttpError::Bad("no content-length".into()))?;
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, body))
    }
}
