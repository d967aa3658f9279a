//! The registry client's one error type: what failed, against which registry or repository, and (through
//! [`RegistryError::help`]) what to do about it. No variant ever holds a secret: credentials, tokens and
//! helper output stay out of every message.

use std::path::PathBuf;
use std::time::Duration;

/// Whether an operation reads from a repository or writes to it; the words of the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

impl Access {
    /// "pull from" / "push to", for "not authorised to …".
    pub fn phrase(self) -> &'static str {
        match self {
            Access::Pull => "pull from",
            Access::Push => "push to",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("\"{reference}\" is not a valid image reference: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("cannot read the Docker config {}: {message}", path.display())]
    DockerConfig { path: PathBuf, message: String },
    #[error("the credential helper docker-credential-{helper} failed for {registry}: {message}")]
    CredentialHelper { helper: String, registry: String, message: String },
    /// The registry (or its token service) refused the credentials, or there were none.
    #[error("not authorised to {} {target} ({status} {})", access.phrase(), reason(*status))]
    Unauthorized { access: Access, target: String, registry: String, status: u16, credentials_file: Option<PathBuf> },
    #[error("{what} is not in {target}")]
    NotFound { what: String, target: String },
    /// No connection could be made at all (refused, no route, name not resolved, TLS handshake failed).
    #[error("cannot reach the registry {registry} ({url}): {cause}")]
    Unreachable { registry: String, url: String, cause: String },
    /// A connection was made but broke or timed out.
    #[error("{operation} failed: the connection to {registry} broke: {cause}")]
    Connection { operation: String, registry: String, cause: String },
    /// Any other unexpected answer; `detail` is the registry's own error message, shortened.
    #[error("{operation} failed: {registry} answered {status} {}{detail}", reason(*status))]
    Status { operation: String, registry: String, status: u16, detail: String, retry_after: Option<Duration> },
    #[error("{operation}: expected the digest {expected}, got {actual}")]
    DigestMismatch { operation: String, expected: String, actual: String },
    #[error("cannot read the layer {}: {source}", path.display())]
    Layer { path: PathBuf, source: std::io::Error },
    #[error("the layer {} has {actual} bytes, not the {expected} its descriptor says", path.display())]
    LayerChanged { path: PathBuf, expected: u64, actual: u64 },
    #[error("{reference}: {message}")]
    Manifest { reference: String, message: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

impl RegistryError {
    /// What the user can do next.
    pub fn help(&self) -> String {
        match self {
            RegistryError::InvalidReference { .. } => {
                "references look like HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]".to_string()
            }
            RegistryError::DockerConfig { .. } => {
                "fix the file, or point DOCKER_CONFIG at a folder with a valid config.json".to_string()
            }
            RegistryError::CredentialHelper { helper, .. } => format!(
                "check that docker-credential-{helper} is installed and on PATH, or remove it from \
                 `credsStore`/`credHelpers` in the Docker config"
            ),
            RegistryError::Unauthorized { registry, credentials_file, .. } => {
                let file = credentials_file
                    .as_ref()
                    .map_or_else(|| "~/.docker/config.json".to_string(), |path| path.display().to_string());
                format!("log in with `docker login {registry}` or check the credentials in {file}")
            }
            RegistryError::NotFound { .. } => "check the repository, tag and digest; push the image first".to_string(),
            RegistryError::Unreachable { registry, .. } => format!(
                "check that the registry {registry} is running and reachable, or choose another one with \
                 --registry or FLYTE_REGISTRY"
            ),
            RegistryError::Connection { .. } => {
                "the registry kept failing; check its health and the network, then run the command again".to_string()
            }
            RegistryError::Status { status, .. } if *status == 429 || *status >= 500 => {
                "the registry kept failing; check its health, then run the command again".to_string()
            }
            RegistryError::Status { .. } => "the registry refused the request; its message above says why".to_string(),
            RegistryError::DigestMismatch { .. } => {
                "something between here and the registry altered the data; run the command again".to_string()
            }
            RegistryError::Layer { .. } | RegistryError::LayerChanged { .. } => {
                "the build output changed or vanished; build the image again".to_string()
            }
            RegistryError::Manifest { .. } => "check that the reference names a container image".to_string(),
            RegistryError::Client(_) => "check the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)".to_string(),
        }
    }

    /// True for failures worth another attempt: 5xx, 429, refused or broken connections, timeouts.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } | RegistryError::Connection { .. } => true,
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// How long the registry asked to be left alone (a 429's or 503's `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The reason phrase of a status code, for messages ("401 Unauthorized").
fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|code| code.canonical_reason()).unwrap_or("")
}

/// An error and its causes in one line: reqwest's own message alone ("error sending request") hides
/// the useful part ("Connection refused").
pub(crate) fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> RegistryError {
        RegistryError::Status {
            operation: "upload".into(),
            registry: "r".into(),
            status: code,
            detail: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn server_errors_rate_limits_and_broken_connections_are_transient_and_other_refusals_are_not() {
        for code in [500, 502, 503, 504, 429] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 403, 404, 405, 409, 412] {
            assert!(!status(code).is_transient(), "{code}");
        }
        let broken = RegistryError::Connection { operation: "o".into(), registry: "r".into(), cause: "reset".into() };
        assert!(broken.is_transient());
        let refused = RegistryError::Unauthorized {
            access: Access::Push,
            target: "r/x".into(),
            registry: "r".into(),
            status: 401,
            credentials_file: None,
        };
        assert!(!refused.is_transient());
    }

    #[test]
    fn an_unauthorised_push_says_where_and_how_to_log_in() {
        let error = RegistryError::Unauthorized {
            access: Access::Push,
            target: "127.0.0.1:5055/x/y".into(),
            registry: "127.0.0.1:5055".into(),
            status: 401,
            credentials_file: Some(PathBuf::from("/home/u/.docker/config.json")),
        };
        assert_eq!(error.to_string(), "not authorised to push to 127.0.0.1:5055/x/y (401 Unauthorized)");
        assert_eq!(
            error.help(),
            "log in with `docker login 127.0.0.1:5055` or check the credentials in /home/u/.docker/config.json"
        );
    }
}
