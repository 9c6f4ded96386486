//! The words of every verdict: a reason for each "no", "ok" and "unknown", and the limit a
//! pass is under.

use super::*;
use crate::units::MIB;

const H: f64 = 3600.0;

/// A fit of `per_hour` ± `half_width` per hour over `span` seconds, its newer half the same.
fn fit(per_hour: f64, half_width: f64, span: f64) -> TrendFit {
    let (s, w) = (per_hour / H, half_width / H);
    TrendFit {
        slope: s,
        intercept: 100.0 * MIB,
        slope_lo: s - w,
        slope_hi: s + w,
        r2: 0.9,
        points: 40,
        mk_z: 3.0,
        mk_p: 0.001,
        var_factor: 1.0,
        period: None,
        trough_width: 10.0,
        from: 0.0,
        span,
        growth: s * span,
        recent_slope: s,
        recent_lo: s - 2.0 * w,
        recent_hi: s + 2.0 * w,
    }
}

fn window(label: &str, f: Option<TrendFit>) -> WindowState<'_> {
    WindowState {
        label,
        fit: f,
        no_fit: NoFit::FewTroughs {
            points: 4,
            period: Some(40.0),
        },
    }
}

/// The pass: a mock growing 1.72 MiB/h, 60 min window, default thresholds.
#[test]
fn a_pass_states_its_limit_and_does_not_leak_only_means_zero() {
    let rules = LeakRules::default();
    let base = Some(30.0 * MIB);
    let ws = [window("60m", Some(fit(1.72 * MIB, 0.2 * MIB, 3500.0)))];
    assert_eq!(
        verdict(Resource::Rss, Verdict::Ok, &ws, &rules, base),
        "+1.72MiB/h over the 60m window is under the limit (50MiB/h and 10%/h; floor 4MiB)"
    );
    // An interval that holds zero: indistinguishable from no growth.
    let ws = [window("60m", Some(fit(0.1 * MIB, 0.3 * MIB, 3500.0)))];
    assert_eq!(
        verdict(Resource::Rss, Verdict::Ok, &ws, &rules, base),
        "does not leak: +102.4KiB/h over the 60m window is indistinguishable from zero (95% \
         interval -204.8KiB/h .. +409.6KiB/h; limit 50MiB/h and 10%/h; floor 4MiB)"
    );
    // fds and threads are counts.
    let ws = [window("2h", Some(fit(3.0, 1.0, 7000.0)))];
    assert_eq!(
        verdict(Resource::Fds, Verdict::Ok, &ws, &rules, base),
        "+3 fds/h over the 2h window is under the limit (60 fds/h)"
    );
}

/// The issue's `analyze` case: over the rate limit with certainty, but under the floor.
#[test]
fn a_no_under_the_growth_floor_says_so_with_the_key() {
    let rules = LeakRules {
        rss_bytes_per_hour: 0.5 * MIB,
        rss_fraction_per_hour: 0.01,
        ..LeakRules::default()
    };
    let f = fit(1018.71 * 1024.0, 80.0 * 1024.0, 3.0 * H);
    let why = window_no(Resource::Rss, &f, &rules, Some(20.0 * MIB)).unwrap();
    assert_eq!(
        why,
        "below growth floor: +2.98MiB < 4MiB (min_growth_bytes)"
    );
    let ws = [window("3h", Some(f))];
    assert_eq!(
        verdict(Resource::Rss, Verdict::Ok, &ws, &rules, Some(20.0 * MIB)),
        "+1018.71KiB/h over the 3h window, but below growth floor: +2.98MiB < 4MiB \
         (min_growth_bytes) (limit 512KiB/h and 1%/h; floor 4MiB)"
    );
    // A larger baseline moves both thresholds to their relative keys.
    let why = window_no(Resource::Rss, &f, &rules, Some(1024.0 * MIB)).unwrap();
    assert_eq!(
        why,
        "+1018.71KiB/h is under the limit 10.24MiB/h (rss_percent_per_hour 1% of the \
         baseline 1GiB); below growth floor: +2.98MiB < 20.48MiB (min_growth_percent 2% of \
         the baseline 1GiB)"
    );
}

