//! Byte-level helpers for ASCII header syntax (`,` / `;` / `=` lists, OWS).
//!
//! `str`'s char-pattern methods (`split(',')`, `trim_matches`, `trim`) pull
//! in generic searchers that cost a few KB of wasm; these do the same for
//! ASCII delimiters. Cutting a `str` at an ASCII byte always lands on a char
//! boundary, so every piece is still valid UTF-8.

/// The pieces of `s` between `sep` bytes (like `s.split(sep as char)`).
pub fn split(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    core::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == sep) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `s` split at its first `sep` byte (like `s.split_once(sep as char)`).
pub fn split_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// `s` without leading and trailing bytes for which `strip` holds.
pub fn trim_by(s: &str, strip: impl Fn(u8) -> bool) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| !strip(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| !strip(c)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// `s` without HTTP optional whitespace (spaces and tabs) at either end.
pub fn trim_ows(s: &str) -> &str {
    trim_by(s, |c| c == b' ' || c == b'\t')
}

/// `s` without ASCII whitespace at either end (header values are ASCII).
pub fn trim(s: &str) -> &str {
    trim_by(s, |c| c.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_the_str_methods() {
        for s in ["", ",", "a", "a,b", ",a,,b,", "é,€,😀", " a ;b= c ,"] {
            assert_eq!(split(s, b',').collect::<Vec<_>>(), s.split(',').collect::<Vec<_>>(), "{s:?}");
            assert_eq!(split_once(s, b','), s.split_once(','), "{s:?}");
            assert_eq!(trim_ows(s), s.trim_matches([' ', '\t']), "{s:?}");
            assert_eq!(trim(s), s.trim_ascii(), "{s:?}");
            assert_eq!(trim_by(s, |c| c == b','), s.trim_matches(','), "{s:?}");
        }
        assert_eq!(trim("\t x \r\n"), "x");
        assert_eq!(trim_by("\"v\"", |c| c == b'"'), "v");
    }
}
