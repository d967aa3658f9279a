//! Validation of the tasks of task environments: names, entrypoints, parameters, retries and cache.

use compact_str::CompactString;

use super::decode::{BoolOr, Keyed, Spanned};
use super::model::*;
use super::raw::RawTask;
use super::units::is_identifier;
use super::validate::Checker;

pub(super) fn task(checker: &mut Checker, name: &Spanned<CompactString>, raw: &RawTask) -> Task {
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
    let mut typed = |map: &Option<Keyed<Spanned<TaskType>>>| -> SortedMap<CompactString, TaskType> {
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
