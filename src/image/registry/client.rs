//! HTTP to registries: takes one request against one repository, gives the registry's response once the
//! auth dance ([`super::auth`]) is done, with transport failures turned into [`RegistryError`]s that
//! say which registry and which operation.
//!
//! Loopback registries are reached directly over plain HTTP (a proxy would not reach this machine's
//! loopback). Every other registry is reached over HTTPS, or plain HTTP when the settings list it,
//! through the proxies of the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use reqwest::{Response, Url};
use tokio::io::AsyncReadExt;

use super::auth::{Authorizer, Scope};
use super::error::{Access, RegistryError, cause_chain};
use super::reference::{ImageReference, is_loopback, scheme_for};
use super::retry::parse_retry_after;

const USER_AGENT: &str = concat!("flyte/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// For requests without a large body. Uploads get no overall limit (a big layer on a slow link takes
/// what it takes); TCP keepalive notices a dead peer instead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const KEEPALIVE: Duration = Duration::from_secs(30);
/// Large reads keep the number of trips through the blocking pool and the body channel small.
const FILE_READ_SIZE: usize = 1 << 20;
/// The most of a registry's error body a message quotes.
const DETAIL_LIMIT: usize = 300;

/// One HTTP client for loopback registries (never proxied) and one for the rest (proxied per the
/// environment); both keep connections alive between requests. Each is made on first use: building a
/// client sets up TLS, several milliseconds that a run talking only to loopback never needs twice.
#[derive(Default)]
pub struct Clients {
    direct: OnceLock<Result<reqwest::Client, String>>,
    proxied: OnceLock<Result<reqwest::Client, String>>,
}

impl Clients {
    pub fn new() -> Result<Clients, RegistryError> {
        Ok(Clients::default())
    }

    pub fn for_host(&self, host: &str) -> Result<&reqwest::Client, RegistryError> {
        let direct = is_loopback(host);
        let slot = if direct { &self.direct } else { &self.proxied };
        let built = slot.get_or_init(|| {
            let builder = reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_keepalive(KEEPALIVE)
                .tcp_nodelay(true);
            let builder = if direct { builder.no_proxy() } else { builder };
            builder.build().map_err(|error| cause_chain(&error))
        });
        built.as_ref().map_err(|message| RegistryError::Client(message.clone()))
    }
}

/// One request to a repository: what to send, the token scopes it needs, and what it is for (messages).
pub struct Request<'a> {
    pub method: Method,
    pub url: Url,
    pub scopes: Vec<Scope>,
    pub headers: HeaderMap,
    pub body: Body<'a>,
    pub operation: String,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: Url, scopes: Vec<Scope>, operation: String) -> Request<'a> {
        Request { method, url, scopes, headers: HeaderMap::new(), body: Body::Empty, operation }
    }

    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Request<'a> {
        self.headers.insert(name, value);
        self
    }

    pub fn body(mut self, body: Body<'a>) -> Request<'a> {
        self.body = body;
        self
    }
}

/// A request body that can be made again for a second attempt.
#[derive(Clone)]
pub enum Body<'a> {
    Empty,
    Bytes(Bytes),
    /// A file streamed from disk, never held in memory whole.
    File {
        path: &'a Path,
        size: u64,
    },
}

impl Body<'_> {
    fn attach(&self, request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, RegistryError> {
        Ok(match self {
            // Some registries refuse a bodiless POST without an explicit length.
            Body::Empty => request.header(header::CONTENT_LENGTH, 0),
            Body::Bytes(bytes) => request.body(bytes.clone()),
            Body::File { path, size } => {
                let file = std::fs::File::open(path)
                    .map_err(|source| RegistryError::Layer { path: path.to_path_buf(), source })?;
                let stream = futures_util::stream::try_unfold(tokio::fs::File::from_std(file), |mut file| async move {
                    let mut buffer = BytesMut::with_capacity(FILE_READ_SIZE);
                    let read = file.read_buf(&mut buffer).await?;
                    Ok::<_, std::io::Error>((read > 0).then(|| (buffer.freeze(), file)))
                });
                request.header(header::CONTENT_LENGTH, *size).body(reqwest::Body::wrap_stream(stream))
            }
        })
    }
}

pub struct Transport {
    clients: Clients,
    insecure: Vec<String>,
    pub auth: Authorizer,
}

impl Transport {
    pub fn new(clients: Clients, insecure: Vec<String>, auth: Authorizer) -> Transport {
        Transport { clients, insecure, auth }
    }

    /// `SCHEME://HOST/v2/REPOSITORY/PATH`.
    pub fn url(&self, target: &ImageReference, path: &str) -> Result<Url, RegistryError> {
        let host = target.api_host();
        let text = format!("{}://{host}/v2/{}/{path}", scheme_for(host, &self.insecure), target.repository);
        Url::parse(&text).map_err(|error| RegistryError::InvalidReference {
            reference: target.to_string(),
            reason: error.to_string(),
        })
    }

    /// An upload `Location` (relative or absolute) as a URL, with `extra` query pairs appended.
    pub fn location(
        &self,
        target: &ImageReference,
        response: &Response,
        extra: &[(&str, &str)],
    ) -> Result<Url, RegistryError> {
        let location = response.headers().get(header::LOCATION).and_then(|value| value.to_str().ok());
        let mut url =
            location.and_then(|location| response.url().join(location).ok()).ok_or_else(|| RegistryError::Status {
                operation: format!("starting an upload to {}", target.repository_name()),
                registry: target.registry.clone(),
                status: response.status().as_u16(),
                detail: ": the answer has no usable Location header".to_string(),
                retry_after: None,
            })?;
        for (key, value) in extra {
            url.query_pairs_mut().append_pair(key, value);
        }
        Ok(url)
    }

