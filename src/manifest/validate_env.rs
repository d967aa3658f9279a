//! Validation of environments: references, kinds, resources and code shipping, and the dependency
//! edges handed to the cycle check. Apps are checked in `validate_app`, tasks in `validate_task`,
//! cycles in `validate_graph`.

use compact_str::CompactString;
use std::collections::BTreeMap;
use std::path::Path;

use foldhash::{HashMap, HashMapExt};
use globset::Glob;

use super::Digests;
use super::decode::{Keyed, Spanned};
use super::diagnostic::Diagnostic;
use super::model::*;
use super::raw::{RawEnvironment, RawManifest, RawResourceSet};
use super::tree::Span;
use super::units::{Unit, parse_quantity};
use super::validate::Checker;
use super::validate_app::app;
use super::validate_graph::cycles;
use super::validate_task::task;

/// Ports the platform keeps for itself.
pub const RESERVED_PORTS: [i64; 5] = [8012, 8022, 8112, 9090, 9091];
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_CODE_DST: &str = "/app";

pub fn environments(
    checker: &mut Checker,
    raw: &RawManifest,
    project: &Project,
    domain: &str,
    images: &BTreeMap<CompactString, Image>,
    digests: Digests,
) -> BTreeMap<CompactString, Box<Environment>> {
    const PER_THREAD: usize = 1000;
    let envs = raw.environments.as_ref().map_or(0, |e| e.entries.len());
    let threads = crate::parts::threads_for(envs, PER_THREAD);
    environments_on(checker, raw, project, domain, images, digests, threads)
}

/// [`environments`] with the declared environments split over `threads` scoped threads. Each checks
/// its part in declaration order with a checker and an index of its own; the parts' diagnostics,
/// environments and edges are then joined in the same order, so the result is the one a single pass
/// gives (a test holds them equal).
fn environments_on(
    checker: &mut Checker,
    raw: &RawManifest,
    project: &Project,
    domain: &str,
    images: &BTreeMap<CompactString, Image>,
    digests: Digests,
    threads: usize,
) -> BTreeMap<CompactString, Box<Environment>> {
    let Some(declared) = &raw.environments else { return BTreeMap::new() };
    let names = Names::new(declared);
    let image_names: Vec<&str> = images.keys().map(CompactString::as_str).collect();
    let disabled: HashMap<&str, Span> = declared
        .iter()
        .filter_map(|(name, env)| env.enabled.as_ref().filter(|e| !e.value).map(|e| (name.as_str(), e.span)))
        .collect();
    let cx = Context { project, domain, image_names: &image_names, disabled: &disabled, digests };
    let mut edges: Vec<(&str, Spanned<CompactString>)> = Vec::new();
    let root = checker.root.as_path();
    let parts = crate::parts::map_parts(&declared.entries, threads, |part| check_part(root, &names, &cx, part));
    let mut checked = Vec::with_capacity(parts.len());
    for part in parts {
        checker.diags.extend(part.diags);
        edges.extend(part.edges);
        checked.push(part.environments);
    }
    let join = |checked: Vec<Vec<(CompactString, Box<Environment>)>>| {
        let mut out = BTreeMap::new();
        checked.into_iter().for_each(|part| out.extend(part));
        out
    };
    if threads <= 1 {
        cycles(checker, &edges);
        return join(checked);
    }
    // The cycle search reads only the edges, and joining the parts only moves environments into the
    // map: on a large manifest each is milliseconds, so they run side by side.
    let (out, found) = std::thread::scope(|scope| {
        let search = scope.spawn(|| {
            let mut found = Vec::new();
            cycles(&mut Checker { diags: &mut found, root: std::path::PathBuf::new() }, &edges);
            found
        });
        let out = join(checked);
        (out, search.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    checker.diags.extend(found);
    out
}

/// What every environment's check reads.
struct Context<'a> {
    project: &'a Project,
    domain: &'a str,
    image_names: &'a [&'a str],
    disabled: &'a HashMap<&'a str, Span>,
    digests: Digests,
}

/// The result of checking some of the environments, in declaration order.
struct Part<'a> {
    diags: Vec<Diagnostic>,
    environments: Vec<(CompactString, Box<Environment>)>,
    edges: Vec<(&'a str, Spanned<CompactString>)>,
}

/// Checks `part` of the declared environments with a checker and a glob cache of its own.
fn check_part<'a>(
    root: &Path,
    names: &Names,
    cx: &Context,
    part: &'a [(Spanned<CompactString>, Box<RawEnvironment>)],
) -> Part<'a> {
    let Context { project, domain, image_names, disabled, digests } = *cx;
    let mut diags = Vec::new();
    let mut checker = Checker { diags: &mut diags, root: root.to_path_buf() };
    let (checker, index) = (&mut checker, &mut Index { names, glob_errors: HashMap::new() });
    let mut environments = Vec::with_capacity(part.len());
    let mut edges = Vec::new();
    for (name, env) in part {
        checker.dns_label("environment name", name);
        if disabled.contains_key(name.as_str()) {
            continue;
        }
        let mut resolved = environment(checker, index, project, domain, image_names, name, env);
        if digests == Digests::Take {
            resolved.spec_digest = Some(crate::plan::hash::spec_digest(&(&project.name, &resolved.name, &resolved)));
        }
        for dependency in dependency_refs(env) {
            if let Some(span) = disabled.get(dependency.as_str()) {
                checker.diags.push(
                    Diagnostic::error(
                        "disabled-dependency",
                        format!(
                            "\"{}\" depends on \"{}\", which is disabled in domain {domain}",
                            name.value, dependency.value
                        ),
                    )
                    .at(dependency.span, "disabled dependency")
                    .related(*span, "disabled here")
                    .help(format!(
                        "enable \"{}\" in {domain}, or disable \"{}\" there too",
                        dependency.value, name.value
                    )),
                );
            } else if dependency.value != name.value && index.get(&dependency).is_some() {
                edges.push((name.value.as_str(), dependency));
            }
        }
        environments.push((name.value.clone(), Box::new(resolved)));
    }
    Part { diags, environments, edges }
}

