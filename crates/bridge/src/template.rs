//! `{{name}}` placeholders in a stored upstream URL, filled from caller values.
//!
//! A caller's value can never change where the request goes: placeholders are refused in the
//! scheme and authority at parse time, every value is percent-encoded as one path segment (or one
//! query value) with an explicit set, dot segments are refused, and the rendered URL is re-parsed
//! and its origin compared with the template's.
//!
//! Parsing works on the URL as the `url` crate normalises it: each placeholder is replaced by an
//! alphanumeric sentinel (which no URL component encodes or changes), the result is parsed, and
//! the sentinels' positions tell which component each placeholder landed in.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use url::{Origin, Position, Url};

/// Everything except RFC 3986 "unreserved" characters. Used for both path segments and query
/// values: strict enough for either, so one set cannot be mixed up with the other.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const MAX_NAME_LEN: usize = 64;
/// Longest value accepted for one placeholder, in bytes before encoding. Upstreams commonly
/// refuse URLs over 8 KiB; anything near this limit is abuse, not a city name.
pub const MAX_VALUE_LEN: usize = 2048;

pub use brine_core::{ParamKind, ParamSpec};

/// Why a template or a rendering was refused. Display is safe to show callers: it may name a
/// parameter, never the URL or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the upstream URL is not a valid URL")]
    InvalidUrl,
    #[error("the upstream URL must use http or https")]
    UnsupportedScheme,
    #[error("a `{{{{` placeholder in the upstream URL is not closed with `}}}}`")]
    Unclosed,
    #[error(
        "parameter names must be 1 to 64 ASCII letters, digits, '_' or '-' (found an invalid one)"
    )]
    InvalidName,
    #[error("parameter `{name}` is declared twice")]
    DuplicateParam { name: String },
    #[error("placeholder `{name}` is used in the URL but not declared as a parameter")]
    Undeclared { name: String },
    #[error("placeholder `{name}` is not allowed in the scheme, host, port or user info")]
    PlaceholderInAuthority { name: String },
    #[error("parameter `{name}` is missing")]
    Missing { name: String },
    #[error("parameter `{name}` is empty")]
    Empty { name: String },
    #[error("parameter `{name}` is longer than {MAX_VALUE_LEN} bytes")]
    TooLong { name: String },
    #[error("parameter `{name}` may not be `.` or `..` (or contain such a path segment)")]
    DotSegment { name: String },
    #[error("parameter `{name}` may not contain an empty path segment")]
    EmptySegment { name: String },
    #[error("the filled-in URL does not keep the stored scheme, host and port")]
    HostChanged,
}

/// Where in the URL a placeholder sits; decides how its value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Path,
    /// Query or fragment: encoded as one query value.
    Query,
}

#[derive(Clone)]
enum Piece {
    Lit(String),
    Slot {
        name: String,
        kind: ParamKind,
        ctx: Context,
    },
}

/// A parsed upstream URL with placeholders. `Debug` shows only the placeholder names: the URL
/// itself is a secret.
#[derive(Clone)]
pub struct UrlTemplate {
    pieces: Vec<Piece>,
    origin: Origin,
}

impl fmt::Debug for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlTemplate")
            .field("placeholders", &self.placeholders())
            .finish_non_exhaustive()
    }
}

fn valid_name(n: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A placeholder as found in the raw URL: its name and the byte offset of its `{{`.
struct RawPlaceholder<'a> {
    name: &'a str,
    at: usize,
}

/// Splits the raw URL into literal text and placeholders. `{{ name }}` may have spaces inside.
fn tokenize(raw: &str) -> Result<(Vec<&str>, Vec<RawPlaceholder<'_>>), TemplateError> {
    let (mut lits, mut phs) = (Vec::new(), Vec::new());
    let mut pos = 0;
    while let Some(open) = raw[pos..].find("{{").map(|o| pos + o) {
        let inner = open + 2;
        let close = raw[inner..].find("}}").ok_or(TemplateError::Unclosed)? + inner;
        lits.push(&raw[pos..open]);
        phs.push(RawPlaceholder {
            name: raw[inner..close].trim_matches(' '),
            at: open,
        });
        pos = close + 2;
    }
    lits.push(&raw[pos..]);
    Ok((lits, phs))
}

