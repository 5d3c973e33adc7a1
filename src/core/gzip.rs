//! gzip (RFC 1952) for request bodies: a small, synchronous DEFLATE (RFC 1951)
//! encoder, so a batch can be compressed at the moment it is sent, even while
//! the page unloads (`CompressionStream` is asynchronous: too late there).
//!
//! It is shaped for the export policy, which must know a request's exact size
//! on the wire before it decides what goes in it:
//!
//! - Input arrives in pieces ([`Deflate::push`]: a span record at a time)
//!   and each push returns a [`Mark`]. The stream cut at any mark is a
//!   complete body whose exact length [`Deflate::gzip_len`] gives before a
//!   byte of it is written; [`Deflate::write_gzip`] writes it. A match never
//!   reaches past the end of a push, so a cut never splits one.
//! - One block with the fixed Huffman codes (RFC 1951 3.2.6): each symbol's
//!   cost in bits is known the moment it is chosen, with no statistics to
//!   gather first. Dynamic codes would make bodies about 10% smaller for
//!   protobuf and 30% for JSON (hex ids), by a Huffman code fitted to this
//!   encoder's own symbols; not built, since their code-length tables and
//!   header would add wasm to every page for a protobuf gain of ~5 B a span.
//! - LZ77, greedy, tuned for speed on span records (about 6.5 ns a byte in
//!   wasm, CRC included): matches of 4 bytes or more (each costs fewer bits
//!   than its literals) found through hash chains over an 8 KiB window,
//!   4 candidates deep; only the first 4 positions of a match are hashed.
//!   Span records repeat their structure at short distances, so this finds
//!   nearly all a deeper search would (zlib -6 output is 10% smaller on
//!   protobuf, mostly from its dynamic codes).
//! - The `head` written in front of the pieces (the request envelope, whose
//!   length prefixes depend on how many records follow) goes in a stored
//!   block, so the compressed pieces never depend on it.
//! - No stored fallback inside: input that does not compress makes a body
//!   up to 1/8 larger, and then the caller sends it uncompressed (see
//!   `core::body`), which is smaller still.

/// Longest distance back a match may reach (DEFLATE allows 32 KiB; span
/// records find theirs within a few records).
const WINDOW: usize = 1 << 13;
const HASH_BITS: u32 = 12;
/// Candidates examined per position: more finds longer matches, slower.
const MAX_CHAIN: usize = 4;
/// Shortest match taken: 4 bytes (a 3-byte match rarely saves a bit with
/// the fixed codes); matches are found by hashing 4 bytes.
const MIN_MATCH: usize = 4;
/// Positions hashed at the start of each match (the rest are skipped: a
/// later record finds the same bytes through the match's start).
const INSERT_MAX: usize = 4;
const MAX_MATCH: usize = 258;
/// Fixed-Huffman end-of-block symbol, 7 bits of zeros.
const END_OF_BLOCK_BITS: usize = 7;
/// gzip header (no name, no time, OS unknown) and trailer (CRC-32, ISIZE).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
const GZIP_TRAILER_LEN: usize = 8;
/// A stored block carries at most this many bytes.
const STORED_MAX: usize = 0xffff;

/// A point between two pushes: the stream cut there is a complete body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    /// Input bytes before the mark.
    pub input_len: usize,
    /// Bits of the compressed block before the mark, its 3-bit header included.
    bits: usize,
}

/// An incremental DEFLATE encoder over pieces of input (see the module docs).
/// Reusable: [`reset`](Deflate::reset) keeps its allocations.
#[derive(Default)]
pub struct Deflate {
    /// All input since the last reset: matches refer back into it.
    input: Vec<u8>,
    /// The fixed-Huffman block so far.
    block: Bits,
    /// The match finder's tables (48 KiB), allocated on first use.
    tables: Option<Box<Tables>>,
    /// Positions below this are in the hash chains.
    hashed: usize,
}

