//! Plan rendering for people: levels, what each step does, its version; `--explain` adds every hash input.

use std::fmt::Write;

use super::{Plan, Step, StepDetail};

pub fn text(plan: &Plan, explain: bool) -> String {
    let mut out = String::new();
    let count = |kind: &str, noun: &str| counted(plan.steps.iter().filter(|s| s.id.starts_with(kind)).count(), noun);
    let _ = writeln!(
        out,
        "Plan for project {}, domain {}: {}, {}, {} in {}",
        plan.project,
        plan.domain,
        count("bundle:", "bundle"),
        count("image:", "image"),
        count("deploy:", "deployment"),
        counted(plan.levels.len(), "level")
    );
    // Each level's steps in plan order, found in one pass: a large plan has hundreds of levels.
    let mut by_level: Vec<Vec<&Step>> = vec![Vec::new(); plan.levels.len()];
    for step in &plan.steps {
        if let Some(level) = by_level.get_mut(step.level) {
            level.push(step);
        }
    }
    for (level, (ids, steps)) in plan.levels.iter().zip(&by_level).enumerate() {
        let note = if ids.len() > 1 { format!(" ({} steps in parallel)", ids.len()) } else { String::new() };
        let _ = writeln!(out, "\nlevel {}{note}", level + 1);
        for step in steps {
            let (verb, name, what) = match &step.detail {
                StepDetail::Bundle { environment, files, bytes } => {
                    ("bundle", environment.to_string(), format!("{}, {}", counted(*files, "file"), size(*bytes)))
                }
                StepDetail::Image { image, repository, registry, from, baked_code_of } => {
                    let name = match baked_code_of {
                        Some(env) => format!("{image}+{env}"),
                        None => image.clone(),
                    };
                    let target = match registry {
                        Some(registry) => format!("{registry}/{repository}"),
                        None => repository.clone(),
                    };
                    let baked = baked_code_of.as_ref().map_or(String::new(), |env| format!(", code of {env} baked in"));
                    ("build", name, format!("from {from}{baked} → {target}:{}", step.version))
                }
                StepDetail::Deploy { environment, environment_kind, pinned_version, .. } => {
                    let after: Vec<&str> = step.needs.iter().filter_map(|n| n.strip_prefix("deploy:")).collect();
                    let mut what = format!("{} environment", environment_kind.as_str());
                    if let Some(pinned) = pinned_version {
                        let _ = write!(what, ", version {pinned}");
                    }
                    if !after.is_empty() {
                        let _ = write!(what, ", after {}", after.join(", "));
                    }
                    ("deploy", environment.to_string(), what)
                }
            };
            let _ = writeln!(out, "  {verb:<7}{name:<24} {}  {what}", step.version);
            if explain {
                for input in &step.inputs {
                    let _ = writeln!(
                        out,
                        "           {:<26} {}  {}",
                        input.label,
                        &input.digest[..input.digest.len().min(20)],
                        input.detail
                    );
                }
            }
        }
    }
    out
}

/// "1 file", "2 files".
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// A byte count for people: "812 B", "3.4 KiB", "51.0 MiB".
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