/// End (byte offset) of the authority in the raw URL, if it has the usual `scheme://` shape.
/// Only used to give a precise error before parsing; the sentinel check below is the real guard.
fn raw_authority_end(raw: &str) -> Option<usize> {
    let scheme_end = raw.find("://")?;
    if raw[..scheme_end].contains(['/', '?', '#', '\\']) {
        return None; // that `://` is not after the scheme (e.g. inside the query)
    }
    let start = scheme_end + 3;
    // The url crate treats `\` as `/` in http(s) URLs.
    Some(
        raw[start..]
            .find(['/', '?', '#', '\\'])
            .map_or(raw.len(), |e| start + e),
    )
}

/// A lowercase alphanumeric marker that does not occur in `raw` (compared case-insensitively,
/// since hosts are lowercased by parsing).
fn sentinel_marker(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    let mut marker = String::from("brineph");
    while lower.contains(&marker) {
        marker.push('q');
    }
    marker
}

/// Finds `{marker}{index}{marker}` occurrences in order: (start, end, index).
fn find_sentinels(s: &str, marker: &str) -> Vec<(usize, usize, usize)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(start) = s[pos..].find(marker).map(|o| pos + o) {
        let digits_at = start + marker.len();
        let digits = s[digits_at..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let end = digits_at + digits;
        match s[digits_at..end].parse::<usize>() {
            Ok(i) if s[end..].starts_with(marker) => {
                found.push((start, end + marker.len(), i));
                pos = end + marker.len();
            }
            _ => pos = digits_at,
        }
    }
    found
}

impl UrlTemplate {
    /// Parses a stored upstream URL. Every placeholder must be declared in `params`; declared
    /// parameters need not appear in the URL.
    pub fn parse(url: &str, params: &[ParamSpec]) -> Result<Self, TemplateError> {
        for (i, p) in params.iter().enumerate() {
            if !valid_name(&p.name) {
                return Err(TemplateError::InvalidName);
            }
            if params[..i].iter().any(|q| q.name == p.name) {
                return Err(TemplateError::DuplicateParam {
                    name: p.name.clone(),
                });
            }
        }
        let (lits, phs) = tokenize(url)?;
        let mut kinds = Vec::with_capacity(phs.len());
        for ph in &phs {
            if !valid_name(ph.name) {
                return Err(TemplateError::InvalidName);
            }
            let Some(spec) = params.iter().find(|p| p.name == ph.name) else {
                return Err(TemplateError::Undeclared {
                    name: ph.name.to_owned(),
                });
            };
            kinds.push(spec.kind);
        }
        let in_authority = |ph: &RawPlaceholder<'_>| TemplateError::PlaceholderInAuthority {
            name: ph.name.to_owned(),
        };
        if let Some(end) = raw_authority_end(url)
            && let Some(ph) = phs.iter().find(|ph| ph.at < end)
        {
            return Err(in_authority(ph));
        }