/// Hash chains over the last `WINDOW` positions.
///
/// They hold positions counted from an earlier body's start (`base` is the
/// count of `input[0]`): a new body starts more than a window after the
/// last, so old entries are out of reach without clearing 64 KiB each time.
struct Tables {
    /// `head[hash]` is 1 + the latest position with that hash (0: none).
    head: [u32; 1 << HASH_BITS],
    /// `chain[pos % WINDOW]` is 1 + the previous position with `pos`'s hash.
    chain: [u32; WINDOW],
    base: usize,
}

impl Tables {
    #[inline(always)]
    fn insert(&mut self, input: &[u8], pos: usize) {
        let h = hash(input, pos);
        let at = self.base + pos;
        self.chain[at % WINDOW] = self.head[h];
        self.head[h] = at as u32 + 1;
    }

    /// The longest earlier occurrence of `input[pos..end]`'s start, as
    /// `(length, distance)`; length 0 when there is none.
    fn longest_match(&self, input: &[u8], pos: usize, end: usize) -> (usize, usize) {
        let max = (end - pos).min(MAX_MATCH);
        if max < MIN_MATCH {
            return (0, 0);
        }
        let want = &input[pos..pos + max];
        let (mut best, mut best_dist) = (0, 0);
        // Candidates are 1 + a table position (0: none); `pos` as one:
        let here = self.base + pos + 1;
        let mut candidate = self.head[hash(input, pos)] as usize;
        for _ in 0..MAX_CHAIN {
            let dist = here.wrapping_sub(candidate);
            if !(1..=WINDOW.min(pos)).contains(&dist) {
                break; // none, out of the window, or from an earlier body
            }
            let at = pos - dist;
            let have = &input[at..at + max];
            // A longer match must at least agree at `best`: a cheap first test.
            if have[best] == want[best] {
                let len = common(have, want);
                if len > best {
                    (best, best_dist) = (len, dist);
                    if len == max {
                        break;
                    }
                }
            }
            candidate = self.chain[(self.base + at) % WINDOW] as usize;
        }
        (best, best_dist)
    }
}

impl Deflate {
    /// An empty encoder; the tables are allocated on first use.
    pub fn new() -> Deflate {
        let mut d = Deflate::default();
        d.reset();
        d
    }

    /// Forgets all input: the next push starts a new body.
    pub fn reset(&mut self) {
        if let Some(t) = &mut self.tables {
            t.base += self.input.len() + WINDOW;
            if t.base > 1 << 30 {
                t.head.fill(0);
                t.base = 0;
            }
        }
        self.input.clear();
        self.block.out.clear();
        self.hashed = 0;
        // The block header: BFINAL = 1, BTYPE = 01 (fixed Huffman codes).
        (self.block.pending, self.block.pending_bits) = (0b011, 3);
    }

    /// The mark before any input (after [`reset`](Deflate::reset)).
    pub fn start(&self) -> Mark {
        Mark { input_len: 0, bits: 3 }
    }

    /// Compresses `pieces`, one after the other, after the input so far;
    /// returns the mark after them.
    pub fn push(&mut self, pieces: &[&[u8]]) -> Mark {
        let t = self.tables.get_or_insert_with(|| Box::new(Tables { head: [0; 1 << HASH_BITS], chain: [0; WINDOW], base: 0 }));
        let mut pos = self.input.len();
        pieces.iter().for_each(|p| self.input.extend_from_slice(p));
        let input = &self.input[..];
        let end = input.len();
        let mut hashed = self.hashed;
        while pos < end {
            let (len, dist) = t.longest_match(input, pos, end);
            let step = if len >= MIN_MATCH {
                self.block.put_match(len, dist);
                len
            } else {
                self.block.literal(input[pos]);
                1
            };
            let stop = (pos + step.min(INSERT_MAX)).min((end + 1).saturating_sub(MIN_MATCH));
            while hashed < stop {
                t.insert(input, hashed);
                hashed += 1;
            }
            pos += step;
            hashed = hashed.max(pos);
        }
        self.hashed = hashed;
        Mark { input_len: end, bits: self.block.len() }
    }

