//! A fake registry behind a token service, in one loopback server. `/v2/…` answers 401 with a Bearer
//! challenge unless it gets the token `/token` grants for the right password (a GET with Basic auth) or
//! refresh token (an OAuth2 POST), so the client's token dance can be checked without a real token server,
//! which Debian's registry cannot be made into without signing keys.

use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const USER: &str = "robot";
pub const PASSWORD: &str = "token-service-password";
pub const REFRESH_TOKEN: &str = "a-refresh-token";
pub const SERVICE: &str = "fake-registry";
/// What every manifest HEAD with a granted token answers.
pub const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const GRANTED: &str = "granted-token";

pub struct TokenRegistry {
    pub address: String,
    /// One line per token request: `GET ?query` or `POST body`.
    pub token_requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenRegistry {
    pub async fn start() -> TokenRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let token_requests = Arc::new(Mutex::new(Vec::new()));
        let (served_address, log) = (address.clone(), token_requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                tokio::spawn(serve_one(connection, served_address.clone(), log.clone()));
            }
        });
        TokenRegistry { address, token_requests, task }
    }

    pub fn requests(&self) -> Vec<String> {
        self.token_requests.lock().unwrap().clone()
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(mut stream: TcpStream, address: String, log: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let Some((mut buffer, head_end)) = super::read_request_head(&mut stream).await? else { return Ok(()) };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_string())
    };
    let length: usize = header("content-length").and_then(|value| value.parse().ok()).unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await? {
            0 => break,
            read => buffer.extend_from_slice(&chunk[..read]),
        }
    }
    let body = String::from_utf8_lossy(&buffer[head_end..]).into_owned();
    let authorization = header("authorization").unwrap_or_default();
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));

    let (status, headers, content) = if target.starts_with("/token") {
        let query = target.split_once('?').map(|(_, query)| query).unwrap_or_default();
        log.lock().unwrap().push(if method == "POST" { format!("POST {body}") } else { format!("GET ?{query}") });
        let granted = match method {
            "POST" => {
                body.contains("grant_type=refresh_token") && body.contains(&format!("refresh_token={REFRESH_TOKEN}"))
            }
            _ => authorization == basic,
        };
        match (method, granted, authorization.is_empty()) {
            ("POST", true, _) => (200, String::new(), format!(r#"{{"access_token":"{GRANTED}","expires_in":300}}"#)),
            (_, true, _) => (200, String::new(), format!(r#"{{"token":"{GRANTED}","expires_in":300}}"#)),
            // Token services hand anonymous callers a token with no rights; the registry then refuses it.
            ("GET", false, true) => (200, String::new(), r#"{"token":"anonymous"}"#.to_string()),
            _ => (401, String::new(), r#"{"details":"incorrect username or password"}"#.to_string()),
        }
    } else if authorization == format!("Bearer {GRANTED}") {
        (200, format!("Docker-Content-Digest: {DIGEST}\r\n"), String::new())
    } else {
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://{address}/token\",service=\"{SERVICE}\",scope=\"repository:team/app:pull\"\r\n"
        );
        (401, challenge, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string())
    };
    let reason = if status == 200 { "OK" } else { "Unauthorized" };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        content.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(content.as_bytes()).await?;
    }
    stream.shutdown().await
}
