//! The subset of BuildKit's control API messages (`moby.buildkit.v1`) flyte sends and reads, written from
//! the published field numbers. Fields flyte does not use are left out: protobuf decoders skip unknown
//! fields, and leaving them out of requests means "unset".
//!
//! LLB definitions (`pb.Definition`) travel as already-encoded bytes: an embedded message and a `bytes`
//! field look the same on the wire, so this module does not depend on the LLB types.

use std::collections::BTreeMap;

/// `moby.buildkit.v1.SolveRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SolveRequest {
    /// The build's reference: `Status` streams the progress of the solve with this reference.
    #[prost(string, tag = "1")]
    pub reference: String,
    /// The encoded `pb.Definition` to solve (absent when a frontend builds the definition).
    #[prost(bytes = "vec", optional, tag = "2")]
    pub definition: Option<Vec<u8>>,
    /// `moby`, `local` or `tar` on a Docker Engine; `image` and more on a buildkitd.
    #[prost(string, tag = "3")]
    pub exporter: String,
    #[prost(btree_map = "string, string", tag = "4")]
    pub exporter_attrs: BTreeMap<String, String>,
    #[prost(string, tag = "5")]
    pub session: String,
    /// `dockerfile.v0` or `gateway.v0`, or empty to solve `definition` directly.
    #[prost(string, tag = "6")]
    pub frontend: String,
    #[prost(btree_map = "string, string", tag = "7")]
    pub frontend_attrs: BTreeMap<String, String>,
    #[prost(message, optional, tag = "8")]
    pub cache: Option<CacheOptions>,
    /// `network.host`, `security.insecure`.
    #[prost(string, repeated, tag = "9")]
    pub entitlements: Vec<String>,
    /// Encoded `pb.Definition`s the frontend reads by name (`dockerfile`, `context`).
    #[prost(btree_map = "string, bytes", tag = "10")]
    pub frontend_inputs: BTreeMap<String, Vec<u8>>,
}

/// `moby.buildkit.v1.CacheOptions`: the current (v0.4 and later) fields only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CacheOptions {
    #[prost(message, repeated, tag = "4")]
    pub exports: Vec<CacheOptionsEntry>,
    #[prost(message, repeated, tag = "5")]
    pub imports: Vec<CacheOptionsEntry>,
}

/// `moby.buildkit.v1.CacheOptionsEntry`: a cache backend (`registry`, `local`, `inline`) and its options.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CacheOptionsEntry {
    #[prost(string, tag = "1")]
    pub kind: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub attrs: BTreeMap<String, String>,
}

/// `moby.buildkit.v1.SolveResponse`: the exporter's results, such as `containerimage.digest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SolveResponse {
    #[prost(btree_map = "string, string", tag = "1")]
    pub exporter_response: BTreeMap<String, String>,
}

/// `moby.buildkit.v1.StatusRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {
    #[prost(string, tag = "1")]
    pub reference: String,
}

/// `moby.buildkit.v1.StatusResponse`: one batch of progress.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(message, repeated, tag = "1")]
    pub vertexes: Vec<Vertex>,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<VertexStatus>,
    #[prost(message, repeated, tag = "3")]
    pub logs: Vec<VertexLog>,
}

/// `moby.buildkit.v1.Vertex`: one step of the build, sent again each time its state changes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Vertex {
    #[prost(string, tag = "1")]
    pub digest: String,
    #[prost(string, repeated, tag = "2")]
    pub inputs: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(bool, tag = "4")]
    pub cached: bool,
    #[prost(message, optional, tag = "5")]
    pub started: Option<Timestamp>,
    #[prost(message, optional, tag = "6")]
    pub completed: Option<Timestamp>,
    #[prost(string, tag = "7")]
    pub error: String,
}

/// `moby.buildkit.v1.VertexStatus`: a counter inside a step, such as bytes of a layer pulled.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VertexStatus {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub vertex: String,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(int64, tag = "4")]
    pub current: i64,
    #[prost(int64, tag = "5")]
    pub total: i64,
    #[prost(message, optional, tag = "6")]
    pub timestamp: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub started: Option<Timestamp>,
    #[prost(message, optional, tag = "8")]
    pub completed: Option<Timestamp>,
}

/// `moby.buildkit.v1.VertexLog`: a chunk of a step's output, not split at lines.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VertexLog {
    #[prost(string, tag = "1")]
    pub vertex: String,
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Timestamp>,
    /// 1 for stdout, 2 for stderr.
    #[prost(int64, tag = "3")]
    pub stream: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub msg: Vec<u8>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// The time from `self` to `later`, or `None` when `later` is earlier.
    pub fn until(self, later: Timestamp) -> Option<std::time::Duration> {
        let nanos = (later.seconds - self.seconds) as i128 * 1_000_000_000 + (later.nanos - self.nanos) as i128;
        u64::try_from(nanos).ok().map(std::time::Duration::from_nanos)
    }
}

/// `moby.buildkit.v1.ListWorkersRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListWorkersRequest {
    /// containerd-style filters; empty lists every worker.
    #[prost(string, repeated, tag = "1")]
    pub filter: Vec<String>,
}

/// `moby.buildkit.v1.ListWorkersResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListWorkersResponse {
    #[prost(message, repeated, tag = "1")]
    pub record: Vec<WorkerRecord>,
}

/// `moby.buildkit.v1.types.WorkerRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkerRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub labels: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "3")]
    pub platforms: Vec<Platform>,
}

/// `pb.Platform`: the LLB module's, the same message in both APIs.
pub use crate::image::llb::pb::Platform;
