//! Query-string helpers with Docker's conventions: booleans are `1`/`true`
//! (any case) or `0`/`false`/empty; `filters` is JSON, either
//! `{"key": ["v1", "v2"]}` or the older `{"key": {"v1": true}}`.

use std::collections::{BTreeMap, HashMap};

use crate::error::ApiError;

/// Parsed query parameters.
#[derive(Debug, Default, Clone)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m = HashMap::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(decode(k), decode(v));
        }
        Query(m)
    }

    pub fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn bool(&self, k: &str) -> Result<bool, ApiError> {
        match self.0.get(k).map(|s| s.to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v.is_empty() || v == "0" || v == "false" => Ok(false),
            Some(v) if v == "1" || v == "true" => Ok(true),
            Some(v) => Err(ApiError::invalid(format!(
                "invalid boolean value for {k}: {v:?}"
            ))),
        }
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(k) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(format!("invalid value for {k}: {v:?}"))),
        }
    }

    /// The `filters` parameter.
    pub fn filters(&self) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
        let Some(raw) = self.0.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::invalid("invalid filter: not an object"))?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let vals: Vec<String> = match v {
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                serde_json::Value::Object(o) => o
                    .iter()
                    .filter(|(_, b)| b.as_bool() == Some(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                _ => return Err(ApiError::invalid(format!("invalid filter value for {k}"))),
            };
            out.insert(k.clone(), vals);
        }
        Ok(out)
    }
}

/// Percent-decoding with `+` as space.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let q = Query::parse(Some(
            "all=1&limit=5&filters=%7B%22status%22%3A%5B%22running%22%5D%7D&x=True&n=a+b",
        ));
        assert!(q.bool("all").unwrap());
        assert!(q.bool("x").unwrap());
        assert!(!q.bool("missing").unwrap());
        assert_eq!(q.int("limit").unwrap(), Some(5));
        assert_eq!(q.str("n"), Some("a b"));
        assert_eq!(q.filters().unwrap()["status"], vec!["running"]);
        let q = Query::parse(Some(
            "filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D&bad=maybe",
        ));
        assert_eq!(q.filters().unwrap()["label"], vec!["a=b"]);
        assert!(q.bool("bad").is_err());
        assert_eq!(decode("%zz"), "%zz");
    }
}
