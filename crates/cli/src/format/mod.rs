//! Output formatting as docker prints it: Go-template `--format`
//! ([`template`]), tabwriter tables ([`tabwriter`]), sizes ([`units`]),
//! times ([`human`]), and the table/format driver shared by the listing
//! commands ([`Output`]).

pub mod human;
pub mod tabwriter;
pub mod template;
pub mod units;

use std::collections::BTreeMap;

use serde_json::Value;

use template::{Methods, Template, TemplateError};

/// Truncated IDs: the first 12 hex digits, without `sha256:`.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote` for the common cases (printable text).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How a listing command prints its rows: a table (default or
/// `table ...`), a raw template per row, or `json` (one object per row).
pub struct Output {
    template: Template,
    table: bool,
}

impl Output {
    /// `format` is the `--format` value (`""` = `default_table`); `quiet`
    /// means `{{.ID}}`.
    pub fn new(format: &str, default_table: &str, quiet: bool) -> Result<Output, TemplateError> {
        let src = if quiet {
            "{{.ID}}".to_owned()
        } else {
            match format {
                "" | "table" => default_table.to_owned(),
                "json" => "{{json .}}".to_owned(),
                f => f.to_owned(),
            }
        };
        let table = src.starts_with("table");
        let body = src.strip_prefix("table").unwrap_or(&src).trim_matches(' ');
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        Ok(Output {
            template: Template::parse(&body)?,
            table,
        })
    }

    /// Renders rows (each a JSON object, with its own methods).
    pub fn render<R: Methods>(
        &self,
        headers: &BTreeMap<&str, &str>,
        rows: &[(Value, R)],
    ) -> Result<String, TemplateError> {
        let mut text = String::new();
        if self.table {
            text.push_str(&self.template.header(headers));
            text.push('\n');
        }
        for (v, m) in rows {
            text.push_str(&self.template.render_row(v, m)?);
            text.push('\n');
        }
        if self.table {
            Ok(tabwriter::align(&text))
        } else {
            Ok(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use template::NoMethods;

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(
            ellipsis("sleep 1000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(ellipsis("sh", 20), "sh");
        assert_eq!(go_quote("echo \"hi\""), "\"echo \\\"hi\\\"\"");
    }

    #[test]
    fn table_and_custom_formats() {
        let h = BTreeMap::from([("ID", "CONTAINER ID"), ("Names", "NAMES")]);
        let rows = vec![(serde_json::json!({"ID": "abc", "Names": "web"}), NoMethods)];
        let o = Output::new("", "table {{.ID}}\t{{.Names}}", false).unwrap();
        assert_eq!(
            o.render(&h, &rows).unwrap(),
            "CONTAINER ID   NAMES\nabc            web\n"
        );
        let o = Output::new("{{.Names}}", "table {{.ID}}", false).unwrap();
        assert_eq!(o.render(&h, &rows).unwrap(), "web\n");
        let o = Output::new("table {{.Names}}\\t{{.ID}}", "", false).unwrap();
        assert_eq!(
            o.render(&h, &rows).unwrap(),
            "NAMES     CONTAINER ID\nweb       abc\n"
        );
        let o = Output::new("json", "", false).unwrap();
        assert_eq!(
            o.render(&h, &rows).unwrap(),
            "{\"ID\":\"abc\",\"Names\":\"web\"}\n"
        );
        let o = Output::new("{{.Names}}", "", true).unwrap();
        assert_eq!(o.render(&h, &rows).unwrap(), "abc\n");
    }
}
