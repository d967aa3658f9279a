//! What `flyte build` builds: one job per image step of the plan (an image shared by fast-copy
//! environments is built once; a full build gets its own), with its target repository, its local
//! inputs, and the content tag: the plan's version of the step (spec and every input file) bound to the
//! base image's resolved digest, the platform and the recipe's format, so a moving base tag never
//! leaves a stale image under an unchanged tag.

use std::path::{Path, PathBuf};

use compact_str::CompactString;
use sha2::{Digest, Sha256};

use crate::bundle::walk::{self, Globs};
use crate::bundle::{FileEntry, FileSet, cache::StatCache};
use crate::image::dockerignore;
use crate::manifest::model::{CopyStyle, Environment, Image, ImageSource, Manifest};
use crate::plan::{Plan, StepDetail};

/// Bumped whenever the LLB a spec turns into changes, so old tags are not taken for new images.
pub const RECIPE_FORMAT: &str = "flyte-image-1";
/// The one platform built today.
pub const PLATFORM: &str = "linux/amd64";
/// Where images go when no registry is set and nothing is pushed (the engine's store only).
pub const LOCAL_REGISTRY: &str = "flyte.local";
pub const TAG_LEN: usize = 20;

#[derive(Clone, Debug)]
pub struct Job {
    /// The plan step: `image:<image>` or `image:<image>+<env>`.
    pub step: String,
    /// The plan's content digest of the step.
    pub step_digest: String,
    pub image: Image,
    /// The environment whose code is baked in (a full build).
    pub full: Option<Environment>,
    /// `registry/repository`, without a tag.
    pub repository: String,
    pub pushable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no environment is named \"{0}\"")]
    UnknownEnvironment(String),
    #[error("image \"{image}\" is built for {platforms}, and flyte builds one platform ({PLATFORM}) today")]
    Platforms { image: String, platforms: String },
    #[error("cannot read the files of image \"{image}\": {message}")]
    Files { image: String, message: String },
}

/// The jobs for the plan, limited to the images the named environments use (all when none named).
pub fn jobs(manifest: &Manifest, plan: &Plan, only: &[String], registry: Option<&str>) -> Result<Vec<Job>, JobError> {
    if let Some(unknown) = only.iter().find(|name| !manifest.environments.contains_key(name.as_str())) {
        return Err(JobError::UnknownEnvironment(unknown.clone()));
    }
    let mut jobs = Vec::new();
    for step in &plan.steps {
        let StepDetail::Image { image, repository, registry: image_registry, baked_code_of, .. } = &step.detail else {
            continue;
        };
        let users: Vec<&Environment> = manifest
            .environments
            .values()
            .map(Box::as_ref)
            .filter(|env| env.image == image)
            .filter(|env| match baked_code_of {
                Some(baked) => env.name == baked,
                None => env.code.copy_style == CopyStyle::Fast,
            })
            .collect();
        if !only.is_empty() && !users.iter().any(|env| only.iter().any(|o| *o == env.name)) {
            continue;
        }
        let spec = &manifest.images[image.as_str()];
        let effective: Vec<&str> = spec.platforms.iter().map(CompactString::as_str).collect();
        if !(effective.is_empty() || effective == [PLATFORM]) {
            return Err(JobError::Platforms { image: image.clone(), platforms: spec.platforms.join(", ") });
        }
        let chosen = registry.map(str::to_string).or_else(|| image_registry.clone());
        let pushable = chosen.is_some();
        let prefix = chosen.unwrap_or_else(|| LOCAL_REGISTRY.to_string());
        jobs.push(Job {
            step: step.id.to_string(),
            step_digest: step.digest.to_string(),
            image: spec.clone(),
            full: baked_code_of.as_ref().map(|env| (*manifest.environments[env.as_str()]).clone()),
            repository: format!("{}/{}", prefix.trim_end_matches('/'), repository),
            pushable,
        });
    }
    Ok(jobs)
}

/// The base image reference an image starts from (a Dockerfile image has none here: its FROM lines do).
pub fn base_reference(image: &Image) -> Option<String> {
    match &image.source {
        ImageSource::Base { base } => Some(normalize(base)),
        ImageSource::Debian { python } => Some(format!("docker.io/library/python:{python}-slim-bookworm")),
        ImageSource::Dockerfile { .. } => None,
    }
}

/// A reference with its registry spelled out, as BuildKit reads `docker-image://` sources.
pub fn normalize(reference: &str) -> String {
    let (first, _) = reference.split_once('/').unwrap_or(("", reference));
    let has_registry = first.contains('.') || first.contains(':') || first == "localhost";
    match (has_registry, reference.contains('/')) {
        (true, _) => reference.to_string(),
        (false, true) => format!("docker.io/{reference}"),
        (false, false) => format!("docker.io/library/{reference}"),
    }
}

