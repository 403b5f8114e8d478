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

/// `select`: input is `EXPRESSION\nBODY`. Whatever `apply` returns as Ok is valid JSON.
pub fn select(data: &[u8]) {
    let (expr, body) = split_line(data);
    let Ok(expr) = std::str::from_utf8(expr) else {
        return;
    };
    let Ok(selector) = Selector::parse(expr) else {
        return;
    };
    // serde_json refuses a lone surrogate escape (`"\ude00"`), which the JSON grammar allows
    // (and JavaScript's JSON.parse reads) and the select engine passes through: with one, the
    // body and the selection are JSON though serde_json says not.
    let surrogate = std::str::from_utf8(body).is_ok() && has_surrogate_escape(body);
    let body_is_json = surrogate || serde_json::from_slice::<serde_json::Value>(body).is_ok();
    match selector.apply(body) {
        Ok(out) => {
            assert!(body_is_json, "select accepted a body that is not JSON");
            assert!(
                surrogate || serde_json::from_slice::<serde_json::Value>(&out).is_ok(),
                "select returned invalid JSON"
            );
        }
        Err(e) => {
            assert!(
                !(body_is_json && e == crate::select::SelectError::NotJson),
                "select called valid JSON invalid"
            );
            // Only a syntax error carries text of its own (from the expression); every other
            // message is fixed, and may equal a body by chance.
            if let crate::select::SelectError::Syntax(detail) = &e
                && body.len() >= 16
            {
                let body_text = String::from_utf8_lossy(body);
                assert!(
                    !detail.contains(body_text.as_ref()),
                    "a select error echoes the body"
                );
            }
        }
    }
}

/// Whether `body` holds a `\uD800`–`\uDFFF` escape (a surrogate, maybe unpaired).
fn has_surrogate_escape(body: &[u8]) -> bool {
    body.windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && w[2].eq_ignore_ascii_case(&b'd')
            && matches!(w[3].to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
    })
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

    #[test]
    fn template_seeds_and_regressions() {
        replay("template", super::template);
    }

    #[test]
    fn scrub_seeds_and_regressions() {
        replay("scrub", super::scrub);
    }
}
