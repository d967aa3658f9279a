//! The real services that the image tests drive: a Docker Engine (its embedded BuildKit), an OCI registry on
//! loopback, two base images in it and a local wheel index. `scripts/test` starts them (or reuses a
//! developer's) and names them in `FLYTE_TEST_*` variables; [`services`] reads those.
//!
//! A test that needs them starts with `let Some(services) = services::services() else { return };`:
//! outside the test script it skips with a note, under CI (env `CI`) it fails, so a broken setup cannot
//! pass as a run of skipped tests.

use std::io::{Read, Write};
use std::time::Duration;

pub struct Services {
    /// The engine's address, `unix:///…/docker.sock` (or `tcp://host:port`).
    pub docker_host: String,
    /// `127.0.0.1:PORT` of a plain-HTTP registry.
    pub registry: String,
    /// `REGISTRY/base/busybox@sha256:…`: Debian's static busybox with its applets, `FROM scratch`.
    pub base_busybox: String,
    /// `REGISTRY/base/python@sha256:…`: Debian bookworm with python3 and pip. Debian marks its Python as
    /// externally managed, so `pip install` there needs `--break-system-packages`.
    pub base_python: String,
    /// `http://127.0.0.1:PORT/`, a `pip --find-links` index with `flyte_test_greeting` 1.0 (reach it from a
    /// build step with host networking).
    pub wheels_url: String,
}

const VARIABLES: [&str; 5] = [
    "FLYTE_TEST_DOCKER_HOST",
    "FLYTE_TEST_REGISTRY",
    "FLYTE_TEST_BASE_BUSYBOX",
    "FLYTE_TEST_BASE_PYTHON",
    "FLYTE_TEST_WHEELS_URL",
];

/// The services `scripts/test` started, or `None` (after a one-line note) when the tests run without it.
/// Under CI a missing service is a failure, not a skip.
pub fn services() -> Option<Services> {
    let values: Vec<Option<String>> =
        VARIABLES.iter().map(|name| std::env::var(name).ok().filter(|value| !value.is_empty())).collect();
    if let [Some(docker_host), Some(registry), Some(base_busybox), Some(base_python), Some(wheels_url)] =
        values.as_slice()
    {
        return Some(Services {
            docker_host: docker_host.clone(),
            registry: registry.clone(),
            base_busybox: base_busybox.clone(),
            base_python: base_python.clone(),
            wheels_url: wheels_url.clone(),
        });
    }
    let missing: Vec<&str> =
        VARIABLES.iter().zip(&values).filter(|(_, value)| value.is_none()).map(|(n, _)| *n).collect();
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} not set: under CI the tests run through scripts/test, which must start dockerd and the registry",
            missing.join(", ")
        );
    }
    eprintln!("note: skipped, {} not set (scripts/test starts dockerd and a registry)", missing.join(", "));
    None
}

/// An HTTP/1.0 `METHOD PATH` (so the server closes the connection and no chunking is involved), to
/// `unix://SOCKET`, `tcp://HOST:PORT`, `http://HOST:PORT/` or a bare `HOST:PORT`. Returns the status and
/// the body.
pub fn http(address: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, Vec<u8>)> {
    let request = {
        let mut text = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text + "\r\n"
    };
    let timeout = Some(Duration::from_secs(10));
    let mut reply = Vec::new();
    if let Some(socket) = address.strip_prefix("unix://") {
        let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
        stream.set_read_timeout(timeout)?;
        stream.write_all(request.as_bytes())?;
        stream.read_to_end(&mut reply)?;
    } else {
        let host = address.trim_start_matches("tcp://").trim_start_matches("http://").trim_end_matches('/');
        let mut stream = std::net::TcpStream::connect(host)?;
        stream.set_read_timeout(timeout)?;
        stream.write_all(request.as_bytes())?;
        stream.read_to_end(&mut reply)?;
    }
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what} from {address}"));
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| invalid("no HTTP reply"))?;
    let status_line = String::from_utf8_lossy(&reply[..head_end]).lines().next().unwrap_or_default().to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(&format!("bad status line {status_line:?}")))?;
    Ok((status, reply[head_end + 4..].to_vec()))
}

/// A broken setup must fail loudly in CI, not show up later as a confusing build error.
#[test]
fn the_services_answer() {
    let Some(services) = services() else { return };

    let (status, body) = http(&services.docker_host, "GET", "/_ping", &[]).expect("the engine's socket answers");
    assert_eq!((status, body.as_slice()), (200, b"OK".as_slice()), "engine at {}", services.docker_host);

    let (status, _) = http(&services.registry, "GET", "/v2/", &[]).expect("the registry answers");
    assert_eq!(status, 200, "registry at {}", services.registry);

    let accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
    for image in [&services.base_busybox, &services.base_python] {
        let (name, digest) = image
            .strip_prefix(&format!("{}/", services.registry))
            .and_then(|rest| rest.split_once('@'))
            .unwrap_or_else(|| panic!("{image} is not REGISTRY/NAME@DIGEST in {}", services.registry));
        assert!(digest.starts_with("sha256:") && digest.len() == 71, "{image} is not pinned by digest");
        let (status, _) =
            http(&services.registry, "HEAD", &format!("/v2/{name}/manifests/{digest}"), &[("Accept", accept)])
                .expect("the registry answers");
        assert_eq!(status, 200, "the registry has {image}");
    }

    let (status, body) = http(&services.wheels_url, "GET", "/", &[]).expect("the wheel index answers");
    assert_eq!(status, 200, "wheel index at {}", services.wheels_url);
    let listing = String::from_utf8_lossy(&body);
    assert!(listing.contains("flyte_test_greeting-1.0-py3-none-any.whl"), "the index lists the wheel: {listing}");
}
