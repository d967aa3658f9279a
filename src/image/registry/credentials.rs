//! Registry credentials the way the Docker CLI keeps them: takes the Docker config file
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) and a registry, gives the credential to
//! present to it, if any.
//!
//! Precedence is Docker's: a per-registry `credHelpers` entry, else the `credsStore` for every registry,
//! else the `auths` entry. A helper that knows nothing of the registry falls through to `auths`, which
//! costs nothing and helps configs that mix both. Docker Hub has several names (`docker.io`,
//! `index.docker.io`, `https://index.docker.io/v1/`); they are one registry here. Secrets never reach a
//! message or a `Debug` output.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::error::RegistryError;
use super::reference::{DOCKER_HUB_CREDENTIAL_KEY, is_docker_hub};

/// Helpers may unlock a keychain; give them time, but not forever.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and a password (or an access token used as one).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token from `docker login` (`identitytoken`, or a helper's `<token>` user),
    /// traded at the registry's token service for access tokens.
    IdentityToken(String),
    /// A bearer token sent as it is (`registrytoken`).
    RegistryToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(formatter, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => write!(formatter, "IdentityToken(<redacted>)"),
            Credential::RegistryToken(_) => write!(formatter, "RegistryToken(<redacted>)"),
        }
    }
}

#[derive(Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// A loaded Docker config file; a missing file is an empty config.
pub struct DockerConfig {
    pub path: PathBuf,
    file: ConfigFile,
    /// Where to look for `docker-credential-*` programs; `None` is `$PATH`.
    helper_search_path: Option<OsString>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
        non_empty("DOCKER_CONFIG")
            .map(|folder| folder.join("config.json"))
            .or_else(|| non_empty("HOME").map(|home| home.join(".docker").join("config.json")))
    }

    pub fn empty(path: PathBuf) -> DockerConfig {
        DockerConfig { path, file: ConfigFile::default(), helper_search_path: None }
    }

    pub fn load(path: &Path) -> Result<DockerConfig, RegistryError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig::empty(path.to_path_buf()));
            }
            Err(error) => {
                return Err(RegistryError::DockerConfig { path: path.to_path_buf(), message: error.to_string() });
            }
        };
        // serde_json's messages name a line and column, never the text around it: safe with secrets.
        let file = serde_json::from_slice(&bytes)
            .map_err(|error| RegistryError::DockerConfig { path: path.to_path_buf(), message: error.to_string() })?;
        Ok(DockerConfig { path: path.to_path_buf(), file, helper_search_path: None })
    }

    /// Looks for credential helpers in `search_path` instead of `$PATH` (tests use a folder of fakes).
    pub fn with_helper_search_path(mut self, search_path: OsString) -> DockerConfig {
        self.helper_search_path = Some(search_path);
        self
    }

    /// The credential for `registry` (as a reference names it: `docker.io`, `127.0.0.1:5055`).
    pub async fn credential(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let wanted = registry_key(registry);
        let helper = self
            .file
            .cred_helpers
            .iter()
            .find(|(key, _)| registry_key(key) == wanted)
            .map(|(_, helper)| helper)
            .or(self.file.creds_store.as_ref())
            .filter(|helper| !helper.is_empty());
        if let Some(helper) = helper
            && let Some(credential) = self.ask_helper(helper, registry).await?
        {
            return Ok(Some(credential));
        }
        let entry = self.file.auths.iter().find(|(key, _)| registry_key(key) == wanted).map(|(_, entry)| entry);
        entry.map_or(Ok(None), |entry| self.decode_entry(registry, entry))
    }

    fn decode_entry(&self, registry: &str, entry: &AuthEntry) -> Result<Option<Credential>, RegistryError> {
        if let Some(token) = entry.identitytoken.as_ref().filter(|token| !token.is_empty()) {
            return Ok(Some(Credential::IdentityToken(token.clone())));
        }
        if let Some(token) = entry.registrytoken.as_ref().filter(|token| !token.is_empty()) {
            return Ok(Some(Credential::RegistryToken(token.clone())));
        }
        if let Some(encoded) = entry.auth.as_ref().filter(|auth| !auth.is_empty()) {
            let invalid = || RegistryError::DockerConfig {
                path: self.path.clone(),
                message: format!("the `auth` of {registry} is not base64 of \"user:password\""),
            };
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| invalid())?;
            let text = String::from_utf8(decoded).map_err(|_| invalid())?;
            let (username, password) = text.split_once(':').ok_or_else(invalid)?;
            return Ok(Some(Credential::Basic { username: username.to_string(), password: password.to_string() }));
        }
        match (&entry.username, &entry.password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Ok(Some(Credential::Basic { username: username.clone(), password: password.clone() }))
            }
            _ => Ok(None),
        }
    }

    /// Runs `docker-credential-HELPER get` with the server URL on stdin.
    async fn ask_helper(&self, helper: &str, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let failure = |message: String| RegistryError::CredentialHelper {
            helper: helper.to_string(),
            registry: registry.to_string(),
            message,
        };
        let program = format!("docker-credential-{helper}");
        let search_path = self.helper_search_path.clone().or_else(|| std::env::var_os("PATH")).unwrap_or_default();
        let found = std::env::split_paths(&search_path).map(|folder| folder.join(&program)).find(|path| path.is_file());
        let Some(executable) = found else {
            return Err(failure(format!("{program} is not on PATH")));
        };
        let server_url = if is_docker_hub(registry) { DOCKER_HUB_CREDENTIAL_KEY } else { registry };
        let mut child = tokio::process::Command::new(&executable)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| failure(format!("cannot start {}: {error}", executable.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading its input is judged by its exit status below.
            let _ = stdin.write_all(server_url.as_bytes()).await;
        }
        let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| failure(format!("no answer within {} s", HELPER_TIMEOUT.as_secs())))?
            .map_err(|error| failure(error.to_string()))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(if output.stderr.is_empty() { &output.stdout } else { &output.stderr })
                .trim()
                .to_string();
            // Docker's helpers all say this when they hold nothing for the server.
            if said.contains("credentials not found") || (said.is_empty() && output.stdout.is_empty()) {
                return Ok(None);
            }
            let first_line: String = said.lines().next().unwrap_or_default().chars().take(200).collect();
            return Err(failure(format!("{} ({})", first_line, output.status)));
        }
        let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
            .map_err(|_| failure("its answer is not the JSON a credential helper prints".to_string()))?;
        Ok(match (answer.username.as_str(), answer.secret) {
            (_, secret) if secret.is_empty() => None,
            ("<token>", secret) => Some(Credential::IdentityToken(secret)),
            (username, secret) => Some(Credential::Basic { username: username.to_string(), password: secret }),
        })
    }
}

