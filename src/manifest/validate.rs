//! Validation: raw manifest (one domain, overlay merged) → the resolved [`Manifest`], collecting every
//! error at once. Each check says what is wrong, points at the text and says what to do.
//!
//! This file holds the checker, the project and the images; `validate_env.rs` the environments.

use compact_str::CompactString;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::decode::{Keyed, Spanned};
use super::diagnostic::{Diagnostic, suggestion};
use super::model::{Image, ImageSource, Manifest, Project, SortedMap, SourceFolder, UvProject};
use super::raw::{RawImage, RawManifest};
use super::tree::Span;
use super::units::{dns_label_like, is_dns_label, is_env_name};

pub const DEFAULT_DOMAINS: [&str; 3] = ["development", "staging", "production"];
pub const DEFAULT_PYTHON: &str = "3.12";
pub const DEFAULT_PLATFORM: &str = "linux/amd64";
const KNOWN_ARCHES: [&str; 6] = ["amd64", "arm64", "arm/v7", "arm/v6", "ppc64le", "s390x"];

/// The checker: where diagnostics go and where relative paths start.
pub struct Checker<'d> {
    pub diags: &'d mut Vec<Diagnostic>,
    /// The project's root_dir on this machine.
    pub root: PathBuf,
}

impl Checker<'_> {
    pub fn error(&mut self, code: &'static str, span: Span, message: String, label: &str, help: impl Into<String>) {
        self.diags.push(Diagnostic::error(code, message).at(span, label).help(help));
    }

    pub fn warning(&mut self, code: &'static str, span: Span, message: String, label: &str, help: impl Into<String>) {
        self.diags.push(Diagnostic::warning(code, message).at(span, label).help(help));
    }

    /// Checks that `name` is a DNS label; `what` names it in the message ("environment name").
    pub fn dns_label(&mut self, what: &str, name: &Spanned<CompactString>) {
        if !is_dns_label(name) {
            let like = dns_label_like(name);
            let help = if like.is_empty() {
                "use lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit"
                    .to_string()
            } else {
                format!("use lowercase letters, digits and '-' (at most 63), e.g. \"{like}\"")
            };
            self.error(
                "invalid-name",
                name.span,
                format!("{what} \"{}\" is not a valid DNS label", name.value),
                "not a DNS label",
                help,
            );
        }
    }

    pub fn env_vars(
        &mut self,
        env: &Option<Keyed<Spanned<CompactString>>>,
        reserved: &[&str],
    ) -> SortedMap<CompactString, CompactString> {
        // With room for the reserved ones too: the caller sets them next.
        let mut out = SortedMap::with_capacity(env.as_ref().map_or(0, |e| e.entries.len()) + reserved.len());
        for (key, value) in env.iter().flat_map(Keyed::iter) {
            if self.env_name(key) && reserved.contains(&key.as_str()) {
                self.error(
                    "reserved-env",
                    key.span,
                    format!("{} is set by flyte", key.value),
                    "reserved",
                    "flyte sets FLYTE_PROJECT and FLYTE_DOMAIN in every environment; remove it",
                );
            }
            out.insert(key.value.clone(), value.value.clone());
        }
        out
    }

    /// Resolves a path relative to root_dir, checks that it exists as a file or folder, and returns it
    /// normalised ("./a/../b" → "b"), as it enters hashes.
    pub fn path(&mut self, path: &Spanned<CompactString>, what: &str, want_dir: bool) -> CompactString {
        let normalised = normalise(&path.value);
        if Path::new(&path.value).is_absolute() {
            self.error(
                "absolute-path",
                path.span,
                format!("the {what} path \"{}\" is absolute", path.value),
                "absolute path",
                "write paths relative to the project's root_dir, so the manifest works in any checkout",
            );
            return normalised;
        }
        let full = self.root.join(&normalised);
        let found = match std::fs::metadata(&full) {
            Ok(meta) if meta.is_dir() == want_dir => true,
            Ok(_) => {
                let (is, want) = if want_dir { ("a file", "a folder") } else { ("a folder", "a file") };
                self.error(
                    "wrong-path-kind",
                    path.span,
                    format!("the {what} \"{}\" is {is}, not {want}", path.value),
                    &format!("not {want}"),
                    format!("point it at {want}, relative to root_dir ({})", self.root.display()),
                );
                return normalised;
            }
            Err(_) => false,
        };
        if !found {
            self.error(
                "missing-file",
                path.span,
                format!("the {what} \"{}\" does not exist", path.value),
                "not found",
                format!("paths are relative to the project's root_dir: looked for {}", full.display()),
            );
        }
        normalised
    }

    pub fn absolute(&mut self, path: &Spanned<CompactString>, what: &str) {
        if !path.starts_with('/') {
            self.error(
                "relative-container-path",
                path.span,
                format!("the {what} \"{}\" must be an absolute path in the container", path.value),
                "not absolute",
                format!("e.g. \"/{}\"", path.value.trim_start_matches("./")),
            );
        }
    }

    /// Checks that `name` can be an environment variable's name, reporting it when not.
    pub fn env_name(&mut self, name: &Spanned<CompactString>) -> bool {
        let valid = is_env_name(name);
        if !valid {
            self.error(
                "invalid-env-name",
                name.span,
                format!("\"{}\" is not an environment variable name", name.value),
                "invalid name",
                "use letters, digits and '_', not starting with a digit",
            );
        }
        valid
    }

    /// Parses a duration, reporting it when it is not one.
    pub fn duration(&mut self, text: &Spanned<CompactString>) -> Option<super::units::Duration> {
        super::units::parse_duration(text)
            .map_err(|why| {
                self.error(
                    "invalid-duration",
                    text.span,
                    format!("\"{}\" is not a duration", text.value),
                    "invalid duration",
                    why,
                )
            })
            .ok()
    }

    /// Reports a second occurrence of the same value.
    pub fn unique<'a>(&mut self, what: &str, items: impl IntoIterator<Item = &'a Spanned<CompactString>>) {
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        for item in items {
            if let Some(first) = seen.get(item.as_str()) {
                self.diags.push(
                    Diagnostic::error("duplicate", format!("{what} \"{}\" is listed twice", item.value))
                        .at(item.span, "listed again here")
                        .related(*first, "first listed here")
                        .help("list it once"),
                );
            } else {
                seen.insert(item.as_str(), item.span);
            }
        }
    }

    /// Reports a reference to a name that is not among `known`.
    pub fn reference(&mut self, what: &str, name: &Spanned<CompactString>, known: &[&str]) -> bool {
        if known.contains(&name.as_str()) {
            return true;
        }
        self.error(
            "unknown-reference",
            name.span,
            format!("no {what} is named \"{}\"", name.value),
            &format!("unknown {what}"),
            suggestion(name, known),
        );
        false
    }
}

