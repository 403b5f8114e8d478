//! GJSON-style selection on JSON answers: `select=current.temp_c`, `choices.0.message.content`,
//! `items.#`, `{temp:current.temp_c,city:location.name}`.
//!
//! The `gjson` crate does the lookups, but it assumes valid JSON and accepts a large, loosely
//! specified path language (queries, modifiers, wildcards with backtracking). So brine accepts a
//! small, strict subset, checked up front, and builds mappings itself:
//!
//! - a *path* is components joined by `.`; a component is `#` (array count, or "for each
//!   element" when more follows), an array index, or a key. In keys, `\` escapes the next
//!   character, and these must be escaped: `\ . | # @ * ? { } [ ] ( ) , : ! = < > % " '`;
//! - a *mapping* `{key:path,...}` (or `{path,...}`, whose key is the path's last component)
//!   yields an object; `[path,...]` yields an array. Spaces around entries are ignored. A path
//!   that matches nothing yields `null` (also inside mappings, unlike GJSON which drops it).
//!
//! The body is validated with serde_json first, and the output is re-validated before it is
//! returned.

use std::fmt;

use serde::de::IgnoredAny;

/// Largest body `apply` will look at, and largest output it will build.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Longest expression `parse` accepts, in bytes.
pub const MAX_EXPR: usize = 1024;
/// Most entries in one mapping: each entry is a full scan of the body.
pub const MAX_ENTRIES: usize = 32;
/// Deepest nesting of arrays and objects in a selection: as deep as common JSON parsers read
/// (serde_json's default), so that any client can parse what brine returns.
pub const MAX_DEPTH: usize = 128;
/// Most `#` components in one path: gjson recurses once per `#.` level, and about 500 of them
/// overflow a 2 MiB thread stack (debug build); real answers need one or two.
pub const MAX_HASHES: usize = 16;

/// Characters that mean something to gjson in a path and must be escaped in a key.
const SPECIAL: &str = "\\.|#@*?{}[](),:!=<>%\"'";

/// Why a selection failed. Messages are safe to show callers: they never echo the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("invalid select expression: {0}")]
    Syntax(String),
    #[error("the upstream answer is not valid JSON")]
    NotJson,
    #[error("the upstream answer or the selection is too large (limit 16 MiB)")]
    TooLarge,
    #[error("the selection is nested more than 128 levels deep")]
    TooDeep,
    #[error("the selection could not be produced as valid JSON")]
    Internal,
}

fn syntax(msg: impl Into<String>) -> SelectError {
    SelectError::Syntax(msg.into())
}

#[derive(Clone)]
enum Shape {
    Path(String),
    Object(Vec<(String, String)>),
    Array(Vec<String>),
}

/// A validated select expression.
#[derive(Clone)]
pub struct Selector {
    shape: Shape,
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = match &self.shape {
            Shape::Path(p) => vec![p.as_str()],
            Shape::Object(e) => e.iter().map(|(_, p)| p.as_str()).collect(),
            Shape::Array(e) => e.iter().map(String::as_str).collect(),
        };
        f.debug_struct("Selector").field("paths", &entries).finish()
    }
}

/// Splits on unescaped `sep` (a `\` escapes the next character).
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Removes escaping backslashes: `a\.b` → `a.b`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if c == '\\' && !escaped {
            escaped = true;
        } else {
            out.push(c);
            escaped = false;
        }
    }
    out
}

/// Checks that every character of `text` is either escaped or not in `forbidden`.
fn check_escapes(text: &str, forbidden: &str, what: &str) -> Result<(), SelectError> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if chars.next().is_none() {
                return Err(syntax(format!("{what} ends with a lone `\\`")));
            }
        } else if forbidden.contains(c) {
            return Err(syntax(format!(
                "`{c}` in a {what} must be escaped as `\\{c}`"
            )));
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), SelectError> {
    if path.is_empty() {
        return Err(syntax("empty path"));
    }
    let comps = split_unescaped(path, '.');
    if comps.iter().filter(|c| **c == "#").count() > MAX_HASHES {
        return Err(syntax(format!("at most {MAX_HASHES} `#` per path")));
    }
    for comp in comps {
        if comp.is_empty() {
            return Err(syntax(
                "empty path component (leading, trailing or double `.`)",
            ));
        }
        if comp != "#" {
            check_escapes(comp, SPECIAL, "key")?;
        }
    }
    Ok(())
}

