//! Pushing one image: takes a target reference and the image (its config's exact bytes and its
//! compressed layer files), gives the manifest digest and what each blob cost.
//!
//! Each layer, cheapest first: already in the repository (a HEAD) → nothing to send; in another
//! repository of the same registry the caller names → mounted; else streamed from its file in one
//! monolithic upload (a POST for the session, then one PUT carrying the whole file), since chunked
//! uploads pay a round trip and the registry's bookkeeping per chunk. A mount the registry declines
//! opens an upload session, which the upload then uses. Then the config blob, then an OCI image manifest
//! (`application/vnd.oci.image.manifest.v1+json`) under the tag.
//!
//! Digests: the registry checks each blob against the digest its PUT names and refuses a mismatch; the
//! digests it reports back for blobs and for the manifest are compared with those computed here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderValue, Method, StatusCode, header};
use oci_client::manifest::{IMAGE_CONFIG_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use reqwest::Url;
use serde::Serialize;

use super::auth::Scope;
use super::client::{Body, Request, content_digest};
use super::error::{Access, RegistryError};
use super::reference::ImageReference;
use super::{Registry, retry, sha256_digest};

/// Layers uploaded at once, as Docker does: enough to hide round trips, few enough not to starve each.
const PARALLEL_UPLOADS: usize = 3;

#[derive(Clone, Debug)]
pub struct ImageToPush {
    /// The image config, byte for byte as its digest was taken.
    pub config: Vec<u8>,
    /// Bottom layer first.
    pub layers: Vec<LayerBlob>,
}

#[derive(Clone, Debug)]
pub struct LayerBlob {
    /// The compressed layer on disk.
    pub path: PathBuf,
    /// `sha256:…` of the file.
    pub digest: String,
    pub size: u64,
    /// e.g. `application/vnd.oci.image.layer.v1.tar+gzip`.
    pub media_type: String,
    /// Repositories on the target's registry known to hold this blob (`team/base`, or full references).
    pub mount_from: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum BlobOutcome {
    Uploaded,
    AlreadyPresent,
    Mounted { from: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct PushedBlob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub outcome: BlobOutcome,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlobTotals {
    pub blobs: usize,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    /// `registry/repository:tag@digest`.
    pub reference: String,
    pub manifest_digest: String,
    /// The layers in order, then the config.
    pub blobs: Vec<PushedBlob>,
    /// Attempts repeated after transient failures.
    pub retries: u32,
}

impl PushReport {
    pub fn uploaded(&self) -> BlobTotals {
        self.totals(|outcome| *outcome == BlobOutcome::Uploaded)
    }

    pub fn already_present(&self) -> BlobTotals {
        self.totals(|outcome| *outcome == BlobOutcome::AlreadyPresent)
    }

    pub fn mounted(&self) -> BlobTotals {
        self.totals(|outcome| matches!(outcome, BlobOutcome::Mounted { .. }))
    }

    fn totals(&self, counted: impl Fn(&BlobOutcome) -> bool) -> BlobTotals {
        let blobs = self.blobs.iter().filter(|blob| counted(&blob.outcome));
        blobs.fold(BlobTotals::default(), |totals, blob| BlobTotals {
            blobs: totals.blobs + 1,
            bytes: totals.bytes + blob.size,
        })
    }
}

/// What a mount request came to.
enum Mount {
    Mounted,
    /// Declined; the registry opened this upload session instead.
    Declined(Url),
}

impl Registry {
    /// Pushes `image` to `target` (a reference with a tag) and returns what it cost.
    pub async fn push_image(&self, target: &str, image: &ImageToPush) -> Result<PushReport, RegistryError> {
        let target = ImageReference::parse(target)?;
        let retries = AtomicU32::new(0);
        let layer_outcomes: Vec<BlobOutcome> = futures_util::stream::iter(&image.layers)
            .map(|layer| self.place_layer(&target, layer, &retries))
            .buffered(PARALLEL_UPLOADS)
            .try_collect()
            .await?;
        let mut blobs: Vec<PushedBlob> = image
            .layers
            .iter()
            .zip(layer_outcomes)
            .map(|(layer, outcome)| PushedBlob {
                digest: layer.digest.clone(),
                size: layer.size,
                media_type: layer.media_type.clone(),
                outcome,
            })
            .collect();

        let config_digest = sha256_digest(&image.config);
        let config_present =
            retry::retry(&self.retry, &retries, || self.head_blob(&target, &config_digest, Access::Push)).await?;
        if !config_present {
            let body = Body::Bytes(Bytes::copy_from_slice(&image.config));
            self.upload(&target, &body, &config_digest, None, &retries).await?;
        }
        let config_outcome = if config_present { BlobOutcome::AlreadyPresent } else { BlobOutcome::Uploaded };
        blobs.push(PushedBlob {
            digest: config_digest,
            size: image.config.len() as u64,
            media_type: IMAGE_CONFIG_MEDIA_TYPE.to_string(),
            outcome: config_outcome,
        });

        let manifest = manifest_bytes(&blobs);
        let manifest_digest = sha256_digest(&manifest);
        if let Some(pinned) = target.digest.as_ref().filter(|pinned| **pinned != manifest_digest) {
            return Err(RegistryError::Manifest {
                reference: target.to_string(),
                message: format!("the reference pins {pinned}, but the image's manifest is {manifest_digest}"),
            });
        }
        let manifest = Bytes::from(manifest);
        retry::retry(&self.retry, &retries, || self.put_manifest(&target, &manifest, &manifest_digest)).await?;
        Ok(PushReport {
            reference: ImageReference { digest: Some(manifest_digest.clone()), ..target.clone() }.to_string(),
            manifest_digest,
            blobs,
            retries: retries.load(Ordering::Relaxed),
        })
    }

    async fn place_layer(
        &self,
        target: &ImageReference,
        layer: &LayerBlob,
        retries: &AtomicU32,
    ) -> Result<BlobOutcome, RegistryError> {
        // A layer with no file is one the caller knows the registry holds elsewhere (a base image's):
        // it is there already or mounted, never uploaded.
        if !layer.path.as_os_str().is_empty() {
            let on_disk = std::fs::metadata(&layer.path)
                .map_err(|source| RegistryError::Layer { path: layer.path.clone(), source })?
                .len();
            if on_disk != layer.size {
                return Err(RegistryError::LayerChanged {
                    path: layer.path.clone(),
                    expected: layer.size,
                    actual: on_disk,
                });
            }
        }
        if retry::retry(&self.retry, retries, || self.head_blob(target, &layer.digest, Access::Push)).await? {
            return Ok(BlobOutcome::AlreadyPresent);
        }
        let mut session = None;
        for source in layer.mount_from.iter().filter_map(|from| target.mount_source(from)) {
            // A failed mount costs only the upload it would have saved: fall through to the next source.
            match retry::retry(&self.retry, retries, || self.mount(target, &source, &layer.digest)).await {
                Ok(Mount::Mounted) => return Ok(BlobOutcome::Mounted { from: source }),
                Ok(Mount::Declined(location)) => {
                    if let Some(unused) = session.replace(location) {
                        self.cancel_upload(target, unused).await;
                    }
                }
                Err(_) => {}
            }
        }
        if layer.path.as_os_str().is_empty() {
            if let Some(unused) = session {
                self.cancel_upload(target, unused).await;
            }
            let sources = layer.mount_from.join(", ");
            return Err(RegistryError::Layer {
                path: layer.path.clone(),
                source: std::io::Error::other(format!(
                    "layer {} could not be mounted from {sources} and flyte has no copy to upload",
                    layer.digest
                )),
            });
        }
        let body = Body::File { path: &layer.path, size: layer.size };
        self.upload(target, &body, &layer.digest, session, retries).await?;
        Ok(BlobOutcome::Uploaded)
    }

    /// Uploads one blob monolithically; each attempt opens a fresh session (but the first may use one a
    /// declined mount opened) and sends the whole body again.
    async fn upload(
        &self,
        target: &ImageReference,
        body: &Body<'_>,
        digest: &str,
        session: Option<Url>,
        retries: &AtomicU32,
    ) -> Result<(), RegistryError> {
        let mut session = session;
        retry::retry(&self.retry, retries, || {
            let opened = session.take();
            async move {
                let location = match opened {
                    Some(location) => location,
                    None => self.start_upload(target).await?,
                };
                self.finish_upload(target, location, body, digest).await
            }
        })
        .await
    }

    /// Opens an upload session and returns its location.
    pub(crate) async fn start_upload(&self, target: &ImageReference) -> Result<Url, RegistryError> {
        let operation = format!("starting an upload to {}", target.repository_name());
        let url = self.transport.url(target, "blobs/uploads/")?;
        let scopes = vec![Scope::new(&target.repository, Access::Push)];
        let response = self.transport.send(target, &Request::new(Method::POST, url, scopes, operation.clone())).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.transport.refusal(response, target, Access::Push, &operation).await);
        }
        self.transport.location(target, &response, &[])
    }

    async fn finish_upload(
        &self,
        target: &ImageReference,
        location: Url,
        body: &Body<'_>,
        digest: &str,
    ) -> Result<(), RegistryError> {
        let operation = format!("uploading the blob {digest} to {}", target.repository_name());
        let mut url = location;
        url.query_pairs_mut().append_pair("digest", digest);
        let scopes = vec![Scope::new(&target.repository, Access::Push)];
        let request = Request::new(Method::PUT, url, scopes, operation.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))
            .body(body.clone());
        let response = self.transport.send(target, &request).await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.transport.refusal(response, target, Access::Push, &operation).await);
        }
        check_reported_digest(&operation, digest, &response)
    }

    /// Abandons an upload session; the registry would expire it anyway, so failures are ignored.
    pub(crate) async fn cancel_upload(&self, target: &ImageReference, location: Url) {
        let scopes = vec![Scope::new(&target.repository, Access::Push)];
        let operation = format!("cancelling an upload to {}", target.repository_name());
        let _ = self.transport.send(target, &Request::new(Method::DELETE, location, scopes, operation)).await;
    }

    async fn mount(&self, target: &ImageReference, source: &str, digest: &str) -> Result<Mount, RegistryError> {
        let operation = format!("mounting the blob {digest} from {source} into {}", target.repository_name());
        let mut url = self.transport.url(target, "blobs/uploads/")?;
        url.query_pairs_mut().append_pair("mount", digest).append_pair("from", source);
        // One token for both repositories: pushing to the target, reading the source.
        let scopes = vec![Scope::new(&target.repository, Access::Push), Scope::new(source, Access::Pull)];
        let response = self.transport.send(target, &Request::new(Method::POST, url, scopes, operation.clone())).await?;
        match response.status() {
            StatusCode::CREATED => check_reported_digest(&operation, digest, &response).map(|()| Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Declined(self.transport.location(target, &response, &[])?)),
            _ => Err(self.transport.refusal(response, target, Access::Push, &operation).await),
        }
    }

    async fn put_manifest(&self, target: &ImageReference, manifest: &Bytes, digest: &str) -> Result<(), RegistryError> {
        let operation = format!("pushing the manifest of {target}");
        let url = self.transport.url(target, &format!("manifests/{}", target.tag.as_deref().unwrap_or(digest)))?;
        let scopes = vec![Scope::new(&target.repository, Access::Push)];
        let request = Request::new(Method::PUT, url, scopes, operation.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE))
            .body(Body::Bytes(manifest.clone()));
        let response = self.transport.send(target, &request).await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.transport.refusal(response, target, Access::Push, &operation).await);
        }
        check_reported_digest(&operation, digest, &response)
    }
}

