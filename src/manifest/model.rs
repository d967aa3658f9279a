//! The resolved manifest for one domain: defaults applied, overlay merged, every value checked.
//!
//! Later stages take these types as final: no spans, nothing left to re-check. `Option` appears only
//! where "not set" is a real state (no registry, no health check). Field names are the manifest's keys,
//! so the serialised form reads like the manifest and `flyte config` can find each value's origin.

use std::collections::BTreeMap;
use std::path::PathBuf;

use compact_str::CompactString;
use serde::Serialize;

pub use super::sorted_map::SortedMap;

pub use super::raw::{CopyStyle, EnvKind, ScalingMetric, TaskType};
pub use super::units::{Duration, Quantity};

#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub project: Project,
    /// The domain this manifest was resolved for.
    pub domain: CompactString,
    pub images: BTreeMap<CompactString, Image>,
    /// Enabled environments only. Each in a box of its own: an environment is over 600 bytes, and
    /// inserting 10,000 into the map moved them within its nodes time and again (the join of the
    /// checked environments was the serial tail of validation).
    pub environments: BTreeMap<CompactString, Box<Environment>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub name: CompactString,
    pub domains: Vec<CompactString>,
    pub default_domain: CompactString,
    /// As written, relative to the manifest: part of no hash, so moving the checkout changes nothing.
    pub root_dir: CompactString,
    /// The same folder on this machine, for reading files.
    #[serde(skip)]
    pub root: PathBuf,
    pub registry: Option<CompactString>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Image {
    /// The key in `images`; implied by the path when serialised.
    #[serde(skip)]
    pub name: CompactString,
    #[serde(flatten)]
    pub source: ImageSource,
    pub apt: Vec<CompactString>,
    pub pip: Vec<CompactString>,
    pub requirements: Option<CompactString>,
    pub uv_project: Option<UvProject>,
    pub sources: Vec<SourceFolder>,
    pub env: SortedMap<CompactString, CompactString>,
    pub workdir: Option<CompactString>,
    pub user: Option<CompactString>,
    pub platforms: Vec<CompactString>,
    pub registry: Option<CompactString>,
    /// The repository name in the registry.
    #[serde(rename = "name_in_registry")]
    pub repository: CompactString,
}

/// Where an image starts.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum ImageSource {
    Base {
        base: CompactString,
    },
    Debian {
        python: CompactString,
    },
    Dockerfile {
        dockerfile: CompactString,
        context: CompactString,
        build_args: SortedMap<CompactString, CompactString>,
        target: Option<CompactString>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct UvProject {
    pub pyproject: CompactString,
    pub lock: CompactString,
    pub install_project: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceFolder {
    /// Relative to root_dir.
    pub src: CompactString,
    pub dst: CompactString,
    pub copy_contents_only: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    /// The key in `environments`; implied by the path when serialised.
    #[serde(skip)]
    pub name: CompactString,
    pub kind: EnvKind,
    pub description: Option<CompactString>,
    pub image: CompactString,
    pub version: Option<CompactString>,
    pub depends_on: Vec<CompactString>,
    /// Includes FLYTE_PROJECT and FLYTE_DOMAIN, set by flyte.
    pub env: SortedMap<CompactString, CompactString>,
    pub secrets: Vec<Secret>,
    pub resources: Resources,
    pub code: Code,
    #[serde(flatten)]
    pub spec: KindSpec,
    /// The digest of the canonical encoding of (project name, environment name, this environment),
    /// where a deployment's version starts. Taken as validation builds the environment, while it is
    /// still in the cache (walking 10,000 environments again later was most of planning them), when
    /// the manifest is resolved for planning ([`super::Digests::Take`]); `None` otherwise. The model is
    /// final after validation, so it stays true.
    #[serde(skip)]
    pub spec_digest: Option<crate::plan::hash::Digest>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum KindSpec {
    App(Box<AppSpec>),
    Task(TaskSpec),
}

#[derive(Clone, Debug, Serialize)]
pub struct Secret {
    pub name: CompactString,
    pub key: Option<CompactString>,
    #[serde(flatten)]
    pub exposed: SecretExposure,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum SecretExposure {
    Env { as_env: CompactString },
    File { as_file: CompactString },
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Resources {
    pub requests: ResourceSet,
    pub limits: ResourceSet,
    pub accelerator: Option<CompactString>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ResourceSet {
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
    pub gpu: Option<Quantity>,
    pub disk: Option<Quantity>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Code {
    pub copy_style: CopyStyle,
    pub include: Vec<CompactString>,
    pub exclude: Vec<CompactString>,
    pub python_path: Vec<CompactString>,
    pub dst: CompactString,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppSpec {
    pub port: u16,
    pub command: Vec<CompactString>,
    pub args: Vec<CompactString>,
    pub scaling: Scaling,
    pub ingress: Ingress,
    pub requires_auth: bool,
    pub health_check: Option<CompactString>,
    pub timeouts: Timeouts,
    pub inputs: SortedMap<CompactString, Input>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Scaling {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub scale_down_after: Option<Duration>,
    pub metric: Option<ScalingMetric>,
    pub target: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Ingress {
    pub private: bool,
    pub subdomain: Option<CompactString>,
    pub custom_domain: Option<CompactString>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeouts {
    pub startup: Option<Duration>,
    pub request: Option<Duration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Input {
    #[serde(flatten)]
    pub source: InputSource,
    pub as_env: Option<CompactString>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum InputSource {
    Value {
        value: serde_json::Value,
    },
    Endpoint {
        endpoint: CompactString,
    },
    /// Resolved at apply time: the latest run of the task, its named output.
    TaskOutput {
        #[serde(skip)]
        environment: CompactString,
        #[serde(skip)]
        task: CompactString,
        /// "<environment>.<task>", as written.
        #[serde(rename = "task")]
        reference: CompactString,
        output: CompactString,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskSpec {
    pub tasks: SortedMap<CompactString, Task>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Task {
    pub entrypoint: CompactString,
    pub description: Option<CompactString>,
    pub inputs: SortedMap<CompactString, TaskType>,
    pub outputs: SortedMap<CompactString, TaskType>,
    pub retries: u32,
    pub timeout: Option<Duration>,
    pub cache: Option<Cache>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Cache {
    pub version: Option<CompactString>,
}

impl Environment {
    /// The environments this one must follow: `depends_on`, and the apps and task environments its
    /// inputs read from.
    pub fn dependencies(&self) -> impl Iterator<Item = &str> {
        let inputs = match &self.spec {
            KindSpec::App(app) => Some(app.inputs.values().filter_map(|input| match &input.source {
                InputSource::Endpoint { endpoint } => Some(endpoint.as_str()),
                InputSource::TaskOutput { environment, .. } => Some(environment.as_str()),
                InputSource::Value { .. } => None,
            })),
            KindSpec::Task(_) => None,
        };
        self.depends_on.iter().map(CompactString::as_str).chain(inputs.into_iter().flatten())
    }
}
