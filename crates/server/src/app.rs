//! The router: routes, OpenAPI, and the middleware every response passes through.

use std::time::Duration;

use axum::Json;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::BodyReadTimeout;
use crate::openapi::SharedResponses;
use crate::routes::{
    account, auth, batch, handoffs, health, intake, intake_page, logs, pages, public, records,
    tokens, webhooks,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "brine",
        description = "A self-hosted credential vault. Every error answers with the \
                       `{\"error\", \"message\"}` envelope.",
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "read", description = "Where code reads credentials"),
        (name = "auth", description = "Sign up, sign in (with the second factor), sign out"),
        (name = "account", description = "The signed-in account: sessions, history, password, two-factor sign-in, deletion"),
        (name = "records", description = "The owner's management API"),
        (name = "handoffs", description = "A value handed to someone until an end date: a secure page and a key, ended together"),
        (name = "logs", description = "Usage across the account: sums, series, the event log, export"),
        (name = "intake", description = "Intake links: ask someone for a secret, once"),
        (name = "secure page", description = "Password-protected pages for people (HTML)"),
        (name = "intake page", description = "Where someone sends the secret an intake link asks for (HTML)"),
        (name = "health", description = "Probes"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The routes and their OpenAPI description, from one source.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::refresh))
        .routes(routes!(account::show, account::delete))
        .routes(routes!(account::change_password))
        .routes(routes!(account::sessions))
        .routes(routes!(account::end_session))
        .routes(routes!(account::events))
        .routes(routes!(account::two_factor_setup))
        .routes(routes!(account::two_factor_enable))
        .routes(routes!(account::two_factor_disable))
        .routes(routes!(records::create, records::list))
        .routes(routes!(records::show, records::update, records::delete))
        .routes(routes!(records::reveal))
        .routes(routes!(records::disable))
        .routes(routes!(records::enable))
        .routes(routes!(records::rotate, records::remove_api_key))
        .routes(routes!(records::put_secure_page))
        .routes(routes!(records::events))
        .routes(routes!(records::try_bridge))
        .routes(routes!(records::test_key))
        .routes(routes!(logs::summary))
        .routes(routes!(logs::series))
        .routes(routes!(logs::events))
        .routes(routes!(webhooks::put, webhooks::show, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(tokens::describe))
        .routes(routes!(handoffs::create, handoffs::list))
        .routes(routes!(handoffs::show))
        .routes(routes!(handoffs::end))
        .routes(routes!(handoffs::done))
        .routes(routes!(intake::create, intake::list))
        .routes(routes!(intake::show, intake::revoke))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(pages::show, pages::unlock))
                .routes(routes!(intake_page::show, intake_page::submit))
                .layer(
                    ServiceBuilder::new()
                        .layer(set_header(
                            HeaderName::from_static("x-robots-tag"),
                            "noindex, nofollow",
                        ))
                        .layer(set_header(
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'none'; style-src 'self'; script-src 'self'; \
                             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
                        )),
                ),
        )
        // Everything so far answers quickly or not at all. Reads, bridges and batches below
        // have their own deadlines (a bridge's timeouts, the batch deadline).
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Timeout",
                        "The server took too long to answer this request.",
                    )
                }))
                .timeout(Duration::from_secs(30)),
        )
        .routes(routes!(public::read, public::unlock))
        .routes(routes!(batch::batch))
        // An export streams for as long as the log is long.
        .routes(routes!(logs::export))
}

/// The OpenAPI document, as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut spec = api().into_openapi();
    SharedResponses.modify(&mut spec);
    spec
}

fn set_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

pub fn router(state: AppState, max_body_bytes: usize, body_read_timeout: Duration) -> axum::Router {
    let metrics = state.gate.records.metrics().clone();
    let (router, mut spec) = api().split_for_parts();
    SharedResponses.modify(&mut spec);
    let spec = std::sync::Arc::new(spec);
    router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { Json(spec.as_ref().clone()) }
            }),
        )
        // Bridges take any method their policy allows, and paths below their URL.
        .route(
            "/r/{uuid}",
            axum::routing::on(
                MethodFilter::PUT
                    .or(MethodFilter::PATCH)
                    .or(MethodFilter::DELETE)
                    .or(MethodFilter::OPTIONS),
                // The same handler as GET: only bridges take these methods.
                public::read,
            ),
        )
        .route("/r/{uuid}/{*path}", axum::routing::any(public::with_path))
        .route("/batch", axum::routing::options(batch::preflight))
        .merge(crate::dashboard::router())
        .route("/static/brine.css", axum::routing::get(pages::stylesheet))
        .route("/static/secure-page.js", axum::routing::get(pages::script))
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "This address does not accept that method.",
            )
        })
        // Outermost of the state's layers: a looping request is refused before anything else.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::loop_guard::refuse_loops,
        ))
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(BodyReadTimeout(body_read_timeout)))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(
            ServiceBuilder::new()
                .layer(set_header(header::CACHE_CONTROL, "no-store"))
                .layer(set_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(set_header(header::REFERRER_POLICY, "no-referrer"))
                .layer(set_header(header::X_FRAME_OPTIONS, "DENY"))
                // Pages set their own policy; everything else is JSON and needs none of it.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
                )),
        )
        .layer(
            TraceLayer::new_for_http()
                // Log the path only: query strings and headers may carry secrets.
                .make_span_with(|req: &Request<_>| {
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_response(
                    |res: &Response, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            status = res.status().as_u16(),
                            micros = latency.as_micros() as u64,
                            "response"
                        );
                    },
                ),
        )
        // Outermost, so that every answer is counted (a panic's too). Layers run after routing:
        // the route's template is known.
        .layer(crate::metrics::CountRequests(metrics))
}
