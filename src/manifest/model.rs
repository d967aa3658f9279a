//! The resolved manifest for one domain: defaults applied, overlay merged, every value checked.
//!
//! Later stages take these types as final: no spans, nothing left to re-check. `Option` appears only
//! where "not set" is a real state (no registry, no health check). Field names are the manifest's keys,
//! so the serialised form reads like the manifest and `flyte config` can find each value's origin.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

pub use super::raw::{CopyStyle, EnvKind, ScalingMetric, TaskType};
pub use super::units::{Duration, Quantity};

#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub project: Project,
    /// The domain this manifest was resolved for.
    pub domain: String,
    pub images: BTreeMap<String, Image>,
    /// Enabled environments only.
    pub environments: BTreeMap<String, Environment>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub name: String,
    pub domains: Vec<String>,
    pub default_domain: String,
    /// As written, relative to the manifest: part of no hash, so moving the checkout changes nothing.
    pub root_dir: String,
    /// The same folder on this machine, for reading files.
    #[serde(skip)]
    pub root: PathBuf,
    pub registry: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Image {
    /// The key in `images`; implied by the path when serialised.
    #[serde(skip)]
    pub name: String,
    #[serde(flatten)]
    pub source: ImageSource,
    pub apt: Vec<String>,
    pub pip: Vec<String>,
    pub requirements: Option<String>,
    pub uv_project: Option<UvProject>,
    pub sources: Vec<SourceFolder>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub platforms: Vec<String>,
    pub registry: Option<String>,
    /// The repository name in the registry.
    #[serde(rename = "name_in_registry")]
    pub repository: String,
}

/// Where an image starts.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum ImageSource {
    Base { base: String },
    Debian { python: String },
    Dockerfile { dockerfile: String, context: String, build_args: BTreeMap<String, String>, target: Option<String> },
}

#[derive(Clone, Debug, Serialize)]
pub struct UvProject {
    pub pyproject: String,
    pub lock: String,
    pub install_project: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceFolder {
    /// Relative to root_dir.
    pub src: String,
    pub dst: String,
    pub copy_contents_only: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    /// The key in `environments`; implied by the path when serialised.
    #[serde(skip)]
    pub name: String,
    pub kind: EnvKind,
    pub description: Option<String>,
    pub image: String,
    pub version: Option<String>,
    pub depends_on: Vec<String>,
    /// Includes FLYTE_PROJECT and FLYTE_DOMAIN, set by flyte.
    pub env: BTreeMap<String, String>,
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
    pub name: String,
    pub key: Option<String>,
    #[serde(flatten)]
    pub exposed: SecretExposure,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum SecretExposure {
    Env { as_env: String },
    File { as_file: String },
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Resources {
    pub requests: ResourceSet,
    pub limits: ResourceSet,
    pub accelerator: Option<String>,
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
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub python_path: Vec<String>,
    pub dst: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppSpec {
    pub port: u16,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub scaling: Scaling,
    pub ingress: Ingress,
    pub requires_auth: bool,
    pub health_check: Option<String>,
    pub timeouts: Timeouts,
    pub inputs: BTreeMap<String, Input>,
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
    pub subdomain: Option<String>,
    pub custom_domain: Option<String>,
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
    pub as_env: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum InputSource {
    Value {
        value: serde_json::Value,
    },
    Endpoint {
        endpoint: String,
    },
    /// Resolved at apply time: the latest run of the task, its named output.
    TaskOutput {
        #[serde(skip)]
        environment: String,
        #[serde(skip)]
        task: String,
        /// "<environment>.<task>", as written.
        #[serde(rename = "task")]
        reference: String,
        output: String,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskSpec {
    pub tasks: BTreeMap<String, Task>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Task {
    pub entrypoint: String,
    pub description: Option<String>,
    pub inputs: BTreeMap<String, TaskType>,
    pub outputs: BTreeMap<String, TaskType>,
    pub retries: u32,
    pub timeout: Option<Duration>,
    pub cache: Option<Cache>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Cache {
    pub version: Option<String>,
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
        self.depends_on.iter().map(String::as_str).chain(inputs.into_iter().flatten())
    }
}
