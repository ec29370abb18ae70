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

/// Prints inspect results: indented JSON array, or the template per item.
/// `errors` are printed after, and make the exit status 1.
pub fn print_inspect(
    items: &[Value],
    format: Option<&str>,
    errors: &[String],
) -> anyhow::Result<()> {
    match format {
        None | Some("") | Some("json") => {
            let text = serde_json::to_string_pretty(&Value::Array(items.to_vec()))?;
            // Go's MarshalIndent uses a tab; docker prints with 4 spaces.
            println!("{text}");
        }
        Some(f) => {
            let t = Template::parse(f)?;
            let mut out = String::new();
            for v in items {
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
    let yes = matches!(line.trim().to_lowercase().as_str(), "y" | "yes");
    if !yes {
        return Err(Exit::code(1));
    }
    Ok(yes)
}
