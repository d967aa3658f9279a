//! Image references as the registry client needs them: the registry to talk to (over which scheme and
//! through which address), the repository, and the tag or digest.
//!
//! Parsing follows Docker's rules (`busybox` is `docker.io/library/busybox:latest`);
//! this adds Docker Hub's API host, loopback detection (loopback registries speak plain HTTP, as Docker
//! allows) and the reading of cross-repository mount sources.

use std::fmt;
use std::net::IpAddr;

use super::error::RegistryError;

/// Docker Hub's names, as references, config files and credential helpers spell them.
const DOCKER_HUB_ALIASES: [&str; 4] =
    ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"];
/// Where Docker Hub's distribution API lives.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The key under which `docker login` keeps Docker Hub's credentials.
pub const DOCKER_HUB_CREDENTIAL_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReference {
    /// The registry as the reference names it: `docker.io`, `127.0.0.1:5055`, `ghcr.io`.
    pub registry: String,
    /// The repository path: `library/busybox`, `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses Docker's reference grammar (`[registry/]path[:tag][@algorithm:hex]`), written out by
    /// hand: oci-client's parser compiles a large regex on first use, about 70 ms of a no-op build.
    pub fn parse(text: &str) -> Result<ImageReference, RegistryError> {
        let invalid =
            |reason: &str| RegistryError::InvalidReference { reference: text.to_string(), reason: reason.into() };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|reason| invalid(&reason))?;
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if !rest[colon..].contains('/') => (&rest[..colon], Some(&rest[colon + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            let mut chars = tag.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !first_ok || tag.len() > 128 || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                return Err(invalid(
                    "a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
                ));
            }
        }
        if name.is_empty() || name.len() > 255 {
            return Err(invalid("the name must be 1 to 255 characters"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') => {
                check_registry(first).map_err(|reason| invalid(&reason))?;
                (first.to_string(), path.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let path = if is_docker_hub(&registry) && !path.contains('/') { format!("library/{path}") } else { path };
        for component in path.split('/') {
            check_component(component).map_err(|reason| invalid(&reason))?;
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageReference { registry, repository: path, tag, digest })
    }

    /// The same repository, addressed by `digest`.
    pub fn with_digest(&self, digest: &str) -> ImageReference {
        ImageReference { tag: None, digest: Some(digest.to_string()), ..self.clone() }
    }

    /// The host (and port) the distribution API answers on.
    pub fn api_host(&self) -> &str {
        if is_docker_hub(&self.registry) { DOCKER_HUB_API_HOST } else { &self.registry }
    }

    /// The manifest reference for URLs: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// "the tag 1" or "the manifest sha256:…", the name messages use for "what".
    pub fn describe_manifest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("the manifest {digest}"),
            (None, tag) => format!("the tag {}", tag.as_deref().unwrap_or("latest")),
        }
    }

    /// `registry/repository`, the name messages use for "where".
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository in `from`, when it is one this registry can mount blobs from (the same registry,
    /// another repository). `from` is a repository path on the target's registry (`team/base`) or a
    /// full reference (`127.0.0.1:5055/team/base:1`); anything naming another registry gives `None`.
    pub fn mount_source(&self, from: &str) -> Option<String> {
        let prefix = format!("{}/", self.registry);
        let path = from.strip_prefix(&prefix).map(str::to_string).or_else(|| {
            let first = from.split('/').next().unwrap_or_default();
            let names_a_host = from.contains('/') && (first.contains(['.', ':']) || first == "localhost");
            if names_a_host {
                let other = ImageReference::parse(from).ok()?;
                (same_registry(&other.registry, &self.registry)).then_some(other.repository)
            } else {
                Some(from.to_string())
            }
        })?;
        let repository = strip_tag_and_digest(&path);
        (!repository.is_empty() && repository != self.repository).then_some(repository)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

/// A path component: lowercase letters and digits, joined by one `.`, one or two `_`, or any `-`s.
fn check_component(component: &str) -> Result<(), String> {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(format!("\"{component}\" must start and end with a lowercase letter or digit"));
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let allowed = separator == "." || separator == "_" || separator == "__" || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return Err(format!("\"{component}\" has the separator \"{separator}\" (allowed: '.', '_', '__', dashes)"));
        }
    }
    Ok(())
}

/// `host[:port]` with host a DNS name or an IPv4 address, or `[IPv6][:port]`.
fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.strip_prefix('[') {
        Some(rest) => {
            let (address, after) = rest.split_once(']').ok_or("an IPv6 registry address needs its ']'")?;
            address.parse::<std::net::Ipv6Addr>().map_err(|_| format!("\"{address}\" is not an IPv6 address"))?;
            (None, after.strip_prefix(':'))
        }
        None => match registry.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        },
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("\"{port}\" is not a port"));
    }
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(format!("\"{host}\" is not a host name"));
        }
    }
    Ok(())
}

