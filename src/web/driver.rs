//! The Rust platform driver: the core [`Pipeline`] driven entirely from
//! Rust, with the same export policy the npm package drives through its
//! wasm ABI (`src/js_abi`).
//!
//! The npm package hands each request body to JS (`send`, `timer`) and JS
//! reports back. A [`Driver`] does the same steps with
//! the platform pieces of this module's siblings: [`transport`] (fetch,
//! keepalive, `sendBeacon`), [`timer`] (the policy's wake-ups) and
//! [`lifecycle`] (page hide / visible). Everything the policy decides —
//! batches, retries, `Retry-After`, the keepalive budget, beacons, bounded
//! queues, drop counters — is the core's, unchanged.
//!
//! A `Driver` is a cheap-to-clone handle (`Rc`), so it is `!Send`: JS
//! objects live on the thread that made them. Callbacks hold weak
//! references, so dropping the last handle stops the timer and removes the
//! listeners. [`Driver::flush`] and [`Driver::shutdown`] are futures (nothing
//! may block in a browser), bounded by a timeout.
//!
//! [`transport`]: super::transport
//! [`timer`]: super::timer
//! [`lifecycle`]: super::lifecycle

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use wasm_bindgen_futures::spawn_local;

use super::clock::Clock;
use super::lifecycle::{PageLifecycle, PageState};
use super::timer::Timer;
use super::transport::{self, Endpoint, Outcome};
use crate::core::export::Transport;
use crate::core::id::IdGenerator;
use crate::core::pipeline::{Pipeline, PipelineConfig, Response};
use crate::core::tracer::SpanHandle;

/// What a [`Driver`] starts with.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub pipeline: PipelineConfig,
    /// The absolute traces URL (`…/v1/traces`).
    pub endpoint: String,
    /// Extra headers on every export request (e.g. authorization).
    pub headers: Vec<(String, String)>,
    /// A request still unanswered after this long is aborted (a timeout).
    pub export_timeout_ms: f64,
}

/// Why a [`Driver`] could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// No `crypto.getRandomValues` in this runtime.
    NoRandomSource,
    /// The platform refused this export header name or value.
    InvalidHeader(String),
}

/// A flush or shutdown did not finish before its timeout (what was not
/// sent stays counted as queued or in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut;

/// The pipeline, its clock and its platform pieces; see the module docs.
#[derive(Clone)]
pub struct Driver {
    shared: Rc<Shared>,
}

struct Shared {
    state: RefCell<State>,
    /// Calls refused because the driver was already busy (re-entrancy).
    internal_errors: Cell<u64>,
}

struct State {
    pipeline: Pipeline,
    clock: Clock,
    endpoint: Endpoint,
    timer: Option<Timer>,
    timer_at: Option<u64>,
    lifecycle: Option<PageLifecycle>,
    waiters: Vec<Rc<RefCell<Wait>>>,
}

#[derive(Default)]
struct Wait {
    result: Option<Result<(), TimedOut>>,
    waker: Option<Waker>,
}

impl Driver {
    /// Starts a pipeline with its timer and page lifecycle listeners.
    pub fn start(config: DriverConfig) -> Result<Driver, StartError> {
        let ids = IdGenerator::from_entropy().map_err(|_| StartError::NoRandomSource)?;
        let mut pipeline_config = config.pipeline;
        // gzip'd bodies need `Content-Encoding` allowed by a cross-origin
        // collector's CORS: on for same-origin endpoints and outside pages (as
        // the npm package does).
        pipeline_config.compress &= transport::same_origin_or_no_page(&config.endpoint);
        let pipeline = Pipeline::new(pipeline_config, ids);
        let endpoint = Endpoint::new(
            config.endpoint,
            pipeline.encoding().content_type(),
            &config.headers,
            config.export_timeout_ms,
        )
        .map_err(StartError::InvalidHeader)?;
        let state = State {
            pipeline,
            clock: Clock::new(),
            endpoint,
            timer: None,
            timer_at: None,
            lifecycle: None,
            waiters: Vec::new(),
        };
        let shared = Rc::new(Shared { state: RefCell::new(state), internal_errors: Cell::new(0) });
        let weak = Rc::downgrade(&shared);
        let timer = Timer::new(move || {
            Driver::upgrade(&weak).update(|s, now| {
                s.timer_at = None;
                s.pipeline.handle_timeout(now);
            });
        });
        let weak = Rc::downgrade(&shared);
        let lifecycle = PageLifecycle::listen(move |page| Driver::upgrade(&weak).page_changed(page));
        {
            let mut s = shared.state.borrow_mut();
            s.timer = Some(timer);
            s.lifecycle = Some(lifecycle);
        }
        Ok(Driver { shared })
    }

