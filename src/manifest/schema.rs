//! The JSON Schema of the manifest, generated from the raw types' shapes (never written by hand).
//!
//! `schema/flyte.schema.json` is this output; a test fails when the file is stale, and `flyte schema`
//! prints it. Editors that read `#:schema` comments (taplo, Even Better TOML) validate and complete with it.

use serde_json::{Map, Value, json};

use super::decode::{Shape, StructInfo};
use super::raw::RawManifest;

/// The schema, as pretty JSON with a trailing newline.
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

pub fn schema() -> Value {
    let mut defs = Map::new();
    let root = struct_schema(&RawManifest::INFO, false, &mut defs);
    let mut out = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "flyte manifest",
    });
    if let (Value::Object(out), Value::Object(root)) = (&mut out, root) {
        out.extend(root);
        out.insert("$defs".to_string(), Value::Object(defs));
    }
    out
}

fn describe(doc: &str) -> String {
    doc.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn struct_schema(info: &StructInfo, patch: bool, defs: &mut Map<String, Value>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in info.fields {
        let mut schema = shape_schema((field.shape)(), patch, defs);
        if let Value::Object(object) = &mut schema {
            object.insert("description".to_string(), Value::String(describe(field.doc)));
        }
        properties.insert(field.name.to_string(), schema);
        if !field.optional && !patch {
            required.push(Value::String(field.name.to_string()));
        }
    }
    let mut schema = json!({
        "type": "object",
        "description": describe(info.doc),
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

fn shape_schema(shape: Shape, patch: bool, defs: &mut Map<String, Value>) -> Value {
    match shape {
        Shape::Str => json!({"type": "string"}),
        Shape::Int => json!({"type": "integer"}),
        Shape::Float => json!({"type": "number"}),
        Shape::Bool => json!({"type": "boolean"}),
        Shape::Keyword(words) => json!({"type": "string", "enum": words}),
        Shape::Quantity => json!({"type": ["string", "number"]}),
        Shape::Any => json!({}),
        Shape::List(item) => json!({"type": "array", "items": shape_schema(item(), patch, defs)}),
        Shape::Map(item) => json!({"type": "object", "additionalProperties": shape_schema(item(), patch, defs)}),
        Shape::Struct(info) => {
            let base = info.name.trim_start_matches("Raw");
            let name = if patch && !base.ends_with("Overlay") { format!("{base}Overlay") } else { base.to_string() };
            if !defs.contains_key(&name) {
                // Reserve the name first, so a type that contains itself cannot recurse forever.
                defs.insert(name.clone(), Value::Null);
                let schema = struct_schema(info, patch, defs);
                defs.insert(name.clone(), schema);
            }
            json!({"$ref": format!("#/$defs/{name}")})
        }
        Shape::BoolOr(inner) => json!({"anyOf": [{"type": "boolean"}, shape_schema(inner(), patch, defs)]}),
        Shape::Patch(inner) => shape_schema(inner(), true, defs),
    }
}