/// `algorithm:hex`, with sha256 digests exactly 64 lowercase hex digits.
fn check_digest(digest: &str) -> Result<(), String> {
    let (algorithm, hex) = digest.split_once(':').ok_or_else(|| format!("\"{digest}\" is not algorithm:hex"))?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'_' | b'-'));
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !algorithm_ok || !hex_ok || (algorithm == "sha256" && hex.len() != 64) {
        return Err(format!("\"{digest}\" is not a valid digest"));
    }
    Ok(())
}

pub fn is_docker_hub(registry: &str) -> bool {
    DOCKER_HUB_ALIASES.contains(&registry.to_ascii_lowercase().as_str())
}

fn same_registry(left: &str, right: &str) -> bool {
    left.eq_ignore_ascii_case(right) || (is_docker_hub(left) && is_docker_hub(right))
}

fn strip_tag_and_digest(path: &str) -> String {
    let without_digest = path.split('@').next().unwrap_or_default();
    // A colon after the last slash starts a tag; one before it belongs to a host's port.
    match without_digest.rfind(':') {
        Some(colon) if !without_digest[colon..].contains('/') => without_digest[..colon].to_string(),
        _ => without_digest.to_string(),
    }
}

/// The host part of `host[:port]`, `[v6]:port` or `v6`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => registry,
    }
}

/// True for `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// "http" for loopback registries and those the settings allow plain HTTP for, else "https".
pub fn scheme_for(registry: &str, insecure: &[String]) -> &'static str {
    let allowed = insecure.iter().any(|entry| entry.eq_ignore_ascii_case(registry) || entry == host_of(registry));
    if is_loopback(registry) || allowed { "http" } else { "https" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ImageReference {
        ImageReference::parse(text).unwrap()
    }

    #[test]
    fn references_follow_dockers_rules_and_docker_hub_is_reached_at_its_api_host() {
        let short = parse("busybox");
        assert_eq!((short.registry.as_str(), short.repository.as_str()), ("docker.io", "library/busybox"));
        assert_eq!(short.tag.as_deref(), Some("latest"));
        assert_eq!(short.api_host(), "registry-1.docker.io");
        let local = parse("127.0.0.1:5055/team/app:v1");
        assert_eq!((local.registry.as_str(), local.repository.as_str()), ("127.0.0.1:5055", "team/app"));
        assert_eq!(local.api_host(), "127.0.0.1:5055");
        assert_eq!(local.manifest_reference(), "v1");
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = parse(&format!("localhost:5000/app@{digest}"));
        assert_eq!(pinned.manifest_reference(), digest);
        assert_eq!(pinned.to_string(), format!("localhost:5000/app@{digest}"));
        assert!(ImageReference::parse("Not A Reference!").is_err());
        for bad in ["", "UPPER/case", "a//b", "app:", "app:-x", "app@sha256:abc", "host:port/app", "-a", "a-", "a...b"]
        {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let nested = parse("ghcr.io/org/team/app_name-2:v1.2_3");
        assert_eq!((nested.registry.as_str(), nested.repository.as_str()), ("ghcr.io", "org/team/app_name-2"));
        assert_eq!(nested.tag.as_deref(), Some("v1.2_3"));
        let both = parse(&format!("team/app:1@{digest}"));
        assert_eq!((both.repository.as_str(), both.tag.as_deref()), ("team/app", Some("1")));
        assert_eq!(parse("[::1]:5000/app").registry, "[::1]:5000");
        assert_eq!(parse("localhost/app").registry, "localhost");
    }

    #[test]
    fn loopback_registries_speak_plain_http_and_others_only_when_listed() {
        for loopback in ["127.0.0.1:5055", "127.3.2.1", "localhost:5000", "LOCALHOST", "[::1]:5000", "::1"] {
            assert!(is_loopback(loopback), "{loopback}");
            assert_eq!(scheme_for(loopback, &[]), "http");
        }
        for remote in ["128.0.0.1:5000", "localhost.example.com", "ghcr.io", "10.0.0.1:5000", "[::2]:5000"] {
            assert!(!is_loopback(remote), "{remote}");
            assert_eq!(scheme_for(remote, &[]), "https");
        }
        let insecure = vec!["10.0.0.1:5000".to_string(), "registry.lan".to_string()];
        assert_eq!(scheme_for("10.0.0.1:5000", &insecure), "http");
        assert_eq!(scheme_for("10.0.0.1:6000", &insecure), "https");
        assert_eq!(scheme_for("registry.lan:443", &insecure), "http");
    }

    #[test]
    fn mount_sources_are_other_repositories_on_the_same_registry() {
        let target = parse("127.0.0.1:5055/team/app:v2");
        assert_eq!(target.mount_source("team/base").as_deref(), Some("team/base"));
        assert_eq!(target.mount_source("127.0.0.1:5055/team/base:1").as_deref(), Some("team/base"));
        assert_eq!(target.mount_source("127.0.0.1:5055/team/base@sha256:ab").as_deref(), Some("team/base"));
        assert_eq!(target.mount_source("ghcr.io/team/base"), None, "another registry");
        assert_eq!(target.mount_source("team/app"), None, "the target itself");
        let hub = parse("docker.io/team/app");
        assert_eq!(hub.mount_source("index.docker.io/library/python").as_deref(), Some("library/python"));
    }
}