/// The declared environments by name, built once: every environment may refer to any other.
struct Names<'a> {
    declared: &'a Keyed<Box<RawEnvironment>>,
    /// The first environment of each name, as a scan in declaration order would find it.
    by_name: HashMap<&'a str, &'a RawEnvironment>,
    /// Every name, sorted, for "did you mean".
    sorted: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn new(declared: &'a Keyed<Box<RawEnvironment>>) -> Self {
        let mut by_name = HashMap::new();
        for (name, env) in declared.iter() {
            by_name.entry(name.as_str()).or_insert(env.as_ref());
        }
        let mut sorted: Vec<&str> = by_name.keys().copied().collect();
        sorted.sort_unstable();
        Names { declared, by_name, sorted }
    }
}

/// What checking an environment looks up: the declared environments, shared by every part, and the
/// globs the part has checked so far (environments repeat the same patterns).
pub(super) struct Index<'n, 'a> {
    names: &'n Names<'a>,
    /// Each glob checked so far, and why it is invalid when it is.
    glob_errors: HashMap<String, Option<String>>,
}

impl<'a> Index<'_, 'a> {
    /// Every name, sorted, for "did you mean".
    pub(super) fn names(&self) -> &[&'a str] {
        &self.names.sorted
    }

    /// Why `pattern` is not a valid glob, when it is not.
    fn glob_error(&mut self, pattern: &str) -> Option<String> {
        if let Some(error) = self.glob_errors.get(pattern) {
            return error.clone();
        }
        let error = Glob::new(pattern).err().map(|e| e.kind().to_string());
        self.glob_errors.insert(pattern.to_string(), error.clone());
        error
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a RawEnvironment> {
        self.names.by_name.get(name).copied()
    }

    /// The names of the environments of `kind` in declaration order, leaving out `except`: the
    /// candidates of a reference that was not found.
    pub(super) fn names_of(&self, kind: EnvKind, except: Option<&str>) -> Vec<&'a str> {
        self.names
            .declared
            .iter()
            .filter(|(_, e)| e.kind.value == kind)
            .map(|(n, _)| n.as_str())
            .filter(|n| Some(*n) != except)
            .collect()
    }
}

/// Every name an environment refers to as a dependency, with where it is written.
fn dependency_refs(env: &RawEnvironment) -> Vec<Spanned<CompactString>> {
    let mut refs: Vec<Spanned<CompactString>> = env.depends_on.iter().flatten().cloned().collect();
    for (_, input) in env.inputs.iter().flat_map(|i| i.value.iter()) {
        if let Some(endpoint) = &input.endpoint {
            refs.push(endpoint.clone());
        }
        if let Some(task) = &input.task
            && let Some((environment, _)) = task.split_once('.')
        {
            refs.push(Spanned { value: environment.into(), span: task.span, overlay: task.overlay });
        }
    }
    refs
}