    /// The exact length of the gzip member [`write_gzip`](Deflate::write_gzip)
    /// writes for these arguments.
    pub fn gzip_len(&self, head_len: usize, mark: Mark, tail: &[u8]) -> usize {
        let block = (mark.bits + literal_bits(tail) + END_OF_BLOCK_BITS).div_ceil(8);
        GZIP_HEADER.len() + stored_len(head_len) + block + GZIP_TRAILER_LEN
    }

    /// Appends one gzip member to `out`: `head` stored, then the input up to
    /// `mark` compressed, then `tail`.
    pub fn write_gzip(&self, head: &[u8], mark: Mark, tail: &[u8], out: &mut Vec<u8>) {
        let data = &self.input[..mark.input_len];
        let start = out.len();
        out.extend_from_slice(&GZIP_HEADER);
        stored_blocks(out, head);
        // The block so far, cut at the mark, then the tail and the end.
        let whole = mark.bits / 8;
        out.extend_from_slice(&self.block.out[..whole]);
        let partial_bits = (mark.bits % 8) as u32;
        let partial = self.block.out.get(whole).map_or(self.block.pending, |&b| b.into());
        let mut bits = Bits { out: std::mem::take(out), pending: partial & ((1 << partial_bits) - 1), pending_bits: partial_bits };
        for &b in tail {
            bits.literal(b);
        }
        bits.put(0, END_OF_BLOCK_BITS as u32 + 7); // then pad to a byte
        *out = bits.out;
        let crc = crc32(&[head, data, tail]);
        let size = (head.len() + data.len() + tail.len()) as u32;
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        debug_assert_eq!(out.len() - start, self.gzip_len(head.len(), mark, tail));
    }
}

/// A bit writer, least significant bit first as DEFLATE packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    /// Bits not yet in `out` (fewer than 8 between writes), low bits first.
    pending: u32,
    pending_bits: u32,
}

impl Bits {
    /// Writes the low `n` bits of `value` (n ≤ 24).
    fn put(&mut self, value: u32, n: u32) {
        self.pending |= value << self.pending_bits;
        self.pending_bits += n;
        while self.pending_bits >= 8 {
            self.out.push(self.pending as u8);
            self.pending >>= 8;
            self.pending_bits -= 8;
        }
    }

    /// Bits written so far.
    fn len(&self) -> usize {
        self.out.len() * 8 + self.pending_bits as usize
    }

    fn literal(&mut self, byte: u8) {
        self.symbol(byte.into());
    }

    fn put_match(&mut self, len: usize, dist: usize) {
        let (code, extra, extra_bits) = length_code(len);
        self.symbol(code);
        self.put(extra, extra_bits);
        let (code, extra, extra_bits) = distance_code(dist);
        self.put(reverse8(code) >> 3, 5);
        self.put(extra, extra_bits);
    }

    /// Writes a literal/length symbol with its fixed Huffman code (RFC 1951
    /// 3.2.6), which goes most significant bit first: reversed.
    fn symbol(&mut self, sym: u32) {
        let (code, len) = match sym {
            0..=143 => (reverse8(0x30 + sym), 8),
            144..=255 => (reverse8(sym) << 1 | 1, 9), // 1, then the byte
            256..=279 => (reverse8(sym - 256) >> 1, 7),
            _ => (reverse8(sym - 280 + 0xc0), 8),
        };
        self.put(code, len);
    }
}

/// The low 8 bits of `b`, reversed (three 64-bit operations).
fn reverse8(b: u32) -> u32 {
    (((u64::from(b & 0xff) * 0x8020_0802) & 0x08_8442_2110).wrapping_mul(0x01_0101_0101) >> 32) as u32 & 0xff
}

