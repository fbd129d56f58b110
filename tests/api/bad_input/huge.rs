//! A 100 MB body without holding it: sent from a fixed buffer over a raw connection.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::TestApp;

/// Sends `head` then filler up to `total` bytes as the body, over a raw connection so that
/// nothing is held in memory, and reads the answer while sending. The write half stays open
/// until the answer is read (a half-closed connection reads to the server as a broken upload).
pub async fn post_huge(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    head: &[u8],
    filler: &'static [u8],
    total: usize,
) -> (u16, Value) {
    let address = app.address.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nIdempotency-Key: huge-{}\r\nContent-Length: {total}\r\n\r\n",
        uuid::Uuid::new_v4().simple()
    )
    .into_bytes();
    request.extend_from_slice(head);
    let mut left = total - head.len();
    let sending = tokio::spawn(async move {
        let mut sending = writer.write_all(&request).await;
        while sending.is_ok() && left > 0 {
            let n = filler.len().min(left);
            sending = writer.write_all(&filler[..n]).await;
            left -= n;
        }
        writer
    });
    let mut answer = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let (status, body) = loop {
        let n = reader.read(&mut buffer).await.unwrap_or(0);
        answer.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.parse::<usize>().unwrap())
                })
                .expect("answers carry a Content-Length");
            if body.len() >= length || n == 0 {
                let status = head[9..12].parse().unwrap();
                break (status, serde_json::from_str(body).unwrap_or(Value::Null));
            }
        }
        assert!(n > 0, "the connection closed before an answer: {text}");
    };
    sending.abort();
    (status, body)
}

pub static FILLER: [u8; 64 * 1024] = [b'7'; 64 * 1024];
pub static BAD_LINES: &[u8] = b"x\nx\nx\nx\nx\nx\nx\nx\nx\nx\nx\nx\nx\nx\nx\nx\n";
pub const HUNDRED_MB: usize = 100 * 1024 * 1024;
