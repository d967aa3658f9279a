//! The OCI registry client against real registries on loopback: images round-trip byte for byte, pushes
//! skip what the registry has and mount what a sibling repository has, transient failures injected by a
//! proxy are retried, and a registry with password auth refuses anonymous pushes with a clear error.
//!
//! `FLYTE_TEST_REGISTRY` (`127.0.0.1:5055`) names a running plain-HTTP registry; the password test starts
//! its own with `docker-registry`. Without them a test skips with a note, or fails when `CI` is set. The
//! token dance runs against a fake token service ([`token_service`]) and needs neither.

mod fault_proxy;
mod own_registry;
mod token_service;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flyte::image::registry::{
    BlobOutcome, ImageToPush, LayerBlob, Registry, RegistryError, RegistrySettings, RetryPolicy, sha256_digest,
};

use fault_proxy::{Fault, FaultProxy, Rule};
use own_registry::{OwnRegistry, TEST_PASSWORD, TEST_USER};
use token_service::TokenRegistry;

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}: under CI this is a failure, not a skip");
    }
    eprintln!("note: skipped, {why}");
}

/// The registry `FLYTE_TEST_REGISTRY` names, or `None` after a note.
fn test_registry() -> Option<String> {
    let address = std::env::var("FLYTE_TEST_REGISTRY").ok().filter(|value| !value.is_empty());
    if address.is_none() {
        skip("FLYTE_TEST_REGISTRY is not set (scripts/test starts a registry)");
    }
    address
}

/// A repository name no earlier run used, so nothing is in it yet.
fn unique(name: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("flyte-test/{name}-{}-{nanos}", std::process::id())
}

