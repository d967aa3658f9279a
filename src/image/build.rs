//! `flyte build`: for each image job, resolve the base, name the image by content, skip it when the
//! registry (with `--push`) or the engine (without) already has that name, else load the changed local
//! inputs, solve the LLB on BuildKit, read the built layers back, write the config the manifest asks
//! for, and push the image (or load it into the engine's store). Jobs run in parallel, bounded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::image::buildkitd;
use crate::image::config::{self, Settings};
use crate::image::engine::{Daemon, Engine, EngineError, SolveRequest, StatusEvent};
use crate::image::inputs::{self, InputError};
use crate::image::job::{self, Job, JobError};
use crate::image::layers::{self, LayerError};
use crate::image::llb::recipe::{self, BaseConfig, InputImages, Shape};
use crate::image::llb::{Graph, describe, pb::Platform};
use crate::image::registry::{ImageToPush, LayerBlob, PushReport, Registry, RegistryError, reference::is_loopback};
use crate::manifest::model::{ImageSource, KindSpec, Manifest};
use crate::plan::render::{counted, size};

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Build only the images these environments use; all when empty.
    pub environments: Vec<String>,
    pub push: bool,
    pub force: bool,
    pub emit_llb: Option<PathBuf>,
    pub dry_run: bool,
    /// Overrides every image's registry.
    pub registry: Option<String>,
    /// Images built at once.
    pub jobs: usize,
    pub cache_dir: PathBuf,
}

