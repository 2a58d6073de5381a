// A checkout: the till's amount, the customer's palm, then approved or declined, large,
// with the amount and the time the decision took.
"use strict";

(function () {
  const OP = window.OP;
  const DECLINES = {
    generic_decline: "The card was declined",
    insufficient_funds: "Insufficient funds on the card",
    expired_card: "The card has expired",
    processing_error: "The card's bank had an error",
    authentication_required: "The bank asks for another way to pay",
    processor_unavailable: "The card network cannot be reached",
    over_payment_limit: "Over your limit per payment",
    over_daily_limit: "Over your daily limit",
    currency_not_allowed: "This currency is not accepted",
    no_card_linked: "No card linked at this store",
    step_up_failed: "Wrong code",
    palm_attempts_exhausted: "Too many attempts",
    timed_out: "Timed out",
  };

  // "12.50" in minor units (two decimals), or null.
  function minor(text) {
    const m = /^\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$/.exec(text);
    if (!m) return null;
    return Number(m[1]) * 100 + Number((m[2] || "0").padEnd(2, "0"));
  }

  async function start() {
    const info = await OP.reader("info");
    const err = OP.$("#checkout-error");
    if (!info.ok || !info.body.checkout) {
      OP.notice(err, "bad", info.ok ? "This reader is not a checkout." : OP.problem(info));
      return;
    }
    const currency = info.body.checkout.currency;
    OP.$("#store-name").textContent = info.body.checkout.business;
    OP.$("#currency").textContent = currency;
    const input = OP.inputSelect(OP.$("#input"), info.body.default_input);
    const result = OP.$("#result");
    const stepUp = OP.$("#step-up");
    let pending = null;

    function show(kind, outcome, verdict, why, took) {
      result.className = "result " + kind;
      result.dataset.outcome = outcome;
      OP.$("#verdict").textContent = verdict;
      OP.$("#why").textContent = why;
      OP.$("#took").textContent = took || "";
    }

    function answer(r) {
      const ans = r.body.answer || {};
      if (r.body.status !== 200) {
        show("warn", "retry", "TRY AGAIN", ans.detail || ans.code || "Capture refused", "");
        return;
      }
      const took = "Decided in " + Math.round(ans.decision_ms || 0) + " ms at the service, " +
        Math.round(r.body.reader_ms) + " ms at the reader";
      stepUp.classList.add("hidden");
      const amount = ans.amount ? OP.money(ans.amount.minor, ans.amount.currency) :
        (ans.payment && ans.payment.amount ? OP.money(ans.payment.amount.minor, ans.payment.amount.currency) : "");
      switch (ans.outcome) {
        case "approved":
          show("ok", "approved", "APPROVED", amount + (ans.card_last4 ? " · card ending " + ans.card_last4 : ""), took);
          break;
        case "declined":
          show("bad", "declined", "DECLINED", amount + " · " + (DECLINES[ans.reason] || ans.reason || ""), took);
          break;
        case "step_up_required":
          pending = ans.payment && ans.payment.id;
          show("warn", "step_up_required", "YOUR CODE, PLEASE", (ans.step_up && ans.step_up.prompt) || "Type your payment code", took);
          stepUp.classList.remove("hidden");
          OP.$("#step-up-code").focus();
          break;
        case "not_recognised":
          show("bad", "not_recognised", "NOT RECOGNISED", "Palm not recognised at this store: pay another way" +
            (ans.palm_attempts_left ? " or try again (" + ans.palm_attempts_left + " left)" : ""), took);
          break;
        case "ambiguous":
          show("bad", "ambiguous", "TRY AGAIN", "Not sure who you are: hover your palm again", took);
          break;
        default:
          show("bad", ans.outcome || "error", String(ans.outcome || "ERROR").toUpperCase(), "", took);
      }
    }

    OP.capture(OP.$("#capture"), {
      label: "Palm photo to pay",
      onImage: async (image) => {
        err.replaceChildren();
        const amount = minor(OP.$("#amount").value);
        if (!amount) {
          OP.notice(err, "bad", "Enter the amount first, for example 12.50.");
          OP.$("#amount").focus();
          return;
        }
        show("warn", "checking", "…", "Paying " + OP.money(amount, currency), "");
        const r = await OP.reader("payments", { amount_minor: amount, image, input: input.value });
        if (!r.ok) { show("bad", "error", "ERROR", OP.problem(r), ""); return; }
        answer(r);
      },
    });

    OP.$("#step-up-send").addEventListener("click", async () => {
      if (!pending) return;
      const r = await OP.reader("payments/" + encodeURIComponent(pending) + "/step-up", { code: OP.$("#step-up-code").value });
      OP.$("#step-up-code").value = "";
      if (!r.ok) { show("bad", "error", "ERROR", OP.problem(r), ""); return; }
      answer(r);
    });
  }
  document.addEventListener("DOMContentLoaded", start);
})();
