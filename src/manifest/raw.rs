//! The manifest as written: every field the user may set, spanned, before defaults and checks.
//!
//! Declared with [`record!`] and [`keyword!`], so each type's decoder, its KDL shape and its JSON
//! Schema come from this one text. The doc comments are the schema's descriptions.

use compact_str::CompactString;

use super::decode::{BoolOr, Decode, Keyed, PlainValue, QuantityText, Spanned, keyword, record};

record! {
    /// A flyte manifest: one project, the images its environments run in, the environments, and the
    /// domain overlays that vary them.
    pub struct RawManifest {
        /// The project every environment belongs to.
        pub project: RawProject,
        /// Container images, by name. Environments refer to them with `image = "<name>"`.
        #[kdl_each = "image"]
        pub images: Option<Keyed<RawImage>>,
        /// Environments, by name: long-running HTTP apps and batch task environments.
        #[kdl_each = "environment"]
        pub environments: Option<Keyed<Box<RawEnvironment>>>,
        /// Per-domain overlays. Tables merge deeply into the base manifest; lists and plain values replace.
        #[kdl_each = "domain"]
        pub domains: Option<Keyed<Patch<RawDomain>>>,
    }
}

record! {
    /// The project: its name, its domains and where its files and images live.
    pub struct RawProject {
        /// The project's name on the cluster: a DNS label (lowercase letters, digits and `-`).
        pub name: Spanned<CompactString>,
        /// The domains this project deploys to. Default: development, staging, production.
        pub domains: Option<Vec<Spanned<CompactString>>>,
        /// The domain used when none is given on the command line. Default: the first of `domains`.
        pub default_domain: Option<Spanned<CompactString>>,
        /// The folder that code bundles and relative paths start from, relative to the manifest. Default: ".".
        pub root_dir: Option<Spanned<CompactString>>,
        /// The registry images are pushed to, e.g. "ghcr.io/acme". An image may override it.
        pub registry: Option<Spanned<CompactString>>,
    }
}

record! {
    /// What a domain overlay may change: the project's registry, any field of any image or
    /// environment, and new images or environments.
    pub struct RawDomain {
        /// Only `registry` may vary by domain.
        pub project: Option<RawProjectOverlay>,
        /// Image fields to change, or images to add.
        #[kdl_each = "image"]
        pub images: Option<Keyed<RawImage>>,
        /// Environment fields to change, environments to add, or `enabled = false` to leave one out.
        #[kdl_each = "environment"]
        pub environments: Option<Keyed<Box<RawEnvironment>>>,
    }
}

record! {
    /// The project fields a domain may change.
    pub struct RawProjectOverlay {
        /// The registry images of this domain are pushed to.
        pub registry: Option<Spanned<CompactString>>,
    }
}

record! {
    /// A container image: a base (an image reference, a Debian base with Python, or a Dockerfile) and
    /// the layers added on top.
    pub struct RawImage {
        /// A base image reference. Pin it with `@sha256:…` for reproducible builds.
        pub base: Option<Spanned<CompactString>>,
        /// Build on a Debian base with this Python version, e.g. "3.12". The default when neither
        /// `base` nor `dockerfile` is given.
        pub python: Option<Spanned<CompactString>>,
        /// Build from this Dockerfile (relative to root_dir) instead of from layers.
        pub dockerfile: Option<Spanned<CompactString>>,
        /// The Dockerfile's build context, relative to root_dir. Default: the Dockerfile's folder.
        pub context: Option<Spanned<CompactString>>,
        /// Dockerfile build arguments.
        pub build_args: Option<Keyed<Spanned<CompactString>>>,
        /// The Dockerfile stage to build.
        pub target: Option<Spanned<CompactString>>,
        /// Debian packages to install.
        pub apt: Option<Vec<Spanned<CompactString>>>,
        /// Python packages to install with pip, as requirement specifiers.
        pub pip: Option<Vec<Spanned<CompactString>>>,
        /// A requirements file to install, relative to root_dir.
        pub requirements: Option<Spanned<CompactString>>,
        /// Install the locked dependencies of a uv project.
        pub uv_project: Option<Spanned<RawUvProject>>,
        /// Folders copied into the image.
        #[kdl_each = "source"]
        pub sources: Option<Vec<RawSourceFolder>>,
        /// Environment variables set in the image.
        pub env: Option<Keyed<Spanned<CompactString>>>,
        /// The working directory, an absolute path.
        pub workdir: Option<Spanned<CompactString>>,
        /// The user the image runs as, e.g. "1000" or "1000:1000".
        pub user: Option<Spanned<CompactString>>,
        /// Platforms to build for, e.g. "linux/amd64". Default: linux/amd64.
        pub platforms: Option<Vec<Spanned<CompactString>>>,
        /// The registry this image is pushed to, overriding the project's.
        pub registry: Option<Spanned<CompactString>>,
        /// The repository name in the registry. Default: the project and image names.
        pub name: Option<Spanned<CompactString>>,
    }
}

