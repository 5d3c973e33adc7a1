//! A real OpenTelemetry collector for tests: rotel, on 127.0.0.1.
//!
//! [`Rotel::start`] runs `rotel-agent` (from the PyPI wheel `rotel`, which
//! `scripts/setup.sh` installs into `.tools/venv`) on free loopback ports,
//! with `tests/peers/rotel_dump_processor.py` loaded as its trace processor:
//! every span rotel decodes is appended as one JSON line to a file in a
//! fresh temporary directory, and [`Rotel::wait_for_spans`] reads them back
//! as [`json::Json`] values. The agent (its whole process group) is killed
//! when the [`Rotel`] is dropped.
//!
//! rotel is a strict OTLP/HTTP receiver (400 on any deviation from the JSON
//! mapping or the content types), so a 200 and a faithful read-back prove an
//! encoder right. When rotel is not installed the helper panics: the tests
//! must fail, not skip.
//!
//! Include it with `#[path = "support/rotel.rs"] mod rotel;`.
#![allow(dead_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use self::json::Json;

/// A running rotel agent; killed on drop.
pub struct Rotel {
    child: Child,
    http: SocketAddr,
    dir: PathBuf,
}

impl Rotel {
    /// Starts rotel on free loopback ports and waits until it answers.
    ///
    /// Panics with instructions when rotel is not installed, and with
    /// rotel's output when it does not come up.
    pub fn start() -> Rotel {
        Rotel::launch(false)
    }

    /// Like [`Rotel::start`], with rotel's own detailed dump of every
    /// request it decodes ("debug exporter" style) in [`Rotel::log`]: a
    /// second read-back for fields its Python processor API does not carry.
    pub fn start_with_debug_log() -> Rotel {
        Rotel::launch(true)
    }

