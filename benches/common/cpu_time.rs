//! A Criterion measurement of this thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) instead of
//! wall time, so that other tenants of a shared machine do not inflate the results: a
//! benchmark thread that waits for a core accrues no CPU time meanwhile. Shared by the
//! Criterion benches (`#[path = "common/cpu_time.rs"] mod cpu_time;`).

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;

/// This thread's CPU time.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is available on Linux");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Thread CPU time, reported like wall time (ns … s).
pub struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu()
    }
    fn end(&self, i: Duration) -> Duration {
        thread_cpu().saturating_sub(i)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if ns < 1e3 {
            (1.0, "ns (CPU)")
        } else if ns < 1e6 {
            (1e-3, "µs (CPU)")
        } else if ns < 1e9 {
            (1e-6, "ms (CPU)")
        } else {
            (1e-9, "s (CPU)")
        };
        for v in values {
            *v *= factor;
        }
        unit
    }

    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let (per, unit) = match *t {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                (n as f64 / 1048576.0, "MiB/s (CPU)")
            }
            Throughput::Elements(n) => (n as f64, "elem/s (CPU)"),
            Throughput::Bits(n) => (n as f64, "bit/s (CPU)"),
        };
        for v in values {
            *v = per / (*v * 1e-9);
        }
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
