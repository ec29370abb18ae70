//! `-e`/`--env` and `--env-file` as docker reads them: `KEY=VALUE` is kept
//! as written; a bare `KEY` takes the caller's value when it has one (and
//! is passed through as `KEY` otherwise); env files hold one variable per
//! line, `#` comments and blank lines skipped, leading whitespace trimmed,
//! a name with whitespace refused. Labels and label files follow the same
//! file rules.

use super::OptsError;

/// One `-e` value; `lookup` reads the caller's environment.
pub fn env_value(s: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, OptsError> {
    let (k, has_value) = match s.split_once('=') {
        Some((k, _)) => (k, true),
        None => (s, false),
    };
    if k.is_empty() {
        return Err(OptsError::Message(format!(
            "invalid environment variable: {s}"
        )));
    }
    if has_value {
        return Ok(s.to_owned());
    }
    Ok(match lookup(k) {
        Some(v) => format!("{k}={v}"),
        None => s.to_owned(),
    })
}

/// Parses the text of an env file (`path` only names it in errors).
pub fn parse_env_file(
    path: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, OptsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if name.is_empty() {
            return Err(OptsError::Message(format!(
                "no variable name on line '{line}' of {path} (line {})",
                n + 1
            )));
        }
        if name.contains(char::is_whitespace) {
            return Err(OptsError::Message(format!(
                "variable '{name}' contains whitespaces"
            )));
        }
        match value {
            Some(_) => out.push(line.to_owned()),
            None => {
                if let Some(v) = lookup(name) {
                    out.push(format!("{name}={v}"));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "HOME_X").then(|| "/root".to_owned())
    }

    #[test]
    fn env_flag_values() {
        assert_eq!(env_value("A=1", env).unwrap(), "A=1");
        assert_eq!(env_value("A=", env).unwrap(), "A=");
        assert_eq!(env_value("A=b=c", env).unwrap(), "A=b=c");
        assert_eq!(env_value("HOME_X", env).unwrap(), "HOME_X=/root");
        assert_eq!(env_value("UNSET_X", env).unwrap(), "UNSET_X");
        assert!(env_value("=x", env).is_err());
    }

    #[test]
    fn env_files() {
        let text = "\u{feff}# comment\n\nA=1\n  B=two words\nHOME_X\nUNSET_X\nC=\n";
        assert_eq!(
            parse_env_file("f", text, env).unwrap(),
            vec!["A=1", "B=two words", "HOME_X=/root", "C="]
        );
        assert!(parse_env_file("f", "BAD NAME=1\n", env).is_err());
        assert!(parse_env_file("f", "=1\n", env).is_err());
    }
}
