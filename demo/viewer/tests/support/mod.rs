//! Test support: the built viewer as a child process, a minimal HTTP/1.1 client
//! and OTLP request builders.

#![allow(dead_code)] // each helper is used by some tests, not all

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use otlp_embedded::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_embedded::proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use otlp_embedded::proto::resource::v1::Resource;
use otlp_embedded::proto::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span};

pub const BIN: &str = env!("CARGO_BIN_EXE_tracelink-viewer");

/// A running viewer on free ports; killed when dropped.
pub struct Viewer {
    child: Child,
    /// `127.0.0.1:PORT` of the UI / JSON API.
    pub ui: SocketAddr,
    /// `127.0.0.1:PORT` of the OTLP/gRPC receiver.
    pub grpc: SocketAddr,
    /// `127.0.0.1:PORT` of the OTLP/HTTP receiver.
    pub http: SocketAddr,
    /// The first stdout line, as printed.
    pub banner: String,
}

impl Viewer {
    /// Starts the binary on port 0 everywhere and reads the bound addresses.
    pub fn start() -> Viewer {
        let mut child = Command::new(BIN)
            .args(["--ui", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .env_remove("VIEWER_UI")
            .env_remove("VIEWER_GRPC")
            .env_remove("VIEWER_HTTP")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn viewer");
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut banner).expect("read banner");
        let banner = banner.trim_end().to_owned();
        let field = |name: &str| -> SocketAddr {
            let value = banner
                .split(' ')
                .find_map(|part| part.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {banner:?}"));
            value.trim_start_matches("http://").parse().unwrap_or_else(|_| panic!("bad {name} in {banner:?}"))
        };
        let (ui, grpc, http) = (field("ui="), field("grpc="), field("http="));
        Viewer { child, ui, grpc, http, banner }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM") and waits up to `limit` for the exit.
    pub fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> (ExitStatus, Duration) {
        let sent = Instant::now();
        let ok = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{signal} failed");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(sent.elapsed() < limit, "viewer still running {limit:?} after SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"")
}

fn parse_response(raw: &[u8]) -> Reply {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---- OTLP builders ----

pub fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }) }
}

/// A span of `trace_id`; `parent` empty for a root.
pub fn span(trace_id: [u8; 16], span_id: [u8; 8], parent: &[u8], name: &str, kind: SpanKind, start_ns: u64) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.to_vec(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + 5_000_000, // 5 ms
        attributes: vec![string_kv("http.request.method", "GET")],
        ..Default::default()
    }
}

/// One resource (`service.name` = `service`, no instance id) holding `spans`.
pub fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource { attributes: vec![string_kv("service.name", service)], ..Default::default() }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "tracelink".into(),
                version: "0.1.0".into(),
                ..Default::default()
            }),
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// A trace of two spans from one service: server root `parent`, client child.
pub struct TwoSpans {
    pub trace_id: [u8; 16],
    pub parent: [u8; 8],
    pub child: [u8; 8],
    pub request: ExportTraceServiceRequest,
}

impl TwoSpans {
    pub fn new(service: &str, seed: u8) -> TwoSpans {
        let trace_id = [seed, 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47];
        let parent = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, seed];
        let child = [0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, seed];
        let start = 1_700_000_000_000_000_000;
        let spans = vec![
            span(trace_id, child, &parent, "GET /api/items", SpanKind::Client, start + 1_000_000),
            span(trace_id, parent, &[], "page load", SpanKind::Server, start),
        ];
        let request = ExportTraceServiceRequest { resource_spans: vec![resource_spans(service, spans)] };
        TwoSpans { trace_id, parent, child, request }
    }

    pub fn trace_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Jaeger JSON of one span in `trace` (`/api/traces/<id>` → `data[0]`).
pub fn jaeger_span<'a>(trace: &'a serde_json::Value, span_id: &[u8]) -> &'a serde_json::Value {
    let id = hex(span_id);
    trace["spans"]
        .as_array()
        .expect("spans array")
        .iter()
        .find(|s| s["spanID"] == id.as_str())
        .unwrap_or_else(|| panic!("span {id} missing from {trace}"))
}

/// Value of tag `key` on a Jaeger span.
pub fn jaeger_tag<'a>(span: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    span["tags"].as_array()?.iter().find(|t| t["key"] == key).map(|t| &t["value"])
}

/// The service name Jaeger shows for a span.
pub fn jaeger_service<'a>(trace: &'a serde_json::Value, span: &serde_json::Value) -> &'a str {
    let process = span["processID"].as_str().expect("processID");
    trace["processes"][process]["serviceName"].as_str().expect("serviceName")
}
