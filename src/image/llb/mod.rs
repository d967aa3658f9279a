//! BuildKit LLB: a graph of ops (image sources, file copies, commands) built up as states, then
//! marshalled into a `Definition` that BuildKit solves. Takes ops from [`recipe`]; gives the
//! definition's bytes. Every op is encoded once and named by the sha256 of its bytes, exactly as
//! BuildKit names it, so identical specs give identical digests and BuildKit's cache hits.

pub mod pb;
pub mod recipe;

use std::collections::{BTreeMap, HashMap};

use prost::Message;
use sha2::{Digest, Sha256};

use pb::{
    Definition, ExecOp, FileAction, FileActionKind, FileOp, Input, Meta, Mount, Op, OpKind, OpMetadata, Platform,
};

/// A filesystem in the graph: empty, or output `index` of an op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Scratch,
    Output { digest: String, index: i64 },
}

/// What a command step runs, and with what.
pub struct Run<'a> {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: &'a str,
    /// Empty runs as the image's default (root); never "root" by name, which fails without /etc/passwd.
    pub user: &'a str,
    pub host_network: bool,
    /// Read-only mounts of other states: (state, path inside the state, where it appears).
    pub mounts: Vec<(State, String, String)>,
    /// Cache mounts kept between builds (package caches): (id, where).
    pub caches: Vec<(String, String)>,
}

/// One copy from a state into another.
pub struct Copy<'a> {
    pub src: &'a str,
    pub dest: &'a str,
    /// Copy a folder's contents rather than the folder itself.
    pub contents_only: bool,
}

struct Vertex {
    bytes: Vec<u8>,
    name: String,
    /// Digests of the ops this one reads, to keep only what the result needs.
    inputs: Vec<String>,
}

/// The ops added so far, in an order where every op follows its inputs.
pub struct Graph {
    platform: Platform,
    vertices: Vec<Vertex>,
    by_digest: HashMap<String, usize>,
}

