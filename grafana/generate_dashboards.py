#!/usr/bin/env python3
"""Generates grafana/dashboards/*.json through Grafana's own SDK, grafana-foundation-sdk.

Run: python3 grafana/generate_dashboards.py            (writes the four dashboards)
     python3 grafana/generate_dashboards.py --check    (exit 1 if a committed file differs)
     python3 grafana/generate_dashboards.py --round-trip  (each committed dashboard read into
                                     the SDK's types and written back, as one JSON object)
     python3 grafana/generate_dashboards.py --requirement  (the pip requirement below)

The SDK's types come from Grafana's own schema. This generator pins the SDK built for Grafana
11.6 (REQUIREMENT), whose dashboards have schemaVersion 41 (SCHEMA_VERSION, asserted on each).

HOW TO ADD A PANEL: find the dashboard's function below (`def overview()`, ...) and add one
line where it should appear; panels flow left to right in rows of 24 columns:

    g.add(timeseries("Title", "unit", [q(f"rate(soakd_x_total{{{SSEL}}}[{RI}])", "{{scenario}}")],
                     desc="What it shows and which alert reads it."), w=8)

- `q(expr, legend)` is one Prometheus query. Every selector must apply the dashboard's
  variables (SEL: job and instance; SSEL adds scenario; PSEL adds process) and every
  rate/increase must use RI ($__rate_interval): tests/dashboards.rs checks both, and that each
  soakd_* metric is in the catalog (src/metrics.rs).
- Panel kinds: timeseries (stack=True for stacked areas), heatmap (one histogram's buckets),
  state_timeline, stat, table, text. Each is a few lines below; a new kind is a new function
  built from the SDK's builder of that panel (grafana_foundation_sdk.builders.<kind>).
- Then run this script and commit the JSON with the change; `cargo test --test dashboards`.

Nothing here is hand-written JSON except the few fields the SDK's types cannot hold
(EXTRA_ANNOTATION_FIELDS: a Prometheus annotation's title and text formats and step); the
round-trip test (tests/dashboards.rs) checks that those are the only fields the SDK drops.
"""

import json
import os
import sys

REQUIREMENT = "grafana-foundation-sdk==1769699379!11.6.0"
SCHEMA_VERSION = 41

if "--requirement" in sys.argv[1:]:
    print(REQUIREMENT)
    sys.exit(0)

try:
    from grafana_foundation_sdk.builders import common as cb, dashboard as db, prometheus
    from grafana_foundation_sdk.builders import heatmap as heatmap_b, stat as stat_b
    from grafana_foundation_sdk.builders import statetimeline as statetimeline_b
    from grafana_foundation_sdk.builders import table as table_b, text as text_b
    from grafana_foundation_sdk.builders import timeseries as timeseries_b
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common as cm, dashboard as dm, heatmap as hm
    from grafana_foundation_sdk.models import prometheus as pm, text as tm
except ImportError:
    sys.exit(f"generate_dashboards.py: install Grafana's SDK: python3 -m pip install '{REQUIREMENT}'")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'job=~"$job", instance=~"$instance"'
SSEL = SEL + ', scenario=~"$scenario"'
PSEL = SEL + ', process=~"$process"'
RI = "$__rate_interval"

# A Prometheus annotation's fields that the SDK's AnnotationQuery has no place for; added to
# the SDK's JSON by name (the only part of a dashboard not built from the SDK's types).
EXTRA_ANNOTATION_FIELDS = ("step", "titleFormat", "textFormat")


# ------------------------------------------------------------------ building blocks
def q(expr, legend, table_instant=False):
    """One Prometheus query (refIds are given in order by the panel)."""
    t = prometheus.Dataquery().datasource(DS).expr(expr).legend_format(legend)
    return t.format(pm.PromQueryFormat.TABLE).instant() if table_instant else t.range()


def _data(panel, title, unit, targets, desc):
    panel = panel.title(title).description(desc).datasource(DS).unit(unit)
    for i, t in enumerate(targets):
        panel = panel.with_target(t.ref_id(chr(65 + i)))
    return panel


def _thresholds(*steps):
    """Absolute thresholds: (value or None for the base, color)."""
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps])


def _legend(show=True):
    return cb.VizLegendOptions().show_legend(show).display_mode(cm.LegendDisplayMode.LIST) \
        .placement(cm.LegendPlacement.BOTTOM)


