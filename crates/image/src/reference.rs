//! Image references (`busybox`, `user/app:1.0`, `host:5000/a/b@sha256:...`),
//! parsed and normalised the way Docker's `distribution/reference` package does.
//!
//! [`Reference::parse`] is what `docker pull NAME` does: normalise the name
//! (`busybox` → `docker.io/library/busybox`) and add the `latest` tag when
//! neither a tag nor a digest is given. [`Reference::parse_normalized`] does
//! the same without the default tag. `Display` prints the full form
//! (`docker.io/library/busybox:latest`); [`Reference::familiar_name`] and
//! [`Reference::familiar_string`] print what Docker shows users (`busybox`).
//!
//! Grammar (same as Docker's):
//! - the first `/`-separated component is a domain when it contains `.` or
//!   `:`, is `localhost`, or contains an uppercase letter; otherwise the
//!   domain is `docker.io` and single-component names get `library/`;
//! - domain: `host[:port]`, host being DNS labels joined by `.` (case
//!   allowed) or a bracketed IPv6 address;
//! - path components: `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`;
//! - tag: `[\w][\w.-]{0,127}`; digest: `algorithm:hex` (sha256 only);
//! - the full name (domain and path) is at most 255 characters.
//!
//! Error messages are Docker's, so CLI users see the text they know.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry domain names without an explicit domain belong to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy spelling of [`DEFAULT_DOMAIN`], normalised away.
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace official images live in on Docker Hub.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag added by [`Reference::parse`] when none is given.
pub const DEFAULT_TAG: &str = "latest";
/// Maximum length of the full repository name (domain and path).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a valid image reference. Messages match Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not follow the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat { input: String },
    /// The reference would be valid in lowercase (full-form parse).
    #[error("invalid reference format: repository name must be lowercase")]
    NameContainsUppercase { input: String },
    /// The repository part of a familiar name contains uppercase letters.
    #[error("invalid reference format: repository name ({remote}) must be lowercase")]
    RemoteNameUppercase { input: String, remote: String },
    /// The empty string.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// Domain plus path longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong { input: String },
    /// A bare 64-hex string, which Docker reserves for image IDs.
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexName { input: String },
    /// The digest part is well formed but unusable (unknown algorithm, length).
    #[error("invalid digest in reference {input:?}")]
    Digest {
        input: String,
        #[source]
        source: DigestError,
    },
}

