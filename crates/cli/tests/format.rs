//! `--format` against the docker CLI, with no daemon: `version` renders
//! its Client part before failing to connect, so the same template through
//! both binaries must print the same text (fields both clients have:
//! `.Client.Os`, `.Client.Arch`); a template that does not parse fails as
//! docker's does, per command (message and exit status).

mod docker_text;

use docker_text::{DOCKER, WHARF, run, to_wharf};

/// stdout, and stderr without the line about the unreachable daemon.
fn outcome(bin: &str, args: &[&str]) -> (String, String, Option<i32>) {
    let o = run(bin, args);
    let err: String = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.starts_with("Cannot connect to the"))
        .map(|l| format!("{l}\n"))
        .collect();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        to_wharf(&err),
        o.status.code(),
    )
}

#[test]
fn version_templates_as_docker() {
    let templates = [
        "{{.Client.Os}}/{{.Client.Arch}}",
        r#"{{if eq .Client.Os "linux"}}L{{else if eq .Client.Os "x"}}X{{else}}O{{end}}"#,
        r#"{{range $i, $v := split "a,b,c" ","}}{{$i}}={{$v}};{{end}}"#,
        r#"{{with .Client.Os}}os={{.}}{{else}}none{{end}}"#,
        r#"{{$x := .Client.Os}}{{$x}}-{{$.Client.Arch}}"#,
        r#"{{(printf "%s-%s" .Client.Os .Client.Arch) | upper}}"#,
        r#"{{printf "%-8s|%5.2f|%05d|%q|%x" .Client.Os 3.14159 42 "a" 255}}"#,
        r#"{{printf "%d %s" "x"}}"#,
        r#"{{lt 1 2}} {{and 1 0}} {{or 0 "" "x"}} {{not true}}"#,
        r#"{{len .Client.Os}} {{slice .Client.Os 1 3}} {{index (split "a,b" ",") 1}}"#,
        "a {{- /* c */ -}} b {{- .Client.Os -}} c",
        r#"{{range split "a,b,c" ","}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}"#,
        r#"{{json .Client.Os}} {{join (split "a,b" ",") "+"}} {{title "x y"}} {{pad "x" 1 1}}|"#,
        "{{1e3}} {{0x10}} {{'a'}} {{1.5}}",
    ];
    for t in templates {
        let d = outcome(DOCKER, &["version", "--format", t]);
        let w = outcome(WHARF, &["version", "--format", t]);
        assert_eq!(w.0, d.0, "stdout of {t}");
        assert_eq!(w.2, d.2, "exit status of {t}");
    }
}

#[test]
fn bad_templates_as_docker() {
    for args in [
        &["version", "--format", "{{.ID"][..],
        &["version", "--format", "a\n{{.X"],
        &["version", "--format", "{{nofunc .X}}"],
        &["version", "--format", "{{if .X}}"],
        &["version", "--format", "{{.X}}{{end}}"],
        &["version", "--format", "{{break}}"],
        &["info", "--format", "{{.ID"],
        &["inspect", "--format", "{{.ID", "x"],
        &["container", "inspect", "--format", "{{.ID", "x"],
        &["image", "inspect", "--format", "{{.ID", "x"],
        &["events", "--format", "{{.ID"],
        &["ps", "--format", "{{.ID"],
    ] {
        let d = outcome(DOCKER, args);
        let w = outcome(WHARF, args);
        assert_eq!((&w.1, w.2), (&d.1, d.2), "{args:?}");
    }
}
