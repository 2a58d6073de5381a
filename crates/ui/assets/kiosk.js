// The enrollment kiosk: consent first, then three captures of one hand with the engine's
// live guidance (checked on the reader, nothing kept), then the accounts to link.
"use strict";

(function () {
  const OP = window.OP;
  const NEEDED = 3;
  let info = null;
  // Captures of the hand being captured, and the hands already done.
  let images = [];
  let done = [];
  let input = null;
  const other = (h) => (h === "left" ? "right" : "left");

  function step(name) {
    for (const s of ["consent", "capture", "links", "done"]) {
      const li = OP.$("#step-" + s);
      li.classList.remove("now");
      if (s === name) li.classList.add("now");
    }
    const order = ["consent", "capture", "links", "done"];
    order.forEach((s, i) => OP.$("#step-" + s).classList.toggle("done", i < order.indexOf(name)));
    OP.$("#consent").classList.toggle("hidden", name !== "consent");
    OP.$("#capture-step").classList.toggle("hidden", name !== "capture");
    OP.$("#links").classList.toggle("hidden", name !== "links");
    OP.$("#done").classList.toggle("hidden", name !== "done");
  }

  function shots() {
    for (let i = 1; i <= NEEDED; i++) {
      const li = OP.$("#shot-" + i);
      li.classList.toggle("done", images.length >= i);
      li.classList.toggle("now", images.length + 1 === i);
      li.textContent = "Capture " + i + (images.length >= i ? " ✓" : "");
    }
  }

  function restart() {
    images = [];
    done = [];
    OP.$("#hand").disabled = false;
    OP.$("#hands-done").textContent = "";
    shots();
    OP.$("#guidance").textContent = "Show your open palm to the camera, or choose a photo";
    OP.$("#guidance").dataset.code = "";
  }

  async function onImage(image) {
    const err = OP.$("#kiosk-error");
    err.replaceChildren();
    const g = OP.$("#guidance");
    g.textContent = "Checking…";
    const r = await OP.reader("check", { image, input: input.value });
    if (!r.ok) { g.textContent = ""; OP.notice(err, "bad", OP.problem(r)); return; }
    if (!r.body.usable) {
      g.textContent = r.body.guidance;
      g.dataset.code = r.body.code || "";
      return;
    }
    images.push(image);
    shots();
    g.dataset.code = "ok";
    if (images.length >= NEEDED) {
      const hand = OP.$("#hand");
      done.push({ hand: hand.value, images });
      images = [];
      if (OP.$("#both-hands").checked && done.length === 1) {
        // The other hand next: same three captures.
        hand.value = other(hand.value);
        hand.disabled = true;
        shots();
        OP.$("#hands-done").textContent = (done[0].hand === "left" ? "Left" : "Right") + " hand done. Now your " + hand.value + " hand.";
        g.textContent = "Now hover your " + hand.value + " hand";
        return "stop";
      }
      g.textContent = "All captures done";
      step("links");
      OP.$("#member-id").focus();
      return "stop";
    }
    g.textContent = "Good. Lift your hand and hover it again (" + (NEEDED - images.length) + " to go)";
  }

  async function enroll() {
    const err = OP.$("#kiosk-error");
    err.replaceChildren();
    const btn = OP.$("#enroll");
    btn.disabled = true;
    btn.textContent = "Enrolling…";
    const partner = OP.$("#join-partner").checked && info.kiosk.partner;
    const body = {
      consent_version: info.kiosk.consent_version,
      accepted: OP.$("#agree").checked,
      input: input.value,
      hands: done,
      member_id: OP.$("#member-id").value,
      phone: OP.$("#phone").value,
      // A processor gives every card its own token; the sandbox's are its test card's
      // name with a suffix of our choosing.
      partner: partner ? { accepted: true, card_token: OP.$("#card").value + "_" + OP.newKey().slice(3, 15) } : null,
    };
    const r = await OP.reader("enrollments", body);
    btn.disabled = false;
    btn.textContent = "Enroll";
    if (!r.ok) {
      const code = r.body && r.body.code;
      OP.notice(err, "bad", OP.problem(r));
      err.firstChild.dataset.code = code || "";
      if (code === "inconsistent_captures" || code === "capture_refused" || /^(no_hand|fingers_not_spread|too_|partly_|not_a_palm)/.test(code || "")) {
        restart();
        step("capture");
      }
      return;
    }
    const handsText = done.length === 2 ? "Both your palms now work" : "Your " + done[0].hand + " palm now works";
    images = [];
    done = [];
    const lines = [OP.el("p", {}, handsText + " at " + r.body.business + ".")];
    lines.push(OP.el("p", { class: "small" }, r.body.business + " knows you as ", OP.el("span", { class: "mono", "data-testid": "pseudonym" }, r.body.pseudonymous_id)));
    if (r.body.partner) {
      lines.push(OP.el("p", {}, "You also joined " + r.body.partner.business + " with your card."));
      lines.push(OP.el("p", { class: "small" }, r.body.partner.business + " knows you by another ID: ", OP.el("span", { class: "mono" }, r.body.partner.pseudonymous_id)));
    }
    if (r.body.partner_error) {
      lines.push(OP.el("div", { class: "notice warn", role: "alert", "data-testid": "partner-error" },
        "Joining " + info.kiosk.partner + " did not work: " + (r.body.partner_error.detail || r.body.partner_error.code) +
        ". Your enrollment stands; you can join it at its own kiosk."));
    }
    if (body.phone) lines.push(OP.el("p", {}, "See, export or delete your data at any time in the portal, signing in with your phone."));
    OP.$("#done-detail").replaceChildren(...lines);
    step("done");
    OP.$("#next-person").focus();
  }

  async function start() {
    const r = await OP.reader("info");
    const err = OP.$("#kiosk-error");
    if (!r.ok || !r.body.kiosk) {
      OP.notice(err, "bad", r.ok ? "This reader is not a kiosk." : OP.problem(r));
      return;
    }
    info = r.body;
    const k = info.kiosk;
    OP.$("#kiosk-business").textContent = k.business;
    OP.$("#agree-business").textContent = k.business;
    OP.$("#consent-text").textContent = k.consent_text;
    OP.$("#consent-version").textContent = k.consent_version;
    if (k.partner) {
      OP.$("#partner-name").textContent = k.partner;
      OP.$("#card-business").textContent = k.partner;
      OP.$("#partner-row").classList.remove("hidden");
    }
    input = OP.inputSelect(OP.$("#input"), info.default_input);
    OP.$("#agree").addEventListener("change", () => { OP.$("#start").disabled = !OP.$("#agree").checked; });
    OP.$("#join-partner").addEventListener("change", () => {
      OP.$("#card-row").classList.toggle("hidden", !OP.$("#join-partner").checked);
    });
    OP.$("#start").addEventListener("click", () => {
      restart();
      step("capture");
      OP.$("#hand").focus();
    });
    OP.$("#restart-capture").addEventListener("click", restart);
    OP.$("#enroll").addEventListener("click", enroll);
    OP.$("#next-person").addEventListener("click", () => {
      for (const id of ["#agree", "#join-partner", "#both-hands"]) OP.$(id).checked = false;
      for (const id of ["#member-id", "#phone"]) OP.$(id).value = "";
      OP.$("#start").disabled = true;
      OP.$("#card-row").classList.add("hidden");
      step("consent");
    });
    OP.capture(OP.$("#capture"), { label: "Palm photo", onImage, multiple: true });
    step("consent");
  }
  document.addEventListener("DOMContentLoaded", start);
})();
