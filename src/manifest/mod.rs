//! The manifest stage: `flyte.toml` or `flyte.kdl` → one resolved [`model::Manifest`] per domain.
//!
//! read (size, UTF-8) → parse with spans ([`toml_front`], [`kdl_front`]) → take the domain's overlay
//! and [`overlay::merge`] it → decode ([`decode`], [`raw`]) → [`validate`] into the [`model`].
//! Every step collects all its diagnostics; a later step runs only when the earlier ones found no error.

pub mod decode;
pub mod diagnostic;
pub mod kdl_fast;
pub mod kdl_front;
pub mod model;
#[cfg(test)]
mod mutations;
pub mod nesting;
pub mod origin;
pub mod overlay;
pub mod raw;
pub mod schema;
pub mod sorted_map;
pub mod starter;
pub mod toml_fast;
pub mod toml_front;
pub mod tree;
pub mod units;
pub mod validate;
pub mod validate_app;
pub mod validate_env;
pub mod validate_graph;
pub mod validate_task;

use std::path::{Path, PathBuf};

use decode::{Cx, Decode};
use diagnostic::{Diagnostic, suggestion};
use raw::{Patch, RawDomain, RawManifest};
use tree::{Entry, Node, Table, Value};

/// Larger than any hand-written manifest; a bigger file is almost certainly not a manifest.
pub const MAX_BYTES: u64 = 8 * 1024 * 1024;
pub const FILE_NAMES: [&str; 2] = ["flyte.toml", "flyte.kdl"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Toml,
    Kdl,
}

impl Format {
    /// KDL for `.kdl` files, TOML for everything else.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("kdl") => Format::Kdl,
            _ => Format::Toml,
        }
    }
}

/// A manifest's text and where it came from.
#[derive(Clone, Debug)]
pub struct Source {
    /// The path as found or given, for messages.
    pub path: PathBuf,
    /// Never changed once the source is made: the line index below is built from it on first use.
    pub text: String,
    pub format: Format,
    /// Where each line starts, for line and column of any offset by a binary search: a large manifest
    /// with many mistakes would otherwise be scanned from the start for each one.
    lines: std::sync::OnceLock<Vec<usize>>,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Source {
        let path = path.into();
        Source { format: Format::of(&path), path, text: text.into(), lines: std::sync::OnceLock::new() }
    }

    /// The folder relative paths start from.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The byte offset where each line starts, the first being 0.
    pub fn line_starts(&self) -> &[usize] {
        self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 1-based line and column of a byte offset (the column counts characters).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let starts = self.line_starts();
        let line = starts.partition_point(|&start| start <= offset);
        let line_start = starts[line - 1];
        let column = String::from_utf8_lossy(&self.text.as_bytes()[line_start..offset]).chars().count() + 1;
        (line, column)
    }
}

/// Diagnostics with the source they point into.
#[derive(Debug)]
pub struct Report {
    pub source: Option<Source>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Finds the manifest in `start` or the nearest parent folder. Returns it and any warning.
pub fn find(start: &Path) -> Result<(PathBuf, Option<Diagnostic>), Diagnostic> {
    for dir in start.ancestors() {
        let found: Vec<PathBuf> = FILE_NAMES.iter().map(|name| dir.join(name)).filter(|p| p.is_file()).collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Ok((one.clone(), None)),
            [toml, kdl, ..] => {
                let warning = Diagnostic::warning(
                    "two-manifests",
                    format!("{} and {} are both here; using {}", toml.display(), kdl.display(), toml.display()),
                )
                .help("remove one, or name the one to use with -f");
                return Ok((toml.clone(), Some(warning)));
            }
        }
    }
    Err(Diagnostic::error(
        "no-manifest",
        format!("no flyte.toml or flyte.kdl in {} or any parent folder", start.display()),
    )
    .help("run `flyte init` to write one, or name a manifest with -f FILE"))
}

/// Reads a manifest file, refusing what cannot be one (too large, not UTF-8).
pub fn read(path: &Path) -> Result<Source, Report> {
    read_text(path).map_err(|(source, diagnostic)| Report { source, diagnostics: vec![diagnostic] })
}

