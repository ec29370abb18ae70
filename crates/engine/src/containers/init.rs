//! `--init` (`HostConfig.Init`): the container's command runs under a tiny
//! init (`wharf-init`, `crates/init`) that is PID 1, forwards signals and
//! reaps zombies. As Docker does, the init executable is bind-mounted
//! read-only at [`INIT_PATH`] and put in front of the process arguments:
//! `/sbin/docker-init -- <entrypoint> <cmd>...`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};

/// Where the init appears inside the container (Docker's path, which some
/// images and tools look for).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Runs the spec's process under the init at `init` (a host path).
pub fn apply(spec: &mut Spec, init: &Path) {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(INIT_PATH));
    m.set_typ(Some("bind".to_owned()));
    m.set_source(Some(init.to_owned()));
    m.set_options(Some(vec!["bind".to_owned(), "ro".to_owned()]));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(m);
    spec.set_mounts(Some(mounts));
    if let Some(mut p) = spec.process().clone() {
        let mut args = vec![INIT_PATH.to_owned(), "--".to_owned()];
        args.extend(p.args().clone().unwrap_or_default());
        p.set_args(Some(args));
        spec.set_process(Some(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_goes_first_and_is_mounted_read_only() {
        let mut spec = Spec::default();
        let mut p = spec.process().clone().unwrap_or_default();
        p.set_args(Some(vec!["sleep".into(), "1".into()]));
        spec.set_process(Some(p));
        apply(&mut spec, Path::new("/usr/libexec/wharf-init"));
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_ref().unwrap(),
            &["/sbin/docker-init", "--", "sleep", "1"]
        );
        let m = spec.mounts().as_ref().unwrap().last().unwrap();
        assert_eq!(m.destination(), Path::new(INIT_PATH));
        assert!(m.options().as_ref().unwrap().contains(&"ro".to_owned()));
    }
}
