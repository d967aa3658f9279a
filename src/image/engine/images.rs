//! The Engine API calls flyte needs around BuildKit: ping, inspect, load, save, tag and remove images.
//! Each takes names as the engine knows them and gives plain data or an [`EngineError`] naming the call.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Method, StatusCode};
use hyper::body::{Body as _, Incoming};
use serde::Deserialize;
use tokio::io::{AsyncRead, ReadBuf};

use super::Engine;
use super::error::EngineError;
use super::http::{EngineRequest, api_error, encode_path, encode_query, file_body, is_not_found, read_body, send};

/// What flyte reads from `GET /images/{name}/json`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageInspect {
    /// The image id: the digest of its config (`sha256:…`).
    pub id: String,
    pub repo_tags: Vec<String>,
    /// `REPO@sha256:…` for each registry the image was pushed to or pulled from.
    pub repo_digests: Vec<String>,
    /// The image config's `config` object (Env, Cmd, WorkingDir, …) as the engine reports it.
    pub config: serde_json::Value,
    /// The uncompressed layer digests, bottom first.
    pub diff_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectReply {
    id: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
    #[serde(default)]
    config: serde_json::Value,
    #[serde(rename = "RootFS", default)]
    root_fs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
}

impl Engine {
    /// Checks that a Docker Engine answers on the socket.
    pub async fn ping(&self) -> Result<(), EngineError> {
        let address = self.engine_api("ping")?;
        let response = send(address, EngineRequest::new("ping", Method::GET, "/_ping".to_string())).await?;
        if !response.status().is_success() {
            return Err(api_error(address, "ping", response).await);
        }
        Ok(())
    }

    /// The image's id, digests, config and layers, or `None` when the engine does not have it.
    pub async fn image_inspect(&self, name: &str) -> Result<Option<ImageInspect>, EngineError> {
        let operation = format!("inspecting image {name}");
        let address = self.engine_api(&operation)?;
        let path = format!("/images/{}/json", encode_path(name));
        let response = send(address, EngineRequest::new(&operation, Method::GET, path)).await?;
        if is_not_found(&response) {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(api_error(address, &operation, response).await);
        }
        let body = read_body(address, &operation, response).await?;
        let reply: InspectReply = serde_json::from_slice(&body).map_err(|error| EngineError::Transport {
            operation: operation.clone(),
            address: address.to_string(),
            detail: format!("the reply is not the expected JSON: {error}"),
        })?;
        Ok(Some(ImageInspect {
            id: reply.id,
            repo_tags: reply.repo_tags.unwrap_or_default(),
            repo_digests: reply.repo_digests.unwrap_or_default(),
            config: reply.config,
            diff_ids: reply.root_fs.and_then(|root| root.layers).unwrap_or_default(),
        }))
    }

    /// Loads a `docker save` tar into the engine, streaming the file, and returns what the engine says it
    /// loaded (`name:tag`, or `sha256:…` for untagged images).
    pub async fn image_load(&self, tar: &Path) -> Result<Vec<String>, EngineError> {
        let operation = format!("loading image tar {}", tar.display());
        let address = self.engine_api(&operation)?;
        let file_error = |source: io::Error| EngineError::File { context: operation.clone(), source };
        let file = tokio::fs::File::open(tar).await.map_err(file_error)?;
        let length = file.metadata().await.map_err(file_error)?.len();
        let mut request = EngineRequest::new(&operation, Method::POST, "/images/load?quiet=1".to_string());
        request.body = file_body(file);
        request.content_type = Some("application/x-tar");
        request.content_length = Some(length);
        let response = send(address, request).await?;
        if !response.status().is_success() {
            return Err(api_error(address, &operation, response).await);
        }
        // The reply is a stream of JSON messages; a failure mid-load arrives as one with `error` set.
        let body = read_body(address, &operation, response).await?;
        let mut loaded = Vec::new();
        for message in serde_json::Deserializer::from_slice(&body).into_iter::<serde_json::Value>() {
            let Ok(message) = message else { break };
            if let Some(error) = message_error(&message) {
                return Err(EngineError::Api { operation, status: StatusCode::OK.as_u16(), message: error });
            }
            let text = message.get("stream").and_then(|s| s.as_str()).unwrap_or_default();
            for line in text.lines() {
                if let Some(name) = line.strip_prefix("Loaded image: ").or(line.strip_prefix("Loaded image ID: ")) {
                    loaded.push(name.trim().to_string());
                }
            }
        }
        Ok(loaded)
    }

    /// The `docker save` tar of the image (manifest.json, the config, one tar per layer), streamed.
    pub async fn image_save(&self, name: &str) -> Result<ImageTar, EngineError> {
        let operation = format!("saving image {name}");
        let address = self.engine_api(&operation)?;
        let path = format!("/images/{}/get", encode_path(name));
        let response = send(address, EngineRequest::new(&operation, Method::GET, path)).await?;
        if is_not_found(&response) {
            return Err(EngineError::NoSuchImage { operation, name: name.to_string() });
        }
        if !response.status().is_success() {
            return Err(api_error(address, &operation, response).await);
        }
        Ok(ImageTar { body: response.into_body(), pending: Bytes::new(), finished: false })
    }

    /// Gives the image `source` the name `repository:tag`.
    pub async fn image_tag(&self, source: &str, repository: &str, tag: &str) -> Result<(), EngineError> {
        let operation = format!("tagging image {source} as {repository}:{tag}");
        let address = self.engine_api(&operation)?;
        let path =
            format!("/images/{}/tag?repo={}&tag={}", encode_path(source), encode_query(repository), encode_query(tag));
        let response = send(address, EngineRequest::new(&operation, Method::POST, path)).await?;
        if is_not_found(&response) {
            return Err(EngineError::NoSuchImage { operation, name: source.to_string() });
        }
        if !response.status().is_success() {
            return Err(api_error(address, &operation, response).await);
        }
        Ok(())
    }

    /// Removes the name (and the image once no name is left); `false` when the engine had no such image.
    pub async fn image_remove(&self, name: &str) -> Result<bool, EngineError> {
        let operation = format!("removing image {name}");
        let address = self.engine_api(&operation)?;
        let path = format!("/images/{}", encode_path(name));
        let response = send(address, EngineRequest::new(&operation, Method::DELETE, path)).await?;
        if is_not_found(&response) {
            return Ok(false);
        }
        if !response.status().is_success() {
            return Err(api_error(address, &operation, response).await);
        }
        Ok(true)
    }
}

/// The engine's JSON progress messages carry failures as `error` or `errorDetail.message`.
fn message_error(message: &serde_json::Value) -> Option<String> {
    let detail = message.get("errorDetail").and_then(|d| d.get("message")).and_then(|m| m.as_str());
    let error = message.get("error").and_then(|e| e.as_str());
    detail.or(error).map(str::to_string)
}

/// The bytes of a `docker save` tar as they arrive from the engine.
pub struct ImageTar {
    body: Incoming,
    pending: Bytes,
    finished: bool,
}

impl AsyncRead for ImageTar {
    fn poll_read(self: Pin<&mut Self>, context: &mut Context<'_>, buffer: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let count = this.pending.len().min(buffer.remaining());
                buffer.put_slice(&this.pending.split_to(count));
                return Poll::Ready(Ok(()));
            }
            if this.finished {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.body).poll_frame(context)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.pending = data;
                    }
                }
                Some(Err(error)) => return Poll::Ready(Err(io::Error::other(error))),
                None => this.finished = true,
            }
        }
    }
}
