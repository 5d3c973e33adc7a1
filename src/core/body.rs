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
//!
//! Without the cargo feature `gzip` bodies are always plain (the npm package's
//! smallest wasm leaves the encoder out).

use super::export::{RequestSizer, Transmit, Transport};
#[cfg(feature = "gzip")]
use super::gzip::{Deflate, Mark};
use super::otlp::{self, Encoding, Envelope};
use super::span::{Resource, Scope};

/// Frames, compresses and measures request bodies (see the module docs).
pub struct BodyBuilder {
    encoding: Encoding,
    envelope: Envelope,
    #[cfg(feature = "gzip")]
    compress: bool,
    #[cfg(feature = "gzip")]
    deflate: Deflate,
    /// The request being measured is gzip'd (else plain).
    #[cfg(feature = "gzip")]
    gzip: bool,
    /// Records measured since `begin`.
    count: usize,
    /// Their bytes, separators included.
    data_len: usize,
    /// gzip'd: the mark after each measured record.
    #[cfg(feature = "gzip")]
    marks: Vec<Mark>,
}

impl BodyBuilder {
    /// Bodies in `encoding`; fetch bodies gzip'd when `compress` (and smaller;
    /// never without the `gzip` feature). Call
    /// [`set_envelope`](Self::set_envelope) before use.
    pub fn new(encoding: Encoding, compress: bool) -> BodyBuilder {
        let _ = compress;
        BodyBuilder {
            encoding,
            envelope: Envelope::default(),
            #[cfg(feature = "gzip")]
            compress,
            #[cfg(feature = "gzip")]
            deflate: Deflate::new(),
            #[cfg(feature = "gzip")]
            gzip: false,
            count: 0,
            data_len: 0,
            #[cfg(feature = "gzip")]
            marks: Vec::new(),
        }
    }

    /// Whether fetch bodies may be gzip'd.
    pub fn compresses(&self) -> bool {
        #[cfg(feature = "gzip")]
        return self.compress;
        #[cfg(not(feature = "gzip"))]
        false
    }

    /// Sets the resource and scope every request carries.
    pub fn set_envelope(&mut self, resource: &Resource, scope: &Scope) {
        self.envelope = Envelope::new(self.encoding, resource, scope);
    }

    /// Forgets the last measurement (so `build` never uses one made for
    /// another queue head).
    pub fn forget(&mut self) {
        #[cfg(feature = "gzip")]
        self.marks.clear();
    }

    /// The body of `t`, whose records are `records` (the policy's, in
    /// order), and whether it is gzip'd. Its length is `t.bytes` when this
    /// builder measured `t`.
    pub fn build<R: AsRef<[u8]>>(&mut self, t: &Transmit, records: &[R], resource: &Resource, scope: &Scope) -> (Vec<u8>, bool) {
        #[cfg(feature = "gzip")]
        if self.compress && !matches!(t.transport, Transport::Beacon | Transport::Persist) && !records.is_empty() {
            let n = records.len();
            if !(self.gzip && self.marks.len() >= n) {
                self.begin(t.transport);
                records.iter().for_each(|r| {
                    self.add(r.as_ref());
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
        otlp::encode_request(self.encoding, resource, scope, records.iter().map(AsRef::as_ref), &mut body);
        (body, false)
    }
}

impl RequestSizer for BodyBuilder {
    fn begin(&mut self, transport: Transport) {
        let _ = transport;
        self.count = 0;
        self.data_len = 0;
        #[cfg(feature = "gzip")]
        {
            self.gzip = self.compress && !matches!(transport, Transport::Beacon | Transport::Persist);
            self.marks.clear();
            if self.gzip {
                self.deflate.reset();
            }
        }
    }

    fn add(&mut self, record: &[u8]) -> usize {
        let separator = if self.count > 0 { self.envelope.separator() } else { b"" };
        self.count += 1;
        self.data_len += separator.len() + record.len();
        let head_len = self.envelope.head_len(self.data_len);
        let tail = self.envelope.tail();
        let plain = head_len + self.data_len + tail.len();
        #[cfg(not(feature = "gzip"))]
        return plain;
        #[cfg(feature = "gzip")]
        if !self.gzip {
            return plain;
        }
        #[cfg(feature = "gzip")]
        let mark = self.deflate.push(&[separator, record]);
        #[cfg(feature = "gzip")]
        self.marks.push(mark);
        #[cfg(feature = "gzip")]
        plain.min(self.deflate.gzip_len(head_len, mark, tail))
    }
}
