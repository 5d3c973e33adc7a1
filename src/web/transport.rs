//! Moves OTLP request bodies to the collector: `fetch` (optionally with
//! `keepalive`) and `navigator.sendBeacon`, on `globalThis`.
//!
//! The same transport as `Tracing._send` in `pkg/tracelink.js`: a POST with
//! the content type and the configured headers, aborted after the export
//! timeout; a 2xx body is read (OTLP partial success), any other body is
//! cancelled so the connection is freed. `keepalive` is used only where a
//! page can unload under the request (a `document` exists); edge runtimes
//! have no use for it. Beacons cannot carry headers, so the content type
//! travels as the Blob's type.

use js_sys::{Array, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Blob, BlobPropertyBag, Headers, RequestInit, Response as FetchResponse};

use super::timer::Timer;
use crate::core::export::parse_retry_after;
use crate::core::pipeline::Response;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch_with_str_and_init(input: &str, init: &RequestInit) -> Result<Promise, JsValue>;
}

/// Where and how requests go.
pub struct Endpoint {
    /// The absolute traces URL (`…/v1/traces`).
    pub url: String,
    /// `application/x-protobuf` or `application/json`.
    pub content_type: &'static str,
    /// Headers sent with every fetch (content type included).
    headers: Headers,
    /// The same with `content-encoding: gzip`, for gzip'd bodies.
    gzip_headers: Headers,
    /// Abort a request after this long.
    pub timeout_ms: f64,
}

impl Endpoint {
    /// An endpoint; `headers` are extra request headers (e.g. auth). Fails
    /// with the name of a header the platform refuses.
    pub fn new(
        url: String,
        content_type: &'static str,
        headers: &[(String, String)],
        timeout_ms: f64,
    ) -> Result<Endpoint, String> {
        let h = Headers::new().map_err(|_| String::from("content-type"))?;
        for (k, v) in headers {
            h.set(k, v).map_err(|_| k.clone())?;
        }
        h.set("content-type", content_type).map_err(|_| String::from("content-type"))?;
        let gz = Headers::new_with_headers(&h).map_err(|_| String::from("content-encoding"))?;
        gz.set("content-encoding", "gzip").map_err(|_| String::from("content-encoding"))?;
        Ok(Endpoint { url, content_type, headers: h, gzip_headers: gz, timeout_ms })
    }
}

/// What became of a request, owned (see [`Response`] for the meaning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The HTTP status; 0 for a network error, 1 for a timeout.
    pub status: u16,
    pub retry_after: Option<String>,
    /// The body of a 2xx response.
    pub body: Option<Vec<u8>>,
}

impl Outcome {
    /// The pipeline's view of this outcome (`now_unix_ms` resolves an
    /// HTTP-date `Retry-After`).
    pub fn response(&self, now_unix_ms: u64) -> Response<'_> {
        match self.status {
            0 => Response::NetworkError,
            1 => Response::Timeout,
            status => Response::Http {
                status,
                retry_after_ms: self.retry_after.as_deref().and_then(|v| parse_retry_after(v, now_unix_ms)),
                body: self.body.as_deref(),
            },
        }
    }

    fn network_error() -> Outcome {
        Outcome { status: 0, retry_after: None, body: None }
    }
}

/// Whether `url` has the page's origin, or there is no page (a Worker's
/// `location` counts as the page).
pub fn same_origin_or_no_page(url: &str) -> bool {
    let location = Reflect::get(&js_sys::global(), &JsValue::from_str("location")).unwrap_or(JsValue::UNDEFINED);
    let Some(origin) = Reflect::get(&location, &JsValue::from_str("origin")).ok().and_then(|o| o.as_string()) else {
        return true;
    };
    web_sys::Url::new(url).map(|u| u.origin() == origin).unwrap_or(true)
}

fn has_global(name: &str) -> bool {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name)).is_ok_and(|v| !v.is_undefined() && !v.is_null())
}

/// Starts a POST of `body` (`gzip`: gzip'd by the core) now; the future
/// resolves to its outcome. Fails at once only when this runtime's `fetch`
/// throws synchronously.
pub fn post(
    endpoint: &Endpoint,
    body: &[u8],
    keepalive: bool,
    gzip: bool,
) -> Result<impl std::future::Future<Output = Outcome>, JsValue> {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(if gzip { &endpoint.gzip_headers } else { &endpoint.headers });
    init.set_body(&Uint8Array::from(body));
    if keepalive && has_global("document") {
        // (not in web-sys's RequestInit)
        let _ = Reflect::set(&init, &JsValue::from_str("keepalive"), &JsValue::TRUE);
    }
    let controller = AbortController::new().ok();
    if let Some(c) = &controller {
        init.set_signal(Some(&c.signal()));
    }
    let promise = fetch_with_str_and_init(&endpoint.url, &init)?;
    let timeout_ms = endpoint.timeout_ms;
    Ok(async move {
        // Owned by this future: cancelled when the request completes first.
        let mut timeout = controller.map(|c| Timer::new(move || c.abort()));
        if let Some(t) = &mut timeout {
            t.set(timeout_ms);
        }
        match JsFuture::from(promise).await {
            Ok(response) => read(response.unchecked_into()).await,
            Err(e) => {
                let aborted = Reflect::get(&e, &JsValue::from_str("name")).ok().and_then(|n| n.as_string());
                Outcome {
                    status: if aborted.as_deref() == Some("AbortError") { 1 } else { 0 },
                    ..Outcome::network_error()
                }
            }
        }
    })
}

async fn read(response: FetchResponse) -> Outcome {
    let status = response.status();
    if status < 100 {
        return Outcome::network_error(); // opaque: nothing to learn
    }
    let retry_after = response.headers().get("retry-after").ok().flatten();
    let mut body = None;
    if (200..300).contains(&status) {
        if let Ok(p) = response.array_buffer() {
            if let Ok(buf) = JsFuture::from(p).await {
                body = Some(Uint8Array::new(&buf).to_vec());
            }
        }
    } else if let Some(stream) = response.body() {
        // Free the connection; the body is of no use.
        let _ = JsFuture::from(stream.cancel()).await;
    }
    Outcome { status, retry_after, body }
}

/// Offers `body` to `navigator.sendBeacon`; whether the browser queued it.
pub fn beacon(endpoint: &Endpoint, body: &[u8]) -> bool {
    let Some(navigator) =
        Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok().filter(|n| n.is_object())
    else {
        return false;
    };
    let Some(send) = Reflect::get(&navigator, &JsValue::from_str("sendBeacon"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return false;
    };
    let options = BlobPropertyBag::new();
    options.set_type(endpoint.content_type);
    let parts = Array::of1(&Uint8Array::from(body));
    let Ok(blob) = Blob::new_with_u8_array_sequence_and_options(&parts, &options) else {
        return false;
    };
    send.call2(&navigator, &JsValue::from_str(&endpoint.url), &blob).is_ok_and(|v| v.as_bool() == Some(true))
}
