//! CPU cost of reading one SSE stream with the client's real reader and parser, for each
//! streaming API: SSE framing + JSON parsing of a 64-chunk answer written by the mock's own
//! frame writers ([`soakd::mock::text_stream_writes`] on the API's default path: head, 64
//! text deltas of 8 characters, tail with usage and terminator), fed as one network chunk per
//! write, the way the mock (and a proxy that flushes per event) sends it. Goal (issue 11): ≤ 50 µs of CPU per parsed stream.
//!
//! `cargo bench --bench sse` (Criterion, measuring thread CPU time: see `common/cpu_time.rs`).
//! `cargo test --all-targets` runs each case once.

use std::hint::black_box;
use std::ops::ControlFlow;

use bytes::Bytes;
#[path = "common/cpu_time.rs"]
mod cpu_time;

use cpu_time::ThreadCpu;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use soakd::client::drive::StreamDriver;
use soakd::client::ApiKind;

const CHUNKS: u32 = 64;
const CHUNK_BYTES: usize = 8;
/// `max_event_bytes` default of `[target]`.
const MAX_EVENT: usize = 1 << 20;

/// Reads one stream through the [`StreamDriver`] the exchange uses, the way
/// `Exchange::read_stream` does; returns the content chunks seen before the terminator.
fn one_stream(api: ApiKind, chunks: &[Bytes]) -> u64 {
    let mut driver = StreamDriver::new(api, MAX_EVENT);
    let mut content = 0u64;
    for c in chunks {
        let v = driver.push(c, |_, _, _| {
            content += 1;
            ControlFlow::Continue(())
        });
        if let Some(v) = v {
            assert!(v.outcome.is_success(), "{api}: {:?}", v.outcome);
            return content;
        }
    }
    panic!("{api}: no terminator ({:?})", driver.at_end().outcome);
}

fn sse(c: &mut Criterion<ThreadCpu>) {
    let mut g = c.benchmark_group("sse_64_chunk_stream");
    for api in [
        ApiKind::OpenAiChat,
        ApiKind::OpenAiResponses,
        ApiKind::OpenAiCompletions,
        ApiKind::AnthropicMessages,
    ] {
        let chunks = soakd::mock::text_stream_writes(api.default_path(), CHUNKS, CHUNK_BYTES)
            .expect("the mock streams on every streaming API's path");
        assert_eq!(one_stream(api, &chunks), u64::from(CHUNKS));
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(api.as_str(), |b| {
            b.iter(|| one_stream(api, black_box(&chunks)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = sse
}
criterion_main!(benches);
