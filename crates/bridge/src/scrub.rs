//! Removing stored secrets from anything returned to a caller.
//!
//! Upstream error bodies (and sometimes headers) echo the key they were sent, raw or encoded. A
//! [`Scrubber`] knows every stored secret value in the forms it is likely to be echoed in and
//! replaces each occurrence with `[REDACTED]`, on whole bodies or on streams.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};

/// What every match is replaced with.
pub const REDACTED: &[u8] = b"[REDACTED]";
/// Secrets shorter than this are ignored: scrubbing `true` or `1234` would shred innocent text,
/// and a secret that short is not protected by hiding it anyway.
pub const MIN_SECRET_LEN: usize = 8;

/// RFC 3986: everything except unreserved characters.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// JavaScript's `encodeURIComponent`, which also leaves `!*'()` alone.
const JS_COMPONENT: &AsciiSet = &RFC3986
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Finds and redacts stored secrets. Cheap to clone (the automaton is shared).
#[derive(Clone)]
pub struct Scrubber {
    needles: Arc<[Vec<u8>]>,
    /// `None` with needles present means the automaton could not be built: fail closed.
    ac: Option<AhoCorasick>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber")
            .field("needles", &self.needles.len())
            .finish()
    }
}

impl Scrubber {
    /// Builds a scrubber for `secrets`. Besides each secret as given (and trimmed), it scrubs the
    /// part after the first space (`Bearer sk-…` → `sk-…`), and for each of those the encoded
    /// forms listed in [`variants`]. Matching ignores ASCII case, so that hex digits in escapes
    /// match in any mix of cases (`%2f%3D`, `\u003C`); a secret echoed in another case is
    /// redacted as well.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = BTreeSet::new();
        for secret in secrets {
            let trimmed = secret.trim();
            let after_space = trimmed.split_once(' ').map(|(_, rest)| rest.trim());
            for s in [Some(secret), Some(trimmed), after_space]
                .into_iter()
                .flatten()
            {
                if s.len() >= MIN_SECRET_LEN {
                    needles.extend(variants(s));
                }
            }
        }
        needles.retain(|n| n.len() >= MIN_SECRET_LEN);
        let needles: Arc<[Vec<u8>]> = needles.into_iter().collect();
        let ac = if needles.is_empty() {
            None
        } else {
            let mut builder = AhoCorasick::builder();
            builder
                .match_kind(MatchKind::LeftmostLongest)
                .ascii_case_insensitive(true);
            // A fuzz target builds an automaton for every input, and libFuzzer's comparison
            // tracing makes building a DFA cost ~90% of each run; the contiguous NFA finds the
            // same matches and builds far faster. Product builds keep the automatic choice.
            #[cfg(fuzzing)]
            builder.kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA));
            builder.build(needles.iter()).ok()
        };
        Self { needles, ac }
    }

    /// True if there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Number of byte strings searched for (all variants of all secrets).
    pub fn needle_count(&self) -> usize {
        self.needles.len()
    }

    /// Replaces every occurrence of every needle with `[REDACTED]`. Borrows when nothing matched.
    pub fn scrub<'b>(&self, bytes: &'b [u8]) -> Cow<'b, [u8]> {
        if self.is_empty() || bytes.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let Some(ac) = &self.ac else {
            return Cow::Owned(REDACTED.to_vec());
        };
        let mut matches = ac.find_iter(bytes).peekable();
        if matches.peek().is_none() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut pos = 0;
        for m in matches {
            out.extend_from_slice(&bytes[pos..m.start()]);
            out.extend_from_slice(REDACTED);
            pos = m.end();
        }
        out.extend_from_slice(&bytes[pos..]);
        Cow::Owned(out)
    }

    /// A scrubber for a body that arrives in chunks.
    pub fn stream(&self) -> ScrubStream {
        ScrubStream {
            scrubber: self.clone(),
            pending: Vec::new(),
            swallowed: false,
        }
    }

    /// Length of the longest suffix of `data` that is a proper prefix of some needle: the bytes
    /// that might still become (part of) a match once more data arrives.
    fn held_back(&self, data: &[u8]) -> usize {
        let longest = self.needles.iter().map(Vec::len).max().unwrap_or(0);
        let max = longest.saturating_sub(1).min(data.len());
        (1..=max)
            .rev()
            .find(|&l| {
                let suffix = &data[data.len() - l..];
                self.needles
                    .iter()
                    .any(|n| n.len() > l && n[..l].eq_ignore_ascii_case(suffix))
            })
            .unwrap_or(0)
    }
}

