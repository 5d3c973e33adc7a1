//! The shortest decimal that reads back as the same `f64`, written exactly as
//! Rust's `{:?}` writes it (`0.1`, `1.0`, `1e16`, `5e-324`), without linking
//! core's float formatting: that machinery (Grisu with a Dragon4 fallback and
//! their tables) costs about 18 KB of wasm, this file well under 2 KB.
//!
//! The digits come from the free-format algorithm of Steele & White as
//! refined by Burger & Dybvig ("Printing floating-point numbers quickly and
//! accurately", 1996), with exact big-integer arithmetic: the value and the
//! half-way points to its neighbours are fractions `r/s`, `m-/s`, `m+/s`;
//! digits are produced until the prefix alone identifies the value; the
//! last digit is rounded to the nearest (ties up). Doubles are rare in span
//! attributes, so simplicity wins over speed here.

use std::cmp::Ordering;

/// 40 × 32 bits: room for the largest intermediate, about 2^1140.
const LIMBS: usize = 40;

/// An unsigned big integer: `n` limbs in use, least significant first, the
/// rest zero, and the top one in use non-zero (so lengths compare first).
#[derive(Clone, Copy)]
struct Big {
    d: [u32; LIMBS],
    n: usize,
}

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big { d: [0; LIMBS], n: 2 };
        b.d[0] = v as u32;
        b.d[1] = (v >> 32) as u32;
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.n > 0 && self.d[self.n - 1] == 0 {
            self.n -= 1;
        }
    }

    fn push_carry(&mut self, carry: u64) {
        if carry != 0 && self.n < LIMBS {
            self.d[self.n] = carry as u32;
            self.n += 1;
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.d[..self.n] {
            let x = u64::from(*limb) * u64::from(m) + carry;
            *limb = x as u32;
            carry = x >> 32;
        }
        self.push_carry(carry);
    }

    fn mul_pow10(&mut self, mut n: u32) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        self.mul_small(10u32.pow(n));
    }

    fn shl(&mut self, n: u32) {
        let (limbs, bits) = ((n / 32) as usize, n % 32);
        for i in (0..LIMBS).rev() {
            let hi = if i >= limbs { self.d[i - limbs] } else { 0 };
            let lo = if i > limbs { self.d[i - limbs - 1] } else { 0 };
            self.d[i] = if bits == 0 { hi } else { hi << bits | lo >> (32 - bits) };
        }
        self.n = LIMBS;
        self.trim();
    }

    fn add(&self, other: &Big) -> Big {
        let mut out = *self;
        out.n = self.n.max(other.n);
        let mut carry = 0u64;
        for (a, b) in out.d[..out.n].iter_mut().zip(&other.d) {
            let x = u64::from(*a) + u64::from(*b) + carry;
            *a = x as u32;
            carry = x >> 32;
        }
        out.push_carry(carry);
        out
    }

    /// `self -= other`; `self` must not be smaller.
    fn sub(&mut self, other: &Big) {
        let mut borrow = false;
        for (a, b) in self.d[..self.n].iter_mut().zip(&other.d) {
            let (x, b1) = a.overflowing_sub(*b);
            let (x, b2) = x.overflowing_sub(u32::from(borrow));
            *a = x;
            borrow = b1 || b2;
        }
        self.trim();
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.n.cmp(&other.n).then_with(|| self.d[..self.n].iter().rev().cmp(other.d[..other.n].iter().rev()))
    }
}

/// Appends the shortest round-trip form of a finite `v` in `{:?}` style.
pub(super) fn push_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_sign_negative() {
        out.push(b'-');
    }
    if v == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    let mut digits = [0u8; 17];
    let (n, k) = shortest_digits(v.abs(), &mut digits);
    let digits = &digits[..n];
    // the value is 0.d1d2...dn × 10^k
    let abs = v.abs();
    if !(1e-4..1e16).contains(&abs) {
        out.push(b'0' + digits[0]);
        if n > 1 {
            out.push(b'.');
            out.extend(digits[1..].iter().map(|d| b'0' + d));
        }
        out.push(b'e');
        let e = k - 1;
        if e < 0 {
            out.push(b'-');
        }
        push_small(out, e.unsigned_abs());
    } else if k <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', k.unsigned_abs() as usize));
        out.extend(digits.iter().map(|d| b'0' + d));
    } else {
        let k = k as usize;
        for (i, d) in digits.iter().enumerate() {
            if i == k {
                out.push(b'.');
            }
            out.push(b'0' + d);
        }
        if k >= n {
            out.extend(std::iter::repeat_n(b'0', k - n));
            out.extend_from_slice(b".0");
        }
    }
}

fn push_small(out: &mut Vec<u8>, v: u32) {
    if v >= 100 {
        out.push(b'0' + (v / 100) as u8);
    }
    if v >= 10 {
        out.push(b'0' + (v / 10 % 10) as u8);
    }
    out.push(b'0' + (v % 10) as u8);
}

