//! The mock's timed leak tasks on tokio's paused clock: the sawtooth's steps and drop, and
//! the per-open-stream leak's rate, read at exact virtual instants with no wall-clock wait.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use super::args::{MockArgs, SAWTOOTH_BLOCK};
use super::leak::{run_sawtooth, run_stream_leak, LeakGauges, LeakStore, SawtoothPlan};

fn gauge(name: &str) -> IntGauge {
    IntGauge::new(name, "test").unwrap()
}

const MIB: i64 = SAWTOOTH_BLOCK as i64;

/// 3 MiB over 2 s is three 1 MiB blocks a tick of 500 ms apart, freed on the fourth tick:
/// read between ticks, the gauge climbs 0, 1, 2, 3 MiB, drops to 0 at 2 s and starts again.
#[tokio::test(start_paused = true)]
async fn the_sawtooth_climbs_a_block_per_tick_and_drops_at_its_period() {
    let plan = SawtoothPlan::new(3 * SAWTOOTH_BLOCK, Duration::from_secs(2));
    assert_eq!(plan.tick, Duration::from_millis(500));
    let g = gauge("sawtooth");
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_sawtooth(plan, g.clone(), stop.clone()));
    sleep(Duration::from_millis(250)).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(g.get() / MIB);
        sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        seen,
        [0, 1, 2, 3, 0, 1],
        "MiB at 0.25 s, 0.75 s, ... 2.75 s"
    );
    stop.cancel();
    task.await.unwrap();
    assert_eq!(g.get(), 0, "stopping frees everything");
}

/// 10 open streams at 40,960 B per stream-second keep 40,960 B every 100 ms tick: 400 KiB
/// after one second (less than a page short where pages are larger than 4 KiB); with no
/// stream open nothing more is kept.
#[tokio::test(start_paused = true)]
async fn the_stream_leak_keeps_bytes_per_open_stream_and_second() {
    let gauges = LeakGauges {
        bytes: gauge("bytes"),
        fds: gauge("fds"),
        threads: gauge("threads"),
        sawtooth: gauge("sawtooth"),
    };
    let store = Arc::new(LeakStore::new(&MockArgs::default(), gauges.clone()));
    let open = gauge("open");
    open.set(10);
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_stream_leak(store, open.clone(), 40_960, stop.clone()));
    sleep(Duration::from_millis(1_050)).await;
    let held = gauges.bytes.get();
    assert!(
        (409_600 - 65_536..=409_600).contains(&held),
        "{held} B after 1 s"
    );
    open.set(0);
    sleep(Duration::from_secs(1)).await;
    assert!(
        gauges.bytes.get() - held < 65_536,
        "nothing but the carried remainder once no stream is open: {} B",
        gauges.bytes.get() - held
    );
    stop.cancel();
    task.await.unwrap();
}
