//! Finishing touches on the OpenAPI document that follow from the shared plumbing rather than
//! from any one handler: the errors that extractors and layers give every operation, and the
//! links from a created record to the operations on it. Handlers list only their own answers;
//! a status a handler already documents keeps its own description.

use utoipa::Modify;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{AnyOfBuilder, Object, Schema, SchemaType};
use utoipa::openapi::{Content, ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// Operations that read their JSON body whatever its content type (see docs/api.md, Basics).
const ANY_CONTENT_TYPE: &[(&str, &str)] = &[("/api/v1/records/{uuid}/api-key", "post")];

/// Operations that answer from memory only: no database, no timeout layer.
const NO_STORE: &[&str] = &["/healthz"];

/// Record operations a created record links to, by path (every method on them).
const RECORD_PATH_PREFIXES: &[&str] = &["/api/v1/records/{uuid}", "/r/{uuid}", "/secure/{uuid}"];

pub struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let record_operations = record_operations(openapi);
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in operations_mut(item) {
                add_shared_errors(path, method, op);
                if path == "/r/{uuid}" {
                    relay_bridge_calls(op);
                }
                if path == "/api/v1/records" && method == "post" {
                    link_created_record(op, &record_operations);
                }
            }
        }
    }
}

fn add_shared_errors(path: &str, method: &str, op: &mut Operation) {
    let json_body = op.request_body.as_ref().is_some_and(|body| match body {
        RefOr::T(body) => body.content.contains_key("application/json"),
        RefOr::Ref(_) => true,
    });
    if json_body {
        add(
            op,
            "400",
            "Malformed JSON, or a missing, unknown or invalid field",
        );
        add(op, "413", "The body is larger than `max_body_bytes`");
        if !ANY_CONTENT_TYPE.contains(&(path, method)) {
            add(op, "415", "The body is not sent as `application/json`");
        }
    }
    let has_query = op.parameters.iter().flatten().any(
        |p| matches!(p, RefOr::T(p) if p.parameter_in == utoipa::openapi::path::ParameterIn::Query),
    );
    if has_query {
        add(op, "400", "A query parameter is not valid");
    }
    let bearer = op
        .security
        .iter()
        .flatten()
        .any(|s| serde_json::to_value(s).is_ok_and(|v| v.get("bearer").is_some()));
    if bearer {
        add(op, "401", "Not signed in");
    }
    // The pages answer an unknown uuid or token with the same HTML as a known one.
    if path.contains("{uuid}") && !path.starts_with("/secure/") {
        add(
            op,
            "404",
            "No such record (or not in the one spelling of its uuid)",
        );
    }
    if !NO_STORE.contains(&path) {
        add(
            op,
            "503",
            "`Service unavailable`: the database cannot be reached or written right now \
             (see Retry-After)",
        );
    }
}

/// `/r/{uuid}` is also where bridges are called. A credential takes `UnlockBody` (ignored when an
/// X-API-Key is sent) and answers `DataBody`; a bridge passes any body upstream unread and relays
/// its upstream's answer as it is: any JSON, or any other content type.
fn relay_bridge_calls(op: &mut Operation) {
    if let Some(RefOr::T(body)) = op.request_body.as_mut() {
        body.content
            .insert("application/json".to_owned(), any_or("UnlockBody"));
        body.content
            .insert("*/*".to_owned(), RefOr::T(ContentBuilder::new().build()));
    }
    if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
        ok.content
            .insert("application/json".to_owned(), any_or("DataBody"));
        ok.content
            .insert("*/*".to_owned(), RefOr::T(ContentBuilder::new().build()));
    }
}

/// JSON content that is the named schema, or any other JSON.
fn any_or(schema: &str) -> RefOr<Content> {
    let either = Schema::AnyOf(
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(schema))
            .item(Object::with_type(SchemaType::AnyValue))
            .build(),
    );
    RefOr::T(ContentBuilder::new().schema(Some(RefOr::T(either))).build())
}

/// Documents an error answer with the envelope, unless the handler already documents it.
fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error_response(description));
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .into()
}

/// The `operationRef` of every operation on one record.
fn record_operations(openapi: &OpenApi) -> Vec<String> {
    let mut refs = Vec::new();
    for (path, item) in &openapi.paths.paths {
        if !RECORD_PATH_PREFIXES.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        let escaped = path.replace('~', "~0").replace('/', "~1");
        for (method, _) in operations(item) {
            refs.push(format!("#/paths/{escaped}/{method}"));
        }
    }
    refs
}

/// The record a create call returns is the one its follow-up operations act on.
fn link_created_record(op: &mut Operation, targets: &[String]) {
    let Some(RefOr::T(created)) = op.responses.responses.get_mut("201") else {
        return;
    };
    for target in targets {
        let name = target
            .trim_start_matches("#/paths/")
            .replace("~1", "_")
            .replace(['{', '}', '~', '-'], "");
        let link = LinkBuilder::new()
            .operation_ref(target)
            .parameter("uuid", "$response.body#/record/uuid")
            .build();
        created.links.insert(name, RefOr::T(link));
    }
}

fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("patch", &item.patch),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}
