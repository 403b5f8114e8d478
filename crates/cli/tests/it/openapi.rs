//! The OpenAPI document covers every route and its errors.

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn openapi_lists_every_route_with_its_errors() {
    let s = TestServer::start().await;
    let res = s.get("/api/openapi.json").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc = body(res).await;
    assert_eq!(doc, serde_json::to_value(brine_server::openapi()).unwrap());
    let expected = [
        ("/healthz", "get"),
        ("/batch", "post"),
        ("/r/{uuid}", "get"),
        ("/r/{uuid}", "post"),
        ("/api/v1/auth/signup", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/account", "get"),
        ("/api/v1/account", "delete"),
        ("/api/v1/account/password", "post"),
        ("/api/v1/account/sessions", "get"),
        ("/api/v1/account/sessions/{id}", "delete"),
        ("/api/v1/account/events", "get"),
        ("/api/v1/account/two-factor/setup", "post"),
        ("/api/v1/account/two-factor/enable", "post"),
        ("/api/v1/account/two-factor/disable", "post"),
        ("/api/v1/records", "get"),
        ("/api/v1/records", "post"),
        ("/api/v1/records/{uuid}", "get"),
        ("/api/v1/records/{uuid}", "patch"),
        ("/api/v1/records/{uuid}", "delete"),
        ("/api/v1/records/{uuid}/value", "get"),
        ("/api/v1/records/{uuid}/disable", "post"),
        ("/api/v1/records/{uuid}/enable", "post"),
        ("/api/v1/records/{uuid}/api-key", "post"),
        ("/api/v1/records/{uuid}/api-key", "delete"),
        ("/api/v1/records/{uuid}/secure-page", "put"),
        ("/api/v1/records/{uuid}/try", "post"),
        ("/api/v1/records/{uuid}/test-key", "post"),
        ("/secure/{uuid}", "get"),
        ("/secure/{uuid}", "post"),
        ("/api/v1/records/{uuid}/events", "get"),
        ("/api/v1/records/{uuid}/webhook", "put"),
        ("/api/v1/records/{uuid}/webhook", "get"),
        ("/api/v1/records/{uuid}/webhook", "delete"),
        ("/api/v1/records/{uuid}/webhook/secret", "post"),
        ("/api/v1/logs/summary", "get"),
        ("/api/v1/logs/series", "get"),
        ("/api/v1/logs/events", "get"),
        ("/api/v1/logs/export", "get"),
        ("/api/v1/tokens", "get"),
        ("/api/v1/tokens", "post"),
        ("/api/v1/tokens/{uuid}", "delete"),
        ("/api/v1/service-token", "get"),
        ("/api/v1/handoffs", "post"),
        ("/api/v1/handoffs", "get"),
        ("/api/v1/handoffs/{id}", "get"),
        ("/api/v1/handoffs/{id}/end", "post"),
        ("/api/v1/handoffs/{id}/done", "post"),
        ("/api/v1/intake", "post"),
        ("/api/v1/intake", "get"),
        ("/api/v1/intake/{id}", "get"),
        ("/api/v1/intake/{id}", "delete"),
        ("/intake/{token}", "get"),
        ("/intake/{token}", "post"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, expected.len(), "every operation is listed here");
    for (path, method) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        let responses = op["responses"].as_object().unwrap();
        // Health answers only 200; the secure and intake pages answer in HTML, by design.
        if path != "/healthz" && !path.starts_with("/secure/") && !path.starts_with("/intake/") {
            let documents_errors = responses.iter().any(|(code, r)| {
                code.starts_with('4')
                    && r["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|s| s.ends_with("/ErrorBody"))
            });
            assert!(
                documents_errors,
                "{method} {path} documents its error envelope"
            );
        }
    }
    // A bridge's probe is described where the policy is.
    let probe = &doc["components"]["schemas"]["Probe"]["properties"];
    for field in ["method", "path", "accepted", "params"] {
        assert!(probe[field].is_object(), "Probe.{field} is documented");
    }
    let status = &doc["components"]["schemas"]["RecordStatus"]["enum"];
    assert!(
        status
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("disabled")),
        "{status}"
    );
    let view = &doc["components"]["schemas"]["RecordView"]["properties"];
    assert!(view["last_used_at"].is_object(), "{view}");
    assert!(doc["components"]["schemas"]["SecurePageBody"]["properties"]["label"].is_object());
    let webhook = &doc["components"]["schemas"]["WebhookBody"]["properties"];
    assert!(
        webhook["url"].is_object() && webhook["events"].is_object(),
        "{webhook}"
    );
    let handoff = &doc["components"]["schemas"]["CreateHandoff"]["properties"];
    assert_eq!(handoff["ends_at"]["format"], "date-time", "{handoff}");
    assert!(doc["components"]["schemas"]["HandoffView"]["properties"]["todo"].is_object());
    let intake = &doc["components"]["schemas"]["CreateIntake"]["properties"];
    assert!(
        intake["asked_for"].is_object() && intake["into"].is_object(),
        "{intake}"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}

/// Found by the schemathesis run (scripts/api-fuzz): a body that is not JSON answers 415 on
/// every operation that takes JSON, and the document did not say so on most of them. Each such
/// answer is now documented, with the envelope, and this checks it against the real server.
#[tokio::test]
async fn every_json_operation_documents_its_answer_to_a_body_that_is_not_json() {
    let s = TestServer::start().await;
    let token = s.signup("spec-415@example.com").await;
    let record = uuid_of(
        &s.create(
            &token,
            serde_json::json!({"name": "n", "access": "private", "data": "canary-spec-415"}),
        )
        .await,
    );
    let doc = serde_json::to_value(brine_server::openapi()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["requestBody"]["content"]["application/json"].is_null() {
                continue;
            }
            let url = path
                .replace("{uuid}", &record)
                .replace("{id}", "00000000-0000-4000-8000-000000000000")
                .replace("{token}", "no-such-token");
            let res = s
                .request(method.to_uppercase().parse().unwrap(), &url)
                .bearer_auth(&token)
                .header("Content-Type", "text/plain")
                .body("canary-spec-415 is not JSON")
                .send()
                .await
                .unwrap();
            let status = res.status();
            let documented = &op["responses"][status.as_str()];
            assert!(
                documented.is_object(),
                "{method} {path} answers {status}, which its document does not list"
            );
            assert!(status.is_client_error(), "{method} {path}: {status}");
            let text = res.text().await.unwrap();
            assert!(!text.contains("canary-spec-415"), "{method} {path}: {text}");
            let envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(envelope["error"].is_string() && envelope["message"].is_string());
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} JSON operations");
}

/// Found by the schemathesis run: the document typed a read's `data` (and the owner's reveal,
/// a batch item's body, the playground's body) as an object, while a credential's value is a
/// string; and it gave `limit` the bounds 1 and 500, which the server clamps to instead of
/// refusing (and a 32-bit signed range, where the server takes any unsigned 32-bit number).
#[tokio::test]
async fn the_document_types_values_as_any_json_and_limits_as_clamped() {
    let s = TestServer::start().await;
    let doc = serde_json::to_value(brine_server::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("DataBody", "data"),
        ("RevealBody", "data"),
        ("BatchResult", "body"),
        ("TryResult", "body"),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert!(property.is_object(), "{schema}.{field} is documented");
        assert!(
            property.get("type").is_none(),
            "{schema}.{field} takes any JSON: {property}"
        );
    }
    let token = s.signup("spec-limit@example.com").await;
    for path in ["/api/v1/logs/events", "/api/v1/logs/export"] {
        let res = s
            .get(&format!("{path}?limit=0"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let events = &doc["paths"]["/api/v1/logs/events"]["get"]["parameters"];
    let limit = events
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    // Any u32 is accepted (and clamped), so the document may not promise a 400 for 0 or 501.
    assert_eq!(limit["schema"]["minimum"], 0, "{limit}");
    assert_eq!(limit["schema"]["maximum"], u64::from(u32::MAX), "{limit}");
}

/// The stateful fuzzer follows these: the record a create call returns is the one that the
/// operations on `{uuid}` act on.
#[test]
fn a_created_record_links_to_the_operations_on_it() {
    let doc = serde_json::to_value(brine_server::openapi()).unwrap();
    let links = doc["paths"]["/api/v1/records"]["post"]["responses"]["201"]["links"]
        .as_object()
        .unwrap();
    let targets: Vec<&str> = links
        .values()
        .map(|l| l["operationRef"].as_str().unwrap())
        .collect();
    for target in [
        "#/paths/~1api~1v1~1records~1{uuid}/get",
        "#/paths/~1api~1v1~1records~1{uuid}/patch",
        "#/paths/~1api~1v1~1records~1{uuid}/delete",
        "#/paths/~1r~1{uuid}/get",
    ] {
        assert!(targets.contains(&target), "{target} in {targets:?}");
    }
    for link in links.values() {
        assert_eq!(link["parameters"]["uuid"], "$response.body#/record/uuid");
    }
}
