//! A Go `text/template` for `--format`, evaluated over JSON values.
//!
//! Supported: text with `{{ }}` actions, `{{-`/`-}}` trimming and
//! `{{/* comments */}}`; fields (`.A.B`, `.`), variables (`$`, `$x := ...`,
//! `$x = ...`, `range $i, $v := ...`), string/raw-string/number (Go
//! syntax: `0x10`, `1e3`, `'a'`)/bool/nil literals, parenthesised
//! pipelines, `|` pipes, `if`/`else if`/`else`/`end`, `range` (arrays,
//! maps by sorted key, integers; `else`; `break`/`continue`), `with`/`else`;
//! functions: docker's `json join split upper lower title truncate pad`, and
//! Go's `print println printf len index not and or eq ne lt le gt ge slice`.
//! `printf` follows Go's `fmt` (flags, width, precision, the usual verbs,
//! `%!d(string=x)`-style complaints); `eq`/`lt` refuse values of different
//! kinds as Go does. A field applied to arguments (`.Label "k"`) is a method
//! call answered by the caller's [`Methods`]. Values print as Go prints
//! `interface{}` values: integers as written, floats as `%v`, arrays as
//! `[a b]`, maps as `map[k:v]`, missing keys as `<no value>`. Parse errors
//! name the template and the line as Go does (`template: version:1: ...`).
//!
//! [`Template::header`] renders the header line of a `table` format: the
//! same template over the header names, with functions passing their
//! argument through, as docker's header functions do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// A bad template or a failure while executing it.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `pos` is the line of the action; `name` the template's name
    /// (docker names only `version`'s).
    #[error("template parsing error: template: {name}:{pos}: {reason}")]
    Parse {
        name: String,
        pos: usize,
        reason: String,
    },
    #[error("template: executing at <{at}>: {reason}")]
    Exec { at: String, reason: String },
}

/// Answers method calls such as `.Label "k"` on the root value.
pub trait Methods {
    fn call(&self, name: &str, args: &[Value]) -> Option<Value>;
}

/// No methods.
pub struct NoMethods;

impl Methods for NoMethods {
    fn call(&self, _: &str, _: &[Value]) -> Option<Value> {
        None
    }
}

#[derive(Debug, Clone)]
enum Tok {
    Dot,
    Field(String),
    /// `.B` right after an operand (`.A.B`, `$x.B`, `(...).B`).
    Chain(String),
    Var(String),
    Ident(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
enum Operand {
    /// `nil`: only an argument, never a command.
    Nil,
    /// `.`, or a field chain from the dot.
    Dot(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    Lit(Value),
    Func(String),
    /// `(pipeline).A`.
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Operand>,
}

#[derive(Debug, Clone)]
struct Pipeline {
    decl: Vec<String>,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Break,
    Continue,
}

/// How a list of nodes ended: normally, or by `{{break}}`/`{{continue}}`.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

/// A value during execution: JSON, or Go's "no value".
#[derive(Debug, Clone, PartialEq)]
enum Val {
    J(Value),
    Missing,
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::J(v) => v.clone(),
            Val::Missing => Value::Null,
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Missing | Val::J(Value::Null) => false,
            Val::J(Value::Bool(b)) => *b,
            Val::J(Value::String(s)) => !s.is_empty(),
            Val::J(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Val::J(Value::Array(a)) => !a.is_empty(),
            Val::J(Value::Object(o)) => !o.is_empty(),
        }
    }
}

/// Formats a value as Go's `fmt` prints an `interface{}` (`%v`).
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => go_float(f, 'g', None),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_string).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_string(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn val_string(v: &Val) -> String {
    match v {
        Val::Missing | Val::J(Value::Null) => "<no value>".into(),
        Val::J(j) => go_string(j),
    }
}

// ---- lexing and parsing -------------------------------------------------

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn err(&self, reason: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            name: String::new(),
            pos: self.i + 1,
            reason: reason.into(),
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn tokens(mut self) -> Result<Vec<Tok>, TemplateError> {
        let mut out = Vec::new();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => self.i += 1,
                b'.' => {
                    let adjacent = self.i > 0
                        && (self.s[self.i - 1].is_ascii_alphanumeric()
                            || matches!(self.s[self.i - 1], b'_' | b')' | b'$'));
                    self.i += 1;
                    if self.i < self.s.len()
                        && (self.s[self.i].is_ascii_alphabetic() || self.s[self.i] == b'_')
                    {
                        let name = self.ident();
                        out.push(if adjacent {
                            Tok::Chain(name)
                        } else {
                            Tok::Field(name)
                        });
                    } else if self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                        // `.5`
                        let start = self.i - 1;
                        while self.i < self.s.len()
                            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.')
                        {
                            self.i += 1;
                        }
                        out.push(Tok::Num(
                            String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                        ));
                    } else {
                        out.push(Tok::Dot);
                    }
                }
                b'\'' => {
                    // A character constant is its code point.
                    let rest = std::str::from_utf8(&self.s[self.i + 1..]).unwrap_or("");
                    let mut cs = rest.char_indices();
                    let (c, len) = match cs.next() {
                        Some((_, '\\')) => match cs.next() {
                            Some((_, 'n')) => ('\n', 2),
                            Some((_, 't')) => ('\t', 2),
                            Some((_, '\\')) => ('\\', 2),
                            Some((_, '\'')) => ('\'', 2),
                            _ => return Err(self.err("bad character constant")),
                        },
                        Some((_, c)) => (c, c.len_utf8()),
                        None => return Err(self.err("unterminated character constant")),
                    };
                    if rest.as_bytes().get(len) != Some(&b'\'') {
                        return Err(self.err("unterminated character constant"));
                    }
                    self.i += len + 2;
                    out.push(Tok::Num(u32::from(c).to_string()));
                }
                b'$' => {
                    self.i += 1;
                    out.push(Tok::Var(self.ident()));
                }
                b'(' => {
                    self.i += 1;
                    out.push(Tok::LParen)
                }
                b')' => {
                    self.i += 1;
                    out.push(Tok::RParen)
                }
                b'|' => {
                    self.i += 1;
                    out.push(Tok::Pipe)
                }
                b',' => {
                    self.i += 1;
                    out.push(Tok::Comma)
                }
                b':' if self.s.get(self.i + 1) == Some(&b'=') => {
                    self.i += 2;
                    out.push(Tok::Declare)
                }
                b'=' => {
                    self.i += 1;
                    out.push(Tok::Assign)
                }
                b'"' => {
                    self.i += 1;
                    let mut s = Vec::new();
                    loop {
                        let Some(&c) = self.s.get(self.i) else {
                            return Err(self.err("unterminated quoted string"));
                        };
                        self.i += 1;
                        match c {
                            b'"' => break,
                            b'\\' => {
                                let e =
                                    *self.s.get(self.i).ok_or_else(|| self.err("bad escape"))?;
                                self.i += 1;
                                s.push(match e {
                                    b'n' => b'\n',
                                    b't' => b'\t',
                                    b'r' => b'\r',
                                    b'0' => 0,
                                    other => other,
                                });
                            }
                            c => s.push(c),
                        }
                    }
                    out.push(Tok::Str(String::from_utf8_lossy(&s).into_owned()));
                }
                b'`' => {
                    self.i += 1;
                    let start = self.i;
                    while self.i < self.s.len() && self.s[self.i] != b'`' {
                        self.i += 1;
                    }
                    if self.i >= self.s.len() {
                        return Err(self.err("unterminated raw quoted string"));
                    }
                    out.push(Tok::Str(
                        String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                    ));
                    self.i += 1;
                }
                b'-' | b'+' | b'0'..=b'9' => {
                    let start = self.i;
                    self.i += 1;
                    while self.i < self.s.len()
                        && (self.s[self.i].is_ascii_alphanumeric()
                            || matches!(self.s[self.i], b'.' | b'_')
                            || (matches!(self.s[self.i], b'-' | b'+')
                                && matches!(self.s[self.i - 1], b'e' | b'E')
                                && !self.s[start..self.i].starts_with(b"0x")))
                    {
                        self.i += 1;
                    }
                    out.push(Tok::Num(
                        String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                    ));
                }
                c if c.is_ascii_alphabetic() || c == b'_' => out.push(Tok::Ident(self.ident())),
                other => {
                    return Err(self.err(format!("unexpected {:?} in command", char::from(other))));
                }
            }
        }
        Ok(out)
    }
}

