//! Container names: validation with Docker's grammar and the generator of
//! `adjective_surname` names for containers created without `--name`.
//!
//! Names are stored with a leading `/` (Docker's form, shown by `inspect`);
//! users may give them with or without it. The word lists are wharf's own:
//! adjectives describing a mood, surnames of people who shaped computing and
//! science.

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ardent", "balmy", "blissful", "bold", "brave", "breezy", "bright", "calm",
    "candid", "cheerful", "clever", "cosmic", "crisp", "curious", "daring", "dazzling", "deft",
    "devout", "eager", "earnest", "elated", "epic", "fearless", "fervent", "festive", "fond",
    "frosty", "gallant", "gentle", "gifted", "glad", "golden", "gracious", "hardy", "hearty",
    "honest", "humble", "jolly", "jovial", "keen", "kind", "lively", "loyal", "lucid", "lucky",
    "merry", "mellow", "mindful", "modest", "nimble", "noble", "patient", "peaceful", "placid",
    "plucky", "polite", "proud", "quiet", "quirky", "radiant", "rapid", "serene", "sharp", "shiny",
    "silent", "sleepy", "snappy", "sober", "solid", "spry", "steady", "stoic", "sunny", "swift",
    "tender", "tidy", "trusty", "upbeat", "valiant", "vivid", "warm", "wise", "witty", "zealous",
    "zen",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "allen",
    "babbage",
    "backus",
    "bartik",
    "bell",
    "berners",
    "boole",
    "borg",
    "cerf",
    "church",
    "codd",
    "conway",
    "cray",
    "curie",
    "dijkstra",
    "easley",
    "engelbart",
    "euclid",
    "euler",
    "fermat",
    "feynman",
    "floyd",
    "franklin",
    "gauss",
    "goldberg",
    "hamilton",
    "hamming",
    "hawking",
    "hopper",
    "huffman",
    "hypatia",
    "jemison",
    "johnson",
    "kahan",
    "kernighan",
    "kilby",
    "knuth",
    "lamarr",
    "lamport",
    "lovelace",
    "mccarthy",
    "meitner",
    "minsky",
    "moore",
    "napier",
    "neumann",
    "newton",
    "noether",
    "noyce",
    "pascal",
    "perlman",
    "pike",
    "planck",
    "ramanujan",
    "ritchie",
    "shannon",
    "shaw",
    "sinoussi",
    "somerville",
    "stallman",
    "sutherland",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "wilkes",
    "wing",
    "wirth",
    "wozniak",
    "yalow",
    "yonath",
];

/// A random `adjective_surname`; `retry > 0` appends a digit, as Docker does
/// after a collision.
pub fn generate(retry: u32) -> String {
    let r = crate::ids::random_bytes(4).unwrap_or_else(|_| vec![0, 1, 2, 3]);
    let a = usize::from(r[0]) << 8 | usize::from(r[1]);
    let s = usize::from(r[2]) << 8 | usize::from(r[3]);
    let name = format!(
        "{}_{}",
        ADJECTIVES[a % ADJECTIVES.len()],
        SURNAMES[s % SURNAMES.len()]
    );
    if retry > 0 {
        format!("{name}{}", r[0] % 10)
    } else {
        name
    }
}

/// Whether `name` (without the leading `/`) is a valid container name:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `name` in the stored form, with exactly one leading `/`.
pub fn canonical(name: &str) -> String {
    format!("/{}", name.strip_prefix('/').unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for i in 0..50 {
            let n = generate(i % 2);
            assert!(is_valid(&n), "{n}");
            assert!(n.contains('_'));
        }
    }

    #[test]
    fn validation() {
        assert!(is_valid("web1"));
        assert!(is_valid("a.b-c_d"));
        assert!(!is_valid("a"));
        assert!(!is_valid("-ab"));
        assert!(!is_valid("a b"));
        assert!(!is_valid("a/b"));
        assert_eq!(canonical("x"), "/x");
        assert_eq!(canonical("/x"), "/x");
    }
}
