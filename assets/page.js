/* soakd live page and HTML report.
 *
 * Live: polls `series` and `status` (relative URLs) every 5 s and redraws.
 * Report: reads the JSON embedded in #soakd-data ({series, summary}) once; loads nothing.
 * Draws with uPlot (vendored, see assets/vendor/uplot/README.md). Plain JS, no build step.
 *
 * What was drawn is published in `window.soakd.charts` (per chart: point count, points per
 * series, burst bands, the labels of the shaded spans — the run's states idle, drain,
 * cooldown, linger, and each storm occurrence by the storm's name — and the end points of
 * each fitted line) for the browser tests and for anyone poking at the page from the console.
 */
(function () {
  'use strict';

  var REFRESH_MS = 5000;
  var HOUR = 3600;
  var CHART_HEIGHT = 240;
  var MUTED = '#667085';
  var GRID = '#eef0f4';
  var FIT_COLORS = ['#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];
  var OUTCOME_COLORS = {
    ok: '#18794e', cancelled: '#8a94a6', http_4xx: '#d97706', http_429: '#b45309',
    http_5xx: '#c9252d', timeout: '#7c3aed', connect_error: '#db2777',
    stream_truncated: '#0891b2', stream_error_event: '#4f46e5', protocol_error: '#65a30d',
    aborted: '#475467'
  };

  var state = { mode: 'live', view: 'run', charts: {}, updates: 0, updated: null, error: null };
  window.soakd = state;
  var charts = {};
  var last = null;

  /* ---------- formatting ---------- */

  var BYTE_UNITS = [['GiB', 1073741824], ['MiB', 1048576], ['KiB', 1024], ['B', 1]];

  function byteUnit(maxAbs) {
    for (var i = 0; i < BYTE_UNITS.length; i++) {
      if (maxAbs >= BYTE_UNITS[i][1]) return BYTE_UNITS[i];
    }
    return BYTE_UNITS[BYTE_UNITS.length - 1];
  }

  function fmtBytes(v) {
    if (v == null || !isFinite(v)) return '–';
    var u = byteUnit(Math.abs(v));
    return (v / u[1]).toFixed(u[1] === 1 ? 0 : 1) + ' ' + u[0];
  }

  function fmtSecs(v) {
    if (v == null || !isFinite(v)) return '–';
    if (v === 0) return '0';
    if (Math.abs(v) < 0.001) return (v * 1e6).toFixed(0) + ' µs';
    if (Math.abs(v) < 1) return (v * 1e3).toFixed(1) + ' ms';
    return v.toFixed(2) + ' s';
  }

  function fmtNum(v, digits) {
    if (v == null || !isFinite(v)) return '–';
    var d = digits == null ? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2) : digits;
    return v.toFixed(d);
  }

  function fmtSigned(v, fmt) {
    if (v == null || !isFinite(v)) return '–';
    return (v >= 0 ? '+' : '−') + fmt(Math.abs(v));
  }

  function fmtElapsed(secs) {
    var s = Math.max(0, Math.floor(secs || 0));
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    var two = function (n) { return (n < 10 ? '0' : '') + n; };
    return h > 0 ? h + 'h' + two(m) + 'm' + two(r) + 's' : m + 'm' + two(r) + 's';
  }

  function fmtTime(unix) {
    if (!unix) return '–';
    return new Date(unix * 1000).toLocaleString();
  }

  /* Axis tick labels with one unit and enough decimals to tell neighbours apart. */
  function scaledTicks(units) {
    return function (u, ticks) {
      var max = 0;
      for (var i = 0; i < ticks.length; i++) max = Math.max(max, Math.abs(ticks[i]));
      var unit = units(max);
      var step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) / unit[1] : 1;
      var d = step > 0 ? Math.min(3, Math.max(0, -Math.floor(Math.log10(step) + 1e-9))) : 0;
      return ticks.map(function (t) { return (t / unit[1]).toFixed(d) + (unit[0] ? ' ' + unit[0] : ''); });
    };
  }

  var bytesTicks = scaledTicks(byteUnit);
  var secsTicks = scaledTicks(function (max) {
    return max >= 1 ? ['s', 1] : max >= 0.001 ? ['ms', 0.001] : ['µs', 1e-6];
  });
  var plainTicks = scaledTicks(function () { return ['', 1]; });

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function el(id) { return document.getElementById(id); }

  /* ---------- data ---------- */

  /* The block for the chosen view: the whole run, or the last hour from whichever buffer is
   * finer (early in a run the whole-run buffer is finer than the 10 s ring). */
  function pickBlock(series, view) {
    if (view !== 'recent') return series.run;
    if (series.run.step_secs <= series.recent.step_secs) {
      return trimBlock(series.run, series.now - HOUR);
    }
    return series.recent;
  }

  function trimBlock(block, from) {
    var keep = [];
    for (var i = 0; i < block.t.length; i++) if (block.t[i] >= from) keep.push(i);
    var pick = function (a) { return keep.map(function (i) { return a[i]; }); };
    var out = {};
    Object.keys(block).forEach(function (k) {
      var v = block[k];
      if (Array.isArray(v) && k !== 'processes') out[k] = pick(v);
      else out[k] = v;
    });
    out.outcomes = {};
    Object.keys(block.outcomes).forEach(function (k) { out.outcomes[k] = pick(block.outcomes[k]); });
    out.processes = block.processes.map(function (p) {
      return { name: p.name, rss: pick(p.rss), rss_min: pick(p.rss_min), rss_max: pick(p.rss_max),
        fds: pick(p.fds), threads: pick(p.threads) };
    });
    return out;
  }

  /* Burst bands: runs of points with a burst, as [from, to] in Unix seconds. */
  function burstBands(block) {
    var out = [];
    for (var i = 0; i < block.t.length; i++) {
      if (!(block.burst[i] > 0)) continue;
      var a = block.t[i] - block.dt[i] / 2, b = block.t[i] + block.dt[i] / 2;
      if (out.length && a - out[out.length - 1][1] < 1e-6) out[out.length - 1][1] = b;
      else out.push([a, b]);
    }
    return out;
  }

  /* Labelled spans to shade (`series.spans`: the run's states, the storms), as {kind, label,
   * from, to} with an open span ending at the data's end. The load itself is not shaded. A
   * storm's span is red whatever its name. */
  var SPAN_COLORS = {
    'phase:idle': 'rgba(100, 116, 139, 0.14)', 'phase:drain': 'rgba(249, 115, 22, 0.14)',
    'phase:cooldown': 'rgba(14, 165, 233, 0.14)', 'phase:linger': 'rgba(168, 85, 247, 0.14)'
  };
  var KIND_COLORS = { storm: 'rgba(201, 37, 45, 0.13)' };
  var KIND_INK = { storm: '#c9252d' };

  function spanColor(s) {
    return SPAN_COLORS[s.kind + ':' + s.label] || KIND_COLORS[s.kind];
  }

  function shadedSpans(series, block) {
    var end = block.t.length ? block.t[block.t.length - 1] + block.dt[block.dt.length - 1] / 2 : series.now;
    return (series.spans || []).filter(spanColor).map(function (s) {
      return { kind: s.kind, label: s.label, from: s.from, to: s.to == null ? Math.max(end, s.from) : s.to };
    });
  }

  /* x values plus extra lines' end points, each column re-laid on the merged x. Columns get
   * `undefined` at the added x (uPlot draws across it), extra lines only at their ends. */
  function align(x, cols, extras) {
    var xs = x.slice();
    extras.forEach(function (e) { e.pts.forEach(function (p) { xs.push(p[0]); }); });
    xs.sort(function (a, b) { return a - b; });
    var merged = [];
    xs.forEach(function (v) { if (!merged.length || merged[merged.length - 1] !== v) merged.push(v); });
    var index = new Map();
    merged.forEach(function (v, i) { index.set(v, i); });
    var relay = function (values, at) {
      var out = new Array(merged.length);
      for (var i = 0; i < at.length; i++) out[index.get(at[i])] = values[i];
      return out;
    };
    return {
      x: merged,
      cols: cols.map(function (c) { return relay(c, x); }),
      extras: extras.map(function (e) {
        return relay(e.pts.map(function (p) { return p[1]; }), e.pts.map(function (p) { return p[0]; }));
      })
    };
  }

  /* ---------- charts ---------- */

  function bandsPlugin(bands, spans) {
    return {
      hooks: {
        drawClear: [function (u) {
          if (!bands.length && !spans.length) return;
          var ctx = u.ctx;
          var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
          var px = function (v) { return u.valToPos(v, 'x', true); };
          ctx.save();
          spans.forEach(function (s) {
            var x0 = Math.max(left, px(s.from)), x1 = Math.min(right, px(s.to));
            if (!(x1 > x0)) return;
            ctx.fillStyle = spanColor(s);
            ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
            ctx.fillStyle = KIND_INK[s.kind] || MUTED;
            ctx.font = Math.round(10 * (window.devicePixelRatio || 1)) + 'px sans-serif';
            ctx.textBaseline = 'top';
            if (x1 - x0 > 30) ctx.fillText(s.label, x0 + 3, u.bbox.top + 3);
          });
          ctx.fillStyle = 'rgba(245, 158, 11, 0.16)';
          bands.forEach(function (b) {
            var x0 = Math.max(left, px(b[0])), x1 = Math.min(right, px(b[1]));
            if (x1 > x0) ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          });
          ctx.restore();
        }]
      }
    };
  }

  function countPoints(values) {
    var n = 0;
    for (var i = 0; i < values.length; i++) if (values[i] != null && isFinite(values[i])) n++;
    return n;
  }

  function ends(x, values) {
    var first = -1, lastI = -1;
    for (var i = 0; i < values.length; i++) {
      if (values[i] != null && isFinite(values[i])) { if (first < 0) first = i; lastI = i; }
    }
    return first < 0 ? null : [[x[first], values[first]], [x[lastI], values[lastI]]];
  }

  /* spec: {x, series: [{label, values, color, width, dash, fmt, fill, line}], ticks, zero,
   *        bands, spans} */
  function drawChart(id, container, spec) {
    var spans = spec.spans || [];
    var published = {
      points: spec.x.length, series: {}, bands: spec.bands.length, lines: {},
      spans: spans.map(function (s) { return s.label; })
    };
    spec.series.forEach(function (s) {
      published.series[s.label] = countPoints(s.values);
      if (s.line) published.lines[s.label] = ends(spec.x, s.values);
    });
    state.charts[id] = published;
    var width = Math.max(300, container.clientWidth || 600);
    var sig = spec.series.map(function (s) { return s.label; }).join('|');
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var have = charts[id];
    if (have && have.sig === sig && have.container === container) {
      have.bands.length = 0;
      spec.bands.forEach(function (b) { have.bands.push(b); });
      have.spans.length = 0;
      spans.forEach(function (s) { have.spans.push(s); });
      have.u.setData(data);
      return;
    }
    if (have) have.u.destroy();
    container.textContent = '';
    var bands = spec.bands.slice();
    var shaded = spans.slice();
    var opts = {
      width: width,
      height: CHART_HEIGHT,
      scales: {
        x: { time: true },
        y: spec.zero ? { range: function (u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; } } : {}
      },
      axes: [
        { stroke: MUTED, grid: { stroke: GRID }, ticks: { stroke: GRID } },
        { stroke: MUTED, grid: { stroke: GRID }, ticks: { stroke: GRID }, size: 76, values: spec.ticks }
      ],
      series: [{
        label: 'time',
        value: function (u, v) { return v == null ? '' : new Date(v * 1000).toLocaleTimeString(); }
      }].concat(spec.series.map(function (s) {
        return {
          label: s.label,
          stroke: s.color,
          width: s.width || 1.5,
          dash: s.dash,
          fill: s.fill,
          points: { show: !!s.line, size: 5 },
          value: function (u, v) { return v == null ? '' : s.fmt(v); }
        };
      })),
      cursor: { drag: { x: true, y: false } },
      plugins: [bandsPlugin(bands, shaded)]
    };
    var u = new uPlot(opts, data, container);
    charts[id] = { u: u, sig: sig, bands: bands, spans: shaded, container: container };
  }

  function emptyChart(id, container, text) {
    if (charts[id]) { charts[id].u.destroy(); delete charts[id]; }
    state.charts[id] = { points: 0, series: {}, bands: 0, lines: {}, spans: [] };
    container.innerHTML = '<div class="empty">' + esc(text) + '</div>';
  }

  function rateChart(block, bands, spans) {
    drawChart('rate', el('chart-rate'), {
      x: block.t, bands: bands, spans: spans, zero: true, ticks: plainTicks,
      series: [
        { label: 'planned', values: block.planned_rps, color: '#8a94a6', dash: [6, 4], fmt: fmtNum },
        { label: 'achieved', values: block.achieved_rps, color: '#2f6fde', width: 2, fmt: fmtNum }
      ]
    });
  }

  function latencyChart(block, bands, spans) {
    drawChart('latency', el('chart-latency'), {
      x: block.t, bands: bands, spans: spans, zero: true, ticks: secsTicks,
      series: [
        { label: 'latency p50', values: block.latency_p50, color: '#2f6fde', fmt: fmtSecs },
        { label: 'latency p99', values: block.latency_p99, color: '#2f6fde', dash: [6, 4], fmt: fmtSecs },
        { label: 'TTFT p50', values: block.ttft_p50, color: '#18794e', fmt: fmtSecs },
        { label: 'TTFT p99', values: block.ttft_p99, color: '#18794e', dash: [6, 4], fmt: fmtSecs }
      ]
    });
  }

  function outcomesChart(block, bands, spans) {
    var names = Object.keys(block.outcomes);
    if (!names.length) return emptyChart('outcomes', el('chart-outcomes'), 'No finished requests yet');
    names.sort(function (a, b) { return a === 'ok' ? -1 : b === 'ok' ? 1 : a < b ? -1 : 1; });
    drawChart('outcomes', el('chart-outcomes'), {
      x: block.t, bands: bands, spans: spans, zero: true, ticks: plainTicks,
      series: names.map(function (n) {
        return { label: n, values: block.outcomes[n], color: OUTCOME_COLORS[n] || '#444', fmt: fmtNum };
      })
    });
  }

  function streamsChart(block, bands, spans) {
    drawChart('streams', el('chart-streams'), {
      x: block.t, bands: bands, spans: spans, zero: true, ticks: plainTicks,
      series: [
        { label: 'open (mean)', values: block.streams_active, color: '#0891b2', width: 2, fmt: fmtNum },
        { label: 'open (max)', values: block.streams_active_max, color: '#0891b2', dash: [4, 4], width: 1, fmt: fmtNum }
      ]
    });
  }

  /* The process cards, made once per process name. */
  function processCards(names) {
    var box = el('processes');
    var want = names.join('|');
    if (box.getAttribute('data-names') === want) return;
    Object.keys(charts).forEach(function (id) {
      if (id.indexOf('rss:') === 0 || id.indexOf('res:') === 0) { charts[id].u.destroy(); delete charts[id]; }
    });
    box.setAttribute('data-names', want);
    box.innerHTML = names.map(function (n, i) {
      return '<div class="card"><h2>' + esc(n) + ' · RSS <small>mean, min–max; dashed: fitted line per window</small></h2>' +
        '<div class="chart" id="chart-rss-' + i + '"></div></div>' +
        '<div class="card"><h2>' + esc(n) + ' · open fds and threads</h2>' +
        '<div class="chart" id="chart-res-' + i + '"></div></div>';
    }).join('');
  }

  function clip(fit, xmin, xmax) {
    var a = Math.max(fit.from, xmin), b = Math.min(fit.to, xmax);
    if (!(b > a)) return null;
    var at = function (t) { return fit.from_value + fit.slope_per_sec * (t - fit.from); };
    return [[a, at(a)], [b, at(b)]];
  }

  function processCharts(block, bands, spans, infos) {
    var order = block.processes.slice().sort(function (a, b) {
      return (a.name === 'soakd') - (b.name === 'soakd');
    });
    processCards(order.map(function (p) { return p.name; }));
    var xmin = block.t.length ? block.t[0] - block.dt[0] / 2 : 0;
    var xmax = block.t.length ? block.t[block.t.length - 1] + block.dt[block.dt.length - 1] / 2 : 0;
    order.forEach(function (p, i) {
      var info = infos.filter(function (x) { return x.name === p.name; })[0];
      var fits = (info ? info.fits : []).filter(function (f) { return f.resource === 'rss'; });
      var extras = [];
      fits.forEach(function (f) {
        var pts = clip(f, xmin, xmax);
        if (pts) extras.push({ fit: f, pts: pts });
      });
      var a = align(block.t, [p.rss, p.rss_min, p.rss_max], extras);
      var series = [
        { label: 'rss', values: a.cols[0], color: '#2f6fde', width: 2, fmt: fmtBytes },
        { label: 'rss min', values: a.cols[1], color: 'rgba(47,111,222,0.35)', width: 1, fmt: fmtBytes },
        { label: 'rss max', values: a.cols[2], color: 'rgba(47,111,222,0.35)', width: 1, fmt: fmtBytes }
      ];
      extras.forEach(function (e, k) {
        var f = e.fit;
        series.push({
          label: 'fit ' + f.window + ' (' + fmtSigned(f.slope_per_hour, fmtBytes) + '/h, r² ' + fmtNum(f.r2, 2) + ')',
          values: a.extras[k], color: FIT_COLORS[k % FIT_COLORS.length], dash: [8, 5], width: 2,
          fmt: fmtBytes, line: true
        });
      });
      drawChart('rss:' + p.name, el('chart-rss-' + i), {
        x: a.x, bands: bands, spans: spans, zero: false, ticks: bytesTicks, series: series
      });
      drawChart('res:' + p.name, el('chart-res-' + i), {
        x: block.t, bands: bands, spans: spans, zero: true, ticks: plainTicks,
        series: [
          { label: 'open fds', values: p.fds, color: '#7c3aed', width: 2, fmt: fmtNum },
          { label: 'threads', values: p.threads, color: '#d97706', width: 2, fmt: fmtNum }
        ]
      });
    });
  }

  /* ---------- tables and text ---------- */

  function verdictCell(v, why) {
    var reason = why ? '<div class="why">' + esc(why) + '</div>' : '';
    return '<td class="v-' + esc(v) + '"' + (why ? ' title="' + esc(why) + '"' : '') + '>' +
      esc(v) + reason + '</td>';
  }

  function table(id, head, rows, empty) {
    var t = el(id);
    if (!rows.length) {
      t.innerHTML = '<tr><td>' + esc(empty) + '</td></tr>';
      return;
    }
    t.innerHTML = '<thead><tr>' + head.map(function (h) { return '<th>' + esc(h) + '</th>'; }).join('') +
      '</tr></thead><tbody>' + rows.map(function (r) { return '<tr>' + r + '</tr>'; }).join('') + '</tbody>';
  }

  function verdictTable(infos) {
    table('table-verdicts', ['process', 'up', 'rss', 'fds', 'threads', 'baseline rss', 'peak rss', 'retained after burst'],
      infos.map(function (p) {
        return '<td>' + esc(p.name) + '</td><td>' + (p.up ? 'up' : 'DOWN') + '</td>' +
          ['rss', 'fds', 'threads'].map(function (r) {
            return verdictCell(p.verdict[r], p.reason && p.reason[r]);
          }).join('') +
          '<td class="num">' + fmtBytes(p.baseline_rss_bytes) + '</td><td class="num">' + fmtBytes(p.peak_rss_bytes) +
          '</td><td class="num">' + (p.retained_after_burst_bytes == null ? '–' : fmtSigned(p.retained_after_burst_bytes, fmtBytes)) + '</td>';
      }), 'No monitored processes');
  }

  function fitsTable(infos) {
    var rows = [];
    infos.forEach(function (p) {
      p.fits.forEach(function (f) {
        var fmt = f.resource === 'rss' ? fmtBytes : function (v) { return fmtNum(v, 1); };
        rows.push('<td>' + esc(p.name) + '</td><td>' + esc(f.window) + '</td><td>' + esc(f.resource) + '</td>' +
          '<td class="num">' + fmtSigned(f.slope_per_hour, fmt) + '/h</td>' +
          '<td class="num">' + fmt(f.intercept) + '</td>' +
          '<td class="num">' + fmtNum(f.r2, 3) + '</td><td class="num">' + f.points + '</td>' +
          '<td>' + esc(new Date(f.from * 1000).toLocaleTimeString()) + ' – ' +
          esc(new Date(f.to * 1000).toLocaleTimeString()) + '</td>');
      });
    });
    table('table-fits', ['process', 'window', 'resource', 'slope', 'intercept', 'r²', 'points', 'fitted span'],
      rows, 'No window holds enough data for a fit yet');
  }

  function pctCell(v) {
    return '<td class="num">' + (v == null ? '–' : (v * 100).toFixed(1) + ' %') + '</td>';
  }

  /* One row per storm occurrence (status.proxy.storms). */
  function stormTable(status) {
    var list = (status && status.proxy && status.proxy.storms) || [];
    table('table-storms', ['storm', 'from', 'to', 'requests', 'attempts', 'amplification', 'faults',
      'client errors', 'masked', 'passed', 'ghosts', 'Retry-After ok / violated', 'recovery'],
      list.map(function (o) {
        var rec = o.recovered === true ? fmtSecs(o.recovery_secs)
          : o.recovered === false ? 'never' : '–';
        return '<td>' + esc(o.name) + '</td><td class="num">' + fmtNum(o.start_secs, 1) + ' s</td>' +
          '<td class="num">' + fmtNum(o.end_secs, 1) + ' s</td><td class="num">' + o.client_requests +
          '</td><td class="num">' + o.upstream_requests + '</td><td class="num">' +
          (o.amplification == null ? '–' : fmtNum(o.amplification, 2)) + '</td><td class="num">' +
          o.upstream_faults + '</td><td class="num">' + o.client_errors + '</td>' +
          pctCell(o.masked_ratio) + pctCell(o.passed_ratio) + '<td class="num">' + o.ghost_attempts +
          '</td><td class="num">' + o.retry_after_honoured + ' / ' + o.retry_after_violations +
          '</td><td class="num' + (o.recovered === false ? ' v-fail' : '') + '">' + esc(rec) + '</td>';
      }), 'No storms configured (two-sided soak: [[upstream.storms]])');
  }

  /* One row per process and resource: idle, peak, plateau (level and time after the start of
   * the load, or "none" with the growth over the last window), recovered, released share. */
  function arcTable(infos) {
    var rows = [];
    infos.forEach(function (p) {
      var a = p.arc;
      if (!a || (!a.plateau && !a.idle)) return;
      [['rss', 'memory (' + a.memory + ')', fmtBytes], ['fds', 'fds', fmtNum], ['threads', 'threads', fmtNum]].forEach(function (r) {
        var key = r[0], fmt = r[2];
        var v = function (x) { return x && x[key] != null ? fmt(x[key]) : '–'; };
        var pl = a.plateau ? a.plateau[key] : null, plateau = '–';
        if (pl && pl.reached === true) plateau = fmt(pl.level) + ' after ' + fmtElapsed(pl.seconds);
        else if (pl && pl.reached === false) {
          plateau = 'none' + (pl.growth_per_hour != null ? ' (' + fmtSigned(pl.growth_per_hour, fmt) + '/h, ' + pl.window + ')' : '');
        } else if (pl) plateau = 'unknown';
        var share = a.released_share[key];
        rows.push('<td>' + esc(p.name) + '</td><td>' + esc(r[1]) + '</td><td class="num">' + v(a.idle) +
          '</td><td class="num">' + v(a.peak) + '</td><td class="num">' + esc(plateau) + '</td><td class="num">' +
          v(a.recovered) + '</td><td class="num">' + (share == null ? '–' : (share * 100).toFixed(1) + ' %') + '</td>');
      });
    });
    table('table-arc', ['process', 'resource', 'idle', 'peak', 'plateau', 'recovered', 'released'],
      rows, 'No arc yet: the load has not started');
  }

  function thresholdValue(v, unit) {
    if (v == null) return '–';
    if (unit === 'seconds') return fmtSecs(v);
    if (unit === 'bytes_per_hour') return fmtBytes(v) + '/h';
    if (unit === 'ratio') return (v * 100).toFixed(2) + ' %';
    if (unit === 'factor') return '×' + v.toFixed(2);
    return fmtNum(v, 0);
  }

  function thresholdTable(status) {
    var list = (status && status.thresholds) || [];
    table('table-thresholds', ['threshold', 'status', 'observed', 'limit', ''],
      list.map(function (t) {
        return '<td>' + esc(t.name) + '</td>' + verdictCell(t.status) +
          '<td class="num">' + thresholdValue(t.observed, t.unit) + '</td><td class="num">' +
          thresholdValue(t.limit, t.unit) + '</td><td>' + esc(t.message) + '</td>';
      }), 'No thresholds configured');
  }

  function creepTable(status) {
    var c = status && status.creep;
    if (!c) {
      table('table-creep', [], [], 'Creep is not measured (creep_window = "off")');
      return;
    }
    var verdicts = {};
    (status.thresholds || []).forEach(function (t) { verdicts[t.name] = t.status; });
    var span = function (s) { return s ? fmtElapsed(s.from_secs) + '–' + fmtElapsed(s.to_secs) : 'from ' + fmtElapsed(c.comparable_from_secs); };
    var cell = function (w) { return w ? (w.count > 0 ? fmtSecs(w.p99) : '–') + ' (n=' + w.count + ')' : '–'; };
    table('table-creep', ['scenario', 'measure', 'first ' + span(c.first), 'last ' + span(c.last), 'ratio', 'verdict'],
      c.measures.map(function (m) {
        var v = verdicts['creep:' + m.scenario + ':' + m.measure] || 'measured';
        return '<td>' + esc(m.scenario) + '</td><td>' + esc(m.measure) + '</td>' +
          '<td class="num">' + cell(m.first) + '</td><td class="num">' + cell(m.last) + '</td>' +
          '<td class="num">' + (m.ratio == null ? '–' : '×' + m.ratio.toFixed(2)) + '</td>' + verdictCell(v);
      }), 'No scenario has a creep measure');
  }

  function tiles(status, report) {
    if (!status) return;
    var errors = 0;
    Object.keys(status.outcomes || {}).forEach(function (k) {
      // As the summary counts errors: not ok, cancelled (the workload's own) or aborted.
      if (k !== 'ok' && k !== 'cancelled' && k !== 'aborted') errors += status.outcomes[k];
    });
    var items = [
      ['phase', report || status.state === 'load' || !status.state ? status.phase : status.state],
      ['elapsed', fmtElapsed(status.elapsed_seconds)],
      [report ? 'achieved rate (avg)' : 'achieved rate (10 s)',
        fmtNum(report ? status.achieved_rate_avg : status.achieved_rate) + ' /s'],
      [report ? 'target rate (avg)' : 'planned rate (10 s)',
        fmtNum(report ? status.target_rate_avg : status.planned_rate) + ' /s'],
      ['requests sent', String(status.requests_sent)],
      ['errors', String(errors)],
      ['latency p99', status.latency.duration.count > 0 ? fmtSecs(status.latency.duration.p99) : '–'],
      ['TTFT p99', status.latency.ttft.count > 0 ? fmtSecs(status.latency.ttft.p99) : '–'],
      report ? ['dropped', String(Object.keys(status.dropped || {}).reduce(function (n, k) {
        return n + status.dropped[k];
      }, 0))] : ['streams open', String(status.streams_active)]
    ];
    el('tiles').innerHTML = items.map(function (i) {
      return '<div class="tile"><div class="k">' + esc(i[0]) + '</div><div class="v">' + esc(i[1]) + '</div></div>';
    }).join('');
    el('headline').textContent = 'run ' + status.run_id + ' · shard ' + status.shard + '/' + status.shards +
      ' · target ' + status.target;
  }

  function kv(pairs) {
    return '<table>' + pairs.map(function (p) {
      return '<tr><th>' + esc(p[0]) + '</th><td>' + esc(p[1]) + '</td></tr>';
    }).join('') + '</table>';
  }

  function counts(m) {
    var keys = Object.keys(m || {});
    return keys.length ? keys.map(function (k) { return k + '=' + m[k]; }).join(' ') : 'none';
  }

  function summary(status, report) {
    if (!status) return;
    var pairs = [];
    if (report) {
      pairs.push(['verdict', status.verdict + ' (exit ' + status.exit_code + ')']);
      pairs.push(['sending time', fmtElapsed(status.sending_seconds)]);
      pairs.push(['rates (avg)', 'target ' + fmtNum(status.target_rate_avg) + ' /s, achieved ' + fmtNum(status.achieved_rate_avg) + ' /s']);
    }
    pairs.push(['requests', 'sent ' + status.requests_sent + ', finished ' + status.requests_finished + ', in flight ' + status.in_flight]);
    pairs.push(['outcomes', counts(status.outcomes)]);
    pairs.push(['dropped', counts(status.dropped)]);
    pairs.push(['streams', counts(status.streams)]);
    pairs.push(['output tokens', String(status.output_tokens)]);
    var lat = status.latency;
    var rows = [['request duration', lat.duration], ['TTFT', lat.ttft], ['chunk gap', lat.chunk_gap], ['schedule lag', lat.schedule_lag]];
    var latTable = '<table><thead><tr><th>whole run</th><th>n</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead><tbody>' +
      rows.map(function (r) {
        var p = r[1];
        return '<tr><td>' + esc(r[0]) + '</td><td class="num">' + p.count + '</td>' +
          [p.p50, p.p90, p.p99, p.p999, p.max].map(function (v) {
            return '<td class="num">' + (p.count > 0 ? fmtSecs(v) : '–') + '</td>';
          }).join('') + '</tr>';
      }).join('') + '</tbody></table>';
    el('summary').innerHTML = kv(pairs) + '<br>' + latTable;
  }

  /* The two-sided soak (`status.proxy`, only while [upstream] is on): give-ups by fate, tokens
   * generated after a give-up, orphans, errors by origin and the added time per stage. What
   * it shows is published in `window.soakd.proxy`. */
  var FATES = ['propagated', 'upstream_finished', 'not_propagated', 'orphaned', 'unknown'];

  function proxyCard(status) {
    var card = el('card-proxy');
    var p = status && status.proxy;
    card.hidden = !p;
    state.proxy = null;
    if (!p) return;
    var g = p.give_ups || {};
    var total = FATES.reduce(function (n, f) { return n + (g[f] || 0); }, 0);
    var sum = function (k, tagged) {
      return (p.scenarios || []).reduce(function (n, s) {
        return tagged && s.name === 'untagged' ? n : n + (s[k] || 0);
      }, 0);
    };
    var reasons = Object.keys(g.unknown_reasons || {}).map(function (k) {
      return k.replace(/_/g, ' ') + ' ' + g.unknown_reasons[k];
    }).join(', ');
    var fateRows = FATES.map(function (f) {
      var n = g[f] || 0;
      var note = f === 'unknown' && reasons ? ' (' + reasons + ')' : '';
      return '<tr><td>' + esc(f.replace(/_/g, ' ') + note) + '</td><td class="num">' + n +
        '</td><td class="num">' + (total > 0 ? fmtNum(100 * n / total, 1) + ' %' : '–') + '</td></tr>';
    }).join('');
    var fates = '<table id="table-fates"><thead><tr><th>give-ups by fate</th><th>n</th><th>share</th></tr></thead><tbody>' +
      fateRows + '</tbody></table>';
    var e = p.errors || {};
    var pairs = [
      ['give-ups', String(total)],
      ['tokens generated after give-up', String(g.wasted_output_tokens || 0)],
      ['orphans', 'open ' + sum('orphans_now') + ', total ' + sum('orphans_total')],
      ['errors by origin', 'upstream ' + (e.upstream || 0) + ', proxy ' + (e.proxy || 0) +
        (e.never_reached ? ' (never reached the upstream ' + e.never_reached + ')' : '')],
      ['upstream requests', sum('upstream_requests') + ' (joined ' + sum('joined') + ', retries ' + sum('retries') + ')']
    ];
    if (p.sent > 0 && sum('upstream_requests', true) === 0) {
      pairs.push(['', 'the proxy never reached the upstream: check its provider address']);
    }
    var added = p.added || {};
    var stages = [['added: request', added.request], ['added: first token', added.first_token],
      ['added: chunk', added.chunk], ['added: response', added.response],
      ['cancel propagation', p.cancel_propagation], ['give-up run-on', p.run_on]]
      .filter(function (r) { return r[1] && r[1].count > 0; });
    var stageTable = stages.length ? '<table><thead><tr><th>two-sided</th><th>n</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr></thead><tbody>' +
      stages.map(function (r) {
        var q = r[1];
        return '<tr><td>' + esc(r[0]) + '</td><td class="num">' + q.count + '</td>' +
          [q.p50, q.p90, q.p99, q.max].map(function (v) { return '<td class="num">' + fmtSecs(v) + '</td>'; }).join('') + '</tr>';
      }).join('') + '</tbody></table>' : '';
    el('proxy').innerHTML = kv(pairs) + '<br>' + fates + (stageTable ? '<br>' + stageTable : '');
    state.proxy = { give_ups: total, wasted_output_tokens: g.wasted_output_tokens || 0, stages: stages.length };
    FATES.forEach(function (f) { state.proxy[f] = g[f] || 0; });
  }

  /* ---------- render ---------- */

  function render() {
    if (!last) return;
    var series = last.series, status = last.status, report = state.mode === 'report';
    var block = pickBlock(series, state.view);
    var bands = burstBands(block);
    var spans = shadedSpans(series, block);
    rateChart(block, bands, spans);
    latencyChart(block, bands, spans);
    outcomesChart(block, bands, spans);
    streamsChart(block, bands, spans);
    processCharts(block, bands, spans, series.processes);
    verdictTable(series.processes);
    fitsTable(series.processes);
    arcTable(series.processes);
    thresholdTable(status);
    stormTable(status);
    creepTable(status);
    tiles(status, report);
    summary(status, report);
    proxyCard(status);
    var v = el('verdict');
    if (report && status) {
      v.textContent = status.verdict;
      v.className = 'badge ' + (status.verdict === 'pass' ? 'pass' : 'fail');
    }
    el('footer').textContent = (report ? 'Report written at the end of the run; data up to ' : 'Live; data up to ') +
      fmtTime(series.now) + ' · whole run at ' + series.run.step_secs + ' s per point, last hour at ' +
      series.recent.step_secs + ' s per point · soakd page, charts by uPlot';
    state.updates += 1;
    state.updated = series.now;
  }

  function notice(text) {
    var n = el('notice');
    n.hidden = !text;
    n.textContent = text || '';
  }

  function fetchJson(url) {
    return fetch(url, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
      return r.json();
    });
  }

  function refresh() {
    Promise.all([fetchJson('series'), fetchJson('status')]).then(function (got) {
      last = { series: got[0], status: got[1] };
      state.error = null;
      notice('');
      render();
    }).catch(function (e) {
      state.error = String(e);
      notice('soakd is not answering (' + e.message + '); showing the last data received.');
    }).then(function () {
      setTimeout(refresh, REFRESH_MS);
    });
  }

  function setView(view) {
    state.view = view;
    Array.prototype.forEach.call(document.querySelectorAll('#views button'), function (b) {
      b.className = b.getAttribute('data-view') === view ? 'on' : '';
    });
    render();
  }

  function resize() {
    Object.keys(charts).forEach(function (id) {
      var c = charts[id];
      c.u.setSize({ width: Math.max(300, c.container.clientWidth || 600), height: CHART_HEIGHT });
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll('#views button'), function (b) {
      b.addEventListener('click', function () { setView(b.getAttribute('data-view')); });
    });
    var resizing = null;
    window.addEventListener('resize', function () {
      clearTimeout(resizing);
      resizing = setTimeout(resize, 100);
    });
    var embedded = JSON.parse(el('soakd-data').textContent);
    if (embedded) {
      state.mode = 'report';
      el('mode').textContent = 'report';
      document.title = 'soakd report · ' + (embedded.summary ? embedded.summary.run_id : '');
      last = { series: embedded.series, status: embedded.summary };
      render();
    } else {
      el('mode').textContent = 'live';
      el('mode').className = 'badge live';
      refresh();
    }
  }

  start();
}());
