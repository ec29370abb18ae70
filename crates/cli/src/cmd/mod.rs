//! Command implementations, by concern; helpers shared by several.

pub mod config;
pub mod container;
pub mod image;
pub mod progress;
pub mod run;
pub mod system;

use serde_json::Value;

use crate::app::Exit;
use crate::format::template::Template;

/// Go's `json.Indent(dst, src, "", "    ")`: re-indents JSON text without
/// reordering keys (docker prints inspect documents this way).
pub fn indent_json(src: &[u8]) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut need_indent = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("    ", depth));
    };
    let text = String::from_utf8_lossy(src);
    for c in text.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    }
    out
}

/// How a command reports a `--format` that does not parse, as docker's
/// does, before asking the daemon anything.
#[derive(Clone, Copy)]
pub enum BadFormat {
    /// `template parsing error: template: NAME:1: ...`, exit 64 (version,
    /// info, inspect).
    Exit64(&'static str),
    /// `Error parsing format: template: :1: ...`, exit 64 (events).
    Events,
    /// `failed to parse template: template: :1: ...`, exit 1 (ps).
    Ps,
}

/// Checks a `--format` template (`json` and table forms excepted) first.
pub fn check_format(format: Option<&str>, how: BadFormat) -> anyhow::Result<()> {
    let Some(f) = format.filter(|f| !f.is_empty() && *f != "json" && *f != "table") else {
        return Ok(());
    };
    let body = f.strip_prefix("table").unwrap_or(f);
    let name = match how {
        BadFormat::Exit64(n) => n,
        _ => "",
    };
    match Template::parse_named(name, body) {
        Ok(_) => Ok(()),
        Err(e) => Err(match how {
            BadFormat::Exit64(_) => crate::app::Exit::with(64, e.to_string()),
            BadFormat::Events => {
                crate::app::Exit::with(64, format!("Error parsing format: {}", e.go_text()))
            }
            BadFormat::Ps => anyhow::anyhow!("failed to parse template: {}", e.go_text()),
        }),
    }
}

/// Prints inspect results: the raw documents as an indented JSON array, or
/// the template per item. `errors` are printed after, and make the exit
/// status 1.
pub fn print_inspect(
    items: &[(Value, bytes::Bytes)],
    format: Option<&str>,
    errors: &[String],
) -> anyhow::Result<()> {
    match format {
        None | Some("") | Some("json") => {
            let mut joined = Vec::from(&b"["[..]);
            for (i, (_, raw)) in items.iter().enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(raw);
            }
            joined.push(b']');
            println!("{}", indent_json(&joined));
        }
        Some(f) => {
            let t = Template::parse(f)?;
            let mut out = String::new();
            for (v, _) in items {
                out.push_str(&t.render(v)?);
                out.push('\n');
            }
            print!("{out}");
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    for e in errors {
        eprintln!("{e}");
    }
    Err(Exit::code(1))
}

/// Asks docker's "Are you sure you want to continue? [y/N]".
pub fn confirm(warning: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead as _, Write as _};
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    // Declining is not an error: docker exits 0 and prints nothing more.
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_as_go() {
        let raw = br#"{"Id":"a","Empty":{},"L":[],"Env":["A=1","B=\"x, y\""],"N":{"k":1}}"#;
        assert_eq!(
            indent_json(raw),
            "{\n    \"Id\": \"a\",\n    \"Empty\": {},\n    \"L\": [],\n    \"Env\": [\n        \"A=1\",\n        \"B=\\\"x, y\\\"\"\n    ],\n    \"N\": {\n        \"k\": 1\n    }\n}"
        );
        assert_eq!(indent_json(b"[]"), "[]");
    }
}
