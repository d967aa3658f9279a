//! A loopback HTTP/1.1 proxy in front of a registry that breaks the requests a rule picks: answers with
//! an error status of its own, or resets the connection in the middle of a body.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fault proxy does with one request.
#[derive(Clone, Copy)]
pub enum Fault {
    Forward,
    /// Answer with this status (and `Retry-After: 1` for a 429) without asking the registry.
    Answer(u16),
    /// Read this many bytes of the body, then reset the connection.
    ResetAfter(usize),
}

pub type Rule = Arc<dyn Fn(&str, &str) -> Fault + Send + Sync>;

/// A loopback HTTP/1.1 proxy in front of a registry that breaks the requests its rule picks. Each
/// connection carries one request (it asks the registry to close after answering), so every request
/// passes the rule.
pub struct FaultProxy {
    pub address: String,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: String, rule: Rule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                tokio::spawn(proxy_one(connection, upstream.clone(), rule.clone()));
            }
        });
        FaultProxy { address, task }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_one(mut client: TcpStream, upstream: String, rule: Rule) -> std::io::Result<()> {
    let Some((buffer, head_end)) = super::read_request_head(&mut client).await? else { return Ok(()) };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
    match rule(method, path) {
        Fault::Forward => {
            let mut rewritten: Vec<&str> =
                head.trim_end().lines().filter(|line| !line.to_ascii_lowercase().starts_with("connection:")).collect();
            rewritten.push("Connection: close");
            let mut registry = TcpStream::connect(&upstream).await?;
            registry.write_all(format!("{}\r\n\r\n", rewritten.join("\r\n")).as_bytes()).await?;
            registry.write_all(&buffer[head_end..]).await?;
            tokio::io::copy_bidirectional(&mut client, &mut registry).await?;
        }
        Fault::Answer(status) => {
            let retry_after = if status == 429 { "Retry-After: 1\r\n" } else { "" };
            let answer =
                format!("HTTP/1.1 {status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n{retry_after}\r\n");
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await?;
        }
        Fault::ResetAfter(length) => {
            let mut seen = buffer.len() - head_end;
            let mut chunk = [0u8; 8192];
            while seen < length {
                match client.read(&mut chunk).await? {
                    0 => break,
                    read => seen += read,
                }
            }
            // Closing with a zero linger sends a reset instead of an orderly close.
            client.set_zero_linger()?;
        }
    }
    Ok(())
}
