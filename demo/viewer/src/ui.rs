//! Jaeger UI and its JSON API, from `otlp-embedded`, plus `/healthz`.
//!
//! The vendored UI is a single-page app: otlp-embedded answers its client-side
//! routes (`/`, `/search`, `/trace/<id>`) with the index page but status 307 and
//! no `Location`. Those answers are turned into plain 200s here, so `curl -f`,
//! readiness probes and browsers all see a page.

use axum::http::{header, StatusCode};
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use otlp_embedded::StateRef;

/// UI, `/api/...` and `/healthz` over `state`.
pub fn router(state: StateRef) -> Router {
    otlp_embedded::ui_app(state, "/")
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(map_response(redirect_without_location_is_ok))
}

async fn redirect_without_location_is_ok(mut response: Response) -> Response {
    if response.status() == StatusCode::TEMPORARY_REDIRECT && !response.headers().contains_key(header::LOCATION) {
        *response.status_mut() = StatusCode::OK;
    }
    response
}
