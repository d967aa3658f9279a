//! Where each resolved value came from, for `flyte config`: a line of the manifest (base or the
//! domain's overlay), flyte itself, or a default.

use serde::Serialize;
use serde_json::Value as Json;

use super::Source;
use super::model::Manifest;
use super::tree::{Node, Value};

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "from", rename_all = "lowercase")]
pub enum Origin {
    /// Written in the manifest.
    Manifest { line: usize, overlay: bool },
    /// Set by flyte (FLYTE_PROJECT, FLYTE_DOMAIN).
    Flyte,
    /// Not written: the documented default.
    Default,
}

#[derive(Clone, Debug, Serialize)]
pub struct Setting {
    pub path: String,
    pub value: Json,
    pub origin: Origin,
}

/// Every leaf value of the resolved manifest with its origin, in a stable order.
pub fn settings(manifest: &Manifest, merged: &Node, source: &Source) -> Vec<Setting> {
    let mut value = serde_json::to_value(manifest).unwrap_or(Json::Null);
    if let Json::Object(map) = &mut value {
        map.remove("domain");
    }
    let mut out = Vec::new();
    flatten(&value, &mut Vec::new(), &mut out);
    for setting in &mut out {
        let segments: Vec<&str> = setting.path.split('.').collect();
        setting.origin = origin(merged, &segments, source);
    }
    out
}

fn flatten(value: &Json, path: &mut Vec<String>, out: &mut Vec<Setting>) {
    match value {
        Json::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.clone());
                flatten(child, path, out);
                path.pop();
            }
        }
        Json::Null => {}
        leaf => out.push(Setting { path: path.join("."), value: leaf.clone(), origin: Origin::Default }),
    }
}

fn origin(merged: &Node, segments: &[&str], source: &Source) -> Origin {
    if let [.., "env", "FLYTE_PROJECT" | "FLYTE_DOMAIN"] = segments
        && segments.first() == Some(&"environments")
    {
        return Origin::Flyte;
    }
    let mut node = merged;
    for segment in segments {
        let Value::Table(table) = &node.value else { return Origin::Default };
        match table.get(segment) {
            Some(entry) => node = &entry.value,
            None => return Origin::Default,
        }
    }
    Origin::Manifest { line: source.line_col(node.span.start).0, overlay: node.overlay }
}

/// The settings as text: `path = value  # origin`.
pub fn render(settings: &[Setting], source: &Source, domain: &str) -> String {
    let file = source.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let width = settings.iter().map(|s| s.path.len() + 3 + s.value.to_string().len()).max().unwrap_or(0).min(72);
    let mut out = format!(
        "# resolved for domain {domain}: `{file}:N` is the line that set a value, `overlay` the domain's overlay\n"
    );
    for setting in settings {
        let origin = match &setting.origin {
            Origin::Manifest { line, overlay: false } => format!("{file}:{line}"),
            Origin::Manifest { line, overlay: true } => format!("{file}:{line} (overlay {domain})"),
            Origin::Flyte => "set by flyte".to_string(),
            Origin::Default => "default".to_string(),
        };
        let assignment = format!("{} = {}", setting.path, setting.value);
        out.push_str(&format!("{assignment:<width$}  # {origin}\n"));
    }
    out
}
