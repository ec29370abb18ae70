//! `-v/--volume`, `--mount` and `--tmpfs`. A `-v` with a source becomes a
//! `Binds` entry (host path or named volume, the daemon decides); a lone
//! container path is an anonymous volume (`Config.Volumes`). `--mount`'s
//! CSV becomes a `Mounts` entry; `--tmpfs path[:opts]` a `Tmpfs` entry.

use serde_json::{Map, Value, json};

use super::{OptsError, invalid};

/// What a `-v` spec is.
#[derive(Debug, PartialEq, Eq)]
pub enum Volume {
    Bind(String),
    Anonymous(String),
}

/// One `-v` spec.
pub fn volume(spec: &str) -> Result<Volume, OptsError> {
    // docker checks -v after parsing the flags: its message alone.
    if spec.is_empty() {
        return Err(OptsError::Message("invalid empty volume spec".into()));
    }
    let bad = || {
        OptsError::Message(format!(
            "invalid spec: {spec}: invalid volume specification: '{spec}'"
        ))
    };
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [dst] if dst.starts_with('/') => Ok(Volume::Anonymous((*dst).to_owned())),
        [src, dst] | [src, dst, _] if !src.is_empty() && dst.starts_with('/') => {
            if let [_, _, mode] = parts.as_slice() {
                for m in mode.split(',') {
                    if !matches!(
                        m,
                        "ro" | "rw"
                            | "z"
                            | "Z"
                            | "nocopy"
                            | "shared"
                            | "rshared"
                            | "slave"
                            | "rslave"
                            | "private"
                            | "rprivate"
                    ) {
                        return Err(OptsError::Message(format!("invalid mode: {m}")));
                    }
                }
            }
            Ok(Volume::Bind(spec.to_owned()))
        }
        _ => Err(bad()),
    }
}

fn truthy(flag: &str, v: Option<&str>, spec: &str) -> Result<bool, OptsError> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(other) => Err(invalid(
            "--mount",
            spec,
            format!("invalid value for {flag}: {other}"),
        )),
    }
}

/// One `--mount` spec.
pub fn mount(spec: &str) -> Result<Value, OptsError> {
    let mut m = Map::new();
    let mut kind = "volume".to_owned();
    let mut bind = Map::new();
    let mut tmpfs = Map::new();
    let mut volume_opts = Map::new();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| {
            v.map(str::to_owned).ok_or_else(|| {
                invalid(
                    "--mount",
                    spec,
                    format!("invalid field '{field}' must be a key=value pair"),
                )
            })
        };
        if v.is_none() && !matches!(k.as_str(), "readonly" | "ro" | "volume-nocopy") {
            need(v)?;
        }
        match k.as_str() {
            "type" => kind = need(v)?,
            "source" | "src" => {
                m.insert("Source".into(), Value::String(need(v)?));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), Value::String(need(v)?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), Value::Bool(truthy(&k, v, spec)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), Value::String(need(v)?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), Value::String(need(v)?));
            }
            "bind-recursive" => {
                let v = need(v)?;
                match v.as_str() {
                    "enabled" => {}
                    "disabled" => {
                        bind.insert("NonRecursive".into(), Value::Bool(true));
                    }
                    "readonly" => {
                        bind.insert("ReadOnlyForceRecursive".into(), Value::Bool(true));
                    }
                    _ => {
                        return Err(invalid(
                            "--mount",
                            spec,
                            format!("invalid value for bind-recursive: {v}"),
                        ));
                    }
                }
            }
            "tmpfs-size" => {
                let v = need(v)?;
                let n = crate::format::units::ram_in_bytes(&v)
                    .map_err(|e| invalid("--mount", spec, e.to_string()))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let v = need(v)?;
                let n = u32::from_str_radix(&v, 8).map_err(|_| {
                    invalid(
                        "--mount",
                        spec,
                        format!("invalid value for tmpfs-mode: {v}"),
                    )
                })?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            "volume-nocopy" => {
                volume_opts.insert("NoCopy".into(), Value::Bool(truthy(&k, v, spec)?));
            }
            "volume-driver" => {
                volume_opts.insert("DriverConfig".into(), json!({"Name": need(v)?}));
            }
            "volume-label" => {
                let v = need(v)?;
                let (lk, lv) = v.split_once('=').unwrap_or((&v, ""));
                let labels = volume_opts.entry("Labels").or_insert_with(|| json!({}));
                labels[lk] = Value::String(lv.to_owned());
            }
            other => {
                return Err(invalid(
                    "--mount",
                    spec,
                    format!("unexpected key '{other}' in '{field}'"),
                ));
            }
        }
    }
    if !matches!(
        kind.as_str(),
        "bind" | "volume" | "tmpfs" | "image" | "npipe" | "cluster"
    ) {
        return Err(invalid(
            "--mount",
            spec,
            format!("invalid mount type: {kind}"),
        ));
    }
    if !m.contains_key("Target") {
        return Err(invalid("--mount", spec, "target is required"));
    }
    if kind == "bind" && !m.contains_key("Source") {
        return Err(invalid(
            "--mount",
            spec,
            "source is required when specifying bind mounts",
        ));
    }
    if kind == "tmpfs" && m.contains_key("Source") {
        return Err(invalid(
            "--mount",
            spec,
            "source is not supported for tmpfs mounts",
        ));
    }
    m.insert("Type".into(), Value::String(kind));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    if !volume_opts.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(volume_opts));
    }
    Ok(Value::Object(m))
}

/// One `--tmpfs path[:options]`.
pub fn tmpfs(spec: &str) -> Result<(String, String), OptsError> {
    let (path, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !path.starts_with('/') {
        return Err(OptsError::Message(format!("invalid path: {path}")));
    }
    Ok((path.to_owned(), opts.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        assert_eq!(volume("/data").unwrap(), Volume::Anonymous("/data".into()));
        assert_eq!(
            volume("/src:/dst:ro").unwrap(),
            Volume::Bind("/src:/dst:ro".into())
        );
        assert_eq!(
            volume("named:/dst").unwrap(),
            Volume::Bind("named:/dst".into())
        );
        assert!(volume("rel").is_err());
        assert!(volume("/a:rel").is_err());
        assert!(volume("/a:/b:bogus").is_err());
        assert!(volume("/a:/b:ro:x").is_err());
    }

    #[test]
    fn mounts() {
        assert_eq!(
            mount("type=bind,source=/a,target=/b,readonly").unwrap(),
            json!({"Type":"bind","Source":"/a","Target":"/b","ReadOnly":true})
        );
        assert_eq!(
            mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap(),
            json!({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":67108864,"Mode":1016}})
        );
        assert_eq!(
            mount("type=bind,src=/a,dst=/b,bind-propagation=rslave,ro=false").unwrap(),
            json!({"Type":"bind","Source":"/a","Target":"/b","ReadOnly":false,"BindOptions":{"Propagation":"rslave"}})
        );
        assert!(mount("type=bind,target=/b").is_err());
        assert!(mount("type=weird,target=/b").is_err());
        assert!(mount("source=/a").is_err());
        assert!(mount("type=bind,src=/a,dst=/b,color=red").is_err());
        assert_eq!(
            tmpfs("/run:rw,size=64m").unwrap(),
            ("/run".into(), "rw,size=64m".into())
        );
        assert_eq!(tmpfs("/run").unwrap(), ("/run".into(), String::new()));
        assert!(tmpfs("run").is_err());
    }
}