def timeseries(title, unit, targets, desc="", stack=False, min_val=None, max_val=None):
    p = _data(timeseries_b.Panel(), title, unit, targets, desc).legend(_legend()).tooltip(
        cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    if stack:
        p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL).group("A")) \
            .fill_opacity(60).line_width(1)
    if min_val is not None:
        p = p.min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    return p


def heatmap(title, unit, expr, desc=""):
    """The buckets of one histogram, as Prometheus keeps them (no calculation in Grafana)."""
    t = q(expr, "{{le}}").format(pm.PromQueryFormat.HEATMAP)
    return _data(heatmap_b.Panel(), title, unit, [t], desc).calculate(False) \
        .y_axis(heatmap_b.YAxisConfig().unit(unit).axis_placement(cm.AxisPlacement.LEFT)) \
        .cell_gap(1) \
        .color(heatmap_b.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme("Spectral")
               .steps(64)) \
        .rows_frame(heatmap_b.RowsHeatmapOptions().layout(cm.HeatmapCellLayout.AUTO)) \
        .mode(cm.TooltipDisplayMode.SINGLE).show_y_histogram().show_legend()


def state_timeline(title, unit, targets, desc="", legend=False, thresholds=None):
    p = _data(statetimeline_b.Panel(), title, unit, targets, desc) \
        .show_value(cm.VisibilityMode.NEVER).merge_values(True).row_height(0.8) \
        .legend(_legend(legend))
    if thresholds:
        p = p.thresholds(_thresholds(*thresholds)).color_scheme(
            db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    return p


def stat(title, unit, targets, thresholds, desc=""):
    """The last value of each series as a coloured tile with its name."""
    return _data(stat_b.Panel(), title, unit, targets, desc) \
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)) \
        .color_mode(cm.BigValueColorMode.BACKGROUND).graph_mode(cm.BigValueGraphMode.NONE) \
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME).thresholds(_thresholds(*thresholds))


def table(title, unit, targets, desc="", sort_by=None, organize=None):
    p = _data(table_b.Panel(), title, unit, targets, desc).show_header(True) \
        .cell_height(cm.TableCellHeight.SM)
    if sort_by:
        p = p.sort_by([cb.TableSortByFieldState().display_name(sort_by).desc(True)])
    if organize:
        p = p.with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize))
    return p


def text(title, markdown):
    return text_b.Panel().title(title).mode(tm.TextMode.MARKDOWN).content(markdown)


def q3(metric, sel, extra=""):
    """p50, p90 and p99 of a histogram."""
    return [q(f"histogram_quantile({x}, sum by (le) (rate({metric}_bucket{{{sel}{extra}}}[{RI}])))",
              f"p{int(x * 100)}") for x in (0.5, 0.9, 0.99)]


class Grid:
    """Panels in order, laid out left to right in rows of 24 columns."""

    def __init__(self):
        self.panels, self.x, self.y, self.row_h = [], 0, 0, 0

    def add(self, panel, w=12, h=8):
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append(panel.id(len(self.panels) + 1).grid_pos(
            dm.GridPos(x=self.x, y=self.y, w=w, h=h)))
        self.x += w
        self.row_h = max(self.row_h, h)


def _variable(name, query):
    return db.QueryVariable(name).label(name).datasource(DS) \
        .query({"query": query, "refId": f"{name}-var"}) \
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True) \
        .all_value(".*").current(dm.VariableOption(selected=True, text=["All"], value=["$__all"])) \
        .sort(dm.VariableSort.ALPHABETICAL_ASC).hide(dm.VariableHide.DONT_HIDE).regex("")


LINKS = (("soakd-overview", "Overview"), ("soakd-leak", "Leaks"),
         ("soakd-streaming", "Streaming"), ("soakd-proxy", "Proxy"))
BURSTS = {"expr": f"soakd_burst_active{{{SEL}}} == 1", "step": "15s", "titleFormat": "burst",
          "textFormat": "burst on {{instance}}"}