    /// Sends one request, answering an auth challenge once; any status comes back as a response.
    pub async fn send(&self, target: &ImageReference, request: &Request<'_>) -> Result<Response, RegistryError> {
        let client = self.clients.for_host(target.api_host())?;
        let url = &request.url;
        // Credentials go only to the registry itself, never to where its Location or redirects point.
        let base = self.url(target, "")?;
        let own_host = url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default();
        let scopes = &request.scopes;
        let mut authorization = if own_host { self.auth.header(&self.clients, target, scopes).await? } else { None };
        let mut answered = false;
        loop {
            let mut builder = client.request(request.method.clone(), url.clone()).headers(request.headers.clone());
            if let Some(value) = &authorization {
                builder = builder.header(header::AUTHORIZATION, value.clone());
            }
            if !matches!(request.body, Body::File { .. }) {
                builder = builder.timeout(REQUEST_TIMEOUT);
            }
            let response = request
                .body
                .attach(builder)?
                .send()
                .await
                .map_err(|error| transport_error(&error, &target.registry, &request.operation))?;
            // One answer to a challenge per request: a second 401 is the registry's verdict.
            if response.status() != StatusCode::UNAUTHORIZED || !own_host || answered {
                return Ok(response);
            }
            answered = true;
            let Some(challenge) = response.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) else {
                return Ok(response);
            };
            let again = self.auth.answer(&self.clients, target, scopes, challenge).await?;
            // Nothing new to offer (no credentials, or these were just refused): the 401 is the answer.
            if again.is_none() || again == authorization {
                return Ok(response);
            }
            authorization = again;
        }
    }

    /// A refusal as the error a person can act on: 401/403 as "not authorised", the rest as a status.
    pub async fn refusal(
        &self,
        response: Response,
        target: &ImageReference,
        access: Access,
        operation: &str,
    ) -> RegistryError {
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return RegistryError::Unauthorized {
                access,
                target: target.repository_name(),
                registry: target.registry.clone(),
                status,
                credentials_file: Some(self.auth.config_path().to_path_buf()),
            };
        }
        status_error(response, &target.registry, operation).await
    }
}

/// A failed send: no connection at all is "unreachable", anything later is a broken connection.
pub fn transport_error(error: &reqwest::Error, registry: &str, operation: &str) -> RegistryError {
    let cause = cause_chain(error);
    if error.is_connect() {
        let url = error.url().map(|url| format!("{}://{}", url.scheme(), url.authority())).unwrap_or_default();
        RegistryError::Unreachable { registry: registry.to_string(), url, cause }
    } else if error.is_builder() {
        RegistryError::Client(cause)
    } else {
        RegistryError::Connection { operation: operation.to_string(), registry: registry.to_string(), cause }
    }
}

/// An unexpected status, with the registry's own message (the OCI error envelope) when it sent one.
pub async fn status_error(response: Response, registry: &str, operation: &str) -> RegistryError {
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(header::RETRY_AFTER).and_then(|value| value.to_str().ok()).and_then(parse_retry_after);
    let body = response.bytes().await.unwrap_or_default();
    RegistryError::Status {
        operation: operation.to_string(),
        registry: registry.to_string(),
        status,
        detail: error_detail(&body),
        retry_after,
    }
}

/// `: CODE: message; …` from an OCI error envelope, else the start of a plain-text body.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => envelope
            .errors
            .iter()
            .map(|entry| format!("{}: {}", entry.code, entry.message))
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) if body.starts_with(b"<") => String::new(),
        Err(_) => String::from_utf8_lossy(body).split_whitespace().collect::<Vec<_>>().join(" "),
    };
    if text.is_empty() {
        return text;
    }
    let mut shortened: String = text.chars().take(DETAIL_LIMIT).collect();
    if shortened.len() < text.len() {
        shortened.push('…');
    }
    format!(": {shortened}")
}

/// Reads a JSON body (reqwest's `json` feature is not one this crate asks for).
pub async fn read_json<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, String> {
    let bytes = response.bytes().await.map_err(|error| cause_chain(&error))?;
    serde_json::from_slice(&bytes).map_err(|error| error.to_string())
}

/// The `Docker-Content-Digest` a registry answered with, if any.
pub fn content_digest(response: &Response) -> Option<String> {
    response
        .headers()
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_string())
}

/// An `Accept` value listing `media_types`.
pub fn accept(media_types: &[&str]) -> HeaderValue {
    HeaderValue::from_str(&media_types.join(", ")).expect("media types are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_quote_the_oci_envelope_or_the_start_of_plain_text() {
        let envelope =
            br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#;
        assert_eq!(error_detail(envelope), ": DIGEST_INVALID: provided digest did not match uploaded content");
        assert_eq!(error_detail(b"upstream\n  timed out"), ": upstream timed out");
        assert_eq!(error_detail(b"<html><body>Bad Gateway</body></html>"), "");
        assert_eq!(error_detail(b""), "");
        assert!(error_detail("x".repeat(1000).as_bytes()).ends_with('…'));
    }
}
