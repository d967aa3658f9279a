//! The pushed image's config and manifest, written by flyte: the engine's BuildKit (dockerd 20.10)
//! ignores an image config given beside raw LLB, so the config of what it built is replaced here by
//! the one the manifest asks for: the base image's settings, then the image's env, workdir and user,
//! the entrypoint (the bootstrap for fast-copy images) and command, and labels naming the version.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::image::layers::Layer;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Label keys flyte sets on every image it builds.
pub const LABEL_VERSION: &str = "org.flyte.version";
pub const LABEL_SOURCE_DIGEST: &str = "org.flyte.source-digest";
pub const LABEL_BASE: &str = "org.opencontainers.image.base.name";
pub const LABEL_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// What the final config holds beyond the base image's.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Set last, over the base image's variables.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `None` keeps the base image's.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
}

/// Environment variables in the order first set, a later value replacing an earlier one in place (as
/// Dockerfile `ENV` lines over a base image's do).
#[derive(Clone, Debug, Default)]
pub struct EnvList(Vec<(String, String)>);

impl EnvList {
    pub fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }

    /// Sets a `KEY=value` entry; one without `=` is ignored.
    pub fn set_entry(&mut self, entry: &str) {
        if let Some((key, value)) = entry.split_once('=') {
            self.set(key, value);
        }
    }

    /// `KEY=value` entries, in order.
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// The config JSON for layers with `diff_ids`, starting from the built image's own config (its
/// architecture, os and history) and the base image's runtime settings (`base`: the `config` object
/// of the base image, or null).
pub fn image_config(built: &Value, base: &Value, settings: &Settings, diff_ids: &[String]) -> Vec<u8> {
    let mut env = EnvList::default();
    for list in [&built["config"]["Env"], &base["Env"]] {
        list.as_array().into_iter().flatten().filter_map(Value::as_str).for_each(|entry| env.set_entry(entry));
    }
    for (key, value) in &settings.env {
        env.set(key, value);
    }
    let mut labels: BTreeMap<String, String> = base["Labels"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    labels.extend(settings.labels.clone());

    let mut config = serde_json::Map::new();
    config.insert("Env".into(), json!(env.entries()));
    let entrypoint = settings.entrypoint.clone().map(Value::from).unwrap_or_else(|| base["Entrypoint"].clone());
    let cmd = match (&settings.cmd, &settings.entrypoint) {
        (Some(cmd), _) => Value::from(cmd.clone()),
        // A new entrypoint without a command drops the base's command, as Dockerfile ENTRYPOINT does.
        (None, Some(_)) => Value::Null,
        (None, None) => base["Cmd"].clone(),
    };
    for (key, value) in [("Entrypoint", entrypoint), ("Cmd", cmd)] {
        if !value.is_null() {
            config.insert(key.into(), value);
        }
    }
    let workdir = settings.workdir.clone().or_else(|| base["WorkingDir"].as_str().map(String::from));
    if let Some(workdir) = workdir.filter(|w| !w.is_empty()) {
        config.insert("WorkingDir".into(), json!(workdir));
    }
    let user = settings.user.clone().or_else(|| base["User"].as_str().map(String::from));
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        config.insert("User".into(), json!(user));
    }
    for key in ["ExposedPorts", "Volumes", "StopSignal"] {
        if !base[key].is_null() {
            config.insert(key.into(), base[key].clone());
        }
    }
    if !labels.is_empty() {
        config.insert("Labels".into(), json!(labels));
    }
    let document = json!({
        "architecture": built["architecture"].as_str().unwrap_or("amd64"),
        "os": built["os"].as_str().unwrap_or("linux"),
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": built["history"].clone(),
    });
    let mut document = document;
    if document["history"].is_null() {
        document.as_object_mut().map(|o| o.remove("history"));
    }
    serde_json::to_vec(&document).unwrap_or_default()
}

/// An OCI image manifest for `config` (its digest and size) and `layers` (digest, size, media type).
pub fn image_manifest(config_digest: &str, config_size: usize, layers: &[Layer]) -> Vec<u8> {
    let layers: Vec<Value> =
        layers.iter().map(|l| json!({ "mediaType": l.media_type, "digest": l.digest, "size": l.size })).collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": { "mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size },
        "layers": layers,
    });
    serde_json::to_vec(&manifest).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_settings_go_over_the_base_and_a_new_entrypoint_drops_the_base_command() {
        let built = json!({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin"]}});
        let base = json!({"Env": ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"], "Cmd": ["python3"],
                          "WorkingDir": "/base", "Labels": {"from": "base"}});
        let settings = Settings {
            env: vec![("LANG".into(), "en".into()), ("APP".into(), "1".into())],
            workdir: Some("/app".into()),
            entrypoint: Some(vec!["/usr/local/bin/flyte-bootstrap".into()]),
            labels: [(LABEL_VERSION.to_string(), "abc".to_string())].into(),
            ..Settings::default()
        };
        let bytes = image_config(&built, &base, &settings, &["sha256:1".into()]);
        let config: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(config["config"]["Env"], json!(["PATH=/usr/local/bin:/usr/bin", "LANG=en", "APP=1"]));
        assert_eq!(config["config"]["Entrypoint"], json!(["/usr/local/bin/flyte-bootstrap"]));
        assert!(config["config"]["Cmd"].is_null());
        assert_eq!(config["config"]["WorkingDir"], "/app");
        assert_eq!(config["config"]["Labels"], json!({"from": "base", "org.flyte.version": "abc"}));
        assert_eq!(config["rootfs"]["diff_ids"], json!(["sha256:1"]));
    }

    #[test]
    fn without_settings_the_base_command_stays() {
        let base = json!({"Cmd": ["python3"], "Entrypoint": null});
        let bytes = image_config(&json!({}), &base, &Settings::default(), &[]);
        let config: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(config["config"]["Cmd"], json!(["python3"]));
        assert!(config["config"].get("Entrypoint").is_none());
    }
}
