//! Request bodies: queued span records framed into one OTLP/HTTP request,
//! gzip'd when compression is on and that is smaller, and measured exactly
//! for the export policy (a [`RequestSizer`]), so that its byte limits (the
//! keepalive budget above all) count the bytes actually sent.
//!
//! Beacons and bodies for the offline store are never gzip'd (stored bodies are
//! replayed later without headers). `navigator.sendBeacon` cannot set
//! `Content-Encoding`, and a collector reads a gzip body without it as a
//! malformed request.
//!
//! Sizing and building share the work: while the policy measures a
//! gzip'd request record by record, [`Deflate`] compresses each record once
//! and remembers where it ended; [`BodyBuilder::build`] then cuts the
//! compressed stream after the records the policy chose.

use super::export::{RequestSizer, Transmit, Transport};
use super::gzip::{Deflate, Mark};
use super::otlp::{self, Encoding, Envelope};
use super::span::{Resource, Scope};

/// Frames, compresses and measures request bodies (see the module docs).
pub struct BodyBuilder {
    encoding: Encoding,
    envelope: Envelope,
    compress: bool,
    deflate: Deflate,
    /// The request being measured is gzip'd (else plain).
    gzip: bool,
    /// Records measured since `begin`.
    count: usize,
    /// Their bytes, separators included.
    data_len: usize,
    /// gzip'd: the mark after each measured record.
    marks: Vec<Mark>,
}

impl BodyBuilder {
    /// Bodies in `encoding`; fetch bodies gzip'd when `compress` (and smaller).
    /// Call [`set_envelope`](Self::set_envelope) before use.
    pub fn new(encoding: Encoding, compress: bool) -> BodyBuilder {
        BodyBuilder {
            encoding,
            envelope: Envelope::default(),
            compress,
            deflate: Deflate::new(),
            gzip: false,
            count: 0,
            data_len: 0,
            marks: Vec::new(),
        }
    }

    /// Sets the resource and scope every request carries.
    pub fn set_envelope(&mut self, resource: &Resource, scope: &Scope) {
        self.envelope = Envelope::new(self.encoding, resource, scope);
    }

    /// Forgets the last measurement (so `build` never uses one made for
    /// another queue head).
    pub fn forget(&mut self) {
        self.marks.clear();
    }

    /// The body of `t`, whose records are `records` (the policy's, in
    /// order), and whether it is gzip'd. Its length is `t.bytes` when this
    /// builder measured `t`.
    pub fn build(&mut self, t: &Transmit, records: &[Vec<u8>], resource: &Resource, scope: &Scope) -> (Vec<u8>, bool) {
        let n = records.len();
        if self.compress && !matches!(t.transport, Transport::Beacon | Transport::Persist) && n > 0 {
            if !(self.gzip && self.marks.len() >= n) {
                self.begin(t.transport);
                records.iter().for_each(|r| {
                    self.add(r);
                });
            }
            let mark = self.marks[n - 1];
            let head_len = self.envelope.head_len(mark.input_len);
            let tail = self.envelope.tail();
            if self.deflate.gzip_len(head_len, mark, tail) < head_len + mark.input_len + tail.len() {
                let head = otlp::request_head(self.encoding, resource, scope, mark.input_len);
                let mut body = Vec::with_capacity(t.bytes);
                self.deflate.write_gzip(&head, mark, tail, &mut body);
                return (body, true);
            }
        }
        let mut body = Vec::with_capacity(t.bytes);
        otlp::encode_request(self.encoding, resource, scope, records.iter().map(Vec::as_slice), &mut body);
        (body, false)
    }
}

impl RequestSizer for BodyBuilder {
    fn begin(&mut self, transport: Transport) {
        self.gzip = self.compress && !matches!(transport, Transport::Beacon | Transport::Persist);
        self.count = 0;
        self.data_len = 0;
        self.marks.clear();
        if self.gzip {
            self.deflate.reset();
        }
    }

    fn add(&mut self, record: &[u8]) -> usize {
        let separator = if self.count > 0 { self.envelope.separator() } else { b"" };
        self.count += 1;
        self.data_len += separator.len() + record.len();
        let head_len = self.envelope.head_len(self.data_len);
        let tail = self.envelope.tail();
        let plain = head_len + self.data_len + tail.len();
        if !self.gzip {
            return plain;
        }
        let mark = self.deflate.push(&[separator, record]);
        self.marks.push(mark);
        plain.min(self.deflate.gzip_len(head_len, mark, tail))
    }
}