/// Lexical normalisation of a relative path: drops "." and folds "a/..".
pub fn normalise(path: &str) -> CompactString {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            Component::ParentDir => parts.push(".."),
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return ".".into();
    }
    let mut joined = CompactString::with_capacity(path.len());
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            joined.push('/');
        }
        joined.push_str(part);
    }
    joined
}

/// Resolves the manifest for `domain`; `None` when any error was found (all are in `diags`).
pub fn resolve(
    raw: &RawManifest,
    domain: &str,
    manifest_dir: &Path,
    digests: super::Digests,
    diags: &mut Vec<Diagnostic>,
) -> Option<Manifest> {
    let before = diags.iter().filter(|d| d.is_error()).count();
    let root_dir = raw.project.root_dir.as_ref().map(|r| normalise(r)).unwrap_or_else(|| ".".into());
    let root = if root_dir == "." { manifest_dir.to_path_buf() } else { manifest_dir.join(&root_dir) };
    let mut checker = Checker { diags, root: root.clone() };
    if let Some(dir) = &raw.project.root_dir {
        checker.root = manifest_dir.to_path_buf();
        checker.path(dir, "root_dir", true);
        checker.root = root;
    }
    let project = project(&mut checker, raw, root_dir);
    let images: BTreeMap<CompactString, Image> = raw
        .images
        .iter()
        .flat_map(Keyed::iter)
        .map(|(name, image)| (name.value.clone(), self::image(&mut checker, &project, name, image)))
        .collect();
    let environments = super::validate_env::environments(&mut checker, raw, &project, domain, &images, digests);
    warn_unmatched_globs(&mut checker, raw);
    let errors = checker.diags.iter().filter(|d| d.is_error()).count();
    (errors == before).then(|| Manifest { project, domain: domain.into(), images, environments })
}

