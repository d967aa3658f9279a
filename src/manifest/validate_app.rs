//! Validation of app environments: port, command, scaling, and where each input comes from.

use compact_str::CompactString;

use super::decode::{Keyed, Spanned};
use super::diagnostic::suggestion;
use super::model::*;
use super::raw::{RawEnvironment, RawInput};
use super::tree::Span;
use super::units::{is_dns_label, is_identifier};
use super::validate::Checker;
use super::validate_env::{DEFAULT_PORT, Index, RESERVED_PORTS};

pub(super) fn app(
    checker: &mut Checker,
    index: &Index,
    name: &Spanned<CompactString>,
    env: &RawEnvironment,
    env_vars: &SortedMap<CompactString, CompactString>,
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
    let command: Vec<CompactString> =
        env.command.iter().flat_map(|c| c.value.iter()).map(|c| c.value.clone()).collect();
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
    let mut duration = |text: &Option<Spanned<CompactString>>| text.as_ref().and_then(|text| checker.duration(text));
    let timeouts = env
        .timeouts
        .as_ref()
        .map_or_else(Timeouts::default, |t| Timeouts { startup: duration(&t.startup), request: duration(&t.request) });
    let mut inputs = SortedMap::with_capacity(env.inputs.as_ref().map_or(0, |i| i.value.entries.len()));
    let mut exposed: Vec<Spanned<CompactString>> = Vec::new();
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
            if checker.env_name(var) && env_vars.contains_key(var.as_str()) {
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
    app: &Spanned<CompactString>,
    input_name: &Spanned<CompactString>,
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
        None if outputs.len() == 1 => outputs[0].into(),
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
            CompactString::default()
        }
    };
    Some(InputSource::TaskOutput {
        environment: env_name.into(),
        task: task_name.into(),
        reference: task_ref.value.clone(),
        output,
    })
}
