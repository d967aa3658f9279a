//! The one error type of the engine client: each variant names the address or call that failed, and
//! [`EngineError::help`] says what the user can do about it.

use std::io;

/// What went wrong talking to a Docker Engine or a buildkitd.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `DOCKER_HOST` or `BUILDKIT_HOST` holds something this client cannot dial.
    #[error("{variable}={value:?} is not an address flyte can use: {reason}")]
    BadAddress { variable: &'static str, value: String, reason: String },

    /// The socket is missing, refused the connection or could not be opened.
    #[error("cannot reach the {daemon} at {address}: {source}")]
    Connect { daemon: &'static str, address: String, source: io::Error },

    /// An Engine API call while `BUILDKIT_HOST` selects a standalone buildkitd, which has no Engine API.
    #[error("{operation} needs a Docker Engine, but BUILDKIT_HOST selects the buildkitd at {address}")]
    NeedsDockerEngine { operation: String, address: String },

    /// The connection broke or the reply was not HTTP.
    #[error("{operation} failed talking to {address}: {detail}")]
    Transport { operation: String, address: String, detail: String },

    /// The engine answered with an error status.
    #[error("{operation}: the engine answered {status}: {message}")]
    Api { operation: String, status: u16, message: String },

    /// The named image is not in the engine's image store.
    #[error("{operation}: the engine has no image {name:?}")]
    NoSuchImage { operation: String, name: String },

    /// `POST /grpc` did not switch protocols, so the engine has no BuildKit to offer.
    #[error("the engine at {address} did not open BuildKit's gRPC API: {status_line}")]
    Upgrade { address: String, status_line: String },

    /// A gRPC call ended with a non-zero status.
    #[error("BuildKit's {method} failed ({code}): {message}")]
    Grpc { method: &'static str, code: GrpcCode, message: String },

    /// A message would exceed what the other side accepts.
    #[error("BuildKit's {method}: a {size}-byte message exceeds the {limit}-byte limit")]
    MessageTooLarge { method: &'static str, size: usize, limit: usize },

    /// A reply could not be decoded as the message it should be.
    #[error("BuildKit's {method} sent a reply flyte cannot read: {detail}")]
    Decode { method: &'static str, detail: String },

    /// A local file could not be read (the tar given to `image_load`).
    #[error("{context}: {source}")]
    File { context: String, source: io::Error },

    /// The build ran and one of its steps failed.
    #[error("{}", solve_failed_text(.step.as_deref(), .message, .log_tail))]
    SolveFailed { step: Option<String>, message: String, log_tail: Vec<String> },
}

impl EngineError {
    /// One line saying what to do next.
    pub fn help(&self) -> String {
        match self {
            EngineError::BadAddress { .. } => {
                "use unix:///PATH/TO/SOCKET or tcp://HOST:PORT (plain, no TLS)".to_string()
            }
            EngineError::Connect { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
                "run as a user that may open the socket (the docker group), or point DOCKER_HOST elsewhere".to_string()
            }
            EngineError::Connect { .. } => "start dockerd, or set DOCKER_HOST to a running engine's socket \
                 (or BUILDKIT_HOST to a standalone buildkitd)"
                .to_string(),
            EngineError::NeedsDockerEngine { .. } => {
                "unset BUILDKIT_HOST and point DOCKER_HOST at a Docker Engine for this command".to_string()
            }
            EngineError::Transport { .. } => {
                "check that the daemon is healthy (its log says why it hung up)".to_string()
            }
            EngineError::Api { .. } => "the engine's message above says why; its log may say more".to_string(),
            EngineError::NoSuchImage { .. } => "build or pull the image first".to_string(),
            EngineError::Upgrade { .. } => {
                "use a Docker Engine 18.09 or newer with BuildKit, or set BUILDKIT_HOST to a buildkitd".to_string()
            }
            EngineError::Grpc { .. } => "BuildKit's message above says why; the daemon's log may say more".to_string(),
            EngineError::MessageTooLarge { .. } => {
                "make the build definition smaller (large inline files belong in a context, not in the LLB)".to_string()
            }
            EngineError::Decode { .. } => {
                "the daemon may be a version flyte does not know; please report it".to_string()
            }
            EngineError::File { .. } => "check that the file exists and is readable".to_string(),
            EngineError::SolveFailed { .. } => "fix the failing step (its output is above) and build again".to_string(),
        }
    }
}

fn solve_failed_text(step: Option<&str>, message: &str, log_tail: &[String]) -> String {
    let mut text = match step {
        Some(step) => format!("build step \"{step}\" failed: {message}"),
        None => format!("the build failed: {message}"),
    };
    for line in log_tail {
        text.push_str("\n  | ");
        text.push_str(line);
    }
    text
}

/// gRPC status codes, named as the gRPC specification names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcCode(pub u32);

impl GrpcCode {
    pub const CANCELLED: GrpcCode = GrpcCode(1);
    pub const UNKNOWN: GrpcCode = GrpcCode(2);
    pub const UNIMPLEMENTED: GrpcCode = GrpcCode(12);
    pub const INTERNAL: GrpcCode = GrpcCode(13);

    pub fn name(self) -> &'static str {
        const NAMES: [&str; 17] = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        NAMES.get(self.0 as usize).copied().unwrap_or("UNKNOWN_CODE")
    }
}

impl std::fmt::Display for GrpcCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}
