//! OCI registry client: takes image references and built images (a config and compressed layer files on
//! disk), gives manifest digests, pushed images with a report of what each blob cost, and manifests and
//! blobs pulled back.
//!
//! It uses oci-client's reference parsing and manifest types, and its own distribution-protocol calls on
//! reqwest, because oci-client lacks what pushing reliably needs: Docker's credentials and credential
//! helpers ([`credentials`]), token requests with refresh tokens and several scopes ([`auth`]), the
//! status and `Retry-After` of a failure to decide on a retry ([`retry`]), uploads streamed from a file
//! in one request, and the upload session a refused mount opens ([`push`]). Every network operation is
//! wrapped in [`retry::retry`]; [`client`] holds the HTTP side (plain HTTP for loopback registries and
//! those listed as insecure, proxies from the environment for the rest).

pub mod auth;
pub mod client;
pub mod credentials;
pub mod error;
pub mod push;
pub mod reference;
pub mod retry;

use std::path::PathBuf;
use std::sync::atomic::AtomicU32;

use http::{Method, StatusCode, header};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
    OciImageIndex,
};
use sha2::{Digest, Sha256, Sha512};

use auth::{Authorizer, Scope};
use client::{Clients, Request, Transport, accept, content_digest};
use credentials::DockerConfig;
pub use error::{Access, RegistryError};
pub use push::{BlobOutcome, BlobTotals, ImageToPush, LayerBlob, PushReport, PushedBlob};
pub use reference::ImageReference;
pub use retry::RetryPolicy;

/// Every manifest kind a pull accepts: OCI and Docker, single images and indexes.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] =
    [OCI_IMAGE_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE];

#[derive(Clone, Debug, Default)]
pub struct RegistrySettings {
    /// Registries (`host` or `host:port`) reached over plain HTTP although not on loopback.
    pub insecure: Vec<String>,
    /// The Docker config file; `None` is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    pub retry: RetryPolicy,
}

/// A manifest as the registry stores it.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub digest: String,
    /// The exact bytes, which the digest is of.
    pub bytes: Vec<u8>,
    pub media_type: String,
}

pub struct Registry {
    transport: Transport,
    retry: RetryPolicy,
}

impl Registry {
    pub fn new(settings: RegistrySettings) -> Result<Registry, RegistryError> {
        let config = match settings.docker_config.or_else(DockerConfig::default_path) {
            Some(path) => DockerConfig::load(&path)?,
            None => DockerConfig::empty(PathBuf::from("~/.docker/config.json")),
        };
        let transport = Transport::new(Clients::new()?, settings.insecure, Authorizer::new(config));
        Ok(Registry { transport, retry: settings.retry })
    }

    /// The digest of the manifest `reference` names (by tag or digest), or `None` when there is none.
    /// Any other failure is an error: a caller deciding whether to build must not read it as "absent".
    pub async fn manifest_digest(&self, reference: &str) -> Result<Option<String>, RegistryError> {
        let target = ImageReference::parse(reference)?;
        retry::retry(&self.retry, &AtomicU32::new(0), || self.head_manifest(&target)).await
    }

    /// The digest of the manifest (or index) `reference` names, to pin a base image.
    pub async fn resolve(&self, reference: &str) -> Result<String, RegistryError> {
        let target = ImageReference::parse(reference)?;
        self.manifest_digest(reference).await?.ok_or_else(|| RegistryError::NotFound {
            what: target.describe_manifest(),
            target: target.repository_name(),
        })
    }

