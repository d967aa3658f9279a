//! The only place that writes to stdout and stderr: results, diagnostics (miette for people, JSON for
//! machines), honouring `--quiet`, `-o json` and `NO_COLOR`.

use std::io::{IsTerminal, Write};

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceSpan, SpanContents,
};
use serde_json::json;

use crate::cli::Format;
use crate::error::Error;
use crate::manifest::diagnostic::{Diagnostic, Severity};
use crate::manifest::{Report, Source};

pub struct Output {
    pub format: Format,
    pub quiet: bool,
    color: bool,
    /// stderr is a terminal: progress may rewrite its last line in place.
    live: bool,
    /// A progress line is on screen (and must be cleared before other text).
    progress_shown: std::sync::atomic::AtomicBool,
}

impl Output {
    pub fn new(format: Format, quiet: bool) -> Output {
        let terminal = std::io::stderr().is_terminal();
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal;
        let live = terminal && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Output { format, quiet, color, live, progress_shown: std::sync::atomic::AtomicBool::new(false) }
    }

    /// A command's result on stdout.
    pub fn result(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = stdout.write_all(b"\n");
        }
    }

    /// A status line for people on stderr, silent with --quiet.
    pub fn status(&self, text: &str) {
        if !self.quiet && self.format == Format::Text {
            self.clear_progress();
            to_stderr(&format!("{text}\n"));
        }
    }

    /// What is happening now, on a terminal only: one line at the bottom, rewritten in place and cut to
    /// the terminal's width. Elsewhere (CI logs, pipes) nothing: the status lines tell the story.
    pub fn progress(&self, text: &str) {
        if self.quiet || self.format != Format::Text || !self.live {
            return;
        }
        let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok()).unwrap_or(100).max(20);
        let line: String = text.chars().filter(|c| !c.is_control()).take(width - 1).collect();
        to_stderr(&format!("\r\x1b[2K{line}"));
        self.progress_shown.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Removes the progress line, if one is shown.
    pub fn clear_progress(&self) {
        if self.progress_shown.swap(false, std::sync::atomic::Ordering::Relaxed) {
            to_stderr("\r\x1b[2K");
        }
    }

    /// Warnings of a successful run (errors go through [`Output::error`]).
    pub fn warnings(&self, source: Option<&Source>, diagnostics: &[Diagnostic]) {
        let warnings: Vec<&Diagnostic> = diagnostics.iter().filter(|d| !d.is_error()).collect();
        if self.quiet || warnings.is_empty() {
            return;
        }
        match self.format {
            Format::Text => to_stderr(&self.render(source, &warnings)),
            Format::Json => to_stderr(&format!("{}\n", diagnostics_json(source, &warnings))),
        }
    }

    pub fn error(&self, error: &Error) {
        self.clear_progress();
        match error {
            Error::Manifest(Report { source, diagnostics }) => {
                let shown: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.is_error() || !self.quiet).collect();
                match self.format {
                    Format::Text => {
                        to_stderr(&self.render(source.as_ref(), &shown));
                        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                        let warnings = diagnostics.len() - errors;
                        to_stderr(&format!(
                            "{errors} error{}, {warnings} warning{}\n",
                            plural(errors),
                            plural(warnings)
                        ));
                    }
                    Format::Json => self.result(&diagnostics_json(source.as_ref(), &shown).to_string()),
                }
            }
            other => {
                let help = match other {
                    Error::Input { help: Some(help), .. } => Some(help.clone()),
                    Error::Plan(error) => miette::Diagnostic::help(error).map(|h| h.to_string()),
                    Error::Bundle(error) => Some(error.help()),
                    Error::Image(error) => Some(error.help()),
                    _ => None,
                };
                match self.format {
                    Format::Text => {
                        to_stderr(&format!("error: {other}\n"));
                        if let Some(help) = help {
                            to_stderr(&format!("  help: {help}\n"));
                        }
                    }
                    Format::Json => self.result(
                        &json!({"error": other.to_string(), "help": help, "exit_code": other.exit() as i32})
                            .to_string(),
                    ),
                }
            }
        }
    }

    fn render(&self, source: Option<&Source>, diagnostics: &[&Diagnostic]) -> String {
        let theme = if self.color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        for diagnostic in diagnostics {
            let shown = Shown::new(diagnostic, source);
            if handler.render_report(&mut out, &shown).is_err() {
                out.push_str(&format!("{}: {}\n", severity_word(diagnostic.severity), diagnostic.message));
            }
            out.push('\n');
        }
        out
    }
}

/// Writes to stderr; a closed stream (a pipe whose reader left) is not an error worth dying for.
fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// Diagnostics as JSON: one object per diagnostic with file, 1-based line and column, label and help.
pub fn diagnostics_json(source: Option<&Source>, diagnostics: &[&Diagnostic]) -> serde_json::Value {
    let place = |offset: usize| source.map(|s| s.line_col(offset));
    let items: Vec<serde_json::Value> = diagnostics
        .iter()
        .map(|d| {
            let (line, column) = d.span.and_then(|s| place(s.start())).unzip();
            let related: Vec<serde_json::Value> = d
                .related
                .iter()
                .map(|r| {
                    let (line, column) = place(r.span.start()).unzip();
                    json!({"line": line, "column": column, "label": r.label})
                })
                .collect();
            json!({
                "severity": d.severity,
                "code": d.code,
                "message": d.message,
                "file": source.map(|s| s.path.display().to_string()),
                "line": line,
                "column": column,
                "label": if d.label.is_empty() { None } else { Some(&d.label) },
                "help": d.help,
                "related": related,
            })
        })
        .collect();
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    json!({"errors": errors, "warnings": diagnostics.len() - errors, "diagnostics": items})
}

