//! Live spans: creation, parenting, sampling and recording, until they end.
//!
//! The [`Tracer`] owns every span that has started and not yet ended, in a
//! slab addressed by [`SpanHandle`]s (small integers that cross the JS/wasm
//! boundary for free). A handle carries a generation, so a handle kept after
//! its span ended can never touch a newer span in the same slot: operations
//! on it are ignored and counted.
//!
//! Sampling is decided at start. An unsampled span still gets ids, so its
//! context propagates (`-00`) and the backend makes the same decision, but it
//! records nothing and is not exported.

use super::id::{IdGenerator, SpanId};
use super::sampler::Sampler;
use super::span::{KeyValue, SpanContext, SpanData, SpanKind, SpanLimits, Status, TraceFlags};

/// Refers to a live span. `SpanHandle::NONE` refers to nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanHandle(pub u32);

impl SpanHandle {
    /// The handle of no span (start failed, or "no parent").
    pub const NONE: SpanHandle = SpanHandle(0);

    const INDEX_BITS: u32 = 16;
    const INDEX_MASK: u32 = (1 << Self::INDEX_BITS) - 1;

    fn new(index: usize, generation: u16) -> SpanHandle {
        // Generations start at 1, so a real handle is never 0.
        SpanHandle(u32::from(generation) << Self::INDEX_BITS | index as u32)
    }
    fn index(self) -> usize {
        (self.0 & Self::INDEX_MASK) as usize
    }
    fn generation(self) -> u16 {
        (self.0 >> Self::INDEX_BITS) as u16
    }
}

/// Where a new span's parent comes from.
#[derive(Clone, Copy, Debug)]
pub enum Parent<'a> {
    /// A new trace.
    Root,
    /// A live span of this tracer (falls back to a root if it has ended).
    Local(SpanHandle),
    /// A context from another process (extracted from headers).
    Remote(&'a SpanContext),
}

/// Tracer settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TracerConfig {
    pub sampler: Sampler,
    pub limits: SpanLimits,
    /// Live (started, not ended) spans kept at most; 1..=65535. Spans that
    /// apps forget to end would otherwise grow memory without bound.
    pub max_live_spans: u16,
}

impl Default for TracerConfig {
    fn default() -> TracerConfig {
        TracerConfig { sampler: Sampler::always_on(), limits: SpanLimits::default(), max_live_spans: 8192 }
    }
}

/// Counters for what the tracer did and refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracerStats {
    /// Spans started (sampled or not).
    pub started: u64,
    /// Spans started unsampled (propagated, never exported).
    pub unsampled: u64,
    /// Spans ended and handed to export.
    pub ended: u64,
    /// Starts refused because `max_live_spans` spans were live.
    pub dropped_live_limit: u64,
    /// Operations on handles whose span had already ended.
    pub stale_handle_uses: u64,
}

enum Slot {
    Free { generation: u16, next_free: Option<usize> },
    Live { generation: u16, recording: bool, span: Box<SpanData> },
}

/// Owns live spans; see the module docs.
pub struct Tracer {
    config: TracerConfig,
    ids: IdGenerator,
    slots: Vec<Slot>,
    free_head: Option<usize>,
    live: usize,
    stats: TracerStats,
}

impl Tracer {
    /// A tracer with `config`, drawing ids from `ids`.
    pub fn new(mut config: TracerConfig, ids: IdGenerator) -> Tracer {
        config.max_live_spans = config.max_live_spans.max(1);
        Tracer { config, ids, slots: Vec::new(), free_head: None, live: 0, stats: TracerStats::default() }
    }

    /// The settings in force.
    pub fn config(&self) -> &TracerConfig {
        &self.config
    }

    /// What the tracer did so far.
    pub fn stats(&self) -> TracerStats {
        self.stats
    }

    /// Spans started and not yet ended.
    pub fn live_spans(&self) -> usize {
        self.live
    }

    /// The id generator, for callers that need ids of their own.
    pub fn ids(&mut self) -> &mut IdGenerator {
        &mut self.ids
    }