    /// The digest of the single-platform manifest for `os`/`architecture` (`linux`/`amd64`): the entry of
    /// an index, or the manifest itself when `reference` names a single image.
    pub async fn resolve_platform(
        &self,
        reference: &str,
        os: &str,
        architecture: &str,
    ) -> Result<String, RegistryError> {
        let manifest = self.fetch_manifest(reference).await?;
        if manifest.media_type != OCI_IMAGE_INDEX_MEDIA_TYPE && manifest.media_type != IMAGE_MANIFEST_LIST_MEDIA_TYPE {
            return Ok(manifest.digest);
        }
        let invalid = |message: String| RegistryError::Manifest { reference: reference.to_string(), message };
        let index: OciImageIndex = serde_json::from_slice(&manifest.bytes)
            .map_err(|error| invalid(format!("the image index cannot be read: {error}")))?;
        let platforms: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|entry| entry.platform.as_ref())
            .map(|platform| format!("{}/{}", platform.os, platform.architecture))
            .collect();
        let wanted = format!("{os}/{architecture}");
        let found = index.manifests.iter().find(|entry| {
            entry
                .platform
                .as_ref()
                .is_some_and(|platform| format!("{}/{}", platform.os, platform.architecture) == wanted)
        });
        found
            .map(|entry| entry.digest.clone())
            .ok_or_else(|| invalid(format!("the index has no {wanted} image (it has {})", platforms.join(", "))))
    }

    /// Checks that the credentials may push to the repository `repository_reference` names, before a
    /// long build: starts an upload and cancels it.
    pub async fn check_push_access(&self, repository_reference: &str) -> Result<(), RegistryError> {
        let target = ImageReference::parse(repository_reference)?;
        let retries = AtomicU32::new(0);
        let location = retry::retry(&self.retry, &retries, || self.start_upload(&target)).await?;
        self.cancel_upload(&target, location).await;
        Ok(())
    }

    /// Whether the repository `repository_reference` names holds the blob `digest`.
    pub async fn blob_exists(&self, repository_reference: &str, digest: &str) -> Result<bool, RegistryError> {
        let target = ImageReference::parse(repository_reference)?;
        retry::retry(&self.retry, &AtomicU32::new(0), || self.head_blob(&target, digest, Access::Pull)).await
    }

    /// The manifest `reference` names, its digest checked against its bytes (and against the reference's
    /// digest, when it has one).
    pub async fn fetch_manifest(&self, reference: &str) -> Result<Manifest, RegistryError> {
        let target = ImageReference::parse(reference)?;
        retry::retry(&self.retry, &AtomicU32::new(0), || self.get_manifest(&target)).await
    }

    /// The blob `digest` of the repository `reference` names, checked against its digest.
    pub async fn fetch_blob(&self, reference: &str, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let target = ImageReference::parse(reference)?;
        retry::retry(&self.retry, &AtomicU32::new(0), || self.get_blob(&target, digest)).await
    }

    async fn head_manifest(&self, target: &ImageReference) -> Result<Option<String>, RegistryError> {
        let operation = format!("checking for the manifest {target}");
        let url = self.transport.url(target, &format!("manifests/{}", target.manifest_reference()))?;
        let scopes = vec![Scope::new(&target.repository, Access::Pull)];
        let request = Request::new(Method::HEAD, url, scopes, operation.clone())
            .header(header::ACCEPT, accept(&MANIFEST_MEDIA_TYPES));
        let response = self.transport.send(target, &request).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => match content_digest(&response) {
                Some(digest) => Ok(Some(digest)),
                // The header is optional: the digest is then that of the bytes a GET returns.
                None => self.get_manifest(target).await.map(|manifest| Some(manifest.digest)),
            },
            _ => Err(self.transport.refusal(response, target, Access::Pull, &operation).await),
        }
    }

    async fn get_manifest(&self, target: &ImageReference) -> Result<Manifest, RegistryError> {
        let operation = format!("fetching the manifest {target}");
        let url = self.transport.url(target, &format!("manifests/{}", target.manifest_reference()))?;
        let scopes = vec![Scope::new(&target.repository, Access::Pull)];
        let request = Request::new(Method::GET, url, scopes, operation.clone())
            .header(header::ACCEPT, accept(&MANIFEST_MEDIA_TYPES));
        let response = self.transport.send(target, &request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound { what: target.describe_manifest(), target: target.repository_name() });
        }
        if !response.status().is_success() {
            return Err(self.transport.refusal(response, target, Access::Pull, &operation).await);
        }
        let announced = content_digest(&response);
        let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
        let content_type = content_type.map(|value| value.split(';').next().unwrap_or_default().trim().to_string());
        let bytes =
            response.bytes().await.map_err(|error| client::transport_error(&error, &target.registry, &operation))?;
        let digest = sha256_digest(&bytes);
        for expected in target.digest.iter().chain(announced.iter()) {
            verify_digest(&operation, expected, &bytes)?;
        }
        let media_type = content_type
            .filter(|media_type| MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()))
            .or_else(|| media_type_field(&bytes))
            .unwrap_or_else(|| OCI_IMAGE_MEDIA_TYPE.to_string());
        let digest = target.digest.clone().unwrap_or(digest);
        Ok(Manifest { digest, bytes: bytes.to_vec(), media_type })
    }

    /// `access` is what the caller is about: a push asks with the push token it will need next anyway,
    /// and a refusal then reads "not authorised to push".
    async fn head_blob(&self, target: &ImageReference, digest: &str, access: Access) -> Result<bool, RegistryError> {
        let operation = format!("checking for the blob {digest} in {}", target.repository_name());
        let url = self.transport.url(target, &format!("blobs/{digest}"))?;
        let scopes = vec![Scope::new(&target.repository, access)];
        let request = Request::new(Method::HEAD, url, scopes, operation.clone());
        let response = self.transport.send(target, &request).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            status if status.is_success() => Ok(true),
            _ => Err(self.transport.refusal(response, target, access, &operation).await),
        }
    }

    async fn get_blob(&self, target: &ImageReference, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let operation = format!("fetching the blob {digest} from {}", target.repository_name());
        let url = self.transport.url(target, &format!("blobs/{digest}"))?;
        let scopes = vec![Scope::new(&target.repository, Access::Pull)];
        let request = Request::new(Method::GET, url, scopes, operation.clone());
        let response = self.transport.send(target, &request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                what: format!("the blob {digest}"),
                target: target.repository_name(),
            });
        }
        if !response.status().is_success() {
            return Err(self.transport.refusal(response, target, Access::Pull, &operation).await);
        }
        let bytes =
            response.bytes().await.map_err(|error| client::transport_error(&error, &target.registry, &operation))?;
        verify_digest(&operation, digest, &bytes)?;
        Ok(bytes.to_vec())
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks `bytes` against `expected` (`sha256:…` or `sha512:…`); other algorithms cannot be checked
/// here and pass.
fn verify_digest(operation: &str, expected: &str, bytes: &[u8]) -> Result<(), RegistryError> {
    let actual = match expected.split_once(':') {
        Some(("sha256", _)) => sha256_digest(bytes),
        Some(("sha512", _)) => format!("sha512:{}", hex::encode(Sha512::digest(bytes))),
        _ => return Ok(()),
    };
    if actual == expected {
        return Ok(());
    }
    Err(RegistryError::DigestMismatch { operation: operation.to_string(), expected: expected.to_string(), actual })
}

/// The `mediaType` a manifest declares in its JSON, for registries that answer with a generic type.
fn media_type_field(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Declared {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Declared>(bytes).ok()?.media_type
}
