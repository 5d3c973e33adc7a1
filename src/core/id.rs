//! Trace and span identifiers, and the generator that makes them.
//!
//! Ids are random: the generator is seeded once from the platform CSPRNG
//! (`getrandom`: `crypto.getRandomValues` on wasm32) and then runs
//! xoshiro256++, which is fast and has no state beyond 32 bytes. A generated
//! trace id has at least 56 random bits in its right-most 7 bytes, so spans
//! started here may set the W3C Level 2 random-trace-id flag.

use std::fmt;

/// A 16-byte W3C trace id. The all-zero value is invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte W3C span (parent) id. The all-zero value is invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// The invalid all-zero id.
    pub const INVALID: TraceId = TraceId([0; 16]);

    /// Whether this id is not all zeros.
    pub fn is_valid(&self) -> bool {
        *self != Self::INVALID
    }

    /// Parses exactly 32 lowercase hex digits. Uppercase is rejected (W3C).
    pub fn from_hex(s: &str) -> Option<TraceId> {
        let mut out = [0; 16];
        decode_lower_hex(s.as_bytes(), &mut out).then_some(TraceId(out))
    }

    /// The 32-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl SpanId {
    /// The invalid all-zero id.
    pub const INVALID: SpanId = SpanId([0; 8]);

    /// Whether this id is not all zeros.
    pub fn is_valid(&self) -> bool {
        *self != Self::INVALID
    }

    /// Parses exactly 16 lowercase hex digits. Uppercase is rejected (W3C).
    pub fn from_hex(s: &str) -> Option<SpanId> {
        let mut out = [0; 8];
        decode_lower_hex(s.as_bytes(), &mut out).then_some(SpanId(out))
    }

    /// The 16-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the lowercase hex form of `bytes` to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// The lowercase hex form of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Decodes lowercase hex into `out`; false unless `src` is exactly
/// `2 * out.len()` lowercase hex digits.
pub fn decode_lower_hex(src: &[u8], out: &mut [u8]) -> bool {
    if src.len() != out.len() * 2 {
        return false;
    }
    for (i, pair) in src.chunks_exact(2).enumerate() {
        match (lower_hex_digit(pair[0]), lower_hex_digit(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
            _ => return false,
        }
    }
    true
}

fn lower_hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Makes random trace and span ids; never returns an all-zero id.
#[derive(Clone, Debug)]
pub struct IdGenerator {
    s: [u64; 4],
}

impl IdGenerator {
    /// A generator seeded from the platform CSPRNG.
    ///
    /// Fails only if the platform has no CSPRNG (no `crypto.getRandomValues`).
    #[cfg(feature = "entropy")]
    pub fn from_entropy() -> Result<IdGenerator, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        Ok(IdGenerator::from_seed(seed))
    }

    /// A deterministic generator, for tests and simulations.
    pub fn from_seed(seed: [u8; 32]) -> IdGenerator {
        let mut s = [0u64; 4];
        for (i, chunk) in seed.chunks_exact(8).enumerate() {
            s[i] = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        }
        if s == [0; 4] {
            // xoshiro must not start from the all-zero state.
            s = [0x9e37_79b9_7f4a_7c15, 0xbf58_476d_1ce4_e5b9, 0x94d0_49bb_1331_11eb, 1];
        }
        IdGenerator { s }
    }

    /// The next 64 random bits (xoshiro256++).
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A random, valid trace id.
    pub fn trace_id(&mut self) -> TraceId {
        loop {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&self.next_u64().to_be_bytes());
            id[8..].copy_from_slice(&self.next_u64().to_be_bytes());
            let id = TraceId(id);
            if id.is_valid() {
                return id;
            }
        }
    }

    /// A random, valid span id.
    pub fn span_id(&mut self) -> SpanId {
        loop {
            let id = SpanId(self.next_u64().to_be_bytes());
            if id.is_valid() {
                return id;
            }
        }
    }

    /// A uniform random number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_uppercase() {
        let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(TraceId::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736").is_none());
        assert!(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e473").is_none());
        assert!(SpanId::from_hex("00f067aa0ba902b7").unwrap().is_valid());
        assert!(!SpanId::from_hex("0000000000000000").unwrap().is_valid());
        assert!(SpanId::from_hex("00f067aa0ba902bg").is_none());
    }

    #[test]
    fn generated_ids_are_valid_distinct_and_deterministic_per_seed() {
        let mut a = IdGenerator::from_seed([7; 32]);
        let mut b = IdGenerator::from_seed([7; 32]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let t = a.trace_id();
            assert_eq!(t, b.trace_id());
            assert!(t.is_valid());
            assert!(seen.insert(t));
            assert!(a.span_id().is_valid());
            b.span_id();
        }
        // a zero seed still produces ids
        assert!(IdGenerator::from_seed([0; 32]).trace_id().is_valid());
    }

    #[test]
    fn entropy_seeds_differ() {
        let a = IdGenerator::from_entropy().unwrap().trace_id();
        let b = IdGenerator::from_entropy().unwrap().trace_id();
        assert_ne!(a, b);
    }

    #[test]
    fn unit_floats_stay_in_range() {
        let mut g = IdGenerator::from_seed([1; 32]);
        for _ in 0..10_000 {
            let x = g.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