/// The registry a config key or reference names, in one spelling: no scheme, no path, lower case,
/// Docker Hub as `docker.io`.
fn registry_key(key: &str) -> String {
    let without_scheme = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = without_scheme.split('/').next().unwrap_or_default().to_ascii_lowercase();
    if is_docker_hub(&host) { "docker.io".to_string() } else { host }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, DockerConfig) {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        let config = DockerConfig::load(&path).unwrap().with_helper_search_path(folder.path().into());
        (folder, config)
    }

    /// A fake helper that answers for one server and says "not found" for the rest.
    fn fake_helper(folder: &Path, name: &str, server: &str, answer: &str) {
        let path = folder.join(format!("docker-credential-{name}"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\nif [ \"$server\" = '{server}' ]; then echo '{answer}'; \
             else echo 'credentials not found in native keychain'; exit 1; fi\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn basic(username: &str, password: &str) -> Option<Credential> {
        Some(Credential::Basic { username: username.into(), password: password.into() })
    }

    #[tokio::test]
    async fn auths_entries_give_basic_credentials_tokens_and_answer_to_every_docker_hub_alias() {
        let (_folder, config) = config(
            r#"{"auths": {
                "127.0.0.1:5055": {"auth": "dXNlcjpwYTpzcw=="},
                "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
                "https://ghcr.io": {"username": "octo", "password": "pat"},
                "id.example.com": {"auth": "", "identitytoken": "refresh-me"},
                "empty.example.com": {}
            }}"#,
        );
        assert_eq!(config.credential("127.0.0.1:5055").await.unwrap(), basic("user", "pa:ss"));
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(config.credential(hub).await.unwrap(), basic("hub", "hubpw"), "{hub}");
        }
        assert_eq!(config.credential("ghcr.io").await.unwrap(), basic("octo", "pat"));
        let token = config.credential("id.example.com").await.unwrap();
        assert_eq!(token, Some(Credential::IdentityToken("refresh-me".into())));
        assert_eq!(config.credential("empty.example.com").await.unwrap(), None);
        assert_eq!(config.credential("127.0.0.1:6000").await.unwrap(), None);
        assert_eq!(format!("{:?}", basic("user", "pa:ss").unwrap()), "Basic(user, <redacted>)");
        assert!(!format!("{token:?}").contains("refresh-me"));
    }

    #[tokio::test]
    async fn a_creds_store_answers_first_a_cred_helper_overrides_it_and_not_found_falls_through() {
        let (folder, config) = config(
            r#"{"credsStore": "test", "credHelpers": {"special.example.com": "other"},
                "auths": {"fallback.example.com": {"auth": "ZmI6ZmJwdw=="}}}"#,
        );
        fake_helper(folder.path(), "test", "127.0.0.1:5055", r#"{"ServerURL":"x","Username":"helped","Secret":"s3"}"#);
        fake_helper(folder.path(), "other", "special.example.com", r#"{"Username":"<token>","Secret":"idt"}"#);
        assert_eq!(config.credential("127.0.0.1:5055").await.unwrap(), basic("helped", "s3"));
        let special = config.credential("special.example.com").await.unwrap();
        assert_eq!(special, Some(Credential::IdentityToken("idt".into())));
        assert_eq!(config.credential("fallback.example.com").await.unwrap(), basic("fb", "fbpw"));
        assert_eq!(config.credential("unknown.example.com").await.unwrap(), None);
    }

    #[tokio::test]
    async fn docker_hub_is_asked_of_a_helper_by_its_legacy_server_url() {
        let (folder, config) = config(r#"{"credsStore": "test"}"#);
        fake_helper(folder.path(), "test", DOCKER_HUB_CREDENTIAL_KEY, r#"{"Username":"hub","Secret":"pw"}"#);
        assert_eq!(config.credential("docker.io").await.unwrap(), basic("hub", "pw"));
    }

    #[tokio::test]
    async fn a_missing_or_failing_helper_is_an_error_that_names_it_and_keeps_secrets_out() {
        let (folder, config) = config(r#"{"credsStore": "absent", "credHelpers": {"broken.example.com": "broken"}}"#);
        let error = config.credential("127.0.0.1:5055").await.unwrap_err();
        assert!(error.to_string().contains("docker-credential-absent is not on PATH"), "{error}");
        assert!(error.help().contains("docker-credential-absent is installed"), "{}", error.help());
        let path = folder.path().join("docker-credential-broken");
        std::fs::write(&path, "#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = config.credential("broken.example.com").await.unwrap_err();
        assert!(error.to_string().contains("keychain locked"), "{error}");
        let garbled = folder.path().join("docker-credential-absent");
        std::fs::write(&garbled, "#!/bin/sh\necho 'not json: hunter2'\n").unwrap();
        std::fs::set_permissions(&garbled, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = config.credential("127.0.0.1:5055").await.unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn a_missing_config_is_empty_and_a_broken_one_is_an_error_naming_the_file() {
        let folder = tempfile::tempdir().unwrap();
        assert!(DockerConfig::load(&folder.path().join("absent.json")).is_ok());
        let broken = folder.path().join("config.json");
        std::fs::write(&broken, "{\"auths\": {\"x\": {\"auth\": \"c2VjcmV0\"").unwrap();
        let error = DockerConfig::load(&broken).err().unwrap();
        assert!(error.to_string().contains(&broken.display().to_string()), "{error}");
        assert!(!error.to_string().contains("c2VjcmV0"), "{error}");
    }
}