/// Scrubs a chunked body. The concatenated output equals [`Scrubber::scrub`] of the whole body.
pub struct ScrubStream {
    scrubber: Scrubber,
    pending: Vec<u8>,
    /// Fail-closed mode saw data (see [`Scrubber::scrub`]).
    swallowed: bool,
}

impl fmt::Debug for ScrubStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrubStream")
            .field("held", &self.pending.len())
            .finish()
    }
}

impl ScrubStream {
    /// Scrubs one chunk of a stream. To catch secrets split across chunks it holds back only the
    /// longest suffix of the data that is a proper prefix of some needle — so a chunk ending in
    /// "\n\n" (as SSE events do) is passed on whole, at once.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        if self.scrubber.is_empty() {
            return Bytes::copy_from_slice(chunk);
        }
        let Some(ac) = &self.scrubber.ac else {
            // Fail closed, as `scrub` does: emit nothing; `finish` emits one [REDACTED].
            self.swallowed |= !chunk.is_empty();
            return Bytes::new();
        };
        self.pending.extend_from_slice(chunk);
        let data = &self.pending;
        let safe = data.len() - self.scrubber.held_back(data);
        // A match starting before `safe` cannot grow with more data (else a longer suffix would
        // be a needle prefix), so it is final; matches starting later wait for more data.
        let mut out = Vec::with_capacity(data.len());
        let mut pos = 0;
        for m in ac.find_iter(data.as_slice()) {
            if m.start() >= safe {
                break;
            }
            out.extend_from_slice(&data[pos..m.start()]);
            out.extend_from_slice(REDACTED);
            pos = m.end();
        }
        let cut = pos.max(safe);
        out.extend_from_slice(&data[pos..cut]);
        self.pending.drain(..cut);
        Bytes::from(out)
    }

    /// Whatever was held back, scrubbed.
    pub fn finish(self) -> Bytes {
        if self.swallowed {
            return Bytes::from_static(REDACTED);
        }
        Bytes::from(self.scrubber.scrub(&self.pending).into_owned())
    }
}

/// The forms in which `secret` may come back (each matched in any ASCII case):
///
/// - as it is;
/// - percent-encoded as RFC 3986, HTML forms (`+` for space) and JavaScript's
///   `encodeURIComponent` do, and with every byte encoded;
/// - as the inside of a JSON string, in the escaping styles of [`JSON_STYLES`];
/// - base64, standard and URL-safe, with and without padding, also at any offset inside a
///   longer base64 string (a Basic `Authorization` of `user:key`).
fn variants(secret: &str) -> Vec<Vec<u8>> {
    let raw = secret.as_bytes();
    let mut out = vec![raw.to_vec()];
    let form: String = url::form_urlencoded::byte_serialize(raw).collect();
    let every_byte: String = raw.iter().map(|b| format!("%{b:02X}")).collect();
    for encoded in [
        percent_encode(raw, RFC3986).to_string(),
        percent_encode(raw, JS_COMPONENT).to_string(),
        form,
        every_byte,
    ] {
        out.push(encoded.into_bytes());
    }
    out.extend(
        JSON_STYLES
            .iter()
            .map(|style| json_escaped(secret, *style).into_bytes()),
    );
    for engine in [STANDARD, URL_SAFE] {
        out.push(engine.encode(raw).into_bytes());
    }
    for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        out.extend((0..3).map(|k| base64_at_offset(&engine, raw, k)));
        out.push(engine.encode(raw).into_bytes());
    }
    out
}

/// How one JSON encoder escapes a string: which characters it writes as `\uXXXX`, and whether it
/// writes `/` as `\/`. Quotes, backslashes and control characters are always escaped.
#[derive(Debug, Clone, Copy)]
struct JsonStyle {
    /// `/` as `\/`.
    slash: bool,
    /// `<`, `>`, `&`, U+2028 and U+2029 as `\u....`.
    html: bool,
    /// Everything outside ASCII as `\u....` (UTF-16, surrogate pairs above U+FFFF).
    ascii_only: bool,
    /// `"`, `'`, `+` and `` ` `` as `\u....` too.
    quotes: bool,
    /// Every character as `\u....`.
    all: bool,
}

const PLAIN: JsonStyle = JsonStyle {
    slash: false,
    html: false,
    ascii_only: false,
    quotes: false,
    all: false,
};

