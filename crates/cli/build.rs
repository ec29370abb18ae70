//! Builds the embedded `hello-world` image: compiles `hello/hello.c` with
//! the system C compiler as a static, libc-free executable, packs it as
//! `/hello` into one layer, and writes a `docker save` archive
//! (`manifest.json`, `blobs/sha256/<config>`, `blobs/sha256/<layer>`)
//! tagged `hello-world:latest` to `$OUT_DIR/hello-world.tar`.

use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest as _, Sha256};

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn entry(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
        .expect("append to in-memory tar");
}

fn main() {
    println!("cargo:rerun-if-changed=hello/hello.c");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let exe = out.join("hello");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args([
            "-static",
            "-nostdlib",
            "-Os",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-Wl,--build-id=none",
            "-s",
            "-o",
        ])
        .arg(&exe)
        .arg("hello/hello.c")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler {cc:?} for the hello-world image: {e}")
        });
    assert!(st.success(), "compiling hello/hello.c failed ({st})");
    let program = std::fs::read(&exe).expect("read the hello binary");

    let mut layer = tar::Builder::new(Vec::new());
    entry(&mut layer, "hello", &program, 0o755);
    let layer = layer.into_inner().expect("finish layer tar");
    let diff_id = sha(&layer);
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "arm64",
        _ => "amd64",
    };
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/hello"],
            "WorkingDir": "/"
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "COPY hello / # buildkit", "comment": "wharf's embedded hello-world"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "CMD [\"/hello\"]", "empty_layer": true}
        ]
    });
    let config = serde_json::to_vec(&config).expect("serialize config");
    let config_hex = sha(&config);
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": ["hello-world:latest"],
        "Layers": [format!("blobs/sha256/{diff_id}")]
    }]);
    let mut archive = tar::Builder::new(Vec::new());
    entry(
        &mut archive,
        &format!("blobs/sha256/{config_hex}"),
        &config,
        0o644,
    );
    entry(
        &mut archive,
        &format!("blobs/sha256/{diff_id}"),
        &layer,
        0o644,
    );
    entry(
        &mut archive,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("serialize manifest"),
        0o644,
    );
    let archive = archive.into_inner().expect("finish archive");
    std::fs::write(out.join("hello-world.tar"), archive).expect("write hello-world.tar");
}
