use std::path::Path;

use crate::cli::Format;
use crate::error::{Error, Exit};
use crate::manifest::{Digests, Report, origin};
use crate::output::Output;

pub fn run(path: &Path, domain: Option<&str>, out: &Output) -> Result<Exit, Error> {
    let parsed = super::parse(path)?;
    let domain = domain.map(str::to_string).or_else(|| parsed.default_domain()).unwrap_or_default();
    let resolved = parsed.resolve_with(&domain, Digests::Skip);
    let Some(manifest) = resolved.manifest else {
        return Err(Error::Manifest(Report { source: Some(parsed.source), diagnostics: resolved.diagnostics }));
    };
    out.warnings(Some(&parsed.source), &resolved.diagnostics);
    let settings = origin::settings(&manifest, &resolved.merged, &parsed.source);
    match out.format {
        Format::Text => out.result(&origin::render(&settings, &parsed.source, &domain)),
        Format::Json => out.result(&serde_json::json!({"domain": domain, "settings": settings}).to_string()),
    }
    super::leave((settings, manifest, resolved.merged, parsed));
    Ok(Exit::Success)
}