/// The escaping styles a stored secret is looked for in, inside JSON strings.
const JSON_STYLES: &[JsonStyle] = &[
    // serde_json, JavaScript's JSON.stringify, Python's json.dumps(ensure_ascii=False).
    PLAIN,
    // PHP's json_encode with JSON_UNESCAPED_UNICODE.
    JsonStyle {
        slash: true,
        ..PLAIN
    },
    // Go's encoding/json.
    JsonStyle {
        html: true,
        ..PLAIN
    },
    // Python's json.dumps (ensure_ascii), Jackson's ESCAPE_NON_ASCII.
    JsonStyle {
        ascii_only: true,
        ..PLAIN
    },
    // PHP's json_encode defaults.
    JsonStyle {
        slash: true,
        ascii_only: true,
        ..PLAIN
    },
    // .NET's System.Text.Json default encoder.
    JsonStyle {
        html: true,
        ascii_only: true,
        quotes: true,
        ..PLAIN
    },
    // Encoders that escape every character.
    JsonStyle { all: true, ..PLAIN },
];

/// `secret` as the inside of a JSON string written in `style`.
fn json_escaped(secret: &str, style: JsonStyle) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(secret.len() + 8);
    let unicode = |out: &mut String, c: char| {
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            let _ = write!(out, "\\u{unit:04x}");
        }
    };
    for c in secret.chars() {
        let as_unicode = style.all
            || (style.html && matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'))
            || (style.ascii_only && !c.is_ascii())
            || (style.quotes && matches!(c, '"' | '\'' | '+' | '`'));
        match c {
            _ if as_unicode => unicode(&mut out, c),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if style.slash => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => unicode(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// The base64 characters that depend only on `raw` when it starts `k` bytes into a longer
/// stream: characters that mix in neighbouring bytes are left out.
fn base64_at_offset(engine: &GeneralPurpose, raw: &[u8], k: usize) -> Vec<u8> {
    let mut padded = vec![0u8; k];
    padded.extend_from_slice(raw);
    let encoded = engine.encode(&padded).into_bytes();
    let first = (8 * k).div_ceil(6);
    let last = (8 * (k + raw.len()) / 6).min(encoded.len());
    encoded
        .get(first..last)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "sk-live/abc+def=123";

    fn scrub_str(s: &Scrubber, text: &str) -> String {
        String::from_utf8(s.scrub(text.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn raw_and_encoded_forms() {
        let s = Scrubber::new([KEY]);
        for echoed in [
            KEY.to_owned(),
            "sk-live%2Fabc%2Bdef%3D123".to_owned(),
            "sk-live%2fabc%2bdef%3d123".to_owned(),
            STANDARD.encode(KEY),
            STANDARD_NO_PAD.encode(KEY),
            URL_SAFE.encode(KEY),
            URL_SAFE_NO_PAD.encode(KEY),
            r"sk-live\/abc+def=123".to_owned(),
        ] {
            let body = format!("{{\"error\":\"bad key {echoed} given\"}}");
            assert_eq!(
                scrub_str(&s, &body),
                "{\"error\":\"bad key [REDACTED] given\"}",
                "{echoed}"
            );
        }
    }

    #[test]
    fn form_and_js_encodings() {
        let s = Scrubber::new(["pass word!*()'~"]);
        for echoed in [
            "pass+word%21*%28%29%27%7E",   // form-urlencoded
            "pass%20word%21%2A%28%29%27~", // RFC 3986
            "pass%20word%21%2a%28%29%27~", // RFC 3986, lower hex
            "pass%20word!*()'~",           // encodeURIComponent
        ] {
            let body = format!("x={echoed}&y=1");
            let out = scrub_str(&s, &body);
            assert_eq!(out, "x=[REDACTED]&y=1", "{echoed}");
        }
    }

    #[test]
    fn json_escaped_form() {
        let s = Scrubber::new(["quote\"back\\slash"]);
        let body =
            serde_json::to_string(&serde_json::json!({"echo": "quote\"back\\slash"})).unwrap();
        assert_eq!(scrub_str(&s, &body), r#"{"echo":"[REDACTED]"}"#);
    }

    #[test]
    fn json_escapes_of_common_encoders() {
        let s = Scrubber::new(["sk&live<1>/x+y'é\"z", "pässwörd-1234"]);
        for echoed in [
            // Go's encoding/json.
            r#"sk\u0026live\u003c1\u003e/x+y'é\"z"#,
            // .NET's System.Text.Json (upper-case hex).
            r#"sk\u0026live\u003C1\u003E/x\u002By\u0027\u00E9\u0022z"#,
            // PHP's json_encode.
            r#"sk&live<1>\/x+y'\u00e9\"z"#,
            // Python's json.dumps.
            r#"p\u00e4ssw\u00f6rd-1234"#,
            // Every character escaped.
            r#"\u0070\u00e4\u0073\u0073\u0077\u00f6\u0072\u0064\u002d\u0031\u0032\u0033\u0034"#,
        ] {
            let body = format!(r#"{{"error":"bad key {echoed}"}}"#);
            assert_eq!(
                scrub_str(&s, &body),
                r#"{"error":"bad key [REDACTED]"}"#,
                "{echoed}"
            );
        }
    }

    #[test]
    fn percent_escapes_in_mixed_case() {
        let s = Scrubber::new([KEY]);
        for echoed in [
            "sk-live%2fabc%2Bdef%3d123",
            "sk-live%2Fabc%2bdef%3D123",
            "%73%6B%2d%6c%69%76%65%2F%61%62%63%2B%64%65%66%3D%31%32%33",
        ] {
            assert_eq!(
                scrub_str(&s, &format!("?k={echoed}&")),
                "?k=[REDACTED]&",
                "{echoed}"
            );
        }
    }

    #[test]
    fn bearer_part_and_trim() {
        let s = Scrubber::new(["Bearer sk-proj-0123456789", "  padded-secret  "]);
        assert_eq!(
            scrub_str(&s, "token sk-proj-0123456789 rejected"),
            "token [REDACTED] rejected"
        );
        assert_eq!(scrub_str(&s, "Bearer sk-proj-0123456789"), "[REDACTED]");
        assert_eq!(scrub_str(&s, "got padded-secret."), "got [REDACTED].");
    }

    #[test]
    fn base64_inside_longer_blob() {
        let key = "k3y-0123456789";
        let s = Scrubber::new([key]);
        for prefix in ["", "u", "us", "use", "user:"] {
            let blob = STANDARD.encode(format!("{prefix}{key}:trailing"));
            let out = scrub_str(&s, &format!("Basic {blob}"));
            assert!(out.contains("[REDACTED]"), "prefix {prefix:?}: {out}");
        }
    }

    #[test]
    fn short_and_empty() {
        let s = Scrubber::new(["short", "", "1234567"]);
        assert!(s.is_empty());
        assert_eq!(format!("{s:?}"), "Scrubber { needles: 0 }");
        assert!(matches!(s.scrub(b"short 1234567"), Cow::Borrowed(_)));
        let mut st = s.stream();
        assert_eq!(st.push(b"short"), &b"short"[..]);
        assert_eq!(st.finish(), &b""[..]);
        assert!(Scrubber::new(["Bearer abc"]).needle_count() > 0); // the whole value is 10 bytes
    }

    #[test]
    fn nothing_to_do_borrows() {
        let s = Scrubber::new([KEY]);
        assert!(matches!(s.scrub(b"clean body"), Cow::Borrowed(_)));
        assert!(matches!(s.scrub(KEY.as_bytes()), Cow::Owned(_)));
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("sk-live") && dbg.starts_with("Scrubber { needles: "),
            "{dbg}"
        );
    }

    #[test]
    fn overlapping_and_adjacent() {
        let s = Scrubber::new(["abcdefgh", "efghijkl"]);
        assert_eq!(scrub_str(&s, "abcdefghijkl"), "[REDACTED]ijkl");
        assert_eq!(scrub_str(&s, "abcdefghabcdefgh"), "[REDACTED][REDACTED]");
        // Leftmost-longest: the padded base64 wins over its unpadded prefix.
        let s = Scrubber::new(["abcdefghi1"]);
        let padded = STANDARD.encode("abcdefghi1");
        assert!(padded.ends_with('='));
        assert_eq!(scrub_str(&s, &format!("[{padded}]")), "[[REDACTED]]");
    }

    #[test]
    fn stream_passes_sse_events_at_once() {
        let s = Scrubber::new([KEY]);
        let mut st = s.stream();
        let ev = b"data: {\"delta\":\"hello\"}\n\n";
        assert_eq!(st.push(ev), &ev[..]);
        // A chunk ending in a possible start of the key is held back, then released.
        assert_eq!(st.push(b"data: sk-li"), &b"data: "[..]);
        assert_eq!(st.push(b"ve is not it\n\n"), &b"sk-live is not it\n\n"[..]);
        assert_eq!(st.push(b"key=sk-live/ab"), &b"key="[..]);
        assert_eq!(st.push(b"c+def=123\n\n"), &b"[REDACTED]\n\n"[..]);
        assert_eq!(st.push(b"tail sk-"), &b"tail "[..]);
        assert_eq!(st.finish(), &b"sk-"[..]);
    }

    #[test]
    fn stream_byte_by_byte() {
        let s = Scrubber::new([KEY]);
        let body = format!("a {KEY} b {} c {KEY}", STANDARD.encode(KEY));
        let mut st = s.stream();
        let mut out = Vec::new();
        for b in body.as_bytes() {
            out.extend_from_slice(&st.push(&[*b]));
        }
        out.extend_from_slice(&st.finish());
        assert_eq!(out, b"a [REDACTED] b [REDACTED] c [REDACTED]");
    }

    #[test]
    fn offset_variants_are_exact() {
        // For every offset, the needle is a substring of the real encoding of any surrounding.
        let raw = b"0123456789abcdef";
        for k in 0..3 {
            let needle = base64_at_offset(&STANDARD_NO_PAD, raw, k);
            assert!(needle.len() >= MIN_SECRET_LEN);
            for fill in [0u8, 0xff, b'x'] {
                let mut blob = vec![fill; k];
                blob.extend_from_slice(raw);
                blob.push(fill);
                let enc = STANDARD.encode(&blob);
                assert!(
                    enc.as_bytes().windows(needle.len()).any(|w| w == needle),
                    "k={k}"
                );
            }
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn stream_equals_whole(
            secret in "[A-Za-z0-9_+/= -]{8,40}",
            data in prop::collection::vec(any::<u8>(), 0..300),
            at in any::<prop::sample::Index>(),
            form in 0usize..5,
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let s = Scrubber::new([secret.as_str()]);
            prop_assume!(!s.is_empty());
            let inserted = match form {
                0 => secret.clone().into_bytes(),
                1 => percent_encode(secret.as_bytes(), RFC3986).to_string().into_bytes(),
                2 => STANDARD.encode(&secret).into_bytes(),
                3 => URL_SAFE_NO_PAD.encode(&secret).into_bytes(),
                _ => url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>().into_bytes(),
            };
            let pos = at.index(data.len() + 1);
            let mut body = data[..pos].to_vec();
            body.extend_from_slice(&inserted);
            body.extend_from_slice(&data[pos..]);

            let whole = s.scrub(&body).into_owned();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
            points.sort_unstable();
            let mut st = s.stream();
            let mut streamed = Vec::new();
            let mut prev = 0;
            for p in points.into_iter().chain([body.len()]) {
                streamed.extend_from_slice(&st.push(&body[prev..p]));
                prev = p;
            }
            streamed.extend_from_slice(&st.finish());
            prop_assert_eq!(&streamed, &whole);

            let trimmed = secret.trim();
            let after_space = trimmed.split_once(' ').map(|(_, r)| r.trim()).unwrap_or(trimmed);
            for v in [secret.as_str(), trimmed, after_space] {
                if v.len() < MIN_SECRET_LEN {
                    continue;
                }
                for form in [
                    v.as_bytes().to_vec(),
                    percent_encode(v.as_bytes(), RFC3986).to_string().into_bytes(),
                    STANDARD.encode(v).into_bytes(),
                    URL_SAFE_NO_PAD.encode(v).into_bytes(),
                ] {
                    prop_assert!(!contains(&whole, &form));
                }
            }
            for n in s.needles.iter() {
                prop_assert!(!contains(&whole, n));
            }
        }

        #[test]
        fn arbitrary_secrets_and_bodies_never_panic(
            secrets in prop::collection::vec(".{0,20}", 0..4),
            body in prop::collection::vec(any::<u8>(), 0..200),
            split in any::<prop::sample::Index>(),
        ) {
            let s = Scrubber::new(secrets.iter().map(String::as_str));
            let whole = s.scrub(&body).into_owned();
            let mid = split.index(body.len() + 1);
            let mut st = s.stream();
            let mut out = st.push(&body[..mid]).to_vec();
            out.extend_from_slice(&st.push(&body[mid..]));
            out.extend_from_slice(&st.finish());
            prop_assert_eq!(out, whole);
        }
    }
}