/// The key a `{path}` entry gets without an explicit `key:`: the last component, unescaped.
fn default_key(path: &str) -> String {
    unescape(split_unescaped(path, '.').last().copied().unwrap_or(path))
}

/// Body of a `{...}` or `[...]`, refusing an escaped closing bracket.
fn inner(expr: &str) -> Result<&str, SelectError> {
    let body = &expr[1..expr.len() - 1];
    let trailing = body.bytes().rev().take_while(|&b| b == b'\\').count();
    if trailing % 2 == 1 {
        return Err(syntax("unbalanced brackets"));
    }
    Ok(body)
}

fn entries(body: &str) -> Result<Vec<&str>, SelectError> {
    let parts: Vec<&str> = split_unescaped(body, ',')
        .into_iter()
        .map(str::trim)
        .collect();
    if parts.len() > MAX_ENTRIES {
        return Err(syntax(format!("at most {MAX_ENTRIES} entries")));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(syntax("empty entry"));
    }
    Ok(parts)
}

impl Selector {
    /// Validates `expr` (see the module docs for the accepted syntax).
    pub fn parse(expr: &str) -> Result<Self, SelectError> {
        if expr.len() > MAX_EXPR {
            return Err(syntax(format!("longer than {MAX_EXPR} bytes")));
        }
        if expr.chars().any(char::is_control) {
            return Err(syntax("control characters are not allowed"));
        }
        let shape = match expr.as_bytes() {
            [] => return Err(syntax("empty expression")),
            [b'{', .., b'}'] => {
                let mut pairs: Vec<(String, String)> = Vec::new();
                for entry in entries(inner(expr)?)? {
                    let (key, path) = match split_unescaped(entry, ':').as_slice() {
                        [path] => (default_key(path), *path),
                        [key, path] => {
                            let key = key.trim_end();
                            if key.is_empty() {
                                return Err(syntax("empty key"));
                            }
                            check_escapes(key, "\\{}[],:", "mapping key")?;
                            (unescape(key), path.trim_start())
                        }
                        _ => return Err(syntax("`:` in a path must be escaped as `\\:`")),
                    };
                    check_path(path)?;
                    if pairs.iter().any(|(k, _)| *k == key) {
                        return Err(syntax("duplicate key in mapping"));
                    }
                    pairs.push((key, path.to_owned()));
                }
                Shape::Object(pairs)
            }
            [b'[', .., b']'] => {
                let paths = entries(inner(expr)?)?;
                for p in &paths {
                    check_path(p)?;
                }
                Shape::Array(paths.into_iter().map(str::to_owned).collect())
            }
            [b'{' | b'[', ..] => return Err(syntax("unbalanced brackets")),
            _ => {
                check_path(expr)?;
                Shape::Path(expr.to_owned())
            }
        };
        Ok(Self { shape })
    }

    /// Selects from a JSON body and returns the selection as JSON.
    pub fn apply(&self, json: &[u8]) -> Result<Vec<u8>, SelectError> {
        if json.len() > MAX_BODY {
            return Err(SelectError::TooLarge);
        }
        let text = std::str::from_utf8(json).map_err(|_| SelectError::NotJson)?;
        // gjson assumes valid JSON; it must never see anything else.
        serde_json::from_str::<IgnoredAny>(text).map_err(|_| SelectError::NotJson)?;

        let mut out = String::new();
        match &self.shape {
            Shape::Path(path) => out = lookup(text, path)?,
            Shape::Object(pairs) => {
                out.push('{');
                for (i, (key, path)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let key = serde_json::to_string(key).map_err(|_| SelectError::Internal)?;
                    out.push_str(&key);
                    out.push(':');
                    append_capped(&mut out, &lookup(text, path)?)?;
                }
                out.push('}');
            }
            Shape::Array(paths) => {
                out.push('[');
                for (i, path) in paths.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    append_capped(&mut out, &lookup(text, path)?)?;
                }
                out.push(']');
            }
        }
        // Never hand back garbage, whatever gjson produced.
        serde_json::from_str::<IgnoredAny>(&out).map_err(|_| SelectError::Internal)?;
        if nesting_depth(&out) > MAX_DEPTH {
            return Err(SelectError::TooDeep);
        }
        Ok(out.into_bytes())
    }
}

/// Mappings can select the same large subtree many times; keep the output within the body cap.
/// How deeply arrays and objects nest in valid JSON text.
fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn append_capped(out: &mut String, piece: &str) -> Result<(), SelectError> {
    if out.len() + piece.len() > MAX_BODY {
        return Err(SelectError::TooLarge);
    }
    out.push_str(piece);
    Ok(())
}