struct Parser {
    toks: Vec<Tok>,
    i: usize,
    pos: usize,
}

impl Parser {
    fn err(&self, reason: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            name: String::new(),
            pos: self.pos,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }

    /// The `.B.C` chained onto an operand.
    fn fields(&mut self) -> Vec<String> {
        let mut f = Vec::new();
        while let Some(Tok::Chain(name)) = self.peek() {
            f.push(name.clone());
            self.i += 1;
        }
        f
    }

    fn pipeline(&mut self, allow_decl: bool) -> Result<Pipeline, TemplateError> {
        let mut decl = Vec::new();
        if allow_decl {
            // `$x :=` or `$i, $v :=`
            let save = self.i;
            let mut names = Vec::new();
            while let Some(Tok::Var(v)) = self.peek() {
                names.push(v.clone());
                self.i += 1;
                match self.peek() {
                    Some(Tok::Comma) => self.i += 1,
                    _ => break,
                }
            }
            if !names.is_empty() && matches!(self.peek(), Some(Tok::Declare | Tok::Assign)) {
                self.i += 1;
                decl = names;
            } else {
                self.i = save;
            }
        }
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            while let Some(t) = self.peek().cloned() {
                let op = match t {
                    Tok::Pipe | Tok::RParen => break,
                    Tok::Dot => {
                        self.i += 1;
                        Operand::Dot(Vec::new())
                    }
                    Tok::Field(first) => {
                        self.i += 1;
                        let mut f = vec![first];
                        f.extend(self.fields());
                        Operand::Dot(f)
                    }
                    Tok::Chain(_) => return Err(self.err("unexpected . after term")),
                    Tok::Var(v) => {
                        self.i += 1;
                        Operand::Var(v, self.fields())
                    }
                    Tok::Str(s) => {
                        self.i += 1;
                        Operand::Lit(Value::String(s))
                    }
                    Tok::Num(n) => {
                        self.i += 1;
                        let v = number(&n)
                            .ok_or_else(|| self.err(format!("bad number syntax: {n:?}")))?;
                        Operand::Lit(v)
                    }
                    Tok::LParen => {
                        self.i += 1;
                        let p = self.pipeline(false)?;
                        if !matches!(self.peek(), Some(Tok::RParen)) {
                            return Err(self.err("unclosed left paren"));
                        }
                        self.i += 1;
                        Operand::Sub(Box::new(p), self.fields())
                    }
                    Tok::Ident(id) => {
                        self.i += 1;
                        match id.as_str() {
                            "true" => Operand::Lit(Value::Bool(true)),
                            "false" => Operand::Lit(Value::Bool(false)),
                            "nil" => Operand::Nil,
                            _ if args.is_empty() => {
                                if !is_func(&id) {
                                    return Err(self.err(format!("function {id:?} not defined")));
                                }
                                Operand::Func(id)
                            }
                            _ => return Err(self.err(format!("unexpected {id:?} in operand"))),
                        }
                    }
                    Tok::Comma | Tok::Declare | Tok::Assign => {
                        return Err(self.err("unexpected token in operand"));
                    }
                };
                args.push(op);
            }
            if args.is_empty() {
                return Err(self.err("missing value for command"));
            }
            cmds.push(Command { args });
            match self.peek() {
                Some(Tok::Pipe) => self.i += 1,
                _ => break,
            }
        }
        Ok(Pipeline { decl, cmds })
    }
}

/// A Go number constant: integers with base prefixes (as `strconv`
/// parses them), floats (kept as floats only when written with `.`, `e` or
/// `p`, as text/template does).
fn number(n: &str) -> Option<Value> {
    let body = n.strip_prefix('+').unwrap_or(n);
    if let Ok(i) = crate::opts::flags::int(body) {
        return Some(Value::from(i));
    }
    let f: f64 = body.replace('_', "").parse().ok()?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

fn is_func(name: &str) -> bool {
    matches!(
        name,
        "json"
            | "join"
            | "split"
            | "upper"
            | "lower"
            | "title"
            | "truncate"
            | "pad"
            | "print"
            | "println"
            | "printf"
            | "len"
            | "index"
            | "not"
            | "and"
            | "or"
            | "eq"
            | "ne"
            | "lt"
            | "le"
            | "gt"
            | "ge"
            | "slice"
    )
}

/// A raw piece of the source: text, or the inside of an action.
enum Piece {
    Text(String),
    Action(String, usize),
}

/// The line (from 1) of byte `at` in `src`.
fn line_at(src: &str, at: usize) -> usize {
    1 + src.as_bytes()[..at.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

fn split_pieces(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut offset = 0;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let (inner_start, trim_prev) =
            if after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n") {
                (1, true)
            } else {
                (0, false)
            };
        if trim_prev {
            text = text.trim_end();
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_owned()));
        }
        let body = &after[inner_start..];
        // Find the closing braces outside quotes.
        let bytes = body.as_bytes();
        let mut j = 0;
        let mut quote: Option<u8> = None;
        let close = loop {
            if j >= bytes.len() {
                return Err(TemplateError::Parse {
                    name: String::new(),
                    pos: line_at(src, offset + open),
                    reason: "unclosed action".into(),
                });
            }
            let c = bytes[j];
            match quote {
                Some(q) => {
                    if c == b'\\' && q == b'"' {
                        j += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => {
                    if c == b'"' || c == b'`' {
                        quote = Some(c);
                    } else if c == b'}' && bytes.get(j + 1) == Some(&b'}') {
                        break j;
                    }
                }
            }
            j += 1;
        };
        let mut inner = &body[..close];
        trim_next = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            trim_next = true;
        }
        let inner = inner.trim();
        if !inner.starts_with("/*") {
            out.push(Piece::Action(inner.to_owned(), line_at(src, offset + open)));
        }
        let consumed = open + 2 + inner_start + close + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    let mut text = rest;
    if trim_next {
        text = text.trim_start();
    }
    if !text.is_empty() {
        out.push(Piece::Text(text.to_owned()));
    }
    Ok(out)
}

enum Stop {
    End,
    Else(Option<String>),
    Eof,
}

fn parse_list(
    pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    in_range: bool,
) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(p) = pieces.next() {
        match p {
            Piece::Text(t) => nodes.push(Node::Text(t)),
            Piece::Action(a, pos) => {
                let (kw, rest) = match a.split_once(|c: char| c.is_whitespace()) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" => return Ok((nodes, Stop::End)),
                    "else" => {
                        return Ok((
                            nodes,
                            Stop::Else((!rest.is_empty()).then(|| rest.to_owned())),
                        ));
                    }
                    "if" | "range" | "with" => {
                        let pipe = parse_pipeline(rest, pos, kw != "if")?;
                        nodes.push(parse_block(kw, pipe, pos, pieces, in_range)?);
                    }
                    "break" | "continue" if rest.is_empty() => {
                        if !in_range {
                            return Err(TemplateError::Parse {
                                name: String::new(),
                                pos,
                                reason: format!("{{{{{kw}}}}} outside {{{{range}}}}"),
                            });
                        }
                        nodes.push(if kw == "break" {
                            Node::Break
                        } else {
                            Node::Continue
                        });
                    }
                    _ => nodes.push(Node::Action(parse_pipeline(&a, pos, true)?)),
                }
            }
        }
    }
    Ok((nodes, Stop::Eof))
}

