//! Addresses and sockets: parses `unix://PATH` and `tcp://HOST:PORT`, dials them, and turns a fresh engine
//! connection into BuildKit's HTTP/2 with the `POST /grpc` upgrade.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use super::error::EngineError;

/// How long a TCP dial may take before the daemon counts as unreachable (a unix socket answers at once).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A reply head longer than this is not the engine's 101.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Where a daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl Address {
    /// Parses the value of `variable` (named in the error).
    pub fn parse(variable: &'static str, value: &str) -> Result<Address, EngineError> {
        let bad =
            |reason: &str| EngineError::BadAddress { variable, value: value.to_string(), reason: reason.to_string() };
        if let Some(path) = value.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad("the socket path must be absolute (unix:///path/to/socket)"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = value.strip_prefix("tcp://") {
            let authority = rest.trim_end_matches('/');
            let Some((host, port)) = authority.rsplit_once(':') else {
                return Err(bad("a tcp address needs a port (tcp://HOST:PORT)"));
            };
            let port = port.parse::<u16>().map_err(|_| bad("the port is not a number from 0 to 65535"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || authority.contains('/') {
                return Err(bad("write it as tcp://HOST:PORT"));
            }
            return Ok(Address::Tcp { host: host.to_string(), port });
        }
        match value.split_once("://") {
            Some((scheme, _)) => Err(bad(&format!("the {scheme}:// scheme is not supported (TLS and ssh are not)"))),
            None => Err(bad("it needs a scheme: unix:// or tcp://")),
        }
    }

    /// The value of the HTTP `Host` header: the engine ignores it on a unix socket, but HTTP/1.1 requires it.
    pub(crate) fn host_header(&self) -> String {
        match self {
            Address::Unix(_) => "docker".to_string(),
            Address::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Address::Tcp { host, port } => format!("{host}:{port}"),
        }
    }

    /// Opens a fresh connection; `daemon` names what should be listening, for the error.
    pub(crate) async fn connect(&self, daemon: &'static str) -> Result<Socket, EngineError> {
        let failed = |source: io::Error| EngineError::Connect { daemon, address: self.to_string(), source };
        match self {
            Address::Unix(path) => UnixStream::connect(path).await.map(Socket::Unix).map_err(failed),
            Address::Tcp { host, port } => {
                let dial = TcpStream::connect((host.as_str(), *port));
                match tokio::time::timeout(CONNECT_TIMEOUT, dial).await {
                    Ok(Ok(stream)) => {
                        // gRPC sends many small frames; Nagle's delay would add latency to each reply.
                        let _ = stream.set_nodelay(true);
                        Ok(Socket::Tcp(stream))
                    }
                    Ok(Err(error)) => Err(failed(error)),
                    Err(_) => Err(failed(io::Error::new(io::ErrorKind::TimedOut, "no answer within 10 s"))),
                }
            }
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(formatter, "unix://{}", path.display()),
            Address::Tcp { .. } => write!(formatter, "tcp://{}", self.host_header()),
        }
    }
}

/// Sends `POST /grpc` asking to switch to h2c and reads the reply head without reading past it: HTTP/2
/// frames from the engine may follow the 101 in the same packet, and they belong to the h2 client.
pub(crate) async fn upgrade_to_h2c(socket: &mut Socket, address: &Address) -> Result<(), EngineError> {
    let transport = |error: io::Error| EngineError::Transport {
        operation: "opening BuildKit's gRPC API".to_string(),
        address: address.to_string(),
        detail: error.to_string(),
    };
    let request = format!(
        "POST /grpc HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
        address.host_header()
    );
    socket.write_all(request.as_bytes()).await.map_err(transport)?;
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD_BYTES {
            return Err(transport(io::Error::new(io::ErrorKind::InvalidData, "the reply head has no end")));
        }
        head.push(socket.read_u8().await.map_err(transport)?);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default().trim().to_string();
    let status = status_line.split_whitespace().nth(1);
    if status != Some("101") {
        return Err(EngineError::Upgrade { address: address.to_string(), status_line });
    }
    Ok(())
}

/// A connected unix or TCP stream, so that hyper and h2 see one type.
pub(crate) enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(stream) => Pin::new(stream).poll_read(context, buffer),
            Socket::Tcp(stream) => Pin::new(stream).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, context: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Unix(stream) => Pin::new(stream).poll_write(context, data),
            Socket::Tcp(stream) => Pin::new(stream).poll_write(context, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Unix(stream) => Pin::new(stream).poll_write_vectored(context, buffers),
            Socket::Tcp(stream) => Pin::new(stream).poll_write_vectored(context, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Unix(stream) => stream.is_write_vectored(),
            Socket::Tcp(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(stream) => Pin::new(stream).poll_flush(context),
            Socket::Tcp(stream) => Pin::new(stream).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Unix(stream) => Pin::new(stream).poll_shutdown(context),
            Socket::Tcp(stream) => Pin::new(stream).poll_shutdown(context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_schemes_and_refuses_the_rest_with_a_reason() {
        let parse = |value: &str| Address::parse("DOCKER_HOST", value);
        assert_eq!(parse("unix:///var/run/docker.sock").unwrap(), Address::Unix("/var/run/docker.sock".into()));
        assert_eq!(parse("tcp://10.0.0.1:2375").unwrap(), Address::Tcp { host: "10.0.0.1".into(), port: 2375 });
        assert_eq!(parse("tcp://[::1]:1234/").unwrap().to_string(), "tcp://[::1]:1234");
        for (value, reason) in [
            ("tcp://host", "needs a port"),
            ("ssh://me@host", "ssh:// scheme is not supported"),
            ("unix://relative.sock", "absolute"),
            ("/var/run/docker.sock", "needs a scheme"),
        ] {
            let message = parse(value).unwrap_err().to_string();
            assert!(message.contains(reason) && message.contains("DOCKER_HOST"), "{value}: {message}");
        }
    }
}