/// `sha256:<hex>` of the bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Graph {
    pub fn new(platform: Platform) -> Graph {
        Graph { platform, vertices: Vec::new(), by_digest: HashMap::new() }
    }

    /// Adds an op (once: an identical op is the same vertex) and returns its digest.
    fn add(&mut self, inputs: Vec<Input>, kind: OpKind, name: &str) -> String {
        let input_digests = inputs.iter().map(|i| i.digest.clone()).collect();
        let op = Op { inputs, op: Some(kind), platform: Some(self.platform.clone()) };
        let bytes = op.encode_to_vec();
        let digest = digest_of(&bytes);
        if !self.by_digest.contains_key(&digest) {
            self.by_digest.insert(digest.clone(), self.vertices.len());
            self.vertices.push(Vertex { bytes, name: name.to_string(), inputs: input_digests });
        }
        digest
    }

    /// An image from a registry or the engine's store; `reference` fully qualified.
    pub fn image(&mut self, reference: &str, name: &str) -> State {
        let mut attrs = BTreeMap::new();
        // Images flyte loads into the engine (build inputs) exist only there; the engine's default
        // mode looks locally first, then in the registry.
        attrs.insert("image.resolvemode".to_string(), "default".to_string());
        let source = pb::SourceOp { identifier: format!("docker-image://{reference}"), attrs };
        let digest = self.add(Vec::new(), OpKind::Source(source), name);
        State::Output { digest, index: 0 }
    }

    /// Runs a command on `root`; the result is the changed root.
    pub fn exec(&mut self, root: &State, run: Run, name: &str) -> State {
        let mut inputs = Vec::new();
        let root_input = input_of(&mut inputs, root);
        let mut mounts = vec![Mount { input: root_input, dest: "/".into(), output: 0, ..Default::default() }];
        for (state, selector, dest) in &run.mounts {
            let input = input_of(&mut inputs, state);
            mounts.push(Mount {
                input,
                selector: selector.clone(),
                dest: dest.clone(),
                output: -1,
                readonly: true,
                ..Default::default()
            });
        }
        for (id, dest) in &run.caches {
            mounts.push(Mount {
                input: -1,
                dest: dest.clone(),
                output: -1,
                mount_type: pb::MountType::Cache as i32,
                cache_opt: Some(pb::CacheOpt { id: id.clone(), sharing: 2 }),
                ..Default::default()
            });
        }
        let meta = Meta { args: run.args, env: run.env, cwd: run.cwd.to_string(), user: run.user.to_string() };
        let network = if run.host_network { pb::NetMode::Host } else { pb::NetMode::Unset };
        let exec = ExecOp { meta: Some(meta), mounts, network: network as i32 };
        let digest = self.add(inputs, OpKind::Exec(exec), name);
        State::Output { digest, index: 0 }
    }

    /// Copies `copy.src` of `from` to `copy.dest` on top of `onto`, keeping modes, owned by root.
    pub fn copy(&mut self, onto: &State, from: &State, copy: Copy, name: &str) -> State {
        let mut inputs = Vec::new();
        let input = input_of(&mut inputs, onto);
        let secondary_input = input_of(&mut inputs, from);
        let action = pb::FileActionCopy {
            src: copy.src.to_string(),
            dest: copy.dest.to_string(),
            mode: -1,
            follow_symlink: true,
            dir_copy_contents: copy.contents_only,
            create_dest_path: true,
            timestamp: -1,
            ..Default::default()
        };
        self.file(inputs, input, secondary_input, FileActionKind::Copy(action), name)
    }

    /// Writes one file (and its parent folders must exist: see [`Graph::mkdir`]).
    pub fn mkfile(&mut self, onto: &State, path: &str, mode: i32, data: Vec<u8>, name: &str) -> State {
        let mut inputs = Vec::new();
        let input = input_of(&mut inputs, onto);
        let action = pb::FileActionMkFile { path: path.to_string(), mode, data, owner: None, timestamp: -1 };
        self.file(inputs, input, -1, FileActionKind::MkFile(action), name)
    }

    pub fn mkdir(&mut self, onto: &State, path: &str, name: &str) -> State {
        let mut inputs = Vec::new();
        let input = input_of(&mut inputs, onto);
        let action =
            pb::FileActionMkDir { path: path.to_string(), mode: 0o755, make_parents: true, owner: None, timestamp: -1 };
        self.file(inputs, input, -1, FileActionKind::MkDir(action), name)
    }

    fn file(&mut self, inputs: Vec<Input>, input: i64, secondary: i64, kind: FileActionKind, name: &str) -> State {
        let action = FileAction { input, secondary_input: secondary, output: 0, action: Some(kind) };
        let digest = self.add(inputs, OpKind::File(FileOp { actions: vec![action] }), name);
        State::Output { digest, index: 0 }
    }

    /// The definition whose result is `result`: only the ops it needs, inputs first, then the
    /// terminal op that names the result by its one input.
    pub fn definition(&self, result: &State) -> Definition {
        let mut needed = vec![false; self.vertices.len()];
        let mut stack: Vec<&str> = match result {
            State::Scratch => Vec::new(),
            State::Output { digest, .. } => vec![digest.as_str()],
        };
        while let Some(digest) = stack.pop() {
            let index = self.by_digest[digest];
            if !needed[index] {
                needed[index] = true;
                stack.extend(self.vertices[index].inputs.iter().map(String::as_str));
            }
        }
        let mut definition = Definition::default();
        for (vertex, _) in self.vertices.iter().zip(&needed).filter(|(_, needed)| **needed) {
            let mut description = BTreeMap::new();
            description.insert("llb.customname".to_string(), vertex.name.clone());
            definition.metadata.insert(digest_of(&vertex.bytes), OpMetadata { description, ..Default::default() });
            definition.def.push(vertex.bytes.clone());
        }
        let mut terminal = Op::default();
        if let State::Output { digest, index } = result {
            terminal.inputs.push(Input { digest: digest.clone(), index: *index });
        }
        let bytes = terminal.encode_to_vec();
        definition.metadata.insert(digest_of(&bytes), OpMetadata::default());
        definition.def.push(bytes);
        definition
    }
}

/// The index of `state` among `inputs` (added if new), or -1 for an empty filesystem.
fn input_of(inputs: &mut Vec<Input>, state: &State) -> i64 {
    match state {
        State::Scratch => -1,
        State::Output { digest, index } => {
            let position = inputs.iter().position(|i| &i.digest == digest && i.index == *index);
            let position = position.unwrap_or_else(|| {
                inputs.push(Input { digest: digest.clone(), index: *index });
                inputs.len() - 1
            });
            position as i64
        }
    }
}

/// The op names in a definition, in order, for `--dry-run` and tests.
pub fn describe(definition: &Definition) -> Vec<(String, String)> {
    definition
        .def
        .iter()
        .map(|bytes| {
            let digest = digest_of(bytes);
            let name = definition
                .metadata
                .get(&digest)
                .and_then(|m| m.description.get("llb.customname"))
                .cloned()
                .unwrap_or_default();
            (digest, name)
        })
        .collect()
}