fn read_text(path: &Path) -> Result<Source, (Option<Source>, Diagnostic)> {
    let unreadable = |error: std::io::Error| {
        let diagnostic = Diagnostic::error("unreadable", format!("cannot read {}: {error}", path.display()))
            .help("check the path and its permissions");
        (None, diagnostic)
    };
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_BYTES {
        let diagnostic = Diagnostic::error(
            "too-large",
            format!("{} is {size} bytes; a manifest may be at most {MAX_BYTES} (8 MiB)", path.display()),
        )
        .help("is this the right file? A manifest describes environments; data belongs elsewhere");
        return Err((None, diagnostic));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    source_from_bytes(path, bytes)
}

/// The text of a manifest; text that is not UTF-8 is refused, pointing at the first bad byte of a
/// lossy copy (everything before that byte is unchanged, so its line and column are right).
fn source_from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Source, (Option<Source>, Diagnostic)> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::new(path, text)),
        Err(error) => {
            let offset = error.utf8_error().valid_up_to();
            let bytes = error.as_bytes();
            let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
            let lossy = Source::new(path, String::from_utf8_lossy(bytes).into_owned());
            let diagnostic = Diagnostic::error(
                "not-utf8",
                format!(
                    "{} is not UTF-8: invalid byte 0x{:02x} at line {line}, byte offset {offset}",
                    path.display(),
                    bytes[offset]
                ),
            )
            .at(tree::Span::new(offset, offset + 1), "not UTF-8")
            .help("save the manifest as UTF-8");
            Err((Some(lossy), diagnostic))
        }
    }
}

/// A parsed manifest: the whole tree, overlays included, before any domain is chosen.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub source: Source,
    pub tree: Node,
}

pub fn parse(source: Source) -> Result<Parsed, Report> {
    let mut diagnostics = Vec::new();
    if source.text.trim().is_empty() {
        diagnostics.push(
            Diagnostic::error("empty", format!("{} is empty", source.path.display()))
                .help("run `flyte init` for a starter manifest, or add a [project] table with a name"),
        );
        return Err(Report { source: Some(source), diagnostics });
    }
    let tree = match source.format {
        Format::Toml => toml_front::parse(&source.text, &mut diagnostics),
        Format::Kdl => kdl_front::parse(&source.text, &mut diagnostics),
    };
    match tree {
        Some(tree) if diagnostics.is_empty() => Ok(Parsed { source, tree }),
        _ => Err(Report { source: Some(source), diagnostics }),
    }
}

/// The result of resolving one domain.
pub struct Resolved {
    pub manifest: Option<model::Manifest>,
    /// The base tree with the domain's overlay merged in (no `domains` table): where values came from.
    pub merged: Node,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// The domains the manifest declares, read from the base tree (overlays cannot change them).
    pub fn declared_domains(&self) -> Vec<String> {
        let list = self
            .tree
            .as_table()
            .and_then(|t| t.get("project"))
            .and_then(|p| p.value.as_table())
            .and_then(|p| p.get("domains"));
        match list.map(|l| &l.value.value) {
            Some(Value::List(items)) => items
                .iter()
                .filter_map(|i| if let Value::Str(s) = &i.value { Some(s.as_str().to_owned()) } else { None })
                .collect(),
            _ => validate::DEFAULT_DOMAINS.iter().map(|d| d.to_string()).collect(),
        }
    }

    /// The default domain: `project.default_domain`, else the first declared.
    pub fn default_domain(&self) -> Option<String> {
        let project = self.tree.as_table().and_then(|t| t.get("project")).and_then(|p| p.value.as_table());
        match project.and_then(|p| p.get("default_domain")).map(|d| &d.value.value) {
            Some(Value::Str(domain)) => Some(domain.as_str().to_owned()),
            _ => self.declared_domains().into_iter().next(),
        }
    }

    /// A copy of the tree for one domain's overlay to change, without the `domains` table, and that
    /// table: the overlays are only read, so they are not copied.
    fn split_overlays(&self) -> (Node, Option<&Entry>) {
        let Value::Table(table) = &self.tree.value else { return (self.tree.clone(), None) };
        let at = table.entries.iter().position(|e| e.key == "domains");
        let entries =
            table.entries.iter().enumerate().filter(|(i, _)| Some(*i) != at).map(|(_, e)| e.clone()).collect();
        let base = self.tree.with_value(Value::Table(Table { entries }));
        (base, at.map(|i| &table.entries[i]))
    }

    /// Resolves the manifest for `domain`, to be planned: [`Parsed::resolve_with`] taking the digests.
    pub fn resolve(&self, domain: &str) -> Resolved {
        self.resolve_with(domain, Digests::Take)
    }

