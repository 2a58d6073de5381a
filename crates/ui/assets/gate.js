// The gate of a palm lane: capture, then admit or deny, large, with the reason and the time.
"use strict";

(function () {
  const OP = window.OP;
  // The service's reasons as the lane shows them.
  const REASONS = {
    admitted: "Welcome in",
    reentry: "Welcome back",
    not_recognised: "Palm not recognised: use your ticket at the staffed lane",
    ambiguous: "Not sure who you are: please try again or use your ticket",
    no_ticket_for_event: "No ticket for this event on this palm",
    wrong_gate: "Your ticket is for another gate",
    event_not_open: "Doors are not open",
    already_admitted: "This ticket is already inside",
    ticket_cancelled: "This ticket was cancelled",
  };

  async function start() {
    const info = await OP.reader("info");
    const err = OP.$("#gate-error");
    if (!info.ok || !info.body.gate) {
      OP.notice(err, "bad", info.ok ? "This reader is not a gate." : OP.problem(info));
      return;
    }
    OP.$("#event-name").textContent = info.body.gate.event_name;
    const input = OP.inputSelect(OP.$("#input"), info.body.default_input);
    const result = OP.$("#result");

    function show(kind, decision, verdict, why, took, attendant) {
      OP.$("#attendant").textContent = attendant ? "Attendant: " + attendant : "";
      result.className = "result " + kind;
      result.dataset.decision = decision;
      OP.$("#verdict").textContent = verdict;
      OP.$("#why").textContent = why;
      OP.$("#took").textContent = took || "";
    }

    OP.capture(OP.$("#capture"), {
      label: "Palm photo",
      onImage: async (image) => {
        err.replaceChildren();
        show("warn", "checking", "…", "Checking", "");
        const r = await OP.reader("entries", { image, input: input.value });
        if (!r.ok) {
          show("bad", "error", "ERROR", OP.problem(r), "");
          return;
        }
        const ans = r.body.answer || {};
        const took = "Decided in " + Math.round(ans.decision_ms || 0) + " ms at the service, " +
          Math.round(r.body.reader_ms) + " ms at the reader";
        if (r.body.status !== 200) {
          // The capture itself was refused (too dark, fingers not spread, ...): guidance.
          show("warn", "retry", "TRY AGAIN", ans.detail || ans.code || "Capture refused", "");
          return;
        }
        const why = REASONS[ans.reason] || ans.reason || "";
        if (ans.decision === "admit") {
          const entries = ans.ticket && ans.ticket.entries > 1 ? REASONS.reentry : REASONS.admitted;
          show("ok", "admit", "ADMIT", entries + (ans.ticket && ans.ticket.ticket_type ? " · " + ans.ticket.ticket_type : ""), took);
        }
        else show("bad", "deny", "DENY", why, took, ans.guidance);
      },
    });
  }
  document.addEventListener("DOMContentLoaded", start);
})();