#[test]
fn each_failed_rule_of_a_window_is_named() {
    let rules = LeakRules::default();
    let base = Some(100.0 * MIB);
    // Over the limit but not surely: the lower bound is under it.
    let f = fit(60.0 * MIB, 20.0 * MIB, 3600.0);
    assert_eq!(
        window_no(Resource::Rss, &f, &rules, base).unwrap(),
        "lower bound +40MiB/h is under the limit 50MiB/h (rss_mib_per_hour)"
    );
    // A plateau: the newer half is significantly slower than the whole.
    let mut f = fit(200.0 * MIB, 10.0 * MIB, 3600.0);
    f.recent_slope = 5.0 * MIB / H;
    f.recent_lo = 0.0;
    f.recent_hi = 20.0 * MIB / H;
    assert_eq!(
        window_no(Resource::Rss, &f, &rules, base).unwrap(),
        "newer half slower: +5MiB/h (upper bound +20MiB/h) < +200MiB/h over the whole window"
    );
    // A window that calls: no reason.
    let f = fit(200.0 * MIB, 10.0 * MIB, 3600.0);
    assert_eq!(window_no(Resource::Rss, &f, &rules, base), None);
    let ws = [window("5m", None), window("1h", Some(f))];
    assert!(
        verdict(Resource::Rss, Verdict::Leak, &ws, &rules, base)
            .starts_with("+200MiB/h over the 1h window: lower bound +190MiB/h > limit 50MiB/h"),
        "{}",
        verdict(Resource::Rss, Verdict::Leak, &ws, &rules, base)
    );
}

#[test]
fn an_unknown_names_the_longest_window_and_why_it_has_no_fit() {
    let rules = LeakRules::default();
    let mut ws = [window("30s", None), window("90s", None)];
    ws[1].no_fit = NoFit::Filling {
        held: 40.0,
        span: 90.0,
    };
    assert_eq!(
        verdict(Resource::Rss, Verdict::Unknown, &ws, &rules, None),
        "the longest window (90s) has no fit: it holds 40s of 1m 30s (a fit needs half, \
         after the warm-up)"
    );
    ws[1].no_fit = NoFit::FewTroughs {
        points: 4,
        period: Some(15.0),
    };
    assert_eq!(
        verdict(Resource::Fds, Verdict::Unknown, &ws, &rules, None),
        "the longest window (90s) has no fit: 4 troughs one cycle (15s) apart; a fit needs 6: \
         the window holds too few sawtooth (GC or load) cycles"
    );
    assert_eq!(
        no_fit_short(ws[1].no_fit),
        "4 troughs < 6, one per 15s",
        "the progress line's words"
    );
    assert_eq!(no_fit(NoFit::NoData), "no samples after the warm-up yet");
}

#[test]
fn an_ok_because_a_shorter_window_disagrees_names_it() {
    let rules = LeakRules::default();
    let base = Some(100.0 * MIB);
    let long = fit(200.0 * MIB, 10.0 * MIB, 7000.0);
    // The 5 min window resolves the threshold and reaches the floor, but is flat.
    let short = fit(2.0 * MIB, 20.0 * MIB, 290.0);
    let mut short_full = short;
    short_full.span = 3000.0;
    short_full.growth = short_full.slope * 3000.0;
    let ws = [window("50m", Some(short_full)), window("2h", Some(long))];
    let text = verdict(Resource::Rss, Verdict::Ok, &ws, &rules, base);
    assert!(
        text.starts_with(
            "+200MiB/h over the 2h window, but the 50m window does not call it: +2MiB/h is \
             under the limit 50MiB/h (rss_mib_per_hour)"
        ),
        "{text}"
    );
    // Too wide to resolve the threshold, and its interval lies under the long one's.
    let ws = [
        window("5m", Some(fit(2.0 * MIB, 60.0 * MIB, 290.0))),
        window("2h", Some(long)),
    ];
    let text = verdict(Resource::Rss, Verdict::Ok, &ws, &rules, base);
    assert!(
        text.contains(
            "but the 5m window grows slower: upper bound +62MiB/h < the 2h window's lower \
             bound +190MiB/h"
        ),
        "{text}"
    );
    // Consistent everywhere: the verdict is only waiting for its confirmation.
    let ws = [
        window("5m", Some(fit(150.0 * MIB, 100.0 * MIB, 290.0))),
        window("2h", Some(long)),
    ];
    let text = verdict(Resource::Rss, Verdict::Ok, &ws, &rules, base);
    assert!(text.contains("[monitor] confirm"), "{text}");
}