    /// Starts a span at `start_unix_nano`. Returns `SpanHandle::NONE` (and
    /// counts it) when `max_live_spans` spans are already live.
    pub fn start_span(&mut self, name: &str, kind: SpanKind, parent: Parent<'_>, start_unix_nano: u64) -> SpanHandle {
        if self.live >= usize::from(self.config.max_live_spans) {
            self.stats.dropped_live_limit += 1;
            return SpanHandle::NONE;
        }
        let parent_ctx: Option<SpanContext> = match parent {
            Parent::Root => None,
            Parent::Local(h) => self.context(h).cloned(),
            Parent::Remote(c) if c.is_valid() => Some(c.clone()),
            Parent::Remote(_) => None,
        };
        let (trace_id, flags, trace_state) = match &parent_ctx {
            // Children keep the parent's flags (incl. the random bit) and state.
            Some(p) => (p.trace_id, p.flags.known(), p.trace_state.clone()),
            None => (self.ids.trace_id(), TraceFlags(TraceFlags::RANDOM_TRACE_ID), String::new()),
        };
        let sampled = self.config.sampler.should_sample(parent_ctx.as_ref(), trace_id);
        let span_context = SpanContext {
            trace_id,
            span_id: self.ids.span_id(),
            flags: flags.with_sampled(sampled),
            trace_state,
            is_remote: false,
        };
        let span = Box::new(SpanData::new(span_context, parent_ctx.as_ref(), name.to_owned(), kind, start_unix_nano));
        self.stats.started += 1;
        if !sampled {
            self.stats.unsampled += 1;
        }
        self.insert(span, sampled)
    }

    fn insert(&mut self, span: Box<SpanData>, recording: bool) -> SpanHandle {
        self.live += 1;
        match self.free_head {
            Some(index) => {
                let generation = match self.slots[index] {
                    Slot::Free { generation, next_free } => {
                        self.free_head = next_free;
                        generation
                    }
                    Slot::Live { .. } => unreachable_slot(),
                };
                self.slots[index] = Slot::Live { generation, recording, span };
                SpanHandle::new(index, generation)
            }
            None => {
                let index = self.slots.len();
                self.slots.push(Slot::Live { generation: 1, recording, span });
                SpanHandle::new(index, 1)
            }
        }
    }

    fn live_span(&mut self, h: SpanHandle) -> Option<(&mut SpanData, bool)> {
        match self.slots.get_mut(h.index()) {
            Some(Slot::Live { generation, recording, span }) if *generation == h.generation() => {
                Some((span.as_mut(), *recording))
            }
            _ => {
                if h != SpanHandle::NONE {
                    self.stats.stale_handle_uses += 1;
                }
                None
            }
        }
    }

    fn recording_span(&mut self, h: SpanHandle) -> Option<&mut SpanData> {
        match self.live_span(h) {
            Some((span, true)) => Some(span),
            _ => None,
        }
    }

    /// The start time of live span `h` (recording or not).
    pub fn start_time(&self, h: SpanHandle) -> Option<u64> {
        match self.slots.get(h.index()) {
            Some(Slot::Live { generation, span, .. }) if *generation == h.generation() => Some(span.start_time_unix_nano),
            _ => None,
        }
    }

    /// The context of a live span (for propagation), if `h` is live.
    pub fn context(&self, h: SpanHandle) -> Option<&SpanContext> {
        match self.slots.get(h.index()) {
            Some(Slot::Live { generation, span, .. }) if *generation == h.generation() => Some(&span.span_context),
            _ => None,
        }
    }

    /// Whether `h` is live and sampled (recording data).
    pub fn is_recording(&self, h: SpanHandle) -> bool {
        matches!(self.slots.get(h.index()),
            Some(Slot::Live { generation, recording: true, .. }) if *generation == h.generation())
    }

    /// Sets an attribute on a recording span.
    pub fn set_attribute(&mut self, h: SpanHandle, kv: KeyValue) {
        let limits = self.config.limits;
        if let Some(span) = self.recording_span(h) {
            span.set_attribute(kv, &limits);
        }
    }