/// Warns about include/exclude globs of enabled environments that match no file under root_dir.
fn warn_unmatched_globs(checker: &mut Checker, raw: &RawManifest) {
    let patterns: Vec<&Spanned<CompactString>> = raw
        .environments
        .iter()
        .flat_map(Keyed::iter)
        .filter(|(_, env)| env.enabled.as_ref().is_none_or(|e| e.value))
        .filter_map(|(_, env)| env.code.as_ref())
        .flat_map(|code| code.include.iter().flatten().chain(code.exclude.iter().flatten()))
        .collect();
    if patterns.is_empty() {
        return;
    }
    // An unreadable tree is reported by the plan, which must read it; a warning needs no second error.
    let Ok(listing) = crate::bundle::walk::list(&checker.root) else { return };
    // A glob may name a folder (`exclude = ["docs"]`): the folders that hold kept files count too.
    let mut paths: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for file in &listing.files {
        paths.insert(&file.path);
        paths.extend(file.path.match_indices('/').map(|(at, _)| &file.path[..at]));
    }
    // Environments repeat the same globs: each distinct pattern is compiled and tried once.
    let mut matches_nothing: BTreeMap<&str, bool> = BTreeMap::new();
    for pattern in patterns {
        let unmatched = *matches_nothing.entry(pattern.as_str()).or_insert_with(|| match globset::Glob::new(pattern) {
            Ok(glob) => {
                let matcher = glob.compile_matcher();
                !paths.iter().any(|path| matcher.is_match(path))
            }
            Err(_) => false,
        });
        if unmatched {
            checker.warning(
                "glob-matches-nothing",
                pattern.span,
                format!("\"{}\" matches no file or folder under root_dir (after the ignore files)", pattern.value),
                "matches nothing",
                "globs are relative to root_dir, e.g. \"src/**/*.py\"; a typo here silently ships the wrong files",
            );
        }
    }
}

fn project(checker: &mut Checker, raw: &RawManifest, root_dir: CompactString) -> Project {
    let p = &raw.project;
    checker.dns_label("project name", &p.name);
    let domains: Vec<CompactString> = match &p.domains {
        Some(domains) => {
            if domains.is_empty() {
                checker.error(
                    "no-domains",
                    p.name.span,
                    "the project declares no domains".to_string(),
                    "in this project",
                    "list at least one, e.g. domains = [\"development\", \"production\"]",
                );
            }
            for domain in domains {
                checker.dns_label("domain name", domain);
            }
            checker.unique("domain", domains);
            domains.iter().map(|d| d.value.clone()).collect()
        }
        None => DEFAULT_DOMAINS.iter().map(|&d| d.into()).collect(),
    };
    let default_domain = match &p.default_domain {
        Some(default) => {
            let known: Vec<&str> = domains.iter().map(CompactString::as_str).collect();
            checker.reference("domain", default, &known);
            default.value.clone()
        }
        None => domains.first().cloned().unwrap_or_default(),
    };
    if let Some(registry) = &p.registry {
        check_registry(checker, registry);
    }
    Project {
        name: p.name.value.clone(),
        domains,
        default_domain,
        root_dir,
        root: checker.root.clone(),
        registry: p.registry.as_ref().map(|r| r.value.clone()),
    }
}

fn check_registry(checker: &mut Checker, registry: &Spanned<CompactString>) {
    let text = registry.as_str();
    if let Some(scheme) = ["http://", "https://"].into_iter().find(|s| text.starts_with(s)) {
        checker.error(
            "invalid-registry",
            registry.span,
            format!("the registry \"{text}\" has a URL scheme"),
            "remove the scheme",
            format!("write the host and path only, e.g. \"{}\"", &text[scheme.len()..]),
        );
    } else if text.is_empty()
        || text.ends_with('/')
        || text.starts_with('/')
        || text.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase())
    {
        checker.error(
            "invalid-registry",
            registry.span,
            format!("\"{text}\" is not a registry reference"),
            "invalid registry",
            "write a host with an optional path, e.g. \"ghcr.io/acme\" or \"127.0.0.1:5000\"",
        );
    }
}

