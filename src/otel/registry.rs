//! Where providers keep their JS-side state: thread-locals behind ids.
//!
//! `opentelemetry::global` needs a provider, its tracers and spans to be
//! `Send + Sync`, while everything that touches JS (`JsValue`, closures,
//! the fetch promises) is neither. So a [`WebTracerProvider`] is only an id;
//! the [`Driver`] it names lives in this thread's registry. wasm32 here is
//! single-threaded, so that is the only thread there is; on another thread
//! (wasm threads) the id finds nothing and spans are non-recording. Ids are
//! never reused, so a span that outlives its provider cannot reach another.
//!
//! [`WebTracerProvider`]: super::WebTracerProvider

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::web::driver::Driver;

/// What `tracelink::fetch` needs besides the driver.
#[derive(Debug)]
pub struct FetchPolicy {
    /// The export URL: never traced.
    pub endpoint: String,
    /// URL prefixes that may receive trace headers (besides same-origin).
    pub propagate_to: Vec<String>,
    /// Query parameter names (lowercase) whose values `url.full` hides.
    pub redact: Vec<String>,
}

struct Entry {
    driver: Driver,
    policy: Rc<FetchPolicy>,
}

thread_local! {
    static ENTRIES: RefCell<Vec<Option<Entry>>> = const { RefCell::new(Vec::new()) };
    /// The provider `tracelink::fetch` uses (0 = none).
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// Registers a provider's state and makes it the one `tracelink::fetch`
/// uses; returns its id (never 0).
pub fn register(driver: Driver, policy: FetchPolicy) -> u32 {
    let id = ENTRIES.with(|e| {
        let mut e = e.borrow_mut();
        e.push(Some(Entry { driver, policy: Rc::new(policy) }));
        e.len() as u32
    });
    CURRENT.with(|c| c.set(id));
    id
}

/// The driver of provider `id`, if it lives on this thread.
pub fn driver(id: u32) -> Option<Driver> {
    lookup(id, |e| e.driver.clone())
}

/// The driver and fetch policy of the provider `tracelink::fetch` uses.
pub fn current() -> Option<(Driver, Rc<FetchPolicy>)> {
    let id = CURRENT.try_with(Cell::get).ok()?;
    lookup(id, |e| (e.driver.clone(), e.policy.clone()))
}

/// Stops `tracelink::fetch` from using provider `id` (after its shutdown).
pub fn retire(id: u32) {
    let _ = CURRENT.try_with(|c| {
        if c.get() == id {
            c.set(0);
        }
    });
}

/// Removes provider `id`'s state; returns its driver for a last flush.
pub fn remove(id: u32) -> Option<Driver> {
    retire(id);
    ENTRIES
        .try_with(|e| {
            let mut e = e.try_borrow_mut().ok()?;
            e.get_mut(id.checked_sub(1)? as usize)?.take().map(|entry| entry.driver)
        })
        .ok()
        .flatten()
}

fn lookup<R>(id: u32, f: impl FnOnce(&Entry) -> R) -> Option<R> {
    ENTRIES
        .try_with(|e| {
            let e = e.try_borrow().ok()?;
            e.get(id.checked_sub(1)? as usize)?.as_ref().map(f)
        })
        .ok()
        .flatten()
}
