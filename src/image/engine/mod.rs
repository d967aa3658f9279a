//! The client for a Docker Engine and for BuildKit: takes an address (`DOCKER_HOST`, or `BUILDKIT_HOST`
//! for a standalone buildkitd) and gives the Engine API calls flyte needs around images ([`images`]) and
//! BuildKit's control API ([`Control`]: `Solve` with progress events, `Status`, `ListWorkers`).
//!
//! Through a Docker Engine, BuildKit is reached with `POST /grpc` upgraded to HTTP/2 on the engine's
//! socket; a buildkitd serves the same gRPC service on its own socket and has no Engine API, so the
//! image calls refuse to run against one. Every call opens its own connection: both daemons are local
//! or close, and a connection costs a millisecond or two.

mod control;
mod error;
mod grpc;
mod http;
mod images;
mod solve;
mod transport;
pub mod wire;

pub use control::{Control, StatusStream, new_reference};
pub use error::{EngineError, GrpcCode};
pub use grpc::MAX_REQUEST_BYTES;
pub use images::{ImageInspect, ImageTar};
pub use solve::{LOG_TAIL_LINES, StatusEvent};
pub use transport::Address;
pub use wire::{SolveRequest, SolveResponse};

/// The engine's socket when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Which daemon an [`Engine`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    /// A Docker Engine: the Engine API plus its embedded BuildKit behind `POST /grpc`.
    DockerEngine,
    /// A standalone buildkitd: BuildKit's gRPC only.
    Buildkitd,
}

/// A daemon to talk to. Holds only the address: every call connects afresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Engine {
    address: Address,
    daemon: Daemon,
}

impl Engine {
    /// `BUILDKIT_HOST` when set, else `DOCKER_HOST`, else the default engine socket.
    pub fn from_env() -> Result<Engine, EngineError> {
        let read = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        Engine::from_variables(read("BUILDKIT_HOST").as_deref(), read("DOCKER_HOST").as_deref())
    }

    /// [`Engine::from_env`] with the variables' values given.
    pub fn from_variables(buildkit_host: Option<&str>, docker_host: Option<&str>) -> Result<Engine, EngineError> {
        match (buildkit_host, docker_host) {
            (Some(buildkit_host), _) => Engine::buildkitd(buildkit_host),
            (None, Some(docker_host)) => Engine::docker(docker_host),
            (None, None) => Engine::docker(DEFAULT_DOCKER_HOST),
        }
    }

    /// A Docker Engine at `unix://PATH` or `tcp://HOST:PORT`.
    pub fn docker(address: &str) -> Result<Engine, EngineError> {
        Ok(Engine { address: Address::parse("DOCKER_HOST", address)?, daemon: Daemon::DockerEngine })
    }

    /// A standalone buildkitd at `unix://PATH` or `tcp://HOST:PORT`.
    pub fn buildkitd(address: &str) -> Result<Engine, EngineError> {
        Ok(Engine { address: Address::parse("BUILDKIT_HOST", address)?, daemon: Daemon::Buildkitd })
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    pub fn daemon(&self) -> Daemon {
        self.daemon
    }

    fn is_docker_engine(&self) -> bool {
        self.daemon == Daemon::DockerEngine
    }

    /// The address for an Engine API call, or the error saying a buildkitd cannot answer it.
    fn engine_api(&self, operation: &str) -> Result<&Address, EngineError> {
        match self.daemon {
            Daemon::DockerEngine => Ok(&self.address),
            Daemon::Buildkitd => Err(EngineError::NeedsDockerEngine {
                operation: operation.to_string(),
                address: self.address.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_host_wins_and_the_default_is_the_usual_engine_socket() {
        let engine = Engine::from_variables(Some("tcp://127.0.0.1:1234"), Some("unix:///d.sock")).unwrap();
        assert_eq!((engine.daemon(), engine.address().to_string()), (Daemon::Buildkitd, "tcp://127.0.0.1:1234".into()));
        let engine = Engine::from_variables(None, None).unwrap();
        assert_eq!((engine.daemon(), engine.address().to_string()), (Daemon::DockerEngine, DEFAULT_DOCKER_HOST.into()));
    }

    #[tokio::test]
    async fn engine_api_calls_refuse_a_buildkitd_and_say_why() {
        let engine = Engine::buildkitd("unix:///nowhere/buildkitd.sock").unwrap();
        let error = engine.image_inspect("busybox").await.unwrap_err();
        assert!(matches!(error, EngineError::NeedsDockerEngine { .. }));
        assert!(error.to_string().contains("needs a Docker Engine"), "{error}");
        assert!(error.help().contains("DOCKER_HOST"));
    }
}
