// gitml ui: the charts (uPlot), drawn from the JSON endpoints. Everything else is server-rendered.
"use strict";
(function () {
  const palette = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#6e7781", "#9a6700",
    "#0550ae", "#fb8f44", "#4ac26b", "#d2a8ff", "#a40e26", "#54aeff", "#7d4e00", "#e85aad", "#116329", "#3e1f79", "#24292f"];
  const cache = new Map();
  const STEP_INCRS = [];
  for (let e = 0; e < 16; e++) [1, 2, 5].forEach(m => STEP_INCRS.push(m * Math.pow(10, e)));
  // where the UI is mounted ("" at the root of its own server; a prefix under a larger application)
  const ROOT = (document.body && document.body.dataset.root) || "";

  function historyUrl(run, key) {
    return ROOT + "/api/runs/" + encodeURIComponent(run) + "/history?key=" + encodeURIComponent(key);
  }

  function history(run, key) {
    const url = historyUrl(run, key);
    if (!cache.has(url)) {
      cache.set(url, fetch(url).then(r => r.ok ? r.json() : r.json().then(e => Promise.reject(new Error(e.error)))));
    }
    return cache.get(url);
  }

  // a number as the pages write it (Python's "%.7g"): 0.2003799, 5e-06, 1234567, 1.234568e+07
  function fmt7(v) {
    if (typeof v !== "number" || !Number.isFinite(v)) return String(v);
    if (v === 0) return "0";
    const exp = Math.floor(Math.log10(Math.abs(v)));
    if (exp < -4 || exp >= 7) {
      const [m, e] = v.toExponential(6).split("e");
      const n = Number(e);
      return m.replace(/\.?0+$/, "") + "e" + (n < 0 ? "-" : "+") + String(Math.abs(n)).padStart(2, "0");
    }
    return String(Number(v.toPrecision(7)));
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
    return { time: !!x && x.value === "time", relative: !!x && x.value === "relative", log: !!(log && log.checked),
      smoothing: sm ? parseFloat(sm.value) : 0 };
  }

  // Series sharing one x axis: uPlot wants one ascending x array and one y array per series (null where a
  // series has no point). A value logged twice at one x (the same step, or the same millisecond) keeps
  // both points: the k-th repeat sits k millionths further right, which no axis shows.
  function align(series, time) {
    const sorted = series.map(s => s.x.map((x, i) => [x, s.y[i]]).sort((a, b) => a[0] - b[0]));
    const repeats = new Map();
    sorted.forEach(pairs => {
      const seen = new Map();
      pairs.forEach(([x]) => seen.set(x, (seen.get(x) || 0) + 1));
      seen.forEach((n, x) => repeats.set(x, Math.max(repeats.get(x) || 0, n)));
    });
    const slots = new Map(), x = [];
    Array.from(repeats.keys()).sort((a, b) => a - b).forEach(v => {
      slots.set(v, x.length);
      for (let k = 0; k < repeats.get(v); k++) x.push((time ? v / 1000 : v) + k * 1e-6);
    });
    const ys = sorted.map(pairs => {
      const y = new Array(x.length).fill(null), used = new Map();
      pairs.forEach(([v, value]) => {
        const k = used.get(v) || 0;
        used.set(v, k + 1);
        y[slots.get(v) + k] = Number.isFinite(value) ? value : null;  // NaN and ±inf: a gap, counted below
      });
      return y;
    });
    return [x, ...ys];
  }

  function draw(figure, series, opts) {
    figure.querySelectorAll(".uplot, .chart-error").forEach(el => el.remove());
    const s = settings();
    // relative: seconds since the series' first point (each run's own start, as MLflow's "relative time")
    const xOf = d => {
      if (!s.relative) return s.time ? d.times : d.steps;
      const t0 = typeof d.start === "number" ? d.start : d.times.reduce((a, b) => Math.min(a, b), Infinity);
      return d.times.map(t => t - t0);  // from the run's start, as MLflow's relative time
    };
    const data = align(series.map(d => ({ x: xOf(d), y: smooth(d.values.map(num), s.smoothing) })), s.time || s.relative);
    const skipped = series.reduce((n, d) => n + d.values.map(num).filter(v => !Number.isFinite(v)).length, 0);
    figure.querySelectorAll(".chart-note").forEach(el => el.remove());
    const notes = [];
    if (skipped) notes.push(skipped + (skipped === 1 ? " point is" : " points are") + " NaN or infinite: not drawn");
    series.filter(d => d.sampled).forEach(d => notes.push((d.label || d.key) + ": " + (d.live
      ? "an even sample of " + d.values.length + " of its " + d.total + " points so far (the run is in progress)"
      : "drawn from the points kept when the run's history was sampled at commit")));
    const width = Math.max(320, Math.min(figure.parentElement.clientWidth - 20, opts.wide ? 1100 : 520));
    const log = s.log && data.slice(1).every(ys => ys.every(v => v === null || v > 0));
    if (s.log && !log) notes.push("log scale needs values above 0: shown on a linear scale");
    new uPlot({
      width, height: 240,
      scales: { x: { time: s.time }, y: { distr: log ? 3 : 1 } },
      tzDate: ts => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),  // times in UTC, as every page writes them
      series: [{ label: s.time ? "time" : s.relative ? "seconds" : "step" }, ...series.map((d, i) => ({
        label: d.label, stroke: palette[i % palette.length], width: 1.5, spanGaps: true,
        points: { show: opts.points || d.values.length < 50 },
        paths: opts.points ? () => null : undefined,
      }))],
      // steps are whole numbers: ticks at 1, 2, 5, 10, … apart, never halfway; dates need two lines of room
      axes: [s.time ? { size: 56 } : s.relative ? {} : { incrs: STEP_INCRS }, { size: 60 }],
      legend: { show: true },
    }, data, figure);
    notes.forEach(text => {
      const p = document.createElement("p");
      p.className = "chart-note note";
      p.textContent = text;
      figure.appendChild(p);
    });
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
    // runs that lack the param or have no finite value of the metric are left out; a param that
    // is text in any run that has it is placed by category, in sorted order
    const present = pr.values.map((v, i) => [v, num(mr.values[i]), data.runs[i] ? data.runs[i].name : ""])
      .filter(([v, y]) => v !== null && v !== undefined && Number.isFinite(y));
    const categorical = present.some(([v]) => typeof v !== "number");
    const labels = categorical ? Array.from(new Set(present.map(([v]) => String(v)))).sort() : null;
    const points = present.map(([v, y, name]) => [categorical ? labels.indexOf(String(v)) : v, y, name, v]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < points.length; i++) {  // runs sharing a param value: each drawn, a hair apart
      if (points[i][0] <= points[i - 1][0]) points[i][0] = points[i - 1][0] + 1e-6;
    }
    figure.querySelectorAll(".uplot, .chart-error").forEach(el => el.remove());
    figure.gitmlPlot = new uPlot({
      width: Math.max(320, Math.min(figure.parentElement.clientWidth - 20, 700)), height: 280,
      mode: 1,
      scales: { x: { time: false } },
      // hovering a point names its run in the legend
      series: [{ label: p.value, value: (u, v, si, i) => i == null || !points[i] ? "" : String(points[i][3]) },
        { label: m.value, stroke: palette[0], paths: () => null, points: { show: true, size: 8 },
          value: (u, v, si, i) => i == null || !points[i] ? "" : fmt7(points[i][1]) + " (" + points[i][2] + ")" }],
      // the point nearest the cursor on both axes: runs sharing a param value sit at one x
      cursor: { dataIdx: (u, si, closest) => {
        const left = u.cursor.left, top = u.cursor.top;
        if (left == null || left < 0) return closest;
        let best = closest, dist = Infinity;
        points.forEach((pt, i) => {
          const dx = u.valToPos(pt[0], "x") - left, dy = u.valToPos(pt[1], "y") - top, d = dx * dx + dy * dy;
          if (d < dist) { dist = d; best = i; }
        });
        return best;
      } },
      axes: [categorical ? { values: (u, ticks) => ticks.map(t => Number.isInteger(t) && labels[t] !== undefined ? labels[t] : "") } : {}, { size: 60 }],
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
    watchIndex();
    watchLive();
    autoSubmit();
    keepTicked();
    differencesOnly();
  });

  // The runs page: picking an experiment or a page size searches at once.
  function autoSubmit() {
    const form = document.getElementById("search");
    if (!form) return;
    ["experiment", "limit"].forEach(name => {
      const select = form.querySelector('select[name="' + name + '"]');
      if (!select) return;
      select.addEventListener("change", () => {
        // another experiment has other keys: its own default columns, not the ones picked here
        if (name === "experiment") form.querySelectorAll("details.columns input").forEach(el => { el.disabled = true; });
        form.submit();
      });
    });
  }

  // The runs page: runs ticked for comparison stay ticked across pages, sorts and filters (this tab only).
  function keepTicked() {
    const form = document.getElementById("compare-form"), note = document.getElementById("ticked");
    if (!form || !note) return;
    const KEY = "gitml.ticked";
    const load = () => { try { return new Set(JSON.parse(sessionStorage.getItem(KEY) || "[]")); } catch (e) { return new Set(); } };
    const ticked = load();
    const boxes = Array.from(form.querySelectorAll('input[type="checkbox"][name="runs"]'));
    const save = () => {
      sessionStorage.setItem(KEY, JSON.stringify(Array.from(ticked)));
      const here = new Set(boxes.map(b => b.value)), away = Array.from(ticked).filter(id => !here.has(id)).length;
      note.textContent = "";
      if (!ticked.size) return;
      note.append(ticked.size + " ticked" + (away ? " (" + away + " on other pages)" : "") + " · ");
      const clear = document.createElement("a");
      clear.href = "#";
      clear.id = "clear-ticked";
      clear.textContent = "clear";
      clear.addEventListener("click", e => { e.preventDefault(); ticked.clear(); boxes.forEach(b => { b.checked = false; }); save(); });
      note.append(clear);
    };
    boxes.forEach(b => {
      b.checked = ticked.has(b.value);
      b.addEventListener("change", () => { if (b.checked) ticked.add(b.value); else ticked.delete(b.value); save(); });
    });
    form.addEventListener("submit", e => {
      if (ticked.size < 2 || ticked.size > 20) {  // say so here rather than on an error page
        e.preventDefault();
        note.textContent = ticked.size < 2 ? "tick two or more runs to compare"
          : "compare takes at most 20 runs: " + ticked.size + " are ticked";
        return;
      }
      const here = new Set(boxes.map(b => b.value));
      ticked.forEach(id => {
        if (here.has(id)) return;
        const input = document.createElement("input");
        Object.assign(input, { type: "hidden", name: "runs", value: id });
        form.appendChild(input);
      });
    });
    save();
  }

  // The compare page: hide the rows whose values are the same in every run.
  function differencesOnly() {
    const box = document.getElementById("differences-only"), table = document.getElementById("compare");
    if (!box || !table) return;
    box.addEventListener("change", () => table.classList.toggle("differences-only", box.checked));
  }

  // A run in progress: every 5 s, the values, point counts and charts as logged so far. A new
  // metric, a metric's second point (a new chart) or the run's end reloads the page.
  function watchLive() {
    const note = document.getElementById("live");
    if (!note || note.dataset.follow !== "1") return;
    const run = note.dataset.run;
    let known = JSON.parse(note.dataset.counts);
    const charted = counts => Object.keys(counts).filter(k => counts[k] > 1).sort().join("\n");
    const shown = () => Array.from(document.querySelectorAll("td[data-metric]")).map(td => td.dataset.metric).sort().join("\n");
    const tick = () => fetch(ROOT + "/api/runs/" + encodeURIComponent(run)).then(r => r.ok ? r.json() : Promise.reject(r.status)).then(d => {
      const metrics = Object.keys(d.run.metrics).sort().join("\n");
      if (!d.live || !d.live.alive || charted(d.history_keys) !== charted(known) || metrics !== shown()) {
        location.reload();
        return;
      }
      document.querySelectorAll("td[data-metric]").forEach(td => {
        const v = d.run.metrics[td.dataset.metric];
        td.textContent = fmt7(v);
        td.title = String(v);
      });
      let changed = false;
      Object.entries(d.history_keys).forEach(([key, n]) => {
        if (known[key] === n) return;
        changed = true;
        cache.delete(historyUrl(run, key));
        const td = Array.from(document.querySelectorAll("td[data-points]")).find(el => el.dataset.points === key);
        if (td) td.textContent = n + (n === 1 ? " point" : " points");
      });
      known = d.history_keys;
      if (changed) runCharts();
      setTimeout(tick, 5000);
    }).catch(status => { if (status !== 404) setTimeout(tick, 10000); });
    setTimeout(tick, 5000);
  }

  // A fresh clone's page shown while the server builds the query index: reload once it is done.
  function watchIndex() {
    if (!document.getElementById("indexing")) return;
    const poll = () => fetch(ROOT + "/api/status").then(r => r.json()).then(s => {
      if (s.indexing) setTimeout(poll, 1500); else location.reload();
    }).catch(() => setTimeout(poll, 5000));
    setTimeout(poll, 1500);
  }
})();
