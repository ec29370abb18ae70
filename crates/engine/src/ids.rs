//! Object identifiers: 64 lowercase hex characters from the kernel's random
//! source, never all-digits (Docker avoids IDs that parse as numbers, which
//! some tools would mangle), and the 12-character short form.

use std::io::Read as _;

/// Length of the short ID shown by `ps`.
pub const SHORT_ID_LEN: usize = 12;

/// `n` random bytes from `/dev/urandom`.
pub fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// A fresh 64-hex ID.
pub fn new_id() -> std::io::Result<String> {
    loop {
        let id = hex::encode(random_bytes(32)?);
        if !id[..SHORT_ID_LEN].bytes().all(|b| b.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

/// The first 12 characters of an ID.
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(SHORT_ID_LEN)]
}

/// Whether `s` is a full 64-hex ID.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_full_id(&a) && is_full_id(&b));
        assert_ne!(a, b);
        assert_eq!(short_id(&a).len(), 12);
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert!(!is_full_id("xyz"));
    }
}
