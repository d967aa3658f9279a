//! The registry auth dance: takes a registry's `WWW-Authenticate` challenge and the credential the
//! Docker config holds for it, gives the `Authorization` header for a set of repository scopes.
//!
//! A `Basic` challenge is answered with the credential itself. A `Bearer` challenge names a token
//! service: a password credential (or none, for anonymous pulls) is exchanged there with a GET, an
//! identity token (a refresh token from `docker login`) with an OAuth2 POST. Tokens are kept per
//! registry and scope set until shortly before they expire, and once a registry's challenge is known
//! the header is sent with the first request, so bodies (a layer being streamed) are not sent twice.
//! A registry that never challenges gets no header at all.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use http::HeaderValue;
use serde::Deserialize;

use super::client::{Clients, read_json, status_error, transport_error};
use super::credentials::{Credential, DockerConfig};
use super::error::{Access, RegistryError};
use super::reference::ImageReference;

/// Tokens without an `expires_in` last 60 s by the token specification.
const DEFAULT_TOKEN_SECONDS: u64 = 60;
/// Renew this long before expiry, so a token does not lapse between the check and the request.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

/// One `repository:NAME:ACTIONS` scope of a token request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub repository: String,
    pub access: Access,
}

impl Scope {
    pub fn new(repository: &str, access: Access) -> Scope {
        Scope { repository: repository.to_string(), access }
    }

    fn text(&self) -> String {
        let actions = match self.access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        format!("repository:{}:{actions}", self.repository)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

struct CachedToken {
    header: HeaderValue,
    renew_at: Instant,
}

pub struct Authorizer {
    config: DockerConfig,
    /// Credentials by registry, looked up once (a helper run can take a while).
    credentials: tokio::sync::Mutex<HashMap<String, Option<Credential>>>,
    /// The challenge each API host answered with.
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Bearer headers by API host and scope set.
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl Authorizer {
    pub fn new(config: DockerConfig) -> Authorizer {
        Authorizer {
            config,
            credentials: tokio::sync::Mutex::default(),
            challenges: Mutex::default(),
            tokens: Mutex::default(),
        }
    }

    pub fn config_path(&self) -> &Path {
        &self.config.path
    }

    /// The header to send first, from what is known of the registry: nothing before its first challenge.
    pub async fn header(
        &self,
        clients: &Clients,
        target: &ImageReference,
        scopes: &[Scope],
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let challenge = self.challenges.lock().expect("challenges lock").get(target.api_host()).cloned();
        match challenge {
            None => Ok(None),
            Some(challenge) => self.header_for(clients, target, scopes, &challenge).await,
        }
    }

    /// Learns the challenge of a 401 and gives the header to try again with (`None`: nothing to try).
    pub async fn answer(
        &self,
        clients: &Clients,
        target: &ImageReference,
        scopes: &[Scope],
        www_authenticate: &str,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let Some(challenge) = parse_challenge(www_authenticate) else { return Ok(None) };
        self.challenges.lock().expect("challenges lock").insert(target.api_host().to_string(), challenge.clone());
        // The token that was refused (expired, or too narrow) must not be offered again.
        self.tokens.lock().expect("tokens lock").remove(&token_key(target, scopes));
        self.header_for(clients, target, scopes, &challenge).await
    }

    async fn header_for(
        &self,
        clients: &Clients,
        target: &ImageReference,
        scopes: &[Scope],
        challenge: &Challenge,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let credential = self.credential(&target.registry).await?;
        match (challenge, credential) {
            (Challenge::Basic, Some(Credential::Basic { username, password })) => Ok(Some(basic(&username, &password))),
            (Challenge::Basic, _) => Ok(None),
            (Challenge::Bearer { .. }, Some(Credential::RegistryToken(token))) => Ok(Some(bearer(&token))),
            (Challenge::Bearer { realm, service }, credential) => {
                let key = token_key(target, scopes);
                if let Some(cached) = self.tokens.lock().expect("tokens lock").get(&key)
                    && cached.renew_at > Instant::now()
                {
                    return Ok(Some(cached.header.clone()));
                }
                let (header, lifetime) =
                    self.fetch_token(clients, target, scopes, realm, service.as_deref(), credential).await?;
                let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
                self.tokens.lock().expect("tokens lock").insert(key, CachedToken { header: header.clone(), renew_at });
                Ok(Some(header))
            }
        }
    }

    async fn credential(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let mut known = self.credentials.lock().await;
        if let Some(credential) = known.get(registry) {
            return Ok(credential.clone());
        }
        let credential = self.config.credential(registry).await?;
        known.insert(registry.to_string(), credential.clone());
        Ok(credential)
    }

    async fn fetch_token(
        &self,
        clients: &Clients,
        target: &ImageReference,
        scopes: &[Scope],
        realm: &str,
        service: Option<&str>,
        credential: Option<Credential>,
    ) -> Result<(HeaderValue, Duration), RegistryError> {
        let operation = format!("getting a token for {} from {realm}", target.repository_name());
        let mut url = reqwest::Url::parse(realm).map_err(|error| RegistryError::Status {
            operation: operation.clone(),
            registry: target.registry.clone(),
            status: 401,
            detail: format!(": the challenge's realm is not a URL ({error})"),
            retry_after: None,
        })?;
        let client = clients.for_host(url.host_str().unwrap_or_default())?;
        let scope_texts: Vec<String> = scopes.iter().map(Scope::text).collect();
        let request = match credential {
            Some(Credential::IdentityToken(refresh_token)) => {
                let mut form = reqwest::Url::parse("form:").expect("a constant URL");
                form.query_pairs_mut()
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", &refresh_token)
                    .append_pair("client_id", "flyte")
                    .append_pair("service", service.unwrap_or_default())
                    .append_pair("scope", &scope_texts.join(" "));
                let body = form.query().unwrap_or_default().to_string();
                client.post(url).header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body)
            }
            credential => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for scope in &scope_texts {
                        query.append_pair("scope", scope);
                    }
                }
                let request = client.get(url);
                match credential {
                    Some(Credential::Basic { username, password }) => request.basic_auth(username, Some(password)),
                    _ => request,
                }
            }
        };
        let response = request.send().await.map_err(|error| transport_error(&error, &target.registry, &operation))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            let access =
                if scopes.iter().any(|scope| scope.access == Access::Push) { Access::Push } else { Access::Pull };
            return Err(RegistryError::Unauthorized {
                access,
                target: target.repository_name(),
                registry: target.registry.clone(),
                status,
                credentials_file: Some(self.config_path().to_path_buf()),
            });
        }
        if !response.status().is_success() {
            return Err(status_error(response, &target.registry, &operation).await);
        }
        let answer: TokenAnswer = read_json(response).await.map_err(|error| RegistryError::Status {
            operation,
            registry: target.registry.clone(),
            status,
            detail: format!(": the token service's answer is not a token ({error})"),
            retry_after: None,
        })?;
        let token = answer.token.or(answer.access_token).unwrap_or_default();
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(DEFAULT_TOKEN_SECONDS));
        Ok((bearer(&token), lifetime))
    }
}

