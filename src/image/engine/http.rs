//! One Engine API request over HTTP/1.1: a fresh connection per request (the engine is local and a unix
//! connect costs microseconds), a body from memory or streamed from a file, and the engine's error replies
//! turned into [`EngineError`]s.

use std::io;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;

use super::error::EngineError;
use super::transport::Address;

/// The Engine API version flyte speaks: Docker 20.10's, which newer engines still serve.
pub(crate) const API_VERSION: &str = "v1.41";

/// How much of a tar file goes into one body chunk when streaming it to the engine.
const FILE_CHUNK_BYTES: usize = 256 * 1024;

pub(crate) type Body = BoxBody<Bytes, io::Error>;

pub(crate) fn empty_body() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Streams a file without holding it in memory: image tars run to gigabytes.
pub(crate) fn file_body(file: tokio::fs::File) -> Body {
    let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0u8; FILE_CHUNK_BYTES];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        chunk.truncate(read);
        Ok(Some((Bytes::from(chunk), file)))
    });
    StreamBody::new(chunks.map_ok(Frame::data)).boxed()
}

/// What one request is: the method, the path under the API version, and the body with its headers.
pub(crate) struct EngineRequest {
    pub operation: String,
    pub method: Method,
    /// Path and query after the version prefix, already percent-encoded, starting with `/`.
    pub path: String,
    pub body: Body,
    pub content_type: Option<&'static str>,
    pub content_length: Option<u64>,
}

impl EngineRequest {
    pub(crate) fn new(operation: impl Into<String>, method: Method, path: String) -> EngineRequest {
        EngineRequest {
            operation: operation.into(),
            method,
            path,
            body: empty_body(),
            content_type: None,
            content_length: None,
        }
    }
}

/// Sends the request on a fresh connection and returns the reply with its body still unread.
pub(crate) async fn send(address: &Address, request: EngineRequest) -> Result<Response<Incoming>, EngineError> {
    let socket = address.connect("Docker Engine").await?;
    let transport = |detail: String| EngineError::Transport {
        operation: request.operation.clone(),
        address: address.to_string(),
        detail,
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(socket)).await.map_err(|e| transport(e.to_string()))?;
    // The connection future moves the bytes; it ends by itself once the reply body has been read or dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = Request::builder()
        .method(request.method.clone())
        .uri(format!("/{API_VERSION}{}", request.path))
        .header(header::HOST, address.host_header())
        .header(header::USER_AGENT, concat!("flyte/", env!("CARGO_PKG_VERSION")));
    if let Some(content_type) = request.content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(length) = request.content_length {
        builder = builder.header(header::CONTENT_LENGTH, length);
    } else if request.method == Method::POST {
        builder = builder.header(header::CONTENT_LENGTH, 0);
    }
    let http_request = builder.body(request.body).map_err(|e| transport(e.to_string()))?;
    sender.send_request(http_request).await.map_err(|e| transport(e.to_string()))
}

/// Reads a whole reply body (small JSON replies only).
pub(crate) async fn read_body(
    address: &Address,
    operation: &str,
    response: Response<Incoming>,
) -> Result<Bytes, EngineError> {
    match response.into_body().collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(EngineError::Transport {
            operation: operation.to_string(),
            address: address.to_string(),
            detail: error.to_string(),
        }),
    }
}

/// The engine's error reply as an error: its JSON `message` when there is one, else the body's text.
pub(crate) async fn api_error(address: &Address, operation: &str, response: Response<Incoming>) -> EngineError {
    let status = response.status();
    let body = match read_body(address, operation, response).await {
        Ok(body) => body,
        Err(error) => return error,
    };
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    EngineError::Api { operation: operation.to_string(), status: status.as_u16(), message }
}

pub(crate) fn is_not_found(response: &Response<Incoming>) -> bool {
    response.status() == StatusCode::NOT_FOUND
}

/// Percent-encodes an image name for a URL path, keeping the `/`, `:` and `@` that names are made of:
/// the engine's router takes the rest of the path as the name.
pub(crate) fn encode_path(name: &str) -> String {
    encode(name, b"-._~/:@")
}

/// Percent-encodes a query value.
pub(crate) fn encode_query(value: &str) -> String {
    encode(value, b"-._~")
}

fn encode(text: &str, keep: &[u8]) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || keep.contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_characters_of_image_names_in_paths_and_escapes_the_rest() {
        assert_eq!(encode_path("127.0.0.1:5055/base/busybox:1"), "127.0.0.1:5055/base/busybox:1");
        assert_eq!(encode_path("a b?c#"), "a%20b%3Fc%23");
        assert_eq!(encode_query("flyte/x:tag"), "flyte%2Fx%3Atag");
    }
}
