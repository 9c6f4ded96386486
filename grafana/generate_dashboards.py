import os
# Generates grafana/dashboards/*.json (run: python3 grafana/generate_dashboards.py).
import json
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance"'
SSEL = SEL + ', scenario=~"$scenario"'
PSEL = SEL + ', process=~"$process"'
RI = "$__rate_interval"

def var_query(name, label, query, definition_metric):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
        "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1, "hide": 0, "options": [], "regex": "",
    }

def variables(with_scenario, with_process):
    v = [{
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
        "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1, "regex": "",
    },
        var_query("job", "job", "label_values(soakd_build_info, job)", None),
        var_query("instance", "instance", 'label_values(soakd_build_info{job=~"$job"}, instance)', None),
    ]
    if with_scenario:
        v.append(var_query("scenario", "scenario", f'label_values(soakd_requests_total{{{SEL}}}, scenario)', None))
    if with_process:
        v.append(var_query("process", "process", f'label_values(soakd_process_up{{{SEL}}}, process)', None))
    return v

class Dash:
    def __init__(self):
        self.panels, self.x, self.y, self.rowh, self.id = [], 0, 0, 0, 0

    def add(self, ptype, title, unit, targets, w=12, h=8, desc="", extra_defaults=None, options=None, field_custom=None, transformations=None):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.rowh
            self.rowh = 0
        self.id += 1
        tg = []
        for i, t in enumerate(targets):
            expr, legend = t[0], t[1]
            d = {"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend, "range": True}
            if ptype == "heatmap":
                d.update({"format": "heatmap", "legendFormat": "{{le}}"})
            if len(t) > 2:
                d.update(t[2])
            tg.append(d)
        defaults = {"unit": unit, "custom": field_custom or {}}
        defaults.update(extra_defaults or {})
        p = {"id": self.id, "type": ptype, "title": title, "description": desc, "datasource": DS,
             "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
             "fieldConfig": {"defaults": defaults, "overrides": []},
             "options": options or {}, "targets": tg}
        if transformations:
            p["transformations"] = transformations
        if ptype == "heatmap":
            p["options"] = {"calculate": False, "yAxis": {"unit": unit, "axisPlacement": "left"},
                            "cellGap": 1, "color": {"mode": "scheme", "scheme": "Spectral", "steps": 64},
                            "rowsFrame": {"layout": "auto"}, "tooltip": {"show": True, "yHistogram": True},
                            "legend": {"show": True}}
        self.panels.append(p)
        self.x += w
        self.rowh = max(self.rowh, h)

    def text(self, title, content, w=24, h=3):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.rowh
            self.rowh = 0
        self.id += 1
        self.panels.append({"id": self.id, "type": "text", "title": title, "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
                            "options": {"mode": "markdown", "content": content}})
        self.x += w
        self.rowh = max(self.rowh, h)

def dashboard(uid, title, desc, d, with_scenario, with_process, annotations=()):
    ann = [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]
    ann += list(annotations)
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["soakd"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "fiscalYearStartMonth": 0, "liveNow": False,
        "annotations": {"list": ann},
        "templating": {"list": variables(with_scenario, with_process)},
        "links": [{"title": t, "type": "link", "url": f"/d/{u}", "keepTime": True, "includeVars": True}
                  for u, t in (("soakd-overview", "Overview"), ("soakd-leak", "Leaks"), ("soakd-streaming", "Streaming"), ("soakd-proxy", "Proxy")) if u != uid],
        "panels": d.panels,
    }

BURST_ANN = {"name": "Bursts", "datasource": DS, "enable": True, "hide": False, "iconColor": "orange",
             "expr": f"soakd_burst_active{{{SEL}}} == 1", "step": "15s", "titleFormat": "burst",
             "textFormat": "burst on {{instance}}", "useValueForTime": False}

def q3(metric, sel, by="le", extra=""):
    return [(f"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket{{{sel}{extra}}}[{RI}])))", f"p{int(q*100)}")
            for q in (0.5, 0.9, 0.99)]

TS = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}, "tooltip": {"mode": "multi", "sort": "desc"}}
STACK = {"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 60, "lineWidth": 1}

# ------------------------------------------------------------------ overview
d = Dash()
d.add("timeseries", "Target vs achieved request rate", "reqps", [
    (f"sum by (instance) (soakd_target_rate_requests_per_second{{{SEL}}})", "target {{instance}}"),
    (f"sum by (instance) (rate(soakd_requests_total{{{SSEL}}}[{RI}]))", "achieved {{instance}}"),
], desc="The plan's rate (soakd_target_rate_requests_per_second) against finished requests per second. Achieved below target with drops means the generator is saturated.", options=TS)
d.add("timeseries", "Outcomes", "reqps", [
    (f"sum by (outcome) (rate(soakd_requests_total{{{SSEL}}}[{RI}]))", "{{outcome}}"),
], desc="Finished requests per second by outcome, stacked.", options=TS, field_custom=STACK)
d.add("timeseries", "Error ratio", "percentunit", [
    (f'sum by (scenario) (rate(soakd_requests_total{{{SSEL}, outcome!~"ok|cancelled"}}[{RI}])) / sum by (scenario) (rate(soakd_requests_total{{{SSEL}}}[{RI}]))', "{{scenario}}"),
], desc="Share of requests with an outcome other than ok and cancelled (alert SoakdErrorRatioHigh at 5%).", options=TS, w=8)
d.add("timeseries", "Request duration quantiles (ok)", "s", q3("soakd_request_duration_seconds", SSEL, extra=', result="ok"'), options=TS, w=8,
      desc="End-to-end duration of successful requests, timed from the intended send time.")
d.add("timeseries", "Time to first token quantiles", "s", q3("soakd_time_to_first_token_seconds", SSEL), options=TS, w=8)
d.add("heatmap", "Request duration heatmap", "s", [
    (f"sum by (le) (rate(soakd_request_duration_seconds_bucket{{{SSEL}}}[{RI}]))", "{{le}}"),
])
d.add("heatmap", "Time to first token heatmap", "s", [
    (f"sum by (le) (rate(soakd_time_to_first_token_seconds_bucket{{{SSEL}}}[{RI}]))", "{{le}}"),
])
d.add("timeseries", "In-flight requests", "short", [
    (f"sum by (instance) (soakd_in_flight_requests{{{SEL}}})", "{{instance}}"),
], options=TS, w=8)
d.add("timeseries", "Active streams", "short", [
    (f"sum by (scenario) (soakd_streams_active{{{SSEL}}})", "{{scenario}}"),
], options=TS, w=8)
d.add("timeseries", "Dropped requests", "reqps", [
    (f"sum by (scenario, reason) (rate(soakd_requests_dropped_total{{{SSEL}}}[{RI}]))", "{{scenario}} {{reason}}"),
], desc="Scheduled but never sent. Any in_flight_cap drop invalidates the soak (SoakdRequestsDropped).", options=TS, w=8)
d.add("timeseries", "Schedule lag", "s", [
    (f"histogram_quantile({q}, sum by (le) (rate(soakd_schedule_lag_seconds_bucket{{{SEL}}}[{RI}])))", f"p{int(q*100)}") for q in (0.5, 0.99)
], desc="Actual send minus intended send. Growing lag means soakd itself cannot keep up.", options=TS, w=8)
d.add("state-timeline", "Bursts", "bool_on_off", [
    (f"max by (instance) (soakd_burst_active{{{SEL}}})", "{{instance}}"),
], w=8, options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "legend": {"showLegend": False}})
d.add("state-timeline", "Run state", "bool_on_off", [
    (f"max by (state) (soakd_run_state{{{SEL}}})", "{{state}}"),
], desc="The run's state: idle (sampling before the load), load, drain, cooldown (sampling after it) and linger (the final state kept for scrapers).",
   w=8, options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "legend": {"showLegend": False}})