    /// A handle from a weak reference; a dead one does nothing.
    fn upgrade(weak: &Weak<Shared>) -> Option<Driver> {
        weak.upgrade().map(|shared| Driver { shared })
    }

    /// Runs `f` on the pipeline and clock (span operations). `None`, counted
    /// as an internal error, when the driver is busy (a re-entrant call).
    pub fn with<R>(&self, f: impl FnOnce(&mut Pipeline, &mut Clock) -> R) -> Option<R> {
        match self.shared.state.try_borrow_mut() {
            Ok(mut s) => {
                let s = &mut *s;
                Some(f(&mut s.pipeline, &mut s.clock))
            }
            Err(_) => {
                self.shared.internal_errors.set(self.shared.internal_errors.get() + 1);
                None
            }
        }
    }

    /// Ends span `h` at `end_unix_nano` (now when `None`) and queues it.
    pub fn end_span(&self, h: SpanHandle, end_unix_nano: Option<u64>) {
        self.update(|s, now| {
            let end = end_unix_nano.unwrap_or_else(|| s.clock.unix_nanos());
            s.pipeline.end_span(h, end, now, false);
        });
    }

    /// The page was hidden (send everything, keepalive) or is visible again.
    pub fn page_changed(&self, page: PageState) {
        self.update(|s, now| match page {
            PageState::Hidden => s.pipeline.page_hidden(now),
            PageState::Visible => s.pipeline.page_visible(now),
        });
    }

    /// Sends everything queued now; resolves when nothing is queued or in
    /// flight, or with [`TimedOut`] after `timeout_ms`.
    pub fn flush(&self, timeout_ms: f64) -> Flush {
        self.wait_idle(timeout_ms, Pipeline::flush)
    }

