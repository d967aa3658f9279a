//! Manifest diagnostics: what is wrong, where in the text, and what to do.
//!
//! Every stage of loading pushes into one list instead of stopping at the first problem, so a user sees
//! every mistake in one run. Rendering (miette for people, JSON for machines) happens once, at the edge.

use super::tree::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A secondary place in the text that explains the primary one (the other half of a duplicate, the
/// next link of a cycle).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Related {
    pub span: Span,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable identifier of the rule, e.g. `unknown-field`; documented in the README.
    pub code: &'static str,
    pub message: String,
    /// Where the mistake is; `None` only for problems with the file as a whole (unreadable, empty).
    pub span: Option<Span>,
    pub label: String,
    pub help: Option<String>,
    pub related: Vec<Related>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push(Related { span, label: label.into() });
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The closest candidate to `word`, for "did you mean" help.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    // Typos first: a few edits away, a swap of two letters counting as one ("wbe" → "web"). A
    // candidate whose length differs by more than that is further away, so it is not measured.
    let length = word.chars().count();
    let allowed = (length / 3).max(1);
    let closest = candidates
        .iter()
        .filter(|c| c.len().abs_diff(word.len()) <= 4 * allowed && c.chars().count().abs_diff(length) <= allowed)
        .map(|c| (strsim::osa_distance(word, c), *c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d);
    // Then names that look alike; not among thousands (every environment of a large project), where
    // measuring each against every unknown name took seconds.
    closest.map(|(_, c)| c).or_else(|| {
        (candidates.len() <= SIMILAR_AMONG).then_some(())?;
        candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(word, c), *c))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| c)
    })
}

/// The most candidates [`did_you_mean`] looks for a look-alike among (typos are looked for in any number).
const SIMILAR_AMONG: usize = 1000;

/// "did you mean `x`?" when a close candidate exists, otherwise the list of what is allowed.
pub fn suggestion(word: &str, candidates: &[&str]) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if candidates.is_empty() => "nothing is declared here yet".to_string(),
        None => {
            let shown: Vec<String> = candidates.iter().take(LISTED).map(|c| format!("`{c}`")).collect();
            match candidates.len().checked_sub(LISTED) {
                Some(more) if more > 0 => format!("expected one of: {} and {more} more", shown.join(", ")),
                _ => format!("expected one of: {}", shown.join(", ")),
            }
        }
    }
}

/// How many candidates a "did you mean" help lists when none is close: every field of the largest
/// table (20), but not the names of thousands of environments under every unknown reference.
const LISTED: usize = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_of_candidates_is_cut_short() {
        let names: Vec<String> = (0..10_000).map(|i| format!("svc-{i:05}")).collect();
        let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
        let help = suggestion("ghost", &candidates);
        assert!(help.starts_with("expected one of: `svc-00000`, `svc-00001`"), "{help}");
        assert!(help.ends_with("`svc-00029` and 9970 more"), "{help}");
        assert_eq!(suggestion("ghost", &["a", "b"]), "expected one of: `a`, `b`");
        assert_eq!(suggestion("svc-0001", &candidates[..3]), "did you mean `svc-00001`?");
    }
}
