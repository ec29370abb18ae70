//! Platforms (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`) and the rules
//! for picking a manifest out of an index for one.
//!
//! Names are normalised as containerd and Docker do (`x86_64` → `amd64`,
//! `aarch64` → `arm64`, `arm64/v8` → `arm64`, bare `arm` → `arm/v7`).
//! [`Platform::match_rank`] says whether an image built for one platform runs
//! on another and how good the fit is: exact variant first, then older
//! compatible variants (`arm/v7` runs `arm/v6` and `arm/v5`; `amd64/v3` runs
//! `amd64/v2`). Attestation manifests (BuildKit's `unknown/unknown` entries
//! and anything annotated `vnd.docker.reference.type`) are never selected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a platform string cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// Not `os[/arch[/variant]]` or `arch`, or an empty component.
    #[error("invalid platform {input:?}: expected os/arch[/variant], e.g. linux/amd64")]
    InvalidFormat { input: String },
}

/// An OS/architecture/variant triple, as found in image indexes and configs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    #[serde(rename = "architecture")]
    pub arch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

impl Platform {
    /// A normalised platform from its parts.
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        let (arch, variant) = normalize_arch(arch, variant.unwrap_or(""));
        Platform {
            os: normalize_os(os),
            arch,
            variant: (!variant.is_empty()).then_some(variant),
            os_version: None,
            os_features: None,
        }
    }

    /// The platform of the machine running this code (`linux/amd64` on x86-64).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// The same platform with normalised names.
    pub fn normalized(&self) -> Platform {
        let mut p = Platform::new(&self.os, &self.arch, self.variant.as_deref());
        p.os_version.clone_from(&self.os_version);
        p.os_features.clone_from(&self.os_features);
        p
    }

    /// Whether an image for `candidate` runs on `self`, and how well: `Some(0)`
    /// is an exact fit, larger numbers are worse; `None` is incompatible.
    pub fn match_rank(&self, candidate: &Platform) -> Option<u32> {
        let want = self.normalized();
        let have = candidate.normalized();
        if want.os != have.os || want.arch != have.arch {
            return None;
        }
        let wv = want.variant.as_deref().unwrap_or("");
        let hv = have.variant.as_deref().unwrap_or("");
        if wv == hv {
            return Some(0);
        }
        match want.arch.as_str() {
            // Older variants run on newer CPUs; an unspecified one is the baseline.
            "arm" | "amd64" => {
                let base = if want.arch == "arm" { 5 } else { 1 };
                let w = variant_number(wv).unwrap_or(base);
                let h = if hv.is_empty() {
                    Some(base)
                } else {
                    variant_number(hv)
                };
                match h {
                    Some(h) if h <= w => Some(1 + w - h),
                    _ => None,
                }
            }
            // Unknown variant rules: only an unspecified side is compatible.
            _ if wv.is_empty() || hv.is_empty() => Some(1),
            _ => None,
        }
    }
}

fn variant_number(v: &str) -> Option<u32> {
    v.strip_prefix('v').unwrap_or(v).parse().ok()
}

fn normalize_os(os: &str) -> String {
    let lower = os.to_lowercase();
    if lower == "macos" {
        "darwin".to_owned()
    } else {
        lower
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_lowercase();
    let variant = variant.to_lowercase();
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    /// Parses `os/arch[/variant]`, or a bare `arch` (the host OS is assumed).
    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let bad = || PlatformError::InvalidFormat {
            input: s.to_owned(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || p.contains(char::is_whitespace))
        {
            return Err(bad());
        }
        match parts.as_slice() {
            [arch] => Ok(Platform::new(std::env::consts::OS, arch, None)),
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm/6").to_string(), "linux/arm/v6");
        assert_eq!(p("amd64").to_string(), "linux/amd64");
        assert!("linux/".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
        assert!("".parse::<Platform>().is_err());
    }

    #[test]
    fn host_is_linux_amd64_here() {
        if cfg!(target_arch = "x86_64") {
            assert_eq!(Platform::host().to_string(), "linux/amd64");
        }
    }

    #[test]
    fn variant_matching() {
        assert_eq!(p("linux/amd64").match_rank(&p("linux/amd64")), Some(0));
        assert_eq!(p("linux/amd64").match_rank(&p("linux/arm64")), None);
        assert_eq!(p("linux/amd64").match_rank(&p("windows/amd64")), None);
        assert_eq!(p("linux/arm64").match_rank(&p("linux/arm64/v8")), Some(0));
        assert_eq!(p("linux/arm/v7").match_rank(&p("linux/arm/v6")), Some(2));
        assert_eq!(p("linux/arm/v6").match_rank(&p("linux/arm/v7")), None);
        assert_eq!(p("linux/amd64").match_rank(&p("linux/amd64/v2")), None);
        assert_eq!(
            p("linux/amd64/v3").match_rank(&p("linux/amd64/v2")),
            Some(2)
        );
        assert_eq!(p("linux/amd64/v3").match_rank(&p("linux/amd64")), Some(3));
        assert_eq!(
            p("linux/riscv64").match_rank(&p("linux/riscv64/rva23")),
            Some(1)
        );
    }
}
