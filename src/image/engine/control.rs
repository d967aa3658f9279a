//! BuildKit's control service (`moby.buildkit.v1.Control`) over one gRPC connection: the raw `Solve`,
//! `Status` and `ListWorkers` calls. The progress-following solve is in [`super::solve`].

use sha2::{Digest, Sha256};

use super::Engine;
use super::error::EngineError;
use super::grpc::{Channel, Replies};
use super::wire::{
    ListWorkersRequest, ListWorkersResponse, SolveRequest, SolveResponse, StatusRequest, StatusResponse,
};

/// A connection to BuildKit's control service. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Control {
    pub(crate) channel: Channel,
}

impl Engine {
    /// Opens a connection to BuildKit: the engine's embedded one through `POST /grpc`, or the buildkitd.
    pub async fn control(&self) -> Result<Control, EngineError> {
        let channel = Channel::connect(self.address(), self.is_docker_engine()).await?;
        Ok(Control { channel })
    }

    /// The workers BuildKit offers: a cheap check that BuildKit answers.
    pub async fn list_workers(&self) -> Result<ListWorkersResponse, EngineError> {
        self.control().await?.list_workers().await
    }
}

impl Control {
    pub async fn list_workers(&self) -> Result<ListWorkersResponse, EngineError> {
        self.channel.unary("ListWorkers", &ListWorkersRequest::default()).await
    }

    /// `Solve` alone, without following progress; the reply comes when the build has ended.
    pub async fn solve_without_status(&self, request: &SolveRequest) -> Result<SolveResponse, EngineError> {
        self.channel.unary("Solve", request).await
    }

    /// `Status` for the solve with this reference: batches of progress until that solve ends.
    /// BuildKit waits a few seconds for a solve with the reference to start, so start this first.
    pub async fn status(&self, reference: &str) -> Result<StatusStream, EngineError> {
        let request = StatusRequest { reference: reference.to_string() };
        let replies = self.channel.start("Status", &request).await?.replies().await?;
        Ok(StatusStream { replies })
    }
}

/// The progress of one solve as BuildKit sends it.
pub struct StatusStream {
    replies: Replies<StatusResponse>,
}

impl StatusStream {
    /// The next batch, or `None` once the solve has ended.
    pub async fn next(&mut self) -> Result<Option<StatusResponse>, EngineError> {
        self.replies.next().await
    }
}

/// A reference no other solve uses: `Status` finds a solve by it, so it must not collide across
/// processes, and it carries no meaning, so a hash of time, process and a counter does.
pub fn new_reference() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(now.as_nanos().to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    format!("flyte-{}", &hex::encode(hasher.finalize())[..24])
}