def dashboard(uid, title, desc, grid, with_scenario, with_process):
    """A dashboard of `grid`'s panels with the datasource, job and instance variables (and
    scenario or process), links to the other dashboards and the bursts annotation."""
    d = db.Dashboard(title).uid(uid).description(desc).tags(["soakd"]).timezone("browser") \
        .version(1).editable().tooltip(dm.DashboardCursorSync.CROSSHAIR).refresh("30s") \
        .time("now-6h", "now").fiscal_year_start_month(0).live_now(False)
    d = d.annotation(db.AnnotationQuery().name("Annotations & Alerts").built_in(1)
                     .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                     .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)").type("dashboard"))
    d = d.annotation(db.AnnotationQuery().name("Bursts").datasource(DS).enable(True).hide(False)
                     .icon_color("orange").expr(BURSTS["expr"]))
    d = d.with_variable(db.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
                        .current(dm.VariableOption(selected=False, text="Prometheus",
                                                   value="prometheus"))
                        .hide(dm.VariableHide.DONT_HIDE).multi(False).include_all(False)
                        .regex(""))
    d = d.with_variable(_variable("job", "label_values(soakd_build_info, job)"))
    d = d.with_variable(_variable("instance",
                                  'label_values(soakd_build_info{job=~"$job"}, instance)'))
    if with_scenario:
        d = d.with_variable(_variable("scenario",
                                      f"label_values(soakd_requests_total{{{SEL}}}, scenario)"))
    if with_process:
        d = d.with_variable(_variable("process",
                                      f"label_values(soakd_process_up{{{SEL}}}, process)"))
    for u, t in LINKS:
        if u != uid:
            d = d.link(db.DashboardLink(t).type(dm.DashboardLinkType.LINK).url(f"/d/{u}")
                       .keep_time(True).include_vars(True))
    for p in grid.panels:
        d = d.with_panel(p)
    return d


def sdk_json(model):
    return json.loads(json.dumps(model, cls=JSONEncoder))


def encode(builder):
    """The SDK's JSON of a dashboard, plus EXTRA_ANNOTATION_FIELDS on the bursts annotation.

    The built model is written, read back into the SDK's model and written again, so the
    file is the SDK's own fixed point: its reader fills the defaults of each panel's field
    config, and reading the file again changes nothing."""
    plugins.register_default_plugins()
    v = sdk_json(dm.Dashboard.from_json(sdk_json(builder.build())))
    for a in v["annotations"]["list"]:
        if a["name"] == "Bursts":
            a.update({k: BURSTS[k] for k in EXTRA_ANNOTATION_FIELDS})
    assert v["schemaVersion"] == SCHEMA_VERSION, v["schemaVersion"]
    return v