record! {
    /// A uv project whose locked dependencies are installed.
    pub struct RawUvProject {
        /// The pyproject.toml, relative to root_dir.
        pub pyproject: Spanned<CompactString>,
        /// The lock file, relative to root_dir. Default: uv.lock beside the pyproject.toml.
        pub lock: Option<Spanned<CompactString>>,
        /// Also install the project itself, not only its dependencies. Default: false.
        pub install_project: Option<bool>,
    }
}

record! {
    /// A folder copied into an image.
    pub struct RawSourceFolder {
        /// The folder, relative to root_dir.
        pub src: Spanned<CompactString>,
        /// Where it goes in the image, an absolute path. Default: the image's workdir, or "/app".
        pub dst: Option<Spanned<CompactString>>,
        /// Copy the folder's contents rather than the folder itself. Default: false.
        pub copy_contents_only: Option<bool>,
    }
}

keyword! {
    /// What an environment runs.
    pub enum EnvKind {
        /// A long-running HTTP service.
        App = "app",
        /// Batch tasks that run to completion.
        Task = "task",
    }
}

record! {
    /// An environment: where an app or a set of tasks runs, and with what.
    pub struct RawEnvironment {
        /// "app" for a long-running HTTP service, "task" for batch tasks.
        pub kind: Spanned<EnvKind>,
        /// A line for people.
        pub description: Option<Spanned<CompactString>>,
        /// The name of the image it runs in, a key of `images`.
        pub image: Spanned<CompactString>,
        /// false leaves the environment out (usually in one domain). Default: true.
        pub enabled: Option<Spanned<bool>>,
        /// A pinned version. Required with copy_style "full"; otherwise the content version is used.
        pub version: Option<Spanned<CompactString>>,
        /// Environments deployed before this one.
        pub depends_on: Option<Vec<Spanned<CompactString>>>,
        /// Environment variables. FLYTE_DOMAIN and FLYTE_PROJECT are set by flyte.
        pub env: Option<Keyed<Spanned<CompactString>>>,
        /// Secrets, by reference: values never appear in the manifest.
        #[kdl_each = "secret"]
        pub secrets: Option<Vec<RawSecret>>,
        /// CPU, memory, GPU and disk requests and limits.
        pub resources: Option<RawResources>,
        /// How the environment's code is shipped.
        pub code: Option<RawCode>,
        /// Apps: the port the app listens on. Default: 8080.
        pub port: Option<Spanned<i64>>,
        /// Apps: the command that starts the app.
        pub command: Option<Spanned<Vec<Spanned<CompactString>>>>,
        /// Apps: arguments added to the command.
        pub args: Option<Spanned<Vec<Spanned<CompactString>>>>,
        /// Apps: replicas and autoscaling.
        pub scaling: Option<Spanned<RawScaling>>,
        /// Apps: how the app is reached.
        pub ingress: Option<Spanned<RawIngress>>,
        /// Apps: whether callers must authenticate. Default: true.
        pub requires_auth: Option<Spanned<bool>>,
        /// Apps: the HTTP path that answers when the app is ready, e.g. "/health".
        pub health_check: Option<Spanned<CompactString>>,
        /// Apps: how long to wait for start-up and for one request.
        pub timeouts: Option<Spanned<RawTimeouts>>,
        /// Apps: named inputs with defaults: a value, another app's endpoint or a task run's output.
        #[kdl_each = "input"]
        pub inputs: Option<Spanned<Keyed<RawInput>>>,
        /// Tasks: the functions this environment offers, by name.
        #[kdl_each = "task"]
        pub tasks: Option<Spanned<Keyed<RawTask>>>,
    }
}

record! {
    /// A secret exposed to the environment, as an environment variable or a file.
    pub struct RawSecret {
        /// The secret's name on the cluster.
        pub name: Spanned<CompactString>,
        /// The key within the secret, when it holds several.
        pub key: Option<Spanned<CompactString>>,
        /// Expose it as this environment variable.
        pub as_env: Option<Spanned<CompactString>>,
        /// Expose it as a file at this absolute path.
        pub as_file: Option<Spanned<CompactString>>,
    }
}

record! {
    /// Resource requests and limits.
    pub struct RawResources {
        /// What the environment is guaranteed.
        pub requests: Option<RawResourceSet>,
        /// What it may use at most.
        pub limits: Option<RawResourceSet>,
        /// The GPU type, e.g. "nvidia-l4", when gpu is requested.
        pub accelerator: Option<Spanned<CompactString>>,
    }
}

record! {
    /// Quantities in Kubernetes syntax: cpu "500m" or 2, memory "2Gi", gpu 1, disk "10Gi".
    pub struct RawResourceSet {
        /// CPU cores: "500m", "2" or 0.5.
        pub cpu: Option<Spanned<QuantityText>>,
        /// Memory: "512Mi", "2Gi".
        pub memory: Option<Spanned<QuantityText>>,
        /// Whole GPUs.
        pub gpu: Option<Spanned<QuantityText>>,
        /// Ephemeral disk: "10Gi".
        pub disk: Option<Spanned<QuantityText>>,
    }
}

