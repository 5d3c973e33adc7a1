//! OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body.
//!
//! Follows the OTLP/HTTP spec the way rotel does: only
//! `Content-Type: application/x-protobuf` (OTLP/JSON is answered 415; send JSON
//! through rotel, which forwards it here decoded), `Content-Encoding` `gzip` or
//! none, a protobuf `ExportTraceServiceResponse` on success, 400 for a body that
//! does not decode.
//!
//! Unlike rotel it answers CORS, so a browser page on another loopback origin
//! can export straight to the viewer: preflights get 204, and every answer to a
//! request with `Origin` allows that origin with credentials (which
//! `navigator.sendBeacon` needs).

use std::io::Read;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use otlp_embedded::proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;

use crate::ingest::Ingest;

/// Largest request body accepted, compressed or not.
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// Largest body after gzip decoding (a bound against compression bombs).
pub const MAX_DECODED_BYTES: u64 = 64 << 20;

const PROTOBUF: &str = "application/x-protobuf";

/// The receiver's routes, feeding `ingest`.
pub fn router(ingest: Ingest) -> Router {
    Router::new()
        .route("/v1/traces", post(export).options(preflight))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ingest)
}

async fn export(State(ingest): State<Ingest>, headers: HeaderMap, body: Bytes) -> Response {
    let response = match decode(&headers, &body) {
        Ok(request) => match ingest.export(request, "http").await {
            Ok(()) => {
                let body = ExportTraceServiceResponse { partial_success: None }.encode_to_vec();
                ([(header::CONTENT_TYPE, PROTOBUF)], body).into_response()
            }
            Err(status) => (StatusCode::INTERNAL_SERVER_ERROR, status.message().to_owned()).into_response(),
        },
        Err((status, message)) => (status, message).into_response(),
    };
    allow_origin(&headers, response)
}

/// Checks the headers and decodes the body into an export request.
fn decode(headers: &HeaderMap, body: &[u8]) -> Result<ExportTraceServiceRequest, (StatusCode, String)> {
    let content_type = header_str(headers, header::CONTENT_TYPE);
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case(PROTOBUF) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {content_type:?} not supported: send {PROTOBUF} (OTLP/JSON goes through rotel)\n"),
        ));
    }
    let encoding = header_str(headers, header::CONTENT_ENCODING).trim();
    let decoded;
    let body = if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        body
    } else if encoding.eq_ignore_ascii_case("gzip") {
        decoded = gunzip(body)?;
        &decoded[..]
    } else {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {encoding:?} not supported: use gzip or none\n"),
        ));
    };
    ExportTraceServiceRequest::decode(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("not an OTLP ExportTraceServiceRequest: {e}\n")))
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, (StatusCode, String)> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad gzip body: {e}\n")))?;
    if out.len() as u64 > MAX_DECODED_BYTES {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, format!("body over {MAX_DECODED_BYTES} bytes once decoded\n")));
    }
    Ok(out)
}

async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static("content-type, content-encoding"));
    out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
    out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    allow_origin(&headers, response)
}

fn allow_origin(request: &HeaderMap, mut response: Response) -> Response {
    if let Some(origin) = request.get(header::ORIGIN) {
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        out.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}
