//! Page lifecycle: when a page is being hidden or unloaded, and when it is
//! visible again.
//!
//! A page may be gone at any moment after `visibilitychange` to hidden or
//! `pagehide` (tab closed, navigated away, app switched on mobile): that is
//! the last chance to send queued spans, with `keepalive` and `sendBeacon`.
//! [`PageLifecycle`] listens on `globalThis` (`pagehide`) and on `document`
//! (`visibilitychange`), in the capture phase so an app's
//! `stopPropagation` cannot hide the event. Workers and server runtimes have
//! neither event; there it listens to nothing. Dropping it removes the
//! listeners.

use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

/// What the page just became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// Hidden or unloading: send everything now.
    Hidden,
    /// Visible again: back to normal batching.
    Visible,
}

/// Listeners for [`PageState`] changes; see the module docs.
#[must_use = "the listeners are removed when PageLifecycle is dropped"]
pub struct PageLifecycle {
    listeners: Vec<Listener>,
}

struct Listener {
    target: EventTarget,
    event: &'static str,
    callback: Closure<dyn FnMut()>,
}

fn global_property(name: &str) -> Option<JsValue> {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name)).ok().filter(|v| v.is_object())
}

/// An object that has `addEventListener`, as an `EventTarget`.
fn event_target(value: Option<JsValue>) -> Option<EventTarget> {
    let value = value?;
    let add = Reflect::get(&value, &JsValue::from_str("addEventListener")).ok()?;
    add.is_function().then(|| value.unchecked_into())
}

impl PageLifecycle {
    /// Calls `on_change` on each change; see the module docs.
    pub fn listen(on_change: impl Fn(PageState) + 'static) -> PageLifecycle {
        let on_change: Rc<dyn Fn(PageState)> = Rc::new(on_change);
        let mut lifecycle = PageLifecycle { listeners: Vec::new() };
        if let Some(document) = event_target(global_property("document")) {
            let f = on_change.clone();
            let doc = document.clone();
            lifecycle.add(document, "visibilitychange", move || {
                let state = Reflect::get(&doc, &JsValue::from_str("visibilityState")).ok().and_then(|v| v.as_string());
                match state.as_deref() {
                    Some("hidden") => f(PageState::Hidden),
                    Some("visible") => f(PageState::Visible),
                    _ => {}
                }
            });
        }
        if let Some(global) = event_target(Some(js_sys::global().into())) {
            lifecycle.add(global, "pagehide", move || on_change(PageState::Hidden));
        }
        lifecycle
    }

    fn add(&mut self, target: EventTarget, event: &'static str, f: impl FnMut() + 'static) {
        let callback = Closure::<dyn FnMut()>::new(f);
        if target.add_event_listener_with_callback_and_bool(event, callback.as_ref().unchecked_ref(), true).is_ok() {
            self.listeners.push(Listener { target, event, callback });
        }
    }

    /// Whether any listener is installed (false in Workers and server runtimes).
    pub fn is_listening(&self) -> bool {
        !self.listeners.is_empty()
    }
}

impl Drop for PageLifecycle {
    fn drop(&mut self) {
        for l in self.listeners.drain(..) {
            let _ = l.target.remove_event_listener_with_callback_and_bool(
                l.event,
                l.callback.as_ref().unchecked_ref(),
                true,
            );
        }
    }
}