/// One gjson lookup on validated JSON; `null` when nothing matches.
fn lookup(text: &str, path: &str) -> Result<String, SelectError> {
    // gjson is third-party code with index arithmetic; a bug there must become an error, not take
    // the request task down.
    std::panic::catch_unwind(|| {
        let v = gjson::get(text, path);
        if v.exists() {
            v.json().to_owned()
        } else {
            "null".to_owned()
        }
    })
    .map_err(|_| SelectError::Internal)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    #[test]
    fn selections_nest_at_most_max_depth() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let s = Selector::parse("0").unwrap();
        assert_eq!(
            s.apply(nested(MAX_DEPTH + 1).as_bytes()).unwrap().len(),
            2 * MAX_DEPTH
        );
        assert_eq!(
            s.apply(nested(MAX_DEPTH + 2).as_bytes()),
            Err(SelectError::TooDeep)
        );
        assert_eq!(
            s.apply(nested(100_000).as_bytes()),
            Err(SelectError::TooDeep)
        );
        assert_eq!(nesting_depth(r#"{"a":"[[[\"]]","b":[{}]}"#), 3);
    }

    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const WEATHER: &str = r##"{
        "location": {"name": "Lisbon", "country": "Portugal", "tz.id": "Europe/Lisbon"},
        "current": {"temp_c": 21.5, "condition": {"text": "Sunny"}, "uv": null, "ok": true},
        "choices": [{"message": {"content": "hi \"there\"\n"}}, {"message": {"content": "2nd"}}],
        "items": [1, 2, 3],
        "empty": [],
        "weird keys": {"a.b": 1, "#": 2, "@type": 3, "x:y": 4, "q?": 5, "é": 6, "sp ace": 7},
        "big": 123456789012345678901234567890
    }"##;

    fn sel(expr: &str, json: &str) -> Value {
        let out = Selector::parse(expr)
            .unwrap()
            .apply(json.as_bytes())
            .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    fn syntax_err(expr: &str) {
        match Selector::parse(expr) {
            Err(SelectError::Syntax(_)) => {}
            other => panic!("{expr:?} should be a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn plain_paths() {
        assert_eq!(sel("current.temp_c", WEATHER), json!(21.5));
        assert_eq!(sel("location.name", WEATHER), json!("Lisbon"));
        assert_eq!(sel("current.condition", WEATHER), json!({"text": "Sunny"}));
        assert_eq!(
            sel("choices.0.message.content", WEATHER),
            json!("hi \"there\"\n")
        );
        assert_eq!(sel("choices.1.message.content", WEATHER), json!("2nd"));
        assert_eq!(sel("items.#", WEATHER), json!(3));
        assert_eq!(sel("empty.#", WEATHER), json!(0));
        assert_eq!(
            sel("choices.#.message.content", WEATHER),
            json!(["hi \"there\"\n", "2nd"])
        );
        assert_eq!(sel("current.uv", WEATHER), Value::Null);
        assert_eq!(sel("current.ok", WEATHER), json!(true));
        assert_eq!(sel("items", WEATHER), json!([1, 2, 3]));
        assert_eq!(sel("#", "[1,2]"), json!(2));
        assert_eq!(sel("1", "[1,2]"), json!(2));
    }

    #[test]
    fn raw_values_are_kept() {
        // A number beyond f64 comes back verbatim, not rounded.
        let out = Selector::parse("big")
            .unwrap()
            .apply(WEATHER.as_bytes())
            .unwrap();
        assert_eq!(out, b"123456789012345678901234567890");
        let out = Selector::parse("a")
            .unwrap()
            .apply(br#"{"a":"\u00e9\ud83d\ude00"}"#)
            .unwrap();
        assert_eq!(out, br#""\u00e9\ud83d\ude00""#);
    }

    #[test]
    fn missing_is_null() {
        for expr in [
            "nope",
            "current.nope",
            "items.7",
            "items.-1",
            "current.temp_c.x",
            "items.a",
        ] {
            assert_eq!(sel(expr, WEATHER), Value::Null, "{expr}");
        }
        assert_eq!(sel("a", "42"), Value::Null);
        assert_eq!(sel("a", r#""str""#), Value::Null);
        assert_eq!(sel("#", "{}"), Value::Null);
    }

    #[test]
    fn escaped_keys() {
        assert_eq!(sel(r"location.tz\.id", WEATHER), json!("Europe/Lisbon"));
        assert_eq!(sel(r"weird keys.a\.b", WEATHER), json!(1));
        assert_eq!(sel(r"weird keys.\#", WEATHER), json!(2));
        assert_eq!(sel(r"weird keys.\@type", WEATHER), json!(3));
        assert_eq!(sel(r"weird keys.x\:y", WEATHER), json!(4));
        assert_eq!(sel(r"weird keys.q\?", WEATHER), json!(5));
        assert_eq!(sel("weird keys.é", WEATHER), json!(6));
        assert_eq!(sel("weird keys.sp ace", WEATHER), json!(7));
        // Escaped wildcards are literal, never patterns.
        assert_eq!(sel(r"weird keys.q\*", WEATHER), Value::Null);
    }

    #[test]
    fn mappings() {
        assert_eq!(
            sel("{temp:current.temp_c,city:location.name}", WEATHER),
            json!({"temp": 21.5, "city": "Lisbon"})
        );
        assert_eq!(
            sel(
                "{ temp : current.temp_c , location.name, n:items.#, gone:no.such }",
                WEATHER
            ),
            json!({"temp": 21.5, "name": "Lisbon", "n": 3, "gone": null})
        );
        assert_eq!(
            sel(r#"{"q\"k\\":items.0}"#, "{\"items\":[9]}"),
            json!({"\"q\"k\\\"": 9})
        );
        assert_eq!(sel(r"{a\,b:items.0}", WEATHER), json!({"a,b": 1}));
        assert_eq!(sel("{x:items}", WEATHER), json!({"x": [1, 2, 3]}));
        assert_eq!(
            sel("[items.0,nope,location.name]", WEATHER),
            json!([1, null, "Lisbon"])
        );
        // Key order is the expression's.
        let out = Selector::parse("{b:items.1,a:items.0}")
            .unwrap()
            .apply(WEATHER.as_bytes());
        assert_eq!(out.unwrap(), br#"{"b":2,"a":1}"#);
    }

    #[test]
    fn gjson_multipath_is_native_but_drops_missing() {
        // What the gjson crate itself does with `{...}`: it works, but omits missing paths.
        let v = gjson::get(r#"{"a":1,"b":{"c":2}}"#, "{a,x:b.c,missing}");
        assert_eq!(v.json(), r#"{"a":1,"x":2}"#);
    }

    #[test]
    fn syntax_errors() {
        for expr in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "..a",
            "{",
            "}",
            "{a:b",
            "a:b}",
            "{}",
            "[]",
            "{a:b,}",
            "{,a}",
            "{:a}",
            "{a:}",
            "{a:b:c}",
            "{a:b,a:c}",
            "{a,a}",
            "{a:{b:c}}",
            "{a:[b]}",
            r"{a:b\}",
            "[a,b",
            "a\nb",
            "a\u{0}",
            "a\u{7f}",
            "a\u{85}",
            r"a\",
            "a*",
            "a?",
            "a|b",
            "@reverse",
            "a.@this",
            "friends.#(last==\"Murphy\").first",
            "a(b)",
            "a!",
            "a,b",
            "a:b",
            "a=b",
            "a%",
            "#a",
            "a#",
            "a.##",
            "a\"b",
        ] {
            syntax_err(expr);
        }
        syntax_err(&"a".repeat(MAX_EXPR + 1));
        let many = (0..=MAX_ENTRIES)
            .map(|i| format!("k{i}:a"))
            .collect::<Vec<_>>()
            .join(",");
        syntax_err(&format!("{{{many}}}"));
        assert!(Selector::parse(&"a".repeat(MAX_EXPR)).is_ok());
    }

    #[test]
    fn not_json() {
        let s = Selector::parse("a").unwrap();
        for body in [
            &b""[..],
            b"{",
            b"{\"a\":1",
            b"{'a':1}",
            b"{\"a\":1}}",
            b"nul",
            b"\xff\xfe",
            b"{\"a\":\"\xff\"}",
            b"[1,]",
            b"{\"a\":NaN}",
            b"\xef\xbb\xbf{}", // BOM
        ] {
            assert_eq!(s.apply(body), Err(SelectError::NotJson), "{body:?}");
        }
    }

    /// serde_json's `IgnoredAny` validation has no recursion limit (it is iterative), and
    /// gjson skips nested values iteratively: deep documents are fine, and the deepest paths the
    /// caps allow do not exhaust a test thread's 2 MiB stack.
    #[test]
    fn deep_documents_and_paths() {
        let depth = 100_000;
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let most_counts = vec!["#"; MAX_HASHES].join(".");
        let mixed = format!(
            "{most_counts}.{}",
            vec!["0"; (MAX_EXPR - most_counts.len()) / 2].join(".")
        );
        let longest_index = vec!["0"; MAX_EXPR / 2].join(".");
        syntax_err(&vec!["#"; MAX_HASHES + 1].join("."));
        for expr in [most_counts.as_str(), &mixed, &longest_index, "0", "#"] {
            // Either a valid selection, or refused for nesting too deeply: never a crash.
            match Selector::parse(expr).unwrap().apply(deep.as_bytes()) {
                Ok(out) => assert!(serde_json::from_slice::<IgnoredAny>(&out).is_ok(), "{expr}"),
                Err(e) => assert_eq!(e, SelectError::TooDeep, "{expr}"),
            }
        }
    }

    #[test]
    fn size_limits() {
        let s = Selector::parse("a").unwrap();
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY));
        assert_eq!(s.apply(big.as_bytes()), Err(SelectError::TooLarge));
        // Output cap: many copies of a large subtree.
        let doc = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY / 8));
        let keys = (0..10)
            .map(|i| format!("k{i}:a"))
            .collect::<Vec<_>>()
            .join(",");
        let s = Selector::parse(&format!("{{{keys}}}")).unwrap();
        assert_eq!(s.apply(doc.as_bytes()), Err(SelectError::TooLarge));
    }

    #[test]
    fn errors_never_echo_body() {
        let s = Selector::parse("a").unwrap();
        let err = s.apply(br#"{"a":"sk_live_secret""#).unwrap_err();
        assert!(!err.to_string().contains("sk_live"));
        let dbg = format!("{s:?}");
        assert_eq!(dbg, r#"Selector { paths: ["a"] }"#);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "a", "b", "0", "1", "#", "a.b", "@x", "*", "q?", "é", "x:y", "sp ace", "\"", "\\", "{",
            "]", ",", "|", "%", "=",
        ])
        .prop_map(str::to_owned);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn escape(key: &str) -> String {
        key.chars()
            .flat_map(|c| SPECIAL.contains(c).then_some('\\').into_iter().chain([c]))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// A path built by walking the document (with keys escaped) finds exactly what the walk
        /// found — gjson and our escaping agree with serde_json.
        #[test]
        fn walk_agrees_with_serde(doc in json_value(), choices in prop::collection::vec(any::<usize>(), 1..5)) {
            let body = serde_json::to_string(&doc).unwrap();
            let mut cur: Value = serde_json::from_str(&body).unwrap();
            let mut comps = Vec::new();
            for c in choices {
                let next = match &cur {
                    Value::Object(m) if !m.is_empty() => {
                        let (k, v) = m.iter().nth(c % m.len()).unwrap();
                        comps.push(escape(k));
                        v.clone()
                    }
                    Value::Array(a) if !a.is_empty() => {
                        comps.push((c % a.len()).to_string());
                        a[c % a.len()].clone()
                    }
                    _ => break,
                };
                cur = next;
            }
            prop_assume!(!comps.is_empty());
            let path = comps.join(".");
            let out = Selector::parse(&path).unwrap().apply(body.as_bytes()).unwrap();
            let got: Value = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(got, cur, "path {}", path);
        }

        #[test]
        fn arbitrary_expressions_never_panic(expr in any::<String>()) {
            if let Ok(s) = Selector::parse(&expr) {
                let out = s.apply(WEATHER.as_bytes()).unwrap();
                prop_assert!(serde_json::from_slice::<IgnoredAny>(&out).is_ok());
            }
        }

        #[test]
        fn grammar_like_expressions_never_panic(
            expr in r"[{}\[\]a-c0-2#.,:\\ @*?|()]{0,24}",
            doc in json_value(),
        ) {
            let body = serde_json::to_vec(&doc).unwrap();
            if let Ok(s) = Selector::parse(&expr) {
                let out = s.apply(&body).unwrap();
                prop_assert!(serde_json::from_slice::<IgnoredAny>(&out).is_ok());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
            for expr in ["a", "#", "0.a", "{a:a,b:#}", "[a,0]"] {
                let r = Selector::parse(expr).unwrap().apply(&body);
                if let Ok(out) = r {
                    prop_assert!(serde_json::from_slice::<IgnoredAny>(&out).is_ok());
                }
            }
        }
    }
}