/// How many bytes `a` and `b` share at their start.
fn common(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The hash of the `MIN_MATCH` bytes at `pos`.
#[inline(always)]
fn hash(input: &[u8], pos: usize) -> usize {
    let v = u32::from_le_bytes(input[pos..pos + MIN_MATCH].try_into().unwrap_or_default());
    (v.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize
}

/// Bits these bytes take as fixed-Huffman literals.
fn literal_bits(bytes: &[u8]) -> usize {
    bytes.iter().map(|&b| if b < 144 { 8 } else { 9 }).sum()
}

/// Length 3..=258 → (symbol 257..=285, extra value, extra bit count).
fn length_code(len: usize) -> (u32, u32, u32) {
    let x = (len - 3) as u32;
    if len == MAX_MATCH {
        (285, 0, 0)
    } else if x < 8 {
        (257 + x, 0, 0)
    } else {
        let log = 31 - x.leading_zeros();
        let extra = log - 2;
        (257 + 4 * (log - 1) + ((x >> extra) & 3), x & ((1 << extra) - 1), extra)
    }
}

/// Distance 1..=32768 → (code 0..=29, extra value, extra bit count).
fn distance_code(dist: usize) -> (u32, u32, u32) {
    let x = (dist - 1) as u32;
    if x < 4 {
        (x, 0, 0)
    } else {
        let log = 31 - x.leading_zeros();
        let extra = log - 1;
        (2 * log + ((x >> extra) & 1), x & ((1 << extra) - 1), extra)
    }
}

/// Bytes `len` bytes take in stored blocks (at least one block).
fn stored_len(len: usize) -> usize {
    len + 5 * len.div_ceil(STORED_MAX).max(1)
}

/// Appends `data` as stored blocks (never the final one), byte-aligned.
fn stored_blocks(out: &mut Vec<u8>, mut data: &[u8]) {
    loop {
        let len = data.len().min(STORED_MAX);
        let (chunk, rest) = data.split_at(len);
        // BFINAL = 0, BTYPE = 00, padding; then LEN and its complement NLEN.
        out.push(0);
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&(!(len as u16)).to_le_bytes());
        out.extend_from_slice(chunk);
        data = rest;
        if data.is_empty() {
            return;
        }
    }
}

/// The CRC-32 (IEEE, as gzip uses) of `parts`, one after the other.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut table = [0u32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = (c >> 1) ^ (0xedb8_8320 & 0u32.wrapping_sub(c & 1));
        }
        *entry = c;
    }
    let mut c = !0u32;
    for part in parts {
        for &b in *part {
            c = (c >> 8) ^ table[((c ^ u32::from(b)) & 0xff) as usize];
        }
    }
    !c
}

/// Compresses `data` as one gzip member (a convenience for whole buffers).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut d = Deflate::new();
    let mark = d.push(&[data]);
    let mut out = Vec::with_capacity(d.gzip_len(0, mark, &[]));
    d.write_gzip(&[], mark, &[], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xcbf4_3926);
        assert_eq!(crc32(&[b"12345", b"", b"6789"]), 0xcbf4_3926);
        assert_eq!(crc32(&[]), 0);
    }

    #[test]
    fn reverse8_reverses() {
        for b in 0..256u32 {
            assert_eq!(reverse8(b), b.reverse_bits() >> 24, "{b}");
        }
    }

    #[test]
    fn length_and_distance_codes_match_the_rfc_tables() {
        // RFC 1951 3.2.5: (code, first length, extra bits)
        let lengths = [
            (257, 3, 0), (264, 10, 0), (265, 11, 1), (268, 17, 1), (269, 19, 2), (272, 31, 2),
            (273, 35, 3), (277, 67, 4), (281, 131, 5), (284, 227, 5),
        ];
        for (code, first, extra) in lengths {
            assert_eq!(length_code(first), (code, 0, extra), "length {first}");
        }
        assert_eq!(length_code(257), (284, 30, 5));
        assert_eq!(length_code(258), (285, 0, 0));
        let distances = [(0, 1, 0), (3, 4, 0), (4, 5, 1), (5, 7, 1), (6, 9, 2), (13, 97, 5), (29, 24577, 13)];
        for (code, first, extra) in distances {
            assert_eq!(distance_code(first), (code, 0, extra), "distance {first}");
        }
        assert_eq!(distance_code(32768), (29, 8191, 13));
    }

    #[test]
    fn stored_blocks_cover_any_length() {
        for len in [0, 1, STORED_MAX, STORED_MAX + 1, 3 * STORED_MAX] {
            let mut out = Vec::new();
            stored_blocks(&mut out, &vec![7; len]);
            assert_eq!(out.len(), stored_len(len), "{len}");
        }
    }
}
