use std::fmt::Write;
use std::path::Path;

use crate::cli::{BuildArgs, Format};
use crate::error::{Error, Exit};
use crate::image::build::{self, Built, Event, Options, Outcome};
use crate::image::engine::{Engine, StatusEvent};
use crate::image::job;
use crate::image::registry::{Registry, RegistrySettings};
use crate::manifest;
use crate::output::Output;
use crate::plan;
use crate::plan::render::{counted, size};

pub fn run(path: &Path, args: &BuildArgs, out: &Output) -> Result<Exit, Error> {
    let (source, manifest, warnings) = manifest::load(path, args.domain.domain.as_deref()).map_err(Error::Manifest)?;
    out.warnings(Some(&source), &warnings);
    let plan = plan::build(&manifest, plan::Explain::No)?;
    let jobs =
        job::jobs(&manifest, &plan, &args.environments, args.registry.as_deref()).map_err(build::BuildError::Job)?;
    let options = Options {
        environments: args.environments.clone(),
        push: args.push,
        force: args.force,
        emit_llb: args.emit_llb.clone(),
        dry_run: args.dry_run,
        registry: args.registry.clone(),
        jobs: args.jobs,
        cache_dir: crate::bundle::cache_dir(),
    };
    let (engine, registry) = if args.dry_run {
        (None, None)
    } else {
        let engine = Engine::from_env().map_err(|source| build::BuildError::Engine { image: String::new(), source })?;
        let settings = RegistrySettings { insecure: args.insecure_registries.clone(), ..RegistrySettings::default() };
        let registry =
            Registry::new(settings).map_err(|source| build::BuildError::Registry { image: String::new(), source })?;
        (Some(engine), Some(registry))
    };
    let progress = |event: Event| match event {
        Event::Note { image, message } => out.status(&format!("image {image}: {message}")),
        Event::Status { image, event } => match event {
            StatusEvent::Cached { name, .. } => out.status(&format!("image {image}: cached  {name}")),
            StatusEvent::Completed { name, duration, .. } => {
                let took = duration.map(|d| format!(" ({:.1} s)", d.as_secs_f64())).unwrap_or_default();
                out.status(&format!("image {image}: done    {name}{took}"));
            }
            StatusEvent::Failed { name, error, .. } => out.status(&format!("image {image}: failed  {name}: {error}")),
            StatusEvent::Started { name, .. } => out.progress(&format!("image {image}: running {name}")),
            StatusEvent::Log { name, line, .. } => out.progress(&format!("image {image}: {name} │ {line}")),
            StatusEvent::Progress { id, current, total, .. } if total > 0 => {
                out.progress(&format!("image {image}: {id} {}/{}", size(current as u64), size(total as u64)));
            }
            StatusEvent::Progress { .. } => {}
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let built = runtime.block_on(async {
        tokio::select! {
            result = build::build(&manifest, jobs, &options, engine, registry, &progress) => result.map_err(Error::from),
            _ = tokio::signal::ctrl_c() => Err(Error::Input {
                message: "interrupted: the builds were cancelled".into(),
                help: Some("nothing was pushed for the images that had not finished".into()),
            }),
        }
    })?;

    out.clear_progress();
    if let Some(file) = &args.image_refs {
        let refs = serde_json::json!({ "images": &built });
        let text = serde_json::to_string_pretty(&refs).map_err(|e| Error::Internal(e.to_string()))?;
        crate::bundle::cache::write_atomic(file, text.as_bytes()).map_err(|e| {
            Error::input(format!("cannot write {}: {e}", file.display()), "check the folder exists and is writable")
        })?;
    }
    if out.format == Format::Json {
        out.result(&serde_json::to_string_pretty(&built).map_err(|e| Error::Internal(e.to_string()))?);
    } else {
        out.result(&render(&built));
    }
    Ok(Exit::Success)
}

fn render(built: &[Built]) -> String {
    let mut text = String::new();
    if built.is_empty() {
        text.push_str("no image to build\n");
    }
    for image in built {
        let what = match &image.outcome {
            Outcome::Exists => "exists: nothing built or pushed".to_string(),
            Outcome::DryRun { .. } => "would be built (dry run)".to_string(),
            Outcome::Built { solve_ms, pushed: None } => {
                format!(
                    "built in {:.1} s (solve {:.1} s), in the engine's image store",
                    secs(image.millis),
                    secs(*solve_ms)
                )
            }
            Outcome::Built { solve_ms, pushed: Some(report) } => {
                let uploaded = report.uploaded();
                let present = report.already_present().blobs + report.mounted().blobs;
                format!(
                    "built in {:.1} s (solve {:.1} s), pushed {} ({}), {} already there",
                    secs(image.millis),
                    secs(*solve_ms),
                    counted(uploaded.blobs, "blob"),
                    size(uploaded.bytes),
                    counted(present, "blob")
                )
            }
        };
        // The step names a full build's environment too: "web+api" is web with api's code baked in.
        let _ = writeln!(text, "image {}  {}  {what}", image.step.trim_start_matches("image:"), image.reference);
        if let Some(digest) = &image.digest {
            let _ = writeln!(text, "  digest {digest}");
        }
        if let Some(base) = &image.base {
            let _ = writeln!(text, "  base   {base}");
        }
        if let Outcome::DryRun { steps } = &image.outcome {
            for (number, step) in steps.iter().enumerate() {
                let _ = writeln!(text, "  {:>2}. {step}", number + 1);
            }
        }
    }
    text
}

fn secs(millis: u128) -> f64 {
    millis as f64 / 1000.0
}