    fn launch(debug_log: bool) -> Rotel {
        let venv = find_venv();
        let python = venv.join("bin/python");
        let agent = python_output(&python, "import rotel.agent as a; print(a.Agent.agent_path)")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "rotel is not installed in {} (the Python package `rotel==0.0.1a15`): run scripts/setup.sh",
                    venv.display()
                )
            });
        let processor = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/rotel_dump_processor.py");
        assert!(processor.is_file(), "missing {}", processor.display());
        let lib_dir = libpython_dir(&agent, &python);

        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tracelink-rotel-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the rotel temp dir");

        // A port picked by binding :0 may be taken again before rotel binds
        // it; start over on fresh ports when that happens.
        let mut last_output = String::new();
        for _attempt in 0..3 {
            let (http, grpc) = (free_port(), free_port());
            let out = fs::File::create(dir.join("rotel.out")).expect("create rotel.out");
            let mut cmd = Command::new(&agent);
            cmd.arg("start")
                .args(["--otlp-http-endpoint", &http.to_string()])
                .args(["--otlp-grpc-endpoint", &grpc.to_string()])
                .args(["--exporter", "blackhole"])
                .arg("--otlp-with-trace-processor")
                .arg(&processor)
                .args(["--batch-timeout", "50ms"])
                .arg("--log-file")
                .arg(dir.join("rotel.log"))
                .args(if debug_log { &["--debug-log", "traces", "--debug-log-verbosity", "detailed"][..] } else { &[] })
                .env("TRACELINK_SPANS_FILE", dir.join("spans.jsonl"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("dup rotel.out"))
                .stderr(out)
                .process_group(0);
            if let Some(lib) = &lib_dir {
                let old = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
                let joined = if old.is_empty() { lib.clone() } else { format!("{lib}:{old}") };
                cmd.env("LD_LIBRARY_PATH", joined);
            }
            let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", agent.display()));
            let mut rotel = Rotel { child, http, dir: dir.clone() };
            if rotel.wait_ready(Duration::from_secs(15)) {
                return rotel;
            }
            last_output = rotel.output();
            if !last_output.contains("in use") {
                break;
            }
        }
        panic!("rotel did not start; its output:\n{last_output}");
    }

    /// Polls with an empty (valid) export until rotel answers 200.
    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok((200, _)) = http_post(self.http, "/v1/traces", "application/json", b"{\"resourceSpans\":[]}") {
                return true;
            }
            sleep(Duration::from_millis(50));
        }
        false
    }

    /// The OTLP/HTTP base URL, e.g. `http://127.0.0.1:40123`.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The traces URL, e.g. `http://127.0.0.1:40123/v1/traces`.
    pub fn traces_url(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    /// POSTs `body` to `path` with exactly this `Content-Type`; returns the
    /// status and the response body.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
        http_post(self.http, path, content_type, body)
            .unwrap_or_else(|e| panic!("POST {path} to rotel failed: {e}\nrotel output:\n{}", self.output()))
    }

    /// POSTs `body` to `path` with these headers (`Content-Type` among them).
    pub fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
        http_post_with(self.http, path, headers, body)
            .unwrap_or_else(|e| panic!("POST {path} to rotel failed: {e}\nrotel output:\n{}", self.output()))
    }

    /// The spans the processor has written so far (complete lines only).
    pub fn spans(&self) -> Vec<Json> {
        let text = fs::read_to_string(self.dir.join("spans.jsonl")).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v = json::parse(line).unwrap_or_else(|e| panic!("bad processor line ({e}): {line}"));
                if let Some(err) = v.get("processor_error") {
                    panic!("the rotel processor failed: {err:?}\nrotel output:\n{}", self.output());
                }
                v
            })
            .collect()
    }

    /// Waits until at least `n` spans were read back and returns them all.
    /// Panics on timeout, with what arrived and rotel's output.
    pub fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<Json> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if spans.len() >= n {
                return spans;
            }
            if Instant::now() >= deadline {
                panic!(
                    "rotel read back {} of {n} spans within {timeout:?}\nrotel output:\n{}",
                    spans.len(),
                    self.output()
                );
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// All of rotel's stdout/stderr so far, ANSI colours removed.
    pub fn log(&self) -> String {
        let raw = fs::read(self.dir.join("rotel.out")).unwrap_or_default();
        let raw = String::from_utf8_lossy(&raw);
        let mut out = String::with_capacity(raw.len());
        let mut rest = &*raw;
        while let Some(i) = rest.find('\x1b') {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            let end = rest.find('m').map_or(rest.len(), |m| m + 1);
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    /// The tail of rotel's output (for failure messages).
    pub fn output(&self) -> String {
        let mut s = self.log();
        if s.len() > 4000 {
            let mut cut = s.len() - 4000;
            while !s.is_char_boundary(cut) {
                cut += 1;
            }
            s.drain(..cut);
        }
        s
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        // The agent leads its own process group (process_group(0)): kill it all.
        let _ =
            Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The Python venv holding rotel: `$TRACELINK_TOOLS/venv` (or
/// `$TRACELINK_TOOLS` itself), else `<crate>/.tools/venv`.
fn find_venv() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(tools) = std::env::var_os("TRACELINK_TOOLS") {
        let tools = PathBuf::from(tools);
        candidates.push(tools.join("venv"));
        candidates.push(tools);
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv"));
    candidates.iter().find(|v| v.join("bin/python").exists()).cloned().unwrap_or_else(|| {
        panic!(
            "no Python venv with rotel found (looked in {candidates:?}): run scripts/setup.sh, \
             or set TRACELINK_TOOLS to the directory holding venv/"
        )
    })
}

fn python_output(python: &Path, code: &str) -> Option<String> {
    let out = Command::new(python).args(["-c", code]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The wheel's agent links libpython3.X.so; when the loader cannot find it
/// (no Debian `libpython3.X` package), use the venv interpreter's LIBDIR.
fn libpython_dir(agent: &Path, python: &Path) -> Option<String> {
    let ldd = Command::new("ldd").arg(agent).output().ok()?;
    let missing =
        String::from_utf8_lossy(&ldd.stdout).lines().any(|l| l.contains("libpython") && l.contains("not found"));
    if !missing {
        return None;
    }
    python_output(python, "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))")
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0")
}

/// A minimal HTTP/1.1 POST: one request per connection, `Connection: close`.
pub fn http_post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    http_post_with(addr, path, &[("Content-Type", content_type)], body)
}

/// [`http_post`] with any request headers.
pub fn http_post_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    parse_response(&response).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad HTTP response: {:?}", String::from_utf8_lossy(&response)),
        )
    })
}

fn parse_response(r: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = r.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&r[..split]).ok()?;
    let body = &r[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let body = if chunked { dechunk(body)? } else { body[..length.unwrap_or(body.len()).min(body.len())].to_vec() };
    Some((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// A small JSON reader for test read-backs (strict JSON; numbers keep
/// their text, so 64-bit integers and the int/double distinction survive).
pub mod json {
    use std::fmt;

    /// A parsed JSON value. Object members keep their order.
    #[derive(Clone, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Number(String),
        String(String),
        Array(Vec<Json>),
        Object(Vec<(String, Json)>),
    }

    static NULL: Json = Json::Null;

    impl Json {
        /// The member `key` of an object.
        pub fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
        /// The string, or panics.
        pub fn str(&self) -> &str {
            match self {
                Json::String(s) => s,
                other => panic!("expected a string, got {other:?}"),
            }
        }
        /// The array, or panics.
        pub fn arr(&self) -> &[Json] {
            match self {
                Json::Array(a) => a,
                other => panic!("expected an array, got {other:?}"),
            }
        }
        /// The number's text, or panics.
        pub fn num(&self) -> &str {
            match self {
                Json::Number(n) => n,
                other => panic!("expected a number, got {other:?}"),
            }
        }
        pub fn u64(&self) -> u64 {
            self.num().parse().unwrap_or_else(|_| panic!("not a u64: {self:?}"))
        }
        pub fn i64(&self) -> i64 {
            self.num().parse().unwrap_or_else(|_| panic!("not an i64: {self:?}"))
        }
        pub fn f64(&self) -> f64 {
            self.num().parse().unwrap_or_else(|_| panic!("not a number: {self:?}"))
        }
        pub fn is_null(&self) -> bool {
            *self == Json::Null
        }
    }

    impl std::ops::Index<&str> for Json {
        type Output = Json;
        /// The member, or `Null` when absent.
        fn index(&self, key: &str) -> &Json {
            self.get(key).unwrap_or(&NULL)
        }
    }

    impl fmt::Debug for Json {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Json::Null => f.write_str("null"),
                Json::Bool(b) => write!(f, "{b}"),
                Json::Number(n) => f.write_str(n),
                Json::String(s) => write!(f, "{s:?}"),
                Json::Array(a) => f.debug_list().entries(a).finish(),
                Json::Object(m) => f.debug_map().entries(m.iter().map(|(k, v)| (k, v))).finish(),
            }
        }
    }

    /// Parses one complete JSON document.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing data at {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.i += 1;
            }
        }

        fn err<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("{what} at byte {}", self.i))
        }

        fn expect(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                self.err(&format!("expected '{}'", c as char))
            }
        }

        fn value(&mut self, depth: usize) -> Result<Json, String> {
            if depth > 128 {
                return self.err("too deep");
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut members = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Json::Object(members));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.expect(b':')?;
                        members.push((k, self.value(depth + 1)?));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Json::Object(members));
                            }
                            _ => return self.err("expected ',' or '}'"),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Json::Array(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Json::Array(items));
                            }
                            _ => return self.err("expected ',' or ']'"),
                        }
                    }
                }
                Some(b'"') => Ok(Json::String(self.string()?)),
                Some(b't') => self.literal("true", Json::Bool(true)),
                Some(b'f') => self.literal("false", Json::Bool(false)),
                Some(b'n') => self.literal("null", Json::Null),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => self.err("expected a value"),
            }
        }

        fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                Ok(v)
            } else {
                self.err("bad literal")
            }
        }

        fn number(&mut self) -> Result<Json, String> {
            let start = self.i;
            let digits = |p: &mut Self| {
                let s = p.i;
                while matches!(p.s.get(p.i), Some(b'0'..=b'9')) {
                    p.i += 1;
                }
                p.i > s
            };
            if self.s.get(self.i) == Some(&b'-') {
                self.i += 1;
            }
            if !digits(self) {
                return self.err("bad number");
            }
            if self.s.get(self.i) == Some(&b'.') {
                self.i += 1;
                if !digits(self) {
                    return self.err("bad fraction");
                }
            }
            if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if !digits(self) {
                    return self.err("bad exponent");
                }
            }
            Ok(Json::Number(String::from_utf8_lossy(&self.s[start..self.i]).into_owned()))
        }

        fn string(&mut self) -> Result<String, String> {
            if self.s.get(self.i) != Some(&b'"') {
                return self.err("expected a string");
            }
            self.i += 1;
            let mut out = Vec::new();
            loop {
                let Some(&c) = self.s.get(self.i) else { return self.err("unterminated string") };
                self.i += 1;
                match c {
                    b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                    b'\\' => {
                        let Some(&e) = self.s.get(self.i) else { return self.err("bad escape") };
                        self.i += 1;
                        let ch = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                let cp = if (0xd800..0xdc00).contains(&hi) {
                                    if !self.s[self.i..].starts_with(b"\\u") {
                                        return self.err("lone surrogate");
                                    }
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xdc00..0xe000).contains(&lo) {
                                        return self.err("bad low surrogate");
                                    }
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    hi
                                };
                                match char::from_u32(cp) {
                                    Some(ch) => ch,
                                    None => return self.err("bad code point"),
                                }
                            }
                            _ => return self.err("bad escape"),
                        };
                        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    0..=0x1f => return self.err("raw control character in string"),
                    _ => out.push(c),
                }
            }
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let Some(h) = self.s.get(self.i..self.i + 4) else { return self.err("short \\u escape") };
            let h = std::str::from_utf8(h).map_err(|e| e.to_string())?;
            let v = u32::from_str_radix(h, 16).map_err(|e| e.to_string())?;
            self.i += 4;
            Ok(v)
        }
    }

    #[test]
    fn parses_what_python_writes() {
        let v = parse(r#"{"a": [1, -2.5e-3, "x\u00e9\ud83d\ude00\n", true, null, {}], "b": 18446744073709551615}"#)
            .unwrap();
        assert_eq!(v["a"].arr()[1].f64(), -2.5e-3);
        assert_eq!(v["a"].arr()[2].str(), "xé😀\n");
        assert_eq!(v["b"].u64(), u64::MAX);
        assert!(v["missing"].is_null());
        assert!(parse("[1,]").is_err());
        assert!(parse("{\"a\":1} x").is_err());
        assert!(parse("NaN").is_err());
    }
}