fn environment(
    checker: &mut Checker,
    index: &mut Index,
    project: &Project,
    domain: &str,
    image_names: &[&str],
    name: &Spanned<CompactString>,
    env: &RawEnvironment,
) -> Environment {
    checker.reference("image", &env.image, image_names);
    for dependency in env.depends_on.iter().flatten() {
        if dependency.value == name.value {
            checker.error(
                "self-dependency",
                dependency.span,
                format!("\"{}\" depends on itself", name.value),
                "itself",
                "remove it from depends_on",
            );
        } else if index.get(dependency).is_none() {
            checker.reference("environment", dependency, index.names());
        }
    }
    checker.unique("dependency", env.depends_on.iter().flatten());
    let version = env.version.as_ref().map(|v| {
        let valid = !v.is_empty()
            && v.len() <= 128
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !v.starts_with(['.', '-']);
        if !valid {
            checker.error(
                "invalid-version",
                v.span,
                format!("\"{}\" cannot be used as a version", v.value),
                "invalid version",
                "use letters, digits, '.', '_' and '-' (at most 128, not starting with '.' or '-'), e.g. \"v1.2.0\"",
            );
        }
        v.value.clone()
    });
    let mut env_vars = checker.env_vars(&env.env, &["FLYTE_PROJECT", "FLYTE_DOMAIN"]);
    env_vars.insert("FLYTE_PROJECT".into(), project.name.clone());
    env_vars.insert("FLYTE_DOMAIN".into(), domain.into());
    let secrets = secrets(checker, env);
    let code = code(checker, index, name, env, version.is_some());
    let spec = match env.kind.value {
        EnvKind::App => KindSpec::App(Box::new(app(checker, index, name, env, &env_vars))),
        EnvKind::Task => {
            let app_fields: [(&str, Option<Span>); 9] = [
                ("port", env.port.as_ref().map(|v| v.span)),
                ("command", env.command.as_ref().map(|v| v.span)),
                ("args", env.args.as_ref().map(|v| v.span)),
                ("scaling", env.scaling.as_ref().map(|v| v.span)),
                ("ingress", env.ingress.as_ref().map(|v| v.span)),
                ("requires_auth", env.requires_auth.as_ref().map(|v| v.span)),
                ("health_check", env.health_check.as_ref().map(|v| v.span)),
                ("timeouts", env.timeouts.as_ref().map(|v| v.span)),
                ("inputs", env.inputs.as_ref().map(|v| v.span)),
            ];
            for (field, span) in app_fields {
                if let Some(span) = span {
                    checker.error(
                        "kind-mismatch",
                        span,
                        format!("`{field}` applies to apps; \"{}\" is a task environment", name.value),
                        "apps only",
                        "remove it, or make the environment kind = \"app\"",
                    );
                }
            }
            let tasks = env
                .tasks
                .iter()
                .flat_map(|t| t.value.iter())
                .map(|(task_name, task)| (task_name.value.clone(), self::task(checker, task_name, task)))
                .collect();
            KindSpec::Task(TaskSpec { tasks })
        }
    };
    if let (EnvKind::App, Some(tasks)) = (env.kind.value, &env.tasks) {
        checker.error(
            "kind-mismatch",
            tasks.span,
            format!("`tasks` apply to task environments; \"{}\" is an app", name.value),
            "tasks only",
            "move the tasks to an environment with kind = \"task\"",
        );
    }
    Environment {
        name: name.value.clone(),
        kind: env.kind.value,
        description: env.description.as_ref().map(|d| d.value.clone()),
        image: env.image.value.clone(),
        version,
        depends_on: env.depends_on.iter().flatten().map(|d| d.value.clone()).collect(),
        env: env_vars,
        secrets,
        resources: resources(checker, env),
        code,
        spec,
        spec_digest: None,
    }
}

