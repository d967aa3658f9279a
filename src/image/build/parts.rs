//! The parts of one image job: its inputs (prepared, then loaded into the engine or pushed for a
//! buildkitd), a Dockerfile's stage, the base pinned and described, the existence check, and the runtime
//! settings its config gets.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{BuildError, Context, Event};
use crate::image::config::{self, Settings};
use crate::image::engine::{Engine, EngineError, SolveRequest};
use crate::image::inputs::{self, InputError};
use crate::image::job::{self, Job};
use crate::image::llb::recipe::{self, InputImages};
use crate::image::llb::{Graph, pb::Platform};
use crate::image::registry::{LayerBlob, Registry, RegistryError};
use crate::manifest::model::{ImageSource, KindSpec, Manifest};
use crate::plan::render::{counted, size};

/// A resolved base: what the LLB reads, what the tag and labels record, and its runtime settings.
#[derive(Clone)]
pub(super) struct Base {
    pub(super) source: String,
    pub(super) recorded: String,
    /// The base's `config` object; `None` until [`base_details`] reads it.
    pub(super) config: Option<Value>,
    /// Where the registry keeps the base's layers, by diff id: pushing to the same registry mounts
    /// them instead of uploading a copy.
    pub(super) layers: HashMap<String, LayerBlob>,
}

/// The input images of a job, prepared in the cache (not yet sent), and the recipe's names for them;
/// for a Dockerfile image also its Dockerfile and context inputs.
pub(super) fn prepare_inputs(
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
pub(super) async fn load_inputs(
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

pub(super) struct DockerfileInputs {
    pub(super) dockerfile: String,
    pub(super) filename: String,
    pub(super) context: String,
}

/// Builds the Dockerfile with BuildKit's dockerfile frontend (its `dockerfile` and `context` inputs are
/// the input images), exported as `export` says: into the engine, or pushed to a staging tag.
pub(super) async fn dockerfile_stage(
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
        request.frontend_attrs.insert(format!("build-arg:{key}"), value.to_string());
    }
    if let Some(target) = target {
        request.frontend_attrs.insert("target".into(), target.to_string());
    }
    let image = job.image.name.to_string();
    engine.solve(request, |event| (context.progress)(Event::Status { image: image.clone(), event })).await?;
    Ok(())
}

pub(super) fn platform() -> Platform {
    Platform { architecture: "amd64".into(), os: "linux".into(), variant: String::new() }
}

pub(super) fn without_registry(reference: &str) -> &str {
    reference.split_once('/').map_or(reference, |(_, rest)| rest)
}

pub(super) enum Resolve {
    Registry(RegistryError),
    Engine(EngineError),
}

/// The base pinned by digest: from the registry, or from the engine's store when the registry cannot say
/// (an image only built locally, whose runtime settings come with it). Each base once per run.
pub(super) async fn pin_base(context: &Context<'_>, reference: &str) -> Result<Base, Resolve> {
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
pub(super) async fn base_details(context: &Context<'_>, base: &mut Base) -> Result<(), RegistryError> {
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
pub(super) async fn existing(context: &Context<'_>, reference: &str, note: &dyn Fn(String)) -> Option<String> {
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

pub(super) fn registry<'a>(context: &'a Context<'_>) -> Result<&'a Registry, BuildError> {
    context.registry.as_ref().ok_or_else(|| BuildError::NoRegistry { image: String::new() })
}

pub(super) fn engine<'a>(context: &'a Context<'_>) -> Result<&'a Engine, BuildError> {
    context.engine.as_ref().ok_or_else(|| BuildError::Engine {
        image: String::new(),
        source: EngineError::NoSuchImage { operation: "connecting".into(), name: "the engine".into() },
    })
}

/// The runtime settings: the image's env, workdir and user; for fast-copy images the bootstrap as
/// entrypoint; for full builds the code's folder on PYTHONPATH and an app's command; a uv project's venv
/// first on PATH.
pub(super) fn settings(manifest: &Manifest, job: &Job, tag: &str, base: Option<&str>, base_config: &Value) -> Settings {
    let image = &job.image;
    let mut settings = Settings {
        env: image.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        workdir: image.workdir.as_ref().map(|w| w.to_string()),
        user: image.user.as_ref().map(|u| u.to_string()),
        ..Settings::default()
    };
    let mut labels = BTreeMap::new();
    labels.insert(config::LABEL_VERSION.to_string(), tag.to_string());
    labels.insert(config::LABEL_SOURCE_DIGEST.to_string(), job.step_digest.clone());
    labels.insert("org.flyte.project".to_string(), manifest.project.name.to_string());
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
            settings.workdir = settings.workdir.or_else(|| Some(env.code.dst.to_string()));
            if let KindSpec::App(app) = &env.spec {
                let command: Vec<String> = app.command.iter().chain(&app.args).map(|a| a.to_string()).collect();
                if !command.is_empty() {
                    settings.entrypoint = Some(Vec::new());
                    settings.cmd = Some(command);
                }
            }
        }
    }
    if job.image.uv_project.is_some() {
        let path = settings_path(&settings, base_config);
        settings.env.push(("VIRTUAL_ENV".into(), recipe::UV_VENV.into()));
        settings.env.push(("PATH".into(), format!("{}/bin:{path}", recipe::UV_VENV)));
    }
    settings
}

/// The PATH the image would have without the venv: the image's own, else the base image's, else the default.
pub(super) fn settings_path(settings: &Settings, base_config: &Value) -> String {
    let from_image = settings.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
    let from_base =
        || string_list(&base_config["Env"]).into_iter().find_map(|e| e.strip_prefix("PATH=").map(String::from));
    from_image.or_else(from_base).unwrap_or_else(|| recipe::DEFAULT_PATH.to_string())
}

pub(super) fn string_list(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
}

pub(super) fn strip_tag(repository: &str) -> &str {
    match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    }
}

pub(super) fn registry_host(reference: &str) -> &str {
    reference.split('/').next().unwrap_or(reference)
}

/// A blocking reader over the engine's async `docker save` stream, for the tar splitter's thread.
pub(super) fn tokio_util_bridge(tar: crate::image::engine::ImageTar) -> impl std::io::Read {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_venv_goes_before_the_path_the_image_would_otherwise_have() {
        let bare = Settings::default();
        let base = serde_json::json!({"Env": ["LANG=C", "PATH=/usr/local/bin:/usr/bin"]});
        assert_eq!(settings_path(&bare, &base), "/usr/local/bin:/usr/bin");
        assert_eq!(settings_path(&bare, &Value::Null), recipe::DEFAULT_PATH);
        let own = Settings { env: vec![("PATH".into(), "/opt/tools".into())], ..Settings::default() };
        assert_eq!(settings_path(&own, &base), "/opt/tools");
    }
}