fn token_key(target: &ImageReference, scopes: &[Scope]) -> String {
    let texts: Vec<String> = scopes.iter().map(Scope::text).collect();
    format!("{} {}", target.api_host(), texts.join(" "))
}

fn basic(username: &str, password: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(&format!("Basic {encoded}"))
}

fn bearer(token: &str) -> HeaderValue {
    sensitive(&format!("Bearer {token}"))
}

fn sensitive(text: &str) -> HeaderValue {
    // A token with bytes a header cannot hold would be refused by the registry anyway; sending an
    // empty header gets the clear 401 rather than a panic.
    let mut value = HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`; the first challenge of a list.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let parameters = parse_parameters(rest);
    let realm = parameters.get("realm")?.clone();
    Some(Challenge::Bearer { realm, service: parameters.get("service").cloned() })
}

/// `key=value` or `key="quoted \" value"` pairs separated by commas; keys in lower case.
fn parse_parameters(text: &str) -> HashMap<String, String> {
    let mut parameters = HashMap::new();
    let mut characters = text.chars().peekable();
    loop {
        while characters.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String = std::iter::from_fn(|| characters.next_if(|c| *c != '=' && *c != ',')).collect();
        if characters.next_if_eq(&'=').is_none() {
            break;
        }
        let mut value = String::new();
        if characters.next_if_eq(&'"').is_some() {
            while let Some(c) = characters.next() {
                match c {
                    '\\' => value.extend(characters.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| characters.next_if(|c| *c != ',')));
        }
        parameters.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    parameters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_challenges_are_read_with_quoted_and_bare_parameters() {
        let docker_hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_challenge(docker_hub),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        let bare = "bearer Realm=https://t.example.com/token, error=\"insufficient_scope\"";
        assert_eq!(
            parse_challenge(bare),
            Some(Challenge::Bearer { realm: "https://t.example.com/token".into(), service: None })
        );
        assert_eq!(parse_challenge(r#"Basic realm="flyte-test""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Bearer service=\"no realm\""), None);
        assert_eq!(parse_challenge("Negotiate"), None);
        let escaped = parse_parameters(r#"realm="a \"quoted\" realm", service=s"#);
        assert_eq!(escaped["realm"], r#"a "quoted" realm"#);
        assert_eq!(escaped["service"], "s");
    }

    #[test]
    fn scopes_ask_for_pull_or_pull_and_push_and_headers_are_sensitive() {
        assert_eq!(Scope::new("team/app", Access::Push).text(), "repository:team/app:pull,push");
        assert_eq!(Scope::new("library/python", Access::Pull).text(), "repository:library/python:pull");
        let header = basic("user", "secret");
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), "Basic dXNlcjpzZWNyZXQ=");
        assert!(!format!("{header:?}").contains("dXNlcjpzZWNyZXQ"));
    }
}