/// Bytes that differ from run to run (xorshift from the clock), so every blob is new to the registry.
fn random_bytes(length: usize) -> Vec<u8> {
    let mut state = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

fn layer(folder: &Path, name: &str, length: usize) -> LayerBlob {
    let bytes = random_bytes(length);
    let path = folder.join(name);
    std::fs::write(&path, &bytes).unwrap();
    LayerBlob {
        path,
        digest: sha256_digest(&bytes),
        size: bytes.len() as u64,
        media_type: LAYER_MEDIA_TYPE.to_string(),
        mount_from: Vec::new(),
    }
}

fn config_for(layers: &[LayerBlob]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|layer| layer.digest.as_str()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .unwrap()
}

fn image(layers: Vec<LayerBlob>) -> ImageToPush {
    ImageToPush { config: config_for(&layers), layers }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy { attempts: 5, first_delay: Duration::from_millis(10), max_delay: Duration::from_secs(2) }
}

/// A client that reads credentials from `docker_config` (a file that need not exist).
fn client(docker_config: &Path) -> Registry {
    let settings = RegistrySettings {
        docker_config: Some(docker_config.to_path_buf()),
        retry: quick_retries(),
        ..RegistrySettings::default()
    };
    Registry::new(settings).unwrap()
}

fn uploaded_digests(report: &flyte::image::registry::PushReport) -> Vec<&str> {
    report.blobs.iter().filter(|blob| blob.outcome == BlobOutcome::Uploaded).map(|blob| blob.digest.as_str()).collect()
}

/// Fetches `reference` back and checks the manifest, the config and every layer against what was pushed.
async fn assert_round_trip(registry: &Registry, reference: &str, pushed: &ImageToPush, manifest_digest: &str) {
    let manifest = registry.fetch_manifest(reference).await.unwrap();
    assert_eq!(manifest.digest, manifest_digest);
    assert_eq!(manifest.media_type, OCI_MANIFEST);
    let parsed: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let config_digest = parsed["config"]["digest"].as_str().unwrap();
    assert_eq!(registry.fetch_blob(reference, config_digest).await.unwrap(), pushed.config);
    let layers = parsed["layers"].as_array().unwrap();
    assert_eq!(layers.len(), pushed.layers.len());
    for (listed, layer) in layers.iter().zip(&pushed.layers) {
        assert_eq!(listed["digest"], layer.digest.as_str());
        assert_eq!(listed["mediaType"], layer.media_type.as_str());
        let fetched = registry.fetch_blob(reference, &layer.digest).await.unwrap();
        assert!(fetched == std::fs::read(&layer.path).unwrap(), "layer {} differs", layer.digest);
    }
}

#[tokio::test]
async fn an_image_round_trips_byte_for_byte_and_a_second_push_uploads_nothing() {
    let Some(address) = test_registry() else { return };
    let folder = tempfile::tempdir().unwrap();
    let registry = client(&folder.path().join("config.json"));
    let reference = format!("{address}/{}:1", unique("round-trip"));
    let pushed = image(vec![layer(folder.path(), "base.tar.gz", 300_000), layer(folder.path(), "code.tar.gz", 70_000)]);
    registry.check_push_access(&reference).await.unwrap();
    assert_eq!(registry.manifest_digest(&reference).await.unwrap(), None);

    let first = registry.push_image(&reference, &pushed).await.unwrap();
    assert_eq!(first.uploaded().blobs, 3, "{first:?}");
    assert_eq!(first.uploaded().bytes, 370_000 + pushed.config.len() as u64);
    assert_eq!(registry.manifest_digest(&reference).await.unwrap().as_deref(), Some(first.manifest_digest.as_str()));
    assert_eq!(registry.resolve(&reference).await.unwrap(), first.manifest_digest);
    assert_round_trip(&registry, &reference, &pushed, &first.manifest_digest).await;
    let by_digest = format!("{}@{}", reference.rsplit_once(':').unwrap().0, first.manifest_digest);
    assert_eq!(registry.fetch_manifest(&by_digest).await.unwrap().digest, first.manifest_digest);

    let second = registry.push_image(&reference, &pushed).await.unwrap();
    assert_eq!(second.uploaded().blobs, 0, "{second:?}");
    assert_eq!(second.already_present().blobs, 3);
    assert_eq!(second.manifest_digest, first.manifest_digest);
}

#[tokio::test]
async fn a_new_layer_on_top_uploads_only_that_layer_and_the_new_config() {
    let Some(address) = test_registry() else { return };
    let folder = tempfile::tempdir().unwrap();
    let registry = client(&folder.path().join("config.json"));
    let repository = format!("{address}/{}", unique("layer-on-top"));
    let base = vec![layer(folder.path(), "one.tar.gz", 200_000), layer(folder.path(), "two.tar.gz", 100_000)];
    registry.push_image(&format!("{repository}:1"), &image(base.clone())).await.unwrap();

    let code = layer(folder.path(), "code.tar.gz", 50_000);
    let mut layers = base;
    layers.push(code.clone());
    let next = image(layers);
    let report = registry.push_image(&format!("{repository}:2"), &next).await.unwrap();
    assert_eq!(uploaded_digests(&report), [code.digest.as_str(), sha256_digest(&next.config).as_str()]);
    assert_eq!(report.already_present().blobs, 2);
    assert_round_trip(&registry, &format!("{repository}:2"), &next, &report.manifest_digest).await;
}

#[tokio::test]
async fn layers_a_sibling_repository_holds_are_mounted_and_a_declined_mount_still_uploads() {
    let Some(address) = test_registry() else { return };
    let folder = tempfile::tempdir().unwrap();
    let registry = client(&folder.path().join("config.json"));
    let source = unique("mount-source");
    let layers = vec![layer(folder.path(), "one.tar.gz", 150_000), layer(folder.path(), "two.tar.gz", 90_000)];
    registry.push_image(&format!("{address}/{source}:1"), &image(layers.clone())).await.unwrap();

    let fresh = layer(folder.path(), "fresh.tar.gz", 40_000);
    let mut mounted_layers: Vec<LayerBlob> = layers
        .into_iter()
        .enumerate()
        // One source as a bare repository path, one as a full reference.
        .map(|(index, layer)| LayerBlob {
            mount_from: vec![if index == 0 { source.clone() } else { format!("{address}/{source}:1") }],
            ..layer
        })
        .collect();
    mounted_layers.push(LayerBlob { mount_from: vec![source.clone()], ..fresh.clone() });
    let target = format!("{address}/{}:1", unique("mount-target"));
    let pushed = image(mounted_layers);
    let report = registry.push_image(&target, &pushed).await.unwrap();
    assert_eq!(report.mounted().blobs, 2, "{report:?}");
    assert_eq!(report.blobs[0].outcome, BlobOutcome::Mounted { from: source.clone() });
    assert_eq!(report.blobs[2].outcome, BlobOutcome::Uploaded, "the source lacks it: uploaded");
    assert_eq!(uploaded_digests(&report), [fresh.digest.as_str(), sha256_digest(&pushed.config).as_str()]);
    assert_round_trip(&registry, &target, &pushed, &report.manifest_digest).await;
}

#[tokio::test]
async fn a_missing_tag_has_no_manifest_digest_and_a_missing_image_does_not_resolve() {
    let Some(address) = test_registry() else { return };
    let folder = tempfile::tempdir().unwrap();
    let registry = client(&folder.path().join("config.json"));
    let missing = format!("{address}/{}:absent", unique("missing"));
    assert_eq!(registry.manifest_digest(&missing).await.unwrap(), None);
    let error = registry.resolve(&missing).await.unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("the tag absent is not in"), "{error}");
    let error = registry.fetch_blob(&missing, &sha256_digest(b"nothing")).await.unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_registry_is_named_with_a_way_out() {
    let folder = tempfile::tempdir().unwrap();
    let settings = RegistrySettings {
        docker_config: Some(folder.path().join("config.json")),
        retry: RetryPolicy::immediate(2),
        ..RegistrySettings::default()
    };
    let registry = Registry::new(settings).unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let error = registry.manifest_digest(&format!("127.0.0.1:{port}/team/app:1")).await.unwrap_err();
    assert!(matches!(error, RegistryError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&format!("cannot reach the registry 127.0.0.1:{port}")), "{error}");
    assert!(error.help().contains("FLYTE_REGISTRY"), "{}", error.help());
}

#[tokio::test]
async fn a_push_survives_server_errors_a_rate_limit_and_a_reset_connection() {
    let Some(address) = test_registry() else { return };
    let (upload_starts, upload_puts, manifest_puts) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    let rule: Rule = Arc::new(move |method, path| {
        let upload = path.contains("/blobs/uploads/");
        match method {
            "POST" if upload && !path.contains("mount=") && upload_starts.fetch_add(1, Ordering::SeqCst) < 2 => {
                Fault::Answer(500)
            }
            "PUT" if upload && upload_puts.fetch_add(1, Ordering::SeqCst) == 0 => Fault::ResetAfter(64 * 1024),
            "PUT" if path.contains("/manifests/") && manifest_puts.fetch_add(1, Ordering::SeqCst) == 0 => {
                Fault::Answer(429)
            }
            _ => Fault::Forward,
        }
    });
    let proxy = FaultProxy::start(address.clone(), rule).await;
    let folder = tempfile::tempdir().unwrap();
    let registry = client(&folder.path().join("config.json"));
    let repository = unique("faults");
    // One layer, so the reset lands in the middle of its body whichever upload comes first.
    let pushed = image(vec![layer(folder.path(), "big.tar.gz", 512 * 1024)]);
    let report = registry.push_image(&format!("{}/{repository}:1", proxy.address), &pushed).await.unwrap();
    assert_eq!(report.uploaded().blobs, 2, "{report:?}");
    assert_eq!(report.retries, 4, "two 500s, one reset, one 429");
    // The proxy shares the registry's storage: read it back directly.
    assert_round_trip(&registry, &format!("{address}/{repository}:1"), &pushed, &report.manifest_digest).await;
}

#[tokio::test]
async fn a_registry_that_keeps_failing_gives_up_with_its_answer() {
    let Some(address) = test_registry() else { return };
    let rule: Rule = Arc::new(|method, path| {
        if method == "POST" && path.contains("/blobs/uploads/") { Fault::Answer(503) } else { Fault::Forward }
    });
    let proxy = FaultProxy::start(address, rule).await;
    let folder = tempfile::tempdir().unwrap();
    let registry = client(&folder.path().join("config.json"));
    let pushed = image(vec![layer(folder.path(), "layer.tar.gz", 10_000)]);
    let target = format!("{}/{}:1", proxy.address, unique("failing"));
    let error = registry.push_image(&target, &pushed).await.unwrap_err();
    assert!(matches!(error, RegistryError::Status { status: 503, .. }), "{error:?}");
    assert!(error.to_string().contains("answered 503 Service Unavailable"), "{error}");
    assert!(error.to_string().contains(&proxy.address), "{error}");
}

#[tokio::test]
async fn a_password_registry_refuses_anonymous_pushes_clearly_and_takes_the_docker_config_credentials() {
    let Some(own) = OwnRegistry::start_with_password() else { return };
    let address = own.address.clone();
    let folder = tempfile::tempdir().unwrap();
    let pushed = image(vec![layer(folder.path(), "layer.tar.gz", 20_000)]);
    let repository = format!("{address}/{}", unique("auth"));
    let reference = format!("{repository}:1");

    let anonymous = client(&folder.path().join("absent.json"));
    let error = anonymous.check_push_access(&repository).await.unwrap_err();
    let wanted = format!("not authorised to push to {repository} (401 Unauthorized)");
    assert_eq!(error.to_string(), wanted);
    assert!(error.help().contains(&format!("docker login {address}")), "{}", error.help());
    let error = anonymous.push_image(&reference, &pushed).await.unwrap_err();
    assert!(error.to_string().starts_with(&format!("not authorised to push to {repository}")), "{error}");
    let error = anonymous.manifest_digest(&reference).await.unwrap_err();
    assert!(error.to_string().starts_with(&format!("not authorised to pull from {repository}")), "{error}");

    let write_config = |name: &str, password: &str| {
        let entry = format!(r#"{{"auth": "{}"}}"#, base64_of(&format!("{TEST_USER}:{password}")));
        docker_config(folder.path(), name, &address, &entry)
    };
    let wrong = client(&write_config("wrong.json", "not-the-password"));
    let error = wrong.check_push_access(&repository).await.unwrap_err();
    assert!(matches!(error, RegistryError::Unauthorized { status: 401, .. }), "{error:?}");
    assert!(!format!("{error} {error:?} {}", error.help()).contains("not-the-password"));

    let logged_in = client(&write_config("config.json", TEST_PASSWORD));
    logged_in.check_push_access(&repository).await.unwrap();
    let report = logged_in.push_image(&reference, &pushed).await.unwrap();
    assert_eq!(report.uploaded().blobs, 2);
    assert_eq!(logged_in.manifest_digest(&reference).await.unwrap().as_deref(), Some(report.manifest_digest.as_str()));
    assert_round_trip(&logged_in, &reference, &pushed, &report.manifest_digest).await;
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Writes a Docker config whose `auths` entry for `registry` is `entry` (JSON), and returns its path.
fn docker_config(folder: &Path, name: &str, registry: &str, entry: &str) -> std::path::PathBuf {
    let path = folder.join(name);
    std::fs::write(&path, format!(r#"{{"auths": {{"{registry}": {entry}}}}}"#)).unwrap();
    path
}

#[tokio::test]
async fn a_token_service_grants_tokens_for_a_password_or_a_refresh_token_and_tokens_are_reused() {
    let service = TokenRegistry::start().await;
    let folder = tempfile::tempdir().unwrap();
    let reference = format!("{}/team/app:1", service.address);
    let auth = base64_of(&format!("{}:{}", token_service::USER, token_service::PASSWORD));
    let password =
        client(&docker_config(folder.path(), "password.json", &service.address, &format!(r#"{{"auth": "{auth}"}}"#)));
    for _ in 0..2 {
        assert_eq!(password.manifest_digest(&reference).await.unwrap().as_deref(), Some(token_service::DIGEST));
    }
    let requests = service.requests();
    assert_eq!(requests.len(), 1, "the second check reuses the token: {requests:?}");
    assert!(requests[0].contains("scope=repository%3Ateam%2Fapp%3Apull"), "{requests:?}");
    assert!(requests[0].contains(&format!("service={}", token_service::SERVICE)), "{requests:?}");

    let entry = format!(r#"{{"auth": "", "identitytoken": "{}"}}"#, token_service::REFRESH_TOKEN);
    let refresh = client(&docker_config(folder.path(), "refresh.json", &service.address, &entry));
    assert_eq!(refresh.manifest_digest(&reference).await.unwrap().as_deref(), Some(token_service::DIGEST));
    let last = service.requests().pop().unwrap();
    assert!(last.starts_with("POST ") && last.contains("grant_type=refresh_token"), "{last}");

    let anonymous = client(&folder.path().join("absent.json"));
    let error = anonymous.manifest_digest(&reference).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("not authorised to pull from {}/team/app (401 Unauthorized)", service.address)
    );
    let wrong = client(&docker_config(
        folder.path(),
        "wrong.json",
        &service.address,
        r#"{"username": "robot", "password": "nope"}"#,
    ));
    let error = wrong.manifest_digest(&reference).await.unwrap_err();
    assert!(matches!(error, RegistryError::Unauthorized { status: 401, .. }), "{error:?}");
}

#[tokio::test]
async fn a_base_image_index_resolves_to_itself_or_to_one_platforms_manifest() {
    let Some(address) = test_registry() else { return };
    let folder = tempfile::tempdir().unwrap();
    let registry = client(&folder.path().join("config.json"));
    let repository = format!("{address}/{}", unique("index"));
    let pushed = image(vec![layer(folder.path(), "layer.tar.gz", 10_000)]);
    let report = registry.push_image(&format!("{repository}:amd64"), &pushed).await.unwrap();
    let manifest = registry.fetch_manifest(&format!("{repository}:amd64")).await.unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": report.manifest_digest, "size": manifest.bytes.len(),
            "platform": {"os": "linux", "architecture": "amd64"}
        }]
    }))
    .unwrap();
    // The client pushes images, not indexes: put this one up by hand.
    let url = format!("http://{address}/v2/{}/manifests/multi", repository.split_once('/').unwrap().1);
    let response = reqwest::Client::new()
        .put(url)
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let multi = format!("{repository}:multi");
    assert_eq!(registry.resolve(&multi).await.unwrap(), sha256_digest(&index));
    assert_eq!(registry.resolve_platform(&multi, "linux", "amd64").await.unwrap(), report.manifest_digest);
    assert_eq!(
        registry.resolve_platform(&format!("{repository}:amd64"), "linux", "amd64").await.unwrap(),
        report.manifest_digest
    );
    let error = registry.resolve_platform(&multi, "linux", "arm64").await.unwrap_err();
    assert!(error.to_string().ends_with("the index has no linux/arm64 image (it has linux/amd64)"), "{error}");
}

/// Reads from `stream` until the end of an HTTP request head; gives everything read (the head and any
/// body bytes after it) and where the head ends, or `None` when the peer closed first.
async fn read_request_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<Option<(Vec<u8>, usize)>> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    loop {
        let mut chunk = [0u8; 8192];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            return Ok(Some((buffer, position + 4)));
        }
    }
}
