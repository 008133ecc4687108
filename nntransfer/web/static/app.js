// The report page: draws the payload (inline, or fetched again and again by the dashboard).
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const view = { payload: null, sortColumn: null, sortDescending: false, filter: "" };

function element(tag, attributes, children) {
  const node = document.createElement(tag);
  Object.entries(attributes || {}).forEach(([name, value]) => {
    if (name === "text") node.textContent = value; else node.setAttribute(name, value);
  });
  (children || []).forEach((child) => node.appendChild(child));
  return node;
}

function formatted(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number" && !Number.isInteger(value)) return value.toPrecision(4);
  return String(value);
}

function drawStatus(payload) {
  const STATES = Object.keys(payload.status.total);
  const table = element("table");
  const head = element("tr", {}, [element("th", { text: "step" })].concat(STATES.map((s) => element("th", { text: s, class: "state-" + s }))));
  table.appendChild(element("thead", {}, [head]));
  const body = element("tbody");
  const rows = Object.entries(payload.status.steps).map(([step, counts]) => [step, counts]);
  rows.push(["all", payload.status.total]);
  rows.forEach(([step, counts]) => {
    body.appendChild(element("tr", {}, [element("td", { text: step })].concat(
      STATES.map((s) => element("td", { text: String(counts[s]), class: "num" + (counts[s] ? " state-" + s : "") })))));
  });
  table.appendChild(body);
  document.getElementById("status").replaceChildren(table);
  const live = document.getElementById("live");
  if (!payload.live.length) { live.replaceChildren(); return; }
  const list = element("ul", {}, payload.live.map((job) => {
    let text = `running: ${job.name} on ${job.host || "?"} (pid ${job.pid})`;
    if (job.epoch !== undefined && job.epoch !== null) text += `, epoch ${job.epoch}` + (job.epochs ? ` of ${job.epochs}` : "");
    const metrics = Object.entries(job.metrics || {}).map(([name, value]) => `${name} ${formatted(value)}`);
    if (metrics.length) text += "; " + metrics.join(", ");
    if (job.seconds_since_heartbeat !== null && job.seconds_since_heartbeat !== undefined) {
      text += `; last heartbeat ${Math.round(job.seconds_since_heartbeat)} s ago`;
    }
    return element("li", { text });
  }));
  live.replaceChildren(list);
}

function fillSelect(id, options, fallback) {
  const select = document.getElementById(id);
  const chosen = select.dataset.chosen;
  select.replaceChildren(...options.map((name) => element("option", { value: name, text: name })));
  if (options.includes(chosen)) select.value = chosen;
  else if (options.includes(fallback)) select.value = fallback;
}

function colours(curves) {
  const map = {};
  curves.forEach((curve) => {
    if (!(curve.group in map)) map[curve.group] = curve.group === "shared" ? "#888888" : PALETTE[Object.keys(map).length % PALETTE.length];
  });
  return map;
}

