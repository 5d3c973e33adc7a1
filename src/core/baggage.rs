//! W3C Baggage: application key-value pairs carried in the `baggage` header.
//!
//! Where `tracestate` belongs to tracing vendors, baggage belongs to the
//! application: `userId=alice,serverNode=DF%2028;region=eu`. Each
//! list-member is a key (an HTTP token), a percent-encoded value and
//! optional `;`-separated properties (here: metadata).
//!
//! Parsing is lenient, as the spec leaves malformed input to the
//! implementation: a member that breaks the grammar is skipped and the rest
//! is kept. Values are percent-decoded; byte sequences that are not UTF-8
//! become U+FFFD (the spec's MUST), while a `%` not followed by two hex
//! digits makes the member invalid. A repeated key keeps its first position
//! and takes the last value, like `insert`.
//!
//! Sending keeps to the spec's limits, 64 members and 8192 bytes, and never
//! sends part of a member: entries that do not fit are left out and later
//! ones still get a chance, so earlier entries win.

use std::fmt;

/// Most members sent in one `baggage` header.
pub const MAX_BAGGAGE_MEMBERS: usize = 64;

/// Longest `baggage` header sent, in bytes.
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// One baggage list-member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaggageEntry {
    /// An HTTP token (RFC 7230 `tchar`s), case-sensitive.
    pub key: String,
    /// The decoded value: any Unicode.
    pub value: String,
    /// The properties after the value's `;`, as sent (property values stay
    /// percent-encoded), joined by `;` with whitespace removed; may be
    /// empty. E.g. `ttl=30;shared`.
    pub metadata: String,
}

/// Why [`Baggage::insert`] refused an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaggageError {
    /// The key is empty or not an HTTP token.
    InvalidKey,
    /// The metadata is not a `;`-separated list of `key` or `key=value`
    /// properties (token keys, `baggage-octet` values).
    InvalidMetadata,
}

impl fmt::Display for BaggageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BaggageError::InvalidKey => "baggage key is not an HTTP token",
            BaggageError::InvalidMetadata => "invalid baggage metadata",
        })
    }
}

impl std::error::Error for BaggageError {}

/// An ordered set of baggage entries with unique keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baggage {
    entries: Vec<BaggageEntry>,
}

impl Baggage {
    /// Parses one `baggage` header value, skipping invalid members.
    pub fn parse(value: &str) -> Baggage {
        Baggage::parse_headers([value])
    }

    /// Parses several `baggage` header lines as one list, in order.
    pub fn parse_headers<'a>(values: impl IntoIterator<Item = &'a str>) -> Baggage {
        Baggage::parse_headers_counted(values).0
    }

    /// Like [`parse_headers`](Self::parse_headers), and also returns how many
    /// non-empty members were skipped as invalid, so the caller can count
    /// them.
    pub fn parse_headers_counted<'a>(values: impl IntoIterator<Item = &'a str>) -> (Baggage, usize) {
        let mut baggage = Baggage::default();
        let mut skipped = 0;
        for value in values {
            skipped += baggage.parse_list(value);
        }
        (baggage, skipped)
    }

    fn parse_list(&mut self, list: &str) -> usize {
        let mut skipped = 0;
        for member in list.split(',') {
            if trim_ows(member).is_empty() {
                continue;
            }
            match parse_member(member) {
                Some(entry) => self.set(entry),
                None => skipped += 1,
            }
        }
        skipped
    }

    /// The decoded value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).map(|e| e.value.as_str())
    }

    /// The whole entry for `key`.
    pub fn entry(&self, key: &str) -> Option<&BaggageEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Sets `key` to `value` (any Unicode; encoded when sent) with
    /// `metadata` (`;`-separated properties, may be empty). An existing key
    /// keeps its position; a new one goes last. Whitespace around
    /// properties is removed.
    pub fn insert(&mut self, key: &str, value: &str, metadata: &str) -> Result<(), BaggageError> {
        if !is_token(key) {
            return Err(BaggageError::InvalidKey);
        }
        let mut normalized = String::new();
        if !write_properties(metadata, &mut normalized) {
            return Err(BaggageError::InvalidMetadata);
        }
        self.set(BaggageEntry { key: key.to_owned(), value: value.to_owned(), metadata: normalized });
        Ok(())
    }

    /// Removes `key`, if present.
    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|e| e.key != key);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = &BaggageEntry> {
        self.entries.iter()
    }

    /// The header value to send (see [`write_header`](Self::write_header)).
    pub fn header(&self) -> String {
        let mut out = String::new();
        self.write_header(&mut out);
        out
    }

    /// Appends the header value to `out` and returns how many entries were
    /// left out to stay within 64 members and 8192 bytes.
    ///
    /// Entries are taken in order; one that would break a limit is left out
    /// whole and the next is tried, so earlier entries take precedence.
    /// Values are percent-encoded (uppercase hex) outside `baggage-octet`
    /// and for `%`. No whitespace is sent.
    pub fn write_header(&self, out: &mut String) -> usize {
        let mut used = 0;
        let mut members = 0;
        for entry in &self.entries {
            let len = encoded_len(entry) + usize::from(members > 0);
            if members == MAX_BAGGAGE_MEMBERS || used + len > MAX_BAGGAGE_BYTES {
                continue;
            }
            if members > 0 {
                out.push(',');
            }
            out.push_str(&entry.key);
            out.push('=');
            push_encoded(out, &entry.value);
            if !entry.metadata.is_empty() {
                out.push(';');
                out.push_str(&entry.metadata);
            }
            used += len;
            members += 1;
        }
        self.entries.len() - members
    }

    fn set(&mut self, entry: BaggageEntry) {
        match self.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
    }
}

