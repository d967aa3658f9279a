//! The subset of BuildKit's LLB wire format (package `pb`) that flyte emits, as prost messages written
//! from the published field numbers. Maps are `BTreeMap`s so that encoding is deterministic: an op's
//! digest is the sha256 of its exact bytes, and the same spec must give the same digests (cache hits).

use std::collections::BTreeMap;

/// One vertex of the graph: its inputs (edges to other ops' outputs) and what it does.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Op {
    #[prost(message, repeated, tag = "1")]
    pub inputs: Vec<Input>,
    #[prost(oneof = "OpKind", tags = "2, 3, 4")]
    pub op: Option<OpKind>,
    #[prost(message, optional, tag = "10")]
    pub platform: Option<Platform>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OpKind {
    #[prost(message, tag = "2")]
    Exec(ExecOp),
    #[prost(message, tag = "3")]
    Source(SourceOp),
    #[prost(message, tag = "4")]
    File(FileOp),
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Platform {
    #[prost(string, tag = "1")]
    pub architecture: String,
    #[prost(string, tag = "2")]
    pub os: String,
    #[prost(string, tag = "3")]
    pub variant: String,
}

/// An edge: output `index` of the op whose marshalled bytes hash to `digest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Input {
    #[prost(string, tag = "1")]
    pub digest: String,
    #[prost(int64, tag = "2")]
    pub index: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecOp {
    #[prost(message, optional, tag = "1")]
    pub meta: Option<Meta>,
    #[prost(message, repeated, tag = "2")]
    pub mounts: Vec<Mount>,
    #[prost(enumeration = "NetMode", tag = "3")]
    pub network: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Meta {
    #[prost(string, repeated, tag = "1")]
    pub args: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub env: Vec<String>,
    #[prost(string, tag = "3")]
    pub cwd: String,
    #[prost(string, tag = "4")]
    pub user: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
pub enum NetMode {
    /// BuildKit's sandbox network.
    Unset = 0,
    Host = 1,
    None = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
pub enum MountType {
    Bind = 0,
    Secret = 1,
    Ssh = 2,
    Cache = 3,
    Tmpfs = 4,
}

/// `input` -1 mounts an empty filesystem; `output` -1 marks a mount whose changes are discarded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mount {
    #[prost(int64, tag = "1")]
    pub input: i64,
    #[prost(string, tag = "2")]
    pub selector: String,
    #[prost(string, tag = "3")]
    pub dest: String,
    #[prost(int64, tag = "4")]
    pub output: i64,
    #[prost(bool, tag = "5")]
    pub readonly: bool,
    #[prost(enumeration = "MountType", tag = "6")]
    pub mount_type: i32,
    #[prost(message, optional, tag = "20")]
    pub cache_opt: Option<CacheOpt>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CacheOpt {
    #[prost(string, tag = "1")]
    pub id: String,
    /// 0 shared, 1 private, 2 locked.
    #[prost(int32, tag = "2")]
    pub sharing: i32,
}

/// A source: `docker-image://REF`, `local://NAME`, `git://…`, `https://…`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SourceOp {
    #[prost(string, tag = "1")]
    pub identifier: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub attrs: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FileOp {
    #[prost(message, repeated, tag = "2")]
    pub actions: Vec<FileAction>,
}

/// `input`/`secondary_input` index the op's inputs (-1: an empty filesystem); `output` 0 is the result.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileAction {
    #[prost(int64, tag = "1")]
    pub input: i64,
    #[prost(int64, tag = "2")]
    pub secondary_input: i64,
    #[prost(int64, tag = "3")]
    pub output: i64,
    #[prost(oneof = "FileActionKind", tags = "4, 5, 6")]
    pub action: Option<FileActionKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum FileActionKind {
    #[prost(message, tag = "4")]
    Copy(FileActionCopy),
    #[prost(message, tag = "5")]
    MkFile(FileActionMkFile),
    #[prost(message, tag = "6")]
    MkDir(FileActionMkDir),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FileActionCopy {
    #[prost(string, tag = "1")]
    pub src: String,
    #[prost(string, tag = "2")]
    pub dest: String,
    #[prost(message, optional, tag = "3")]
    pub owner: Option<ChownOpt>,
    /// -1 keeps the source's permission bits.
    #[prost(int32, tag = "4")]
    pub mode: i32,
    #[prost(bool, tag = "5")]
    pub follow_symlink: bool,
    #[prost(bool, tag = "6")]
    pub dir_copy_contents: bool,
    #[prost(bool, tag = "8")]
    pub create_dest_path: bool,
    #[prost(bool, tag = "9")]
    pub allow_wildcard: bool,
    #[prost(bool, tag = "10")]
    pub allow_empty_wildcard: bool,
    /// Seconds since the epoch for every copied file; -1 keeps the source's times.
    #[prost(int64, tag = "11")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FileActionMkFile {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(int32, tag = "2")]
    pub mode: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
    #[prost(message, optional, tag = "4")]
    pub owner: Option<ChownOpt>,
    #[prost(int64, tag = "5")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FileActionMkDir {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(int32, tag = "2")]
    pub mode: i32,
    #[prost(bool, tag = "3")]
    pub make_parents: bool,
    #[prost(message, optional, tag = "4")]
    pub owner: Option<ChownOpt>,
    #[prost(int64, tag = "5")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChownOpt {
    #[prost(message, optional, tag = "1")]
    pub user: Option<UserOpt>,
    #[prost(message, optional, tag = "2")]
    pub group: Option<UserOpt>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UserOpt {
    #[prost(oneof = "UserOptKind", tags = "1, 2")]
    pub user: Option<UserOptKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum UserOptKind {
    #[prost(message, tag = "1")]
    ByName(NamedUserOpt),
    #[prost(uint32, tag = "2")]
    ById(u32),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NamedUserOpt {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int64, tag = "2")]
    pub input: i64,
}

/// The graph: every op's marshalled bytes, inputs before the ops that use them, the last op naming
/// the result; and metadata for each op by digest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Definition {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub def: Vec<Vec<u8>>,
    #[prost(btree_map = "string, message", tag = "2")]
    pub metadata: BTreeMap<String, OpMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct OpMetadata {
    #[prost(bool, tag = "1")]
    pub ignore_cache: bool,
    /// `llb.customname` names the step in progress output.
    #[prost(btree_map = "string, string", tag = "2")]
    pub description: BTreeMap<String, String>,
    #[prost(btree_map = "string, bool", tag = "5")]
    pub caps: BTreeMap<String, bool>,
}