/// Parses the body of an `if`/`range`/`with` whose header was read, up to
/// and including its `end`; `else if X` nests an `if` sharing that `end`.
fn parse_block(
    kw: &str,
    pipe: Pipeline,
    pos: usize,
    pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    in_range: bool,
) -> Result<Node, TemplateError> {
    let (body, stop) = parse_list(pieces, in_range || kw == "range")?;
    let alt = match stop {
        Stop::End => Vec::new(),
        Stop::Else(None) => {
            let (alt, stop) = parse_list(pieces, in_range)?;
            if !matches!(stop, Stop::End) {
                return Err(TemplateError::Parse {
                    name: String::new(),
                    pos,
                    reason: format!("expected end; found {kw}'s else"),
                });
            }
            alt
        }
        Stop::Else(Some(chain)) => {
            let (kw2, rest2) = chain
                .split_once(|c: char| c.is_whitespace())
                .unwrap_or((chain.as_str(), ""));
            if kw2 != "if" && kw2 != "with" {
                return Err(TemplateError::Parse {
                    name: String::new(),
                    pos,
                    reason: format!("unexpected {kw2:?} after else"),
                });
            }
            let pipe2 = parse_pipeline(rest2.trim(), pos, kw2 != "if")?;
            vec![parse_block(kw2, pipe2, pos, pieces, in_range)?]
        }
        Stop::Eof => {
            return Err(TemplateError::Parse {
                name: String::new(),
                pos,
                reason: "unexpected EOF".into(),
            });
        }
    };
    Ok(match kw {
        "if" => Node::If(pipe, body, alt),
        "range" => Node::Range(pipe, body, alt),
        _ => Node::With(pipe, body, alt),
    })
}

fn parse_pipeline(src: &str, pos: usize, allow_decl: bool) -> Result<Pipeline, TemplateError> {
    let toks = Lexer {
        s: src.as_bytes(),
        i: 0,
    }
    .tokens()
    .map_err(|e| match e {
        TemplateError::Parse { reason, .. } => TemplateError::Parse {
            name: String::new(),
            pos,
            reason,
        },
        other => other,
    })?;
    if toks.is_empty() {
        return Err(TemplateError::Parse {
            name: String::new(),
            pos,
            reason: "missing value for command".into(),
        });
    }
    let mut p = Parser { toks, i: 0, pos };
    let pipe = p.pipeline(allow_decl)?;
    if p.i != p.toks.len() {
        return Err(p.err(format!("unexpected {:?} in operand", p.toks[p.i])));
    }
    Ok(pipe)
}

// ---- execution -------------------------------------------------------------

struct Exec<'a> {
    methods: &'a dyn Methods,
    vars: Vec<(String, Val)>,
    header: bool,
    /// `json .` of a listing row escapes `<>&` as Go's `json.Marshal`
    /// does (docker's row contexts marshal themselves); other values do not.
    escape_root_json: bool,
}

fn exec_err(at: &str, reason: impl Into<String>) -> TemplateError {
    TemplateError::Exec {
        at: at.to_owned(),
        reason: reason.into(),
    }
}

fn field_of(v: &Val, name: &str) -> Result<Val, TemplateError> {
    match v {
        Val::J(Value::Object(o)) => Ok(o.get(name).cloned().map(Val::J).unwrap_or(Val::Missing)),
        Val::Missing | Val::J(Value::Null) => Ok(Val::Missing),
        Val::J(other) => Err(exec_err(
            &format!(".{name}"),
            format!("can't evaluate field {name} in type {}", go_type(other)),
        )),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn as_str(v: &Val) -> String {
    match v {
        Val::J(Value::String(s)) => s.clone(),
        other => val_string(other),
    }
}

#[allow(clippy::cast_possible_truncation)] // whole numbers below 2^53 only
fn as_int(v: &Val, at: &str) -> Result<i64, TemplateError> {
    match v {
        Val::J(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| exec_err(at, "expected an integer")),
        Val::J(Value::String(s)) => s.parse().map_err(|_| exec_err(at, "expected an integer")),
        _ => Err(exec_err(at, "expected an integer")),
    }
}

/// Go's basic kinds as `eq` sees them; `None` for a missing value.
fn kind(v: &Val) -> Option<&'static str> {
    match v {
        Val::Missing | Val::J(Value::Null) => None,
        Val::J(Value::Bool(_)) => Some("bool"),
        Val::J(Value::Number(n)) if n.is_f64() => Some("float"),
        Val::J(Value::Number(_)) => Some("int"),
        Val::J(Value::String(_)) => Some("string"),
        Val::J(_) => Some("other"),
    }
}

/// text/template's `eq` of two values: values of different kinds are an
/// error unless one is missing (then unequal); maps and slices cannot be
/// compared.
fn go_eq(a: &Val, b: &Val) -> Result<bool, &'static str> {
    match (kind(a), kind(b)) {
        (None, _) | (_, None) => Ok(a.json() == b.json()),
        (Some(x), Some(y)) if x != y => Err("incompatible types for comparison"),
        (Some("other"), _) => Err("invalid type for comparison"),
        _ => Ok(a.json() == b.json() || compare(a, b) == Some(std::cmp::Ordering::Equal)),
    }
}

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a.json(), b.json()) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(&y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(&y)),
        _ => None,
    }
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// Go's `json.Marshal` HTML escaping of already encoded JSON text (the
/// characters only occur inside strings, so a plain replace is exact).
fn escape_html(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn go_json(v: &Val) -> String {
    match v {
        Val::Missing => "null".into(),
        Val::J(j) => serde_json::to_string(j).unwrap_or_default(),
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn sprint(args: &[Val]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            let both_non_str = !matches!(args[i - 1], Val::J(Value::String(_)))
                && !matches!(a, Val::J(Value::String(_)));
            if both_non_str {
                out.push(' ');
            }
        }
        out.push_str(&as_str(a));
    }
    out
}

/// Go's `strconv.FormatFloat` for `%e %f %g` (`prec` None = shortest).
fn go_float(f: f64, verb: char, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let exp_form = |s: String| -> String {
        // Rust writes `1.5e-7`; Go `1.5e-07`.
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    };
    match verb {
        'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), f),
        'e' | 'E' => {
            let s = exp_form(format!("{:.*e}", prec.unwrap_or(6), f));
            if verb == 'E' { s.to_uppercase() } else { s }
        }
        _ => {
            // %g: exponent form when the exponent is < -4 or >= the
            // precision (6 for the shortest form).
            if f == 0.0 {
                return "0".into();
            }
            let digits = match prec {
                Some(p) => format!("{:.*e}", p.max(1) - 1, f),
                None => format!("{f:e}"),
            };
            let (m, e) = digits.split_once('e').unwrap_or((&digits, "0"));
            let exp: i32 = e.parse().unwrap_or(0);
            let eprec = prec.map_or(6, |p| i32::try_from(p.max(1)).unwrap_or(i32::MAX));
            let trim = |m: &str| {
                if m.contains('.') {
                    m.trim_end_matches('0').trim_end_matches('.').to_owned()
                } else {
                    m.to_owned()
                }
            };
            let out = if exp < -4 || exp >= eprec {
                exp_form(format!("{}e{exp}", trim(m)))
            } else {
                let m: f64 = format!("{m}e{exp}").parse().unwrap_or(f);
                let decimals = usize::try_from((eprec - 1 - exp).max(0)).unwrap_or(0);
                match prec {
                    None => format!("{m}"),
                    Some(_) => trim(&format!("{m:.decimals$}")),
                }
            };
            if verb == 'G' { out.to_uppercase() } else { out }
        }
    }
}

/// The Go type a value prints as in `%T` and in `%!verb(type=value)`.
fn go_type_name(v: &Val) -> &'static str {
    match v {
        Val::Missing | Val::J(Value::Null) => "<nil>",
        Val::J(Value::Number(n)) if n.is_f64() => "float64",
        Val::J(Value::Number(_)) => "int",
        Val::J(other) => go_type(other),
    }
}