/// Progress, for the command to show.
#[derive(Clone, Debug)]
pub enum Event {
    Note { image: String, message: String },
    Status { image: String, event: StatusEvent },
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// The registry or engine already had this content tag: nothing was built or pushed.
    Exists,
    Built {
        solve_ms: u128,
        pushed: Option<PushReport>,
    },
    /// `--dry-run`: the steps that would be solved.
    DryRun {
        steps: Vec<String>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Built {
    pub step: String,
    pub image: String,
    /// `registry/repository:tag`.
    pub reference: String,
    /// The manifest digest (pushed) or the engine's image id.
    pub digest: Option<String>,
    /// The base image as resolved (`name@sha256:…`), when the image has one.
    pub base: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub millis: u128,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("{}{source}", about(image))]
    Engine { image: String, source: EngineError },
    #[error("{}{source}", about(image))]
    Registry { image: String, source: RegistryError },
    #[error("{}{source}", about(image))]
    Input { image: String, source: InputError },
    #[error("{}{source}", about(image))]
    Layers { image: String, source: LayerError },
    #[error("image \"{image}\" has no registry to push to")]
    NoRegistry { image: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// `image "NAME": ` before a job's error; nothing before one that stops every job.
fn about(image: &str) -> String {
    if image.is_empty() { String::new() } else { format!("image \"{image}\": ") }
}

impl BuildError {
    pub fn help(&self) -> String {
        match self {
            BuildError::Job(JobError::Platforms { .. }) => "list one platform, linux/amd64, in `platforms`".into(),
            BuildError::Job(_) => "check the environment names against the manifest".into(),
            BuildError::Engine { source, .. } => source.help(),
            BuildError::Registry { source, .. } => source.help(),
            BuildError::Input { .. } | BuildError::Layers { .. } | BuildError::Write { .. } => {
                "check the cache folder's free space and permissions (FLYTE_CACHE_DIR moves it)".into()
            }
            BuildError::NoRegistry { .. } => {
                "set project.registry or the image's registry in the manifest, or pass --registry (FLYTE_REGISTRY)"
                    .into()
            }
        }
    }

    /// Registry failures are exit 4; everything else that stops a build is exit 3.
    pub fn is_registry(&self) -> bool {
        matches!(self, BuildError::Registry { .. } | BuildError::NoRegistry { .. })
    }
}

/// The shared parts every job uses.
struct Context<'a> {
    manifest: &'a Manifest,
    options: &'a Options,
    engine: Option<Engine>,
    registry: Option<Registry>,
    progress: &'a (dyn Fn(Event) + Sync),
    /// Inputs known to be in the engine; held while one is checked and sent, so that jobs sharing an
    /// input send it once.
    loaded: tokio::sync::Mutex<HashSet<String>>,
    /// Bases pinned so far, by the reference the manifest gives.
    pinned: tokio::sync::Mutex<HashMap<String, Base>>,
}

/// Builds the images of `jobs`, at most `options.jobs` at a time; the first failure stops the run.
pub async fn build(
    manifest: &Manifest,
    jobs: Vec<Job>,
    options: &Options,
    engine: Option<Engine>,
    registry: Option<Registry>,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Built>, BuildError> {
    if options.push
        && let Some(job) = jobs.iter().find(|job| !job.pushable)
    {
        return Err(BuildError::NoRegistry { image: job.image.name.clone() });
    }
    // A buildkitd has no image store beside it: its images can only go to a registry.
    if let Some(engine) = &engine
        && engine.daemon() == Daemon::Buildkitd
        && !options.dry_run
        && !options.push
    {
        let source = EngineError::NeedsDockerEngine {
            operation: "building images without --push (they would go into an engine's image store)".into(),
            address: engine.address().to_string(),
        };
        return Err(BuildError::Engine { image: String::new(), source });
    }
    let loaded = tokio::sync::Mutex::new(HashSet::new());
    let pinned = tokio::sync::Mutex::new(HashMap::new());
    let context = Arc::new(Context { manifest, options, engine, registry, progress, loaded, pinned });
    let results: Vec<Result<Built, BuildError>> = futures_util::stream::iter(jobs)
        .map(|job| {
            let context = Arc::clone(&context);
            async move { build_one(&context, &job).await }
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn build_one(context: &Context<'_>, job: &Job) -> Result<Built, BuildError> {
    let started = Instant::now();
    let name = job.image.name.clone();
    let note = |message: String| (context.progress)(Event::Note { image: name.clone(), message });
    let engine_error = |source| BuildError::Engine { image: name.clone(), source };
    let registry_error = |source| BuildError::Registry { image: name.clone(), source };

    // The base, pinned by digest (a dry run leaves it as written), and its runtime settings.
    let base_reference = job::base_reference(&job.image);
    let mut resolved = match (&base_reference, context.options.dry_run) {
        (Some(reference), false) => Some(pin_base(context, reference).await.map_err(|e| match e {
            Resolve::Registry(source) => registry_error(source),
            Resolve::Engine(source) => engine_error(source),
        })?),
        _ => None,
    };
    let base_source = resolved.as_ref().map(|b| b.source.clone()).or_else(|| base_reference.clone());
    let base = resolved.as_ref().map(|b| b.recorded.clone()).or_else(|| base_reference.clone());
    let tag = job::tag(job, base.as_deref().unwrap_or(""));
    // A dry run resolves nothing: a base named by tag leaves the tag unknown, and it says so.
    let unresolved = context.options.dry_run && base_reference.as_ref().is_some_and(|b| !b.contains("@sha256:"));
    let reference = match unresolved {
        true => format!("{}:<tag once the base is resolved>", job.repository),
        false => format!("{}:{tag}", job.repository),
    };
    let done = |digest: Option<String>, outcome: Outcome| Built {
        step: job.step.clone(),
        image: name.clone(),
        reference: reference.clone(),
        digest,
        base: base.clone(),
        outcome,
        millis: started.elapsed().as_millis(),
    };

    if !context.options.force
        && !context.options.dry_run
        && let Some(digest) = existing(context, &reference, &note).await
    {
        return Ok(done(Some(digest), Outcome::Exists));
    }
    if context.options.push && !context.options.dry_run {
        // Before a long build: a push that will be refused should fail now.
        registry(context)?.check_push_access(&reference).await.map_err(registry_error)?;
    }

    // Building: the base's settings and layer locations are needed now.
    let (base_config, base_layers) = match resolved.as_mut() {
        Some(base) => {
            base_details(context, base).await.map_err(registry_error)?;
            (base.config.clone().unwrap_or(Value::Null), std::mem::take(&mut base.layers))
        }
        None => (Value::Null, HashMap::new()),
    };

    // Local inputs: prepared in the cache, loaded into the engine when it lacks them.
    let files = job::local_files(job, &context.manifest.project.root, &context.options.cache_dir)?;
    let (prepared, mut images, mut dockerfile) =
        prepare_inputs(context, &files).map_err(|source| BuildError::Input { image: name.clone(), source })?;
    let cache = &context.options.cache_dir;
    let engine = match context.options.dry_run {
        true => None,
        false => Some(engine(context)?),
    };
    let on_buildkitd = engine.is_some_and(|e| e.daemon() == Daemon::Buildkitd);
    if on_buildkitd {
        let names =
            buildkitd::push_inputs(registry(context)?, &job.repository, &prepared).await.map_err(registry_error)?;
        images.rename(&names);
        if let Some(dockerfile) = dockerfile.as_mut() {
            for name in [&mut dockerfile.dockerfile, &mut dockerfile.context] {
                *name = names.get(name.as_str()).cloned().unwrap_or_else(|| name.clone());
            }
        }
    } else if let Some(engine) = engine {
        load_inputs(context, engine, &prepared, &note).await.map_err(engine_error)?;
    }

    // A Dockerfile image: the frontend builds the Dockerfile into a local stage, the recipe goes on
    // from there (the bootstrap or the code, and any packages the manifest adds).
    let (base_source, base_config) = match (&dockerfile, engine) {
        (Some(dockerfile), Some(engine)) if on_buildkitd => {
            let staging = format!("{}:{tag}-dockerfile", job.repository);
            let export = |request: &mut SolveRequest| buildkitd::export_to(request, &staging);
            dockerfile_stage(context, engine, job, dockerfile, &export).await.map_err(engine_error)?;
            let (pinned, config) = buildkitd::pinned(registry(context)?, &staging).await.map_err(registry_error)?;
            (Some(pinned), config["config"].clone())
        }
        (Some(dockerfile), Some(engine)) => {
            let stage = format!("{}/dockerfile/{}", job::LOCAL_REGISTRY, without_registry(&reference));
            let export = |request: &mut SolveRequest| {
                request.exporter = "moby".into();
                request.exporter_attrs.insert("name".into(), stage.clone());
            };
            dockerfile_stage(context, engine, job, dockerfile, &export).await.map_err(engine_error)?;
            let inspect = engine.image_inspect(&stage).await.map_err(engine_error)?;
            (Some(stage), inspect.map(|i| i.config).unwrap_or(Value::Null))
        }
        (Some(_), None) => (Some(format!("{} (Dockerfile)", job.image.name)), Value::Null),
        (None, _) => (base_source, base_config),
    };

    let shape = match &job.full {
        Some(env) => Shape::Full { dst: &env.code.dst },
        None => Shape::Fast,
    };
    let mut graph = Graph::new(platform());
    let base_for_steps = BaseConfig { env: string_list(&base_config["Env"]) };
    let base_for_graph = base_source.as_deref().unwrap_or("scratch");
    let result = recipe::image_graph(&mut graph, &job.image, base_for_graph, &base_for_steps, &images, &shape);
    let definition = graph.definition(&result);
    let encoded = prost::Message::encode_to_vec(&definition);
    if let Some(folder) = &context.options.emit_llb {
        let path = llb_path(folder, &job.step);
        std::fs::create_dir_all(folder)
            .and_then(|_| std::fs::write(&path, &encoded))
            .map_err(|source| BuildError::Write { path: path.clone(), source })?;
    }
    let Some(engine) = engine else {
        let mut steps: Vec<String> = Vec::new();
        if let ImageSource::Dockerfile { dockerfile, .. } = &job.image.source {
            steps.push(format!("Dockerfile {dockerfile} (BuildKit's dockerfile frontend)"));
        }
        steps.extend(describe(&definition).into_iter().map(|(_, name)| name).filter(|n| !n.is_empty()));
        return Ok(done(None, Outcome::DryRun { steps }));
    };

    let settings = settings(context.manifest, job, &tag, base.as_deref());
    if on_buildkitd {
        // BuildKit pushes to a staging tag; flyte writes the config over those layers in the registry.
        let staging = format!("{}:{tag}-buildkit", job.repository);
        let mut request = SolveRequest { definition: Some(encoded), ..Default::default() };
        buildkitd::export_to(&mut request, &staging);
        request.entitlements.push("network.host".into());
        let solve_started = Instant::now();
        let image_name = name.clone();
        engine
            .solve(request, |event| (context.progress)(Event::Status { image: image_name.clone(), event }))
            .await
            .map_err(engine_error)?;
        let solve_ms = solve_started.elapsed().as_millis();
        note(format!("pushing {reference}"));
        let report = buildkitd::finish(registry(context)?, &staging, &reference, &base_config, &settings)
            .await
            .map_err(registry_error)?;
        return Ok(done(Some(report.manifest_digest.clone()), Outcome::Built { solve_ms, pushed: Some(report) }));
    }

    // Solve into a staging name in the engine, then read the layers back.
    let stage = format!("{}/stage/{}", job::LOCAL_REGISTRY, without_registry(&reference));
    let mut request = SolveRequest { definition: Some(encoded), exporter: "moby".into(), ..Default::default() };
    request.exporter_attrs.insert("name".into(), stage.clone());
    request.entitlements.push("network.host".into());
    let solve_started = Instant::now();
    let image_name = name.clone();
    engine
        .solve(request, |event| (context.progress)(Event::Status { image: image_name.clone(), event }))
        .await
        .map_err(engine_error)?;
    let solve_ms = solve_started.elapsed().as_millis();

    let compress = context.options.push && !is_loopback(registry_host(&reference));
    // Base layers the target registry already holds are mounted from the base's repository, not copied.
    let reusable: HashMap<String, LayerBlob> = match (&base_source, context.options.push) {
        (Some(source), true) if registry_host(source) == registry_host(&reference) => base_layers,
        _ => HashMap::new(),
    };
    let save = engine.image_save(&stage).await.map_err(engine_error)?;
    let layer_cache = cache.join("images");
    let reused: HashSet<String> = reusable.keys().cloned().collect();
    let saved = tokio::task::spawn_blocking(move || {
        let reader = tokio_util_bridge(save);
        layers::split_save(reader, &layer_cache, compress, &|diff_id| reused.contains(diff_id))
    })
    .await
    .map_err(|e| BuildError::Layers { image: name.clone(), source: LayerError::Format(e.to_string()) })?
    .map_err(|source| BuildError::Layers { image: name.clone(), source })?;
    let built: Value = serde_json::from_slice(&saved.config).unwrap_or(Value::Null);
    let diff_ids: Vec<String> = saved.layers.iter().map(|l| l.diff_id.clone()).collect();
    let config_bytes = config::image_config(&built, &base_config, &settings, &diff_ids);

    let outcome_digest;
    let pushed = if context.options.push {
        let image = ImageToPush {
            config: config_bytes,
            layers: saved
                .layers
                .iter()
                .map(|l| match reusable.get(&l.diff_id) {
                    Some(base_layer) => base_layer.clone(),
                    None => LayerBlob {
                        path: l.path.clone(),
                        digest: l.digest.clone(),
                        size: l.size,
                        media_type: l.media_type.to_string(),
                        mount_from: Vec::new(),
                    },
                })
                .collect(),
        };
        note(format!("pushing {reference}"));
        let report = registry(context)?.push_image(&reference, &image).await.map_err(registry_error)?;
        outcome_digest = Some(report.manifest_digest.clone());
        Some(report)
    } else {
        let archive = cache.join("images").join(format!("load-{tag}.tar"));
        layers::write_load_archive(&archive, &config_bytes, &saved.layers, &reference)
            .map_err(|source| BuildError::Write { path: archive.clone(), source })?;
        engine.image_load(&archive).await.map_err(engine_error)?;
        let _ = std::fs::remove_file(&archive);
        outcome_digest = engine.image_inspect(&reference).await.map_err(engine_error)?.map(|i| i.id);
        None
    };
    // The staging name has served; the layers stay with the final image and in BuildKit's cache.
    let _ = engine.image_remove(&stage).await;
    if let (Some(_), Some(dockerfile_stage)) = (&dockerfile, &base_source) {
        let _ = engine.image_remove(dockerfile_stage).await;
    }
    Ok(done(outcome_digest, Outcome::Built { solve_ms, pushed }))
}

/// A resolved base: what the LLB reads, what the tag and labels record, and its runtime settings.
#[derive(Clone)]
struct Base {
    source: String,
    recorded: String,
    /// The base's `config` object; `None` until [`base_details`] reads it.
    config: Option<Value>,
    /// Where the registry keeps the base's layers, by diff id: pushing to the same registry mounts
    /// them instead of uploading a copy.
    layers: HashMap<String, LayerBlob>,
}

/// The input images of a job, prepared in the cache (not yet sent), and the recipe's names for them;
/// for a Dockerfile image also its Dockerfile and context inputs.
fn prepare_inputs(
    context: &Context<'_>,
    files: &job::LocalFiles,
) -> Result<(Vec<inputs::Input>, InputImages, Option<DockerfileInputs>), InputError> {
    let root = &context.manifest.project.root;
    let cache = &context.options.cache_dir;
    let mut prepared = Vec::new();
    let mut images = InputImages::default();
    let mut add = |kind: &str, dir: &Path, set: &crate::bundle::FileSet| -> Result<String, InputError> {
        let input = inputs::prepare(kind, dir, set, cache)?;
        let reference = input.reference.clone();
        prepared.push(input);
        Ok(reference)
    };
    if let Some(set) = &files.requirements {
        images.requirements = Some(add("requirements", root, set)?);
    }
    if let Some(set) = &files.uv_project {
        images.uv_project = Some(add("uv-project", root, set)?);
    }
    for (dir, set) in &files.sources {
        images.sources.push(add("source", dir, set)?);
    }
    if let Some(set) = &files.code {
        images.code = Some(add("code", root, set)?);
    }
    let dockerfile = match &files.dockerfile {
        Some(dockerfile) => Some(DockerfileInputs {
            dockerfile: add("dockerfile", &dockerfile.dockerfile_dir, &dockerfile.dockerfile)?,
            filename: dockerfile.filename.clone(),
            context: add("context", &dockerfile.context_dir, &dockerfile.context)?,
        }),
        None => None,
    };
    Ok((prepared, images, dockerfile))
}

/// Sends the inputs the engine lacks. Jobs share the lock, so an input two images use goes once.
async fn load_inputs(
    context: &Context<'_>,
    engine: &Engine,
    prepared: &[inputs::Input],
    note: &dyn Fn(String),
) -> Result<(), EngineError> {
    for input in prepared {
        let mut loaded = context.loaded.lock().await;
        if loaded.contains(&input.reference) {
            continue;
        }
        if engine.image_inspect(&input.reference).await?.is_none() {
            note(format!("sending {} ({}, {})", input.reference, counted(input.files, "file"), size(input.bytes)));
            engine.image_load(&input.load_archive).await?;
        }
        loaded.insert(input.reference.clone());
    }
    Ok(())
}

struct DockerfileInputs {
    dockerfile: String,
    filename: String,
    context: String,
}

/// Builds the Dockerfile with BuildKit's dockerfile frontend (its `dockerfile` and `context` inputs are
/// the input images), exported as `export` says: into the engine, or pushed to a staging tag.
async fn dockerfile_stage(
    context: &Context<'_>,
    engine: &Engine,
    job: &Job,
    inputs: &DockerfileInputs,
    export: &dyn Fn(&mut SolveRequest),
) -> Result<(), EngineError> {
    let ImageSource::Dockerfile { build_args, target, .. } = &job.image.source else {
        return Ok(());
    };
    let definition_of = |reference: &str, name: &str| {
        let mut graph = Graph::new(platform());
        let state = graph.image(reference, name);
        prost::Message::encode_to_vec(&graph.definition(&state))
    };
    let mut request = SolveRequest { frontend: "dockerfile.v0".into(), ..Default::default() };
    export(&mut request);
    request.frontend_inputs.insert("dockerfile".into(), definition_of(&inputs.dockerfile, "Dockerfile"));
    request.frontend_inputs.insert("context".into(), definition_of(&inputs.context, "build context"));
    request.frontend_attrs.insert("filename".into(), inputs.filename.clone());
    for (key, value) in build_args {
        request.frontend_attrs.insert(format!("build-arg:{key}"), value.clone());
    }
    if let Some(target) = target {
        request.frontend_attrs.insert("target".into(), target.clone());
    }
    let image = job.image.name.clone();
    engine.solve(request, |event| (context.progress)(Event::Status { image: image.clone(), event })).await?;
    Ok(())
}

fn platform() -> Platform {
    Platform { architecture: "amd64".into(), os: "linux".into(), variant: String::new() }
}

fn without_registry(reference: &str) -> &str {
    reference.split_once('/').map_or(reference, |(_, rest)| rest)
}

enum Resolve {
    Registry(RegistryError),
    Engine(EngineError),
}

/// The base pinned by digest: from the registry, or from the engine's store when the registry cannot say
/// (an image only built locally, whose runtime settings come with it). Each base once per run.
async fn pin_base(context: &Context<'_>, reference: &str) -> Result<Base, Resolve> {
    let mut pinned = context.pinned.lock().await;
    if let Some(base) = pinned.get(reference) {
        return Ok(base.clone());
    }
    let repository = strip_tag(reference.split('@').next().unwrap_or(reference));
    let from_registry = match &context.registry {
        Some(registry) => match registry.resolve_platform(reference, "linux", "amd64").await {
            Ok(digest) => {
                let pin = format!("{repository}@{digest}");
                let base = Base { source: pin.clone(), recorded: pin, config: None, layers: HashMap::new() };
                pinned.insert(reference.to_string(), base.clone());
                return Ok(base);
            }
            Err(error) => Some(error),
        },
        None => None,
    };
    if let Some(engine) = &context.engine
        && let Ok(Some(inspect)) = engine.image_inspect(reference).await
    {
        // Known only to the engine: BuildKit finds it there by name; the tag records its id.
        let base = Base {
            source: reference.to_string(),
            recorded: format!("{reference} (image {})", inspect.id),
            config: Some(inspect.config),
            layers: HashMap::new(),
        };
        pinned.insert(reference.to_string(), base.clone());
        return Ok(base);
    }
    match from_registry {
        Some(error) => Err(Resolve::Registry(error)),
        None => Err(Resolve::Engine(EngineError::NoSuchImage {
            operation: "resolving the base image".into(),
            name: reference.to_string(),
        })),
    }
}

/// What a build needs beyond the pin, read only when something is built: the base's runtime settings
/// and where the registry keeps its layers.
async fn base_details(context: &Context<'_>, base: &mut Base) -> Result<(), RegistryError> {
    let Some(registry) = &context.registry else { return Ok(()) };
    if base.config.is_some() {
        return Ok(());
    }
    let repository = base.source.split('@').next().unwrap_or_default().to_string();
    let manifest = registry.fetch_manifest(&base.source).await?;
    let document: Value = serde_json::from_slice(&manifest.bytes).unwrap_or(Value::Null);
    let config_digest = document["config"]["digest"].as_str().unwrap_or_default().to_string();
    let blob = registry.fetch_blob(&base.source, &config_digest).await?;
    let config: Value = serde_json::from_slice(&blob).unwrap_or(Value::Null);
    let diff_ids = string_list(&config["rootfs"]["diff_ids"]);
    let blobs = document["layers"].as_array().cloned().unwrap_or_default();
    if diff_ids.len() == blobs.len() {
        for (diff_id, blob) in diff_ids.into_iter().zip(blobs) {
            let layer = LayerBlob {
                path: PathBuf::new(),
                digest: blob["digest"].as_str().unwrap_or_default().to_string(),
                size: blob["size"].as_u64().unwrap_or(0),
                media_type: blob["mediaType"].as_str().unwrap_or_default().to_string(),
                mount_from: vec![repository.clone()],
            };
            base.layers.insert(diff_id, layer);
        }
    }
    base.config = Some(config["config"].clone());
    Ok(())
}

/// Is the image there already? With `--push` the registry decides; a failed check means "build".
async fn existing(context: &Context<'_>, reference: &str, note: &dyn Fn(String)) -> Option<String> {
    if context.options.push {
        let registry = context.registry.as_ref()?;
        match registry.manifest_digest(reference).await {
            Ok(found) => found,
            Err(error) => {
                note(format!("could not check whether {reference} exists ({error}); building it"));
                None
            }
        }
    } else {
        let engine = context.engine.as_ref()?;
        engine.image_inspect(reference).await.ok().flatten().map(|inspect| inspect.id)
    }
}

fn registry<'a>(context: &'a Context<'_>) -> Result<&'a Registry, BuildError> {
    context.registry.as_ref().ok_or_else(|| BuildError::NoRegistry { image: String::new() })
}

fn engine<'a>(context: &'a Context<'_>) -> Result<&'a Engine, BuildError> {
    context.engine.as_ref().ok_or_else(|| BuildError::Engine {
        image: String::new(),
        source: EngineError::NoSuchImage { operation: "connecting".into(), name: "the engine".into() },
    })
}

/// The runtime settings: the image's env, workdir and user; for fast-copy images the bootstrap as
/// entrypoint; for full builds the code's folder on PYTHONPATH and an app's command.
fn settings(manifest: &Manifest, job: &Job, tag: &str, base: Option<&str>) -> Settings {
    let image = &job.image;
    let mut settings = Settings {
        env: image.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        workdir: image.workdir.clone(),
        user: image.user.clone(),
        ..Settings::default()
    };
    let mut labels = BTreeMap::new();
    labels.insert(config::LABEL_VERSION.to_string(), tag.to_string());
    labels.insert(config::LABEL_SOURCE_DIGEST.to_string(), job.step_digest.clone());
    labels.insert("org.flyte.project".to_string(), manifest.project.name.clone());
    if let Some((name, digest)) = base.and_then(|b| b.split_once('@')) {
        labels.insert(config::LABEL_BASE.to_string(), name.to_string());
        labels.insert(config::LABEL_BASE_DIGEST.to_string(), digest.to_string());
    }
    settings.labels = labels;
    match &job.full {
        None => {
            settings.entrypoint = Some(vec![recipe::BOOTSTRAP_PATH.to_string()]);
        }
        Some(env) => {
            let dst = env.code.dst.trim_end_matches('/');
            let mut paths = vec![dst.to_string()];
            paths.extend(env.code.python_path.iter().map(|p| format!("{dst}/{p}")));
            settings.env.push(("PYTHONPATH".into(), paths.join(":")));
            settings.workdir = settings.workdir.or_else(|| Some(env.code.dst.clone()));
            if let KindSpec::App(app) = &env.spec {
                let mut command = app.command.clone();
                command.extend(app.args.iter().cloned());
                if !command.is_empty() {
                    settings.entrypoint = Some(Vec::new());
                    settings.cmd = Some(command);
                }
            }
        }
    }
    if job.image.uv_project.is_some() {
        let path = settings_path(&settings);
        settings.env.push(("VIRTUAL_ENV".into(), recipe::UV_VENV.into()));
        settings.env.push(("PATH".into(), format!("{}/bin:{path}", recipe::UV_VENV)));
    }
    settings
}

fn settings_path(settings: &Settings) -> String {
    settings.env.iter().find(|(k, _)| k == "PATH").map_or(recipe::DEFAULT_PATH.to_string(), |(_, v)| v.clone())
}

fn string_list(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn strip_tag(repository: &str) -> &str {
    match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    }
}

fn registry_host(reference: &str) -> &str {
    reference.split('/').next().unwrap_or(reference)
}

/// A blocking reader over the engine's async `docker save` stream, for the tar splitter's thread.
fn tokio_util_bridge(tar: crate::image::engine::ImageTar) -> impl std::io::Read {
    struct Bridge {
        inner: crate::image::engine::ImageTar,
        handle: tokio::runtime::Handle,
    }
    impl std::io::Read for Bridge {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            use tokio::io::AsyncReadExt;
            let inner = &mut self.inner;
            self.handle.block_on(inner.read(buffer))
        }
    }
    Bridge { inner: tar, handle: tokio::runtime::Handle::current() }
}

/// The path of a job's emitted definition.
pub fn llb_path(folder: &Path, step: &str) -> PathBuf {
    folder.join(format!("{}.llb.pb", step.replace([':', '+'], "_")))
}