    /// Adds an event to a recording span.
    pub fn add_event(&mut self, h: SpanHandle, name: &str, time_unix_nano: u64, attributes: Vec<KeyValue>) {
        let limits = self.config.limits;
        if let Some(span) = self.recording_span(h) {
            span.add_event(name.to_owned(), time_unix_nano, attributes, &limits);
        }
    }

    /// Adds a link to a recording span.
    pub fn add_link(&mut self, h: SpanHandle, to: SpanContext, attributes: Vec<KeyValue>) {
        let limits = self.config.limits;
        if let Some(span) = self.recording_span(h) {
            span.add_link(to, attributes, &limits);
        }
    }

    /// Records an exception event (OTel semantic conventions) on a recording span.
    pub fn record_exception(&mut self, h: SpanHandle, type_: &str, message: &str, stacktrace: &str, time_unix_nano: u64) {
        let mut attributes = Vec::with_capacity(3);
        if !type_.is_empty() {
            attributes.push(KeyValue::new("exception.type", type_));
        }
        attributes.push(KeyValue::new("exception.message", message));
        if !stacktrace.is_empty() {
            attributes.push(KeyValue::new("exception.stacktrace", stacktrace));
        }
        self.add_event(h, "exception", time_unix_nano, attributes);
    }

    /// Sets the status of a recording span (OTel precedence rules).
    pub fn set_status(&mut self, h: SpanHandle, status: Status) {
        if let Some(span) = self.recording_span(h) {
            span.set_status(status);
        }
    }

    /// Renames a recording span.
    pub fn update_name(&mut self, h: SpanHandle, name: &str) {
        if let Some(span) = self.recording_span(h) {
            name.clone_into(&mut span.name);
        }
    }

    /// Ends a span at `end_unix_nano` and frees its handle. Returns the
    /// finished span when it was sampled (the caller exports it).
    pub fn end_span(&mut self, h: SpanHandle, end_unix_nano: u64) -> Option<SpanData> {
        self.live_span(h)?;
        let index = h.index();
        // Generations use 15 bits, so a handle never has bit 31 set: hosts may
        // use it as a flag (the JS ABI marks recording spans with it).
        let next_generation = match h.generation().wrapping_add(1) & 0x7fff {
            0 => 1,
            g => g,
        };
        let slot = std::mem::replace(
            &mut self.slots[index],
            Slot::Free { generation: next_generation, next_free: self.free_head },
        );
        self.free_head = Some(index);
        self.live -= 1;
        match slot {
            Slot::Live { recording: true, mut span, .. } => {
                span.end(end_unix_nano);
                self.stats.ended += 1;
                Some(*span)
            }
            _ => None,
        }
    }

    /// A fresh span id (e.g. for a context made without a span).
    pub fn new_span_id(&mut self) -> SpanId {
        self.ids.span_id()
    }
}

