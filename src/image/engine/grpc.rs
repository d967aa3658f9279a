//! gRPC over an `h2` client, by hand: BuildKit needs three calls, which do not earn a gRPC framework.
//! Takes an address (and whether to upgrade through the engine's `POST /grpc`), gives calls that send one
//! length-prefixed protobuf message and read replies until `grpc-status` says how the call ended.

use std::future::poll_fn;
use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::RecvStream;
use h2::client::{ResponseFuture, SendRequest};
use http::{HeaderMap, Request, header};

use super::error::{EngineError, GrpcCode};
use super::transport::{Address, upgrade_to_h2c};

/// dockerd's gRPC server keeps grpc-go's default: a larger request is refused after it has been sent.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// A reply larger than this is not something BuildKit sends to a control client.
const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// Larger windows than HTTP/2's 64 KiB default, so that a burst of progress does not wait on window updates.
const WINDOW_BYTES: u32 = 4 * 1024 * 1024;

/// The 5-byte gRPC prefix: a compressed flag and the message length (big-endian u32).
const PREFIX_BYTES: usize = 5;

/// One HTTP/2 connection to BuildKit's control service; calls share it as separate streams.
#[derive(Clone)]
pub(crate) struct Channel {
    send: SendRequest<Bytes>,
    authority: String,
    address: String,
}

impl Channel {
    /// Dials `address`; through a Docker Engine the socket first switches protocols with `POST /grpc`.
    pub(crate) async fn connect(address: &Address, through_engine: bool) -> Result<Channel, EngineError> {
        let daemon = if through_engine { "Docker Engine" } else { "buildkitd" };
        let mut socket = address.connect(daemon).await?;
        if through_engine {
            upgrade_to_h2c(&mut socket, address).await?;
        }
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(WINDOW_BYTES)
            .initial_connection_window_size(WINDOW_BYTES)
            .handshake::<_, Bytes>(socket)
            .await
            .map_err(|error| EngineError::Transport {
                operation: "starting HTTP/2 to BuildKit".to_string(),
                address: address.to_string(),
                detail: error.to_string(),
            })?;
        // The connection future moves frames; once every handle and stream is dropped it closes the
        // socket, which is also how BuildKit learns that a dropped solve is cancelled.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let authority = match address {
            Address::Unix(_) => "localhost".to_string(),
            Address::Tcp { .. } => address.host_header(),
        };
        Ok(Channel { send, authority, address: address.to_string() })
    }

    /// Sends `request` to `moby.buildkit.v1.Control/{method}` and returns the call without waiting for
    /// the reply, so that several calls can run side by side.
    pub(crate) async fn start(&self, method: &'static str, request: &impl prost::Message) -> Result<Call, EngineError> {
        let size = request.encoded_len();
        if size > MAX_REQUEST_BYTES {
            return Err(EngineError::MessageTooLarge { method, size, limit: MAX_REQUEST_BYTES });
        }
        let mut framed = BytesMut::with_capacity(PREFIX_BYTES + size);
        framed.put_u8(0);
        framed.put_u32(size as u32);
        request.encode(&mut framed).expect("BytesMut grows as needed");
        let broken = |error: h2::Error| self.broken(method, error);

        let mut send = self.send.clone().ready().await.map_err(broken)?;
        let http_request = Request::post(format!("http://{}/moby.buildkit.v1.Control/{method}", self.authority))
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers")
            .header(header::USER_AGENT, concat!("flyte/", env!("CARGO_PKG_VERSION")))
            .body(())
            .expect("a constant method, a valid path and static headers");
        let (response, mut stream) = send.send_request(http_request, false).map_err(broken)?;
        // Send no faster than the peer's flow-control window allows rather than buffer it all in h2.
        let mut remaining = framed.freeze();
        while !remaining.is_empty() {
            stream.reserve_capacity(remaining.len());
            let granted = match poll_fn(|context| stream.poll_capacity(context)).await {
                Some(granted) => granted.map_err(broken)?,
                None => return Err(self.closed(method)),
            };
            let chunk = remaining.split_to(granted.min(remaining.len()));
            stream.send_data(chunk, remaining.is_empty()).map_err(broken)?;
        }
        Ok(Call { method, response, address: self.address.clone() })
    }

    /// A unary call: one request, one reply.
    pub(crate) async fn unary<Reply: prost::Message + Default>(
        &self,
        method: &'static str,
        request: &impl prost::Message,
    ) -> Result<Reply, EngineError> {
        self.start(method, request).await?.unary().await
    }

    fn broken(&self, method: &'static str, error: h2::Error) -> EngineError {
        broken(&self.address, method, error)
    }

    fn closed(&self, method: &'static str) -> EngineError {
        EngineError::Transport {
            operation: format!("BuildKit's {method}"),
            address: self.address.clone(),
            detail: "the stream closed before the request was sent".to_string(),
        }
    }
}

fn broken(address: &str, method: &'static str, error: h2::Error) -> EngineError {
    EngineError::Transport {
        operation: format!("BuildKit's {method}"),
        address: address.to_string(),
        detail: error.to_string(),
    }
}

/// A call whose request has been sent. Dropping it (or the stream it becomes) resets the HTTP/2 stream,
/// which BuildKit takes as cancellation.
pub(crate) struct Call {
    method: &'static str,
    response: ResponseFuture,
    address: String,
}