    /// Resolves the manifest for `domain`: overlay merged, decoded, validated; each environment's spec
    /// digest taken or not.
    pub fn resolve_with(&self, domain: &str, digests: Digests) -> Resolved {
        let mut diagnostics = Vec::new();
        let (raw, merged) = self.decode_domain(domain, &mut diagnostics);
        let (manifest, diagnostics) = validate_raw(raw, domain, &self.source.dir(), digests, diagnostics);
        Resolved { manifest, merged, diagnostics }
    }

    /// Resolves the manifest for `domain` as [`Parsed::resolve`] does, for a caller that needs neither
    /// the tree nor where values came from: the tree is dropped once it is decoded, before validation
    /// and planning, which then reuse its memory. Fresh memory is dear: the kernel zeroes every page a
    /// process touches first. `flyte plan` on 10,000 environments: peak RSS 155 -> 132 MB.
    pub fn into_resolved(self, domain: &str) -> (Source, Option<model::Manifest>, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let (raw, merged) = self.decode_domain(domain, &mut diagnostics);
        let Parsed { source, tree } = self;
        drop((merged, tree));
        let (manifest, diagnostics) = validate_raw(raw, domain, &source.dir(), Digests::Take, diagnostics);
        (source, manifest, diagnostics)
    }

    /// Checks the domain's overlays, merges the domain's into a copy of the base tree and decodes it: the
    /// raw manifest (none when its structure is broken) and the merged tree.
    fn decode_domain(&self, domain: &str, diagnostics: &mut Vec<Diagnostic>) -> (Option<RawManifest>, Node) {
        let (mut base, overlays) = self.split_overlays();
        let Value::Table(root) = &mut base.value else {
            diagnostics.push(
                Diagnostic::error("wrong-type", "the manifest must be a table").at(self.tree.span(), "not a table"),
            );
            return (None, base);
        };
        let declared = self.declared_domains();
        let declared_refs: Vec<&str> = declared.iter().map(String::as_str).collect();
        // With no domains declared, project validation reports that; naming the missing one adds nothing.
        if !declared.is_empty() && !declared.iter().any(|d| d == domain) {
            let span = root
                .get("project")
                .and_then(|p| p.value.as_table())
                .and_then(|p| p.get("domains"))
                .map(|d| d.value.span());
            let mut diagnostic = Diagnostic::error("unknown-domain", format!("the project has no domain \"{domain}\""))
                .help(format!("{} (declared: {})", suggestion(domain, &declared_refs), declared.join(", ")));
            if let Some(span) = span {
                diagnostic = diagnostic.at(span, "declared domains");
            }
            diagnostics.push(diagnostic);
        }
        if let Some(overlays) = &overlays {
            check_overlays(&overlays.value, domain, &declared_refs, diagnostics);
            if let Some(overlay) =
                overlays.value.as_table().and_then(|t| t.get(domain)).and_then(|o| o.value.as_table())
            {
                overlay::merge(root, overlay);
            }
        }
        let raw = RawManifest::decode(&base, &mut Cx::new(diagnostics));
        (raw, base)
    }
}

/// Validates a decoded manifest for `domain`: the model when nothing is wrong, and the diagnostics,
/// repeats removed.
fn validate_raw(
    raw: Option<RawManifest>,
    domain: &str,
    dir: &Path,
    digests: Digests,
    mut diagnostics: Vec<Diagnostic>,
) -> (Option<model::Manifest>, Vec<Diagnostic>) {
    // Unknown fields leave the structure whole, so validation still runs and reports the rest.
    let manifest = raw.and_then(|mut raw| {
        let manifest = validate::resolve(&raw, domain, dir, digests, &mut diagnostics);
        // Thousands of decoded environments are freed on every core: 7 -> 4 ms at 10,000.
        if let Some(environments) = raw.environments.take() {
            let threads = crate::parts::threads_for(environments.entries.len(), 1000);
            crate::parts::drop_in_parts(environments.entries, threads);
        }
        manifest
    });
    let manifest = manifest.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    dedupe(&mut diagnostics);
    (manifest, diagnostics)
}