#[cold]
fn unreachable_slot() -> u16 {
    // The free list only ever links Free slots; treat corruption as "no
    // generation" rather than panicking in a host app.
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::id::TraceId;
    use crate::core::span::Value;

    fn tracer(config: TracerConfig) -> Tracer {
        Tracer::new(config, IdGenerator::from_seed([9; 32]))
    }

    #[test]
    fn root_child_and_remote_parents() {
        let mut t = tracer(TracerConfig::default());
        let root = t.start_span("root", SpanKind::Internal, Parent::Root, 100);
        let root_ctx = t.context(root).unwrap().clone();
        assert!(root_ctx.flags.is_sampled() && root_ctx.flags.is_random());
        let child = t.start_span("child", SpanKind::Client, Parent::Local(root), 110);
        let child_data = t.end_span(child, 120).unwrap();
        assert_eq!(child_data.span_context.trace_id, root_ctx.trace_id);
        assert_eq!(child_data.parent_span_id, root_ctx.span_id);
        assert!(!child_data.parent_is_remote);
        assert_eq!((child_data.start_time_unix_nano, child_data.end_time_unix_nano), (110, 120));

        let remote = SpanContext {
            trace_id: TraceId([5; 16]),
            span_id: SpanId([6; 8]),
            flags: TraceFlags(1),
            trace_state: "k=v".into(),
            is_remote: true,
        };
        let server = t.start_span("s", SpanKind::Server, Parent::Remote(&remote), 1);
        let data = t.end_span(server, 2).unwrap();
        assert_eq!(data.span_context.trace_id, remote.trace_id);
        assert_eq!(data.span_context.trace_state, "k=v");
        assert!(data.parent_is_remote);
        assert!(!data.span_context.flags.is_random(), "random flag comes from the parent only");
    }

    #[test]
    fn unsampled_spans_propagate_but_record_nothing() {
        let mut t = tracer(TracerConfig { sampler: Sampler::ratio(0.0), ..TracerConfig::default() });
        let h = t.start_span("x", SpanKind::Internal, Parent::Root, 1);
        assert!(t.context(h).unwrap().is_valid());
        assert!(!t.context(h).unwrap().flags.is_sampled());
        assert!(!t.is_recording(h));
        t.set_attribute(h, KeyValue::new("a", 1));
        let child = t.start_span("c", SpanKind::Client, Parent::Local(h), 2);
        assert!(!t.is_recording(child));
        assert!(t.end_span(child, 3).is_none());
        assert!(t.end_span(h, 3).is_none());
        assert_eq!(t.stats().unsampled, 2);
        assert_eq!(t.live_spans(), 0);
    }

    #[test]
    fn stale_handles_never_touch_newer_spans() {
        let mut t = tracer(TracerConfig::default());
        let a = t.start_span("a", SpanKind::Internal, Parent::Root, 1);
        t.end_span(a, 2).unwrap();
        let b = t.start_span("b", SpanKind::Internal, Parent::Root, 3);
        assert_ne!(a, b, "slot reused with a new generation");
        t.set_attribute(a, KeyValue::new("stale", true));
        assert!(t.end_span(a, 4).is_none());
        let data = t.end_span(b, 5).unwrap();
        assert!(data.attributes.is_empty());
        assert_eq!(t.stats().stale_handle_uses, 2);
    }

    #[test]
    fn live_limit_is_enforced_and_counted() {
        let mut t = tracer(TracerConfig { max_live_spans: 2, ..TracerConfig::default() });
        let a = t.start_span("a", SpanKind::Internal, Parent::Root, 1);
        let _b = t.start_span("b", SpanKind::Internal, Parent::Root, 1);
        assert_eq!(t.start_span("c", SpanKind::Internal, Parent::Root, 1), SpanHandle::NONE);
        assert_eq!(t.stats().dropped_live_limit, 1);
        t.end_span(a, 2);
        assert_ne!(t.start_span("d", SpanKind::Internal, Parent::Root, 1), SpanHandle::NONE);
    }

    #[test]
    fn exception_and_status_are_recorded() {
        let mut t = tracer(TracerConfig::default());
        let h = t.start_span("op", SpanKind::Internal, Parent::Root, 1);
        t.record_exception(h, "TypeError", "bad", "at x", 5);
        t.set_status(h, Status::Error("bad".into()));
        t.update_name(h, "op2");
        let d = t.end_span(h, 9).unwrap();
        assert_eq!(d.name, "op2");
        assert_eq!(d.events[0].name, "exception");
        assert_eq!(d.events[0].attributes[1].value, Value::from("bad"));
        assert_eq!(d.status, Status::Error("bad".into()));
    }

    #[test]
    fn many_spans_cycle_through_slots() {
        let mut t = tracer(TracerConfig { max_live_spans: 4, ..TracerConfig::default() });
        for i in 0..200_000u64 {
            let h = t.start_span("s", SpanKind::Internal, Parent::Root, i);
            assert!(t.end_span(h, i + 1).is_some());
        }
        assert_eq!(t.stats().ended, 200_000);
        assert_eq!(t.live_spans(), 0);
    }
}