# ------------------------------------------------------------------ overview
def overview():
    g = Grid()
    g.add(timeseries("Target vs achieved request rate", "reqps", [
        q(f"sum by (instance) (soakd_target_rate_requests_per_second{{{SEL}}})", "target {{instance}}"),
        q(f"sum by (instance) (rate(soakd_requests_total{{{SSEL}}}[{RI}]))", "achieved {{instance}}"),
    ], desc="The plan's rate (soakd_target_rate_requests_per_second) against finished requests per second. Achieved below target with drops means the generator is saturated."))
    g.add(timeseries("Outcomes", "reqps", [
        q(f"sum by (outcome) (rate(soakd_requests_total{{{SSEL}}}[{RI}]))", "{{outcome}}"),
    ], desc="Finished requests per second by outcome, stacked.", stack=True))
    g.add(timeseries("Error ratio", "percentunit", [
        q(f'sum by (scenario) (rate(soakd_requests_total{{{SSEL}, outcome!~"ok|cancelled"}}[{RI}])) / sum by (scenario) (rate(soakd_requests_total{{{SSEL}}}[{RI}]))', "{{scenario}}"),
    ], desc="Share of requests with an outcome other than ok and cancelled (alert SoakdErrorRatioHigh at 5%)."), w=8)
    g.add(timeseries("Request duration quantiles (ok)", "s",
                     q3("soakd_request_duration_seconds", SSEL, extra=', result="ok"'),
                     desc="End-to-end duration of successful requests, timed from the intended send time."), w=8)
    g.add(timeseries("Time to first token quantiles", "s", q3("soakd_time_to_first_token_seconds", SSEL)), w=8)
    g.add(heatmap("Request duration heatmap", "s",
                        f"sum by (le) (rate(soakd_request_duration_seconds_bucket{{{SSEL}}}[{RI}]))"))
    g.add(heatmap("Time to first token heatmap", "s",
                        f"sum by (le) (rate(soakd_time_to_first_token_seconds_bucket{{{SSEL}}}[{RI}]))"))
    g.add(timeseries("In-flight requests", "short", [
        q(f"sum by (instance) (soakd_in_flight_requests{{{SEL}}})", "{{instance}}"),
    ]), w=8)
    g.add(timeseries("Active streams", "short", [
        q(f"sum by (scenario) (soakd_streams_active{{{SSEL}}})", "{{scenario}}"),
    ]), w=8)
    g.add(timeseries("Dropped requests", "reqps", [
        q(f"sum by (scenario, reason) (rate(soakd_requests_dropped_total{{{SSEL}}}[{RI}]))", "{{scenario}} {{reason}}"),
    ], desc="Scheduled but never sent. Any in_flight_cap drop invalidates the soak (SoakdRequestsDropped)."), w=8)
    g.add(timeseries("Schedule lag", "s", [
        q(f"histogram_quantile({x}, sum by (le) (rate(soakd_schedule_lag_seconds_bucket{{{SEL}}}[{RI}])))", f"p{int(x * 100)}")
        for x in (0.5, 0.99)
    ], desc="Actual send minus intended send. Growing lag means soakd itself cannot keep up."), w=8)
    g.add(state_timeline("Bursts", "bool_on_off", [
        q(f"max by (instance) (soakd_burst_active{{{SEL}}})", "{{instance}}"),
    ]), w=8)
    g.add(state_timeline("Run state", "bool_on_off", [
        q(f"max by (state) (soakd_run_state{{{SEL}}})", "{{state}}"),
    ], desc="The run's state: idle (sampling before the load), load, drain, cooldown (sampling "
            "after it) and linger (the final state kept for scrapers)."), w=8)
    g.add(stat("Thresholds passing", "bool_yes_no", [
        q(f"min by (threshold) (soakd_threshold_passing{{{SEL}}})", "{{threshold}}"),
    ], thresholds=[(None, "red"), (1, "green")]), w=8)
    g.add(stat("Run age per shard", "s", [
        q(f"(time() - max by (instance) (soakd_run_start_time_seconds{{{SEL}}})) * on (instance) group_left (run_id, shard) max by (instance, run_id, shard) (soakd_run_info{{{SEL}}})", "{{run_id}} shard {{shard}}"),
    ], thresholds=[(None, "blue")], desc="Time since each shard started (soakd_run_start_time_seconds, joined to soakd_run_info on instance). soakd verdict bounds its queries to the run's span with the start time, so an earlier run under the same run_id is never counted."), w=8)
    return dashboard("soakd-overview", "soakd overview",
                     "Load, outcomes, latency and streams of a soakd run.", g, True, False)