        let marker = sentinel_marker(url);
        let mut probe = String::with_capacity(url.len() + phs.len() * 2 * marker.len());
        for (i, lit) in lits.iter().enumerate() {
            probe.push_str(lit);
            if i < phs.len() {
                probe.push_str(&format!("{marker}{i}{marker}"));
            }
        }
        let parsed = Url::parse(&probe).map_err(|_| TemplateError::InvalidUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TemplateError::UnsupportedScheme);
        }
        let s = parsed.as_str();
        let path = parsed[..Position::BeforePath].len()..parsed[..Position::AfterPath].len();

        let found = find_sentinels(s, &marker);
        let mut seen = vec![false; phs.len()];
        let mut pieces = Vec::with_capacity(2 * phs.len() + 1);
        let mut pos = 0;
        for &(start, end, i) in &found {
            // Normalisation (e.g. a following `..`) can drop or duplicate a placeholder.
            let (Some(ph), Some(kind)) = (phs.get(i), kinds.get(i)) else {
                return Err(TemplateError::InvalidUrl);
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(TemplateError::InvalidUrl);
            }
            let ctx = if path.start <= start && end <= path.end {
                Context::Path
            } else if path.end <= start {
                Context::Query
            } else {
                // Host, user info or port (an IP-looking or IDNA host may not even keep it).
                return Err(in_authority(ph));
            };
            pieces.push(Piece::Lit(s[pos..start].to_owned()));
            pieces.push(Piece::Slot {
                name: ph.name.to_owned(),
                kind: *kind,
                ctx,
            });
            pos = end;
        }
        if seen.contains(&false) {
            // Normalisation swallowed a placeholder (e.g. `{{a}}/..`).
            return Err(TemplateError::InvalidUrl);
        }
        pieces.push(Piece::Lit(s[pos..].to_owned()));
        Ok(Self {
            pieces,
            origin: parsed.origin(),
        })
    }

    /// Fills the placeholders from `values` and returns the URL to call.
    pub fn render(&self, values: &dyn Fn(&str) -> Option<String>) -> Result<Url, TemplateError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Lit(lit) => out.push_str(lit),
                Piece::Slot { name, kind, ctx } => {
                    let value = checked_value(name, values)?;
                    match (ctx, kind) {
                        (Context::Query, _) => out.extend(utf8_percent_encode(&value, COMPONENT)),
                        (Context::Path, ParamKind::Segment) => {
                            push_segment(&mut out, name, &value)?;
                        }
                        (Context::Path, ParamKind::Path) => {
                            for (i, seg) in value.split('/').enumerate() {
                                if i > 0 {
                                    out.push('/');
                                }
                                push_segment(&mut out, name, seg)?;
                            }
                        }
                    }
                }
            }
        }
        // Belt and braces: whatever the encoding did, the request goes where the owner said.
        let url = Url::parse(&out).map_err(|_| TemplateError::InvalidUrl)?;
        if url.origin() != self.origin {
            return Err(TemplateError::HostChanged);
        }
        Ok(url)
    }

    /// Names of the placeholders used in the URL, in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for piece in &self.pieces {
            if let Piece::Slot { name, .. } = piece
                && !names.contains(&name.as_str())
            {
                names.push(name);
            }
        }
        names
    }

    /// Scheme, host and port of the template (and so of every rendered URL).
    pub fn origin(&self) -> Origin {
        self.origin.clone()
    }
}

fn checked_value(
    name: &str,
    values: &dyn Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let name_owned = || name.to_owned();
    let value = values(name).ok_or_else(|| TemplateError::Missing { name: name_owned() })?;
    if value.is_empty() {
        return Err(TemplateError::Empty { name: name_owned() });
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(TemplateError::TooLong { name: name_owned() });
    }
    Ok(value)
}

fn push_segment(out: &mut String, name: &str, seg: &str) -> Result<(), TemplateError> {
    if seg.is_empty() {
        return Err(TemplateError::EmptySegment {
            name: name.to_owned(),
        });
    }
    if has_dot_segment(seg) {
        return Err(TemplateError::DotSegment {
            name: name.to_owned(),
        });
    }
    out.extend(utf8_percent_encode(seg, COMPONENT));
    Ok(())
}

/// True if `seg`, as given or after any number of percent-decodings, contains a `.` or `..`
/// part when split on `/` or `\`. The value is encoded, so a correct upstream would see one
/// literal segment; this is for upstreams (and proxies in front of them) that decode twice or
/// treat `\` as a separator.
fn has_dot_segment(seg: &str) -> bool {
    let mut cur = seg.to_owned();
    // Each round shrinks the string; a few rounds cover any realistic multi-decoding chain.
    for _ in 0..4 {
        if cur.split(['/', '\\']).any(is_dots) {
            return true;
        }
        let decoded = percent_decode_str(&cur).decode_utf8_lossy().into_owned();
        if decoded == cur {
            break;
        }
        cur = decoded;
    }
    false
}

