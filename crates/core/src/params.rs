//! Declared `{{name}}` parameters of a bridge's URL: what a caller may fill in, and how.

use serde::{Deserialize, Serialize};

/// How a value placed in the URL path is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// Exactly one path segment: `/` is encoded.
    #[default]
    Segment,
    /// One or more segments: the value is split on `/` and each part encoded.
    Path,
}

/// A declared parameter. Deserializes from `"city"` (a segment) or `{"name":"p","kind":"path"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ParamSpecRepr")]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
}

impl ParamSpec {
    pub fn segment(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: ParamKind::Segment,
        }
    }

    pub fn path(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: ParamKind::Path,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ParamSpecRepr {
    Name(String),
    Full(FullSpec),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullSpec {
    name: String,
    #[serde(default)]
    kind: ParamKind,
}

impl From<ParamSpecRepr> for ParamSpec {
    fn from(r: ParamSpecRepr) -> Self {
        match r {
            ParamSpecRepr::Name(name) => Self::segment(name),
            ParamSpecRepr::Full(FullSpec { name, kind }) => Self { name, kind },
        }
    }
}