# ------------------------------------------------------------------ leak
def leak():
    g = Grid()
    g.add(timeseries("Resident memory per process", "bytes", [
        q(f"soakd_process_resident_memory_bytes{{{PSEL}}}", "{{process}}"),
        q('soakd:memory_limit_bytes{process=~"$process"}', "limit {{process}}"),
    ], desc="RSS sampled by soakd; the limit appears if you record soakd:memory_limit_bytes."))
    g.add(timeseries("soakd vs proxy resident memory", "bytes", [
        q(f'soakd_process_resident_memory_bytes{{{SEL}, process="soakd"}}', "soakd (sampled)"),
        q(f"process_resident_memory_bytes{{{SEL}}}", "soakd (own process collector)"),
        q(f'soakd_process_resident_memory_bytes{{{PSEL}, process!="soakd"}}', "{{process}}"),
    ], desc="soakd's own RSS beside the proxy's: a leaking generator skews the run (SoakdSelfLeak)."))
    g.add(timeseries("Open file descriptors", "short", [
        q(f"soakd_process_open_fds{{{PSEL}}}", "{{process}}"),
    ]), w=8)
    g.add(timeseries("Threads", "short", [
        q(f"soakd_process_threads{{{PSEL}}}", "{{process}}"),
    ]), w=8)
    g.add(timeseries("CPU", "percentunit", [
        q(f"rate(soakd_process_cpu_seconds_total{{{PSEL}}}[{RI}])", "{{process}}"),
    ], desc="CPU seconds per second (1 = one core)."), w=8)
    g.add(timeseries("RSS slope per window", "Bps", [
        q(f"soakd_process_rss_growth_bytes_per_second{{{PSEL}}}", "{{process}} {{window}}"),
        q(f'soakd_process_growth_lower_bound_per_second{{{PSEL}, resource="rss"}}', "{{process}} {{window}} lower bound"),
    ], desc="soakd's trough slope of RSS per configured window, and the lower bound of its 95 % confidence interval (alert SoakdMemoryGrowthSlope reads the 2h lower bound)."), w=8)
    g.add(timeseries("fd slope per window", "short", [
        q(f"soakd_process_fd_growth_per_second{{{PSEL}}} * 3600", "{{process}} {{window}}"),
    ], desc="Open fds per hour."), w=8)
    g.add(timeseries("Thread slope per window", "short", [
        q(f"soakd_process_thread_growth_per_second{{{PSEL}}} * 3600", "{{process}} {{window}}"),
    ], desc="Threads per hour."), w=8)
    g.add(timeseries("Growth fit R²", "none", [
        q(f"soakd_process_growth_fit_r2{{{PSEL}}}", "{{process}} {{resource}} {{window}}"),
    ], desc="R² of each trough fit, a diagnostic only: under a slow GC sawtooth it is low even when the trend is certain (the verdict uses the slope's confidence bound).", min_val=0, max_val=1), w=8)
    g.add(timeseries("RSS growth per request", "bytes", [
        q(f"soakd_process_rss_growth_bytes_per_request{{{PSEL}}}", "{{process}} {{window}}"),
    ], desc="RSS slope divided by the request rate: a constant value points to a per-request leak."), w=8)
    g.add(timeseries("RSS retained after burst", "bytes", [
        q(f"soakd_process_rss_retained_after_burst_bytes{{{PSEL}}}", "{{process}}"),
    ], desc="RSS after the last burst settled minus RSS just before it."), w=8)
    g.add(state_timeline("Leak verdicts", "bool_yes_no", [
        q(f"soakd_leak_suspected{{{PSEL}}}", "{{process}} {{resource}}"),
    ], legend=True, thresholds=[(None, "green"), (1, "red")]), w=16)
    g.add(timeseries("Restarts", "short", [
        q(f"increase(soakd_process_restarts_total{{{PSEL}}}[{RI}])", "{{process}}"),
    ], desc="Restarts seen by soakd (new pid or start time)."), w=8)
    g.add(stat("Process up", "bool_yes_no", [
        q(f"soakd_process_up{{{PSEL}}}", "{{process}}"),
    ], thresholds=[(None, "red"), (1, "green")]), w=8)
    g.add(table("RSS growth per request by scenario", "bytes", [
        q(f"soakd_process_rss_growth_bytes_per_request_by_scenario{{{PSEL}}}", "{{process}} {{scenario}} {{window}}",
          table_instant=True),
    ], desc="Which traffic leaks: bytes of RSS growth per request of each scenario, from a regression of RSS on "
       "per-scenario request counts while soakd varies the scenario mix ([load] mix_variation). A row appears only "
       "when the window makes it identifiable (see the runbook). One scenario far above the others: its requests leak. "
       "All about equal: the growth follows time or total load, not a kind of request.",
       sort_by="bytes per request", organize={
           "excludeByName": {"Time": True, "__name__": True, "job": True},
           "indexByName": {"instance": 0, "process": 1, "window": 2, "scenario": 3, "Value": 4},
           "renameByName": {"Value": "bytes per request"}}), w=24)
    return dashboard("soakd-leak", "soakd leaks",
                     "Resident memory, fds and threads of the monitored processes, their slopes and soakd's leak verdicts.",
                     g, False, True)