/// A normalised image reference: domain, path, optional tag, optional digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises like `docker pull`: default domain and
    /// `library/` prefix, and tag `latest` when neither tag nor digest is set.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Self::parse_normalized(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Parses and normalises a familiar or full reference without adding a
    /// default tag (Docker's `ParseNormalizedNamed`).
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::HexName {
                input: s.to_owned(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder[..],
        };
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::RemoteNameUppercase {
                input: s.to_owned(),
                remote: remote.to_owned(),
            });
        }
        Self::parse_full(&format!("{domain}/{remainder}")).map_err(|e| match e {
            // Report errors against what the user typed.
            ReferenceError::InvalidFormat { .. } => ReferenceError::InvalidFormat {
                input: s.to_owned(),
            },
            other => other,
        })
    }

    /// Parses a reference that must already carry its domain
    /// (`docker.io/library/busybox:latest`); no normalisation, no default tag.
    pub fn parse_full(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        match parse_grammar(s) {
            Ok(parts) => parts.into_reference(s),
            Err(()) => {
                let lower = s.to_lowercase();
                if lower != s && parse_grammar(&lower).is_ok() {
                    Err(ReferenceError::NameContainsUppercase {
                        input: s.to_owned(),
                    })
                } else {
                    Err(ReferenceError::InvalidFormat {
                        input: s.to_owned(),
                    })
                }
            }
        }
    }

    /// Registry domain, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Full repository name, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Same repository with this tag (the digest is kept).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidFormat {
                input: tag.to_owned(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// Same repository pinned to a digest (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Same repository without tag and digest.
    pub fn name_only(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The shortest name Docker shows: `busybox`, `user/app`, `host:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Familiar name with tag and digest, e.g. `busybox:latest`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

/// Docker's `splitDockerDomain`: returns (domain, remainder).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            let is_domain =
                first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first;
            if is_domain {
                (first.to_owned(), name[i + 1..].to_owned())
            } else {
                (DEFAULT_DOMAIN.to_owned(), name.to_owned())
            }
        }
        None => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl Parts<'_> {
    fn into_reference(self, input: &str) -> Result<Reference, ReferenceError> {
        if self.domain.len() + 1 + self.path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong {
                input: input.to_owned(),
            });
        }
        let digest = match self.digest {
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|source| ReferenceError::Digest {
                        input: input.to_owned(),
                        source,
                    })?,
            ),
            None => None,
        };
        Ok(Reference {
            domain: self.domain.to_owned(),
            path: self.path.to_owned(),
            tag: self.tag.map(str::to_owned),
            digest,
        })
    }
}

/// Matches `domain/path[:tag][@digest]` where the domain is required.
fn parse_grammar(s: &str) -> Result<Parts<'_>, ()> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            if !is_digest_syntax(d) {
                return Err(());
            }
            (r, Some(d))
        }
        None => (s, None),
    };
    let slash = rest.find('/').ok_or(())?;
    let domain = &rest[..slash];
    let after = &rest[slash + 1..];
    let (path, tag) = match after.rfind(':') {
        Some(i) => (&after[..i], Some(&after[i + 1..])),
        None => (after, None),
    };
    if !is_domain(domain) || !path.split('/').all(is_path_component) {
        return Err(());
    }
    if let Some(t) = tag
        && !is_tag(t)
    {
        return Err(());
    }
    Ok(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
pub(crate) fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run, followed by an alnum (guaranteed by the end check)
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]` where host is a DNS name (any case) or `[ipv6]`.
fn is_domain(d: &str) -> bool {
    let (host, port) = if d.starts_with('[') {
        match d.find(']') {
            Some(i) => {
                let inner = &d[1..i];
                if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                let rest = &d[i + 1..];
                match rest.strip_prefix(':') {
                    Some(p) => (None, Some(p)),
                    None if rest.is_empty() => (None, None),
                    None => return false,
                }
            }
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    match host {
        None => true,
        Some(h) => h.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        }),
    }
}

/// `[\w][\w.-]{0,127}`
pub(crate) fn is_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|p| {
        let b = p.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("host:5000/a/b:tag"), "host:5000/a/b:tag");
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(full("Example.COM/x"), "Example.COM/x:latest");
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
        assert_eq!(
            full(&format!("name@sha256:{HEX}")),
            format!("docker.io/library/name@sha256:{HEX}")
        );
        assert_eq!(
            full(&format!("name:tag@sha256:{HEX}")),
            format!("docker.io/library/name:tag@sha256:{HEX}")
        );
        assert_eq!(
            full("a__b/c-----d/e.f_g"),
            "docker.io/a__b/c-----d/e.f_g:latest"
        );
    }

    #[test]
    fn familiar_names() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar_name();
        assert_eq!(f("busybox"), "busybox");
        assert_eq!(f("docker.io/library/busybox:1"), "busybox");
        assert_eq!(f("user/app"), "user/app");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b");
        assert_eq!(f("host:5000/a/b:tag"), "host:5000/a/b");
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar_string(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse_normalized("busybox")
                .unwrap()
                .familiar_string(),
            "busybox"
        );
    }

    #[test]
    fn docker_error_messages() {
        let e = |s: &str| Reference::parse(s).unwrap_err().to_string();
        assert_eq!(
            e("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            e("user/App"),
            "invalid reference format: repository name (user/App) must be lowercase"
        );
        assert_eq!(e("busybox:"), "invalid reference format");
        assert_eq!(e("busy box"), "invalid reference format");
        assert_eq!(e("-busybox"), "invalid reference format");
        assert_eq!(e("a//b"), "invalid reference format");
        assert_eq!(e("a/b/"), "invalid reference format");
        assert_eq!(e("a_-b"), "invalid reference format");
        assert_eq!(e("a___b"), "invalid reference format");
        assert_eq!(
            e(&format!("busybox:{}", "t".repeat(129))),
            "invalid reference format"
        );
        assert_eq!(e("busybox:-tag"), "invalid reference format");
        assert_eq!(e("host:port/x"), "invalid reference format");
        assert_eq!(e(""), "invalid reference format");
        assert_eq!(
            Reference::parse_full("").unwrap_err().to_string(),
            "repository name must have at least one component"
        );
        assert_eq!(
            e(HEX),
            format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
        );
        assert_eq!(
            e(&format!("a/{}", "b".repeat(250))),
            "repository name must not be more than 255 characters"
        );
        assert!(matches!(
            Reference::parse(&format!("busybox@sha512:{}", "a".repeat(128))),
            Err(ReferenceError::Digest {
                source: DigestError::UnsupportedAlgorithm { .. },
                ..
            })
        ));
        assert_eq!(e("busybox@sha256:abc"), "invalid reference format");
        assert_eq!(
            Reference::parse_full("docker.io/library/Busybox")
                .unwrap_err()
                .to_string(),
            "invalid reference format: repository name must be lowercase"
        );
    }

    #[test]
    fn tag_and_digest_accessors() {
        let r = Reference::parse(&format!("localhost:5000/a/b:v1@sha256:{HEX}")).unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.name_only().to_string(), "localhost:5000/a/b");
        assert_eq!(
            r.name_only().with_tag("v2").unwrap().to_string(),
            "localhost:5000/a/b:v2"
        );
        assert!(r.with_tag("bad tag").is_err());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn component() -> impl Strategy<Value = String> {
            "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}"
        }

        fn domain() -> impl Strategy<Value = Option<String>> {
            prop_oneof![
                Just(None),
                Just(Some("localhost".to_owned())),
                "[a-z0-9]{1,8}\\.[a-z]{2,5}".prop_map(Some),
                ("[a-z0-9]{1,8}", 1u16..65535).prop_map(|(h, p)| Some(format!("{h}:{p}"))),
            ]
        }

        proptest! {
            #[test]
            fn full_form_round_trips(
                dom in domain(),
                comps in proptest::collection::vec(component(), 1..4),
                tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
                hex in proptest::option::of("[0-9a-f]{64}"),
            ) {
                let mut s = String::new();
                if let Some(d) = &dom { s.push_str(d); s.push('/'); }
                s.push_str(&comps.join("/"));
                if let Some(t) = &tag { s.push(':'); s.push_str(t); }
                if let Some(h) = &hex { s.push_str("@sha256:"); s.push_str(h); }
                prop_assume!(s.len() < 200);
                // without a domain, a first component with '.' would be taken as one
                prop_assume!(dom.is_some() || comps.len() == 1 || !comps[0].contains('.'));
                let r = Reference::parse(&s).unwrap();
                // full form parses back to the same value
                let again = Reference::parse_full(&r.to_string()).unwrap();
                prop_assert_eq!(&again, &r);
                // familiar form normalises back to the same value
                let fam = Reference::parse(&r.familiar_string()).unwrap();
                prop_assert_eq!(&fam, &r);
                prop_assert_eq!(r.tag().map(str::to_owned), tag.clone().or(if hex.is_none() { Some("latest".into()) } else { None }));
            }

            #[test]
            fn never_panics(s in "\\PC{0,80}") {
                let _ = Reference::parse(&s);
            }

            #[test]
            fn uppercase_path_is_rejected(c in "[a-z]{1,5}[A-Z][a-z]{0,5}") {
                let s = format!("user/{c}");
                let is_uppercase_error = matches!(Reference::parse(&s), Err(ReferenceError::RemoteNameUppercase { .. }));
                prop_assert!(is_uppercase_error);
            }
        }
    }
}
