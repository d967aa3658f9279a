//! Building on a standalone buildkitd (`BUILDKIT_HOST`), which has no image store beside it: local
//! inputs go to the registry as small images that BuildKit pulls by digest; BuildKit's image exporter
//! pushes each result to a staging tag; flyte then finishes the image in the registry, writing the
//! config the manifest asks for over the same layers, under the content tag (the layers are not sent
//! again: the registry has them in that repository).
//!
//! No buildkitd exists in Debian 12, so this path is written against BuildKit's published API and the
//! pieces it shares with the engine path (the registry client, the config writer), not run end to end
//! here. The buildkitd must allow `network.host` (`--allow-insecure-entitlement network.host`) for
//! steps that install packages.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde_json::Value;

use crate::image::config::{self, Settings};
use crate::image::engine::SolveRequest;
use crate::image::inputs::Input;
use crate::image::layers::MEDIA_TAR_GZIP;
use crate::image::registry::reference::is_loopback;
use crate::image::registry::{ImageToPush, LayerBlob, PushReport, Registry, RegistryError};

/// Pushes each input the registry lacks as `<repository>-inputs:<kind>-<digest>`; gives, for each input's
/// local name, the reference BuildKit pulls it by (`<repository>-inputs@sha256:…`).
pub async fn push_inputs(
    registry: &Registry,
    repository: &str,
    inputs: &[Input],
) -> Result<HashMap<String, String>, RegistryError> {
    let store = format!("{repository}-inputs");
    let mut names = HashMap::new();
    for input in inputs {
        let content = input.reference.rsplit(':').next().unwrap_or_default();
        let tagged = format!("{store}:{}-{content}", input.kind);
        let digest = match registry.manifest_digest(&tagged).await? {
            Some(digest) => digest,
            None => {
                let layer = LayerBlob {
                    path: input.layer.clone(),
                    digest: input.layer_digest.clone(),
                    size: input.layer_size,
                    media_type: MEDIA_TAR_GZIP.to_string(),
                    mount_from: Vec::new(),
                };
                let image = ImageToPush { config: input.config.clone(), layers: vec![layer] };
                registry.push_image(&tagged, &image).await?.manifest_digest
            }
        };
        names.insert(input.reference.clone(), format!("{store}@{digest}"));
    }
    Ok(names)
}

/// The exporter settings that make BuildKit push its result to `staging`.
pub fn export_to(request: &mut SolveRequest, staging: &str) {
    request.exporter = "image".into();
    request.exporter_attrs =
        BTreeMap::from([("name".to_string(), staging.to_string()), ("push".to_string(), "true".to_string())]);
    let host = staging.split('/').next().unwrap_or_default();
    if is_loopback(host) {
        request.exporter_attrs.insert("registry.insecure".into(), "true".into());
    }
}

/// The digest of what BuildKit pushed to `staging`, pinned as `repository@digest`, and its config.
pub async fn pinned(registry: &Registry, staging: &str) -> Result<(String, Value), RegistryError> {
    let manifest = registry.fetch_manifest(staging).await?;
    let document: Value = serde_json::from_slice(&manifest.bytes).unwrap_or(Value::Null);
    let config_digest = document["config"]["digest"].as_str().unwrap_or_default();
    let config: Value = serde_json::from_slice(&registry.fetch_blob(staging, config_digest).await?).unwrap_or_default();
    let repository = staging.rsplit_once(':').map_or(staging, |(repository, _)| repository);
    Ok((format!("{repository}@{}", manifest.digest), config))
}

/// Writes the config flyte wants over the layers BuildKit pushed to `staging` and pushes that image as
/// `reference` (the same repository: the layers are already there).
pub async fn finish(
    registry: &Registry,
    staging: &str,
    reference: &str,
    base: &Value,
    settings: &Settings,
) -> Result<PushReport, RegistryError> {
    let manifest = registry.fetch_manifest(staging).await?;
    let document: Value = serde_json::from_slice(&manifest.bytes).unwrap_or(Value::Null);
    let config_digest = document["config"]["digest"].as_str().unwrap_or_default();
    let built: Value = serde_json::from_slice(&registry.fetch_blob(staging, config_digest).await?).unwrap_or_default();
    let diff_ids: Vec<String> = built["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|id| id.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let layers = document["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|layer| LayerBlob {
            // No file: the registry holds these in this repository; a push only checks them.
            path: PathBuf::new(),
            digest: layer["digest"].as_str().unwrap_or_default().to_string(),
            size: layer["size"].as_u64().unwrap_or(0),
            media_type: layer["mediaType"].as_str().unwrap_or_default().to_string(),
            mount_from: Vec::new(),
        })
        .collect();
    let image = ImageToPush { config: config::image_config(&built, base, settings, &diff_ids), layers };
    registry.push_image(reference, &image).await
}