function hexToFill(hex) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},0.15)`;
}

function drawCurves(payload) {
  const metric = document.getElementById("metric").value;
  const target = document.getElementById("curves");
  if (!metric) { target.textContent = "No step has finished yet."; return; }
  const curves = payload.curves[metric][document.getElementById("earlier").checked ? "earlier" : "alone"];
  const colour = colours(curves);
  const traces = [];
  curves.forEach((curve) => {
    const c = colour[curve.group];
    if (!curve.x.length) {
      traces.push({ x: [null], y: [null], name: curve.label, mode: "markers", marker: { symbol: "x", color: "#d62728" } });
      return;
    }
    if (curve.runs > 1) {
      traces.push({ x: curve.x, y: curve.high, mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: curve.label });
      traces.push({ x: curve.x, y: curve.low, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: hexToFill(c),
        hoverinfo: "skip", showlegend: false, legendgroup: curve.label });
    }
    traces.push({ x: curve.x, y: curve.mean, mode: "lines", name: curve.label, legendgroup: curve.label,
      line: { color: c, width: curve.earlier ? 1 : 2, dash: curve.earlier ? "dash" : "solid" } });
  });
  Plotly.react(target, traces, {
    margin: { t: 10, r: 10 }, xaxis: { title: { text: "epoch of the compared step" }, zeroline: true },
    yaxis: { title: { text: metric } }, legend: { orientation: "h", y: -0.2 },
  }, { responsive: true, displaylogo: false });
}

function drawFinals(payload) {
  const metric = document.getElementById("final-metric").value;
  const target = document.getElementById("finals");
  if (!metric) { target.textContent = "No step measured a final metric yet."; return; }
  const groups = payload.finals[metric];
  const done = groups.map((g, i) => [g, i]).filter(([g]) => g.values.length);
  const traces = [{
    // every run left of its group's position, the mean and its band right of it, so neither hides the other
    x: groups.flatMap((g, i) => g.values.map((_, j) => i - 0.15 + 0.06 * (j - (g.values.length - 1) / 2))),
    y: groups.flatMap((g) => g.values),
    text: groups.flatMap((g) => g.seeds.map((s) => g.label + ", seed " + s)), hoverinfo: "text+y",
    mode: "markers", type: "scatter", name: "one run (seed)", marker: { color: "#888", size: 7 },
  }, {
    x: done.map(([, i]) => i + 0.15), y: done.map(([g]) => g.mean), text: done.map(([g]) => g.label),
    error_y: { type: "data", symmetric: false, array: done.map(([g]) => g.high - g.mean),
      arrayminus: done.map(([g]) => g.mean - g.low) },
    mode: "markers", type: "scatter", name: payload.band, marker: { color: "#1f77b4", size: 11, symbol: "diamond" },
  }];
  Plotly.react(target, traces, {
    margin: { t: 10, r: 10 }, yaxis: { title: { text: metric } }, legend: { orientation: "h", y: -0.25 },
    xaxis: { zeroline: false, tickvals: groups.map((_, i) => i), ticktext: groups.map((g) => g.label), range: [-0.5, groups.length - 0.5] },
  }, { responsive: true, displaylogo: false });
}

function drawTable(payload) {
  const { columns, rows } = payload.results;
  const table = document.getElementById("results");
  const head = element("tr", {}, columns.map((name, index) => {
    const cell = element("th", { text: name, "data-index": String(index) });
    if (view.sortColumn === index) cell.className = view.sortDescending ? "sorted-desc" : "sorted-asc";
    cell.addEventListener("click", () => {
      view.sortDescending = view.sortColumn === index ? !view.sortDescending : false;
      view.sortColumn = index;
      drawTable(view.payload);
    });
    return cell;
  }));
  table.tHead.replaceChildren(head);
  const needle = view.filter.toLowerCase();
  let shown = rows.filter((row) => !needle || row.some((value) => formatted(value).toLowerCase().includes(needle)));
  if (view.sortColumn !== null) {
    const i = view.sortColumn;
    const sign = view.sortDescending ? -1 : 1;
    shown = shown.slice().sort((a, b) => {
      const x = a[i], y = b[i];
      if (x === y) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * sign;
    });
  }
  const stateIndex = columns.indexOf("state");
  table.tBodies[0].replaceChildren(...shown.map((row) => element("tr", {}, row.map((value, index) => element("td", {
    text: formatted(value),
    class: (typeof value === "number" ? "num" : "") + (index === stateIndex ? " state-" + value : ""),
  })))));
  document.getElementById("row-count").textContent = `${shown.length} of ${rows.length} steps`;
}

function drawLineage(payload) {
  const chains = payload.lineage.map((chain) => {
    const steps = chain.steps.map((step) => {
      const details = element("details", {}, [element("summary", { text: "configs" }),
        element("pre", { text: Object.entries(step.config).map(([k, v]) => `${k} = ${formatted(v)}`).join("\n") })]);
      const parts = [
        element("div", { text: `step ${step.step}: ${step.description}` }),
        element("div", { class: "state-" + step.state,
          text: `${step.state}; score ${formatted(step.score)}; test accuracy ${formatted(step.test_accuracy)}; ` +
            `received ${step.received}; hands on ${step.hands_on}` }),
      ];
      if (step.error) parts.push(element("pre", { text: step.error }));
      if (step.load_report) parts.push(element("pre", { text: step.load_report }));
      parts.push(details);
      return element("div", { class: "step" }, parts);
    });
    return element("div", { class: "chain" }, [element("h3", { text: `${chain.chain} (seed ${chain.seed})` })].concat(steps));
  });
  document.getElementById("lineage").replaceChildren(...chains);
}

function draw(payload) {
  view.payload = payload;
  document.getElementById("generated").textContent = "data of " + payload.generated;
  document.getElementById("band").textContent = payload.band;
  fillSelect("metric", payload.metrics, payload.metrics.includes("validation.accuracy") ? "validation.accuracy" : payload.metrics[0]);
  const finals = Object.keys(payload.finals);
  fillSelect("final-metric", finals, finals.includes("test.accuracy") ? "test.accuracy" : finals[0]);
  drawStatus(payload);
  drawCurves(payload);
  drawFinals(payload);
  drawTable(payload);
  drawLineage(payload);
}

function keepSelection(id, draw) {
  const select = document.getElementById(id);
  select.addEventListener("change", () => { select.dataset.chosen = select.value; draw(view.payload); });
}

function start() {
  const settings = JSON.parse(document.getElementById("settings").textContent);
  keepSelection("metric", drawCurves);
  keepSelection("final-metric", drawFinals);
  document.getElementById("earlier").addEventListener("change", () => drawCurves(view.payload));
  document.getElementById("filter").addEventListener("input", (event) => { view.filter = event.target.value; drawTable(view.payload); });
  draw(JSON.parse(document.getElementById("payload").textContent));
  if (settings.live) {
    const note = document.getElementById("live-note");
    note.textContent = "live: refreshing every " + settings.refresh_ms / 1000 + " s";
    setInterval(() => {
      fetch("api/payload").then((response) => {
        if (!response.ok) throw new Error("the server answered " + response.status);
        return response.json();
      }).then((payload) => { note.textContent = "live"; draw(payload); })
        .catch((error) => { note.textContent = "live: " + error.message + " (retrying)"; });
    }, settings.refresh_ms);
  }
}

document.addEventListener("DOMContentLoaded", start);
