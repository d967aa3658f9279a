//! Code bundles: which files an environment ships, their digests, and the deterministic archive.
//!
//! [`walk`] selects files (standard ignores < `.gitignore` < `.flyteignore` < manifest exclude, then
//! manifest include as an allowlist) using [`ignore`] for git's semantics and [`cache`] to recognise
//! unchanged files by stat; [`build`] writes the archive with [`archive`] into the cache, by content
//! digest. [`select`] holds the file list type and its framed digest.

pub mod archive;
pub mod build;
pub mod cache;
pub mod ignore;
pub mod select;
pub mod walk;

use std::path::PathBuf;

use compact_str::CompactString;
use serde::Serialize;

pub use select::{FileEntry, FileSet};
pub use walk::{LeftOut, Scan, Warning};

use crate::manifest::diagnostic::suggestion;
use crate::manifest::model::{CopyStyle, Manifest};

/// One environment's bundle and how its files were chosen.
#[derive(Debug, Serialize)]
pub struct Report {
    pub environment: String,
    pub bundle: build::Bundle,
    /// Every file shipped.
    #[serde(skip)]
    pub files: FileSet,
    /// What the ignore files and the manifest's globs left out, folders once.
    pub left_out: Vec<LeftOut>,
}

/// The bundles of one run, and what the scan of the tree they share warned about (once, not per bundle).
#[derive(Debug, Serialize)]
pub struct Bundles {
    pub warnings: Vec<Warning>,
    pub bundles: Vec<Report>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("no environment is named \"{name}\"")]
    UnknownEnvironment { name: String, help: String },
    #[error("\"{0}\" bakes its code into its image (copy_style = \"full\"), so it has no bundle")]
    FullBuild(String),
    #[error(transparent)]
    Walk(#[from] walk::WalkError),
    #[error(transparent)]
    Build(#[from] build::BuildError),
}

impl BundleError {
    pub fn help(&self) -> String {
        match self {
            BundleError::UnknownEnvironment { help, .. } => help.clone(),
            BundleError::FullBuild(_) => {
                "`flyte build` builds its image; `flyte bundle` is for copy_style = \"fast\"".to_string()
            }
            BundleError::Walk(error) => error.help().to_string(),
            BundleError::Build(build::BuildError::Changed { .. }) => {
                "run the command again once the files are saved".to_string()
            }
            BundleError::Build(_) => {
                "check the cache folder's free space and permissions (FLYTE_CACHE_DIR moves it)".to_string()
            }
        }
    }
}

/// The cache folder, or a folder under the system's temporary folder when no home is known.
pub fn cache_dir() -> PathBuf {
    cache::dir().unwrap_or_else(|| std::env::temp_dir().join("flyte-cache"))
}

/// Builds the bundles of the fast-copy environments (or of the one named), reusing what is cached.
pub fn bundle_environments(manifest: &Manifest, only: Option<&str>) -> Result<Bundles, BundleError> {
    if let Some(name) = only {
        let Some(env) = manifest.environments.get(name) else {
            let names: Vec<&str> = manifest.environments.keys().map(CompactString::as_str).collect();
            return Err(BundleError::UnknownEnvironment { name: name.to_string(), help: suggestion(name, &names) });
        };
        if env.code.copy_style == CopyStyle::Full {
            return Err(BundleError::FullBuild(name.to_string()));
        }
    }
    let root = &manifest.project.root;
    let cache_dir = cache_dir();
    let mut stat_cache = cache::StatCache::load(&cache_dir, &std::path::absolute(root).unwrap_or(root.clone()));
    let scan = walk::scan(root, &mut stat_cache)?;
    // A cache that cannot be saved costs the next run time, not this run its result.
    let _ = stat_cache.save();
    let mut reports = Vec::new();
    for env in manifest.environments.values() {
        if env.code.copy_style != CopyStyle::Fast || only.is_some_and(|o| o != env.name) {
            continue;
        }
        let selection = scan.select(&walk::Globs::new(&env.code.include, &env.code.exclude));
        let bundle = build::build(root, &selection.files, &cache_dir)?;
        let mut left_out = scan.left_out.clone();
        left_out.extend(selection.left_out);
        left_out.sort_by(|a, b| a.path.cmp(&b.path));
        reports.push(Report { environment: env.name.to_string(), bundle, files: selection.files, left_out });
    }
    Ok(Bundles { warnings: scan.warnings, bundles: reports })
}
