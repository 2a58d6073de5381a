// OpenPalm pages: what every page shares. No framework; every page is a module of its own
// that imports nothing and uses `window.OP`.
"use strict";

(function () {
  const OP = {};

  // Call a JSON endpoint of this origin. Resolves to {status, body, headers}; a problem+json
  // answer is not an exception (pages show its `detail`), a network failure is.
  OP.call = async function (method, path, { body, token, idempotent, headers } = {}) {
    const h = Object.assign({ accept: "application/json" }, headers || {});
    if (body !== undefined) h["content-type"] = "application/json";
    if (token) h["authorization"] = "Bearer " + token;
    if (idempotent) h["idempotency-key"] = OP.newKey();
    const res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    let parsed = null;
    const text = await res.text();
    if (text) {
      try { parsed = JSON.parse(text); } catch (_) { parsed = { detail: text }; }
    }
    return { status: res.status, ok: res.ok, body: parsed, headers: res.headers };
  };

  // A random key for Idempotency-Key headers.
  OP.newKey = function () {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return "ui_" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  };

  // The human line of an error answer.
  OP.problem = function (answer) {
    const b = answer.body || {};
    return (b.title ? b.title + ": " : "") + (b.detail || b.code || ("HTTP " + answer.status));
  };

  // Build an element: el("td", {class: "mono"}, "text", child...). Text is always text.
  OP.el = function (tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  };

  OP.$ = (sel, root) => (root || document).querySelector(sel);
  OP.$$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // Show a notice in `box` (an element): kind ok | bad | warn.
  OP.notice = function (box, kind, text) {
    box.replaceChildren(OP.el("div", { class: "notice " + kind, role: kind === "bad" ? "alert" : "status" }, text));
  };

  // A table of rows: columns [{title, value: row => string|Node}].
  OP.table = function (columns, rows, empty) {
    if (!rows || rows.length === 0) return OP.el("p", { class: "muted" }, empty || "Nothing yet.");
    return OP.el("div", { class: "table-wrap" },
      OP.el("table", {},
        OP.el("thead", {}, OP.el("tr", {}, columns.map((c) => OP.el("th", { scope: "col" }, c.title)))),
        OP.el("tbody", {}, rows.map((r) => OP.el("tr", {}, columns.map((c) => OP.el("td", { class: c.class || null }, c.value(r))))))));
  };

  // Unix seconds (or an RFC 3339 string) as local date and time.
  OP.when = function (t) {
    if (t === null || t === undefined || t === "") return "";
    const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
    return isNaN(d) ? String(t) : d.toLocaleString();
  };

  // Minor units in a currency as the person reads them.
  OP.money = function (minor, currency, exponent) {
    const e = exponent === undefined ? 2 : exponent;
    const v = Number(minor) / Math.pow(10, e);
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(v);
    } catch (_) {
      return v.toFixed(e) + " " + currency;
    }
  };

  // Ask before doing something that cannot be undone. Resolves true or false.
  OP.confirm = function (question, yesLabel) {
    return new Promise((resolve) => {
      const yes = OP.el("button", { class: "danger", type: "button", "data-testid": "confirm-yes" }, yesLabel || "Yes");
      const no = OP.el("button", { class: "secondary", type: "button", "data-testid": "confirm-no" }, "Cancel");
      const d = OP.el("dialog", { "aria-labelledby": "confirm-q" },
        OP.el("p", { id: "confirm-q" }, question), OP.el("div", { class: "row" }, no, yes));
      document.body.append(d);
      const done = (v) => { d.close(); d.remove(); resolve(v); };
      yes.addEventListener("click", () => done(true));
      no.addEventListener("click", () => done(false));
      d.addEventListener("cancel", (e) => { e.preventDefault(); done(false); });
      d.showModal();
      no.focus();
    });
  };

  window.OP = OP;
})();