/// The content tag: the plan's digest of the step, the resolved base, the platform and the recipe.
pub fn tag(job: &Job, resolved_base: &str) -> String {
    let mut hasher = Sha256::new();
    // The bootstrap's text too: a changed bootstrap must not hide behind an unchanged tag.
    let bootstrap = hex::encode(Sha256::digest(crate::image::llb::recipe::BOOTSTRAP.as_bytes()));
    for part in [RECIPE_FORMAT, &bootstrap, &job.step_digest, resolved_base, PLATFORM] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())[..TAG_LEN].to_string()
}

/// The local files an image reads, each input as a set relative to `root`.
pub struct LocalFiles {
    pub dockerfile: Option<DockerfileFiles>,
    pub requirements: Option<FileSet>,
    pub uv_project: Option<FileSet>,
    pub sources: Vec<(PathBuf, FileSet)>,
    pub code: Option<FileSet>,
}

/// A Dockerfile image's two inputs: the Dockerfile alone, and the context as `.dockerignore` leaves it.
pub struct DockerfileFiles {
    pub dockerfile_dir: PathBuf,
    pub filename: String,
    pub dockerfile: FileSet,
    pub context_dir: PathBuf,
    pub context: FileSet,
}

/// The files of a Dockerfile build's context, as Docker sends them (`.dockerignore` applied); links are
/// kept as links, empty folders are not kept.
pub fn context_files(context: &Path) -> Result<FileSet, String> {
    let rules = dockerignore::DockerIgnore::read(context).map_err(|e| e.to_string())?;
    let entries = dockerignore::context_entries(context, &rules).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for entry in entries {
        match entry.kind {
            dockerignore::EntryKind::File => {
                files.push(FileEntry::read(context, &entry.path).map_err(|e| format!("{}: {e}", entry.path))?);
            }
            dockerignore::EntryKind::Symlink => {
                let target =
                    std::fs::read_link(context.join(&entry.path)).map_err(|e| format!("{}: {e}", entry.path))?;
                let text = target.to_string_lossy().into_owned();
                files.push(FileEntry {
                    path: entry.path,
                    executable: false,
                    size: text.len() as u64,
                    digest: Sha256::digest(text.as_bytes()).into(),
                    symlink: true,
                });
            }
            dockerignore::EntryKind::Dir | dockerignore::EntryKind::Other => {}
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(FileSet { files })
}

/// Collects the files of a job's inputs, with the same selection rules as bundles and plans.
pub fn local_files(job: &Job, root: &Path, cache_dir: &Path) -> Result<LocalFiles, JobError> {
    let error =
        |e: &dyn std::fmt::Display| JobError::Files { image: job.image.name.to_string(), message: e.to_string() };
    let single = |relative: &str| -> Result<FileEntry, JobError> {
        FileEntry::read(root, relative).map_err(|e| error(&format!("{relative}: {e}")))
    };
    let scan = |dir: &Path| -> Result<walk::Scan, JobError> {
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut stat_cache = StatCache::load(cache_dir, &absolute);
        let scan = walk::scan(dir, &mut stat_cache).map_err(|e| error(&e))?;
        let _ = stat_cache.save();
        Ok(scan)
    };
    let image = &job.image;
    let dockerfile = match &image.source {
        ImageSource::Dockerfile { dockerfile, context, .. } => {
            let path = root.join(dockerfile);
            let dockerfile_dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| root.to_path_buf());
            let filename = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let entry =
                FileEntry::read(&dockerfile_dir, &filename).map_err(|e| error(&format!("{dockerfile}: {e}")))?;
            let context_dir = root.join(context);
            let context = context_files(&context_dir).map_err(|e| error(&e))?;
            Some(DockerfileFiles {
                dockerfile_dir,
                filename,
                dockerfile: FileSet { files: vec![entry] },
                context_dir,
                context,
            })
        }
        _ => None,
    };
    let requirements = match &image.requirements {
        Some(path) => Some(FileSet { files: vec![single(path)?] }),
        None => None,
    };
    let uv_project = match &image.uv_project {
        Some(uv) => {
            let mut files = vec![single(&uv.pyproject)?, single(&uv.lock)?];
            files.sort_by(|a, b| a.path.cmp(&b.path));
            Some(FileSet { files })
        }
        None => None,
    };
    let mut sources = Vec::new();
    for folder in &image.sources {
        let dir = root.join(&folder.src);
        let files = FileSet { files: scan(&dir)?.files };
        sources.push((dir, files));
    }
    let code = match &job.full {
        Some(env) => {
            let scanned = scan(root)?;
            Some(scanned.select(&Globs::new(&env.code.include, &env.code.exclude)).files)
        }
        None => None,
    };
    Ok(LocalFiles { dockerfile, requirements, uv_project, sources, code })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_get_their_registry_spelled_out() {
        assert_eq!(normalize("python:3.12"), "docker.io/library/python:3.12");
        assert_eq!(normalize("team/app:1"), "docker.io/team/app:1");
        assert_eq!(normalize("127.0.0.1:5000/base/python@sha256:ab"), "127.0.0.1:5000/base/python@sha256:ab");
        assert_eq!(normalize("localhost/x:1"), "localhost/x:1");
        assert_eq!(normalize("ghcr.io/astral-sh/uv:0.5"), "ghcr.io/astral-sh/uv:0.5");
    }
}