fn image(checker: &mut Checker, project: &Project, name: &Spanned<CompactString>, raw: &RawImage) -> Image {
    checker.dns_label("image name", name);
    let sources_given: Vec<(&str, Span)> =
        [("base", &raw.base), ("python", &raw.python), ("dockerfile", &raw.dockerfile)]
            .into_iter()
            .filter_map(|(field, value)| value.as_ref().map(|v| (field, v.span)))
            .collect();
    if sources_given.len() > 1 {
        let (second, span) = sources_given[1];
        checker.diags.push(
            Diagnostic::error(
                "conflicting-fields",
                format!("image \"{}\" sets both `{}` and `{second}`", name.value, sources_given[0].0),
            )
            .at(span, "second starting point")
            .related(sources_given[0].1, "first starting point")
            .help("an image starts from one of `base`, `python` or `dockerfile`"),
        );
    }
    let source = if let Some(dockerfile) = &raw.dockerfile {
        let path = checker.path(dockerfile, "Dockerfile", false);
        for (field, span) in dockerfile_conflicts(raw) {
            checker.error(
                "conflicting-fields",
                span,
                format!("image \"{}\" is built from a Dockerfile, so `{field}` cannot be set", name.value),
                "not with a Dockerfile",
                format!("put `{field}` in the Dockerfile instead"),
            );
        }
        let context = match &raw.context {
            Some(context) => checker.path(context, "build context", true),
            None => Path::new(&path).parent().map(|p| normalise(&p.to_string_lossy())).unwrap_or_else(|| ".".into()),
        };
        let build_args =
            raw.build_args.iter().flat_map(Keyed::iter).map(|(k, v)| (k.value.clone(), v.value.clone())).collect();
        ImageSource::Dockerfile {
            dockerfile: path,
            context,
            build_args,
            target: raw.target.as_ref().map(|t| t.value.clone()),
        }
    } else {
        for (field, value) in [("context", &raw.context), ("target", &raw.target)] {
            if let Some(value) = value {
                checker.error(
                    "conflicting-fields",
                    value.span,
                    format!("`{field}` only applies to Dockerfile images"),
                    "without a dockerfile",
                    "set `dockerfile` or remove this field",
                );
            }
        }
        if let Some((key, _)) = raw.build_args.as_ref().and_then(|a| a.entries.first()) {
            checker.error(
                "conflicting-fields",
                key.span,
                "`build_args` only apply to Dockerfile images".to_string(),
                "without a dockerfile",
                "set `dockerfile` or remove `build_args`",
            );
        }
        match (&raw.base, &raw.python) {
            (Some(base), _) => {
                check_image_reference(checker, base);
                ImageSource::Base { base: base.value.clone() }
            }
            (None, Some(python)) => {
                let valid = python.strip_prefix("3.").is_some_and(|minor| {
                    !minor.is_empty() && minor.len() <= 2 && minor.bytes().all(|b| b.is_ascii_digit())
                });
                if !valid {
                    checker.error(
                        "invalid-python",
                        python.span,
                        format!("\"{}\" is not a Python version", python.value),
                        "expected 3.x",
                        "write the minor version, e.g. \"3.12\"",
                    );
                }
                ImageSource::Debian { python: python.value.clone() }
            }
            (None, None) => ImageSource::Debian { python: DEFAULT_PYTHON.into() },
        }
    };
    for package in raw.apt.iter().flatten() {
        let valid = package
            .split_once('=')
            .map_or(package.as_str(), |(name, _)| name)
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.:".contains(&b));
        if package.is_empty() || !valid {
            checker.error(
                "invalid-package",
                package.span,
                format!("\"{}\" is not a Debian package name", package.value),
                "invalid package",
                "Debian package names use lowercase letters, digits, '+', '-' and '.', optionally with =version",
            );
        }
    }
    for package in raw.pip.iter().flatten() {
        if package.trim().is_empty() || package.trim().starts_with('-') {
            checker.error(
                "invalid-package",
                package.span,
                format!("\"{}\" is not a pip requirement", package.value),
                "invalid requirement",
                "write a requirement specifier such as \"fastapi>=0.110\"; options belong in a requirements file",
            );
        }
    }
    checker.unique("package", raw.apt.iter().flatten());
    checker.unique("package", raw.pip.iter().flatten());
    let requirements = raw.requirements.as_ref().map(|r| checker.path(r, "requirements file", false));
    let uv_project = raw.uv_project.as_ref().map(|uv| {
        let pyproject = checker.path(&uv.pyproject, "pyproject.toml", false);
        let lock = match &uv.lock {
            Some(lock) => checker.path(lock, "uv lock file", false),
            None => {
                let lock = normalise(&Path::new(&pyproject).with_file_name("uv.lock").to_string_lossy());
                if checker.root.join(&pyproject).is_file() && !checker.root.join(&lock).is_file() {
                    checker.error(
                        "missing-file",
                        uv.span,
                        format!("the uv project has no lock file at \"{lock}\""),
                        "no uv.lock beside the pyproject",
                        "run `uv lock` beside the pyproject.toml, or set `lock`",
                    );
                }
                lock
            }
        };
        UvProject { pyproject, lock, install_project: uv.install_project.unwrap_or(false) }
    });
    let workdir = raw.workdir.as_ref().map(|w| {
        checker.absolute(w, "workdir");
        w.value.clone()
    });
    let sources = raw
        .sources
        .iter()
        .flatten()
        .map(|source| {
            let src = checker.path(&source.src, "source folder", true);
            let dst = match &source.dst {
                Some(dst) => {
                    checker.absolute(dst, "source destination");
                    dst.value.clone()
                }
                None => workdir.clone().unwrap_or_else(|| "/app".into()),
            };
            SourceFolder { src, dst, copy_contents_only: source.copy_contents_only.unwrap_or(false) }
        })
        .collect();
    let platforms = match &raw.platforms {
        Some(platforms) => {
            for platform in platforms {
                let arch = platform.strip_prefix("linux/");
                if !arch.is_some_and(|a| KNOWN_ARCHES.contains(&a)) {
                    let known: Vec<String> = KNOWN_ARCHES.iter().map(|a| format!("linux/{a}")).collect();
                    checker.error(
                        "invalid-platform",
                        platform.span,
                        format!("\"{}\" is not a platform images are built for", platform.value),
                        "unknown platform",
                        format!("expected one of: {}", known.join(", ")),
                    );
                }
            }
            checker.unique("platform", platforms);
            platforms.iter().map(|p| p.value.clone()).collect()
        }
        None => vec![DEFAULT_PLATFORM.into()],
    };
    if let Some(registry) = &raw.registry {
        check_registry(checker, registry);
    }
    let repository = match &raw.name {
        Some(repo) => {
            let valid = !repo.is_empty()
                && repo.split('/').all(|part| {
                    !part.is_empty()
                        && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                });
            if !valid {
                checker.error(
                    "invalid-name",
                    repo.span,
                    format!("\"{}\" is not a repository name", repo.value),
                    "invalid repository",
                    "use lowercase letters, digits, '.', '_', '-' and '/' between parts",
                );
            }
            repo.value.clone()
        }
        None => compact_str::format_compact!("{}/{}", project.name, name.value),
    };
    Image {
        name: name.value.clone(),
        source,
        apt: raw.apt.iter().flatten().map(|p| p.value.clone()).collect(),
        pip: raw.pip.iter().flatten().map(|p| p.value.clone()).collect(),
        requirements,
        uv_project,
        sources,
        env: checker.env_vars(&raw.env, &[]),
        workdir,
        user: raw.user.as_ref().map(|u| u.value.clone()),
        platforms,
        registry: raw.registry.as_ref().map(|r| r.value.clone()),
        repository,
    }
}