/// The digest a registry reports for what it stored must be the one computed here; it may not report one.
fn check_reported_digest(operation: &str, expected: &str, response: &reqwest::Response) -> Result<(), RegistryError> {
    match content_digest(response) {
        Some(reported) if reported != expected => Err(RegistryError::DigestMismatch {
            operation: operation.to_string(),
            expected: expected.to_string(),
            actual: reported,
        }),
        _ => Ok(()),
    }
}

/// The OCI image manifest of `blobs` (the layers in order, then the config), as compact JSON.
fn manifest_bytes(blobs: &[PushedBlob]) -> Vec<u8> {
    let descriptor = |blob: &PushedBlob| OciDescriptor {
        media_type: blob.media_type.clone(),
        digest: blob.digest.clone(),
        size: blob.size as i64,
        urls: None,
        annotations: None,
        artifact_type: None,
    };
    let (config, layers) = blobs.split_last().expect("the config is always last");
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: descriptor(config),
        layers: layers.iter().map(descriptor).collect(),
        subject: None,
        artifact_type: None,
        annotations: None,
    };
    serde_json::to_vec(&manifest).expect("a manifest always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(digest: &str, size: u64, media_type: &str, outcome: BlobOutcome) -> PushedBlob {
        PushedBlob { digest: digest.into(), size, media_type: media_type.into(), outcome }
    }

    #[test]
    fn the_manifest_lists_layers_in_order_and_the_config_with_oci_media_types() {
        let blobs = [
            blob("sha256:aa", 10, "application/vnd.oci.image.layer.v1.tar+gzip", BlobOutcome::Uploaded),
            blob("sha256:bb", 20, "application/vnd.oci.image.layer.v1.tar+gzip", BlobOutcome::AlreadyPresent),
            blob("sha256:cc", 3, IMAGE_CONFIG_MEDIA_TYPE, BlobOutcome::Uploaded),
        ];
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes(&blobs)).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], OCI_IMAGE_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], "sha256:cc");
        assert_eq!(manifest["config"]["mediaType"], IMAGE_CONFIG_MEDIA_TYPE);
        let layers: Vec<&str> =
            manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
        assert_eq!(layers, ["sha256:aa", "sha256:bb"]);
        assert_eq!(manifest["layers"][1]["size"], 20);
    }

    #[test]
    fn the_report_totals_blobs_and_bytes_by_outcome() {
        let report = PushReport {
            reference: "r/x:1@sha256:dd".into(),
            manifest_digest: "sha256:dd".into(),
            blobs: vec![
                blob("sha256:aa", 10, "l", BlobOutcome::Uploaded),
                blob("sha256:bb", 20, "l", BlobOutcome::Mounted { from: "team/base".into() }),
                blob("sha256:cc", 30, "l", BlobOutcome::AlreadyPresent),
                blob("sha256:ee", 3, "c", BlobOutcome::Uploaded),
            ],
            retries: 0,
        };
        assert_eq!(report.uploaded(), BlobTotals { blobs: 2, bytes: 13 });
        assert_eq!(report.mounted(), BlobTotals { blobs: 1, bytes: 20 });
        assert_eq!(report.already_present(), BlobTotals { blobs: 1, bytes: 30 });
        let json = serde_json::to_value(&report.blobs[1]).unwrap();
        assert_eq!(json["outcome"], serde_json::json!({"how": "mounted", "from": "team/base"}));
    }
}