impl Call {
    /// Waits for the reply headers and gives the stream of reply messages.
    pub(crate) async fn replies<Reply: prost::Message + Default>(self) -> Result<Replies<Reply>, EngineError> {
        let method = self.method;
        let response = self.response.await.map_err(|error| broken(&self.address, method, error))?;
        if response.status() != http::StatusCode::OK {
            let message = format!("HTTP status {} instead of a gRPC reply", response.status());
            return Err(EngineError::Grpc { method, code: GrpcCode::UNKNOWN, message });
        }
        // A call that fails before replying sends its status in the headers ("trailers-only").
        let trailers_only = response.headers().contains_key("grpc-status");
        if trailers_only {
            check_status(method, response.headers())?;
        }
        Ok(Replies {
            method,
            body: response.into_body(),
            buffer: BytesMut::new(),
            finished: trailers_only,
            address: self.address,
            reply: PhantomData,
        })
    }

    /// Exactly one reply, then a successful status.
    pub(crate) async fn unary<Reply: prost::Message + Default>(self) -> Result<Reply, EngineError> {
        let method = self.method;
        let mut replies = self.replies::<Reply>().await?;
        let reply = replies.next().await?;
        while replies.next().await?.is_some() {}
        reply.ok_or_else(|| EngineError::Decode { method, detail: "the call succeeded without a reply".to_string() })
    }
}

/// The reply messages of a call, in order.
pub(crate) struct Replies<Reply> {
    method: &'static str,
    body: RecvStream,
    buffer: BytesMut,
    finished: bool,
    address: String,
    reply: PhantomData<Reply>,
}

impl<Reply: prost::Message + Default> Replies<Reply> {
    /// The next message; `None` once the call ended with status OK, an error if it ended otherwise.
    pub(crate) async fn next(&mut self) -> Result<Option<Reply>, EngineError> {
        loop {
            if let Some(reply) = self.take_message()? {
                return Ok(Some(reply));
            }
            if self.finished {
                return self.end();
            }
            match self.body.data().await {
                Some(Ok(chunk)) => {
                    // Reading data does not reopen the window by itself: say how much was consumed.
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.buffer.extend_from_slice(&chunk);
                }
                Some(Err(error)) => return Err(broken(&self.address, self.method, error)),
                None => {
                    self.finished = true;
                    let trailers = self.body.trailers().await.map_err(|e| broken(&self.address, self.method, e))?;
                    let Some(trailers) = trailers else {
                        let detail = "the reply ended without a grpc-status".to_string();
                        return Err(EngineError::Decode { method: self.method, detail });
                    };
                    check_status(self.method, &trailers)?;
                }
            }
        }
    }

    fn take_message(&mut self) -> Result<Option<Reply>, EngineError> {
        if self.buffer.len() < PREFIX_BYTES {
            return Ok(None);
        }
        let decode_error = |detail: String| EngineError::Decode { method: self.method, detail };
        if self.buffer[0] != 0 {
            return Err(decode_error("a compressed reply, though flyte asked for none".to_string()));
        }
        let length = u32::from_be_bytes([self.buffer[1], self.buffer[2], self.buffer[3], self.buffer[4]]) as usize;
        if length > MAX_REPLY_BYTES {
            return Err(decode_error(format!("a {length}-byte reply exceeds the {MAX_REPLY_BYTES}-byte limit")));
        }
        if self.buffer.len() < PREFIX_BYTES + length {
            return Ok(None);
        }
        self.buffer.advance(PREFIX_BYTES);
        let message = self.buffer.split_to(length);
        Reply::decode(message.freeze()).map(Some).map_err(|error| decode_error(error.to_string()))
    }

    fn end(&self) -> Result<Option<Reply>, EngineError> {
        if self.buffer.is_empty() {
            Ok(None)
        } else {
            Err(EngineError::Decode { method: self.method, detail: "the reply ended inside a message".to_string() })
        }
    }
}

/// Turns a non-zero `grpc-status` into an error carrying the (percent-decoded) `grpc-message`.
fn check_status(method: &'static str, headers: &HeaderMap) -> Result<(), EngineError> {
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u32>().ok());
    match code {
        Some(0) => Ok(()),
        Some(code) => {
            let message = headers.get("grpc-message").map(|v| percent_decode(v.as_bytes())).unwrap_or_default();
            Err(EngineError::Grpc { method, code: GrpcCode(code), message })
        }
        None => Err(EngineError::Decode { method, detail: "grpc-status is missing or not a number".to_string() }),
    }
}

/// gRPC percent-encodes `grpc-message` so that any text fits in a header.
fn percent_decode(bytes: &[u8]) -> String {
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[index], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_encoded_grpc_messages_and_leaves_stray_percents() {
        assert_eq!(percent_decode(b"exit code: 3%0Afailed %E2%9C%93 100%"), "exit code: 3\nfailed \u{2713} 100%");
    }

    #[test]
    fn a_zero_status_is_success_and_any_other_carries_its_message() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", "0".parse().unwrap());
        assert!(check_status("Solve", &headers).is_ok());
        headers.insert("grpc-status", "2".parse().unwrap());
        headers.insert("grpc-message", "no%20such%20job".parse().unwrap());
        let error = check_status("Solve", &headers).unwrap_err().to_string();
        assert_eq!(error, "BuildKit's Solve failed (UNKNOWN): no such job");
    }
}