/// `.` or `..`, counting characters that Unicode normalisation (NFKC) turns into dots.
fn is_dots(part: &str) -> bool {
    let mut dots = 0;
    for c in part.chars() {
        dots += match c {
            '.' | '\u{FF0E}' | '\u{2024}' | '\u{FE52}' => 1,
            '\u{2025}' => 2, // TWO DOT LEADER
            _ => return false,
        };
    }
    (1..=2).contains(&dots)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg(n: &str) -> ParamSpec {
        ParamSpec::segment(n)
    }

    fn t(url: &str, params: &[ParamSpec]) -> UrlTemplate {
        UrlTemplate::parse(url, params).unwrap()
    }

    fn one(name: &'static str, value: &str) -> impl Fn(&str) -> Option<String> {
        let value = value.to_owned();
        move |n: &str| (n == name).then(|| value.clone())
    }

    fn render1(
        tpl: &UrlTemplate,
        name: &'static str,
        value: &str,
    ) -> Result<String, TemplateError> {
        tpl.render(&one(name, value)).map(|u| u.to_string())
    }

    #[test]
    fn no_placeholders() {
        let tpl = t("https://api.example.com/v1/weather?units=metric", &[]);
        assert!(tpl.placeholders().is_empty());
        assert_eq!(
            tpl.render(&|_| None).unwrap().as_str(),
            "https://api.example.com/v1/weather?units=metric"
        );
    }

    #[test]
    fn path_query_fragment() {
        let tpl = t(
            "https://api.example.com/v1/{{city}}/current.json?q={{city}}&lang={{ lang }}#{{frag}}",
            &[seg("city"), seg("lang"), seg("frag"), seg("unused")],
        );
        assert_eq!(tpl.placeholders(), ["city", "lang", "frag"]);
        let vals = |n: &str| match n {
            "city" => Some("São Paulo".to_owned()),
            "lang" => Some("pt-BR".to_owned()),
            "frag" => Some("top".to_owned()),
            _ => None,
        };
        assert_eq!(
            tpl.render(&vals).unwrap().as_str(),
            "https://api.example.com/v1/S%C3%A3o%20Paulo/current.json?q=S%C3%A3o%20Paulo&lang=pt-BR#top"
        );
    }

    #[test]
    fn segment_encodes_everything_structural() {
        let tpl = t("https://api.example.com/v1/{{p}}/x", &[seg("p")]);
        for (v, want) in [
            ("a/b", "a%2Fb"),
            ("%2F", "%252F"),
            ("@evil.com", "%40evil.com"),
            ("evil.com#", "evil.com%23"),
            ("#frag", "%23frag"),
            ("?x=1", "%3Fx%3D1"),
            ("a\r\nHost: evil", "a%0D%0AHost%3A%20evil"),
            ("a\\b", "a%5Cb"),
            ("a;b=c", "a%3Bb%3Dc"),
            ("\u{0}", "%00"),
            ("日本", "%E6%97%A5%E6%9C%AC"),
            ("...", "..."),
            ("a..b", "a..b"),
        ] {
            assert_eq!(
                render1(&tpl, "p", v).unwrap(),
                format!("https://api.example.com/v1/{want}/x"),
                "value {v:?}"
            );
        }
    }

    #[test]
    fn query_value_encoding() {
        let tpl = t("https://api.example.com/s?q={{q}}&k=v", &[seg("q")]);
        for (v, want) in [
            ("a&b=c", "a%26b%3Dc"),
            ("1+1 = 2", "1%2B1%20%3D%202"),
            ("#x", "%23x"),
            ("100%", "100%25"),
            ("a/b?c", "a%2Fb%3Fc"),
            ("\r\n\t", "%0D%0A%09"),
            ("..", ".."), // dots are harmless in a query
        ] {
            assert_eq!(
                render1(&tpl, "q", v).unwrap(),
                format!("https://api.example.com/s?q={want}&k=v"),
                "value {v:?}"
            );
        }
    }

    #[test]
    fn path_kind_spans_segments() {
        let tpl = t(
            "https://api.github.com/repos/{{repo}}/issues",
            &[ParamSpec::path("repo")],
        );
        assert_eq!(
            render1(&tpl, "repo", "rust-lang/rust").unwrap(),
            "https://api.github.com/repos/rust-lang/rust/issues"
        );
        assert_eq!(
            render1(&tpl, "repo", "a b/c?d#e").unwrap(),
            "https://api.github.com/repos/a%20b/c%3Fd%23e/issues"
        );
        for v in [
            "../x",
            "a/../../admin",
            "a/./b",
            "..",
            "a/%2e%2e/b",
            "a/%2E%2e",
            "a\\..\\b",
        ] {
            assert_eq!(
                render1(&tpl, "repo", v),
                Err(TemplateError::DotSegment {
                    name: "repo".into()
                }),
                "{v:?}"
            );
        }
        for v in ["/abs", "a//b", "a/"] {
            assert_eq!(
                render1(&tpl, "repo", v),
                Err(TemplateError::EmptySegment {
                    name: "repo".into()
                }),
                "{v:?}"
            );
        }
    }

    #[test]
    fn dot_segments_refused() {
        let tpl = t("https://api.example.com/v1/{{p}}/x", &[seg("p")]);
        for v in [
            ".",
            "..",
            "%2e",
            "%2E",
            "%2e%2e",
            "%2E%2e",
            ".%2e",
            "%2e.",
            "%252e%252e",
            "../",
            "a/../b",
            "..\\",
            "．．",
            "‥",
            "%u002e",
        ] {
            let got = render1(&tpl, "p", v);
            if v == "%u002e" {
                // Not a percent-escape anyone decodes to a dot; encoded as a literal.
                assert!(got.is_ok(), "{v:?}");
                continue;
            }
            assert_eq!(
                got,
                Err(TemplateError::DotSegment { name: "p".into() }),
                "{v:?}"
            );
        }
        // Adjacent literal dots cannot be completed into `..` either: the value alone is `.`.
        let tpl = t("https://api.example.com/v1/.{{p}}/x", &[seg("p")]);
        assert_eq!(
            render1(&tpl, "p", "."),
            Err(TemplateError::DotSegment { name: "p".into() })
        );
        let tpl = t(
            "https://api.example.com/v1/{{a}}{{b}}/x",
            &[seg("a"), seg("b")],
        );
        let dots = |_: &str| Some(".".to_owned());
        assert!(matches!(
            tpl.render(&dots),
            Err(TemplateError::DotSegment { .. })
        ));
    }

    #[test]
    fn missing_empty_too_long() {
        let tpl = t(
            "https://api.example.com/{{a}}?b={{b}}",
            &[seg("a"), seg("b")],
        );
        assert_eq!(
            tpl.render(&|_| None),
            Err(TemplateError::Missing { name: "a".into() })
        );
        assert_eq!(
            tpl.render(&one("a", "x")),
            Err(TemplateError::Missing { name: "b".into() })
        );
        let empty_b = |n: &str| {
            Some(if n == "a" {
                "x".to_owned()
            } else {
                String::new()
            })
        };
        assert_eq!(
            tpl.render(&empty_b),
            Err(TemplateError::Empty { name: "b".into() })
        );
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let long_a = |_: &str| Some(long.clone());
        assert_eq!(
            tpl.render(&long_a),
            Err(TemplateError::TooLong { name: "a".into() })
        );
        let max = "é".repeat(MAX_VALUE_LEN / 2);
        let max_a = |_: &str| Some(max.clone());
        assert!(tpl.render(&max_a).is_ok());
    }

    #[test]
    fn placeholders_in_authority_refused() {
        let p = [seg("host"), seg("port"), seg("user"), seg("s")];
        for url in [
            "https://{{host}}/x",
            "https://{{host}}.example.com/x",
            "https://api.{{host}}/x",
            "https://api.example.com{{host}}/x",
            "https://api.example.com{{host}}",
            "https://api.example.com:{{port}}/",
            "https://api.example.com:443{{port}}/",
            "https://{{user}}@api.example.com/",
            "https://u:{{user}}@api.example.com/",
            "{{s}}://api.example.com/",
            "https:{{host}}/x",
            "https:/{{host}}/x",
            "https:\\\\{{host}}/x",
        ] {
            let err = UrlTemplate::parse(url, &p).unwrap_err();
            assert!(
                matches!(err, TemplateError::PlaceholderInAuthority { .. }),
                "{url}: {err:?}"
            );
        }
    }

    #[test]
    fn parse_errors() {
        let p = [seg("a")];
        let e = |url: &str, params: &[ParamSpec]| UrlTemplate::parse(url, params).unwrap_err();
        assert_eq!(e("https://h.example/{{a", &p), TemplateError::Unclosed);
        assert_eq!(
            TemplateError::Unclosed.to_string(),
            "a `{{` placeholder in the upstream URL is not closed with `}}`"
        );
        assert_eq!(e("https://h.example/{{a}", &p), TemplateError::Unclosed);
        assert_eq!(
            e("https://h.example/{{b}}", &p),
            TemplateError::Undeclared { name: "b".into() }
        );
        assert_eq!(
            e("https://h.example/{{A}}", &p),
            TemplateError::Undeclared { name: "A".into() }
        );
        assert_eq!(e("https://h.example/{{}}", &p), TemplateError::InvalidName);
        assert_eq!(
            e("https://h.example/{{a b}}", &p),
            TemplateError::InvalidName
        );
        assert_eq!(
            e("https://h.example/{{{a}}}", &p),
            TemplateError::InvalidName
        );
        assert_eq!(
            e("https://h.example/{{a.b}}", &p),
            TemplateError::InvalidName
        );
        assert_eq!(
            e("https://h.example/", &[seg("bad name")]),
            TemplateError::InvalidName
        );
        assert_eq!(
            e("https://h.example/", &[seg(&"x".repeat(65))]),
            TemplateError::InvalidName
        );
        assert_eq!(
            e("https://h.example/", &[seg("a"), ParamSpec::path("a")]),
            TemplateError::DuplicateParam { name: "a".into() }
        );
        assert_eq!(
            e("ftp://h.example/{{a}}", &p),
            TemplateError::UnsupportedScheme
        );
        assert_eq!(e("file:///etc/{{a}}", &p), TemplateError::UnsupportedScheme);
        assert_eq!(e("javascript:{{a}}", &p), TemplateError::UnsupportedScheme);
        assert_eq!(e("not a url {{a}}", &p), TemplateError::InvalidUrl);
        assert_eq!(e("", &p), TemplateError::InvalidUrl);
        // Normalisation would swallow the placeholder.
        assert_eq!(
            e("https://h.example/{{a}}/../x", &p),
            TemplateError::InvalidUrl
        );
        // Names are case-sensitive, may repeat, and `}}` alone is literal text.
        let tpl = t("https://h.example/{{a}}/{{a}}/x}}y", &p);
        assert_eq!(tpl.placeholders(), ["a"]);
        assert_eq!(
            render1(&tpl, "a", "v").unwrap(),
            "https://h.example/v/v/x%7D%7Dy"
        );
    }

    #[test]
    fn marker_collision_in_template_text() {
        let tpl = t(
            "https://brineph.example/brineph0brineph/{{a}}?q=BRINEPHq",
            &[seg("a")],
        );
        assert_eq!(
            render1(&tpl, "a", "v").unwrap(),
            "https://brineph.example/brineph0brineph/v?q=BRINEPHq"
        );
    }

    #[test]
    fn errors_never_show_url_or_value() {
        let secret_url = "https://u:hunter2@api.example.com/k3y-in-path/{{a}}?key=sk_live_123";
        let tpl = t(secret_url, &[seg("a")]);
        let dbg = format!("{tpl:?}");
        for s in ["hunter2", "k3y", "sk_live", "example"] {
            assert!(!dbg.contains(s), "{dbg}");
        }
        for err in [
            tpl.render(&one("a", "../sk_live_v")).unwrap_err(),
            tpl.render(&|_| None).unwrap_err(),
            UrlTemplate::parse("https://sk_live_{{a}}.example/", &[seg("a")]).unwrap_err(),
            UrlTemplate::parse("https://sk_live_x.example/{{sk_live_y", &[]).unwrap_err(),
            UrlTemplate::parse("https://x.example/{{sk_live?y}}", &[]).unwrap_err(),
        ] {
            let msg = err.to_string();
            assert!(
                !msg.contains("sk_live") && !msg.contains("hunter2"),
                "{msg}"
            );
        }
    }

    #[test]
    fn origin_and_default_port() {
        let tpl = t("HTTPS://API.Example.COM:443/{{a}}", &[seg("a")]);
        let url = tpl.render(&one("a", "x")).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/x");
        assert_eq!(tpl.origin(), url.origin());
        let tpl = t("http://127.0.0.1:8080/{{a}}", &[seg("a")]);
        assert_eq!(tpl.origin().ascii_serialization(), "http://127.0.0.1:8080");
    }

    #[test]
    fn param_spec_serde() {
        let specs: Vec<ParamSpec> =
            serde_json::from_str(r#"["city", {"name":"p","kind":"path"}, {"name":"s"}]"#).unwrap();
        assert_eq!(specs, [seg("city"), ParamSpec::path("p"), seg("s")]);
        assert_eq!(
            serde_json::to_string(&specs[1]).unwrap(),
            r#"{"name":"p","kind":"path"}"#
        );
        assert!(serde_json::from_str::<ParamSpec>(r#"{"name":"p","kind":"glob"}"#).is_err());
        assert!(serde_json::from_str::<ParamSpec>(r#"{"name":"p","knd":"path"}"#).is_err());
        assert!(serde_json::from_str::<ParamSpec>("42").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the value, a segment stays one segment on the same origin, and decodes back.
        #[test]
        fn segment_stays_one_segment(v in any::<String>()) {
            let tpl = t("https://api.example.com/a/{{p}}/z?x={{p}}", &[seg("p")]);
            match tpl.render(&one("p", &v)) {
                Ok(url) => {
                    prop_assert_eq!(url.host_str(), Some("api.example.com"));
                    prop_assert_eq!(url.port(), None);
                    prop_assert!(url.fragment().is_none());
                    let segs: Vec<&str> = url.path_segments().unwrap().collect();
                    prop_assert_eq!(segs.len(), 3);
                    prop_assert_eq!(segs[0], "a");
                    prop_assert_eq!(segs[2], "z");
                    let decoded = percent_decode_str(segs[1]).decode_utf8().unwrap();
                    prop_assert_eq!(&decoded, &v);
                    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                    prop_assert_eq!(q, vec![("x".to_owned(), v.clone())]);
                }
                Err(TemplateError::Empty { .. }
                    | TemplateError::DotSegment { .. }
                    | TemplateError::TooLong { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }

        /// Path kind: never escapes the prefix, never yields a dot or empty segment.
        #[test]
        fn path_kind_stays_under_prefix(v in "[a-z./%2eE\\\\]{1,24}") {
            let tpl = t("https://api.example.com/base/{{p}}", &[ParamSpec::path("p")]);
            if let Ok(url) = tpl.render(&one("p", &v)) {
                prop_assert!(url.path().starts_with("/base/"));
                let segs: Vec<&str> = url.path_segments().unwrap().collect();
                prop_assert_eq!(segs.len(), 1 + v.split('/').count());
                for s in segs {
                    prop_assert!(!s.is_empty() && s != "." && s != "..");
                }
            }
        }

        /// Arbitrary templates never panic, and a parsed one never renders to another origin.
        #[test]
        fn arbitrary_templates(url in "(https?://)?[a-z.:@/?#{}\\[\\]%]{0,40}", v in any::<String>()) {
            let params = [seg("a"), ParamSpec::path("b")];
            if let Ok(tpl) = UrlTemplate::parse(&url, &params) {
                let origin = tpl.origin();
                if let Ok(rendered) = tpl.render(&|_| Some(v.clone())) {
                    prop_assert_eq!(rendered.origin(), origin);
                }
            }
        }
    }
}
