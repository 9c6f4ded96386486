//! The bounded property form of the differential fuzzing, run by every `cargo test`: a fixed
//! number of generated and mutated inputs per parser, from fixed seeds (reproducible in CI).
//! `SOAKD_PROPTEST_SEED=<n>` explores other seeds, `SOAKD_PROPTEST_CASES=<n>` runs more cases;
//! a failure names the seed and case to replay. Long runs are `scripts/fuzz.sh`.

use super::gen::{self, Seeded};
use super::{check_expo, check_h1, check_sse};

fn env(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `check` on `cases` seeds; panics with the seed of the first failure.
fn each_case(name: &str, cases: u64, mut check: impl FnMut(&mut Seeded) -> Result<(), String>) {
    let base = env("SOAKD_PROPTEST_SEED", 0x50A6D);
    let cases = env("SOAKD_PROPTEST_CASES", cases);
    for i in 0..cases {
        let seed = base.wrapping_add(i);
        if let Err(why) = check(&mut Seeded::new(seed)) {
            panic!("{name}: case {i} (SOAKD_PROPTEST_SEED={base}, seed {seed}): {why}");
        }
    }
}

#[test]
fn the_fast_path_reads_generated_responses_as_hyper_does() {
    let (mut complete, mut failed) = (0, 0);
    each_case("h1", 3000, |e| {
        let (input, splits) = gen::response(e);
        match check_h1(&input, &splits)? {
            super::h1::H1Read::Response { .. } => complete += 1,
            super::h1::H1Read::Failed(_) => failed += 1,
        }
        Ok(())
    });
    // The generator reaches both sides of the decision.
    assert!(
        complete > 300 && failed > 300,
        "{complete} responses, {failed} failures"
    );
}

#[test]
fn the_sse_reader_reads_generated_bodies_as_the_reference_does() {
    let mut events = 0;
    each_case("sse", 3000, |e| {
        let (body, splits, max) = gen::sse(e);
        events += check_sse(&body, &splits, max)?.events.len();
        // Byte at a time, too.
        check_sse(&body, &[1], max)?;
        Ok(())
    });
    assert!(events > 1000, "{events} events");
}

#[test]
fn the_exposition_parser_reads_generated_text_as_the_reference_does() {
    each_case("expo", 5000, |e| check_expo(&gen::exposition(e)));
}

/// What the long fuzzing runs found (`docs/fuzzing.md`), each as the minimised input: both
/// clients must read it alike.
#[test]
fn the_fuzzing_findings_read_alike() {
    use super::h1::H1Read;
    use crate::client::wire::MAX_HEAD_BYTES;

    // h1_diff, 2026-12-07: a head just over the 408 KiB limit, completed by the read that
    // crosses it (an interim head before it shifts where the 8 KiB reads fall). hyper caps a
    // partial head only, so it passes; the fast path refused every head over the limit.
    let interim = "\r\n\r\nHTTP/1.0 100 Continue\r\ntransfer-encoding: chunked\r\n\r\n";
    let head = |big: usize| {
        format!(
            "HTTP/1.1 204 OK\r\ncontent-length: 0\r\nx-big: {}\r\n\r\n",
            "b".repeat(big)
        )
    };
    let big = 52 * 8192 - interim.len() - head(0).len();
    let input = format!("{interim}{}", head(big));
    assert!(head(big).len() > MAX_HEAD_BYTES);
    match check_h1(input.as_bytes(), &[8192]) {
        Ok(H1Read::Response { status, .. }) => assert_eq!(status, 204),
        other => panic!("both should read the 204: {other:?}"),
    }
    // The same head from the start of the connection: the 51st read fills the limit with
    // the head still partial, so both refuse it.
    match check_h1(head(big).as_bytes(), &[8192]) {
        Ok(H1Read::Failed(f)) => {
            assert_eq!(f.outcome, crate::client::outcome::Outcome::ProtocolError)
        }
        other => panic!("both should refuse the head: {other:?}"),
    }
}
