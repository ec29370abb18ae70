//! Content digests (`sha256:<64 lowercase hex>`), the identity of every blob,
//! manifest, config, diff ID and chain ID in wharf.
//!
//! Only sha256 is supported for now: parsing any other algorithm fails with
//! [`DigestError::UnsupportedAlgorithm`] rather than being silently accepted,
//! so a registry serving `sha512:` content gets a clear error instead of an
//! unverified pull. [`Hasher`] computes digests incrementally for streams.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Why a string is not a digest wharf can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `algorithm:` prefix, or an algorithm name with invalid characters.
    #[error("invalid digest format: {input:?}")]
    InvalidFormat { input: String },
    /// A well-formed digest whose algorithm wharf does not implement.
    #[error("unsupported digest algorithm {algorithm:?} in {input:?} (only sha256 is supported)")]
    UnsupportedAlgorithm { algorithm: String, input: String },
    /// The hex part has the wrong length for sha256 (64).
    #[error("invalid checksum digest length in {input:?}: sha256 needs 64 hex characters")]
    InvalidLength { input: String },
    /// The hex part contains characters outside `[a-f0-9]`.
    #[error("invalid checksum digest format in {input:?}: sha256 needs lowercase hex")]
    InvalidHex { input: String },
}

/// A sha256 content digest. Displays and serializes as `sha256:<hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The only algorithm wharf supports.
    pub const ALGORITHM: &'static str = "sha256";

    /// Digest of a byte slice.
    pub fn from_bytes(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    /// Builds a digest from a 64-character lowercase hex string (no prefix).
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        Self::validate_hex(hex, hex)?;
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }

    fn validate_hex(hex: &str, input: &str) -> Result<(), DigestError> {
        if hex.len() != 64 {
            return Err(DigestError::InvalidLength {
                input: input.to_owned(),
            });
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::InvalidHex {
                input: input.to_owned(),
            });
        }
        Ok(())
    }

    /// The algorithm name (`sha256`).
    pub fn algorithm(&self) -> &'static str {
        Self::ALGORITHM
    }

    /// The 64 lowercase hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as Docker shows image IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::InvalidFormat {
                input: s.to_owned(),
            });
        };
        // go-digest's algorithm grammar: [a-z0-9]+(?:[.+_-][a-z0-9]+)*
        let alg_ok = !alg.is_empty()
            && alg.split(['.', '+', '_', '-']).all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !alg_ok {
            return Err(DigestError::InvalidFormat {
                input: s.to_owned(),
            });
        }
        if alg != Self::ALGORITHM {
            return Err(DigestError::UnsupportedAlgorithm {
                algorithm: alg.to_owned(),
                input: s.to_owned(),
            });
        }
        Self::validate_hex(hex, s)?;
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 over a stream; `finish` yields the [`Digest`].
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher(sha256)")
    }
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Hasher {
        Hasher {
            inner: Sha256::new(),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The digest of everything fed so far (the hasher is left unchanged).
    pub fn digest(&self) -> Digest {
        self.clone().finish()
    }

    /// Consumes the hasher.
    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.inner.finalize()),
        }
    }
}

/// A reader adapter that hashes everything read through it and counts bytes.
///
/// Used to compute diff IDs while applying a layer, and usable by a pull to
/// verify the compressed digest while the same bytes are decompressed.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: std::io::Read> HashingReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Digest of the bytes read so far.
    pub fn digest(&self) -> Digest {
        self.hasher.digest()
    }

    /// The inner reader; bytes read through it directly are not hashed.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Returns the inner reader, the digest and the byte count.
    pub fn finish(self) -> (R, Digest, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let d = Digest::from_bytes(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn rejects_bad_digests() {
        let hex64 = "a".repeat(64);
        assert!(matches!(
            format!("sha512:{}", "a".repeat(128)).parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            "sha256:abc".parse::<Digest>(),
            Err(DigestError::InvalidLength { .. })
        ));
        assert!(matches!(
            format!("sha256:{}", hex64.to_uppercase()).parse::<Digest>(),
            Err(DigestError::InvalidHex { .. })
        ));
        assert!(matches!(
            hex64.parse::<Digest>(),
            Err(DigestError::InvalidFormat { .. })
        ));
        assert!(matches!(
            format!("SHA256:{hex64}").parse::<Digest>(),
            Err(DigestError::InvalidFormat { .. })
        ));
    }

    #[test]
    fn hashing_reader_counts_and_hashes() {
        let mut r = HashingReader::new(&b"hello world"[..]);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut out).unwrap();
        let (_, d, n) = r.finish();
        assert_eq!(n, 11);
        assert_eq!(d, Digest::from_bytes(b"hello world"));
    }
}
