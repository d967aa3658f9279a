//! A `docker-registry` of a test's own on a free loopback port, with htpasswd auth.

use std::time::{Duration, Instant};

use super::skip;

pub const TEST_USER: &str = "flyte";
pub const TEST_PASSWORD: &str = "test-secret-42";
/// bcrypt (cost 5) of TEST_PASSWORD for TEST_USER, made once with `htpasswd -nbB -C 5`, so the tests need
/// no htpasswd program.
const TEST_HTPASSWD: &str = "flyte:$2y$05$zmhLsKUsbDRuvoueChwGO.fWvU1BUP9daGmZSywvFJy48bfshxU1q";

/// A `docker-registry` of this test's own, with htpasswd auth, stopped when dropped.
pub struct OwnRegistry {
    pub address: String,
    child: std::process::Child,
    _folder: tempfile::TempDir,
}

impl OwnRegistry {
    pub fn start_with_password() -> Option<OwnRegistry> {
        let on_path = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|folder| folder.join("docker-registry").is_file()));
        if !on_path {
            skip("docker-registry is not on PATH (apt-get install docker-registry)");
            return None;
        }
        let folder = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address = format!("127.0.0.1:{port}");
        std::fs::write(folder.path().join("htpasswd"), format!("{TEST_HTPASSWD}\n")).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n\
             http:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: flyte-test\n    path: {root}/htpasswd\n",
            root = folder.path().display()
        );
        let config_path = folder.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(folder.path().join("registry.log")).unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let registry = OwnRegistry { address, child, _folder: folder };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&registry.address).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start listening on {}", registry.address);
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
