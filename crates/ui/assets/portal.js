// The person portal: sign in with a one-time code sent to the phone linked at a business,
// see everything held, export it, leave a business, choose offers, delete or cancel.
// The session token lives in sessionStorage only (this tab, gone when it closes).
"use strict";

(function () {
  const OP = window.OP;
  const $ = OP.$;
  const el = OP.el;
  const TOKEN = "openpalm.portal.token";
  const EXPIRES = "openpalm.portal.expires";
  const CHALLENGE = "openpalm.portal.challenge";

  const errorBox = $("#portal-error");
  const statusBox = $("#portal-status");

  // ---- messages -------------------------------------------------------------------------

  function showError(text) {
    errorBox.className = "notice bad";
    errorBox.textContent = text;
  }
  function clearError() {
    errorBox.className = "";
    errorBox.textContent = "";
  }
  function say(kind, text) {
    if (!text) { statusBox.replaceChildren(); return; }
    OP.notice(statusBox, kind, text);
    // The shared notice is role=alert when bad; this box is the status region already.
    const n = statusBox.firstChild;
    if (n) n.removeAttribute("role");
  }
  function problemText(a) {
    let t = OP.problem(a);
    const left = a.body && a.body.attempts_left;
    if (typeof left === "number" && a.status === 401) t += " (tries left: " + left + ")";
    return t;
  }

  // ---- session --------------------------------------------------------------------------

  function token() { return sessionStorage.getItem(TOKEN); }
  function forget() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(EXPIRES);
  }

  // A call with the session; an ended session sends the person back to sign in.
  async function call(method, path, opts) {
    let a;
    try {
      a = await OP.call(method, path, Object.assign({ token: token() }, opts || {}));
    } catch (e) {
      showError("The service cannot be reached: " + e.message);
      return null;
    }
    if (a.status === 401) {
      forget();
      showSignedOut();
      showError("Your session ended. Sign in again. " + problemText(a));
      return null;
    }
    return a;
  }

  async function busy(button, work) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try { return await work(); } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  // ---- sign in --------------------------------------------------------------------------

  async function sendCode() {
    clearError();
    say();
    const phone = $("#phone").value.trim();
    if (!phone) { showError("Enter your phone number first."); $("#phone").focus(); return; }
    let a;
    try {
      a = await OP.call("POST", "/v1/me/sign-in", { body: { phone } });
    } catch (e) { showError("The service cannot be reached: " + e.message); return; }
    if (!a.ok) { showError(problemText(a)); $("#phone").focus(); return; }
    sessionStorage.setItem(CHALLENGE, a.body.challenge_id);
    const m = a.body.message || "a code was sent";
    say("ok", m.charAt(0).toUpperCase() + m.slice(1) + ". It is valid until " + OP.when(a.body.expires_at) + ".");
    $("#code").focus();
  }

  async function signIn() {
    clearError();
    const code = $("#code").value.trim();
    const challenge = sessionStorage.getItem(CHALLENGE);
    if (!challenge) { showError("Ask for a code first (step 1)."); $("#phone").focus(); return; }
    if (!code) { showError("Enter the code you received."); $("#code").focus(); return; }
    let a;
    try {
      a = await OP.call("POST", "/v1/me/sessions", { body: { challenge_id: challenge, code } });
    } catch (e) { showError("The service cannot be reached: " + e.message); return; }
    if (!a.ok) {
      showError(problemText(a));
      if (a.body && a.body.attempts_left === 0) sessionStorage.removeItem(CHALLENGE);
      $("#code").select();
      return;
    }
    sessionStorage.removeItem(CHALLENGE);
    sessionStorage.setItem(TOKEN, a.body.token);
    sessionStorage.setItem(EXPIRES, String(a.body.expires_at));
    $("#code").value = "";
    say();
    if (await load()) $("#me-title").focus();
  }

  async function signOut() {
    clearError();
    if (token()) {
      try { await OP.call("DELETE", "/v1/me/session", { token: token() }); } catch (_) { /* signed out here anyway */ }
    }
    forget();
    showSignedOut();
    say("ok", "You are signed out.");
  }

  function showSignedOut() {
    $("#phone").value = "";
    $("#code").value = "";
    $("#me").classList.add("hidden");
    $("#who").classList.add("hidden");
    $("#signed-out").classList.remove("hidden");
    for (const id of ["enrollment", "businesses", "purchases", "entries", "consents", "match-log", "audit", "export-box", "notices"]) {
      $("#" + id).replaceChildren();
    }
    $("#audit-section").classList.add("hidden");
  }

  function showSignedIn() {
    $("#signed-out").classList.add("hidden");
    $("#me").classList.remove("hidden");
    $("#who").classList.remove("hidden");
    const exp = Number(sessionStorage.getItem(EXPIRES));
    $("#session-line").textContent = exp ? "Your session ends at " + OP.when(exp) + "." : "";
  }

  // ---- what is held ---------------------------------------------------------------------

  function money(m) {
    if (!m) return "";
    const exp = m.decimal && m.decimal.includes(".") ? m.decimal.split(".")[1].length : 0;
    return OP.money(m.minor, m.currency, exp);
  }
  function words(s) { return s ? String(s).replace(/_/g, " ") : ""; }
  function mono(s) { return el("span", { class: "mono" }, s || ""); }

  const KINDS = { member_id: "Member ID", payment_token: "Card (processor token)", phone: "Phone number" };

  function renderEnrollment(me) {
    const e = me.enrollment;
    const hands = e.hands.length
      ? e.hands.map((h) => h.hand.charAt(0).toUpperCase() + h.hand.slice(1) + " hand: " + h.templates + (h.templates === 1 ? " template" : " templates")).join("; ")
      : "no templates";
    $("#enrollment").replaceChildren(
      el("p", {}, "Enrolled on " + OP.when(e.enrolled_at) + ". " + hands + "."),
      el("p", { class: "muted small" }, "A template is a code computed from the lines of your palm. No picture of your hand is kept, and templates are never shown, not even to you."));
  }

  function renderBusinesses(me) {
    const box = $("#businesses");
    if (!me.businesses.length) {
      box.replaceChildren(el("p", { class: "muted" }, "No business knows you any more."));
      return;
    }
    box.replaceChildren(...me.businesses.map((b) => {
      const links = b.links.length
        ? el("ul", {}, b.links.map((l) => el("li", {},
            (KINDS[l.kind] || words(l.kind)) + ": ",
            l.value === null || l.value === undefined ? el("em", {}, "linked (kept only as a keyed hash)") : mono(l.value),
            el("span", { class: "muted small" }, " · since " + OP.when(l.created_at)))))
        : el("p", { class: "muted" }, "No accounts linked.");
      const offersId = "offers-" + b.business_id;
      const offers = el("input", { type: "checkbox", id: offersId, "data-testid": offersId, checked: b.offers_opted_in });
      offers.addEventListener("change", () => setOffers(b, offers));
      const leave = el("button", { type: "button", class: "danger", "data-testid": "leave-" + b.business_id }, "Leave " + b.name);
      leave.addEventListener("click", () => leaveBusiness(b, leave));
      return el("article", { class: "card", "data-business": b.business_id, "aria-labelledby": "b-" + b.business_id },
        el("h3", { id: "b-" + b.business_id }, b.name),
        el("p", {}, "Knows you as ", mono(b.pseudonymous_id), el("span", { class: "muted small" }, " · since " + OP.when(b.joined_at))),
        el("h4", { class: "small" }, "Accounts you linked there"),
        links,
        el("label", { class: "check", for: offersId }, offers,
          el("span", {}, "Show me offers from " + b.name + " (computed from my purchases there only)")),
        leave);
    }));
  }

  function renderPurchases(me) {
    $("#purchases").replaceChildren(OP.table([
      { title: "When", value: (p) => OP.when(p.created_at) },
      { title: "Store", value: (p) => p.business_name },
      { title: "Amount", value: (p) => money(p.amount) },
      { title: "Status", value: (p) => el("span", { class: "tag" }, words(p.status)) },
      { title: "Captured", value: (p) => money(p.captured) },
      { title: "Refunded", value: (p) => money(p.refunded) },
      { title: "Card", value: (p) => (p.card_last4 ? el("span", { class: "nowrap" }, "•••• " + p.card_last4) : "") },
      { title: "Why declined", value: (p) => words(p.decline_reason) },
    ], me.purchases, "No purchases by palm."));
  }

  function businessNames(me) {
    const n = {};
    for (const c of me.consents) n[c.business_id] = c.business_name;
    for (const m of me.match_log) n[m.business_id] = m.business_name;
    for (const b of me.businesses) n[b.business_id] = b.name;
    return n;
  }

  function renderEntries(me) {
    const names = businessNames(me);
    $("#entries").replaceChildren(OP.table([
      { title: "When", value: (e) => OP.when(e.at) },
      { title: "Business", value: (e) => names[e.business_id] || e.business_id },
      { title: "Event", value: (e) => mono(e.event_id) },
      { title: "Gate", value: (e) => mono(e.gate || "attendant") },
      { title: "Way", value: (e) => e.direction },
      { title: "Decision", value: (e) => el("span", { class: "tag" }, words(e.verdict)) },
      { title: "Reason", value: (e) => words(e.reason) },
    ], me.entries, "No entries at events."));
  }

  function renderConsents(me) {
    const box = $("#consents");
    if (!me.consents.length) { box.replaceChildren(el("p", { class: "muted" }, "No consents on record.")); return; }
    box.replaceChildren(...me.consents.map((c) => el("div", { class: "card" },
      el("p", {}, el("strong", {}, c.business_name), " · " + OP.when(c.given_at) + " · at " + c.site),
      el("p", { class: "small muted" }, "Device ", mono(c.device_id), " · consent text version " + c.text_version),
      el("details", {}, el("summary", {}, "The exact text you agreed to"), el("div", { class: "consent" }, c.text)))));
  }

  function renderMatchLog(me) {
    $("#match-log").replaceChildren(OP.table([
      { title: "When", value: (m) => OP.when(m.at) },
      { title: "Business", value: (m) => m.business_name },
      { title: "Site", value: (m) => m.site },
      { title: "Device", value: (m) => mono(m.device_id) },
      { title: "Decision", value: (m) => el("span", { class: "tag" }, words(m.decision)) },
      { title: "Outcome", value: (m) => words(m.outcome) },
    ], me.match_log, "Your palm has not been used to identify you yet."));
  }

  function renderNotices(me) {
    const box = $("#notices");
    box.replaceChildren();
    if (me.cancellation) {
      const c = me.cancellation;
      box.append(el("div", { class: "notice warn", "data-testid": "cancelling" },
        "You cancelled your account on " + OP.when(c.requested_at) + ". Your palm no longer works. Everything is deleted once your " +
        c.outstanding_payments + " open payment" + (c.outstanding_payments === 1 ? " is" : "s are") +
        " settled; the receipt will be ", mono(c.receipt_id), " (check it at ",
        el("a", { href: "/v1/deletion-receipts/" + encodeURIComponent(c.receipt_id) }, "/v1/deletion-receipts/" + c.receipt_id), ")."));
    }
    if (me.dormancy_notice_at) {
      box.append(el("div", { class: "notice warn", "data-testid": "dormant" },
        "Your palm has not been used for two years. On " + OP.when(me.dormancy_notice_at) +
        " we told the businesses that it will be deleted unless it is used again within 30 days."));
    }
  }

  async function load() {
    const a = await call("GET", "/v1/me");
    if (!a) return false;
    if (!a.ok) { showError(problemText(a)); return false; }
    const me = a.body;
    showSignedIn();
    renderNotices(me);
    renderEnrollment(me);
    renderBusinesses(me);
    renderPurchases(me);
    renderEntries(me);
    renderConsents(me);
    renderMatchLog(me);
    const n = me.businesses.length;
    $("#who-text").textContent = "Signed in · " + n + (n === 1 ? " business" : " businesses");
    return true;
  }

  // ---- actions --------------------------------------------------------------------------

  // Offer `data` as a file to save: a link, clicked once for the person.
  function offerDownload(box, data, name, label, testid) {
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: name, class: "button", "data-testid": testid }, label);
    box.replaceChildren(el("p", {}, a));
    a.click();
  }

  async function exportData(button) {
    clearError();
    const a = await busy(button, () => call("GET", "/v1/me/export"));
    if (!a) return;
    if (!a.ok) { showError(problemText(a)); return; }
    const day = new Date().toISOString().slice(0, 10);
    offerDownload($("#export-box"), a.body, "openpalm-export-" + day + ".json", "Save openpalm-export-" + day + ".json", "export-link");
    say("ok", "Your data is ready: the file is being saved. If it is not, use the link above.");
  }

  async function showAudit(button) {
    clearError();
    const a = await busy(button, () => call("GET", "/v1/me/audit"));
    if (!a) return;
    if (!a.ok) { showError(problemText(a)); return; }
    $("#audit-section").classList.remove("hidden");
    $("#audit").replaceChildren(
      el("p", { class: "muted small" }, "Every request that concerned you, chained so that no record can be changed or removed unnoticed."),
      OP.table([
        { title: "When", value: (r) => OP.when(r.at) },
        { title: "Who", value: (r) => r.actor },
        { title: "What", value: (r) => mono(r.action) },
        { title: "Answer", value: (r) => String(r.status) },
        { title: "Request", value: (r) => mono(r.request_id) },
      ], a.body, "No records yet."));
    $("#audit-title").focus();
  }

  async function setOffers(b, box) {
    clearError();
    box.disabled = true;
    const a = await call("PUT", "/v1/me/businesses/" + encodeURIComponent(b.business_id) + "/offers", { body: { opted_in: box.checked } });
    box.disabled = false;
    if (!a) return;
    if (!a.ok) { box.checked = !box.checked; showError(problemText(a)); return; }
    say("ok", box.checked ? "You will see offers from " + b.name + "." : "No more offers from " + b.name + ".");
  }

  async function leaveBusiness(b, button) {
    clearError();
    const yes = await OP.confirm("Leave " + b.name + "? It loses your membership, the accounts you linked there and your settings, and can no longer recognise your palm. Other businesses are not affected.", "Leave " + b.name);
    if (!yes) { button.focus(); return; }
    const a = await busy(button, () => call("DELETE", "/v1/me/businesses/" + encodeURIComponent(b.business_id)));
    if (!a) return;
    if (!a.ok) { showError(problemText(a)); return; }
    await load();
    say("ok", "You left " + b.name + ".");
    $("#businesses-title").setAttribute("tabindex", "-1");
    $("#businesses-title").focus();
  }

  function deleted(receiptId, receipt, what) {
    forget();
    showSignedOut();
    const url = "/v1/deletion-receipts/" + encodeURIComponent(receiptId);
    const box = el("div", { class: "notice ok", "data-testid": "deleted", tabindex: "-1" },
      el("p", {}, what + " Your receipt ID is ", el("strong", { class: "mono", "data-testid": "receipt-id" }, receiptId), "."),
      el("p", {}, "Anyone can check it at ", el("a", { href: url }, url),
        ": it is signed by the service and names nobody (the subject is a hash)."));
    const keep = el("div", {});
    box.append(keep);
    statusBox.replaceChildren(box);
    if (receipt) {
      const blob = new Blob([JSON.stringify(receipt, null, 2)], { type: "application/json" });
      keep.append(el("p", {}, el("a", { href: URL.createObjectURL(blob), download: "openpalm-deletion-receipt-" + receiptId + ".json" }, "Save the signed receipt")));
    }
    box.focus();
  }

  async function deleteMe(button) {
    clearError();
    const yes = await OP.confirm("Delete all your data now, everywhere? Your palm templates are destroyed and cannot be recovered; every business loses you. This cannot be undone.", "Delete everything");
    if (!yes) { button.focus(); return; }
    const a = await busy(button, () => call("POST", "/v1/me/delete"));
    if (!a) return;
    if (!a.ok) {
      let t = problemText(a);
      if (a.body && a.body.code === "outstanding_payments") t += " You can cancel your account instead: your palm stops working at once and everything is deleted once the payments are settled.";
      showError(t);
      return;
    }
    deleted(a.body.receipt.receipt_id, a.body, "Your data was deleted.");
  }

  async function cancelMe(button) {
    clearError();
    const yes = await OP.confirm("Cancel your account? Your palm stops working at once, and everything is deleted as soon as your open payments are settled. This cannot be undone.", "Cancel my account");
    if (!yes) { button.focus(); return; }
    const a = await busy(button, () => call("POST", "/v1/me/cancel"));
    if (!a) return;
    if (!a.ok) { showError(problemText(a)); return; }
    const c = a.body;
    if (c.state === "deleted") {
      deleted(c.receipt_id, c.receipt, "Your account is cancelled and your data was deleted.");
      return;
    }
    await load();
    say("ok", "Your account is cancelled: your palm no longer works. Everything will be deleted once your open payments are settled, with receipt " + c.receipt_id + ".");
  }

  // ---- wiring ---------------------------------------------------------------------------

  function onEnter(input, fn) {
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); fn(); } });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const send = $("#send-code");
    const signin = $("#sign-in");
    send.addEventListener("click", () => busy(send, sendCode));
    signin.addEventListener("click", () => busy(signin, signIn));
    onEnter($("#phone"), () => send.click());
    onEnter($("#code"), () => signin.click());
    $("#sign-out").addEventListener("click", signOut);
    $("#export").addEventListener("click", (e) => exportData(e.currentTarget));
    $("#show-audit").addEventListener("click", (e) => showAudit(e.currentTarget));
    $("#delete-me").addEventListener("click", (e) => deleteMe(e.currentTarget));
    $("#cancel-me").addEventListener("click", (e) => cancelMe(e.currentTarget));
    if (token()) load(); else showSignedOut();
  });
})();
