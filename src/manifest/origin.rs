//! Where each resolved value came from, for `flyte config`: a line of the manifest (base or the
//! domain's overlay), flyte itself, or a default.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value as Json;

use super::Source;
use super::model::Manifest;
use super::tree::Node;

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
///
/// The model's JSON and the merged tree are walked together, so each value finds its node in one step
/// (tables with many keys get an index), and lines come from an index of line starts: linear in the
/// size of the manifest.
pub fn settings(manifest: &Manifest, merged: &Node, source: &Source) -> Vec<Setting> {
    let mut value = serde_json::to_value(manifest).unwrap_or(Json::Null);
    if let Json::Object(map) = &mut value {
        map.remove("domain");
    }
    let walk = Walk { lines: source.text.match_indices('\n').map(|(at, _)| at).collect() };
    let mut out = Vec::new();
    walk.flatten(&value, Some(merged), &mut Vec::new(), &mut out);
    out
}

struct Walk {
    /// Byte offsets of every line break.
    lines: Vec<usize>,
}

impl Walk {
    fn flatten<'a>(&self, value: &'a Json, node: Option<&Node>, path: &mut Vec<&'a str>, out: &mut Vec<Setting>) {
        match value {
            Json::Object(map) if !map.is_empty() => {
                let table = node.and_then(|n| n.as_table());
                // Small tables are searched; large ones (thousands of environments) are indexed once.
                let index: Option<HashMap<&str, &Node>> = table
                    .filter(|t| t.entries.len() > 16)
                    .map(|t| t.entries.iter().map(|e| (e.key.as_str(), &e.value)).collect());
                for (key, child) in map {
                    let child_node = match (&index, table) {
                        (Some(index), _) => index.get(key.as_str()).copied(),
                        (None, Some(table)) => table.get(key).map(|e| &e.value),
                        (None, None) => None,
                    };
                    path.push(key);
                    self.flatten(child, child_node, path, out);
                    path.pop();
                }
            }
            Json::Null => {}
            leaf => {
                let origin = match (node, path.as_slice()) {
                    (_, ["environments", _, "env", "FLYTE_PROJECT" | "FLYTE_DOMAIN"]) => Origin::Flyte,
                    (Some(node), _) => Origin::Manifest {
                        line: self.lines.partition_point(|&at| at < node.span().start()) + 1,
                        overlay: node.overlay(),
                    },
                    (None, _) => Origin::Default,
                };
                out.push(Setting { path: path.join("."), value: leaf.clone(), origin });
            }
        }
    }
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
