//! Validation of environments: references, kinds, resources, code shipping, apps, tasks, and the
//! dependency graph (cycles are reported whole, with every link pointed at).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use globset::Glob;

use super::decode::{BoolOr, Keyed, Spanned};
use super::diagnostic::{Diagnostic, suggestion};
use super::model::*;
use super::raw::{RawEnvironment, RawInput, RawManifest, RawResourceSet, RawTask};
use super::tree::Span;
use super::units::{Unit, is_dns_label, is_env_name, is_identifier, parse_quantity};
use super::validate::Checker;

/// Ports the platform keeps for itself.
pub const RESERVED_PORTS: [i64; 5] = [8012, 8022, 8112, 9090, 9091];
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_CODE_DST: &str = "/app";

pub fn environments(
    checker: &mut Checker,
    raw: &RawManifest,
    project: &Project,
    domain: &str,
    images: &BTreeMap<String, Image>,
) -> BTreeMap<String, Environment> {
    let Some(declared) = &raw.environments else { return BTreeMap::new() };
    let mut index = Index::new(declared);
    let image_names: Vec<&str> = images.keys().map(String::as_str).collect();
    let disabled: HashMap<&str, Span> = declared
        .iter()
        .filter_map(|(name, env)| env.enabled.as_ref().filter(|e| !e.value).map(|e| (name.as_str(), e.span)))
        .collect();
    let mut out = BTreeMap::new();
    let mut edges: Vec<(String, Spanned<String>)> = Vec::new();
    for (name, env) in declared.iter() {
        checker.dns_label("environment name", name);
        if disabled.contains_key(name.as_str()) {
            continue;
        }
        let resolved = environment(checker, &mut index, project, domain, &image_names, name, env);
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
                edges.push((name.value.clone(), dependency.clone()));
            }
        }
        out.insert(name.value.clone(), resolved);
    }
    cycles(checker, &edges);
    out
}

/// The declared environments by name, built once: every environment may refer to any other. And the
/// globs checked so far: environments repeat the same patterns.
struct Index<'a> {
    declared: &'a Keyed<RawEnvironment>,
    /// The first environment of each name, as a scan in declaration order would find it.
    by_name: HashMap<&'a str, &'a RawEnvironment>,
    /// Every name, sorted, for "did you mean".
    names: Vec<&'a str>,
    /// Each glob checked so far, and why it is invalid when it is.
    glob_errors: HashMap<String, Option<String>>,
}

impl<'a> Index<'a> {
    fn new(declared: &'a Keyed<RawEnvironment>) -> Self {
        let mut by_name = HashMap::new();
        for (name, env) in declared.iter() {
            by_name.entry(name.as_str()).or_insert(env);
        }
        let mut names: Vec<&str> = by_name.keys().copied().collect();
        names.sort_unstable();
        Index { declared, by_name, names, glob_errors: HashMap::new() }
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

    fn get(&self, name: &str) -> Option<&'a RawEnvironment> {
        self.by_name.get(name).copied()
    }

    /// The names of the environments of `kind` in declaration order, leaving out `except`: the
    /// candidates of a reference that was not found.
    fn names_of(&self, kind: EnvKind, except: Option<&str>) -> Vec<&'a str> {
        self.declared
            .iter()
            .filter(|(_, e)| e.kind.value == kind)
            .map(|(n, _)| n.as_str())
            .filter(|n| Some(*n) != except)
            .collect()
    }
}

