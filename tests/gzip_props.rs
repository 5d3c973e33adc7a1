//! core::gzip against an independent decoder (flate2 / miniz_oxide):
//! whatever the input and wherever a body is cut, it decodes to exactly the
//! bytes that went in, and its length is the one announced beforehand.
#![cfg(not(target_arch = "wasm32"))]

use std::io::Read;

use flate2::read::GzDecoder;
use proptest::prelude::*;
use tracelink::core::gzip::{gzip, Deflate};

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut d = GzDecoder::new(body);
    d.read_to_end(&mut out).expect("a valid gzip member");
    // Exactly one member, nothing after it.
    assert!(d.into_inner().is_empty(), "trailing bytes after the gzip member");
    out
}

/// Builds a body of `head`, then `pieces[..cut]`, then `tail`, and checks it.
fn check_cut(head: &[u8], pieces: &[Vec<u8>], tail: &[u8]) {
    let mut d = Deflate::new();
    d.reset();
    let mut marks = vec![d.start()];
    for p in pieces {
        marks.push(d.push(&[p]));
    }
    for (n, &mark) in marks.iter().enumerate() {
        let mut body = vec![0x55]; // write_gzip appends
        d.write_gzip(head, mark, tail, &mut body);
        assert_eq!(body.len() - 1, d.gzip_len(head.len(), mark, tail), "announced length, cut {n}");
        let mut expected = head.to_vec();
        pieces[..n].iter().for_each(|p| expected.extend_from_slice(p));
        expected.extend_from_slice(tail);
        assert_eq!(gunzip(&body[1..]), expected, "cut {n}");
    }
}

#[test]
fn empty_and_tiny_inputs() {
    for data in [&b""[..], b"a", b"ab", b"abc", b"aaaa", &[0xff; 5]] {
        assert_eq!(gunzip(&gzip(data)), data);
    }
    check_cut(b"", &[], b"");
    check_cut(b"head", &[b"x".to_vec()], b"tail");
}

#[test]
fn long_runs_and_window_edges() {
    let run = vec![b'z'; 100_000];
    let body = gzip(&run);
    assert_eq!(gunzip(&body), run);
    assert!(body.len() < 1_000, "a run compresses: {}", body.len());
    // Repeats exactly at, just inside and just beyond the 32 KiB window.
    let mut rng = 0x1234_5678u32;
    let noise: Vec<u8> = (0..40_000)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng as u8
        })
        .collect();
    for gap in [32_760, 32_765, 32_768, 32_769, 32_800] {
        let mut data = noise[..gap].to_vec();
        data.extend_from_slice(&noise[..300]);
        assert_eq!(gunzip(&gzip(&data)), data, "gap {gap}");
    }
}

#[test]
fn incompressible_input_costs_at_most_an_eighth_more() {
    let mut x = 88_172_645_463_325_252u64;
    let data: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let body = gzip(&data);
    assert_eq!(gunzip(&body), data);
    // Fixed codes: 8 or 9 bits a literal; plus header, empty head block, trailer.
    assert!(body.len() <= data.len() * 9 / 8 + 10 + 5 + 8 + 2, "{}", body.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        prop_assert_eq!(gunzip(&gzip(&data)), data);
    }

    #[test]
    fn repetitive_bytes_round_trip(
        alphabet in proptest::collection::vec(any::<u8>(), 1..4),
        picks in proptest::collection::vec(any::<u8>(), 0..5000),
    ) {
        let data: Vec<u8> = picks.iter().map(|&p| alphabet[p as usize % alphabet.len()]).collect();
        prop_assert_eq!(gunzip(&gzip(&data)), data);
    }

    #[test]
    fn every_cut_between_pieces_is_a_complete_body(
        head in proptest::collection::vec(any::<u8>(), 0..300),
        lens in proptest::collection::vec(0usize..600, 0..12),
        tail in proptest::collection::vec(any::<u8>(), 0..10),
        seed in any::<u64>(),
    ) {
        // Pieces drawn from a small alphabet with random runs: they match
        // each other and themselves, at every distance.
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces: Vec<Vec<u8>> = lens
            .iter()
            .map(|&n| (0..n).map(|_| [b'a', b'b', 0xf0, next() as u8][(next() % 4) as usize]).collect())
            .collect();
        check_cut(&head, &pieces, &tail);
    }
}
