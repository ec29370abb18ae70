//! Images made outside the daemon, for pull tests: OCI image layouts on
//! disk (seeded into a [`crate::Registry`] with skopeo), optionally built
//! on the exact busybox layer a test daemon already has.

use std::path::{Path, PathBuf};

use serde_json::json;
use wharf_image::Digest;

/// Writes an OCI layout (tag `latest`) into `dir` of an image made of
/// these uncompressed layers, for the host's architecture, with
/// `Cmd ["sh"]`, label `wharf.test=<label>` and one history entry per
/// layer; returns `dir`.
pub fn write_oci_layout(dir: &Path, layers: &[Vec<u8>], label: &str) -> PathBuf {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> Digest {
        let d = Digest::from_bytes(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let d = put(l);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": l.len(), "digest": d.to_string()}));
        diff_ids.push(d.to_string());
        history.push(json!({"created": "2024-01-02T00:00:00Z", "created_by": format!("wharf image test layer {i}")}));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": wharf_image::manifest::Platform::host().arch,
        "os": "linux",
        "created": "2024-01-02T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "Labels": {"wharf.test": label}
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history
    }))
    .unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest.to_string()},
        "layers": descs
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": manifest.len(),
                "digest": manifest_digest.to_string(),
                "annotations": {"org.opencontainers.image.ref.name": "latest"}
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    dir.to_owned()
}

/// The bytes of the busybox layer the daemon with `data_root` was given
/// (so a layout built on it shares that layer with the daemon's image).
pub fn daemon_busybox_layer(data_root: &Path) -> Vec<u8> {
    let store = wharf_image::image_store::ImageStore::open(data_root.join("image"));
    let rec = store
        .resolve("docker.io/library/busybox:latest")
        .unwrap()
        .expect("the daemon's busybox image");
    let layer = &rec.layers[0];
    std::fs::read(
        data_root
            .join("content")
            .join("blobs")
            .join("sha256")
            .join(layer.hex()),
    )
    .unwrap()
}