fn secrets(checker: &mut Checker, env: &RawEnvironment) -> Vec<Secret> {
    let mut out = Vec::new();
    let mut exposed_as: Vec<Spanned<CompactString>> = Vec::new();
    for secret in env.secrets.iter().flatten() {
        let valid_name =
            !secret.name.is_empty() && secret.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_name {
            checker.error(
                "invalid-name",
                secret.name.span,
                format!("\"{}\" is not a secret name", secret.name.value),
                "invalid secret name",
                "use letters, digits, '-', '_' and '.'",
            );
        }
        let exposed = match (&secret.as_env, &secret.as_file) {
            (Some(var), None) => {
                checker.env_name(var);
                if env.env.as_ref().is_some_and(|e| e.iter().any(|(k, _)| k.value == var.value)) {
                    checker.error(
                        "duplicate",
                        var.span,
                        format!("{} is both a secret and a plain environment variable", var.value),
                        "set twice",
                        "remove it from `env`: the secret provides it",
                    );
                }
                exposed_as.push(var.clone());
                SecretExposure::Env { as_env: var.value.clone() }
            }
            (None, Some(file)) => {
                checker.absolute(file, "secret file");
                exposed_as.push(file.clone());
                SecretExposure::File { as_file: file.value.clone() }
            }
            (Some(var), Some(_)) => {
                checker.error(
                    "conflicting-fields",
                    var.span,
                    format!("secret \"{}\" sets both `as_env` and `as_file`", secret.name.value),
                    "one of the two",
                    "expose a secret as an environment variable or as a file; list it twice for both",
                );
                SecretExposure::Env { as_env: var.value.clone() }
            }
            (None, None) => {
                checker.error(
                    "missing-field",
                    secret.name.span,
                    format!("secret \"{}\" says neither `as_env` nor `as_file`", secret.name.value),
                    "exposed how?",
                    "add as_env = \"VAR_NAME\" or as_file = \"/etc/secrets/name\"",
                );
                SecretExposure::Env { as_env: CompactString::default() }
            }
        };
        out.push(Secret {
            name: secret.name.value.clone(),
            key: secret.key.as_ref().map(|k| k.value.clone()),
            exposed,
        });
    }
    checker.unique("secret target", &exposed_as);
    out
}

fn resources(checker: &mut Checker, env: &RawEnvironment) -> Resources {
    let Some(raw) = &env.resources else { return Resources::default() };
    let requests = resource_set(checker, raw.requests.as_ref());
    let limits = resource_set(checker, raw.limits.as_ref());
    let pairs = [
        ("cpu", &requests.cpu, &limits.cpu, raw.limits.as_ref().and_then(|l| l.cpu.as_ref())),
        ("memory", &requests.memory, &limits.memory, raw.limits.as_ref().and_then(|l| l.memory.as_ref())),
        ("gpu", &requests.gpu, &limits.gpu, raw.limits.as_ref().and_then(|l| l.gpu.as_ref())),
        ("disk", &requests.disk, &limits.disk, raw.limits.as_ref().and_then(|l| l.disk.as_ref())),
    ];
    for (what, request, limit, limit_text) in pairs {
        if let (Some(request), Some(limit), Some(text)) = (request, limit, limit_text)
            && limit < request
        {
            checker.error(
                "limit-below-request",
                text.span,
                format!("the {what} limit {limit} is below its request {request}"),
                "below the request",
                format!("raise the limit to at least {request}, or lower the request"),
            );
        }
    }
    if let Some(accelerator) = &raw.accelerator
        && requests.gpu.is_none()
        && limits.gpu.is_none()
    {
        checker.error(
            "accelerator-without-gpu",
            accelerator.span,
            format!("the accelerator \"{}\" is set but no gpu is requested", accelerator.value),
            "no gpu",
            "add gpu = 1 to requests or limits",
        );
    }
    Resources { requests, limits, accelerator: raw.accelerator.as_ref().map(|a| a.value.clone()) }
}

fn resource_set(checker: &mut Checker, raw: Option<&RawResourceSet>) -> ResourceSet {
    let Some(raw) = raw else { return ResourceSet::default() };
    let mut parse = |text: &Option<Spanned<super::decode::QuantityText>>, unit: Unit| {
        let text = text.as_ref()?;
        match parse_quantity(&text.value.0, unit) {
            Ok(quantity) => Some(quantity),
            Err(why) => {
                checker.error(
                    "invalid-quantity",
                    text.span,
                    format!("\"{}\" is not a valid quantity", text.value.0),
                    "invalid quantity",
                    why,
                );
                None
            }
        }
    };
    ResourceSet {
        cpu: parse(&raw.cpu, Unit::Millicores),
        memory: parse(&raw.memory, Unit::Bytes),
        gpu: parse(&raw.gpu, Unit::Count),
        disk: parse(&raw.disk, Unit::Bytes),
    }
}