/// One `%` directive: flags, width, precision.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    /// Pads `s` to the width (zeros after the sign for numbers with `0`).
    fn pad(&self, s: String, numeric: bool) -> String {
        let Some(w) = self.width else { return s };
        let n = s.chars().count();
        if n >= w {
            return s;
        }
        let fill = w - n;
        if self.minus {
            format!("{s}{}", " ".repeat(fill))
        } else if self.zero && numeric {
            let (sign, digits) = match s.strip_prefix(['-', '+']) {
                Some(d) => (&s[..1], d),
                None => ("", s.as_str()),
            };
            format!("{sign}{}{digits}", "0".repeat(fill))
        } else {
            format!("{}{s}", " ".repeat(fill))
        }
    }

    fn signed(&self, s: String, negative: bool) -> String {
        if negative {
            s
        } else if self.plus {
            format!("+{s}")
        } else if self.space {
            format!(" {s}")
        } else {
            s
        }
    }
}

fn int_of(v: &Val) -> Option<i128> {
    match v {
        Val::J(Value::Number(n)) if !n.is_f64() => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    }
}

fn float_of(v: &Val) -> Option<f64> {
    match v {
        Val::J(Value::Number(n)) if n.is_f64() => n.as_f64(),
        _ => None,
    }
}

/// `%!d(string=x)`: a verb that does not fit its operand.
fn bad_verb(verb: char, v: &Val) -> String {
    match v {
        Val::Missing | Val::J(Value::Null) => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", go_type_name(v), as_str(v)),
    }
}

/// One operand under one verb, as Go's `fmt` prints it.
fn format_one(spec: &Spec, verb: char, v: &Val) -> String {
    // Slices print element by element.
    if let Val::J(Value::Array(items)) = v
        && !matches!(verb, 'v' | 'T')
    {
        let parts: Vec<String> = items
            .iter()
            .map(|x| format_one(spec, verb, &Val::J(x.clone())))
            .collect();
        return format!("[{}]", parts.join(" "));
    }
    match verb {
        'T' => spec.pad(go_type_name(v).to_owned(), false),
        'v' => {
            if let Some(f) = float_of(v) {
                let s = spec.signed(go_float(f, 'g', spec.prec), f < 0.0);
                return spec.pad(s, true);
            }
            if let Some(i) = int_of(v) {
                return spec.pad(spec.signed(i.to_string(), i < 0), true);
            }
            let s = match v {
                Val::Missing | Val::J(Value::Null) => "<nil>".to_owned(),
                other => as_str(other),
            };
            spec.pad(s, false)
        }
        's' => match v {
            Val::J(Value::String(s)) => {
                let s = match spec.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.clone(),
                };
                spec.pad(s, false)
            }
            Val::J(Value::Object(_)) => spec.pad(as_str(v), false),
            other => bad_verb('s', other),
        },
        'q' => match v {
            Val::J(Value::String(s)) => spec.pad(crate::format::go_quote(s), false),
            other => match int_of(other)
                .and_then(|i| u32::try_from(i).ok())
                .and_then(char::from_u32)
            {
                Some(c) => {
                    let q = match c {
                        '\'' => "\\'".to_owned(),
                        c if c.is_control() => format!("\\x{:02x}", u32::from(c)),
                        c => c.to_string(),
                    };
                    spec.pad(format!("'{q}'"), false)
                }
                None => bad_verb('q', other),
            },
        },
        'd' | 'x' | 'X' | 'o' | 'O' | 'b' | 'c' => {
            if let (Val::J(Value::String(s)), 'x' | 'X') = (v, verb) {
                let h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                return spec.pad(if verb == 'X' { h.to_uppercase() } else { h }, false);
            }
            let Some(i) = int_of(v) else {
                return bad_verb(verb, v);
            };
            let mag = i.unsigned_abs();
            let body = match verb {
                'd' => mag.to_string(),
                'x' => format!("{}{mag:x}", if spec.sharp { "0x" } else { "" }),
                'X' => format!("{}{mag:X}", if spec.sharp { "0X" } else { "" }),
                'o' => format!("{}{mag:o}", if spec.sharp { "0" } else { "" }),
                'O' => format!("0o{mag:o}"),
                'b' => format!("{mag:b}"),
                _ => {
                    return spec.pad(
                        u32::try_from(i)
                            .ok()
                            .and_then(char::from_u32)
                            .unwrap_or('\u{fffd}')
                            .to_string(),
                        false,
                    );
                }
            };
            let s = if i < 0 { format!("-{body}") } else { body };
            spec.pad(spec.signed(s, i < 0), true)
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let Some(f) = float_of(v) else {
                return bad_verb(verb, v);
            };
            let s = go_float(
                f,
                verb,
                spec.prec.or(match verb {
                    'g' | 'G' => None,
                    _ => Some(6),
                }),
            );
            spec.pad(spec.signed(s, f.is_sign_negative()), true)
        }
        't' => match v {
            Val::J(Value::Bool(b)) => spec.pad(b.to_string(), false),
            other => bad_verb('t', other),
        },
        other => bad_verb(other, v),
    }
}

