//! `--change` instructions of `docker import` and `docker commit`: the
//! Dockerfile instructions that only edit the image config (CMD,
//! ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER,
//! VOLUME, WORKDIR), applied to a [`ContainerConfig`] in order. Others
//! (RUN, FROM, COPY, and HEALTHCHECK, whose flags this does not parse) are
//! refused.

use super::OpsError;
use crate::manifest::ContainerConfig;
use crate::manifest::config::EmptyObject;

/// Applies each change (e.g. `CMD ["sh"]`, `ENV A=1 B=2`, `EXPOSE 80/udp`).
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), OpsError> {
    let mut cmd_set = false;
    for change in changes {
        apply_one(config, change, &mut cmd_set)?;
    }
    Ok(())
}

fn invalid(change: &str, reason: impl Into<String>) -> OpsError {
    OpsError::InvalidChange {
        change: change.to_owned(),
        reason: reason.into(),
    }
}

fn apply_one(
    config: &mut ContainerConfig,
    change: &str,
    cmd_set: &mut bool,
) -> Result<(), OpsError> {
    let trimmed = change.trim();
    let (word, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (trimmed, ""),
    };
    let word = word.to_ascii_uppercase();
    if rest.is_empty() && word != "CMD" && word != "ENTRYPOINT" {
        return Err(invalid(change, format!("{word} requires an argument")));
    }
    match word.as_str() {
        "CMD" => {
            config.cmd = Some(command(change, rest, config)?);
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            config.entrypoint = Some(command(change, rest, config)?);
            // As in a Dockerfile: ENTRYPOINT drops an inherited CMD, not
            // one these changes set.
            if !*cmd_set {
                config.cmd = None;
            }
        }
        "SHELL" => config.shell = Some(json_array(change, rest)?),
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs(change, rest)? {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(Default::default);
            for (k, v) in pairs(change, rest)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(Default::default);
            for p in words(change, rest)? {
                let (num, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
                let ok_num = num
                    .split_once('-')
                    .map_or(num.parse::<u16>().is_ok(), |(a, b)| {
                        a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok()
                    });
                let proto = proto.to_ascii_lowercase();
                if !ok_num || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(invalid(change, format!("invalid port {p:?}")));
                }
                ports.insert(format!("{num}/{proto}"), EmptyObject {});
            }
        }
        "VOLUME" => {
            let list = if rest.starts_with('[') {
                json_array(change, rest)?
            } else {
                words(change, rest)?
            };
            let vols = config.volumes.get_or_insert_with(Default::default);
            for v in list {
                vols.insert(v, EmptyObject {});
            }
        }
        "USER" => config.user = Some(rest.to_owned()),
        "WORKDIR" => {
            let base = config.working_dir.clone().unwrap_or_else(|| "/".into());
            config.working_dir = Some(if rest.starts_with('/') {
                rest.to_owned()
            } else {
                format!("{}/{rest}", base.trim_end_matches('/'))
            });
        }
        "STOPSIGNAL" => config.stop_signal = Some(rest.to_owned()),
        "ONBUILD" => config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(rest.to_owned()),
        other => {
            return Err(invalid(
                change,
                format!("{other} is not a valid change command"),
            ));
        }
    }
    Ok(())
}

/// Exec form (`["a","b"]`) as is; shell form through the image's shell
/// (`/bin/sh -c` by default); empty means unset-to-empty.
fn command(change: &str, rest: &str, config: &ContainerConfig) -> Result<Vec<String>, OpsError> {
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return Ok(v);
    }
    if rest.starts_with('[') && serde_json::from_str::<serde_json::Value>(rest).is_ok() {
        return Err(invalid(change, "exec form must be a JSON array of strings"));
    }
    let mut v = config
        .shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    v.push(rest.to_owned());
    Ok(v)
}

fn json_array(change: &str, rest: &str) -> Result<Vec<String>, OpsError> {
    serde_json::from_str(rest).map_err(|_| invalid(change, "expected a JSON array of strings"))
}

/// Splits on whitespace, honouring double and single quotes and `\` escapes.
fn words(change: &str, s: &str) -> Result<Vec<String>, OpsError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                let n = chars
                    .next()
                    .ok_or_else(|| invalid(change, "trailing backslash"))?;
                cur.push(n);
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(invalid(change, "unterminated quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2="v 2"` pairs, or the legacy single pair `k v with spaces`.
fn pairs(change: &str, rest: &str) -> Result<Vec<(String, String)>, OpsError> {
    let first = rest.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| invalid(change, "expected KEY=VALUE or KEY VALUE"))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    words(change, rest)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(invalid(change, format!("{w:?} is not KEY=VALUE"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, OpsError> {
        let mut c = ContainerConfig::default();
        let v: Vec<String> = changes.iter().map(|s| (*s).to_owned()).collect();
        apply_changes(&mut c, &v)?;
        Ok(c)
    }

    #[test]
    fn every_instruction() {
        let c = apply(&[
            "ENV A=1 B=\"two words\"",
            "env A=3",
            "ENV LEGACY some value",
            "ENTRYPOINT [\"/bin/app\"]",
            "CMD --flag x",
            "WORKDIR /srv",
            "WORKDIR data",
            "USER 1000:1000",
            "LABEL a=b \"c d\"=e",
            "EXPOSE 80 53/udp 1000-1001",
            "VOLUME [\"/v1\", \"/v2\"]",
            "STOPSIGNAL SIGQUIT",
            "ONBUILD RUN true",
        ])
        .unwrap();
        assert_eq!(
            c.env.unwrap(),
            vec!["B=two words", "A=3", "LEGACY=some value"]
        );
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/app"]);
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "--flag x"]);
        assert_eq!(c.working_dir.as_deref(), Some("/srv/data"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        let labels = c.labels.unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["c d"], "e");
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["1000-1001/tcp", "53/udp", "80/tcp"]);
        assert_eq!(c.volumes.unwrap().len(), 2);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.on_build.unwrap(), vec!["RUN true"]);
    }

    #[test]
    fn refusals() {
        for bad in [
            "RUN rm -rf /",
            "FROM scratch",
            "EXPOSE http",
            "ENV",
            "LABEL \"unterminated=x",
            "CMD [1, 2]",
        ] {
            assert!(
                matches!(apply(&[bad]), Err(OpsError::InvalidChange { .. })),
                "{bad}"
            );
        }
    }
}