fn code(
    checker: &mut Checker,
    index: &mut Index,
    name: &Spanned<CompactString>,
    env: &RawEnvironment,
    pinned: bool,
) -> Code {
    let raw = env.code.as_ref();
    let copy_style = raw.and_then(|c| c.copy_style.as_ref());
    if let Some(style) = copy_style
        && style.value == CopyStyle::Full
        && !pinned
    {
        checker.error("full-build-unpinned", style.span, format!("\"{}\" bakes its code into the image but pins no version", name.value), "needs a version", "add version = \"v1.0.0\" (or another fixed version) to the environment; full builds are immutable and named by it");
    }
    let mut globs = |list: Option<&Vec<Spanned<CompactString>>>| -> Vec<CompactString> {
        list.into_iter()
            .flatten()
            .map(|pattern| {
                if let Some(error) = index.glob_error(pattern) {
                    checker.error(
                        "invalid-glob",
                        pattern.span,
                        format!("\"{}\" is not a valid glob", pattern.value),
                        "invalid glob",
                        error,
                    );
                }
                pattern.value.clone()
            })
            .collect()
    };
    let include = globs(raw.and_then(|c| c.include.as_ref()));
    let exclude = globs(raw.and_then(|c| c.exclude.as_ref()));
    let python_path = raw
        .and_then(|c| c.python_path.as_ref())
        .into_iter()
        .flatten()
        .map(|p| checker.path(p, "python_path folder", true))
        .collect();
    let dst = match raw.and_then(|c| c.dst.as_ref()) {
        Some(dst) => {
            checker.absolute(dst, "code destination");
            dst.value.clone()
        }
        None => DEFAULT_CODE_DST.into(),
    };
    Code { copy_style: copy_style.map_or(CopyStyle::Fast, |s| s.value), include, exclude, python_path, dst }
}

#[cfg(test)]
mod split_tests {
    use super::super::decode::{Cx, Decode};
    use super::super::{Source, parse};
    use super::*;

    /// Forty environments with a mistake of every kind the environment checks report, some
    /// references crossing from one part to another, and a cycle across all parts.
    fn manifest() -> String {
        let mut text = String::from("[project]\nname = \"split\"\n\n[images.base]\npython = \"3.12\"\n\n");
        for i in 0..40 {
            let kind = if i % 3 == 0 { "app" } else { "task" };
            text.push_str(&format!("[environments.e{i}]\nkind = \"{kind}\"\n"));
            let image = if i % 7 == 0 { "nope" } else { "base" };
            text.push_str(&format!("image = \"{image}\"\n"));
            let dependency = match i % 5 {
                0 => format!("\"e{}\"", (i + 20) % 40),
                1 => format!("\"e{i}\""),
                2 => "\"missing\", \"missing\"".to_string(),
                3 => "\"off\"".to_string(),
                _ => String::new(),
            };
            text.push_str(&format!("depends_on = [{dependency}]\n"));
            if i % 4 == 0 {
                text.push_str("resources = { requests = { cpu = \"lots\", memory = \"1Qi\" } }\n");
            }
            if i % 6 == 0 {
                text.push_str("code = { include = [\"[bad\"] }\n");
            }
            if kind == "task" && i % 2 == 0 {
                text.push_str("port = 8080\n");
            }
            text.push('\n');
        }
        text.push_str("[environments.off]\nkind = \"task\"\nimage = \"base\"\nenabled = false\n");
        text
    }

    #[test]
    fn checking_in_parts_gives_what_one_pass_gives() {
        let parsed = parse(Source::new("flyte.toml", manifest())).unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
        let mut diags = Vec::new();
        let raw = RawManifest::decode(&parsed.tree, &mut Cx::new(&mut diags)).expect("the manifest decodes");
        let project = Project {
            name: "split".into(),
            domains: vec!["production".into()],
            default_domain: "production".into(),
            root_dir: ".".into(),
            root: std::env::temp_dir(),
            registry: None,
        };
        // No images: every environment's image is an unknown reference, one more mistake per part.
        let images: BTreeMap<CompactString, Image> = BTreeMap::new();
        let run = |threads: usize| {
            let mut diags = Vec::new();
            let mut checker = Checker { diags: &mut diags, root: project.root.clone() };
            let environments =
                environments_on(&mut checker, &raw, &project, "production", &images, Digests::Take, threads);
            (format!("{environments:?}"), format!("{diags:?}"), diags.len())
        };
        let (_, one_diags, count) = crate::parts::same_on_threads("environments and diagnostics", run);
        assert!(count >= 30, "the manifest has mistakes of every kind: {count} found");
        assert!(one_diags.contains("dependency-cycle"), "a cycle across the parts is found");
    }
}