# ------------------------------------------------------------------ streaming
def streaming():
    g = Grid()
    g.add(timeseries("Time to first token quantiles", "s", q3("soakd_time_to_first_token_seconds", SSEL)))
    g.add(heatmap("Time to first token heatmap", "s",
                        f"sum by (le) (rate(soakd_time_to_first_token_seconds_bucket{{{SSEL}}}[{RI}]))"))
    g.add(timeseries("Chunk gap quantiles", "s", q3("soakd_stream_chunk_gap_seconds", SSEL),
                     desc="Gaps between content-bearing chunks; long tails precede idle-timeout truncations."))
    g.add(heatmap("Chunk gap heatmap", "s",
                        f"sum by (le) (rate(soakd_stream_chunk_gap_seconds_bucket{{{SSEL}}}[{RI}]))"))
    g.add(timeseries("Streams by result", "ops", [
        q(f"sum by (result) (rate(soakd_streams_finished_total{{{SSEL}}}[{RI}]))", "{{result}}"),
    ], desc="Finished streams per second, stacked by result.", stack=True), w=8)
    g.add(timeseries("Truncated stream ratio", "percentunit", [
        q(f'sum by (scenario) (rate(soakd_streams_finished_total{{{SSEL}, result="truncated"}}[{RI}])) / sum by (scenario) (rate(soakd_streams_finished_total{{{SSEL}}}[{RI}]))', "{{scenario}}"),
    ], desc="Alert SoakdStreamsTruncated at 1%."), w=8)
    g.add(timeseries("Active streams", "short", [
        q(f"sum by (scenario) (soakd_streams_active{{{SSEL}}})", "{{scenario}}"),
    ]), w=8)
    g.add(timeseries("Output tokens per second", "short", [
        q(f"sum by (scenario) (rate(soakd_output_tokens_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
    ]), w=8)
    g.add(timeseries("Chunks per second", "ops", [
        q(f"sum by (scenario) (rate(soakd_stream_chunks_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
    ]), w=8)
    g.add(timeseries("Response bytes", "Bps", [
        q(f"sum by (scenario) (rate(soakd_response_bytes_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
    ]), w=8)
    return dashboard("soakd-streaming", "soakd streaming",
                     "Time to first token, chunk gaps, stream results and throughput of a soakd run.",
                     g, True, False)


# ------------------------------------------------------------------ proxy (two-sided soak)
def proxy():
    g = Grid()
    g.add(text("What this shows",
                     "Only while soakd also serves the proxy's upstream (`[upstream] listen`): what the proxy itself "
                     "adds, holds back, retries and orphans, measured from both ends on one clock. Calibrate by pointing "
                     "`target.url` at the upstream itself: what remains is soakd's own loopback noise."), w=24, h=3)
    for stage, title in (("request", "Added time: request (send to upstream receive)"),
                         ("first_token", "Added time: first token (client TTFT minus the upstream's own)"),
                         ("chunk", "Added time: per chunk (upstream send to client receive)"),
                         ("response", "Added time: response (upstream's last byte to client's last byte)")):
        g.add(timeseries(title, "s", [
            q(f'histogram_quantile({x}, sum by (le) (rate(soakd_proxy_added_seconds_bucket{{{SSEL}, stage="{stage}"}}[{RI}])))', f"p{int(x * 100)}")
            for x in (0.5, 0.99)
        ], desc="Alert SoakdProxyAddedTimeDrift watches every stage." if stage == "response" else ""), w=6)
    g.add(timeseries("Buffered streams (share of completed)", "percentunit", [
        q(f'sum by (scenario) (rate(soakd_proxy_buffered_streams_total{{{SSEL}}}[{RI}])) / sum by (scenario) (rate(soakd_streams_finished_total{{{SSEL}, result="completed"}}[{RI}]))', "{{scenario}}"),
    ], desc="Streams whose chunks the proxy held back and released in bunches. Alert SoakdProxyBuffering at 50%."), w=8)
    g.add(timeseries("Coalesced chunks (share of chunks)", "percentunit", [
        q(f'sum by (scenario) (rate(soakd_proxy_coalesced_chunks_total{{{SSEL}}}[{RI}])) / sum by (scenario) (rate(soakd_stream_chunks_total{{{SSEL}}}[{RI}]))', "{{scenario}}"),
    ], desc="Chunks that reached the client within 1 ms of the previous one although sent at least 10 ms apart."), w=8)
    g.add(timeseries("Retry ratio (upstream requests beyond the first)", "percentunit", [
        q(f'sum by (scenario) (rate(soakd_proxy_retries_total{{{SSEL}}}[{RI}])) / sum by (scenario) (rate(soakd_requests_total{{{SSEL}}}[{RI}]))', "{{scenario}}"),
    ], desc="Alert SoakdProxyRetryAmplification at 10%."), w=8)
    g.add(timeseries("Upstream requests", "reqps", [
        q(f"sum by (scenario) (rate(soakd_upstream_requests_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
    ], desc="Requests soakd's upstream received; scenario untagged (shown under All): no soakd id found (a proxy that strips it, or traffic that is not soakd's)."), w=8)
    g.add(timeseries("Give-ups by fate", "short", [
        q(f"sum by (fate) (increase(soakd_proxy_give_ups_total{{{SSEL}}}[{RI}]))", "{{fate}}"),
    ], desc="What became of the upstream call of every client give-up (cancel, timeout, abort): propagated, upstream_finished (nothing left to cancel), not_propagated (ran on to its end), orphaned (not ended orphan_after later), unknown. Alert SoakdProxyCancelsNotPropagated."), w=8)
    g.add(timeseries("Orphaned upstream calls", "short", [
        q(f"sum by (scenario) (soakd_proxy_orphaned_requests{{{SSEL}}})", "open {{scenario}}"),
        q(f"sum by (scenario) (increase(soakd_proxy_orphaned_requests_total{{{SSEL}}}[{RI}]))", "new {{scenario}}"),
    ], desc="Upstream calls whose client gave up and whose answer had not ended orphan_after later, sending or not: paid for, never read. Alert SoakdProxyOrphanedRequests."), w=8)
    g.add(timeseries("Cancel propagation", "s", [
        q(f"histogram_quantile({x}, sum by (le) (rate(soakd_proxy_cancel_propagation_seconds_bucket{{{SSEL}}}[{RI}])))", f"p{int(x * 100)}")
        for x in (0.5, 0.99)
    ], desc="Client give-up to the upstream seeing the disconnect, for give-ups whose fate is propagated (resolution: the upstream's chunk spacing)."), w=8)
    g.add(timeseries("Output tokens generated after give-up", "short", [
        q(f"sum by (scenario) (increase(soakd_proxy_wasted_output_tokens_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
    ], desc="Tokens the upstream generated for clients that had already gone (not propagated and orphaned answers): paid for, never read."), w=8)
    g.add(timeseries("Client errors by origin", "short", [
        q(f"sum by (origin) (increase(soakd_proxy_error_origin_total{{{SSEL}}}[{RI}]))", "{{origin}}"),
    ], desc="upstream: the proxy passed an upstream failure through; proxy: the upstream answered 2xx for that request, or never received it (a proxy that cannot reach its provider shows only proxy)."), w=8)
    g.add(timeseries("The proxy's claim vs soakd's measure", "s", [
        q(f"histogram_quantile(0.5, sum by (le) (rate(soakd_proxy_reported_overhead_seconds_bucket{{{SSEL}}}[{RI}])))", "claimed p50 (overhead header)"),
        q(f'histogram_quantile(0.5, sum by (le) (rate(soakd_proxy_added_seconds_bucket{{{SSEL}, stage="first_token"}}[{RI}])))', "measured p50 (first token)"),
    ], desc="What the proxy reports in its overhead header ([upstream] overhead_header) next to what soakd measured."), w=12)
    g.add(heatmap("Added time per chunk", "s",
                        f'sum by (le) (rate(soakd_proxy_added_seconds_bucket{{{SSEL}, stage="chunk"}}[{RI}]))'), w=12)
    return dashboard("soakd-proxy", "soakd proxy",
                     "What the proxy itself adds, holds back, retries and orphans, and what became of every give-up (two-sided soak).",
                     g, True, False)


DASHBOARDS = {"soakd-overview": overview, "soakd-leak": leak, "soakd-streaming": streaming,
              "soakd-proxy": proxy}


def dumps(v):
    return json.dumps(v, indent=2, ensure_ascii=False) + "\n"


def round_trip():
    """Each committed dashboard read into the SDK's model and written back by it."""
    plugins.register_default_plugins()
    out = {}
    for name in DASHBOARDS:
        with open(os.path.join(OUT, f"{name}.json"), encoding="utf-8") as f:
            model = dm.Dashboard.from_json(json.load(f))
        out[name] = sdk_json(model)
    return out


def main(argv):
    if "--round-trip" in argv:
        print(json.dumps(round_trip(), ensure_ascii=False))
        return 0
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(OUT, f"{name}.json")
        out = dumps(encode(build()))
        if "--check" in argv:
            with open(path, encoding="utf-8") as f:
                if f.read() != out:
                    stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(out)
    if stale:
        print("not what grafana/generate_dashboards.py generates (run it and commit the JSON): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
