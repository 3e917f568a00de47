// poe2openai dashboard: usage charts, Poe points, proxy keys. Plain JS; charts are SVG
// drawn here (no chart library, nothing loaded from elsewhere).
"use strict";
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const CSRF = { header: meta("csrf-header"), token: meta("csrf-token") };
  const SVG = "http://www.w3.org/2000/svg";
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const c of children) node.append(c);
    return node;
  };
  const svg = (tag, attrs = {}) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  };
  const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

  async function api(path, options = {}) {
    const headers = { Accept: "application/json" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers[CSRF.header] = CSRF.token;
    }
    const resp = await fetch(path, {
      method: options.method || (options.body === undefined ? "GET" : "POST"), headers,
      credentials: "same-origin",
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    return { status: resp.status, body };
  }

  function notice(kind, text) {
    const box = $("#notices");
    box.replaceChildren();
    if (text) box.append(el("div", { className: `notice ${kind}` }, el("p", { textContent: text })));
  }

  // ------------------------------------------------------------------ charts
  const W = 460, H = 190, L = 46, R = 10, T = 10, B = 24;

  function timeLabel(t, span) {
    const d = new Date(t * 1000);
    if (span <= 2 * 86400) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return d.toLocaleDateString([], { month: "short", day: "numeric" });
  }

  // A round top for the y axis, so the four grid steps are round numbers too.
  function niceMax(value) {
    if (value <= 0) return 1;
    const step = value / 4, mag = 10 ** Math.floor(Math.log10(step));
    const nice = [1, 2, 2.5, 5, 10].find((f) => f * mag >= step) * mag;
    return nice * 4;
  }

  function frame(root, max, yFmt) {
    for (let i = 0; i <= 4; i++) {
      const y = T + (H - T - B) * (1 - i / 4);
      root.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: i ? "grid" : "axis" }));
      const label = svg("text", { x: L - 6, y: y + 3, "text-anchor": "end" });
      label.textContent = yFmt(max * i / 4);
      root.append(label);
    }
  }

  // A line chart of several series over shared times; null values leave gaps.
  function lineChart(title, times, series, yFmt = (v) => compact.format(v)) {
    const box = el("div", { className: "chart" }, el("h3", { textContent: title }));
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
    const names = Object.keys(series);
    const values = names.flatMap((n) => series[n].filter((v) => v !== null));
    const max = niceMax(Math.max(0, ...values));
    frame(root, max, yFmt);
    const span = times.length > 1 ? times[times.length - 1] - times[0] : 1;
    const x = (i) => L + (W - L - R) * (times.length > 1 ? i / (times.length - 1) : 0.5);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    for (const i of [0, Math.floor((times.length - 1) / 2), times.length - 1]) {
      if (i < 0 || times[i] === undefined) continue;
      const label = svg("text", { x: x(i), y: H - 6, "text-anchor": i === 0 ? "start" : i === times.length - 1 ? "end" : "middle" });
      label.textContent = timeLabel(times[i], span);
      root.append(label);
    }
    if (!values.length || values.every((v) => v === 0)) {
      const t = svg("text", { x: (W + L) / 2, y: H / 2, "text-anchor": "middle", class: "empty-text" });
      t.textContent = "no data in this range";
      root.append(t);
    }
    names.forEach((name, s) => {
      const cls = `s${s % 8}`;
      let d = "";
      series[name].forEach((v, i) => {
        if (v === null) { d += " "; return; }
        const prevNull = i === 0 || series[name][i - 1] === null;
        d += `${prevNull ? "M" : "L"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        const nextNull = i === series[name].length - 1 || series[name][i + 1] === null;
        if (prevNull && nextNull && v !== 0) root.append(svg("circle", { cx: x(i), cy: y(v), r: 2.5, class: `dot ${cls}` }));
      });
      if (d.trim()) root.append(svg("path", { d: d.trim(), class: `line ${cls}` }));
    });
    box.append(root, legend(names));
    return box;
  }

  function barChart(title, labels, values, yFmt = (v) => compact.format(v)) {
    const box = el("div", { className: "chart" }, el("h3", { textContent: title }));
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
    const max = niceMax(Math.max(0, ...values));
    frame(root, max, yFmt);
    const slot = (W - L - R) / Math.max(1, values.length);
    values.forEach((v, i) => {
      const h = (H - T - B) * v / max;
      const bar = svg("rect", { x: L + i * slot + slot * 0.15, y: H - B - h, width: Math.max(1, slot * 0.7), height: h, class: "bar s0" });
      const tip = svg("title");
      tip.textContent = `${labels[i]}: ${fmt.format(v)}`;
      bar.append(tip);
      root.append(bar);
    });
    [0, labels.length - 1].forEach((i, k) => {
      if (i < 0 || (k && i === 0)) return;
      const label = svg("text", { x: L + i * slot + slot / 2, y: H - 6, "text-anchor": k ? "end" : "start" });
      label.textContent = labels[i] || "";
      root.append(label);
    });
    if (!values.length) {
      const t = svg("text", { x: (W + L) / 2, y: H / 2, "text-anchor": "middle", class: "empty-text" });
      t.textContent = "no points spent";
      root.append(t);
    }
    box.append(root);
    return box;
  }

  const legend = (names) => el("div", { className: "legend" },
    ...names.map((n, s) => el("span", {}, el("i", { className: `s${s % 8}` }), n)));

  function table(headers, rows, numeric = []) {
    const head = el("tr", {}, ...headers.map((h, i) => el("th", { textContent: h, className: numeric.includes(i) ? "num" : "" })));
    const body = rows.map((r) => el("tr", { className: r.className || "" },
      ...r.cells.map((c, i) => el("td", { className: numeric.includes(i) ? "num" : "" }, c))));
    return el("div", { className: "table-wrap" }, el("table", { className: "data" }, el("thead", {}, head), el("tbody", {}, ...body)));
  }

  // ------------------------------------------------------------------ usage
  const secs = (v) => (v >= 1 ? `${fmt.format(v)} s` : `${Math.round(v * 1000)} ms`);

  async function loadUsage() {
    const hours = $("#range").value, by = $("#by").value;
    const { status, body } = await api(`api/usage?hours=${hours}&by=${by}`);
    const charts = $("#charts");
    charts.replaceChildren();
    $("#totals").replaceChildren();
    if (status !== 200 || !body) { $("#usage-note").textContent = "Usage could not be loaded."; return; }
    if (!body.available) {
      $("#usage-note").textContent = `No usage data: ${body.reason || "the usage log is not available"}.`;
      return;
    }
    const step = body.bucket >= 86400 ? `${body.bucket / 86400} d` : body.bucket >= 3600 ? `${body.bucket / 3600} h` : `${Math.round(body.bucket / 60)} min`;
    $("#usage-note").textContent = `Per ${body.by}, in ${step} steps (times are your browser's).`;
    const s = body.series;
    charts.append(
      lineChart("Requests", body.times, s.requests),
      lineChart("Errors (status ≥ 400)", body.times, s.errors),
      lineChart("Tokens in", body.times, s.tokens_in),
      lineChart("Tokens out", body.times, s.tokens_out),
      lineChart("Time to first byte (average)", body.times, s.ttfb, secs),
      lineChart("Latency (average)", body.times, s.latency, secs),
    );
    $("#totals").append(table([body.by, "requests", "errors", "tokens in", "tokens out", "first byte", "latency"],
      body.totals.map((t) => ({ cells: [t.name, fmt.format(t.requests), fmt.format(t.errors),
        fmt.format(t.tokens_in), fmt.format(t.tokens_out), t.ttfb === null ? "–" : secs(t.ttfb),
        t.latency === null ? "–" : secs(t.latency)] })), [1, 2, 3, 4, 5, 6]));
  }

  // ------------------------------------------------------------------ points
  async function loadPoints(refresh = false) {
    const { status, body } = await api(`api/points${refresh ? "?refresh=1" : ""}`);
    const box = $("#points");
    box.replaceChildren();
    if (status !== 200 || !body) { box.append(el("p", { className: "hint", textContent: "The balance could not be loaded." })); return; }
    if (!body.configured) {
      box.append(el("p", { className: "hint", textContent: "Set POE_API_KEY (the server's own Poe key) to see the point balance and Poe's points history here." }));
      return;
    }
    const low = body.balance !== null && body.min_points > 0 && body.balance < body.min_points;
    const head = el("div", { className: "points-head" },
      el("div", {}, el("div", { className: `balance${low ? " low" : ""}`, id: "balance", textContent: body.balance === null ? "–" : fmt.format(body.balance) }),
        el("small", { textContent: `points${body.checked ? ` · checked ${new Date(body.checked).toLocaleString()}` : ""}` })));
    if (body.min_points > 0) head.append(el("small", { textContent: `Minimum (POE_MIN_POINTS): ${fmt.format(body.min_points)}${low ? " — new requests are refused" : ""}` }));
    box.append(head);
    if (body.balance_error) box.append(el("p", { className: "error-text", textContent: body.balance_error }));
    if (body.history_error) box.append(el("p", { className: "error-text", textContent: `Points history: ${body.history_error}` }));
    if (!body.history) return;
    const grid = el("div", { className: "points-grid" });
    grid.append(barChart("Points spent per day (Poe's history, 30 days at most)", body.days.map((d) => d[0]), body.days.map((d) => d[1])));
    grid.append(el("div", {}, el("h3", { textContent: "Recent charges" }),
      table(["time", "bot", "points"], body.history.slice(0, 12).map((e) => ({
        cells: [e.time ? new Date(e.time).toLocaleString() : "", e.bot || "", fmt.format(e.points)] })), [2])));
    box.append(grid);
  }

  // ------------------------------------------------------------------ keys
  const limitText = (v) => (v ? fmt.format(v) : "–");

  function renderKeys(body) {
    const box = $("#keys");
    box.replaceChildren();
    $("#keys-hint").textContent = body.keys.length
      ? `Every API request needs one of these keys; they are answered with the server's Poe key${body.server_key ? "" : " — which is not set (POE_API_KEY): requests get 503"}. File: ${body.file}`
      : `No proxy keys: clients use their own Poe keys. Create one to share this server without sharing a Poe key. File: ${body.file}`;
    if (body.error) box.append(el("p", { className: "error-text", textContent: body.error }));
    if (!body.keys.length) return;
    box.append(table(["name", "state", "models", "per min", "at once", "per day", "used today", "expires", "hint", ""],
      body.keys.map((k) => {
        const revoke = el("button", { type: "button", className: "danger", textContent: "Revoke", disabled: k.state === "revoked" });
        revoke.dataset.revoke = k.name;
        return { className: k.state, cells: [k.name, el("span", { className: `state ${k.state}`, textContent: k.state }),
          k.models.length ? k.models.join(", ") : "all", limitText(k.rpm), limitText(k.concurrency), limitText(k.daily),
          fmt.format(k.used_today), k.expires ? new Date(k.expires).toLocaleDateString() : "never", k.hint ? `${k.hint}…` : "", revoke] };
      }), [3, 4, 5, 6]));
  }

  async function loadKeys() {
    const { status, body } = await api("api/keys");
    if (status === 200 && body) renderKeys(body);
  }

  async function createKey(event) {
    event.preventDefault();
    const value = (id) => $(id).value.trim();
    const { status, body } = await api("api/keys", { body: {
      name: value("#k-name"), models: value("#k-models"), rpm: value("#k-rpm"),
      concurrency: value("#k-concurrency"), daily: value("#k-daily"), expires: value("#k-expires"),
    } });
    if (status !== 201) { notice("error", body && body.error ? body.error.message : `Failed (${status}).`); return; }
    notice("ok", `Created the key ${body.key.name}.`);
    $("#secret-value").textContent = body.secret;
    $("#secret").hidden = false;
    $("#key-form").reset();
    renderKeys(body);
  }

  async function revokeKey(name) {
    if (!window.confirm(`Revoke the key ${name}? Clients using it get 401 from their next request on.`)) return;
    const { status, body } = await api(`api/keys/${encodeURIComponent(name)}/revoke`, { body: {} });
    if (status !== 200) { notice("error", body && body.error ? body.error.message : `Failed (${status}).`); return; }
    notice("ok", `Revoked the key ${name}.`);
    renderKeys(body);
  }

  // ------------------------------------------------------------------ start
  const loadAll = (refresh) => Promise.all([loadPoints(refresh), loadUsage(), loadKeys()]);
  document.addEventListener("DOMContentLoaded", () => {
    $("#range").addEventListener("change", loadUsage);
    $("#by").addEventListener("change", loadUsage);
    $("#refresh").addEventListener("click", () => loadAll(true));
    $("#key-form").addEventListener("submit", createKey);
    $("#keys").addEventListener("click", (e) => {
      const name = e.target instanceof HTMLElement ? e.target.dataset.revoke : undefined;
      if (name) revokeKey(name);
    });
    $("#secret-copy").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("#secret-value").textContent));
    $("#secret-hide").addEventListener("click", () => { $("#secret").hidden = true; $("#secret-value").textContent = ""; });
    loadAll(false);
  });
})();
