//! A Rust wasm page (plain wasm-bindgen) traced with tracelink through the
//! OpenTelemetry API: a click on *Ping the backend* is a span, the request
//! it makes is a CLIENT span under it carrying `traceparent`, and the
//! backend's spans join the same trace. Spans export on their own (batched,
//! and at once when the page is hidden); `flush()` exports on demand.
//!
//! Settings come from the page's query string: `api` (the backend's origin,
//! which may receive trace headers), `otlp` (the traces URL, default
//! `/otlp/v1/traces`, a same-origin relay), `protocol` (`http/protobuf`
//! or `http/json`) and `batch_delay_ms` (how long spans wait for a batch,
//! default 1000; the end-to-end test sets it high to see page hide export).
//!
//! Built by `scripts/build-rust-app.sh`. Without the default feature
//! `traced` it is the same app without tracelink (the size baseline); the
//! feature `tracing` adds a `tracing` span through tracing-opentelemetry.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Document, Request, Response};

/// The page's settings (see the crate docs).
#[cfg_attr(not(feature = "traced"), allow(dead_code))] // the untraced build reads only `api`
struct Config {
    api: String,
    otlp: String,
    protocol: String,
    batch_delay: std::time::Duration,
}

impl Config {
    fn from_page(document: &Document) -> Result<Config, JsValue> {
        let href = document.location().ok_or("no location")?.href()?;
        let query = web_sys::Url::new(&href)?.search_params();
        let get = |key: &str, default: &str| query.get(key).unwrap_or_else(|| default.to_owned());
        Ok(Config {
            api: get("api", ""),
            otlp: get("otlp", "/otlp/v1/traces"),
            protocol: get("protocol", "http/protobuf"),
            batch_delay: std::time::Duration::from_millis(get("batch_delay_ms", "1000").parse().unwrap_or(1000)),
        })
    }
}

#[wasm_bindgen(start)]
pub fn start() -> Result<(), JsValue> {
    let document = web_sys::window().ok_or("not a page")?.document().ok_or("no document")?;
    let config = Config::from_page(&document)?;
    #[cfg(feature = "traced")]
    telemetry::install(&config)?;

    let button = document.get_element_by_id("ping").ok_or("no #ping button")?;
    let api = config.api.clone();
    let on_click = Closure::<dyn FnMut()>::new(move || spawn_local(ping(api.clone())));
    button.add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref())?;
    on_click.forget(); // lives as long as the page
    button.remove_attribute("disabled")?;
    Ok(())
}

/// The user action: asks the backend, shows the answer.
async fn ping(api: String) {
    let (text, trace_id) = in_action_span("ui.click ping", async move {
        let answer = async {
            let request = Request::new_with_str(&format!("{api}/api/ping"))?;
            let response: Response = fetch(&request).await?; // a CLIENT span; traceparent if allowed
            let body = JsFuture::from(response.json()?).await?;
            js_sys::JSON::stringify(&body).map(String::from)
        };
        answer.await.unwrap_or_else(|e| {
            let message = js_sys::Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string());
            String::from("error: ") + &message.or_else(|| e.as_string()).unwrap_or_default()
        })
    })
    .await;
    if let Some(out) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("result")) {
        out.set_text_content(Some(&text));
        let _ = out.set_attribute("data-trace-id", &trace_id);
    }
}

/// Exports every span ended so far (resolves when the collector has them).
#[wasm_bindgen]
pub async fn flush() -> Result<(), JsValue> {
    #[cfg(feature = "traced")]
    telemetry::flush().await?;
    Ok(())
}

#[cfg(feature = "traced")]
use telemetry::{fetch, in_action_span};

#[cfg(feature = "traced")]
mod telemetry {
    use std::cell::RefCell;
    use std::future::Future;

    use opentelemetry::trace::{FutureExt, TraceContextExt, Tracer};
    use opentelemetry::{global, Context};
    use tracelink::{Protocol, WebTracerProvider};
    use wasm_bindgen::JsValue;

    pub use tracelink::fetch;

    thread_local! {
        /// A clone of the global provider, kept to flush it.
        static PROVIDER: RefCell<Option<WebTracerProvider>> = const { RefCell::new(None) };
    }

    fn js_error(e: tracelink::Error) -> JsValue {
        JsValue::from_str(&e.to_string())
    }

    /// Sets up tracing once, at start.
    pub fn install(config: &super::Config) -> Result<(), JsValue> {
        let protocol: Protocol = config.protocol.parse().map_err(js_error)?;
        let provider = WebTracerProvider::builder()
            .with_service_name("rust-app")
            .with_service_version(env!("CARGO_PKG_VERSION"))
            .with_endpoint(&config.otlp) // e.g. "/otlp/v1/traces", a same-origin relay
            .with_protocol(protocol)
            .with_propagate_to([config.api.clone()]) // the backend may receive traceparent
            .with_schedule_delay(config.batch_delay)
            .build()
            .map_err(js_error)?;
        global::set_tracer_provider(provider.clone()); // what global::tracer(..) uses
        global::set_text_map_propagator(tracelink::TraceContextPropagator::new());
        #[cfg(feature = "tracing")]
        {
            use opentelemetry::trace::TracerProvider as _;
            use tracing_subscriber::layer::SubscriberExt;
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("rust-app"));
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
        }
        PROVIDER.with(|p| *p.borrow_mut() = Some(provider)); // kept to flush
        Ok(())
    }

    /// Runs `work` inside a span named `name`: current while `work` runs,
    /// across its awaits. Returns its output and the trace id.
    pub async fn in_action_span<F: Future>(name: &'static str, work: F) -> (F::Output, String) {
        let span = global::tracer("rust-app").start(name);
        let cx = Context::current_with_span(span);
        let trace_id = cx.span().span_context().trace_id().to_string();
        #[cfg(feature = "tracing")]
        let work = tracing::Instrument::instrument(work, tracing::info_span!("app.work"));
        let out = work.with_context(cx.clone()).await;
        cx.span().end();
        (out, trace_id)
    }

    /// Exports every span ended so far.
    pub async fn flush() -> Result<(), JsValue> {
        let provider = PROVIDER.with(|p| p.borrow().clone());
        match provider {
            Some(p) => p.force_flush().await.map_err(js_error),
            None => Ok(()),
        }
    }
}

#[cfg(not(feature = "traced"))]
use untraced::{fetch, in_action_span};

/// The same app without tracing: the size baseline.
#[cfg(not(feature = "traced"))]
mod untraced {
    use std::future::Future;

    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Request, Response};

    pub async fn fetch(request: &Request) -> Result<Response, JsValue> {
        let window = web_sys::window().ok_or("not a page")?;
        Ok(JsFuture::from(window.fetch_with_request(request)).await?.unchecked_into())
    }

    pub async fn in_action_span<F: Future>(_name: &'static str, work: F) -> (F::Output, String) {
        (work.await, String::new())
    }
}
