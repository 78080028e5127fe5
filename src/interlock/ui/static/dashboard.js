/* Interlock dashboard: draws chart specs with uPlot and keeps each page live.
 *
 * Every page is rendered by the server. This script (1) draws the charts described by the
 * <script type="application/json" data-chart-spec="id"> blocks into <div data-chart="id">, and
 * (2) every data-refresh seconds fetches the page's live region again (header x-interlock-fragment: 1),
 * swaps it in, and moves the existing charts into the new markup with fresh data, so nothing flickers.
 */
(function () {
  "use strict";

  var charts = new Map();
  var FRAGMENT_HEADER = "x-interlock-fragment";

  function formatValue(value, unit) {
    if (value === null || value === undefined || isNaN(value)) return "–";
    if (unit === "ms") {
      if (value >= 1000) return (value / 1000).toFixed(2) + " s";
      return value.toFixed(value < 10 ? 1 : 0) + " ms";
    }
    if (unit === "$") {
      if (value === 0) return "$0";
      if (Math.abs(value) < 0.01) return "$" + value.toPrecision(2);
      return "$" + value.toFixed(2);
    }
    if (unit === "/s") return value.toFixed(value < 10 ? 2 : 1) + "/s";
    return String(Math.round(value * 100) / 100);
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var DAY_S = 86400;

  function day(d) { return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate(); }

  // Tick label formats from coarse to fine: 2026, Dec 2026, Dec 6, 14:05, 14:05:20, 14:05:20.5 …
  var TICK_FORMATS = [
    function (d) { return String(d.getUTCFullYear()); },
    function (d) { return MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear(); },
    day,
    function (d) { var hm = d.toISOString().slice(11, 16); return hm === "00:00" ? day(d) : hm; },
    function (d) { return d.toISOString().slice(11, 19); },
    function (d) { return d.toISOString().slice(11, 21); },
    function (d) { return d.toISOString().slice(11, 22); },
    function (d) { return d.toISOString().slice(11, 23); },
  ];

  // The coarsest format that can tell ticks ``incr`` seconds apart.
  function tickLevel(incr) {
    if (incr >= 365 * DAY_S) return 0;
    if (incr >= 28 * DAY_S) return 1;
    if (incr >= DAY_S) return 2;
    if (incr >= 60) return 3;
    if (incr >= 1) return 4;
    if (incr >= 0.1) return 5;
    return incr >= 0.01 ? 6 : 7;
  }

  // Axis labels in UTC, as precise as the tick spacing needs and never two alike: when rounding
  // would make neighbours read the same (ticks at 14:05:00 and 14:05:30 as "14:05"), the next
  // finer format is used.
  function timeTicks(splits, incr) {
    var labels = [];
    for (var level = tickLevel(incr); level < TICK_FORMATS.length; level++) {
      labels = splits.map(function (s) { return TICK_FORMATS[level](new Date(s * 1000)); });
      if (new Set(labels).size === labels.length) break;
    }
    return labels;
  }

  function timeLegend(spec) {
    var span = spec.x.length ? spec.x[spec.x.length - 1] - spec.x[0] : 0;
    return function (u, seconds) {
      if (seconds === null || seconds === undefined) return "–";
      var d = new Date(seconds * 1000);
      var time = d.toISOString().slice(11, spec.kind === "scatter" ? 23 : 19);
      return span >= 86400 ? day(d) + " " + time.slice(0, 5) : time;
    };
  }

  function withAlpha(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16 & 255) + "," + (n >> 8 & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function readSpec(root, id) {
    var el = root.querySelector('script[data-chart-spec="' + id + '"]');
    return el ? JSON.parse(el.textContent) : null;
  }

  function dataOf(spec) {
    return [spec.x].concat(spec.series.map(function (s) { return s.values; }));
  }

  // Values with no neighbour to draw a line to: a bucket alone between empty ones would leave no
  // trace at all, so it is drawn as a dot.
  function isolated(u, seriesIdx) {
    var values = u.data[seriesIdx];
    var found = [];
    for (var i = 0; i < values.length; i++) {
      if (values[i] === null || values[i] === undefined) continue;
      var before = i > 0 ? values[i - 1] : null;
      var after = i < values.length - 1 ? values[i + 1] : null;
      if ((before === null || before === undefined) && (after === null || after === undefined)) found.push(i);
    }
    return found;
  }

  function seriesOptions(spec) {
    return spec.series.map(function (s) {
      var opts = {
        label: s.label,
        stroke: s.color,
        width: 2,
        value: function (u, v) { return formatValue(v, spec.unit); },
        points: { show: false, filter: isolated, size: 7, width: 1, fill: s.color, stroke: s.color },
        spanGaps: false,
      };
      if (spec.kind === "area") opts.fill = withAlpha(s.color, 0.12);
      if (spec.kind === "bars") {
        opts.fill = withAlpha(s.color, 0.75);
        opts.width = 0;
        opts.paths = uPlot.paths.bars({ size: [0.72, 60], gap: 1 });
        opts.points = { show: false };
      }
      if (spec.kind === "scatter") {
        opts.paths = function () { return null; };
        opts.points = { show: true, size: 6, width: 1, fill: withAlpha(s.color, 0.7), stroke: s.color };
      }
      return opts;
    });
  }

  function yRange(u, min, max) {
    var top = max > 0 ? max * 1.15 : 1;
    return [0, top];
  }

  // The x axis covers the data; bars get half a step more on each side so the outer bars show
  // whole, and a lone point gets a window around it instead of a span of zero (which would leave
  // the axis to guess, years wide).
  function xRange(kind) {
    return function (u, min, max) {
      var x = u.data[0];
      if (!x.length) return [min, max];
      var first = x[0], last = x[x.length - 1];
      var step = x.length > 1 ? x[1] - x[0] : 0;
      if (first === last) return [first - 30, last + 30];
      if (kind === "bars") return [first - step / 2, last + step / 2];
      return [first, last];
    };
  }

  function build(el, spec) {
    var width = Math.max(200, el.clientWidth || el.parentElement.clientWidth || 600);
    var axisStyle = { stroke: "#64748b", grid: { stroke: "#eef2f7", width: 1 }, ticks: { stroke: "#e2e8f0", width: 1 },
      font: "11px system-ui, sans-serif" };
    var opts = {
      width: width,
      height: spec.height || 200,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true, range: xRange(spec.kind) }, y: { range: yRange } },
      padding: [12, 24, 0, 0],
      axes: [
        Object.assign({}, axisStyle, { space: 80, values: function (u, splits, axis, space, incr) {
          var labels = timeTicks(splits, incr);
          var host = u.root.parentElement;  // what the tests read: the labels as drawn
          if (host) host.dataset.xTicks = labels.join("|");
          return labels;
        } }),
        Object.assign({}, axisStyle, { size: 64, values: function (u, splits) {
          return splits.map(function (v) { return formatValue(v, spec.unit); });
        } }),
      ],
      series: [{ label: "UTC", value: timeLegend(spec) }].concat(seriesOptions(spec)),
      legend: { live: true },
      cursor: { points: { size: 7 }, drag: { x: false, y: false } },
    };
    el.innerHTML = "";
    var plot = new uPlot(opts, dataOf(spec), el);
    mark(el, spec);
    return { plot: plot, spec: spec };
  }

  function mark(el, spec) {
    el.dataset.points = String(spec.points);
    el.dataset.rendered = "1";
    var empty = el.querySelector(".empty");
    if (spec.points === 0 && !empty) {
      empty = document.createElement("div");
      empty.className = "empty";
      empty.textContent = "No data in this window yet";
      el.appendChild(empty);
    } else if (spec.points > 0 && empty) {
      empty.remove();
    }
  }

  function sameShape(a, b) {
    if (a.kind !== b.kind || a.unit !== b.unit || a.series.length !== b.series.length) return false;
    for (var i = 0; i < a.series.length; i++) {
      if (a.series[i].label !== b.series[i].label) return false;
    }
    return true;
  }

  function drawAll(root) {
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var id = el.dataset.chart;
      var spec = readSpec(root, id);
      if (!spec || typeof uPlot === "undefined") return;
      var current = charts.get(id);
      if (current && sameShape(current.spec, spec)) {
        el.innerHTML = "";
        el.appendChild(current.plot.root);
        current.plot.setData(dataOf(spec));
        current.spec = spec;
        mark(el, spec);
        return;
      }
      if (current) current.plot.destroy();
      charts.set(id, build(el, spec));
    });
  }

  function setStatus(state, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.classList.remove("stale", "paused");
    if (state !== "ok") el.classList.add(state);
    el.querySelector(".live-text").textContent = text;
  }

  function clock(date) {
    return date.toISOString().slice(11, 19) + " UTC";
  }

  function busy(live) {
    var active = document.activeElement;
    return active && live.contains(active) && /^(SELECT|INPUT|TEXTAREA)$/.test(active.tagName);
  }

  async function refresh(live) {
    if (document.hidden) { setStatus("paused", "Paused"); return; }
    if (busy(live)) return;
    var response;
    try {
      response = await fetch(location.pathname + location.search, {
        headers: { [FRAGMENT_HEADER]: "1" }, credentials: "same-origin", cache: "no-store",
      });
    } catch (err) {
      setStatus("stale", "Offline, retrying");
      return;
    }
    if (response.status === 401) { location.reload(); return; }
    if (!response.ok) { setStatus("stale", "Update failed (" + response.status + ")"); return; }
    var template = document.createElement("template");
    template.innerHTML = await response.text();
    // Detach the live charts before their old containers go, then swap the region in one step.
    charts.forEach(function (c) { if (c.plot.root.parentNode) c.plot.root.remove(); });
    live.replaceChildren(template.content);
    drawAll(live);
    live.dataset.updates = String(parseInt(live.dataset.updates || "0", 10) + 1);
    setStatus("ok", "Live · " + clock(new Date()));
  }

  function start() {
    drawAll(document);
    var live = document.getElementById("live");
    var every = live ? parseFloat(live.dataset.refresh || "0") : 0;
    if (live && every > 0) {
      setStatus("ok", "Live · " + clock(new Date()));
      var timer = setInterval(function () { refresh(live); }, every * 1000);
      document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(live); });
      window.addEventListener("pagehide", function () { clearInterval(timer); });
    } else if (document.getElementById("live-status")) {
      setStatus("paused", "Snapshot");
    }
    var notice = document.getElementById("notice");
    if (notice) setTimeout(function () { notice.remove(); }, 8000);
  }

  window.addEventListener("resize", function () {
    charts.forEach(function (c) {
      var el = c.plot.root.parentElement;
      if (el) c.plot.setSize({ width: Math.max(200, el.clientWidth), height: c.spec.height || 200 });
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) el.form.submit();
  });

  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a, button, form")) location.href = row.dataset.href;
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