/// Go's `fmt.Sprintf` over template values.
fn sprintf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut n = 0;
    let star = |n: &mut usize| -> Option<usize> {
        let v = args
            .get(*n)
            .and_then(int_of)
            .and_then(|i| usize::try_from(i).ok());
        *n += 1;
        v
    };
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = it.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            it.next();
        }
        let digits = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut d = String::new();
            while let Some(&c) = it.peek().filter(|c| c.is_ascii_digit()) {
                d.push(c);
                it.next();
            }
            d.parse::<usize>().ok()
        };
        if it.peek() == Some(&'*') {
            it.next();
            spec.width = star(&mut n);
        } else {
            spec.width = digits(&mut it);
        }
        if it.peek() == Some(&'.') {
            it.next();
            if it.peek() == Some(&'*') {
                it.next();
                spec.prec = star(&mut n);
            } else {
                spec.prec = Some(digits(&mut it).unwrap_or(0));
            }
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(n) {
            Some(a) => out.push_str(&format_one(&spec, verb, a)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        n += 1;
    }
    if n < args.len() {
        let extra: Vec<String> = args[n..]
            .iter()
            .map(|a| match a {
                Val::Missing | Val::J(Value::Null) => "<nil>".to_owned(),
                _ => format!("{}={}", go_type_name(a), as_str(a)),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

impl Exec<'_> {
    fn var(&self, name: &str) -> Result<Val, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| exec_err(&format!("${name}"), format!("undefined variable: ${name}")))
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Val) -> Result<Val, TemplateError> {
        let mut piped: Option<Val> = None;
        for c in &p.cmds {
            piped = Some(self.command(c, dot, piped)?);
        }
        let v = piped.unwrap_or(Val::Missing);
        if let Some(name) = p.decl.first() {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn operand(&mut self, o: &Operand, dot: &Val) -> Result<Val, TemplateError> {
        let chain = |mut v: Val, fields: &[String]| -> Result<Val, TemplateError> {
            for f in fields {
                v = field_of(&v, f)?;
            }
            Ok(v)
        };
        match o {
            Operand::Dot(fields) => chain(dot.clone(), fields),
            Operand::Var(name, fields) => chain(self.var(name)?, fields),
            Operand::Lit(v) => Ok(Val::J(v.clone())),
            Operand::Sub(p, fields) => {
                let v = self.pipeline(p, dot)?;
                chain(v, fields)
            }
            Operand::Func(f) => self.func(f, Vec::new()),
            Operand::Nil => Ok(Val::J(Value::Null)),
        }
    }

    fn command(
        &mut self,
        c: &Command,
        dot: &Val,
        piped: Option<Val>,
    ) -> Result<Val, TemplateError> {
        match &c.args[0] {
            Operand::Func(f) => {
                let mut args = Vec::new();
                for a in &c.args[1..] {
                    args.push(self.operand(a, dot)?);
                }
                args.extend(piped);
                self.func(f, args)
            }
            Operand::Dot(fields) if c.args.len() > 1 || (piped.is_some() && !fields.is_empty()) => {
                // A method call: `.Label "k"`.
                let name = fields.last().cloned().unwrap_or_default();
                let mut args = Vec::new();
                for a in &c.args[1..] {
                    args.push(self.operand(a, dot)?.json());
                }
                if let Some(p) = piped {
                    args.push(p.json());
                }
                if self.header {
                    return Ok(Val::J(Value::String(name.to_uppercase())));
                }
                self.methods.call(&name, &args).map(Val::J).ok_or_else(|| {
                    exec_err(
                        &format!(".{name}"),
                        format!("{name} has arguments but cannot be invoked as function"),
                    )
                })
            }
            Operand::Nil => Err(exec_err("nil", "nil is not a command")),
            _ if c.args.len() > 1 || piped.is_some() => {
                Err(exec_err("command", "can't give argument to non-function"))
            }
            o => self.operand(o, dot),
        }
    }

    fn func(&mut self, f: &str, args: Vec<Val>) -> Result<Val, TemplateError> {
        let s = |v: String| Ok(Val::J(Value::String(v)));
        let arg = |i: usize| -> Result<&Val, TemplateError> {
            args.get(i)
                .ok_or_else(|| exec_err(f, format!("wrong number of args for {f}")))
        };
        if self.header
            && matches!(
                f,
                "json" | "join" | "split" | "upper" | "lower" | "title" | "truncate" | "pad"
            )
        {
            return Ok(arg(0)?.clone());
        }
        match f {
            "json" => {
                let v = arg(0)?;
                let text = go_json(v);
                if self.escape_root_json && self.vars.first().is_some_and(|(_, root)| root == v) {
                    s(escape_html(&text))
                } else {
                    s(text)
                }
            }
            "upper" => s(as_str(arg(0)?).to_uppercase()),
            "lower" => s(as_str(arg(0)?).to_lowercase()),
            "title" => s(title(&as_str(arg(0)?))),
            "join" => {
                let sep = as_str(arg(1)?);
                match arg(0)? {
                    Val::J(Value::Array(a)) => s(a
                        .iter()
                        .map(|v| as_str(&Val::J(v.clone())))
                        .collect::<Vec<_>>()
                        .join(&sep)),
                    Val::Missing | Val::J(Value::Null) => s(String::new()),
                    other => Err(exec_err(
                        "join",
                        format!(
                            "wrong type for value; expected []string; got {}",
                            go_type(&other.json())
                        ),
                    )),
                }
            }
            "split" => {
                let src = as_str(arg(0)?);
                let sep = as_str(arg(1)?);
                let parts: Vec<Value> = if sep.is_empty() {
                    src.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    src.split(sep.as_str())
                        .map(|p| Value::String(p.to_owned()))
                        .collect()
                };
                Ok(Val::J(Value::Array(parts)))
            }
            "truncate" => {
                let src = as_str(arg(0)?);
                let n = usize::try_from(as_int(arg(1)?, f)?.max(0)).unwrap_or(0);
                if src.len() < n {
                    s(src)
                } else {
                    s(src.chars().take(n).collect())
                }
            }
            "pad" => {
                let src = as_str(arg(0)?);
                if src.is_empty() {
                    return s(src);
                }
                let pre = usize::try_from(as_int(arg(1)?, f)?.max(0)).unwrap_or(0);
                let post = usize::try_from(as_int(arg(2)?, f)?.max(0)).unwrap_or(0);
                s(format!("{}{src}{}", " ".repeat(pre), " ".repeat(post)))
            }
            "print" => s(sprint(&args)),
            "println" => {
                let parts: Vec<String> = args.iter().map(as_str).collect();
                s(format!("{}\n", parts.join(" ")))
            }
            "printf" => {
                let fmt = as_str(arg(0)?);
                s(sprintf(&fmt, &args[1..]))
            }
            "len" => {
                let n = match arg(0)? {
                    Val::J(Value::Array(a)) => a.len(),
                    Val::J(Value::Object(o)) => o.len(),
                    Val::J(Value::String(st)) => st.len(),
                    other => {
                        return Err(exec_err(
                            "len",
                            format!("len of {}", go_type(&other.json())),
                        ));
                    }
                };
                Ok(Val::J(Value::from(n)))
            }
            "index" => {
                let mut v = arg(0)?.clone();
                for k in &args[1..] {
                    v = match (&v, k) {
                        (Val::J(Value::Object(o)), k) => o
                            .get(&as_str(k))
                            .cloned()
                            .map(Val::J)
                            .unwrap_or(Val::Missing),
                        (Val::J(Value::Array(a)), k) => {
                            let i = usize::try_from(as_int(k, "index")?)
                                .map_err(|_| exec_err("index", "index out of range"))?;
                            Val::J(a.get(i).cloned().ok_or_else(|| {
                                exec_err("index", format!("index out of range: {i}"))
                            })?)
                        }
                        _ => return Err(exec_err("index", "can't index item")),
                    };
                }
                Ok(v)
            }
            "slice" => {
                let src = arg(0)?.clone();
                let from = args.get(1).map(|v| as_int(v, f)).transpose()?.unwrap_or(0);
                let from = usize::try_from(from).unwrap_or(0);
                match src {
                    Val::J(Value::String(st)) => {
                        let to = args
                            .get(2)
                            .map(|v| as_int(v, f))
                            .transpose()?
                            .map(|t| usize::try_from(t).unwrap_or(0))
                            .unwrap_or(st.len());
                        st.get(from..to)
                            .map(|x| Val::J(Value::String(x.to_owned())))
                            .ok_or_else(|| exec_err(f, "slice out of range"))
                    }
                    Val::J(Value::Array(a)) => {
                        let to = args
                            .get(2)
                            .map(|v| as_int(v, f))
                            .transpose()?
                            .map(|t| usize::try_from(t).unwrap_or(0))
                            .unwrap_or(a.len());
                        a.get(from..to)
                            .map(|x| Val::J(Value::Array(x.to_vec())))
                            .ok_or_else(|| exec_err(f, "slice out of range"))
                    }
                    _ => Err(exec_err(f, "can't slice item")),
                }
            }
            "not" => Ok(Val::J(Value::Bool(!arg(0)?.truthy()))),
            "and" => {
                for a in &args {
                    if !a.truthy() {
                        return Ok(a.clone());
                    }
                }
                Ok(args.last().cloned().unwrap_or(Val::Missing))
            }
            "or" => {
                for a in &args {
                    if a.truthy() {
                        return Ok(a.clone());
                    }
                }
                Ok(args.last().cloned().unwrap_or(Val::Missing))
            }
            "eq" | "ne" => {
                let first = arg(0)?;
                arg(1)?;
                let mut any = false;
                for b in &args[1..] {
                    any |= go_eq(first, b).map_err(|e| exec_err(f, e))?;
                }
                Ok(Val::J(Value::Bool(if f == "eq" { any } else { !any })))
            }
            "lt" | "le" | "gt" | "ge" => {
                let o = compare(arg(0)?, arg(1)?)
                    .ok_or_else(|| exec_err(f, "incompatible types for comparison"))?;
                use std::cmp::Ordering::*;
                let r = match f {
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                };
                Ok(Val::J(Value::Bool(r)))
            }
            other => Err(exec_err(other, format!("function {other:?} not defined"))),
        }
    }

    fn nodes(
        &mut self,
        nodes: &[Node],
        dot: &Val,
        out: &mut String,
    ) -> Result<Flow, TemplateError> {
        for n in nodes {
            let depth = self.vars.len();
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        out.push_str(&val_string(&v));
                    }
                    // A declaration outlives its action (until the enclosing block ends).
                    continue;
                }
                Node::If(p, a, b) => {
                    let v = self.pipeline(p, dot)?;
                    let flow = self.nodes(if v.truthy() { a } else { b }, dot, out)?;
                    if flow != Flow::Normal {
                        self.vars.truncate(depth);
                        return Ok(flow);
                    }
                }
                Node::With(p, a, b) => {
                    let v = self.pipeline(p, dot)?;
                    let flow = if v.truthy() {
                        self.nodes(a, &v, out)?
                    } else {
                        self.nodes(b, dot, out)?
                    };
                    if flow != Flow::Normal {
                        self.vars.truncate(depth);
                        return Ok(flow);
                    }
                }
                Node::Range(p, body, alt) => {
                    let decl = p.decl.clone();
                    let mut pp = p.clone();
                    pp.decl.clear();
                    let v = self.pipeline(&pp, dot)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Val::J(Value::Array(a)) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i), x.clone()))
                            .collect(),
                        Val::J(Value::Object(o)) => o
                            .iter()
                            .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                            .collect(),
                        Val::Missing | Val::J(Value::Null) => Vec::new(),
                        Val::J(Value::Number(n)) => {
                            let n = n.as_u64().unwrap_or(0);
                            (0..n).map(|i| (Value::from(i), Value::from(i))).collect()
                        }
                        Val::J(other) => {
                            return Err(exec_err(
                                "range",
                                format!("range can't iterate over {}", go_string(other)),
                            ));
                        }
                    };
                    if items.is_empty() {
                        let flow = self.nodes(alt, dot, out)?;
                        if flow != Flow::Normal {
                            self.vars.truncate(depth);
                            return Ok(flow);
                        }
                    }
                    for (k, x) in items {
                        let d = self.vars.len();
                        match decl.as_slice() {
                            [v] => self.vars.push((v.clone(), Val::J(x.clone()))),
                            [i, v, ..] => {
                                self.vars.push((i.clone(), Val::J(k)));
                                self.vars.push((v.clone(), Val::J(x.clone())));
                            }
                            [] => {}
                        }
                        let flow = self.nodes(body, &Val::J(x), out)?;
                        self.vars.truncate(d);
                        if flow == Flow::Break {
                            break;
                        }
                    }
                }
                Node::Break => {
                    self.vars.truncate(depth);
                    return Ok(Flow::Break);
                }
                Node::Continue => {
                    self.vars.truncate(depth);
                    return Ok(Flow::Continue);
                }
            }
            self.vars.truncate(depth);
        }
        Ok(Flow::Normal)
    }
}

