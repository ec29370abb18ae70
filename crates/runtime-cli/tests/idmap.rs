//! Idmapped bind mounts (`idmap` / `ridmap` mount options): a host directory
//! owned by host root, bound into a container whose root is host uid 100000,
//! shows as owned by the container's root, and what the container creates
//! there is owned by host root.

use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::{
    LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder,
};
use wharf_testkit::{Bundle, Runtime, require_root, unique_id};

fn userns_bundle(host_dir: &std::path::Path, options: &[&str], args: &[&str]) -> Bundle {
    let mut b = Bundle::new().expect("bundle");
    b.readonly_rootfs(false);
    b.args(args);
    // The rootfs belongs to host root, which the container's root (host
    // 100000) cannot write: the mount point must exist already.
    std::fs::create_dir_all(b.rootfs().join("data")).unwrap();
    let spec = b.spec_mut();
    let linux = spec.linux_mut().as_mut().unwrap();
    let mut ns = linux.namespaces().clone().unwrap_or_default();
    ns.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .build()
            .unwrap(),
    );
    linux.set_namespaces(Some(ns));
    let map = vec![
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(100000u32)
            .size(65536u32)
            .build()
            .unwrap(),
    ];
    linux.set_uid_mappings(Some(map.clone()));
    linux.set_gid_mappings(Some(map));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(
        MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source(host_dir)
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap(),
    );
    spec.set_mounts(Some(mounts));
    b
}

#[test]
fn idmapped_bind_maps_host_root_to_container_root() {
    require_root();
    let rt = Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime")).expect("runtime");
    let host = tempfile::Builder::new()
        .prefix("wharf-idmap")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(host.path().join("owned-by-root"), "x").unwrap();

    // With idmap: host root's file is the container root's; a new file made
    // by the container's root belongs to host root.
    let b = userns_bundle(
        host.path(),
        &["bind", "idmap"],
        &[
            "/bin/sh",
            "-c",
            "stat -c %u:%g /data/owned-by-root && touch /data/made-inside",
        ],
    );
    let out = rt.run(&b, &unique_id("idmap")).expect("run");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0:0");
    let made = std::fs::metadata(host.path().join("made-inside")).expect("file made inside");
    assert_eq!(
        (made.uid(), made.gid()),
        (0, 0),
        "the container's root writes as host root through the idmap"
    );

    // Without idmap, the same file is unmapped in the container (overflow id).
    let b = userns_bundle(
        host.path(),
        &["bind"],
        &["/bin/stat", "-c", "%u:%g", "/data/owned-by-root"],
    );
    let out = rt.run(&b, &unique_id("noidmap")).expect("run");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65534:65534");
}

#[test]
fn idmap_without_a_user_namespace_is_refused() {
    require_root();
    let rt = Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime")).expect("runtime");
    let host = tempfile::Builder::new()
        .prefix("wharf-idmap")
        .tempdir_in("/tmp")
        .unwrap();
    let mut b = Bundle::new().expect("bundle");
    let mut mounts = b.spec().mounts().clone().unwrap_or_default();
    mounts.push(
        MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source(host.path())
            .options(vec!["bind".to_string(), "idmap".to_string()])
            .build()
            .unwrap(),
    );
    b.spec_mut().set_mounts(Some(mounts));
    let id = unique_id("idmapno");
    let out = rt.run(&b, &id).expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a user namespace"),
        "{out:?}"
    );
    assert!(!rt.root().join(&id).exists());
}
