//! Bearer tokens: the token server's answer and a cache keyed by scope.
//!
//! The token server (the `realm` of a Bearer challenge) answers
//! `{"token": ..., "expires_in": 300}`; some servers name the field
//! `access_token`, and `expires_in` defaults to 60 seconds when absent.
//! [`TokenCache`] keeps one token per (realm, service, scopes) and reports it
//! stale a little before it expires (a fifth of its lifetime, at most 30 s),
//! so a request never goes out with a token about to lapse.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lifetime assumed when the token server does not send `expires_in`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Why a token server's answer is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The body is not the expected JSON object.
    #[error("token server {realm} returned an invalid response")]
    InvalidJson {
        realm: String,
        #[source]
        source: serde_json::Error,
    },
    /// Neither `token` nor `access_token` is present and non-empty.
    #[error("token server {realm} returned no token")]
    MissingToken { realm: String },
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token and how long it is valid from the moment it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The opaque token sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// Its lifetime.
    pub expires_in: Duration,
}

/// Parses a token server response body.
pub fn parse_token_response(realm: &str, body: &[u8]) -> Result<IssuedToken, TokenError> {
    let r: TokenResponse =
        serde_json::from_slice(body).map_err(|source| TokenError::InvalidJson {
            realm: realm.to_owned(),
            source,
        })?;
    let token = r
        .token
        .filter(|t| !t.is_empty())
        .or(r.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| TokenError::MissingToken {
            realm: realm.to_owned(),
        })?;
    let expires_in = match r.expires_in {
        Some(0) | None => DEFAULT_TOKEN_LIFETIME,
        Some(s) => Duration::from_secs(s),
    };
    Ok(IssuedToken { token, expires_in })
}

/// Identifies a token: the realm and service of the challenge and the
/// sorted, de-duplicated scopes it was requested for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    realm: String,
    service: Option<String>,
    scopes: Vec<String>,
}

impl TokenKey {
    /// Builds a key; scope order does not matter.
    pub fn new(realm: &str, service: Option<&str>, scopes: &[String]) -> TokenKey {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        TokenKey {
            realm: realm.to_owned(),
            service: service.map(str::to_owned),
            scopes,
        }
    }
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Tokens by key, each dropped shortly before it expires.
#[derive(Default)]
pub struct TokenCache {
    map: Mutex<HashMap<TokenKey, Cached>>,
}

impl TokenCache {
    /// A fresh (non-stale) token for `key`, if cached.
    pub fn get(&self, key: &TokenKey) -> Option<String> {
        self.get_at(key, Instant::now())
    }

    fn get_at(&self, key: &TokenKey, now: Instant) -> Option<String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// Stores a token received at `received`.
    pub fn insert(&self, key: TokenKey, token: &IssuedToken, received: Instant) {
        let margin = (token.expires_in / 5).min(Duration::from_secs(30));
        let refresh_at = received + token.expires_in.saturating_sub(margin);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            key,
            Cached {
                token: token.token.clone(),
                refresh_at,
            },
        );
    }

    /// Forgets a token (the registry rejected it).
    pub fn remove(&self, key: &TokenKey) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_forms() {
        let t = parse_token_response("r", br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!(t.token, "abc");
        assert_eq!(t.expires_in, Duration::from_secs(300));
        let t = parse_token_response("r", br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!(t.token, "xyz");
        assert_eq!(t.expires_in, DEFAULT_TOKEN_LIFETIME);
        let t = parse_token_response(
            "r",
            br#"{"token":"","access_token":"x2","issued_at":"2020"}"#,
        )
        .unwrap();
        assert_eq!(t.token, "x2");
        assert!(matches!(
            parse_token_response("r", br#"{"expires_in":5}"#),
            Err(TokenError::MissingToken { .. })
        ));
        assert!(matches!(
            parse_token_response("r", b"<html>"),
            Err(TokenError::InvalidJson { .. })
        ));
    }

    #[test]
    fn cache_refreshes_before_expiry() {
        let cache = TokenCache::default();
        let key = TokenKey::new("realm", Some("svc"), &["b".into(), "a".into(), "a".into()]);
        assert_eq!(
            key,
            TokenKey::new("realm", Some("svc"), &["a".into(), "b".into()])
        );
        let t0 = Instant::now();
        cache.insert(
            key.clone(),
            &IssuedToken {
                token: "tok".into(),
                expires_in: Duration::from_secs(60),
            },
            t0,
        );
        assert_eq!(
            cache.get_at(&key, t0 + Duration::from_secs(47)).as_deref(),
            Some("tok")
        );
        // 60 s lifetime, 12 s margin: stale from 48 s on.
        assert_eq!(cache.get_at(&key, t0 + Duration::from_secs(48)), None);
        let other = TokenKey::new("realm", None, &["a".into()]);
        assert_eq!(cache.get_at(&other, t0), None);
        cache.remove(&key);
        assert_eq!(cache.get_at(&key, t0), None);
    }
}
