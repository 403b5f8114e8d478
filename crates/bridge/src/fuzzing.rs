//! The properties the fuzz targets in `fuzz/` check, one function per target, each taking the
//! raw fuzz input. They live here (feature `fuzzing`, and in this crate's tests) so that the
//! committed seeds and every crash kept under `fuzz/regressions/` are replayed by a plain
//! `cargo test`, with the same assertions, without cargo-fuzz.
//!
//! A property that does not hold panics (that is how libFuzzer learns of it).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::scrub::{REDACTED, Scrubber};
use crate::select::Selector;
use crate::template::{ParamSpec, UrlTemplate};

/// Prefix of every secret the targets make up, so that a leak is easy to spot.
pub const CANARY: &str = "canary-";

/// `select`: input is `EXPRESSION\nBODY`. `apply` accepts exactly the bodies that are JSON,
/// returns only JSON, and its errors are fixed messages (they cannot show the body).
pub fn select(data: &[u8]) {
    let (expr, body) = split_line(data);
    let Ok(expr) = std::str::from_utf8(expr) else {
        return;
    };
    let Ok(selector) = Selector::parse(expr) else {
        return;
    };
    let body_is_json = std::str::from_utf8(body).is_ok() && is_json(body);
    match selector.apply(body) {
        Ok(out) => {
            assert!(body_is_json, "select accepted a body that is not JSON");
            assert!(is_json(&out), "select returned invalid JSON");
        }
        Err(e) => {
            assert!(
                !(body_is_json && e == crate::select::SelectError::NotJson),
                "select called valid JSON invalid"
            );
            // Only a syntax error carries text (the expression's), and only `parse` gives one.
            assert!(
                !matches!(e, crate::select::SelectError::Syntax(_)),
                "apply gave a syntax error: {e}"
            );
        }
    }
}

/// Whether `text` is one JSON value by RFC 8259's grammar, with no limit on depth or on a
/// number's size and no check that a `\u` escape pairs its surrogates (the grammar has none).
/// The `select` check's reference: serde_json's own parsers each add one of those limits, so
/// they would call valid JSON invalid (JavaScript's JSON.parse reads all of it).
fn is_json(text: &[u8]) -> bool {
    let mut at = 0;
    // The containers open around the current value: `[` or `{`.
    let mut open: Vec<u8> = Vec::new();
    loop {
        // A value starts at `at`.
        skip_space(text, &mut at);
        match text.get(at) {
            Some(&b @ (b'[' | b'{')) => {
                at += 1;
                skip_space(text, &mut at);
                if text.get(at) == Some(&(b + 2)) {
                    at += 1; // `[]` or `{}`: `]` and `}` are two past `[` and `{`
                } else {
                    open.push(b);
                    if b == b'{' && !member_name(text, &mut at) {
                        return false;
                    }
                    continue;
                }
            }
            Some(b'"') => {
                if !string(text, &mut at) {
                    return false;
                }
            }
            Some(b't') => at = literal(text, at, b"true"),
            Some(b'f') => at = literal(text, at, b"false"),
            Some(b'n') => at = literal(text, at, b"null"),
            _ => {
                if !number(text, &mut at) {
                    return false;
                }
            }
        }
        if at > text.len() {
            return false; // a literal that did not match
        }
        // A value ended: close containers until one takes another element.
        loop {
            skip_space(text, &mut at);
            let Some(&container) = open.last() else {
                return at == text.len();
            };
            match text.get(at) {
                Some(b',') => {
                    at += 1;
                    if container == b'{' && !member_name(text, &mut at) {
                        return false;
                    }
                    break;
                }
                Some(&b) if b == container + 2 => {
                    at += 1;
                    open.pop();
                }
                _ => return false,
            }
        }
    }
}

