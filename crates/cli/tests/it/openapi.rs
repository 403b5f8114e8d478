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
    ];
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, expected.len(), "every operation is listed here");
    for (path, method) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        let responses = op["responses"].as_object().unwrap();
        // Health answers only 200; the secure page answers in HTML, by design.
        if path != "/healthz" && !path.starts_with("/secure/") {
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
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}