/// Overlays name declared domains, and the chosen domain's overlay holds only what may vary.
fn check_overlays(overlays: &Node, domain: &str, declared: &[&str], diagnostics: &mut Vec<Diagnostic>) {
    let mut cx = Cx::new(diagnostics);
    let Some(table): Option<&Table> = cx.within("domains", |cx| cx.table(overlays)) else { return };
    for entry in table.entries.iter() {
        if !declared.contains(&entry.key.as_str()) {
            cx.push(
                Diagnostic::error(
                    "undeclared-domain",
                    format!("overlay for domain \"{}\", which the project does not declare", entry.key),
                )
                .at(entry.key_span, "undeclared domain")
                .help(format!(
                    "{}; to add the domain, list \"{}\" in project.domains",
                    suggestion(&entry.key, declared),
                    entry.key
                )),
            );
        } else if entry.key == domain {
            cx.within("domains", |cx| cx.within(&entry.key, |cx| Patch::<RawDomain>::decode(&entry.value, cx)));
        }
    }
}

/// Drops repeats: checks that run once per domain report base mistakes once per domain.
pub fn dedupe(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert((d.code, d.span, d.severity, d.message.clone())));
    diagnostics.sort_by_key(|d| (d.span.map_or(0, |s| s.start()), d.severity));
}

/// Whether resolving takes each environment's spec digest ([`model::Environment::spec_digest`]) as it
/// builds it: planning needs them; checking a manifest or printing it does not, and `flyte validate`
/// resolves every domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digests {
    Take,
    Skip,
}

/// Loads and resolves a manifest file for one domain: the whole front half of the pipeline.
pub fn load(path: &Path, domain: Option<&str>) -> Result<(Source, model::Manifest, Vec<Diagnostic>), Report> {
    let source = read(path)?;
    let parsed = parse(source)?;
    let domain = domain.map(str::to_string).or_else(|| parsed.default_domain()).unwrap_or_default();
    match parsed.into_resolved(&domain) {
        (source, Some(manifest), diagnostics) => Ok((source, manifest, diagnostics)),
        (source, None, diagnostics) => Err(Report { source: Some(source), diagnostics }),
    }
}

/// Validates every declared domain; the diagnostics of all of them, repeats removed. Domains are
/// resolved side by side, a thread each: they share the parsed tree and nothing else.
pub fn validate_all(parsed: &Parsed) -> Vec<Diagnostic> {
    let mut domains = parsed.declared_domains();
    if domains.is_empty() {
        domains.push(String::new());
    }
    let resolve = |part: &[String]| -> Vec<Diagnostic> {
        part.iter().flat_map(|domain| parsed.resolve_with(domain, Digests::Skip).diagnostics).collect()
    };
    let mut all = crate::parts::map_parts(&domains, domains.len(), resolve).concat();
    dedupe(&mut all);
    all
}

#[cfg(test)]
mod resolve_tests {
    use super::{Parsed, Source, parse};

    /// Dropping the tree early changes nothing that comes out: every repository manifest, in every
    /// domain it declares, resolves to the same model and diagnostics both ways.
    #[test]
    fn resolving_into_the_model_alone_gives_what_resolving_gives() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut compared = 0;
        for dir in ["examples", "tests/broken"] {
            for entry in walkdir::WalkDir::new(root.join(dir)).into_iter().filter_map(Result::ok) {
                let path = entry.path();
                if !path.extension().is_some_and(|e| e == "toml" || e == "kdl") {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(path) else { continue };
                let Ok(parsed): Result<Parsed, _> = parse(Source::new(path, text)) else { continue };
                for domain in parsed.declared_domains().iter().chain([&"nowhere".to_string()]) {
                    let kept = parsed.resolve(domain);
                    let (_, manifest, diagnostics) = parsed.clone().into_resolved(domain);
                    let json =
                        |m: &Option<super::model::Manifest>| m.as_ref().map(|m| serde_json::to_string(m).unwrap());
                    assert_eq!(json(&kept.manifest), json(&manifest), "{} {domain}", path.display());
                    assert_eq!(kept.diagnostics, diagnostics, "{} {domain}", path.display());
                    compared += 1;
                }
            }
        }
        assert!(compared > 30, "{compared} compared");
    }
}

#[cfg(test)]
mod source_tests {
    use super::Source;

    #[test]
    fn line_and_column_come_from_the_index_as_from_a_scan() {
        let text = "a = 1\r\n\n# é ü\nname = \"x\"\n\nlast";
        let source = Source::new("flyte.toml", text);
        for offset in 0..=text.len() + 2 {
            let clamped = offset.min(text.len());
            let before = &text.as_bytes()[..clamped];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
            assert_eq!(source.line_col(offset), (line, column), "offset {offset}");
        }
        assert_eq!(source.line_starts(), &[0, 7, 8, 16, 27, 28]);
    }
}