keyword! {
    /// How code reaches the container.
    pub enum CopyStyle {
        /// A code bundle shipped beside the image and unpacked at start.
        Fast = "fast",
        /// The code baked into the image; needs a pinned `version`.
        Full = "full",
    }
}

record! {
    /// Which files make up the environment's code, and how they are shipped.
    pub struct RawCode {
        /// "fast" (a bundle beside the image) or "full" (baked into the image). Default: "fast".
        pub copy_style: Option<Spanned<CopyStyle>>,
        /// Globs relative to root_dir; when given, only matching files are shipped.
        pub include: Option<Vec<Spanned<CompactString>>>,
        /// Globs relative to root_dir of files never shipped.
        pub exclude: Option<Vec<Spanned<CompactString>>>,
        /// Folders, relative to root_dir, added to PYTHONPATH in the container.
        pub python_path: Option<Vec<Spanned<CompactString>>>,
        /// Where the code lives in the container, an absolute path. Default: "/app".
        pub dst: Option<Spanned<CompactString>>,
    }
}

keyword! {
    /// What autoscaling follows.
    pub enum ScalingMetric {
        /// Requests in flight per replica.
        Concurrency = "concurrency",
        /// Requests per second per replica.
        RequestRate = "request_rate",
    }
}

record! {
    /// Replicas and autoscaling of an app.
    pub struct RawScaling {
        /// The fewest replicas; 0 lets the app scale to zero. Default: 0.
        pub min_replicas: Option<Spanned<i64>>,
        /// The most replicas. Default: 1.
        pub max_replicas: Option<Spanned<i64>>,
        /// How long traffic must stay low before scaling down, e.g. "10m".
        pub scale_down_after: Option<Spanned<CompactString>>,
        /// "concurrency" or "request_rate".
        pub metric: Option<Spanned<ScalingMetric>>,
        /// The metric's target per replica.
        pub target: Option<Spanned<f64>>,
    }
}

record! {
    /// How an app is reached.
    pub struct RawIngress {
        /// Reachable only from inside the cluster. Default: false.
        pub private: Option<bool>,
        /// The subdomain the app is served on: a DNS label.
        pub subdomain: Option<Spanned<CompactString>>,
        /// A custom domain name for the app.
        pub custom_domain: Option<Spanned<CompactString>>,
    }
}

record! {
    /// An app's time limits, as durations such as "30s", "5m", "1h".
    pub struct RawTimeouts {
        /// How long the app may take to become ready.
        pub startup: Option<Spanned<CompactString>>,
        /// How long one request may take.
        pub request: Option<Spanned<CompactString>>,
    }
}

record! {
    /// An app input: exactly one of `value`, `endpoint`, or `task` (with `output`).
    pub struct RawInput {
        /// A plain default value.
        pub value: Option<Spanned<PlainValue>>,
        /// The endpoint of another app environment in this manifest.
        pub endpoint: Option<Spanned<CompactString>>,
        /// A task, as "<environment>.<task>", whose latest run's output is the input.
        pub task: Option<Spanned<CompactString>>,
        /// Which output of `task`. Default: the task's only output.
        pub output: Option<Spanned<CompactString>>,
        /// Also expose the input as this environment variable.
        pub as_env: Option<Spanned<CompactString>>,
    }
}

keyword! {
    /// Flyte's simple types.
    pub enum TaskType {
        Int = "int",
        Float = "float",
        Str = "str",
        Bool = "bool",
        Datetime = "datetime",
        Duration = "duration",
        File = "file",
        Dir = "dir",
        Json = "json",
    }
}

record! {
    /// A task: a Python function the environment offers.
    pub struct RawTask {
        /// The function, as "module.path:function".
        pub entrypoint: Spanned<CompactString>,
        /// A line for people.
        pub description: Option<CompactString>,
        /// Inputs by name, each a simple type: int, float, str, bool, datetime, duration, file, dir, json.
        pub inputs: Option<Keyed<Spanned<TaskType>>>,
        /// Outputs by name, each a simple type.
        pub outputs: Option<Keyed<Spanned<TaskType>>>,
        /// How often a failed run is retried. Default: 0.
        pub retries: Option<Spanned<i64>>,
        /// How long one attempt may take, e.g. "1h".
        pub timeout: Option<Spanned<CompactString>>,
        /// Cache results: true, or a table with a cache `version`.
        pub cache: Option<Spanned<BoolOr<RawCache>>>,
    }
}

record! {
    /// Result caching settings of a task.
    pub struct RawCache {
        /// Bump it to invalidate earlier results.
        pub version: Option<Spanned<CompactString>>,
    }
}

/// A table of a domain overlay: the same fields as the base, none of them required.
#[derive(Clone, Debug)]
pub struct Patch<T>(pub T);

impl<T: Decode> Decode for Patch<T> {
    fn decode(node: &super::tree::Node, cx: &mut super::decode::Cx) -> Option<Self> {
        cx.partial(|cx| T::decode(node, cx)).map(Patch)
    }
    fn shape() -> super::decode::Shape {
        super::decode::Shape::Patch(T::shape)
    }
}
