//! Where code reads: `/r/{uuid}` and `POST /batch`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// A credential's value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataBody {
    /// The value (a string), or the part of a JSON value that `select` picked.
    #[schema(value_type = Value, example = "sk_live_51H...")]
    pub data: Box<RawValue>,
}

/// Opens a private record with its password instead of an X-API-Key.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    pub password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub requests: Vec<BatchItem>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub uuid: String,
    /// Default GET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Query parameters for the call (declared params, and anything a bridge passes on).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    /// Headers for this item, such as its `X-API-Key`. `Origin` comes from the batch request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A string is sent as is; anything else as JSON.
    #[schema(value_type = Option<Value>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    pub uuid: String,
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// What the single call would have returned: JSON when it is JSON, else a string.
    #[schema(value_type = Value)]
    pub body: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// In the order of the requests.
    pub results: Vec<BatchResult>,
    /// False when any item failed (status 400 or more).
    pub completed: bool,
}
