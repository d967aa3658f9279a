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
    // The steps are in plan order, level by level: each is written after its level's heading when it
    // opens the level. A large plan (20,000 steps) is written in parts on every core and joined.
    const PER_THREAD: usize = 4000;
    steps_text(out, plan, explain, crate::parts::threads_for(plan.steps.len(), PER_THREAD))
}

/// The levels and their steps after the heading `out` holds, written on `threads` threads.
fn steps_text(mut out: String, plan: &Plan, explain: bool, threads: usize) -> String {
    let parts = crate::parts::map_parts_at(&plan.steps, threads, |first, part| {
        let mut out = String::new();
        for (index, step) in (first..).zip(part) {
            if index == 0 || plan.steps[index - 1].level != step.level {
                let steps = plan.levels.get(step.level).map_or(0, Vec::len);
                let note = if steps > 1 { format!(" ({steps} steps in parallel)") } else { String::new() };
                let _ = writeln!(out, "\nlevel {}{note}", step.level + 1);
            }
            write_step(&mut out, step, explain);
        }
        out
    });
    parts.iter().for_each(|part| out.push_str(part));
    out
}

/// One step's line, and with `explain` every input of its version.
fn write_step(out: &mut String, step: &Step, explain: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_the_same_written_in_parts() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for example in ["frontend-backend", "full-build", "dynamic-environments", "package-structure"] {
            for domain in ["development", "production"] {
                let path = examples.join(example).join("flyte.toml");
                let (_, manifest, _) = crate::manifest::load(&path, Some(domain)).ok().unwrap();
                let plan = super::super::build(&manifest, super::super::Explain::Yes).unwrap();
                // Written in parts, a part may start inside a level: its heading comes once, where the
                // level opens. The parts of a small plan are cut between any two steps.
                for explain in [false, true] {
                    let one = steps_text(String::new(), &plan, explain, 1);
                    assert_eq!(one.matches("\nlevel ").count(), plan.levels.len(), "{example} {domain}");
                    for threads in [2, 3, plan.steps.len()] {
                        assert_eq!(steps_text(String::new(), &plan, explain, threads), one, "{example} {domain}");
                    }
                }
            }
        }
    }
}
