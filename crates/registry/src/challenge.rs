//! Parsing of `WWW-Authenticate` headers (RFC 7235 challenges) as registries
//! send them on `401 Unauthorized`.
//!
//! A registry answers an unauthenticated `/v2/` ping with either a `Basic`
//! challenge (`Basic realm="..."`) or a `Bearer` challenge naming the token
//! server (`Bearer realm="https://auth/token",service="reg",scope="..."`).
//! [`parse_www_authenticate`] turns one header value, which may hold several
//! comma-separated challenges, into [`Challenge`]s; parameter names are
//! lowercased, values unquoted. The client picks the scheme it supports.

use std::collections::BTreeMap;

/// Why a `WWW-Authenticate` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The value does not follow the `scheme param=value, ...` grammar.
    #[error("malformed WWW-Authenticate header {header:?} at byte {position}")]
    Malformed { header: String, position: usize },
    /// The header is empty or holds no challenge.
    #[error("empty WWW-Authenticate header")]
    Empty,
}

/// The authentication scheme a challenge asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Basic`: send `Authorization: Basic base64(user:pass)`.
    Basic,
    /// `Bearer`: fetch a token from `realm`, send `Authorization: Bearer`.
    Bearer,
    /// Anything else, kept by name (lowercase) and ignored by the client.
    Other(String),
}

/// One challenge: its scheme and its parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme.
    pub scheme: AuthScheme,
    /// Parameters such as `realm`, `service`, `scope`, `error`.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter by (lowercase) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The `realm` parameter: for Bearer, the token server URL.
    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }
}

/// Parses one `WWW-Authenticate` header value into its challenges.
pub fn parse_www_authenticate(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut p = Parser {
        s: header.as_bytes(),
        pos: 0,
        header,
    };
    let mut out = Vec::new();
    loop {
        p.skip_ws_and_commas();
        if p.at_end() {
            break;
        }
        let scheme = p.token().ok_or_else(|| p.malformed())?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "basic" => AuthScheme::Basic,
            "bearer" => AuthScheme::Bearer,
            other => AuthScheme::Other(other.to_owned()),
        };
        let mut params = BTreeMap::new();
        loop {
            let save = p.pos;
            p.skip_ws();
            let Some(name) = p.token() else {
                p.pos = save;
                break;
            };
            p.skip_ws();
            if !p.eat(b'=') {
                // Not a parameter: the start of the next challenge.
                p.pos = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.token().ok_or_else(|| p.malformed())?.to_owned()
            };
            params.insert(name.to_ascii_lowercase(), value);
            p.skip_ws();
            if p.at_end() {
                break;
            }
            if !p.eat(b',') {
                return Err(p.malformed());
            }
        }
        out.push(Challenge { scheme, params });
    }
    if out.is_empty() {
        return Err(ChallengeError::Empty);
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    header: &'a str,
}

impl<'a> Parser<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    /// An RFC 7230 `token` (plus `/` so token68-ish scheme values survive).
    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            let ok = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b);
            if !ok {
                break;
            }
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.header[start..self.pos])
    }

    fn quoted(&mut self) -> Result<String, ChallengeError> {
        let opened = self.eat(b'"');
        debug_assert!(opened);
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.malformed()),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.malformed())?;
                    out.push(c);
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.malformed())
    }

    fn malformed(&self) -> ChallengeError {
        ChallengeError::Malformed {
            header: self.header.to_owned(),
            position: self.pos,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = parse_www_authenticate(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, AuthScheme::Bearer);
        assert_eq!(c[0].realm(), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn basic_and_case_insensitive_names() {
        let c = parse_www_authenticate(r#"basic Realm="basic-realm""#).unwrap();
        assert_eq!(c[0].scheme, AuthScheme::Basic);
        assert_eq!(c[0].realm(), Some("basic-realm"));
    }

    #[test]
    fn several_challenges_and_unquoted_values() {
        let c = parse_www_authenticate(
            r#"Basic realm="r1", Bearer realm="http://127.0.0.1:1/t", service=svc ,error="insufficient_scope", Negotiate"#,
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].scheme, AuthScheme::Basic);
        assert_eq!(c[1].scheme, AuthScheme::Bearer);
        assert_eq!(c[1].param("service"), Some("svc"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        assert_eq!(c[2].scheme, AuthScheme::Other("negotiate".into()));
        assert!(c[2].params.is_empty());
    }

    #[test]
    fn quoted_escapes_and_commas_inside_quotes() {
        let c = parse_www_authenticate(r#"Bearer realm="a\"b", scope="repository:x:pull,push""#)
            .unwrap();
        assert_eq!(c[0].realm(), Some("a\"b"));
        assert_eq!(c[0].param("scope"), Some("repository:x:pull,push"));
    }

    #[test]
    fn malformed_inputs() {
        assert_eq!(parse_www_authenticate("  "), Err(ChallengeError::Empty));
        assert!(matches!(
            parse_www_authenticate(r#"Bearer realm="unterminated"#),
            Err(ChallengeError::Malformed { .. })
        ));
        assert!(matches!(
            parse_www_authenticate(r#"Bearer realm="x" service="y""#),
            Err(ChallengeError::Malformed { .. })
        ));
        assert!(matches!(
            parse_www_authenticate("Bearer realm="),
            Err(ChallengeError::Malformed { .. })
        ));
    }
}
