//! A re-armable timer on the global `setTimeout` (never `window`).
//!
//! One [`Timer`] owns one callback for its whole life and can be armed,
//! re-armed and cancelled any number of times; dropping it cancels it. So no
//! closure is leaked per arming, and none is freed while it runs.

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue) -> Result<(), JsValue>;
}

/// A timer that calls its callback once per [`Timer::set`]; see the module docs.
#[must_use = "a Timer cancels itself when dropped: keep it while it should fire"]
pub struct Timer {
    callback: Closure<dyn FnMut()>,
    pending: Option<JsValue>,
    keep_alive: bool,
}

impl Timer {
    /// A timer that never keeps a Node, Deno or Bun process alive (like the
    /// export timer: a process may exit with spans queued; flush first).
    pub fn new(callback: impl FnMut() + 'static) -> Timer {
        Timer { callback: Closure::new(callback), pending: None, keep_alive: false }
    }

    /// A timer that keeps a server runtime's process alive while armed (a
    /// flush that someone awaits).
    pub fn keeping_alive(callback: impl FnMut() + 'static) -> Timer {
        Timer { callback: Closure::new(callback), pending: None, keep_alive: true }
    }

    /// Arms the timer to fire in `ms` milliseconds, replacing any earlier
    /// arming. Returns false when this runtime has no `setTimeout`.
    pub fn set(&mut self, ms: f64) -> bool {
        self.cancel();
        let Ok(id) = set_timeout(self.callback.as_ref().unchecked_ref(), ms.max(0.0)) else {
            return false;
        };
        if !self.keep_alive {
            // Node/Bun/Deno timers have unref(); browsers return a number.
            if let Ok(unref) = Reflect::get(&id, &JsValue::from_str("unref")) {
                if let Some(unref) = unref.dyn_ref::<Function>() {
                    let _ = unref.call0(&id);
                }
            }
        }
        self.pending = Some(id);
        true
    }

    /// Disarms the timer (a no-op when it is not armed or already fired).
    pub fn cancel(&mut self) {
        if let Some(id) = self.pending.take() {
            let _ = clear_timeout(&id);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.cancel();
    }
}