    /// Flushes, then refuses later spans (counted as dropped); when done or
    /// timed out, stops the timer and the page listeners.
    pub fn shutdown(&self, timeout_ms: f64) -> impl Future<Output = Result<(), TimedOut>> + 'static {
        let flush = self.wait_idle(timeout_ms, Pipeline::shutdown);
        let driver = self.clone();
        async move {
            let result = flush.await;
            if let Ok(mut s) = driver.shared.state.try_borrow_mut() {
                s.timer = None;
                s.timer_at = None;
                s.lifecycle = None;
            }
            result
        }
    }

    fn wait_idle(&self, timeout_ms: f64, event: fn(&mut Pipeline, u64)) -> Flush {
        let wait = Rc::new(RefCell::new(Wait::default()));
        let registered = self.update(|s, now| {
            s.waiters.push(wait.clone());
            event(&mut s.pipeline, now);
        });
        let mut timeout = None;
        if !registered {
            wait.borrow_mut().result = Some(Ok(()));
        } else if wait.borrow().result.is_none() {
            let w = wait.clone();
            let mut timer = Timer::keeping_alive(move || {
                let waker = {
                    let mut w = w.borrow_mut();
                    w.result.get_or_insert(Err(TimedOut));
                    w.waker.take()
                };
                if let Some(waker) = waker {
                    waker.wake();
                }
            });
            timer.set(timeout_ms);
            timeout = Some(timer);
        }
        Flush { wait, _timeout: timeout }
    }

    /// Whether nothing is queued or in flight.
    pub fn is_idle(&self) -> bool {
        self.with(|p, _| p.is_idle()).unwrap_or(false)
    }

    /// Every counter (the names `stats()` has in JS), plus `internalErrors`.
    pub fn stats(&self) -> Vec<(&'static str, u64)> {
        let mut fields = self.with(|p, _| p.stats_fields()).unwrap_or_default();
        fields.push(("internalErrors", self.shared.internal_errors.get()));
        fields
    }

    /// Feeds the pipeline an event at the current time, sends what it asks
    /// for, re-arms the timer and settles flushes; then wakes their tasks.
    /// False (counted) when the driver was busy.
    fn update(&self, event: impl FnOnce(&mut State, u64)) -> bool {
        let wakers = match self.shared.state.try_borrow_mut() {
            Ok(mut s) => {
                let now = s.clock.mono_ms() as u64;
                event(&mut s, now);
                self.drive(&mut s, now)
            }
            Err(_) => {
                self.shared.internal_errors.set(self.shared.internal_errors.get() + 1);
                return false;
            }
        };
        for waker in wakers {
            waker.wake();
        }
        true
    }

    fn drive(&self, s: &mut State, now: u64) -> Vec<Waker> {
        while let Some(req) = s.pipeline.poll_request(now) {
            if req.transport == Transport::Beacon {
                let accepted = transport::beacon(&s.endpoint, &req.body);
                s.pipeline.on_beacon(req.id, accepted, now);
                continue;
            }
            match transport::post(&s.endpoint, &req.body, req.transport == Transport::FetchKeepalive, req.gzip) {
                Ok(done) => {
                    let weak = Rc::downgrade(&self.shared);
                    let id = req.id;
                    spawn_local(async move {
                        let outcome: Outcome = done.await;
                        Driver::upgrade(&weak).on_outcome(id, &outcome);
                    });
                }
                Err(_) => s.pipeline.on_response(req.id, Response::NetworkError, now),
            }
        }
        let next = s.pipeline.poll_timeout();
        if next != s.timer_at {
            if let Some(timer) = &mut s.timer {
                s.timer_at = next;
                match next {
                    Some(at) => {
                        timer.set(at.saturating_sub(now) as f64);
                    }
                    None => timer.cancel(),
                }
            }
        }
        if s.waiters.is_empty() || !s.pipeline.is_idle() {
            return Vec::new();
        }
        s.waiters
            .drain(..)
            .filter_map(|w| {
                let mut w = w.borrow_mut();
                w.result.get_or_insert(Ok(()));
                w.waker.take()
            })
            .collect()
    }
}

/// `Option<Driver>` helpers for callbacks that hold a weak reference.
trait MaybeDriver {
    fn update(&self, event: impl FnOnce(&mut State, u64));
    fn page_changed(&self, page: PageState);
    fn on_outcome(&self, id: u64, outcome: &Outcome);
}

impl MaybeDriver for Option<Driver> {
    fn update(&self, event: impl FnOnce(&mut State, u64)) {
        if let Some(d) = self {
            d.update(event);
        }
    }
    fn page_changed(&self, page: PageState) {
        if let Some(d) = self {
            d.page_changed(page);
        }
    }
    fn on_outcome(&self, id: u64, outcome: &Outcome) {
        self.update(|s, now| {
            let unix_ms = s.clock.unix_ms() as u64;
            s.pipeline.on_response(id, outcome.response(unix_ms), now);
        });
    }
}

/// A flush in progress: resolves when the driver is idle or the timeout
/// passed. Dropping it stops waiting (the flush itself goes on).
#[must_use = "a flush is only observed when awaited"]
pub struct Flush {
    wait: Rc<RefCell<Wait>>,
    _timeout: Option<Timer>,
}

impl Future for Flush {
    type Output = Result<(), TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut w = self.wait.borrow_mut();
        match w.result {
            Some(result) => Poll::Ready(result),
            None => {
                w.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