d.add("stat", "Thresholds passing", "bool_yes_no", [
    (f"min by (threshold) (soakd_threshold_passing{{{SEL}}})", "{{threshold}}"),
], w=8, options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"},
   extra_defaults={"mappings": [], "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}})
overview = dashboard("soakd-overview", "soakd overview", "Load, outcomes, latency and streams of a soakd run.", d, True, False, [BURST_ANN])

# ------------------------------------------------------------------ leak
d = Dash()
d.add("timeseries", "Resident memory per process", "bytes", [
    (f"soakd_process_resident_memory_bytes{{{PSEL}}}", "{{process}}"),
    (f"soakd:memory_limit_bytes{{process=~\"$process\"}}", "limit {{process}}"),
], desc="RSS sampled by soakd; the limit appears if you record soakd:memory_limit_bytes.", options=TS)
d.add("timeseries", "soakd vs proxy resident memory", "bytes", [
    (f'soakd_process_resident_memory_bytes{{{SEL}, process="soakd"}}', "soakd (sampled)"),
    (f"process_resident_memory_bytes{{{SEL}}}", "soakd (own process collector)"),
    (f'soakd_process_resident_memory_bytes{{{PSEL}, process!="soakd"}}', "{{process}}"),
], desc="soakd's own RSS beside the proxy's: a leaking generator skews the run (SoakdSelfLeak).", options=TS)
d.add("timeseries", "Open file descriptors", "short", [
    (f"soakd_process_open_fds{{{PSEL}}}", "{{process}}"),
], options=TS, w=8)
d.add("timeseries", "Threads", "short", [
    (f"soakd_process_threads{{{PSEL}}}", "{{process}}"),
], options=TS, w=8)
d.add("timeseries", "CPU", "percentunit", [
    (f"rate(soakd_process_cpu_seconds_total{{{PSEL}}}[{RI}])", "{{process}}"),
], desc="CPU seconds per second (1 = one core).", options=TS, w=8)
d.add("timeseries", "RSS slope per window", "Bps", [
    (f"soakd_process_rss_growth_bytes_per_second{{{PSEL}}}", "{{process}} {{window}}"),
    (f"soakd_process_growth_lower_bound_per_second{{{PSEL}, resource=\"rss\"}}", "{{process}} {{window}} lower bound"),
], desc="soakd's trough slope of RSS per configured window, and the lower bound of its 95 % confidence interval (alert SoakdMemoryGrowthSlope reads the 2h lower bound).", options=TS, w=8)
d.add("timeseries", "fd slope per window", "short", [
    (f"soakd_process_fd_growth_per_second{{{PSEL}}} * 3600", "{{process}} {{window}}"),
], desc="Open fds per hour.", options=TS, w=8)
d.add("timeseries", "Thread slope per window", "short", [
    (f"soakd_process_thread_growth_per_second{{{PSEL}}} * 3600", "{{process}} {{window}}"),
], desc="Threads per hour.", options=TS, w=8)
d.add("timeseries", "Growth fit R²", "none", [
    (f"soakd_process_growth_fit_r2{{{PSEL}}}", "{{process}} {{resource}} {{window}}"),
], desc="R² of each trough fit, a diagnostic only: under a slow GC sawtooth it is low even when the trend is certain (the verdict uses the slope's confidence bound).", options=TS, w=8, extra_defaults={"min": 0, "max": 1})
d.add("timeseries", "RSS growth per request", "bytes", [
    (f"soakd_process_rss_growth_bytes_per_request{{{PSEL}}}", "{{process}} {{window}}"),
], desc="RSS slope divided by the request rate: a constant value points to a per-request leak.", options=TS, w=8)
d.add("timeseries", "RSS retained after burst", "bytes", [
    (f"soakd_process_rss_retained_after_burst_bytes{{{PSEL}}}", "{{process}}"),
], desc="RSS after the last burst settled minus RSS just before it.", options=TS, w=8)
d.add("state-timeline", "Leak verdicts", "bool_yes_no", [
    (f"soakd_leak_suspected{{{PSEL}}}", "{{process}} {{resource}}"),
], w=16, options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "legend": {"showLegend": True}},
   extra_defaults={"thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}]}, "color": {"mode": "thresholds"}})
d.add("timeseries", "Restarts", "short", [
    (f"increase(soakd_process_restarts_total{{{PSEL}}}[{RI}])", "{{process}}"),
], desc="Restarts seen by soakd (new pid or start time).", options=TS, w=8)
d.add("stat", "Process up", "bool_yes_no", [
    (f"soakd_process_up{{{PSEL}}}", "{{process}}"),
], w=8, options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"},
   extra_defaults={"thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}})
d.add("table", "RSS growth per request by scenario", "bytes", [
    (f"soakd_process_rss_growth_bytes_per_request_by_scenario{{{PSEL}}}", "{{process}} {{scenario}} {{window}}",
     {"format": "table", "instant": True, "range": False}),
], w=24, desc="Which traffic leaks: bytes of RSS growth per request of each scenario, from a regression of RSS on "
   "per-scenario request counts while soakd varies the scenario mix ([load] mix_variation). A row appears only "
   "when the window makes it identifiable (see the runbook). One scenario far above the others: its requests leak. "
   "All about equal: the growth follows time or total load, not a kind of request.",
   options={"showHeader": True, "cellHeight": "sm", "sortBy": [{"displayName": "bytes per request", "desc": True}]},
   transformations=[{"id": "organize", "options": {
       "excludeByName": {"Time": True, "__name__": True, "job": True},
       "indexByName": {"instance": 0, "process": 1, "window": 2, "scenario": 3, "Value": 4},
       "renameByName": {"Value": "bytes per request"}}}])
d.add("table", "Memory arc", "bytes", [
    (f"soakd_process_rss_idle_bytes{{{PSEL}}}", "idle", {"format": "table", "instant": True, "range": False}),
    (f"soakd_process_rss_plateau_bytes{{{PSEL}}}", "plateau", {"format": "table", "instant": True, "range": False}),
    (f"soakd_process_rss_recovered_bytes{{{PSEL}}}", "recovered", {"format": "table", "instant": True, "range": False}),
], w=16, desc="Memory over the whole run (RSS; summed PSS for a process tree): the median before the load ([run] idle), "
   "the level it settled at under load, and the median over the last third of the cooldown ([run] cooldown). Recovered "
   "near idle: the memory came back; recovered near the plateau: the process keeps what it took.",
   options={"showHeader": True, "cellHeight": "sm"},
   transformations=[{"id": "merge", "options": {}}, {"id": "organize", "options": {
       "excludeByName": {"Time": True, "__name__": True, "job": True},
       "indexByName": {"instance": 0, "process": 1, "Value #A": 2, "Value #B": 3, "Value #C": 4},
       "renameByName": {"Value #A": "idle", "Value #B": "plateau", "Value #C": "recovered"}}}])
d.add("stat", "Time to plateau", "s", [
    (f"soakd_process_rss_plateau_seconds{{{PSEL}}}", "{{process}}"),
], w=8, desc="Seconds after the start of the load when the memory levelled off; no value: it has not (see the summary's arc for the growth rate).",
   options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "none", "graphMode": "none", "textMode": "value_and_name"})
leak = dashboard("soakd-leak", "soakd leaks", "Resident memory, fds and threads of the monitored processes, their slopes and soakd's leak verdicts.", d, False, True, [BURST_ANN])

# ------------------------------------------------------------------ streaming
d = Dash()
d.add("timeseries", "Time to first token quantiles", "s", q3("soakd_time_to_first_token_seconds", SSEL), options=TS)
d.add("heatmap", "Time to first token heatmap", "s", [
    (f"sum by (le) (rate(soakd_time_to_first_token_seconds_bucket{{{SSEL}}}[{RI}]))", "{{le}}"),
])
d.add("timeseries", "Chunk gap quantiles", "s", q3("soakd_stream_chunk_gap_seconds", SSEL), options=TS,
      desc="Gaps between content-bearing chunks; long tails precede idle-timeout truncations.")
d.add("heatmap", "Chunk gap heatmap", "s", [
    (f"sum by (le) (rate(soakd_stream_chunk_gap_seconds_bucket{{{SSEL}}}[{RI}]))", "{{le}}"),
])
d.add("timeseries", "Streams by result", "ops", [
    (f"sum by (result) (rate(soakd_streams_finished_total{{{SSEL}}}[{RI}]))", "{{result}}"),
], desc="Finished streams per second, stacked by result.", options=TS, field_custom=STACK, w=8)
d.add("timeseries", "Truncated stream ratio", "percentunit", [
    (f'sum by (scenario) (rate(soakd_streams_finished_total{{{SSEL}, result="truncated"}}[{RI}])) / sum by (scenario) (rate(soakd_streams_finished_total{{{SSEL}}}[{RI}]))', "{{scenario}}"),
], desc="Alert SoakdStreamsTruncated at 1%.", options=TS, w=8)
d.add("timeseries", "Active streams", "short", [
    (f"sum by (scenario) (soakd_streams_active{{{SSEL}}})", "{{scenario}}"),
], options=TS, w=8)
d.add("timeseries", "Output tokens per second", "short", [
    (f"sum by (scenario) (rate(soakd_output_tokens_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
], options=TS, w=8)
d.add("timeseries", "Chunks per second", "ops", [
    (f"sum by (scenario) (rate(soakd_stream_chunks_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
], options=TS, w=8)
d.add("timeseries", "Response bytes", "Bps", [
    (f"sum by (scenario) (rate(soakd_response_bytes_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
], options=TS, w=8)
streaming = dashboard("soakd-streaming", "soakd streaming", "Time to first token, chunk gaps, stream results and throughput of a soakd run.", d, True, False, [BURST_ANN])

# ------------------------------------------------------------------ proxy (two-sided soak)
d = Dash()
d.text("What this shows", "Only while soakd also serves the proxy's upstream (`[upstream] listen`): what the proxy itself "
       "adds, holds back, retries and orphans, measured from both ends on one clock. Calibrate by pointing "
       "`target.url` at the upstream itself: what remains is soakd's own loopback noise.", h=3)
for stage, title in (("request", "Added time: request (send to upstream receive)"),
                     ("first_token", "Added time: first token (client TTFT minus the upstream's own)"),
                     ("chunk", "Added time: per chunk (upstream send to client receive)")):
    d.add("timeseries", title, "s", [
        (f'histogram_quantile({q}, sum by (le) (rate(soakd_proxy_added_seconds_bucket{{{SSEL}, stage="{stage}"}}[{RI}])))', f"p{int(q*100)}")
        for q in (0.5, 0.99)
    ], options=TS, w=8)
d.add("timeseries", "Buffered streams (share of completed)", "percentunit", [
    (f'sum by (scenario) (rate(soakd_proxy_buffered_streams_total{{{SSEL}}}[{RI}])) / sum by (scenario) (rate(soakd_streams_finished_total{{{SSEL}, result="completed"}}[{RI}]))', "{{scenario}}"),
], desc="Streams whose chunks the proxy held back and released in bunches. Alert SoakdProxyBuffering at 50%.", options=TS, w=8)
d.add("timeseries", "Coalesced chunks (share of chunks)", "percentunit", [
    (f'sum by (scenario) (rate(soakd_proxy_coalesced_chunks_total{{{SSEL}}}[{RI}])) / sum by (scenario) (rate(soakd_stream_chunks_total{{{SSEL}}}[{RI}]))', "{{scenario}}"),
], desc="Chunks that reached the client within 1 ms of the previous one although sent at least 10 ms apart.", options=TS, w=8)
d.add("timeseries", "Retry ratio (upstream requests beyond the first)", "percentunit", [
    (f'sum by (scenario) (rate(soakd_proxy_retries_total{{{SSEL}}}[{RI}])) / sum by (scenario) (rate(soakd_requests_total{{{SSEL}}}[{RI}]))', "{{scenario}}"),
], desc="Alert SoakdProxyRetryAmplification at 10%.", options=TS, w=8)
d.add("timeseries", "Upstream requests", "reqps", [
    (f"sum by (scenario) (rate(soakd_upstream_requests_total{{{SSEL}}}[{RI}]))", "{{scenario}}"),
], desc="Requests soakd's upstream received; scenario untagged (shown under All): no soakd id found (a proxy that strips it, or traffic that is not soakd's).", options=TS, w=8)
d.add("timeseries", "Orphaned upstream streams", "short", [
    (f"sum by (scenario) (soakd_proxy_orphaned_streams{{{SSEL}}})", "open {{scenario}}"),
    (f"sum by (scenario) (increase(soakd_proxy_orphaned_streams_total{{{SSEL}}}[{RI}]))", "new {{scenario}}"),
], desc="Upstream streams still generating orphan_after after their client gave up: paid for, never read. Alert SoakdProxyOrphanedStreams.", options=TS, w=8)
d.add("timeseries", "Cancel propagation", "s", [
    (f"histogram_quantile({q}, sum by (le) (rate(soakd_proxy_cancel_propagation_seconds_bucket{{{SSEL}}}[{RI}])))", f"p{int(q*100)}")
    for q in (0.5, 0.99)
], desc="Client cancel or timeout to the upstream seeing the disconnect (resolution: the upstream's chunk spacing).", options=TS, w=8)
d.add("timeseries", "The proxy's claim vs soakd's measure", "s", [
    (f"histogram_quantile(0.5, sum by (le) (rate(soakd_proxy_reported_overhead_seconds_bucket{{{SSEL}}}[{RI}])))", "claimed p50 (overhead header)"),
    (f'histogram_quantile(0.5, sum by (le) (rate(soakd_proxy_added_seconds_bucket{{{SSEL}, stage="first_token"}}[{RI}])))', "measured p50 (first token)"),
], desc="What the proxy reports in its overhead header ([upstream] overhead_header) next to what soakd measured.", options=TS, w=12)
d.add("heatmap", "Added time per chunk", "s", [
    (f'sum by (le) (rate(soakd_proxy_added_seconds_bucket{{{SSEL}, stage="chunk"}}[{RI}]))', "{{le}}"),
], w=12)
proxy = dashboard("soakd-proxy", "soakd proxy", "What the proxy itself adds, holds back, retries and orphans (two-sided soak).", d, True, False, [BURST_ANN])

for name, dash in (("soakd-overview", overview), ("soakd-leak", leak), ("soakd-streaming", streaming), ("soakd-proxy", proxy)):
    with open(f"{OUT}/{name}.json", "w") as f:
        json.dump(dash, f, indent=2, ensure_ascii=False)
        f.write("\n")
print("ok")