/// A diagnostic joined to its source, in the form miette renders.
#[derive(Debug)]
struct Shown<'a> {
    message: String,
    code: &'static str,
    severity: Severity,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    source: Option<Lines<'a>>,
}

impl<'a> Shown<'a> {
    fn new(diagnostic: &Diagnostic, source: Option<&'a Source>) -> Shown<'a> {
        let mut labels = Vec::new();
        let source = source.filter(|_| diagnostic.span.is_some());
        if let (Some(span), Some(source)) = (diagnostic.span, source) {
            labels
                .push(LabeledSpan::new_primary_with_span(Some(diagnostic.label.clone()), to_source_span(span, source)));
            for related in &diagnostic.related {
                labels.push(LabeledSpan::new_with_span(
                    Some(related.label.clone()),
                    to_source_span(related.span, source),
                ));
            }
        }
        Shown {
            message: diagnostic.message.clone(),
            code: diagnostic.code,
            severity: diagnostic.severity,
            help: diagnostic.help.clone(),
            labels,
            source: source.map(|source| Lines { source, name: source.path.display().to_string() }),
        }
    }
}

/// The manifest as miette reads it. miette finds a span's lines by scanning its source from the
/// start, and a report owns its source: with a copy of a 6 MB manifest per diagnostic, a thousand
/// mistakes took half a minute to print. This hands miette only the lines around each span, found with
/// the source's line index, and puts its answer back in the file's offsets and line numbers.
#[derive(Debug)]
struct Lines<'a> {
    source: &'a Source,
    name: String,
}

impl miette::SourceCode for Lines<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let text = self.source.text.as_str();
        let starts = self.source.line_starts();
        let start = span.offset().min(text.len());
        let end = (span.offset() + span.len()).min(text.len()).max(start);
        let line_of = |offset: usize| starts.partition_point(|&s| s <= offset) - 1;
        // One line more than asked on each side, so the window never cuts miette's context short.
        let first = line_of(start).saturating_sub(before + 1);
        let past = (line_of(end) + after + 2).min(starts.len());
        let window_start = starts[first];
        let window = &text[window_start..starts.get(past).copied().unwrap_or(text.len())];
        let local = SourceSpan::new((start - window_start).into(), end - start);
        let contents = window.read_span(&local, before, after)?;
        let language = match self.source.format {
            crate::manifest::Format::Toml => "TOML",
            crate::manifest::Format::Kdl => "KDL",
        };
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name.clone(),
                contents.data(),
                SourceSpan::new((contents.span().offset() + window_start).into(), contents.span().len()),
                contents.line() + first,
                contents.column(),
                // The lines shown, which decides whether two labels share a snippet: miette's own count
                // runs from the start of the text, which joined labels any distance apart into one.
                contents.data().split(|&b| b == b'\n').count(),
            )
            .with_language(language),
        ))
    }
}

fn to_source_span(span: crate::manifest::tree::Span, source: &Source) -> SourceSpan {
    let start = span.start().min(source.text.len());
    let end = span.end().min(source.text.len()).max(start);
    SourceSpan::new(start.into(), end - start)
}

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Shown<'_> {}

impl miette::Diagnostic for Shown<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(format!("flyte::{}", self.code)))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (!self.labels.is_empty())
            .then(|| Box::new(self.labels.iter().cloned()) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tree::Span;

    fn render(source: &Source, diagnostic: &Diagnostic) -> String {
        let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
        let mut out = String::new();
        handler.render_report(&mut out, &Shown::new(diagnostic, Some(source))).expect("renders");
        out
    }

    /// Labels far apart get a snippet each, with the file's own line numbers; labels close together
    /// share one.
    #[test]
    fn snippets_show_the_lines_around_each_label_with_their_numbers() {
        let mut text = String::from("[environments.a]\ndepends_on = [\"b\"]\n");
        for i in 0..10_000 {
            text.push_str(&format!("# filler {i}\n"));
        }
        let far = text.len();
        text.push_str("[environments.b]\nenabled = false\n");
        let source = Source::new("flyte.toml", text.clone());
        let at = |needle: &str, from: usize| {
            let start = from + text[from..].find(needle).expect("in the text");
            Span::new(start, start + needle.len())
        };
        let diagnostic = Diagnostic::error("disabled-dependency", "\"a\" depends on \"b\", which is disabled")
            .at(at("\"b\"", 0), "disabled dependency")
            .related(at("false", far), "disabled here");
        let out = render(&source, &diagnostic);
        assert!(out.contains("[flyte.toml:2:15]"), "{out}");
        assert!(out.contains("[flyte.toml:10004:11]"), "{out}");
        assert!(out.contains("10004 │ enabled = false"), "{out}");
        assert!(out.lines().count() < 25, "two short snippets, not ten thousand lines:\n{out}");

        let near = Diagnostic::error("duplicate", "`b` is given twice")
            .at(at("[environments.b]", far), "here")
            .related(at("enabled", far), "and here");
        let out = render(&source, &near);
        assert_eq!(out.matches("╭─[").count(), 1, "one snippet for labels on adjacent lines:\n{out}");
    }
}