/// The shortest digits (values 0..=9) of a finite `v > 0` and the exponent
/// `k` with `v ≈ 0.d1d2…dn × 10^k`; returns `(n, k)`.
fn shortest_digits(v: f64, digits: &mut [u8; 17]) -> (usize, i32) {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mant, exp) = if biased == 0 { (fraction, -1074) } else { (fraction | 1 << 52, biased - 1075) };
    // Scaled so that v = r·2^e and the neighbours' midpoints are v ∓ m∓·2^e
    // (a power of two has a neighbour below at half the distance).
    let (r, minus, plus, e) =
        if biased > 0 && fraction == 0 { (mant << 2, 1, 2, exp - 2) } else { (mant << 1, 1, 1, exp - 1) };
    // With an even mantissa the midpoints themselves read back as v.
    let inclusive = mant % 2 == 0;

    let (mut r, mut m_minus, mut m_plus, mut s) =
        (Big::from_u64(r), Big::from_u64(minus), Big::from_u64(plus), Big::from_u64(1));
    if e >= 0 {
        r.shl(e as u32);
        m_minus.shl(e as u32);
        m_plus.shl(e as u32);
    } else {
        s.shl(e.unsigned_abs());
    }

    // k starts at most at its true value: floor(x·log10 2) with 2^x ≤ v
    // (78913 / 2^18 is just below log10 2).
    let x = exp + 63 - mant.leading_zeros() as i32;
    let mut k = (x * 78913) >> 18;
    if k >= 0 {
        s.mul_pow10(k as u32);
    } else {
        r.mul_pow10(k.unsigned_abs());
        m_minus.mul_pow10(k.unsigned_abs());
        m_plus.mul_pow10(k.unsigned_abs());
    }
    // Raise k until v + m+ falls below 10^k (the first digit is then 1..=9).
    let above = |high: Ordering| if inclusive { high != Ordering::Less } else { high == Ordering::Greater };
    while above(r.add(&m_plus).cmp(&s)) {
        s.mul_small(10);
        k += 1;
    }

    let mut n = 0;
    loop {
        r.mul_small(10);
        m_minus.mul_small(10);
        m_plus.mul_small(10);
        let mut d = 0u8;
        while r.cmp(&s) != Ordering::Less {
            r.sub(&s);
            d += 1;
        }
        let low = match r.cmp(&m_minus) {
            Ordering::Less => true,
            Ordering::Equal => inclusive,
            Ordering::Greater => false,
        };
        let high = above(r.add(&m_plus).cmp(&s));
        if n == digits.len() - 1 || low || high {
            // the last digit: round to the nearer of d and d + 1, ties up
            let up = high && (!low || r.add(&r).cmp(&s) != Ordering::Less);
            digits[n] = d + u8::from(up);
            n += 1;
            break;
        }
        digits[n] = d;
        n += 1;
    }
    // A rounded-up 9 carries into the digits before it.
    while n > 1 && digits[n - 1] == 10 {
        n -= 1;
        digits[n - 1] += 1;
    }
    if digits[0] == 10 {
        digits[0] = 1;
        k += 1;
    }
    while n > 1 && digits[n - 1] == 0 {
        n -= 1;
    }
    (n, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: f64) -> String {
        let mut out = Vec::new();
        push_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_rust_debug_on_edge_values() {
        let mut cases = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.2,
            0.3,
            1.0 / 3.0,
            2.0 / 3.0,
            100.0,
            123456.789,
            1e-4,
            9.999999999999999e-5,
            1e15,
            9999999999999998.0,
            1e16,
            1e21,
            1e22,
            1e23,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 2.0,
            5e-324,
            1e-323,
            f64::EPSILON,
            std::f64::consts::PI,
            9007199254740993.0,
            0.30000000000000004,
            1.7976931348623157e308,
            f64::from_bits(0x000f_ffff_ffff_ffff), // the largest subnormal
            f64::from_bits(1),
        ];
        for p in -1074..=1023 {
            cases.push(2f64.powi(p));
        }
        for p in -325..=308 {
            cases.push(format!("1e{p}").parse().unwrap());
            cases.push(format!("9.999999999999999e{p}").parse().unwrap());
        }
        for v in cases.into_iter().filter(|v| v.is_finite()) {
            assert_eq!(text(v), format!("{v:?}"), "{:#x}", v.to_bits());
        }
    }

    #[test]
    fn matches_rust_debug_on_random_doubles() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut checked = 0;
        while checked < 100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // half arbitrary bit patterns, half "human" values
            let v = if checked % 2 == 0 { f64::from_bits(x) } else { (x % 10_000_000) as f64 / 1000.0 };
            if v.is_finite() {
                assert_eq!(text(v), format!("{v:?}"), "{:#x}", v.to_bits());
                checked += 1;
            }
        }
    }
}
