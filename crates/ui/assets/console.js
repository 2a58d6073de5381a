// The business console: sign in with an API key (kept in sessionStorage only), then
// today's figures, devices, events and tickets, API keys, webhooks and payments, all
// through the /v1 API of this origin. Every error shows its problem detail in
// #console-error; every create sends an Idempotency-Key.
"use strict";

(function () {
  const OP = window.OP;
  const $ = OP.$;
  const el = OP.el;
  const KEY = "openpalm.console.key";
  const TABS = ["today", "devices", "events", "keys", "webhooks", "payments"];
  const SCOPES = [
    ["keys", "create, rotate and revoke API keys"],
    ["devices", "register and revoke devices"],
    ["enroll", "enroll people at a kiosk"],
    ["identify", "identify people at a gate or checkout"],
    ["people", "link accounts, read match logs"],
    ["webhooks", "manage webhook endpoints"],
    ["events", "events, tickets, entry counts"],
    ["payments", "payments, refunds, safeguards, offers"],
  ];
  const EVENT_TYPES = [
    "person.linked", "person.unlinked", "person.deleted", "person.dormant",
    "entry.admitted", "entry.denied",
    "payment.authorized", "payment.captured", "payment.voided", "payment.refunded", "payment.failed", "payment.expired",
  ];
  // What a panel needs: the scope its list is read with.
  const NEEDS = { devices: "devices", events: "events", keys: "keys", webhooks: "webhooks", payments: "payments" };

  const S = {
    summary: null,
    tab: "today",
    devices: [], devicesNext: null,
    events: [], eventsNext: null,
    event: null, tickets: [], ticketsNext: null,
  };

  const errorBox = $("#console-error");
  const statusBox = $("#console-status");

  // ---- messages -------------------------------------------------------------------------

  function showError(text) {
    errorBox.className = "notice bad";
    errorBox.textContent = text;
  }
  function clearError() {
    errorBox.className = "";
    errorBox.textContent = "";
  }
  function say(text) {
    if (!text) { statusBox.replaceChildren(); return; }
    statusBox.replaceChildren(el("div", { class: "notice ok" }, text));
  }
  function fail(a) {
    showError(OP.problem(a));
    return null;
  }

  // ---- the key and calls ----------------------------------------------------------------

  function key() { return sessionStorage.getItem(KEY); }
  function scopes() { return (S.summary && S.summary.key.scopes) || []; }
  function may(scope) { return scopes().includes(scope); }

  // A call with the key. A refused key (revoked, rotated away) sends back to sign in.
  async function call(method, path, opts) {
    let a;
    try {
      a = await OP.call(method, path, Object.assign({ token: key() }, opts || {}));
    } catch (e) {
      showError("The service cannot be reached: " + e.message);
      return null;
    }
    if (a.status === 401) {
      sessionStorage.removeItem(KEY);
      showSignedOut();
      showError("The API key was refused; sign in again. " + OP.problem(a));
      return null;
    }
    return a;
  }

  // Run `work` with `button` disabled meanwhile.
  async function busy(button, work) {
    if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
    try { return await work(); } finally {
      if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
    }
  }

  // Every page of a cursor-paged list (at most `maxPages` pages of 200).
  async function allPages(path, maxPages) {
    const items = [];
    let cursor = null;
    for (let i = 0; i < (maxPages || 20); i++) {
      const sep = path.includes("?") ? "&" : "?";
      const a = await call("GET", path + sep + "limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      if (!a) return null;
      if (!a.ok) return fail(a);
      items.push(...a.body.items);
      cursor = a.body.next_cursor;
      if (!cursor) return { items, more: false };
    }
    return { items, more: true };
  }

  // ---- small builders -------------------------------------------------------------------

  function words(s) { return s === null || s === undefined ? "" : String(s).replace(/_/g, " "); }
  function mono(s) { return el("span", { class: "mono" }, s || ""); }
  function tag(s) { return el("span", { class: "tag" }, words(s)); }
  function money(m) {
    if (!m) return "";
    const exp = m.decimal && m.decimal.includes(".") ? m.decimal.split(".")[1].length : 0;
    return OP.money(m.minor, m.currency, exp);
  }
  function counts(map) {
    const e = Object.entries(map || {});
    return e.length ? e.map(([k, n]) => words(k) + ": " + n).join(", ") : "none";
  }
  function button(label, testid, onclick, kind) {
    const b = el("button", { type: "button", class: kind === "primary" ? null : kind || "secondary", "data-testid": testid }, label);
    b.addEventListener("click", () => onclick(b));
    return b;
  }
  // OP.table, with attributes on each row (`attrs(row)`).
  function table(columns, rows, empty, attrs) {
    const t = OP.table(columns, rows, empty);
    if (attrs && rows && rows.length) {
      OP.$$("tbody tr", t).forEach((tr, i) => {
        for (const [k, v] of Object.entries(attrs(rows[i]))) tr.setAttribute(k, v);
      });
    }
    return t;
  }
  function stat(label, value, testid, extra) {
    return el("div", { class: "stat", "data-testid": testid },
      el("span", { class: "n" }, String(value)), label, extra ? el("span", { class: "small muted" }, " " + extra) : null);
  }
  function lacks(box, scope) {
    box.replaceChildren(el("div", { class: "notice warn" },
      "This API key lacks the " + scope + " scope, so this section cannot be shown. Sign in with a key that has it."));
  }
  // A secret, shown once. Only one is on the page at a time.
  function showSecret(box, what, secret) {
    OP.$$(".secret-once").forEach((n) => n.remove());
    const code = el("code", { class: "mono", "data-testid": "secret" }, secret);
    const copy = el("button", { type: "button", class: "secondary" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copy.textContent = "Copied";
      } catch (_) {
        const r = document.createRange();
        r.selectNodeContents(code);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(r);
        copy.textContent = "Selected: copy it now";
      }
    });
    const done = el("button", { type: "button", class: "secondary" }, "I have stored it");
    const card = el("div", { class: "secret secret-once", role: "status", tabindex: "-1" },
      el("p", {}, el("strong", {}, what + ": "), code),
      el("p", { class: "small" }, "Store it now: it will not be shown again."),
      el("div", { class: "row" }, copy, done));
    done.addEventListener("click", () => card.remove());
    box.replaceChildren(card);
    card.focus();
  }
  function toLocalInput(secs) {
    const d = new Date(secs * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
  }
  function fromLocalInput(v) {
    if (!v) return null;
    const t = new Date(v).getTime();
    return isNaN(t) ? null : Math.floor(t / 1000);
  }

  // ---- sign in --------------------------------------------------------------------------

  async function signIn() {
    clearError();
    say();
    const k = $("#api-key").value.trim();
    if (!k) { showError("Paste an API key first."); $("#api-key").focus(); return; }
    if (!/^op_(test|live)_/.test(k)) {
      showError("This is not an OpenPalm API key: it starts with op_test_ or op_live_.");
      $("#api-key").focus();
      return;
    }
    sessionStorage.setItem(KEY, k);
    if (await start()) $("#api-key").value = "";
  }

  // Read the summary with the stored key and open the console.
  async function start() {
    const a = await call("GET", "/v1/summary");
    if (!a) return false;
    if (!a.ok) { sessionStorage.removeItem(KEY); fail(a); return false; }
    S.summary = a.body;
    showSignedIn();
    const wanted = location.hash.slice(1);
    select(TABS.includes(wanted) ? wanted : "today", false);
    return true;
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    showSignedOut();
    clearError();
    say("Signed out. The key is no longer kept in this tab.");
    $("#api-key").focus();
  }

  function showSignedOut() {
    S.summary = null;
    $("#console").classList.add("hidden");
    $("#who").classList.add("hidden");
    $("#signed-out").classList.remove("hidden");
    for (const id of ["today-body", "devices-list", "events-list", "event-detail", "keys-list", "keys-secret", "webhooks-list", "webhooks-secret", "payments-list"]) {
      $("#" + id).replaceChildren();
    }
  }

  function showSignedIn() {
    const s = S.summary;
    $("#signed-out").classList.add("hidden");
    $("#console").classList.remove("hidden");
    $("#who").classList.remove("hidden");
    $("#who-text").replaceChildren(s.business.name + " · ",
      el("span", { class: "tag", "data-testid": "environment" }, s.key.environment === "live" ? "live key" : "test key"));
  }

  // ---- tabs -----------------------------------------------------------------------------

  function select(name, focus) {
    S.tab = name;
    for (const t of TABS) {
      const b = $("#tab-" + t);
      const on = t === name;
      b.setAttribute("aria-selected", on ? "true" : "false");
      b.tabIndex = on ? 0 : -1;
      $("#panel-" + t).classList.toggle("hidden", !on);
    }
    history.replaceState(null, "", "#" + name);
    if (focus) $("#tab-" + name).focus();
    clearError();
    say();
    refresh(name);
  }

  function refresh(name) {
    const need = NEEDS[name];
    const box = { devices: "#devices-list", events: "#events-list", keys: "#keys-list", webhooks: "#webhooks-list", payments: "#payments-list" }[name];
    if (need && !may(need)) { lacks($(box), need); return; }
    ({ today: loadToday, devices: loadDevices, events: loadEvents, keys: loadKeys, webhooks: loadWebhooks, payments: loadPayments })[name]();
  }

  function tabKeys(e) {
    const i = TABS.indexOf(S.tab);
    let j = null;
    if (e.key === "ArrowRight") j = (i + 1) % TABS.length;
    else if (e.key === "ArrowLeft") j = (i - 1 + TABS.length) % TABS.length;
    else if (e.key === "Home") j = 0;
    else if (e.key === "End") j = TABS.length - 1;
    if (j === null) return;
    e.preventDefault();
    select(TABS[j], true);
  }

  // ---- today ----------------------------------------------------------------------------

  async function loadToday() {
    const a = await call("GET", "/v1/summary");
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    S.summary = a.body;
    renderToday(a.body);
  }

  function renderToday(s) {
    const e = s.entries;
    const p = s.payments;
    // Sections that do not apply are null and left out.
    $("#today-body").replaceChildren(...[
      el("p", { class: "small muted", "data-testid": "key-info" },
        "Signed in to " + s.business.name + " with key " + s.key.id + " (" + s.key.environment + "). It may use: " +
        (s.key.scopes.length ? s.key.scopes.join(", ") : "nothing") + "."),
      el("h3", {}, "People"),
      el("div", { class: "grid stats" },
        stat("members", s.members.total, "today-members", s.members.joined_today ? "(" + s.members.joined_today + " joined today)" : ""),
        stat("member IDs linked", s.links.member_id || 0, "today-links-member_id"),
        stat("cards linked", s.links.payment_token || 0, "today-links-payment_token"),
        stat("phones linked", s.links.phone || 0, "today-links-phone")),
      el("h3", {}, "Entries today"),
      el("div", { class: "grid stats" },
        stat("admitted", e.admitted, "today-admitted"),
        stat("denied", e.denied, "today-denied"),
        stat("exits", e.exited, "today-exited")),
      e.denied ? el("p", {}, "Denied by reason: " + counts(e.denied_by_reason)) : null,
      table([
        { title: "Event", value: (v) => v.name },
        { title: "Admitted", value: (v) => String(v.admitted) },
        { title: "Denied", value: (v) => String(v.denied) },
        { title: "Exits", value: (v) => String(v.exited) },
        { title: "Denied by reason", value: (v) => counts(v.denied_by_reason) },
      ], e.events, "No entry decisions today.", (v) => ({ "data-event": v.event_id })),
      el("h3", {}, "Checkout today"),
      el("div", { class: "grid stats" },
        stat("payments approved", p.approved, "today-approved"),
        stat("payments declined", p.declined, "today-declined"),
        stat("opened", p.opened, "today-opened"),
        el("div", { class: "stat", "data-testid": "today-captured" },
          el("span", { class: "n" }, p.amounts.length ? p.amounts.map((m) => money(m.captured)).join(" + ") : "—"), "captured")),
      p.declined ? el("p", {}, "Declined by reason: " + counts(p.declined_by_reason)) : null,
      p.opened ? el("p", {}, "By status now: " + counts(p.by_status)) : null,
      table([
        { title: "Currency", value: (m) => m.currency },
        { title: "Approved", value: (m) => money(m.approved) },
        { title: "Captured", value: (m) => money(m.captured) },
        { title: "Refunded", value: (m) => money(m.refunded) },
      ], p.amounts, "No payments today."),
      el("p", { class: "small muted" },
        "Today: since " + OP.when(s.day_start) + " (midnight UTC by the service's clock). As of " + OP.when(s.at) + "."),
    ].filter((n) => n !== null));
  }

  // ---- devices --------------------------------------------------------------------------

  async function loadDevices(more) {
    const box = $("#devices-list");
    if (!more) { S.devices = []; S.devicesNext = null; }
    const q = "/v1/devices?limit=50" + (more && S.devicesNext ? "&cursor=" + encodeURIComponent(S.devicesNext) : "");
    const a = await call("GET", q);
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    S.devices.push(...a.body.items);
    S.devicesNext = a.body.next_cursor;
    $("#devices-more").classList.toggle("hidden", !S.devicesNext);
    box.replaceChildren(table([
      { title: "Device", value: (d) => mono(d.id) },
      { title: "Kind", value: (d) => d.kind },
      { title: "Site", value: (d) => d.site },
      { title: "State", value: (d) => (d.revoked_at ? el("span", { class: "tag" }, "revoked " + OP.when(d.revoked_at)) : tag("live")) },
      { title: "Registered", value: (d) => OP.when(d.created_at) },
      { title: "Public key", value: (d) => el("span", { class: "mono", title: d.public_key }, d.public_key.slice(0, 12) + "…") },
      { title: "", value: (d) => (d.revoked_at ? "" : button("Revoke", "revoke-" + d.id, (b) => revokeDevice(d, b), "danger")) },
    ], S.devices, "No devices yet: register a kiosk, a gate or a checkout below.", (d) => ({ "data-device": d.id })));
  }

  async function registerDevice(b) {
    clearError();
    const body = {
      kind: $("#device-kind").value,
      site: $("#device-site").value.trim(),
      public_key: $("#device-public-key").value.trim(),
    };
    if (!body.site) { showError("Give the device's site."); $("#device-site").focus(); return; }
    if (!body.public_key) { showError("Paste the public key the reader shows."); $("#device-public-key").focus(); return; }
    const a = await busy(b, () => call("POST", "/v1/devices", { body, idempotent: true }));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    $("#device-public-key").value = "";
    say("Registered " + a.body.kind + " " + a.body.id + " at " + a.body.site + ".");
    await loadDevices();
  }

  async function revokeDevice(d, b) {
    clearError();
    const yes = await OP.confirm("Revoke the " + d.kind + " at " + d.site + " (" + d.id + ")? Its captures are refused from now on. This cannot be undone.", "Revoke device");
    if (!yes) { b.focus(); return; }
    const a = await busy(b, () => call("POST", "/v1/devices/" + encodeURIComponent(d.id) + "/revoke"));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    say("Revoked " + d.kind + " " + d.id + ".");
    await loadDevices();
  }

  // ---- events ---------------------------------------------------------------------------

  async function loadEvents(more) {
    if (!more) { S.events = []; S.eventsNext = null; fillEventForm(); }
    const q = "/v1/events?limit=50" + (more && S.eventsNext ? "&cursor=" + encodeURIComponent(S.eventsNext) : "");
    const a = await call("GET", q);
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    S.events.push(...a.body.items);
    S.eventsNext = a.body.next_cursor;
    $("#events-more").classList.toggle("hidden", !S.eventsNext);
    $("#events-list").replaceChildren(table([
      { title: "Event", value: (e) => e.name },
      { title: "Site", value: (e) => e.site },
      { title: "Starts", value: (e) => OP.when(e.starts_at) },
      { title: "Ends", value: (e) => OP.when(e.ends_at) },
      { title: "Doors", value: (e) => OP.when(e.doors_open_at) + " – " + OP.when(e.doors_close_at) },
      { title: "Gates", value: (e) => e.gates.length + " entry, " + e.exit_gates.length + " exit" },
      { title: "", value: (e) => button("Open", "open-" + e.id, () => openEvent(e)) },
    ], S.events, "No events yet: create one below.", (e) => ({ "data-event": e.id })));
  }

  // The create form: sensible times and the business's live gates.
  async function fillEventForm() {
    const now = Math.floor(Date.now() / 1000);
    const hour = 3600;
    const start = now - (now % hour) + 2 * hour;
    if (!$("#event-starts").value) $("#event-starts").value = toLocalInput(start);
    if (!$("#event-ends").value) $("#event-ends").value = toLocalInput(start + 3 * hour);
    if (!$("#event-doors-open").value) $("#event-doors-open").value = toLocalInput(start - hour);
    const entry = $("#event-gates");
    const exit = $("#event-exit-gates");
    if (!may("devices")) {
      for (const [box, id] of [[entry, "event-gate-ids"], [exit, "event-exit-gate-ids"]]) {
        box.replaceChildren(el("div", {},
          el("label", { for: id }, "Gate device IDs, separated by spaces (this key cannot list devices)"),
          el("input", { type: "text", id, class: "mono", spellcheck: "false" })));
      }
      return;
    }
    const all = await allPages("/v1/devices", 10);
    if (!all) return;
    const gates = all.items.filter((d) => d.kind === "gate" && !d.revoked_at);
    for (const [box, prefix] of [[entry, "event-gate-"], [exit, "event-exit-"]]) {
      if (!gates.length) {
        box.replaceChildren(el("p", { class: "muted small" }, "No live gate: register one on the Devices tab first."));
        continue;
      }
      box.replaceChildren(...gates.map((g) => el("label", { class: "check", for: prefix + g.id },
        el("input", { type: "checkbox", id: prefix + g.id, value: g.id, "data-testid": prefix + g.id }),
        el("span", {}, g.site + " ", el("span", { class: "mono small" }, g.id)))));
    }
  }

  function chosenGates(box, textId) {
    const t = $("#" + textId);
    if (t) return t.value.split(/\s+/).filter(Boolean);
    return OP.$$("input[type=checkbox]:checked", box).map((c) => c.value);
  }

  async function createEvent(b) {
    clearError();
    const body = {
      name: $("#event-name").value.trim(),
      site: $("#event-site").value.trim(),
      starts_at: fromLocalInput($("#event-starts").value),
      ends_at: fromLocalInput($("#event-ends").value),
      doors_open_at: fromLocalInput($("#event-doors-open").value),
      gates: chosenGates($("#event-gates"), "event-gate-ids"),
      exit_gates: chosenGates($("#event-exit-gates"), "event-exit-gate-ids"),
      reentry: { max_reentries: Math.max(0, parseInt($("#event-reentries").value || "0", 10) || 0) },
    };
    const close = fromLocalInput($("#event-doors-close").value);
    if (close !== null) body.doors_close_at = close;
    if (!body.name) { showError("Give the event a name."); $("#event-name").focus(); return; }
    if (!body.site) { showError("Give the event's site."); $("#event-site").focus(); return; }
    for (const [k, id, label] of [["starts_at", "event-starts", "start"], ["ends_at", "event-ends", "end"], ["doors_open_at", "event-doors-open", "doors-open time"]]) {
      if (body[k] === null) { showError("Give the event's " + label + "."); $("#" + id).focus(); return; }
    }
    const a = await busy(b, () => call("POST", "/v1/events", { body, idempotent: true }));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    $("#event-name").value = "";
    say("Created the event " + a.body.name + " (" + a.body.id + ").");
    await loadEvents();
    openEvent(a.body);
  }

  async function openEvent(e) {
    clearError();
    S.event = e;
    S.tickets = [];
    S.ticketsNext = null;
    const box = $("#event-detail");
    const close = button("Close", "close-event", () => { S.event = null; box.replaceChildren(); });
    const holderKind = el("select", { id: "ticket-holder-kind" },
      el("option", { value: "member_id" }, "Member ID (linked by the member)"),
      el("option", { value: "pseudonymous_id" }, "Pseudonymous ID"));
    const issueBtn = button("Issue ticket", "issue-ticket", issueTicket, "primary");
    box.replaceChildren(el("div", { class: "card", "data-event-detail": e.id },
      el("h3", { id: "event-title", tabindex: "-1" }, e.name),
      el("p", { class: "small muted" }, e.site + " · " + OP.when(e.starts_at) + " – " + OP.when(e.ends_at) +
        " · doors " + OP.when(e.doors_open_at) + " – " + OP.when(e.doors_close_at) +
        " · re-entries " + e.reentry.max_reentries),
      el("p", { class: "small muted" }, "Event ", mono(e.id), " · gates ", ...e.gates.map((g) => mono(g + " ")),
        e.exit_gates.length ? " · exit gates " : "", ...e.exit_gates.map((g) => mono(g + " "))),
      el("h4", {}, "Live counts"),
      el("div", { id: "event-counts", "data-testid": "event-counts" }),
      button("Refresh counts", "refresh-counts", (b) => busy(b, loadCounts)),
      el("h4", {}, "Issue a ticket"),
      el("div", { class: "row" },
        el("div", {}, el("label", { for: "ticket-holder-kind" }, "Holder by"), holderKind),
        el("div", {}, el("label", { for: "ticket-holder" }, "Holder"), el("input", { type: "text", id: "ticket-holder", spellcheck: "false" }))),
      el("div", { class: "row" },
        el("div", {}, el("label", { for: "ticket-type" }, "Ticket type"), el("input", { type: "text", id: "ticket-type", value: "standard" })),
        el("div", {}, el("label", { for: "ticket-ref" }, "Your ticket number (optional)"), el("input", { type: "text", id: "ticket-ref" }))),
      el("p", {}, issueBtn),
      el("h4", {}, "Tickets"),
      el("div", { id: "tickets", "data-testid": "tickets" }),
      el("button", { type: "button", class: "secondary hidden", id: "tickets-more", "data-testid": "tickets-more" }, "Show more tickets"),
      el("p", {}, close)));
    $("#tickets-more").addEventListener("click", (ev) => busy(ev.currentTarget, () => loadTickets(true)));
    $("#event-title").focus();
    await Promise.all([loadCounts(), loadTickets(false)]);
  }

  async function loadCounts() {
    const e = S.event;
    if (!e) return;
    const a = await call("GET", "/v1/events/" + encodeURIComponent(e.id) + "/counts");
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    const c = a.body;
    const box = $("#event-counts");
    if (!box) return;
    box.replaceChildren(
      el("div", { class: "grid stats" },
        stat("inside now", c.inside, "event-inside"),
        stat("tickets", Object.values(c.tickets).reduce((x, y) => x + y, 0), "event-tickets", "(" + counts(c.tickets) + ")")),
      el("p", {}, "Denied by reason: " + counts(c.denied_by_reason)),
      el("p", {}, "By source: " + counts(c.by_source)),
      table([
        { title: "Gate", value: (g) => mono(g.gate) },
        { title: "Admitted", value: (g) => String(g.admitted) },
        { title: "Denied", value: (g) => String(g.denied) },
        { title: "Exits", value: (g) => String(g.exited) },
      ], c.gates, "No decisions at the gates yet."),
      el("p", { class: "small muted" }, "As of " + OP.when(c.at) + "."));
  }

  async function loadTickets(more) {
    const e = S.event;
    if (!e) return;
    if (!more) { S.tickets = []; S.ticketsNext = null; }
    const q = "/v1/events/" + encodeURIComponent(e.id) + "/tickets?limit=50" +
      (more && S.ticketsNext ? "&cursor=" + encodeURIComponent(S.ticketsNext) : "");
    const a = await call("GET", q);
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    S.tickets.push(...a.body.items);
    S.ticketsNext = a.body.next_cursor;
    const box = $("#tickets");
    if (!box) return;
    $("#tickets-more").classList.toggle("hidden", !S.ticketsNext);
    box.replaceChildren(table([
      { title: "Ticket", value: (t) => el("span", { class: "mono", title: t.id }, t.id.slice(0, 12) + "…") },
      { title: "Holder", value: (t) => (t.holder ? mono(t.holder.pseudonymous_id) : el("em", {}, "erased")) },
      { title: "Type", value: (t) => t.ticket_type },
      { title: "State", value: (t) => tag(t.state) },
      { title: "Entries", value: (t) => String(t.entries) },
      { title: "Number", value: (t) => t.external_ref || "" },
      { title: "Issued", value: (t) => OP.when(t.created_at) },
      { title: "", value: (t) => (["cancelled", "transferred"].includes(t.state) ? "" : button("Cancel", "cancel-" + t.id, (b) => cancelTicket(t, b), "danger")) },
    ], S.tickets, "No tickets yet.", (t) => ({ "data-ticket": t.id })));
  }

  async function issueTicket(b) {
    clearError();
    const e = S.event;
    const kind = $("#ticket-holder-kind").value;
    const who = $("#ticket-holder").value.trim();
    if (!who) { showError("Give the holder's " + (kind === "member_id" ? "member ID" : "pseudonymous ID") + "."); $("#ticket-holder").focus(); return; }
    const spec = { holder: { [kind]: who }, ticket_type: $("#ticket-type").value.trim() || "standard" };
    const ref = $("#ticket-ref").value.trim();
    if (ref) spec.external_ref = ref;
    const a = await busy(b, () => call("POST", "/v1/events/" + encodeURIComponent(e.id) + "/tickets", { body: { tickets: [spec] }, idempotent: true }));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    if (a.body.rejected && a.body.rejected.length) {
      const r = a.body.rejected[0];
      showError("The ticket was not issued: " + r.detail + " (" + r.code + ")");
      return;
    }
    $("#ticket-holder").value = "";
    $("#ticket-ref").value = "";
    say("Issued ticket " + a.body.tickets[0].id + ".");
    await Promise.all([loadTickets(false), loadCounts()]);
  }

  async function cancelTicket(t, b) {
    clearError();
    const yes = await OP.confirm("Cancel ticket " + (t.external_ref || t.id) + "? It admits nobody from now on. This cannot be undone.", "Cancel ticket");
    if (!yes) { b.focus(); return; }
    const a = await busy(b, () => call("POST", "/v1/tickets/" + encodeURIComponent(t.id) + "/cancel"));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    say("Cancelled ticket " + t.id + ".");
    await Promise.all([loadTickets(false), loadCounts()]);
  }

  // ---- keys -----------------------------------------------------------------------------

  function fillScopes() {
    const box = $("#key-scopes");
    if (box.childElementCount) return;
    box.replaceChildren(...SCOPES.map(([s, what]) => el("label", { class: "check", for: "key-scope-" + s },
      el("input", { type: "checkbox", id: "key-scope-" + s, value: s, "data-testid": "key-scope-" + s }),
      el("span", {}, el("strong", {}, s), el("span", { class: "small muted" }, " " + what)))));
  }

  async function loadKeys() {
    fillScopes();
    const a = await call("GET", "/v1/api-keys");
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    const mine = S.summary && S.summary.key.id;
    $("#keys-list").replaceChildren(table([
      { title: "Key", value: (k) => el("span", {}, mono(k.display_prefix + "…"), k.id === mine ? el("span", { class: "tag" }, " this console") : null,
          el("br"), el("span", { class: "mono wrap small muted" }, k.id)) },
      { title: "Environment", value: (k) => tag(k.environment) },
      { title: "Scopes", value: (k) => k.scopes.join(", ") },
      { title: "Created", value: (k) => OP.when(k.created_at) },
      { title: "State", value: (k) => (k.revoked_at ? el("span", { class: "tag" }, "revoked " + OP.when(k.revoked_at)) : tag("live")) },
      { title: "", value: (k) => (k.revoked_at ? "" : el("div", { class: "row" },
          button("Rotate", "rotate-" + k.id, (b) => rotateKey(k, b)),
          button("Revoke", "revoke-" + k.id, (b) => revokeKey(k, b), "danger"))) },
    ], a.body.items, "No keys.", (k) => ({ "data-key": k.id })));
  }

  async function createKey(b) {
    clearError();
    const chosen = OP.$$("#key-scopes input:checked").map((c) => c.value);
    if (!chosen.length) { showError("Tick at least one scope."); $("#key-scope-" + SCOPES[0][0]).focus(); return; }
    const body = { environment: $("#key-environment").value, scopes: chosen };
    const a = await busy(b, () => call("POST", "/v1/api-keys", { body, idempotent: true }));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    OP.$$("#key-scopes input:checked").forEach((c) => { c.checked = false; });
    await loadKeys();
    showSecret($("#keys-secret"), "New " + a.body.environment + " key " + a.body.id, a.body.secret);
  }

  async function rotateKey(k, b) {
    clearError();
    const own = S.summary && k.id === S.summary.key.id;
    const yes = await OP.confirm("Rotate key " + k.display_prefix + "…? A new key with the same scopes replaces it, and the old one stops working at once" +
      (own ? " (this console switches to the new key)." : "."), "Rotate key");
    if (!yes) { b.focus(); return; }
    const a = await busy(b, () => call("POST", "/v1/api-keys/" + encodeURIComponent(k.id) + "/rotate", { idempotent: true }));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    if (own) {
      sessionStorage.setItem(KEY, a.body.secret);
      const s = await call("GET", "/v1/summary");
      if (s && s.ok) { S.summary = s.body; showSignedIn(); }
    }
    await loadKeys();
    showSecret($("#keys-secret"), "Replacement for " + k.display_prefix + "…: key " + a.body.id, a.body.secret);
  }

  async function revokeKey(k, b) {
    clearError();
    const own = S.summary && k.id === S.summary.key.id;
    const yes = await OP.confirm("Revoke key " + k.display_prefix + "…? Every request made with it is refused from now on. This cannot be undone." +
      (own ? " This console uses it: you will be signed out." : ""), "Revoke key");
    if (!yes) { b.focus(); return; }
    const a = await busy(b, () => call("POST", "/v1/api-keys/" + encodeURIComponent(k.id) + "/revoke"));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    if (own) { signOut(); say("The key was revoked; you are signed out."); return; }
    say("Revoked key " + k.display_prefix + "….");
    await loadKeys();
  }

  // ---- webhooks -------------------------------------------------------------------------

  function fillEventTypes() {
    const box = $("#webhook-events");
    if (box.childElementCount) return;
    box.replaceChildren(...EVENT_TYPES.map((t) => {
      const id = "webhook-event-" + t.replace(/\./g, "-");
      return el("label", { class: "check", for: id },
        el("input", { type: "checkbox", id, value: t, "data-testid": id }), el("span", { class: "mono" }, t));
    }));
  }

  async function loadWebhooks() {
    fillEventTypes();
    const a = await call("GET", "/v1/webhook-endpoints");
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    const box = $("#webhooks-list");
    if (!a.body.items.length) {
      box.replaceChildren(el("p", { class: "muted" }, "No endpoints yet: add one below."));
      return;
    }
    box.replaceChildren(...a.body.items.map((w) => {
      const del = button("Delete endpoint", "delete-" + w.id, (b) => deleteWebhook(w, b), "danger");
      const deliveries = el("div", { id: "deliveries-" + w.id, "data-testid": "deliveries-" + w.id });
      const again = button("Refresh deliveries", "refresh-deliveries-" + w.id, (b) => busy(b, () => loadDeliveries(w, deliveries)));
      const card = el("article", { class: "card", "data-endpoint": w.id, "aria-labelledby": "wh-" + w.id },
        el("h3", { id: "wh-" + w.id, class: "mono" }, w.url),
        el("p", { class: "small" }, "Sends: ", ...w.events.map((t) => el("span", { class: "tag" }, t)), el("span", { class: "muted" }, " · since " + OP.when(w.created_at) + " · "), mono(w.id)),
        el("h4", {}, "Latest deliveries"),
        deliveries,
        el("div", { class: "row" }, again, del));
      loadDeliveries(w, deliveries);
      return card;
    }));
  }

  async function loadDeliveries(w, box) {
    const a = await call("GET", "/v1/webhook-endpoints/" + encodeURIComponent(w.id) + "/deliveries?limit=20");
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    box.replaceChildren(table([
      { title: "Event", value: (d) => el("span", {}, d.event_type, el("br"), mono(d.event_id)) },
      { title: "State", value: (d) => tag(d.state) },
      { title: "Attempts", value: (d) => String(d.attempts) },
      { title: "Last status", value: (d) => (d.last_status === null || d.last_status === undefined ? "" : String(d.last_status)) },
      { title: "Last error", value: (d) => d.last_error || "" },
      { title: "Next attempt", value: (d) => (d.next_attempt_at_ms ? OP.when(d.next_attempt_at_ms / 1000) : "") },
      { title: "Created", value: (d) => OP.when(d.created_at) },
    ], a.body.items, "Nothing sent to this endpoint yet."));
  }

  async function addWebhook(b) {
    clearError();
    const url = $("#webhook-url").value.trim();
    if (!url) { showError("Give the endpoint's URL."); $("#webhook-url").focus(); return; }
    const events = OP.$$("#webhook-events input:checked").map((c) => c.value);
    const body = { url };
    if (events.length) body.events = events;
    const a = await busy(b, () => call("POST", "/v1/webhook-endpoints", { body, idempotent: true }));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    $("#webhook-url").value = "";
    OP.$$("#webhook-events input:checked").forEach((c) => { c.checked = false; });
    await loadWebhooks();
    showSecret($("#webhooks-secret"), "Signing secret of " + a.body.url, a.body.secret);
  }

  async function deleteWebhook(w, b) {
    clearError();
    const yes = await OP.confirm("Delete the endpoint " + w.url + "? Nothing more is sent to it, and its pending deliveries are cancelled.", "Delete endpoint");
    if (!yes) { b.focus(); return; }
    const a = await busy(b, () => call("DELETE", "/v1/webhook-endpoints/" + encodeURIComponent(w.id)));
    if (!a) return;
    if (!a.ok) { fail(a); return; }
    say("Deleted the endpoint " + w.url + ".");
    await loadWebhooks();
  }

  // ---- payments -------------------------------------------------------------------------

  async function loadPayments() {
    const st = $("#payment-status").value;
    const box = $("#payments-list");
    const all = await allPages("/v1/payments" + (st ? "?status=" + encodeURIComponent(st) : ""), 10);
    if (!all) return;
    const recent = all.items.slice().reverse();
    const shown = recent.slice(0, 100);
    box.replaceChildren(
      el("p", { class: "small muted" }, recent.length > shown.length || all.more
        ? "The " + shown.length + " most recent of " + (all.more ? "more than " : "") + recent.length + " payments, newest first."
        : recent.length + (recent.length === 1 ? " payment" : " payments") + ", newest first."),
      table([
        { title: "Opened", value: (p) => OP.when(p.created_at) },
        { title: "Order", value: (p) => p.order_reference },
        { title: "Amount", value: (p) => money(p.amount) },
        { title: "Status", value: (p) => el("span", {}, tag(p.status), p.processing ? el("span", { class: "small muted" }, " processing") : null) },
        { title: "Captured", value: (p) => money(p.captured) },
        { title: "Refunded", value: (p) => money(p.refunded) },
        { title: "Card", value: (p) => (p.card_last4 ? el("span", { class: "nowrap" }, "•••• " + p.card_last4) : "") },
        { title: "Why declined", value: (p) => words(p.decline_reason) },
        { title: "Customer", value: (p) => mono(p.customer || "") },
        { title: "Checkout", value: (p) => mono(p.device_id) },
        { title: "Payment", value: (p) => mono(p.id) },
      ], shown, st ? "No payments with this status." : "No payments yet.", (p) => ({ "data-payment": p.id })));
  }

  // ---- wiring ---------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    const signin = $("#sign-in");
    signin.addEventListener("click", () => busy(signin, signIn));
    $("#api-key").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); signin.click(); } });
    $("#sign-out").addEventListener("click", signOut);
    for (const t of TABS) {
      const b = $("#tab-" + t);
      b.addEventListener("click", () => select(t, false));
      b.addEventListener("keydown", tabKeys);
    }
    $("#refresh-today").addEventListener("click", (e) => busy(e.currentTarget, loadToday));
    $("#register-device").addEventListener("click", (e) => registerDevice(e.currentTarget));
    $("#devices-more").addEventListener("click", (e) => busy(e.currentTarget, () => loadDevices(true)));
    $("#events-more").addEventListener("click", (e) => busy(e.currentTarget, () => loadEvents(true)));
    $("#create-event").addEventListener("click", (e) => createEvent(e.currentTarget));
    $("#create-key").addEventListener("click", (e) => createKey(e.currentTarget));
    $("#add-webhook").addEventListener("click", (e) => addWebhook(e.currentTarget));
    $("#payment-status").addEventListener("change", () => { clearError(); loadPayments(); });
    $("#refresh-payments").addEventListener("click", (e) => busy(e.currentTarget, loadPayments));
    window.addEventListener("hashchange", () => {
      const t = location.hash.slice(1);
      if (S.summary && TABS.includes(t) && t !== S.tab) select(t, false);
    });
    if (key()) start(); else showSignedOut();
  });
})();