/// Parses `key OWS "=" OWS value *( OWS ";" OWS property )`.
fn parse_member(member: &str) -> Option<BaggageEntry> {
    let (key, rest) = member.split_once('=')?;
    let key = trim_ows(key);
    if !is_token(key) {
        return None;
    }
    let (value, properties) = match rest.split_once(';') {
        Some((value, properties)) => (value, properties),
        None => (rest, ""),
    };
    let value = percent_decode(trim_ows(value))?;
    let mut metadata = String::new();
    if !write_properties(properties, &mut metadata) {
        return None;
    }
    Some(BaggageEntry { key: key.to_owned(), value, metadata })
}

/// Checks a `;`-separated property list and appends it to `out` without
/// whitespace; empty properties are skipped. False if a property is
/// invalid (`out` is then unspecified).
fn write_properties(raw: &str, out: &mut String) -> bool {
    for property in raw.split(';') {
        let property = trim_ows(property);
        if property.is_empty() {
            continue;
        }
        let (key, value) = match property.split_once('=') {
            Some((key, value)) => (trim_ows(key), Some(trim_ows(value))),
            None => (property, None),
        };
        if !is_token(key) || !value.is_none_or(|v| v.bytes().all(is_baggage_octet)) {
            return false;
        }
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(key);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    true
}

/// Decodes a received value: it must be `baggage-octet`s with well-formed
/// `%XX` escapes; decoded bytes that are not UTF-8 become U+FFFD.
fn percent_decode(value: &str) -> Option<String> {
    let b = value.as_bytes();
    if !b.iter().all(|&c| is_baggage_octet(c)) {
        return None;
    }
    if !b.contains(&b'%') {
        return Some(value.to_owned());
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex_digit(*b.get(i + 1)?)?;
            let lo = hex_digit(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `c` is sent as itself in a value (a `baggage-octet` other
/// than `%`).
fn is_plain(c: u8) -> bool {
    c != b'%' && is_baggage_octet(c)
}

fn push_encoded(out: &mut String, value: &str) {
    for &c in value.as_bytes() {
        if is_plain(c) {
            out.push(char::from(c));
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(c >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(c & 15)]));
        }
    }
}

/// Length of the member as [`Baggage::write_header`] sends it.
fn encoded_len(entry: &BaggageEntry) -> usize {
    let value: usize = entry.value.bytes().map(|c| if is_plain(c) { 1 } else { 3 }).sum();
    let metadata = if entry.metadata.is_empty() { 0 } else { 1 + entry.metadata.len() };
    entry.key.len() + 1 + value + metadata
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Strips HTTP optional whitespace (spaces and tabs) from both ends.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`: printable
/// ASCII except space, `"`, `,`, `;` and `\`.
pub fn is_baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// Whether `key` is an HTTP token (RFC 7230 section 3.2.6): one or more of
/// ALPHA, DIGIT and ``!#$%&'*+-.^_`|~``.
pub fn is_token(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(b: &Baggage) -> Vec<(&str, &str, &str)> {
        b.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.metadata.as_str())).collect()
    }

    #[test]
    fn parses_the_spec_examples() {
        let b = Baggage::parse("userId=alice,serverNode=DF%2028,isProduction=false");
        assert_eq!(entries(&b), [("userId", "alice", ""), ("serverNode", "DF 28", ""), ("isProduction", "false", "")]);
        assert_eq!(b.header(), "userId=alice,serverNode=DF%2028,isProduction=false");

        let b = Baggage::parse("userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false");
        assert_eq!(b.get("userId"), Some("Amélie"));
        assert_eq!(b.header(), "userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false");

        let b = Baggage::parse_headers(["userId =   alice", "serverNode = DF%2028, isProduction = false"]);
        assert_eq!(entries(&b), [("userId", "alice", ""), ("serverNode", "DF 28", ""), ("isProduction", "false", "")]);

        let b =
            Baggage::parse("key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue");
        assert_eq!(
            entries(&b),
            [
                ("key1", "value1", "property1;property2"),
                ("key2", "value2", ""),
                ("key3", "value3", "propertyKey=propertyValue")
            ]
        );
        assert_eq!(b.header(), "key1=value1;property1;property2,key2=value2,key3=value3;propertyKey=propertyValue");
    }

    #[test]
    fn whitespace_around_everything_is_ignored() {
        let b = Baggage::parse(
            "SomeKey \t = \t SomeValue \t ; \t SomeProp \t , \t SomeKey2 \t = \t SomeValue2 \t ; \t ValueProp \t = \t PropVal",
        );
        assert_eq!(
            entries(&b),
            [("SomeKey", "SomeValue", "SomeProp"), ("SomeKey2", "SomeValue2", "ValueProp=PropVal")]
        );
    }

    #[test]
    fn values_may_hold_equals_signs_and_be_empty() {
        let b = Baggage::parse("SomeKey=SomeValue=equals,empty=,also= \t");
        assert_eq!(entries(&b), [("SomeKey", "SomeValue=equals", ""), ("empty", "", ""), ("also", "", "")]);
        assert_eq!(b.header(), "SomeKey=SomeValue=equals,empty=,also=");
    }

    #[test]
    fn percent_decoding() {
        // The spec's test value, as Python's urllib quote() encodes it.
        let encoded = "%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29";
        let b = Baggage::parse(&["k=", encoded].concat());
        assert_eq!(b.get("k"), Some("\t \"';=asdf!@#$%^&*()"));
        // Lowercase escapes decode too.
        assert_eq!(Baggage::parse("k=%c3%a9").get("k"), Some("é"));
        // Not UTF-8: replacement characters (the spec's MUST).
        assert_eq!(Baggage::parse("k=a%FFb%C3").get("k"), Some("a\u{fffd}b\u{fffd}"));
        // Malformed escapes skip the member only.
        for bad in ["k=%", "k=%4", "k=%zz", "k=%%41", "k=100%"] {
            let (b, skipped) = Baggage::parse_headers_counted([bad, "ok=1"]);
            assert_eq!(entries(&b), [("ok", "1", "")], "{bad}");
            assert_eq!(skipped, 1);
        }
    }

    #[test]
    fn invalid_members_are_skipped_and_counted() {
        let (b, skipped) = Baggage::parse_headers_counted([
            "a=1,novalue,=2,b c=3,d=x y,e=\"q\",f=back\\slash,g=é, ,,h=8",
            "i=9;=bad,j=10;p q,k=11;p=a b,l=12;;ok;,m=13",
        ]);
        assert_eq!(entries(&b), [("a", "1", ""), ("h", "8", ""), ("l", "12", "ok"), ("m", "13", "")]);
        assert_eq!(skipped, 10);
        let (b, skipped) = Baggage::parse_headers_counted(["", " \t ", ","]);
        assert!(b.is_empty());
        assert_eq!(skipped, 0);
    }

    #[test]
    fn keys_are_tokens() {
        for ok in ["a", "A-Z.0_9", "!#$%&'*+-.^_`|~"] {
            assert!(is_token(ok), "{ok}");
            assert_eq!(Baggage::parse(&[ok, "=v"].concat()).get(ok), Some("v"));
        }
        for bad in ["", "a b", "a\"", "a(b)", "a/b", "a@b", "é", "a:b", "a{", "a=b"] {
            assert!(!is_token(bad), "{bad}");
        }
    }

    #[test]
    fn properties_are_kept_raw_and_normalized() {
        let b = Baggage::parse("k=v;p1;p2=PropVal;p3 = %20x ;p1=again");
        assert_eq!(b.entry("k").unwrap().metadata, "p1;p2=PropVal;p3=%20x;p1=again");
        // A percent-encoded "key = value" stays one opaque property.
        let b = Baggage::parse("SomeKey=SomeValue;ValueProp%20%09%20%3D%20%09%20PropVal");
        assert_eq!(b.entry("SomeKey").unwrap().metadata, "ValueProp%20%09%20%3D%20%09%20PropVal");
        assert_eq!(b.header(), "SomeKey=SomeValue;ValueProp%20%09%20%3D%20%09%20PropVal");
    }

    #[test]
    fn duplicate_keys_keep_position_and_take_the_last_value() {
        let b = Baggage::parse("a=1,b=2,a=3;p");
        assert_eq!(entries(&b), [("a", "3", "p"), ("b", "2", "")]);
        // Keys are case-sensitive.
        assert_eq!(Baggage::parse("a=1,A=2").len(), 2);
    }

    #[test]
    fn insert_get_remove() {
        let mut b = Baggage::default();
        b.insert("userId", "Amélie", "").unwrap();
        b.insert("node", "DF 28", " ttl = 30 ; shared ").unwrap();
        b.insert("userId", "bob", ";x").unwrap();
        assert_eq!(entries(&b), [("userId", "bob", "x"), ("node", "DF 28", "ttl=30;shared")]);
        assert_eq!(b.header(), "userId=bob;x,node=DF%2028;ttl=30;shared");

        assert_eq!(b.insert("bad key", "v", ""), Err(BaggageError::InvalidKey));
        assert_eq!(b.insert("", "v", ""), Err(BaggageError::InvalidKey));
        assert_eq!(b.insert("k", "v", "a b"), Err(BaggageError::InvalidMetadata));
        assert_eq!(b.insert("k", "v", "p=a,b"), Err(BaggageError::InvalidMetadata));
        assert_eq!(b.insert("k", "v", "=x"), Err(BaggageError::InvalidMetadata));
        assert_eq!(b.len(), 2);

        b.remove("userId");
        b.remove("absent");
        assert_eq!(b.get("userId"), None);
        assert_eq!(b.get("node"), Some("DF 28"));
        b.remove("node");
        assert!(b.is_empty());
        assert_eq!(b.header(), "");
    }

    #[test]
    fn encoding_covers_everything_outside_baggage_octet() {
        let all: String = (0u8..=0x7f).map(char::from).chain(['é', '€', '😀']).collect();
        let mut b = Baggage::default();
        b.insert("k", &all, "").unwrap();
        let h = b.header();
        let value = &h[2..];
        assert!(value.bytes().all(is_baggage_octet), "{h}");
        for c in [" ", "\"", ",", ";", "\\", "\t", "\u{7f}"] {
            assert!(!value.contains(c), "{c:?} in {h}");
        }
        assert!(value.contains("%25") && value.contains("%20") && value.contains("%F0%9F%98%80"));
        assert_eq!(Baggage::parse(&h), b);
    }

    #[test]
    fn member_limit_keeps_the_first_64() {
        let mut b = Baggage::default();
        for i in 0..70 {
            b.insert(&["key", &i.to_string()].concat(), "value", "").unwrap();
        }
        let mut out = String::new();
        assert_eq!(b.write_header(&mut out), 6);
        assert_eq!(out.split(',').count(), MAX_BAGGAGE_MEMBERS);
        assert!(out.starts_with("key0=value,") && out.ends_with(",key63=value"));
        let b64: Vec<_> = Baggage::parse(&out).iter().map(|e| e.key.clone()).collect();
        assert_eq!(b64.len(), 64);
    }

    #[test]
    fn byte_limit_is_inclusive_and_never_cuts_a_member() {
        // One member of exactly 8192 bytes is sent.
        let mut b = Baggage::default();
        b.insert("a", &"0123456789".repeat(819), "").unwrap();
        assert_eq!(b.header().len(), MAX_BAGGAGE_BYTES);

        // One byte more is left out entirely; later small entries still go.
        b.insert("a", &["0123456789".repeat(819), "x".into()].concat(), "").unwrap();
        b.insert("small", "1", "").unwrap();
        let mut out = String::new();
        assert_eq!(b.write_header(&mut out), 1);
        assert_eq!(out, "small=1");

        // Encoding expansion counts: 2730 * 3 + 2 = 8192.
        let mut b = Baggage::default();
        b.insert("a", &" ".repeat(2730), "").unwrap();
        assert_eq!(b.header().len(), MAX_BAGGAGE_BYTES);
        b.insert("a", &" ".repeat(2731), "").unwrap();
        assert_eq!(b.header(), "");

        // Separators count towards the limit.
        let mut b = Baggage::default();
        for i in 0..60 {
            b.insert(&format!("{i:03}"), &"v".repeat(130), "p").unwrap();
        }
        let h = b.header();
        assert!(h.len() <= MAX_BAGGAGE_BYTES);
        // Each member is 3 + 1 + 130 + 2 = 136 bytes, 137 with its comma.
        assert_eq!(h.split(',').count(), 1 + (MAX_BAGGAGE_BYTES - 136) / 137);
        assert!(h.split(',').all(|m| m.len() == 136));
    }

    #[test]
    fn write_header_appends() {
        let mut b = Baggage::default();
        b.insert("k", "v", "").unwrap();
        let mut out = String::from("baggage: ");
        assert_eq!(b.write_header(&mut out), 0);
        assert_eq!(out, "baggage: k=v");
    }
}