impl TemplateError {
    /// Go's own text (`template: :1: unclosed action`), without docker's
    /// `template parsing error: ` prefix.
    pub fn go_text(&self) -> String {
        let s = self.to_string();
        s.strip_prefix("template parsing error: ")
            .map(str::to_owned)
            .unwrap_or(s)
    }
}

impl Template {
    /// Parses Go template text.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        Template::parse_named("", src)
    }

    /// [`Template::parse`] with the template's name in its errors.
    pub fn parse_named(name: &str, src: &str) -> Result<Template, TemplateError> {
        Template::parse_inner(src).map_err(|e| match e {
            TemplateError::Parse { pos, reason, .. } => TemplateError::Parse {
                name: name.to_owned(),
                pos,
                reason,
            },
            other => other,
        })
    }

    fn parse_inner(src: &str) -> Result<Template, TemplateError> {
        let pieces = split_pieces(src)?;
        let mut it = pieces.into_iter().peekable();
        let (nodes, stop) = parse_list(&mut it, false)?;
        match stop {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => Err(TemplateError::Parse {
                name: String::new(),
                pos: 1,
                reason: "unexpected {{end}}".into(),
            }),
            Stop::Else(_) => Err(TemplateError::Parse {
                name: String::new(),
                pos: 1,
                reason: "unexpected {{else}}".into(),
            }),
        }
    }

    /// Renders over `dot`, with `methods` answering method calls.
    pub fn render_with(&self, dot: &Value, methods: &dyn Methods) -> Result<String, TemplateError> {
        self.render_opts(dot, methods, false)
    }

    /// Renders one row of a listing (`ps`, `images`, ...): as
    /// [`Template::render_with`], and `{{json .}}` is HTML-escaped.
    pub fn render_row(&self, dot: &Value, methods: &dyn Methods) -> Result<String, TemplateError> {
        self.render_opts(dot, methods, true)
    }

    fn render_opts(
        &self,
        dot: &Value,
        methods: &dyn Methods,
        escape_root_json: bool,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        let root = Val::J(dot.clone());
        let mut e = Exec {
            methods,
            vars: vec![(String::new(), root.clone())],
            header: false,
            escape_root_json,
        };
        e.nodes(&self.nodes, &root, &mut out)?;
        Ok(out)
    }

    pub fn render(&self, dot: &Value) -> Result<String, TemplateError> {
        self.render_with(dot, &NoMethods)
    }

    /// Renders the header line of a table: fields resolve to their header
    /// names and formatting functions pass their argument through.
    pub fn header(&self, names: &BTreeMap<&str, &str>) -> String {
        let dot = Value::Object(
            names
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                .collect(),
        );
        let root = Val::J(dot);
        let mut out = String::new();
        let mut e = Exec {
            methods: &NoMethods,
            vars: vec![(String::new(), root.clone())],
            header: true,
            escape_root_json: false,
        };
        if e.nodes(&self.nodes, &root, &mut out).is_err() {
            out.clear();
        }
        let _ = write!(out, "");
        out.replace("<no value>", "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().render(&v).unwrap()
    }

    #[test]
    fn fields_and_text() {
        let v = json!({"ID": "abc", "Config": {"Env": ["A=1", "B=2"], "Labels": {"x": "1", "a": "b"}}, "N": 3, "T": true, "Z": null});
        assert_eq!(r("id={{.ID}}!", v.clone()), "id=abc!");
        assert_eq!(r("{{.Config.Env}}", v.clone()), "[A=1 B=2]");
        assert_eq!(r("{{.Config.Labels}}", v.clone()), "map[a:b x:1]");
        assert_eq!(
            r("{{.N}} {{.T}} {{.Missing}} {{.Z}}", v.clone()),
            "3 true <no value> <no value>"
        );
        assert_eq!(
            r("{{json .Config.Labels}}", v.clone()),
            r#"{"a":"b","x":"1"}"#
        );
        assert_eq!(
            r("{{json .}}", json!({"b": "<&>", "a": 1})),
            r#"{"a":1,"b":"<&>"}"#
        );
    }

    #[test]
    fn docker_functions() {
        let v = json!({"Name": "hello world", "L": ["a", "b"], "E": ""});
        assert_eq!(r("{{upper .Name}}", v.clone()), "HELLO WORLD");
        assert_eq!(r("{{.Name | upper}}", v.clone()), "HELLO WORLD");
        assert_eq!(r("{{title .Name}}", v.clone()), "Hello World");
        assert_eq!(r("{{lower \"ABC\"}}", v.clone()), "abc");
        assert_eq!(r("{{join .L \", \"}}", v.clone()), "a, b");
        assert_eq!(r("{{truncate .Name 5}}", v.clone()), "hello");
        assert_eq!(r("{{truncate .Name 50}}", v.clone()), "hello world");
        assert_eq!(
            r("[{{pad .Name 1 2}}][{{pad .E 1 1}}]", v.clone()),
            "[ hello world  ][]"
        );
        assert_eq!(r("{{split .Name \" \"}}", v.clone()), "[hello world]");
        assert_eq!(r("{{len .L}}", v.clone()), "2");
        assert_eq!(r("{{index .L 1}}", v.clone()), "b");
        assert_eq!(r("{{println .Name}}", v.clone()), "hello world\n");
        assert_eq!(
            r("{{printf \"%s-%d\" .Name 3}}", v.clone()),
            "hello world-3"
        );
    }

    #[test]
    fn control_flow() {
        let v =
            json!({"S": "running", "L": ["x", "y"], "M": {"k": "v"}, "C": {"Image": "busybox"}});
        assert_eq!(
            r("{{if eq .S \"running\"}}up{{else}}down{{end}}", v.clone()),
            "up"
        );
        assert_eq!(
            r(
                "{{if eq .S \"x\"}}1{{else if eq .S \"running\"}}2{{else}}3{{end}}",
                v.clone()
            ),
            "2"
        );
        assert_eq!(
            r(
                "{{if eq .S \"x\"}}1{{else if eq .S \"y\"}}2{{else}}3{{end}}.",
                v.clone()
            ),
            "3."
        );
        assert_eq!(r("{{range .L}}<{{.}}>{{end}}", v.clone()), "<x><y>");
        assert_eq!(
            r("{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}", v.clone()),
            "k=v;"
        );
        assert_eq!(r("{{range .Nope}}a{{else}}none{{end}}", v.clone()), "none");
        assert_eq!(r("{{with .C}}{{.Image}}{{end}}", v.clone()), "busybox");
        assert_eq!(r("{{$x := .S}}{{$x}}", v.clone()), "running");
        assert_eq!(r("{{range .L}}{{$.S}}{{end}}", v.clone()), "runningrunning");
        assert_eq!(r("a {{- .S -}} b", v.clone()), "arunningb");
        assert_eq!(r("{{(index .L 0) | upper}}", v.clone()), "X");
        assert_eq!(r("{{if and .S (not .Nope)}}ok{{end}}", v), "ok");
    }

    #[test]
    fn methods_and_headers() {
        struct L;
        impl Methods for L {
            fn call(&self, name: &str, args: &[Value]) -> Option<Value> {
                (name == "Label")
                    .then(|| Value::String(format!("label:{}", args[0].as_str().unwrap_or(""))))
            }
        }
        let t = Template::parse("{{.ID}}\t{{.Label \"com.x\"}}").unwrap();
        assert_eq!(
            t.render_with(&json!({"ID": "1"}), &L).unwrap(),
            "1\tlabel:com.x"
        );
        let names = BTreeMap::from([("ID", "CONTAINER ID"), ("Names", "NAMES")]);
        assert_eq!(t.header(&names), "CONTAINER ID\tLABEL");
        let t = Template::parse("{{.Names | upper}} {{json .ID}}").unwrap();
        assert_eq!(t.header(&names), "NAMES CONTAINER ID");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{.ID").is_err());
        assert!(Template::parse("{{nofunc .ID}}").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let t = Template::parse("{{.A.B}}").unwrap();
        assert!(t.render(&json!({"A": "str"})).is_err());
    }

    /// Each expected output below is what `docker version --format`
    /// printed for the same template (docker 28.2.2), with `.Client.Os` =
    /// "linux" and `.Client.Arch` = "amd64".
    #[test]
    fn as_docker_prints_them() {
        let v = json!({"Client": {"Os": "linux", "Arch": "amd64"}});
        for (t, want) in [
            ("{{.Client.Os}}/{{.Client.Arch}}", "linux/amd64"),
            (
                r#"{{if eq .Client.Os "linux"}}L{{else if eq .Client.Os "x"}}X{{else}}O{{end}}"#,
                "L",
            ),
            (
                r#"{{if eq .Client.Os "a" "b" "linux"}}multi{{end}}"#,
                "multi",
            ),
            (r#"{{if ne .Client.Os "linux"}}ne{{else}}eq{{end}}"#, "eq"),
            (
                r#"{{range $i, $v := split "a,b,c" ","}}{{$i}}={{$v}};{{end}}"#,
                "0=a;1=b;2=c;",
            ),
            (r#"{{range $x := split "a,b" ","}}{{$x}}{{end}}"#, "ab"),
            (
                r#"{{with .Client.Os}}os={{.}}{{else}}none{{end}}"#,
                "os=linux",
            ),
            (
                r#"{{$x := .Client.Os}}{{$x}}-{{$.Client.Arch}}"#,
                "linux-amd64",
            ),
            (r#"{{.Client.Os | upper | lower}}"#, "linux"),
            (
                r#"{{(printf "%s-%s" .Client.Os .Client.Arch) | upper}}"#,
                "LINUX-AMD64",
            ),
            (
                r#"{{lt 1 2}} {{le 2 2}} {{gt 3 1}} {{ge 1 2}}"#,
                "true true true false",
            ),
            (
                r#"{{and 1 0}} {{or 0 "" "x"}} {{not true}} {{and "a" "b"}}"#,
                "0 x false b",
            ),
            (r#"{{len "abc"}} {{len (split "a,b" ",")}}"#, "3 2"),
            (r#"{{index (split "a,b,c" ",") 1}}"#, "b"),
            (
                r#"{{slice "abcdef" 1 3}} {{slice (split "a,b,c" ",") 1}}"#,
                "bc [b c]",
            ),
            (
                r#"{{print "a" 1 2 "b"}}|{{println "x" 1}}|"#,
                "a1 2b|x 1\n|",
            ),
            (
                r#"{{printf "%d|%5d|%-5d|%05d" 42 42 42 42}}"#,
                "42|   42|42   |00042",
            ),
            (
                r#"{{printf "%s|%10s|%-10s|" "ab" "ab" "ab"}}"#,
                "ab|        ab|ab        |",
            ),
            (r#"{{printf "%v %v %v" 1 "s" true}}"#, "1 s true"),
            (r#"{{printf "%q %q" "a\"b" 5}}"#, r#""a\"b" '\x05'"#),
            (
                r#"{{printf "%5.2f|%.1f|%f" 3.14159 2.0 1.5}}"#,
                " 3.14|2.0|1.500000",
            ),
            (
                r#"{{printf "%x %X %o %b %c" 255 255 8 5 65}}"#,
                "ff FF 10 101 A",
            ),
            (r#"{{printf "%t %%" true}}"#, "true %"),
            (r#"{{printf "%s"}}"#, "%!s(MISSING)"),
            (r#"{{printf "%d" "x"}}"#, "%!d(string=x)"),
            (r#"{{printf "%s %s" "a"}}"#, "a %!s(MISSING)"),
            (r#"{{printf "%s" "a" "b"}}"#, "a%!(EXTRA string=b)"),
            (
                r#"{{printf "%6.3v|%-8v|%+d" 3.14159 "ab" 5}}"#,
                "  3.14|ab      |+5",
            ),
            (r#"{{printf "%v" (split "a,b" ",")}}"#, "[a b]"),
            (r#"{{printf "%T" 1}}"#, "int"),
            (r#"a {{- " b " -}} c"#, "a b c"),
            (r#"{{/* comment */}}x{{- /* c2 */ -}} y"#, "xy"),
            (r#"{{"str"}} {{1}} {{1.5}} {{true}}"#, "str 1 1.5 true"),
            (r#"{{1e3}} {{0x10}} {{'a'}} {{-5}}"#, "1000 16 97 -5"),
            (
                r#"{{json .Client.Os}} {{json (split "a,b" ",")}}"#,
                r#""linux" ["a","b"]"#,
            ),
            (r#"{{join (split "a,b,c" ",") "+"}}"#, "a+b+c"),
            (
                r#"{{title "hello world"}} {{upper "ab"}} {{lower "AB"}}"#,
                "Hello World AB ab",
            ),
            (r#"{{pad "x" 2 3}}|{{truncate "abcdef" 3}}"#, "  x   |abc"),
            (
                r#"{{range split "a,b,c" ","}}{{if eq . "b"}}{{break}}{{end}}{{.}}{{end}}"#,
                "a",
            ),
            (
                r#"{{range split "a,b,c" ","}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}"#,
                "ac",
            ),
            (r#"{{$x := 1}}{{$x = 2}}{{$x}}"#, "2"),
            (r#"{{with $x := .Client.Os}}{{$x}}{{end}}"#, "linux"),
            (
                "{{- .Client.Os}}|{{.Client.Os -}} |{{ .Client.Os }}",
                "linux|linux|linux",
            ),
        ] {
            assert_eq!(r(t, v.clone()), want, "{t}");
        }
        // Maps with keys that are not identifiers, nested, through index.
        let m = json!({"Labels": {"com.example.v": "1", "a b": {"c": [10, 20]}}});
        assert_eq!(r(r#"{{index .Labels "com.example.v"}}"#, m.clone()), "1");
        assert_eq!(r(r#"{{index .Labels "a b" "c" 1}}"#, m.clone()), "20");
        assert_eq!(r(r#"{{index .Labels "nope"}}"#, m), "<no value>");
        assert_eq!(
            r(
                "{{range $i, $e := .E}}x{{else}}empty{{end}}",
                json!({"E": []})
            ),
            "empty"
        );
    }

    /// Parse errors as docker prints them (line numbers, not offsets).
    #[test]
    fn parse_errors_as_docker() {
        let e = |name: &str, t: &str| Template::parse_named(name, t).err().unwrap().to_string();
        assert_eq!(
            e("version", "{{.ID"),
            "template parsing error: template: version:1: unclosed action"
        );
        assert_eq!(
            e("version", "a\n{{.X"),
            "template parsing error: template: version:2: unclosed action"
        );
        assert_eq!(
            e("version", "{{nofunc .X}}"),
            "template parsing error: template: version:1: function \"nofunc\" not defined"
        );
        assert_eq!(
            e("version", "{{if .X}}"),
            "template parsing error: template: version:1: unexpected EOF"
        );
        assert_eq!(
            e("version", "{{.X}}{{end}}"),
            "template parsing error: template: version:1: unexpected {{end}}"
        );
        assert_eq!(
            e("", "{{break}}"),
            "template parsing error: template: :1: {{break}} outside {{range}}"
        );
        assert_eq!(
            Template::parse("{{.ID").err().unwrap().go_text(),
            "template: :1: unclosed action"
        );
        // Execution errors of Go's comparisons.
        assert!(
            Template::parse(r#"{{eq 1 "a"}}"#)
                .unwrap()
                .render(&json!({}))
                .is_err()
        );
        assert!(
            Template::parse(r#"{{lt "a" 1}}"#)
                .unwrap()
                .render(&json!({}))
                .is_err()
        );
        assert!(
            Template::parse("{{nil}}")
                .unwrap()
                .render(&json!({}))
                .is_err()
        );
        assert_eq!(r(r#"{{eq .Missing "a"}}"#, json!({})), "false");
    }
}
