//! A measurement, not a test of time (that belongs in a benchmark): run by hand, in release, to compare
//! a 200 MB push with a raw upload of the same file.

use std::time::Instant;

use flyte::image::registry::{LayerBlob, sha256_digest};

use super::{LAYER_MEDIA_TYPE, client, image, test_registry, unique};

/// `FLYTE_TEST_REGISTRY=127.0.0.1:5055 cargo test --release --test integration registry::measure -- --ignored
/// --nocapture`; `FLYTE_MEASURE_LAYER=FILE` pushes that file instead of fresh random bytes.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn measure_a_200_mb_layer_push() {
    let Some(address) = test_registry() else { return };
    let folder = tempfile::tempdir().unwrap();
    let path = std::env::var_os("FLYTE_MEASURE_LAYER").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let path = folder.path().join("layer.bin");
        let mut random = std::fs::File::open("/dev/urandom").unwrap();
        let mut file = std::fs::File::create(&path).unwrap();
        std::io::copy(&mut std::io::Read::take(&mut random, 200 << 20), &mut file).unwrap();
        path
    });
    let started = Instant::now();
    let bytes = std::fs::read(&path).unwrap();
    let digest = sha256_digest(&bytes);
    let hashing = started.elapsed();
    let layer = LayerBlob {
        path: path.clone(),
        digest,
        size: bytes.len() as u64,
        media_type: LAYER_MEDIA_TYPE.to_string(),
        mount_from: Vec::new(),
    };
    drop(bytes);
    let registry = client(&folder.path().join("config.json"));
    let started = Instant::now();
    let report = registry.push_image(&format!("{address}/{}:1", unique("measure")), &image(vec![layer])).await.unwrap();
    let pushing = started.elapsed();
    assert_eq!(report.uploaded().blobs, 2);
    println!("hashing {hashing:?} (not part of the push), push of {} bytes: {pushing:?}", report.uploaded().bytes);
}
