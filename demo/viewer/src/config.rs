//! Command-line flags and environment variables.
//!
//! Every setting has a flag and an environment variable; the flag wins. Addresses
//! must be loopback: the viewer has no authentication, and anything that reaches
//! its ports can read every stored trace. Port `0` asks the OS for a free port;
//! the bound addresses are printed on the first stdout line (see `main.rs`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Default address of the Jaeger UI and its JSON API (Jaeger's own port).
pub const DEFAULT_UI: SocketAddr = loopback(16686);
/// Default OTLP/gRPC address. Not 4317: rotel owns that one in the demo and
/// forwards here.
pub const DEFAULT_GRPC: SocketAddr = loopback(43177);
/// Default OTLP/HTTP address. Not 4318, for the same reason.
pub const DEFAULT_HTTP: SocketAddr = loopback(43178);
/// Default number of traces kept before the least recently used is evicted.
pub const DEFAULT_MAX_TRACES: u32 = 1000;

/// Usage text for `--help`.
pub const USAGE: &str = "\
tracelink-viewer: Jaeger UI (offline) over an in-memory OTLP trace store

USAGE: tracelink-viewer [--ui ADDR] [--grpc ADDR] [--http ADDR] [--max-traces N]

  --ui ADDR          Jaeger UI, JSON API (/api/traces/<id>) and /healthz
                     [env VIEWER_UI, default 127.0.0.1:16686]
  --grpc ADDR        OTLP/gRPC receiver (gzip accepted)
                     [env VIEWER_GRPC, default 127.0.0.1:43177]
  --http ADDR        OTLP/HTTP receiver: POST /v1/traces, application/x-protobuf
                     [env VIEWER_HTTP, default 127.0.0.1:43178]
  --max-traces N     traces kept in memory (LRU) [env VIEWER_MAX_TRACES, default 1000]

ADDR is HOST:PORT or PORT; HOST must be loopback (127.0.0.1, localhost, ::1).
Port 0 picks a free port. The first stdout line reports what was bound:
  viewer ui=http://127.0.0.1:PORT grpc=127.0.0.1:PORT http=http://127.0.0.1:PORT
SIGINT or SIGTERM stops it (exit 0).
";

/// The viewer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Jaeger UI + JSON API + `/healthz`.
    pub ui: SocketAddr,
    /// OTLP/gRPC `TraceService`.
    pub grpc: SocketAddr,
    /// OTLP/HTTP `POST /v1/traces`.
    pub http: SocketAddr,
    /// Traces kept in the store.
    pub max_traces: u32,
}

/// Why no [`Config`] came out of the command line.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `--help` was asked for.
    Help,
    /// A flag or value was wrong; the message says which.
    Invalid(String),
}

impl Config {
    /// Reads flags (`args` without the program name) over `env` lookups.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config =
            Config { ui: DEFAULT_UI, grpc: DEFAULT_GRPC, http: DEFAULT_HTTP, max_traces: DEFAULT_MAX_TRACES };
        for (name, setting) in &SETTINGS {
            if let Some(value) = env(setting.env) {
                config.set(setting, &value).map_err(|e| invalid(format!("{name} from {}: {e}", setting.env)))?;
            }
        }
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Err(ConfigError::Help);
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            let Some((name, setting)) = SETTINGS.iter().find(|(name, _)| *name == flag) else {
                return Err(invalid(format!("unknown argument {flag:?} (try --help)")));
            };
            let value = match inline.or_else(|| args.next()) {
                Some(value) => value,
                None => return Err(invalid(format!("{name} needs a value"))),
            };
            config.set(setting, &value).map_err(|e| invalid(format!("{name}: {e}")))?;
        }
        Ok(config)
    }

    fn set(&mut self, setting: &Setting, value: &str) -> Result<(), String> {
        match setting.field {
            Field::Ui => self.ui = parse_loopback(value)?,
            Field::Grpc => self.grpc = parse_loopback(value)?,
            Field::Http => self.http = parse_loopback(value)?,
            Field::MaxTraces => {
                self.max_traces = match value.trim().parse() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("{value:?} is not a positive number")),
                }
            }
        }
        Ok(())
    }
}

enum Field {
    Ui,
    Grpc,
    Http,
    MaxTraces,
}

struct Setting {
    env: &'static str,
    field: Field,
}

const SETTINGS: [(&str, Setting); 4] = [
    ("--ui", Setting { env: "VIEWER_UI", field: Field::Ui }),
    ("--grpc", Setting { env: "VIEWER_GRPC", field: Field::Grpc }),
    ("--http", Setting { env: "VIEWER_HTTP", field: Field::Http }),
    ("--max-traces", Setting { env: "VIEWER_MAX_TRACES", field: Field::MaxTraces }),
];

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// `PORT`, `HOST:PORT` or `[V6]:PORT`; `localhost` means 127.0.0.1.
/// Anything that is not a loopback address is refused.
fn parse_loopback(value: &str) -> Result<SocketAddr, String> {
    let value = value.trim();
    let addr = if let Ok(port) = value.parse::<u16>() {
        loopback(port)
    } else if let Some(port) = value.strip_prefix("localhost:") {
        loopback(port.parse().map_err(|_| format!("bad port in {value:?}"))?)
    } else {
        value.parse::<SocketAddr>().map_err(|_| format!("{value:?} is not HOST:PORT or PORT"))?
    };
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address; the viewer has no authentication, so it only listens on 127.0.0.1 or ::1"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::parse(args.iter().map(|s| s.to_string()), move |key| {
            env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_without_flags_or_env() {
        let config = parse(&[], &[]).unwrap();
        assert_eq!(config.ui.to_string(), "127.0.0.1:16686");
        assert_eq!(config.grpc.to_string(), "127.0.0.1:43177");
        assert_eq!(config.http.to_string(), "127.0.0.1:43178");
        assert_eq!(config.max_traces, 1000);
    }

    #[test]
    fn flags_override_env_and_accept_both_spellings() {
        let config = parse(
            &["--ui", "0", "--grpc=localhost:4000", "--max-traces", "5"],
            &[("VIEWER_UI", "127.0.0.1:9"), ("VIEWER_HTTP", "[::1]:7"), ("VIEWER_GRPC", "1")],
        )
        .unwrap();
        assert_eq!(config.ui.to_string(), "127.0.0.1:0");
        assert_eq!(config.grpc.to_string(), "127.0.0.1:4000");
        assert_eq!(config.http.to_string(), "[::1]:7");
        assert_eq!(config.max_traces, 5);
    }

    #[test]
    fn refuses_non_loopback_addresses() {
        for addr in ["0.0.0.0:16686", "192.168.1.2:1", "[::]:1"] {
            match parse(&["--ui", addr], &[]) {
                Err(ConfigError::Invalid(message)) => assert!(message.contains("loopback"), "{message}"),
                other => panic!("{addr}: {other:?}"),
            }
        }
        assert!(matches!(parse(&[], &[("VIEWER_HTTP", "0.0.0.0:1")]), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn rejects_malformed_input() {
        for args in [&["--ui"][..], &["--nope", "1"], &["--ui", "host"], &["--max-traces", "0"], &["--ui", "70000"]] {
            assert!(matches!(parse(args, &[]), Err(ConfigError::Invalid(_))), "{args:?}");
        }
        assert_eq!(parse(&["--ui", "1", "--help"], &[]), Err(ConfigError::Help));
    }
}
