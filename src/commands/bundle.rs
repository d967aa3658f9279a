use std::fmt::Write;
use std::path::Path;

use crate::bundle::{self, build};
use crate::cli::{BundleArgs, Format};
use crate::error::{Error, Exit};
use crate::manifest;
use crate::output::Output;
use crate::plan::render::{counted, size};

pub fn run(path: &Path, args: &BundleArgs, out: &Output) -> Result<Exit, Error> {
    let (source, manifest, warnings) = manifest::load(path, args.domain.domain.as_deref()).map_err(Error::Manifest)?;
    out.warnings(Some(&source), &warnings);
    let result = bundle::bundle_environments(&manifest, args.environment.as_deref())?;
    let reports = &result.bundles;
    if let Some(target) = &args.out {
        let [report] = reports.as_slice() else {
            return Err(Error::Usage(format!(
                "--out writes one bundle, and {} would be built: name the environment",
                reports.len()
            )));
        };
        build::copy_out(&report.bundle, target).map_err(|e| {
            Error::input(format!("cannot write {}: {e}", target.display()), "check the folder exists and is writable")
        })?;
    }
    for warning in &result.warnings {
        out.status(&format!("warning: {warning}"));
    }
    if out.format == Format::Json {
        out.result(&serde_json::to_string_pretty(&result).map_err(|e| Error::Internal(e.to_string()))?);
        return Ok(Exit::Success);
    }
    let mut text = String::new();
    if reports.is_empty() {
        text.push_str("no environment ships a bundle (every one has copy_style = \"full\")\n");
    }
    for report in reports {
        let b = &report.bundle;
        let how = if b.reused { "unchanged, reused".to_string() } else { format!("built in {} ms", b.millis) };
        let _ = writeln!(
            text,
            "bundle {}: {}, {} → {} tar.gz, digest {} ({how})",
            report.environment,
            counted(b.files, "file"),
            size(b.bytes),
            size(b.archive_bytes),
            &b.digest[..20]
        );
        let _ = writeln!(text, "  archive {} sha256 {}", b.archive.display(), b.archive_sha256);
        if args.list {
            for file in &report.files.files {
                let mode = if file.symlink {
                    "link"
                } else if file.executable {
                    "0755"
                } else {
                    "0644"
                };
                let _ = writeln!(text, "  {mode} {:>10}  {}", file.size, file.path);
            }
        }
        if args.explain {
            for left in &report.left_out {
                let slash = if left.dir { "/" } else { "" };
                let _ = writeln!(text, "  left out {}{slash}  ({})", left.path, left.reason);
            }
        }
    }
    out.result(&text);
    Ok(Exit::Success)
}
