// poe2openai admin page: edit models.yaml. Plain JS, no dependencies.
"use strict";
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const CSRF = { header: meta("csrf-header"), token: meta("csrf-token") };
  const DEFAULT_ENTRY = Object.freeze({
    mapping: null, enable: true, replace_response: false, tool_mode: "native",
    reasoning_format: "reasoning_content", parameters: {},
  });
  const PAGE = 150;

  let state = null;   // the server's last answer
  let orig = null;    // the config as loaded
  let draft = null;   // the config being edited
  let token = { action: "keep" };  // or {action: "set", value} / {action: "clear"}
  let flash = null;   // {kind, text, actions: [[label, fn]]}
  let shown = PAGE;
  const invalid = new Set();  // inputs with a bad value (save is blocked)
  const openOptions = new Set();  // lower-case ids whose options are open

  // ------------------------------------------------------------------ helpers
  const clone = (x) => JSON.parse(JSON.stringify(x));
  const stable = (x) => {
    if (Array.isArray(x)) return `[${x.map(stable).join(",")}]`;
    if (x && typeof x === "object") {
      return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${stable(x[k])}`).join(",")}}`;
    }
    return JSON.stringify(x === undefined ? null : x);
  };
  const same = (a, b) => stable(a) === stable(b);
  const low = (s) => String(s).toLowerCase();
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const c of children) node.append(c);
    return node;
  };

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers[CSRF.header] = CSRF.token;
    }
    const resp = await fetch(path, {
      method: options.method || "GET", headers, credentials: "same-origin",
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    return { status: resp.status, body };
  }

  // ------------------------------------------------------------------ model data
  function keyFor(id) {
    const l = low(id);
    for (const source of [draft.models, orig.models]) {
      for (const k of Object.keys(source)) if (low(k) === l) return k;
    }
    return id;
  }
  const entryOf = (id) => ({ ...clone(DEFAULT_ENTRY), ...(draft.models[keyFor(id)] || {}) });
  const origEntryOf = (id) => {
    const l = low(id);
    const k = Object.keys(orig.models).find((x) => low(x) === l);
    return k === undefined ? null : orig.models[k];
  };

  function setField(id, field, value) {
    const k = keyFor(id);
    const entry = entryOf(id);
    entry[field] = value;
    if (same(entry, DEFAULT_ENTRY) && !(k in orig.models)) delete draft.models[k];
    else draft.models[k] = entry;
    changed();
  }

  function rows() {
    const map = new Map();
    for (const m of state.poe_models) {
      map.set(low(m.id), { id: m.id, owner: m.owned_by, description: m.description, poe: true, custom: false });
    }
    for (const c of draft.custom_models) {
      const row = map.get(low(c.id)) || { id: c.id, owner: c.owned_by || "Custom", description: "", poe: false };
      row.custom = true;
      map.set(low(c.id), row);
    }
    for (const k of Object.keys(draft.models)) {
      if (!map.has(low(k))) {
        map.set(low(k), { id: k, owner: "Other", description: "configured here, not in Poe's list", poe: false, custom: false });
      }
    }
    return [...map.values()];
  }

  function matches(row, query, filter) {
    const entry = entryOf(row.id);
    if (filter === "enabled" && !entry.enable) return false;
    if (filter === "disabled" && entry.enable) return false;
    if (filter === "mapped" && !entry.mapping) return false;
    if (filter === "custom" && !row.custom) return false;
    if (!query) return true;
    return [row.id, entry.mapping || "", row.owner, row.description].some((s) => low(s).includes(query));
  }

  function aliasProblems() {
    const seen = new Map();
    const problems = new Map();
    for (const [k, e] of Object.entries(draft.models)) {
      if (!e.mapping) continue;
      const a = low(e.mapping);
      if (seen.has(a)) {
        problems.set(low(k), `“${e.mapping}” is already the alias of ${seen.get(a)}`);
      } else seen.set(a, k);
    }
    return problems;
  }

  // ------------------------------------------------------------------ state
  function dirty() {
    return token.action !== "keep" || !same(orig, draft);
  }

  function setState(s) {
    state = s;
    orig = clone(s.config);
    draft = clone(s.config);
    token = { action: "keep" };
    invalid.clear();
    renderAll();
  }

  async function load({ refresh = false, keepEdits = false } = {}) {
    const mine = keepEdits && draft ? { orig: clone(orig), draft: clone(draft), token } : null;
    const { status, body } = await api(`api/state${refresh ? "?refresh=1" : ""}`);
    if (status !== 200 || !body) {
      flash = { kind: "error", text: body?.error?.message || `Loading failed (HTTP ${status}).` };
      renderNotices();
      return false;
    }
    setState(body);
    if (mine) reapply(mine);
    const main = document.querySelector("main");
    main.classList.remove("loading");  // controls show real values from here on
    main.removeAttribute("aria-busy");
    return true;
  }

  // Put the user's unsaved edits back on top of a freshly loaded config.
  function reapply(mine) {
    for (const f of ["enable", "allow_unlisted"]) {
      if (mine.draft[f] !== mine.orig[f]) draft[f] = mine.draft[f];
    }
    const keys = new Set([...Object.keys(mine.orig.models), ...Object.keys(mine.draft.models)]);
    for (const k of keys) {
      const before = mine.orig.models[k];
      const after = mine.draft.models[k];
      if (same(before ?? null, after ?? null)) continue;
      const target = keyFor(k);
      if (after === undefined) delete draft.models[target];
      else draft.models[target] = clone(after);
    }
    const byId = (list) => new Map(list.map((c) => [low(c.id), c]));
    const was = byId(mine.orig.custom_models);
    const now = byId(mine.draft.custom_models);
    for (const [l, c] of now) {
      if (same(was.get(l) ?? null, c)) continue;
      const i = draft.custom_models.findIndex((x) => low(x.id) === l);
      if (i >= 0) draft.custom_models[i] = clone(c); else draft.custom_models.push(clone(c));
    }
    for (const l of was.keys()) {
      if (!now.has(l)) draft.custom_models = draft.custom_models.filter((x) => low(x.id) !== l);
    }
    token = mine.token;
    renderAll();
  }

  async function save() {
    if (!dirty() || invalid.size || state.error) return;
    const payload = { version: state.version, config: clone(draft) };
    delete payload.config.use_v1_api;
    if (token.action === "set") payload.api_token = token.value;
    if (token.action === "clear") payload.api_token = null;
    $("#save").disabled = true;
    let result;
    try {
      result = await api("api/config", { method: "POST", body: payload });
    } catch (e) {
      flash = { kind: "error", text: `Could not reach the server: ${e.message}` };
      changed();
      return;
    }
    const { status, body } = result;
    const message = body?.error?.message || `HTTP ${status}`;
    if (status === 200) {
      setState(body);
      flash = { kind: "ok", text: "Saved. The new model map is in use." };
    } else if (status === 409) {
      flash = {
        kind: "error", text: message,
        actions: [
          ["Reload, keep my edits", async () => {
            if (await load({ keepEdits: true })) {
              flash = { kind: "info", text: "Loaded the file again and kept your edits. Check them, then save." };
              renderNotices();
            }
          }],
          ["Reload, discard my edits", () => load().then(() => { flash = null; renderNotices(); })],
        ],
      };
    } else if (status === 401) {
      flash = { kind: "error", text: "Your login is no longer valid; reload the page." };
    } else {
      flash = { kind: "error", text: `Not saved: ${message}` };
    }
    changed();
  }

  // ------------------------------------------------------------------ rendering
  function renderAll() {
    renderSettings();
    renderModels();
    changed();
  }

  function changed() {
    const isDirty = dirty();
    $("#dirty").hidden = !isDirty;
    $("#revert").disabled = !isDirty;
    $("#save").disabled = !isDirty || invalid.size > 0 || !!state.error;
    renderSettings();
    renderNotices();
    renderCounts();
  }

  function notice(kind, text, actions = []) {
    const box = el("div", { className: `notice ${kind}` }, el("p", { textContent: text }));
    for (const [label, fn] of actions) {
      box.append(el("button", { type: "button", textContent: label, onclick: fn }));
    }
    return box;
  }

  function renderNotices() {
    const box = $("#notices");
    box.replaceChildren();
    if (!state) return;
    if (flash) box.append(notice(flash.kind, flash.text, flash.actions || []));
    if (state.error) {
      box.append(notice("error",
        `${state.error.text} — the server keeps using the last good version, shown below. ` +
        "Fix the file by hand; saving from this page is off until then.",
        [["Check again", () => load({ keepEdits: true })]]));
    }
    if (!draft.enable) {
      box.append(notice("warn",
        "The model map is off (enable: false): aliases, disabled models and options below are " +
        "kept but not applied; clients can use any Poe bot by its own name.",
        [["Turn it on", () => { draft.enable = true; changed(); }]]));
    }
    if (!state.file.exists) {
      box.append(notice("info", `There is no models.yaml yet; saving creates ${state.file.path}.`));
    }
    if (state.poe_error) {
      box.append(notice("warn", `Could not fetch Poe's model list (${state.poe_error}). Only configured and custom models are shown.`,
        [["Try again", () => load({ refresh: true, keepEdits: true })]]));
    }
  }

  function renderSettings() {
    $("#enable").checked = !!draft.enable;
    $("#allow_unlisted").checked = !!draft.allow_unlisted;
    const t = state.api_token;
    $("#token-state").textContent =
      token.action === "set" ? "A new token will be saved." :
      token.action === "clear" ? "The token will be removed when you save." :
      t.set ? `Set (${t.hint}).` : "Not set.";
    $("#token-edit").textContent = t.set || token.action === "set" ? "Replace…" : "Set…";
    $("#token-clear").disabled = token.action === "clear" || (!t.set && token.action === "keep");
    $("#file-path").textContent = state.file.path || "(none)";
    $("#file-state").textContent = state.file.exists ? "" : "(not created yet)";
  }

  function renderCounts() {
    const all = rows();
    let disabled = 0; let mapped = 0; let custom = 0;
    for (const r of all) {
      const e = entryOf(r.id);
      if (!e.enable) disabled += 1;
      if (e.mapping) mapped += 1;
      if (r.custom) custom += 1;
    }
    const visible = $("#models").querySelectorAll(".model").length;
    $("#counts").textContent =
      `${all.length} models · ${disabled} disabled · ${mapped} with alias · ${custom} custom` +
      (visible !== all.length ? ` · showing ${visible}` : "");
  }

  function renderModels() {
    const query = low($("#search").value.trim());
    const filter = $("#filter").value;
    const grouped = $("#group").checked;
    let list = rows().filter((r) => matches(r, query, filter));
    if (grouped) {
      list = list.slice().sort((a, b) => low(a.owner).localeCompare(low(b.owner)) || low(a.id).localeCompare(low(b.id)));
    }
    const box = $("#models");
    const frag = document.createDocumentFragment();
    let group = null;
    for (const row of list.slice(0, shown)) {
      if (grouped && row.owner !== group) {
        group = row.owner;
        const count = list.filter((r) => r.owner === group).length;
        frag.append(el("h3", { className: "group-title", textContent: `${group} (${count})` }));
      }
      frag.append(buildRow(row));
    }
    if (!list.length) frag.append(el("p", { className: "empty", textContent: "No model matches." }));
    if (list.length > shown) {
      frag.append(el("p", { className: "more" }, el("button", {
        type: "button", textContent: `Show all ${list.length}`,
        onclick: () => { shown = Infinity; renderModels(); },
      })));
    }
    box.replaceChildren(frag);
    renderCounts();
  }

  function buildRow(row) {
    const node = $("#row-template").content.firstElementChild.cloneNode(true);
    node.dataset.model = row.id;
    const entry = entryOf(row.id);
    $(".bot", node).textContent = row.id;
    $(".meta", node).textContent = [row.owner, row.description].filter(Boolean).join(" · ");
    $(".meta", node).title = row.description || "";
    const enable = $(".m-enable", node);
    enable.checked = entry.enable;
    enable.addEventListener("change", () => { setField(row.id, "enable", enable.checked); updateRow(node, row); });
    const alias = $(".m-alias", node);
    alias.value = entry.mapping || "";
    alias.placeholder = `${row.id} (no alias)`;
    alias.setAttribute("aria-label", `Alias for ${row.id}`);
    alias.addEventListener("input", () => {
      setField(row.id, "mapping", alias.value.trim() || null);
      updateAliasErrors();
      updateRow(node, row);
    });
    const optionsButton = $(".m-options", node);
    optionsButton.addEventListener("click", () => {
      const open = !openOptions.has(low(row.id));
      if (open) openOptions.add(low(row.id)); else openOptions.delete(low(row.id));
      renderOptions(node, row, open);
    });
    const del = $(".m-delete", node);
    del.hidden = !row.custom;
    del.addEventListener("click", () => deleteCustom(row));
    if (openOptions.has(low(row.id))) renderOptions(node, row, true);
    updateRow(node, row);
    return node;
  }

  function updateRow(node, row) {
    const entry = entryOf(row.id);
    const before = origEntryOf(row.id);
    const customBefore = orig.custom_models.some((c) => low(c.id) === low(row.id));
    node.classList.toggle("off", !entry.enable);
    node.classList.toggle("changed",
      !same({ ...DEFAULT_ENTRY, ...(before || {}) }, entry) || customBefore !== row.custom);
    const badges = $(".badges", node);
    badges.replaceChildren();
    if (row.custom) badges.append(el("span", { className: "badge", textContent: "custom" }));
    if (entry.mapping) badges.append(el("span", { className: "badge alias", textContent: `as ${entry.mapping}` }));
    if (!entry.enable) badges.append(el("span", { className: "badge", textContent: "disabled" }));
    const customized = entry.replace_response || entry.tool_mode !== DEFAULT_ENTRY.tool_mode ||
      entry.reasoning_format !== DEFAULT_ENTRY.reasoning_format || Object.keys(entry.parameters).length;
    if (customized) badges.append(el("span", { className: "badge", textContent: "options" }));
  }

  function updateAliasErrors() {
    const problems = aliasProblems();
    for (const node of document.querySelectorAll(".model")) {
      const l = low(node.dataset.model);
      const problem = problems.get(low(keyFor(node.dataset.model))) || problems.get(l);
      const input = $(".m-alias", node);
      const box = $(".alias-error", node);
      input.classList.toggle("invalid", !!problem);
      box.hidden = !problem;
      box.textContent = problem || "";
    }
    for (const k of [...invalid]) if (k.startsWith("alias:")) invalid.delete(k);
    for (const k of problems.keys()) invalid.add(`alias:${k}`);
    changed();
  }

  function renderOptions(node, row, open) {
    const box = $(".options", node);
    $(".m-options", node).setAttribute("aria-expanded", String(open));
    box.hidden = !open;
    if (!open) { box.replaceChildren(); return; }
    box.replaceChildren($("#options-template").content.cloneNode(true));
    const entry = entryOf(row.id);
    const replace = $(".o-replace", box);
    replace.checked = entry.replace_response;
    replace.addEventListener("change", () => { setField(row.id, "replace_response", replace.checked); updateRow(node, row); });
    const tool = $(".o-tool", box);
    tool.value = entry.tool_mode;
    tool.addEventListener("change", () => { setField(row.id, "tool_mode", tool.value); updateRow(node, row); });
    const reasoning = $(".o-reasoning", box);
    reasoning.value = entry.reasoning_format;
    reasoning.addEventListener("change", () => { setField(row.id, "reasoning_format", reasoning.value); updateRow(node, row); });
    const params = $(".o-params", box);
    const paramsError = $(".params-error", box);
    params.value = Object.keys(entry.parameters).length ? JSON.stringify(entry.parameters, null, 2) : "";
    params.addEventListener("input", () => {
      const key = `params:${low(row.id)}`;
      let value = null;
      let problem = null;
      try {
        value = params.value.trim() ? JSON.parse(params.value) : {};
        if (!value || typeof value !== "object" || Array.isArray(value)) problem = "Must be a JSON object, like {\"name\": value}.";
      } catch (e) {
        problem = `Not valid JSON: ${e.message}`;
      }
      params.classList.toggle("invalid", !!problem);
      paramsError.hidden = !problem;
      paramsError.textContent = problem || "";
      if (problem) { invalid.add(key); changed(); return; }
      invalid.delete(key);
      setField(row.id, "parameters", value);
      updateRow(node, row);
    });
  }

  function deleteCustom(row) {
    draft.custom_models = draft.custom_models.filter((c) => low(c.id) !== low(row.id));
    if (!row.poe) {
      delete draft.models[keyFor(row.id)];
      for (const k of [...invalid]) if (k.endsWith(`:${low(row.id)}`)) invalid.delete(k);
    }
    flash = { kind: "info", text: `Removed ${row.id}. Save to apply.` };
    renderModels();
    changed();
  }

  // ------------------------------------------------------------------ wiring
  function wire() {
    $("#save").addEventListener("click", save);
    $("#revert").addEventListener("click", () => {
      flash = null;
      setState(state);
    });
    $("#enable").addEventListener("change", (e) => { draft.enable = e.target.checked; changed(); });
    $("#allow_unlisted").addEventListener("change", (e) => { draft.allow_unlisted = e.target.checked; changed(); });

    const tokenForm = $("#token-form");
    $("#token-edit").addEventListener("click", () => {
      tokenForm.hidden = false;
      $("#token-input").value = "";
      $("#token-input").focus();
    });
    $("#token-cancel").addEventListener("click", () => { tokenForm.hidden = true; });
    tokenForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("#token-input").value.trim();
      if (!value) return;
      token = { action: "set", value };
      $("#token-input").value = "";
      tokenForm.hidden = true;
      changed();
    });
    $("#token-clear").addEventListener("click", () => {
      token = state.api_token.set ? { action: "clear" } : { action: "keep" };
      changed();
    });

    $("#custom-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const id = $("#custom-id").value.trim();
      const owner = $("#custom-owner").value.trim();
      if (!id) return;
      if (draft.custom_models.some((c) => low(c.id) === low(id))) {
        flash = { kind: "error", text: `${id} is already a custom model.` };
        renderNotices();
        return;
      }
      draft.custom_models.push({ id, owned_by: owner || null, created: Math.floor(Date.now() / 1000) });
      $("#custom-id").value = "";
      $("#custom-owner").value = "";
      flash = { kind: "info", text: `Added ${id}. Save to apply.` };
      renderModels();
      changed();
    });

    let timer = null;
    $("#search").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { shown = PAGE; renderModels(); }, 120);
    });
    for (const id of ["#filter", "#group"]) {
      $(id).addEventListener("change", () => { shown = PAGE; renderModels(); });
    }
    $("#refresh").addEventListener("click", () => load({ refresh: true, keepEdits: true }));

    window.addEventListener("beforeunload", (e) => {
      if (draft && dirty()) { e.preventDefault(); e.returnValue = ""; }
    });
    document.addEventListener("keydown", (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(); }
    });
  }

  // Notice hand edits of the file while the page is open.
  async function poll() {
    if (document.hidden || !state) return;
    let result;
    try { result = await api("api/state"); } catch (e) { return; }
    const { status, body } = result;
    if (status !== 200 || !body) return;
    if (body.version === state.version && same(body.error, state.error)) return;
    if (!dirty()) {
      setState(body);
      flash = { kind: "info", text: "models.yaml was changed on disk; this is the new version." };
    } else {
      state.error = body.error;
      flash = {
        kind: "warn", text: "models.yaml was changed on disk since you loaded it.",
        actions: [["Reload, keep my edits", () => load({ keepEdits: true })]],
      };
    }
    changed();
  }

  wire();
  load();
  setInterval(poll, 5000);
})();