fn skip_space(text: &[u8], at: &mut usize) {
    while matches!(text.get(*at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        *at += 1;
    }
}

/// `"name"` and the `:` after it.
fn member_name(text: &[u8], at: &mut usize) -> bool {
    skip_space(text, at);
    if text.get(*at) != Some(&b'"') || !string(text, at) {
        return false;
    }
    skip_space(text, at);
    if text.get(*at) != Some(&b':') {
        return false;
    }
    *at += 1;
    true
}

/// The position after `word` if it is at `at`, else past the end (a mismatch).
fn literal(text: &[u8], at: usize, word: &[u8]) -> usize {
    if text[at..].starts_with(word) {
        at + word.len()
    } else {
        usize::MAX
    }
}

/// A string starting at its opening quote.
fn string(text: &[u8], at: &mut usize) -> bool {
    *at += 1;
    loop {
        match text.get(*at) {
            None => return false,
            Some(b'"') => {
                *at += 1;
                return true;
            }
            Some(b'\\') => match text.get(*at + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => *at += 2,
                Some(b'u')
                    if text
                        .get(*at + 2..*at + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    *at += 6
                }
                _ => return false,
            },
            Some(&b) if b < 0x20 => return false,
            Some(_) => *at += 1,
        }
    }
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn number(text: &[u8], at: &mut usize) -> bool {
    let digits = |at: &mut usize| {
        let start = *at;
        while text.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at > start
    };
    if text.get(*at) == Some(&b'-') {
        *at += 1;
    }
    match text.get(*at) {
        Some(b'0') => *at += 1,
        Some(b'1'..=b'9') => {
            digits(at);
        }
        _ => return false,
    }
    if text.get(*at) == Some(&b'.') {
        *at += 1;
        if !digits(at) {
            return false;
        }
    }
    if matches!(text.get(*at), Some(b'e' | b'E')) {
        *at += 1;
        if matches!(text.get(*at), Some(b'+' | b'-')) {
            *at += 1;
        }
        if !digits(at) {
            return false;
        }
    }
    true
}

/// `template`: input is lines `URL`, `PARAMS` (comma-separated names, `name/` for a path
/// parameter), then one value per line (used in turn for the placeholders). A rendered URL
/// keeps the template's scheme, host and port; errors never show a value.
pub fn template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let url = lines.next().unwrap_or_default();
    let params: Vec<ParamSpec> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_suffix('/') {
            Some(name) => ParamSpec::path(name),
            None => ParamSpec::segment(p),
        })
        .collect();
    let values: Vec<String> = lines.map(|v| format!("{CANARY}{v}")).collect();
    let Ok(template) = UrlTemplate::parse(url, &params) else {
        return;
    };
    let names = template.placeholders();
    let value_of = |name: &str| {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i % values.len().max(1)).cloned()
    };
    // The origin as the owner wrote it, with every placeholder filled by a harmless word.
    let plain = names.iter().fold(url.to_owned(), |u, n| {
        u.replace(&format!("{{{{{n}}}}}"), "x")
    });
    match template.render(&value_of) {
        Ok(rendered) => {
            assert_eq!(rendered.origin(), template.origin(), "origin changed");
            if let Ok(expected) = url::Url::parse(&plain) {
                assert_eq!(rendered.scheme(), expected.scheme(), "scheme changed");
                assert_eq!(rendered.host_str(), expected.host_str(), "host changed");
                assert_eq!(
                    rendered.port_or_known_default(),
                    expected.port_or_known_default(),
                    "port changed"
                );
            }
        }
        Err(e) => {
            let message = e.to_string();
            let names_have_canary = names.iter().any(|n| n.contains(CANARY));
            assert!(
                names_have_canary || !message.contains(CANARY),
                "a template error shows a value: {message}"
            );
        }
    }
}

/// RFC 3986 unreserved characters stay, everything else is escaped (as `scrub` expects).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `scrub`: input is a seed byte for the chunk sizes, then secret lines (each prefixed with the
/// canary), a blank line, and the body. The streamed result equals the whole-body result, and
/// no common form of a secret is left between the redactions.
pub fn scrub(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = match find(rest, b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let secrets: Vec<String> = head
        .split('\n')
        .filter(|s| !s.is_empty())
        .map(|s| format!("{CANARY}{s}"))
        .collect();
    let scrubber = Scrubber::new(secrets.iter().map(String::as_str));
    assert!(
        !format!("{scrubber:?}").contains(CANARY),
        "Debug shows a secret"
    );

    let whole = scrubber.scrub(body).into_owned();
    let mut stream = scrubber.stream();
    let mut streamed = Vec::new();
    let mut state = u32::from(seed) | 0x100;
    let mut pos = 0;
    while pos < body.len() {
        // xorshift: chunk sizes of 1 to 16 bytes, chosen by the seed byte.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state % 16 + 1) as usize;
        let end = (pos + len).min(body.len());
        streamed.extend_from_slice(&stream.push(&body[pos..end]));
        pos = end;
    }
    streamed.extend_from_slice(&stream.finish());
    assert_eq!(streamed, whole, "streamed scrub differs from whole scrub");

    let pieces: Vec<Vec<u8>> = split_on(&whole, REDACTED)
        .into_iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    for secret in &secrets {
        let json = serde_json::to_string(secret).unwrap_or_default();
        let forms = [
            secret.clone(),
            secret.trim().to_owned(),
            utf8_percent_encode(secret, RFC3986).to_string(),
            STANDARD.encode(secret),
            json.trim_matches('"').to_owned(),
        ];
        for form in forms
            .iter()
            .filter(|f| f.len() >= crate::scrub::MIN_SECRET_LEN)
        {
            let form = form.as_bytes().to_ascii_lowercase();
            assert!(
                !pieces.iter().any(|p| find(p, &form).is_some()),
                "a form of a secret is left in the scrubbed body"
            );
        }
    }
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_on<'a>(hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = hay;
    while let Some(i) = find(rest, sep) {
        out.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    //! Replays the committed seeds and every kept crash through the same checks.

    include!("../../../fuzz/replay.rs");

    #[test]
    fn select_seeds_and_regressions() {
        replay("select", super::select);
    }

    /// The reference grammar agrees with serde_json wherever serde_json has no limit of its
    /// own, and reads what serde_json's limits refuse.
    #[test]
    fn is_json_reads_the_grammar() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for good in [
            "0",
            "-0.5e+3",
            " [1, {\"a\": [true, false, null]}, \"\\u00e9\\n\"] ",
            "{}",
            "[]",
            "\"\"",
            "1E400",
            "\"\\ud800\"",
            &deep,
        ] {
            assert!(super::is_json(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1 2]",
            "{1:2}",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\u{1}\"",
            "[",
            "]",
            "{} {}",
            "NaN",
            "[1]]",
            "\"",
            "\u{feff}{}",
        ] {
            assert!(!super::is_json(bad.as_bytes()), "{bad}");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn template_seeds_and_regressions() {
        replay("template", super::template);
    }

    #[test]
    fn scrub_seeds_and_regressions() {
        replay("scrub", super::scrub);
    }
}