/// Every name an environment refers to as a dependency, with where it is written.
fn dependency_refs(env: &RawEnvironment) -> Vec<Spanned<String>> {
    let mut refs: Vec<Spanned<String>> = env.depends_on.iter().flatten().cloned().collect();
    for (_, input) in env.inputs.iter().flat_map(|i| i.value.iter()) {
        if let Some(endpoint) = &input.endpoint {
            refs.push(endpoint.clone());
        }
        if let Some(task) = &input.task
            && let Some((environment, _)) = task.split_once('.')
        {
            refs.push(Spanned { value: environment.to_string(), span: task.span, overlay: task.overlay });
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
    name: &Spanned<String>,
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
            checker.reference("environment", dependency, &index.names);
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
    env_vars.insert("FLYTE_PROJECT".to_string(), project.name.clone());
    env_vars.insert("FLYTE_DOMAIN".to_string(), domain.to_string());
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
    }
}

fn secrets(checker: &mut Checker, env: &RawEnvironment) -> Vec<Secret> {
    let mut out = Vec::new();
    let mut exposed_as: Vec<Spanned<String>> = Vec::new();
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
                if !is_env_name(var) {
                    checker.error(
                        "invalid-env-name",
                        var.span,
                        format!("\"{}\" is not an environment variable name", var.value),
                        "invalid name",
                        "use letters, digits and '_', not starting with a digit",
                    );
                }
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
                SecretExposure::Env { as_env: String::new() }
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

fn code(checker: &mut Checker, index: &mut Index, name: &Spanned<String>, env: &RawEnvironment, pinned: bool) -> Code {
    let raw = env.code.as_ref();
    let copy_style = raw.and_then(|c| c.copy_style.as_ref());
    if let Some(style) = copy_style
        && style.value == CopyStyle::Full
        && !pinned
    {
        checker.error("full-build-unpinned", style.span, format!("\"{}\" bakes its code into the image but pins no version", name.value), "needs a version", "add version = \"v1.0.0\" (or another fixed version) to the environment; full builds are immutable and named by it");
    }
    let mut globs = |list: Option<&Vec<Spanned<String>>>| -> Vec<String> {
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
        None => DEFAULT_CODE_DST.to_string(),
    };
    Code { copy_style: copy_style.map_or(CopyStyle::Fast, |s| s.value), include, exclude, python_path, dst }
}

fn app(
    checker: &mut Checker,
    index: &Index,
    name: &Spanned<String>,
    env: &RawEnvironment,
    env_vars: &BTreeMap<String, String>,
) -> AppSpec {
    let port = match &env.port {
        Some(port) if RESERVED_PORTS.contains(&port.value) => {
            checker.error(
                "reserved-port",
                port.span,
                format!("port {} is reserved by the platform", port.value),
                "reserved",
                "pick another port; 8012, 8022, 8112, 9090 and 9091 are taken by the platform (8080 is the default)",
            );
            DEFAULT_PORT
        }
        Some(port) => u16::try_from(port.value).ok().filter(|p| *p > 0).unwrap_or_else(|| {
            checker.error(
                "invalid-port",
                port.span,
                format!("{} is not a port", port.value),
                "not 1–65535",
                "use a port between 1 and 65535; 8080 is the default",
            );
            DEFAULT_PORT
        }),
        None => DEFAULT_PORT,
    };
    let command: Vec<String> = env.command.iter().flat_map(|c| c.value.iter()).map(|c| c.value.clone()).collect();
    match &env.command {
        None => checker.error(
            "missing-field",
            env.kind.span,
            format!("app \"{}\" has no `command`", name.value),
            "what does it run?",
            "add the command that starts the server, e.g. command = [\"uvicorn\", \"main:app\", \"--port\", \"8080\"]",
        ),
        Some(c) if c.value.is_empty() => checker.error(
            "empty-command",
            c.span,
            format!("app \"{}\" has an empty `command`", name.value),
            "empty",
            "give the program and its arguments",
        ),
        Some(_) => {}
    }
    let scaling = scaling(checker, env);
    let ingress = match &env.ingress {
        Some(ingress) => {
            if let Some(subdomain) = &ingress.subdomain {
                checker.dns_label("subdomain", subdomain);
            }
            if let Some(custom) = &ingress.custom_domain {
                let valid =
                    custom.len() <= 253 && custom.split('.').count() >= 2 && custom.split('.').all(is_dns_label);
                if !valid {
                    checker.error(
                        "invalid-domain-name",
                        custom.span,
                        format!("\"{}\" is not a domain name", custom.value),
                        "invalid domain name",
                        "write a lowercase host name such as \"api.example.com\"",
                    );
                }
            }
            Ingress {
                private: ingress.private.unwrap_or(false),
                subdomain: ingress.subdomain.as_ref().map(|s| s.value.clone()),
                custom_domain: ingress.custom_domain.as_ref().map(|s| s.value.clone()),
            }
        }
        None => Ingress::default(),
    };
    if let Some(path) = &env.health_check
        && !path.starts_with('/')
    {
        checker.error(
            "invalid-health-check",
            path.span,
            format!("the health check \"{}\" is not a path", path.value),
            "not a path",
            format!("start it with '/', e.g. \"/{}\"", path.value),
        );
    }
    let mut duration = |text: &Option<Spanned<String>>| text.as_ref().and_then(|text| checker.duration(text));
    let timeouts = env
        .timeouts
        .as_ref()
        .map_or_else(Timeouts::default, |t| Timeouts { startup: duration(&t.startup), request: duration(&t.request) });
    let mut inputs = BTreeMap::new();
    let mut exposed: Vec<Spanned<String>> = Vec::new();
    for (input_name, input) in env.inputs.iter().flat_map(|i| i.value.iter()) {
        if !is_identifier(input_name) {
            checker.error(
                "invalid-name",
                input_name.span,
                format!("\"{}\" is not an input name", input_name.value),
                "invalid input name",
                "use letters, digits and '_', not starting with a digit",
            );
        }
        if let Some(var) = &input.as_env {
            if !is_env_name(var) {
                checker.error(
                    "invalid-env-name",
                    var.span,
                    format!("\"{}\" is not an environment variable name", var.value),
                    "invalid name",
                    "use letters, digits and '_', not starting with a digit",
                );
            } else if env_vars.contains_key(var.as_str()) {
                checker.error(
                    "duplicate",
                    var.span,
                    format!("{} is both an input and an environment variable", var.value),
                    "set twice",
                    "remove it from `env` or pick another name",
                );
            }
            exposed.push(var.clone());
        }
        if let Some(source) = input_source(checker, index, name, input_name, input) {
            inputs.insert(
                input_name.value.clone(),
                Input { source, as_env: input.as_env.as_ref().map(|v| v.value.clone()) },
            );
        }
    }
    checker.unique("input variable", &exposed);
    AppSpec {
        port,
        command,
        args: env.args.iter().flat_map(|a| a.value.iter()).map(|a| a.value.clone()).collect(),
        scaling,
        ingress,
        requires_auth: env.requires_auth.as_ref().is_none_or(|r| r.value),
        health_check: env.health_check.as_ref().map(|h| h.value.clone()),
        timeouts,
        inputs,
    }
}

fn scaling(checker: &mut Checker, env: &RawEnvironment) -> Scaling {
    let Some(raw) = &env.scaling else {
        return Scaling { min_replicas: 0, max_replicas: 1, scale_down_after: None, metric: None, target: None };
    };
    let mut count = |value: &Option<Spanned<i64>>, default: u32, what: &str| match value {
        Some(v) => u32::try_from(v.value).unwrap_or_else(|_| {
            checker.error(
                "invalid-replicas",
                v.span,
                format!("{what} cannot be {}", v.value),
                "out of range",
                "use a whole number from 0",
            );
            default
        }),
        None => default,
    };
    let min = count(&raw.min_replicas, 0, "min_replicas");
    let max = count(&raw.max_replicas, min.max(1), "max_replicas");
    if let Some(max_text) = &raw.max_replicas {
        if max == 0 {
            checker.error(
                "invalid-replicas",
                max_text.span,
                "max_replicas must be at least 1".to_string(),
                "no replica could run",
                "set max_replicas = 1 or more",
            );
        } else if max < min {
            checker.error(
                "invalid-replicas",
                max_text.span,
                format!("max_replicas {max} is below min_replicas {min}"),
                "below min_replicas",
                format!("raise max_replicas to at least {min}"),
            );
        }
    }
    let scale_down_after = raw.scale_down_after.as_ref().and_then(|text| checker.duration(text));
    if let Some(target) = &raw.target {
        if !(target.value > 0.0 && target.value.is_finite()) {
            checker.error(
                "invalid-target",
                target.span,
                format!("the scaling target {} must be above 0", target.value),
                "not positive",
                "e.g. target = 10",
            );
        }
        if raw.metric.is_none() {
            checker.error(
                "missing-field",
                target.span,
                "a scaling target needs a `metric`".to_string(),
                "target of what?",
                "add metric = \"concurrency\" or metric = \"request_rate\"",
            );
        }
    }
    Scaling {
        min_replicas: min,
        max_replicas: max,
        scale_down_after,
        metric: raw.metric.as_ref().map(|m| m.value),
        target: raw.target.as_ref().map(|t| t.value),
    }
}

fn input_source(
    checker: &mut Checker,
    index: &Index,
    app: &Spanned<String>,
    input_name: &Spanned<String>,
    input: &RawInput,
) -> Option<InputSource> {
    let given: Vec<(&str, Span)> = [
        ("value", input.value.as_ref().map(|v| v.span)),
        ("endpoint", input.endpoint.as_ref().map(|v| v.span)),
        ("task", input.task.as_ref().map(|v| v.span)),
    ]
    .into_iter()
    .filter_map(|(field, span)| span.map(|s| (field, s)))
    .collect();
    if given.len() != 1 {
        let span = given.get(1).map_or(input_name.span, |g| g.1);
        checker.error(
            "input-source",
            span,
            format!("input \"{}\" must have exactly one of `value`, `endpoint` or `task`", input_name.value),
            if given.is_empty() { "no source" } else { "second source" },
            "a default value, another app's endpoint, or a task's output: pick one",
        );
        return None;
    }
    if let (Some(output), None) = (&input.output, &input.task) {
        checker.error(
            "conflicting-fields",
            output.span,
            "`output` only applies with `task`".to_string(),
            "output of what?",
            "add task = \"<environment>.<task>\" or remove `output`",
        );
    }
    if let Some(value) = &input.value {
        return Some(InputSource::Value { value: value.value.0.clone() });
    }
    if let Some(endpoint) = &input.endpoint {
        let target = index.get(endpoint).map(|e| e.kind.value);
        if endpoint.value == app.value {
            checker.error(
                "self-dependency",
                endpoint.span,
                format!("app \"{}\" reads its own endpoint", app.value),
                "itself",
                "an input endpoint must be another app",
            );
        } else if target == Some(EnvKind::Task) {
            let apps = index.names_of(EnvKind::App, Some(app));
            let help = if apps.is_empty() {
                "only apps serve endpoints, and no other app is declared".to_string()
            } else {
                format!("only apps serve endpoints: {}", suggestion(endpoint, &apps))
            };
            checker.error(
                "not-an-app",
                endpoint.span,
                format!("\"{}\" is a task environment and has no endpoint", endpoint.value),
                "not an app",
                help,
            );
        } else if target.is_none() {
            checker.reference("app", endpoint, &index.names_of(EnvKind::App, Some(app)));
        }
        return Some(InputSource::Endpoint { endpoint: endpoint.value.clone() });
    }
    let task_ref = input.task.as_ref()?;
    let Some((env_name, task_name)) = task_ref.split_once('.') else {
        checker.error(
            "invalid-task-reference",
            task_ref.span,
            format!("\"{}\" does not name a task", task_ref.value),
            "expected <environment>.<task>",
            "write the task environment and the task, e.g. \"training.train\"",
        );
        return None;
    };
    let Some(env) = index.get(env_name).filter(|e| e.kind.value == EnvKind::Task) else {
        let task_envs = index.names_of(EnvKind::Task, None);
        checker.error(
            "unknown-reference",
            task_ref.span,
            format!("no task environment is named \"{env_name}\""),
            "unknown task environment",
            suggestion(env_name, &task_envs),
        );
        return None;
    };
    let tasks: Vec<&str> = env.tasks.iter().flat_map(|t| t.value.iter()).map(|(n, _)| n.as_str()).collect();
    let Some((_, task)) = env.tasks.iter().flat_map(|t| t.value.iter()).find(|(n, _)| n.value == task_name) else {
        checker.error(
            "unknown-reference",
            task_ref.span,
            format!("task environment \"{env_name}\" has no task \"{task_name}\""),
            "unknown task",
            suggestion(task_name, &tasks),
        );
        return None;
    };
    let outputs: Vec<&str> = task.outputs.iter().flat_map(Keyed::iter).map(|(n, _)| n.as_str()).collect();
    let output = match &input.output {
        Some(output) => {
            if !outputs.contains(&output.as_str()) {
                checker.error(
                    "unknown-reference",
                    output.span,
                    format!("task \"{}\" has no output \"{}\"", task_ref.value, output.value),
                    "unknown output",
                    suggestion(output, &outputs),
                );
            }
            output.value.clone()
        }
        None if outputs.len() == 1 => outputs[0].to_string(),
        None => {
            checker.error(
                "missing-field",
                task_ref.span,
                format!("task \"{}\" has {} outputs; say which", task_ref.value, outputs.len()),
                "which output?",
                if outputs.is_empty() {
                    "declare the task's outputs".to_string()
                } else {
                    format!("add output = \"{}\"", outputs[0])
                },
            );
            String::new()
        }
    };
    Some(InputSource::TaskOutput {
        environment: env_name.to_string(),
        task: task_name.to_string(),
        reference: task_ref.value.clone(),
        output,
    })
}

fn task(checker: &mut Checker, name: &Spanned<String>, raw: &RawTask) -> Task {
    if !is_identifier(name) {
        checker.error(
            "invalid-name",
            name.span,
            format!("\"{}\" is not a task name", name.value),
            "invalid task name",
            "task names are Python identifiers: letters, digits and '_'",
        );
    }
    let valid_entry = raw
        .entrypoint
        .split_once(':')
        .is_some_and(|(module, function)| module.split('.').all(is_identifier) && is_identifier(function));
    if !valid_entry {
        checker.error(
            "invalid-entrypoint",
            raw.entrypoint.span,
            format!("\"{}\" is not a task entrypoint", raw.entrypoint.value),
            "expected module:function",
            "write the module path and the function, e.g. \"pipeline.train:train\"",
        );
    }
    let mut typed = |map: &Option<Keyed<Spanned<TaskType>>>| -> BTreeMap<String, TaskType> {
        map.iter()
            .flat_map(Keyed::iter)
            .map(|(k, v)| {
                if !is_identifier(k) {
                    checker.error(
                        "invalid-name",
                        k.span,
                        format!("\"{}\" is not a parameter name", k.value),
                        "invalid name",
                        "use a Python identifier",
                    );
                }
                (k.value.clone(), v.value)
            })
            .collect()
    };
    let inputs = typed(&raw.inputs);
    let outputs = typed(&raw.outputs);
    let retries = match &raw.retries {
        Some(r) => u32::try_from(r.value).ok().filter(|r| *r <= 100).unwrap_or_else(|| {
            checker.error(
                "invalid-retries",
                r.span,
                format!("retries cannot be {}", r.value),
                "out of range",
                "use 0 to 100",
            );
            0
        }),
        None => 0,
    };
    let timeout = raw.timeout.as_ref().and_then(|t| checker.duration(t));
    let cache = match raw.cache.as_ref().map(|c| &c.value) {
        None | Some(BoolOr::Bool(false)) => None,
        Some(BoolOr::Bool(true)) => Some(Cache { version: None }),
        Some(BoolOr::Settings(settings)) => Some(Cache { version: settings.version.as_ref().map(|v| v.value.clone()) }),
    };
    Task {
        entrypoint: raw.entrypoint.value.clone(),
        description: raw.description.clone(),
        inputs,
        outputs,
        retries,
        timeout,
        cache,
    }
}

/// Reports every dependency cycle once, the whole loop, each link pointed at.
fn cycles(checker: &mut Checker, edges: &[(String, Spanned<String>)]) {
    let mut graph: BTreeMap<&str, Vec<&Spanned<String>>> = BTreeMap::new();
    for (from, to) in edges {
        graph.entry(from.as_str()).or_default().push(to);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    // Iterative depth-first search: a manifest may hold thousands of environments in a chain.
    for &start in graph.keys() {
        if marks.contains_key(start) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        let mut via: Vec<&Spanned<String>> = Vec::new();
        marks.insert(start, Mark::Open);
        while let Some((node, next)) = path.last_mut() {
            let node: &str = node;
            let Some(edge) = graph.get(node).and_then(|e| e.get(*next)) else {
                marks.insert(node, Mark::Done);
                path.pop();
                via.pop();
                continue;
            };
            *next += 1;
            let target = edge.as_str();
            match marks.get(target) {
                Some(Mark::Open) => {
                    let at = path.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let mut links: Vec<&Spanned<String>> = via[at..].to_vec();
                    links.push(edge);
                    let members: Vec<String> = path[at..].iter().map(|(n, _)| n.to_string()).collect();
                    let mut key = members.clone();
                    key.sort();
                    if reported.insert(key) {
                        report_cycle(checker, &members, &links);
                    }
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(target, Mark::Open);
                    path.push((target, 0));
                    via.push(edge);
                }
            }
        }
    }
}

fn report_cycle(checker: &mut Checker, members: &[String], links: &[&Spanned<String>]) {
    let mut loop_text = members.join(" → ");
    loop_text.push_str(&format!(" → {}", members[0]));
    let mut diagnostic = Diagnostic::error("dependency-cycle", format!("dependency cycle: {loop_text}"))
        .at(links[links.len() - 1].span, format!("{} depends on {}", members[members.len() - 1], members[0]))
        .help("environments deploy in dependency order, so a cycle can never deploy: remove one of these links");
    for (index, link) in links[..links.len() - 1].iter().enumerate() {
        diagnostic = diagnostic.related(link.span, format!("{} depends on {}", members[index], link.value));
    }
    checker.diags.push(diagnostic);
}
