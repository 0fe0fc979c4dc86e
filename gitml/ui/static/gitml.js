// gitml ui: the charts (uPlot), drawn from the JSON endpoints. Everything else is server-rendered.
"use strict";
(function () {
  const palette = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#6e7781", "#9a6700", "#0550ae"];
  const cache = new Map();

  function history(run, key) {
    const url = "/api/runs/" + encodeURIComponent(run) + "/history?key=" + encodeURIComponent(key);
    if (!cache.has(url)) {
      cache.set(url, fetch(url).then(r => r.ok ? r.json() : r.json().then(e => Promise.reject(new Error(e.error)))));
    }
    return cache.get(url);
  }

  function num(v) { return typeof v === "number" ? v : (v === "inf" ? Infinity : v === "-inf" ? -Infinity : NaN); }

  function smooth(values, weight) {  // exponential moving average, bias-corrected as TensorBoard does
    if (!weight) return values;
    let last = 0, n = 0;
    return values.map(v => {
      if (!Number.isFinite(v)) return v;
      last = last * weight + (1 - weight) * v; n += 1;
      return last / (1 - Math.pow(weight, n));
    });
  }

  function settings() {
    const x = document.getElementById("x-axis"), log = document.getElementById("log-scale"),
      sm = document.getElementById("smoothing");
    return { time: x && x.value === "time", log: !!(log && log.checked), smoothing: sm ? parseFloat(sm.value) : 0 };
  }

  // Series sharing one x axis: uPlot wants one sorted x array and one y array per series (null where absent).
  function align(series, time) {
    const xs = new Set();
    series.forEach(s => s.x.forEach(v => xs.add(v)));
    const x = Array.from(xs).sort((a, b) => a - b);
    const at = new Map(x.map((v, i) => [v, i]));
    const ys = series.map(s => {
      const y = new Array(x.length).fill(null);
      s.x.forEach((v, i) => { y[at.get(v)] = s.y[i]; });
      return y;
    });
    return [time ? x.map(v => v / 1000) : x, ...ys];
  }

  function draw(figure, series, opts) {
    figure.querySelectorAll(".uplot, .chart-error").forEach(el => el.remove());
    const s = settings();
    const data = align(series.map(d => ({ x: s.time ? d.times : d.steps, y: smooth(d.values.map(num), s.smoothing) })), s.time);
    const width = Math.max(320, Math.min(figure.parentElement.clientWidth - 20, opts.wide ? 1100 : 520));
    const log = s.log && data.slice(1).every(ys => ys.every(v => v === null || v > 0));
    new uPlot({
      width, height: 240,
      scales: { x: { time: s.time }, y: { distr: log ? 3 : 1 } },
      series: [{ label: s.time ? "time" : "step" }, ...series.map((d, i) => ({
        label: d.label, stroke: palette[i % palette.length], width: 1.5, spanGaps: true,
        points: { show: opts.points || d.values.length < 50 },
        paths: opts.points ? () => null : undefined,
      }))],
      axes: [{}, { size: 60 }],
      legend: { show: true },
    }, data, figure);
  }

  function fail(figure, error) {
    const p = document.createElement("p");
    p.className = "chart-error error";
    p.textContent = String(error.message || error);
    figure.appendChild(p);
  }

  function runCharts() {
    const figures = Array.from(document.querySelectorAll("figure.chart[data-run][data-key]"));
    figures.forEach(figure => {
      history(figure.dataset.run, figure.dataset.key)
        .then(d => { draw(figure, [{ ...d, label: d.key }], {}); figure.dataset.drawn = String(d.values.length); })
        .catch(e => fail(figure, e));
    });
  }

  function pageData() {
    const el = document.getElementById("page-data");
    return el ? JSON.parse(el.textContent) : null;
  }

  function overlay(data) {
    const figure = document.getElementById("overlay-chart"), select = document.getElementById("overlay-key");
    if (!figure || !select) return;
    const key = select.value, names = new Map(data.runs.map(r => [r.id, r.name]));
    const ids = data.history_keys[key] || [];
    Promise.all(ids.map(id => history(id, key).then(d => ({ ...d, label: names.get(id) + " " + id.slice(0, 8) }))))
      .then(series => { draw(figure, series, { wide: true }); figure.dataset.drawn = String(series.length); })
      .catch(e => fail(figure, e));
  }

  function scatter(data) {
    const figure = document.getElementById("scatter-chart");
    const p = document.getElementById("scatter-param"), m = document.getElementById("scatter-metric");
    if (!figure || !p || !m) return;
    const row = kind => data.rows.find(r => r.kind === kind.k && r.key === kind.key);
    const pr = row({ k: "param", key: p.value }), mr = row({ k: "metric", key: m.value });
    if (!pr || !mr) return;
    let xs = pr.values.map(v => (typeof v === "number" ? v : null));
    const categorical = xs.some(v => v === null);
    let labels = null;
    if (categorical) {  // text values: one position per distinct value
      labels = Array.from(new Set(pr.values.map(v => String(v))));
      xs = pr.values.map(v => labels.indexOf(String(v)));
    }
    const points = xs.map((x, i) => [x, num(mr.values[i])]).filter(([x, y]) => x !== null && Number.isFinite(y));
    points.sort((a, b) => a[0] - b[0]);
    figure.querySelectorAll(".uplot, .chart-error").forEach(el => el.remove());
    new uPlot({
      width: Math.max(320, Math.min(figure.parentElement.clientWidth - 20, 700)), height: 280,
      mode: 1,
      scales: { x: { time: false } },
      series: [{ label: p.value }, { label: m.value, stroke: palette[0], paths: () => null, points: { show: true, size: 8 } }],
      axes: [categorical ? { values: (u, ticks) => ticks.map(t => labels[t] !== undefined && Number.isInteger(t) ? labels[t] : "") } : {}, { size: 60 }],
    }, [points.map(pt => pt[0]), points.map(pt => pt[1])], figure);
    figure.dataset.drawn = String(points.length);
  }

  function redraw() {
    runCharts();
    const data = pageData();
    if (data) { overlay(data); scatter(data); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    ["x-axis", "log-scale", "smoothing", "overlay-key", "scatter-param", "scatter-metric"].forEach(id => {
      const el = document.getElementById(id);
      if (el) el.addEventListener(el.type === "range" ? "input" : "change", redraw);
    });
    redraw();
  });
})();
