//! `flyte build`: for each image job, resolve the base, name the image by content, skip it when the
//! registry (with `--push`) or the engine (without) already has that name, else load the changed local
//! inputs, solve the LLB on BuildKit, read the built layers back, write the config the manifest asks
//! for, and push the image (or load it into the engine's store). Jobs run in parallel, bounded.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::image::buildkitd;
use crate::image::config;
use crate::image::engine::{Daemon, Engine, EngineError, SolveRequest, StatusEvent};
use crate::image::inputs::InputError;
use crate::image::job::{self, Job, JobError};
use crate::image::layers::{self, LayerError};
use crate::image::llb::recipe::{self, BaseConfig, Shape};
use crate::image::llb::{Graph, describe};
use crate::image::registry::{ImageToPush, LayerBlob, PushReport, Registry, RegistryError, reference::is_loopback};
use crate::manifest::model::{ImageSource, Manifest};

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

mod parts;

use parts::*;

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
        return Err(BuildError::NoRegistry { image: job.image.name.to_string() });
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
    let name = job.image.name.to_string();
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

    let settings = settings(context.manifest, job, &tag, base.as_deref(), &base_config);
    if on_buildkitd {
        // BuildKit pushes to a staging tag; flyte writes the config over those layers in the registry.
        let staging = format!("{}:{tag}-buildkit", job.repository);
        let mut request = SolveRequest { definition: Some(encoded), ..Default::default() };
        buildkitd::export_to(&mut request, &staging);
        let solve_ms = solve(context, engine, request, &name).await.map_err(engine_error)?;
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
    let solve_ms = solve(context, engine, request, &name).await.map_err(engine_error)?;

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

/// Solves an image's definition (its steps may use the host network), its progress reported as the
/// image's; gives how long it took.
async fn solve(
    context: &Context<'_>,
    engine: &Engine,
    mut request: SolveRequest,
    image: &str,
) -> Result<u128, EngineError> {
    request.entitlements.push("network.host".into());
    let started = Instant::now();
    let image = image.to_string();
    engine.solve(request, |event| (context.progress)(Event::Status { image: image.clone(), event })).await?;
    Ok(started.elapsed().as_millis())
}

/// The path of a job's emitted definition.
pub fn llb_path(folder: &Path, step: &str) -> PathBuf {
    folder.join(format!("{}.llb.pb", step.replace([':', '+'], "_")))
}