fn dockerfile_conflicts(raw: &RawImage) -> Vec<(&'static str, Span)> {
    let mut found = Vec::new();
    let spans: [(&str, Option<Span>); 9] = [
        ("base", raw.base.as_ref().map(|v| v.span)),
        ("python", raw.python.as_ref().map(|v| v.span)),
        ("apt", raw.apt.as_ref().and_then(|v| v.first()).map(|v| v.span)),
        ("pip", raw.pip.as_ref().and_then(|v| v.first()).map(|v| v.span)),
        ("requirements", raw.requirements.as_ref().map(|v| v.span)),
        ("uv_project", raw.uv_project.as_ref().map(|v| v.span)),
        ("sources", raw.sources.as_ref().and_then(|v| v.first()).map(|v| v.src.span)),
        ("workdir", raw.workdir.as_ref().map(|v| v.span)),
        ("user", raw.user.as_ref().map(|v| v.span)),
    ];
    for (field, span) in spans {
        // `base` and `python` beside a Dockerfile are already reported as a second starting point.
        if let (Some(span), false) = (span, matches!(field, "base" | "python")) {
            found.push((field, span));
        }
    }
    if let Some((key, _)) = raw.env.as_ref().and_then(|e| e.entries.first()) {
        found.push(("env", key.span));
    }
    found
}

fn check_image_reference(checker: &mut Checker, reference: &Spanned<CompactString>) {
    let text = reference.as_str();
    let (name, digest) = text.split_once('@').map_or((text, None), |(n, d)| (n, Some(d)));
    let name_ok = !name.is_empty()
        && !name.chars().any(|c| c.is_whitespace())
        && name
            .rsplit('/')
            .next()
            .is_some_and(|last| !last.is_empty() && !last.chars().any(|c| c.is_ascii_uppercase()));
    let digest_ok = digest.is_none_or(|d| {
        d.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if !name_ok || !digest_ok {
        checker.error(
            "invalid-image-reference",
            reference.span,
            format!("\"{text}\" is not an image reference"),
            "invalid reference",
            "write e.g. \"python:3.12-slim\" or \"ghcr.io/acme/base@sha256:<64 hex digits>\"",
        );
    }
}

/// Names of the declared items, for "did you mean" help.
pub fn names<T>(keyed: &Option<Keyed<T>>) -> BTreeSet<&str> {
    keyed.iter().flat_map(Keyed::iter).map(|(k, _)| k.as_str()).collect()
}
