//! Property tests of the payment state machine against the sandbox processor: random
//! sequences of palm, step-up, capture, void and refund commands, with crashes between the
//! processor call and its commit, reconciliations, duplicated and reordered callbacks,
//! injected timeouts and a clock moved past expiry. Whatever happens, nothing captures more
//! than was authorised, refunds more than was captured, or charges twice, and once every
//! pending call is reconciled the payment agrees with the processor.

use openpalm_domain::money::Money;
use openpalm_domain::payment::{Intent, Payment, PaymentStatus};
use openpalm_domain::{Clock, MovableClock};
use openpalm_processor::sandbox::{Faults, Sandbox};
use openpalm_processor::settle::settle;
use openpalm_processor::Processor;
use proptest::prelude::*;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Op {
    Palm { crash: bool },
    StepUp { crash: bool },
    Capture { minor: u64, crash: bool },
    Void { crash: bool },
    Refund { minor: u64, crash: bool },
    Reconcile,
    Callbacks { take: usize, reverse: bool, twice: bool },
    Advance { secs: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<bool>().prop_map(|crash| Op::Palm { crash }),
        any::<bool>().prop_map(|crash| Op::StepUp { crash }),
        (1u64..7000, any::<bool>()).prop_map(|(minor, crash)| Op::Capture { minor, crash }),
        any::<bool>().prop_map(|crash| Op::Void { crash }),
        (1u64..4000, any::<bool>()).prop_map(|(minor, crash)| Op::Refund { minor, crash }),
        Just(Op::Reconcile),
        (0usize..6, any::<bool>(), any::<bool>()).prop_map(|(take, reverse, twice)| Op::Callbacks {
            take,
            reverse,
            twice
        }),
        (0i64..(9 * 86_400)).prop_map(|secs| Op::Advance { secs }),
    ]
}

const TOKENS: [&str; 5] = [
    "tok_sandbox_visa",
    "tok_sandbox_requires_verification",
    "tok_sandbox_timeout_after_auth",
    "tok_sandbox_decline",
    "tok_sandbox_timeout",
];

struct World {
    sandbox: Arc<Sandbox>,
    clock: Arc<MovableClock>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Intent>,
    inbox: Vec<Intent>,
    /// The payment as committed.
    p: Payment,
}

impl World {
    /// Run the committed pending call; a crash loses its answer (the payment stays pending).
    async fn call(&mut self, next: Payment, crash: bool) {
        self.p = next;
        let s = settle(self.sandbox.as_ref(), &self.p, self.clock.now())
            .await
            .unwrap();
        if !crash {
            self.p = s.payment;
        }
    }

    async fn reconcile(&mut self) {
        if self.p.pending.is_some() {
            let s = settle(self.sandbox.as_ref(), &self.p, self.clock.now())
                .await
                .unwrap();
            self.p = s.payment;
        }
    }

    fn drain(&mut self) {
        while let Ok(i) = self.rx.try_recv() {
            self.inbox.push(i);
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let p = &self.p;
        prop_assert!(
            p.captured_minor <= p.amount.minor,
            "captured {} of {}",
            p.captured_minor,
            p.amount.minor
        );
        prop_assert!(p.refunded_minor <= p.captured_minor);
        let ledger: Vec<_> = self
            .sandbox
            .ledger()
            .into_iter()
            .filter(|r| r.reference == p.id)
            .collect();
        // One intent per payment, however many retries and crashes.
        prop_assert!(ledger.len() <= 1, "{} intents for one payment", ledger.len());
        for r in &ledger {
            prop_assert!(r.captures <= 1, "captured {} times", r.captures);
            prop_assert!(r.intent.captured_minor <= r.intent.amount_minor);
            prop_assert!(r.intent.refunded_minor <= r.intent.captured_minor);
            // The service never believes in more money than the processor moved.
            prop_assert!(p.captured_minor <= r.intent.captured_minor);
            prop_assert!(p.refunded_minor <= r.intent.refunded_minor);
        }
        Ok(())
    }
}

async fn run(token: &str, faults: Faults, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = Arc::new(MovableClock::default());
    let sandbox = Arc::new(Sandbox::in_memory(clock.clone(), faults));
    let rx = sandbox.subscribe();
    let now = clock.now();
    let p = Payment::open(
        "pay_prop".into(),
        "biz_1".into(),
        "dev_1".into(),
        "order-1".into(),
        Money::new(5000, "EUR").unwrap(),
        now,
    );
    let mut w = World {
        sandbox,
        clock,
        rx,
        inbox: vec![],
        p,
    };
    for op in ops {
        let now = w.clock.now();
        match op {
            Op::Palm { crash } => {
                if let Ok(r) = w.p.recognised("per_1", Some(token), now) {
                    if let Ok(next) = r.start_authorize(false, now) {
                        w.call(next, crash).await;
                    }
                }
            }
            Op::StepUp { crash } => {
                if let Ok(next) = w.p.start_authorize(true, now) {
                    w.call(next, crash).await;
                }
            }
            Op::Capture { minor, crash } => {
                if let Ok(next) = w.p.start_capture(minor, now) {
                    w.call(next, crash).await;
                }
            }
            Op::Void { crash } => {
                if let Ok((next, asks)) = w.p.start_void(now) {
                    if asks {
                        w.call(next, crash).await;
                    } else {
                        w.p = next;
                    }
                }
            }
            Op::Refund { minor, crash } => {
                let id = format!("re_{}", w.p.version);
                if let Ok(next) = w.p.start_refund(&id, minor, now) {
                    w.call(next, crash).await;
                }
            }
            Op::Reconcile => w.reconcile().await,
            Op::Callbacks { take, reverse, twice } => {
                w.drain();
                let n = take.min(w.inbox.len());
                let mut batch: Vec<Intent> = w.inbox.drain(..n).collect();
                if reverse {
                    batch.reverse();
                }
                for i in &batch {
                    for _ in 0..(1 + usize::from(twice)) {
                        if let Some(next) =
                            w.p.merge(i, now)
                                .map_err(|e| TestCaseError::fail(e.to_string()))?
                        {
                            w.p = next;
                        }
                    }
                }
            }
            Op::Advance { secs } => {
                w.clock.advance(secs);
                let now = w.clock.now();
                if let Ok(next) = w.p.expire(now) {
                    w.p = next;
                }
            }
        }
        w.check()?;
    }
    // Reconcile everything, hear every callback: the payment agrees with the processor.
    w.reconcile().await;
    w.sandbox.flush_callbacks();
    w.drain();
    let now = w.clock.now();
    for i in std::mem::take(&mut w.inbox) {
        if let Some(next) =
            w.p.merge(&i, now)
                .map_err(|e| TestCaseError::fail(e.to_string()))?
        {
            w.p = next;
        }
    }
    w.check()?;
    prop_assert_eq!(w.p.pending.clone(), None);
    if let Some(r) = w.sandbox.ledger().into_iter().find(|r| r.reference == w.p.id) {
        prop_assert_eq!(w.p.captured_minor, r.intent.captured_minor);
        prop_assert_eq!(w.p.refunded_minor, r.intent.refunded_minor);
        if w.p.status == PaymentStatus::Captured || w.p.status == PaymentStatus::Refunded {
            prop_assert!(r.captures == 1);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_overcaptures_overrefunds_or_charges_twice(
        token in prop::sample::select(TOKENS.to_vec()),
        duplicate_callbacks in any::<bool>(),
        reorder_callbacks in any::<bool>(),
        timeout_every in prop::option::of(1u32..4),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let faults = Faults { duplicate_callbacks, reorder_callbacks, timeout_after_act_every: timeout_every };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(run(token, faults, ops))?;
    }
}

/// A journal keeps the sandbox's intents across a restart, so a payment pending at a crash
/// is reconciled against what the processor really did.
#[tokio::test]
async fn a_restarted_sandbox_remembers_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.jsonl");
    let clock: Arc<MovableClock> = Arc::new(MovableClock::default());
    let now = clock.now();
    let p = Payment::open(
        "pay_j".into(),
        "biz".into(),
        "dev".into(),
        "o".into(),
        Money::new(1200, "EUR").unwrap(),
        now,
    );
    let pending = p
        .recognised("per", Some("tok_sandbox_visa"), now)
        .unwrap()
        .start_authorize(false, now)
        .unwrap();
    {
        let s = Sandbox::with_journal(&path, clock.clone(), Faults::default()).unwrap();
        // The call is made; its answer is lost with the process.
        let _ = settle(&s, &pending, now).await.unwrap();
    }
    let s = Sandbox::with_journal(&path, clock.clone(), Faults::default()).unwrap();
    let done = settle(&s, &pending, now).await.unwrap().payment;
    assert_eq!(done.status, PaymentStatus::Authorized);
    assert_eq!(
        s.ledger().len(),
        1,
        "the retry after restart made no second intent"
    );
    let captured = settle(&s, &done.start_capture(1200, now).unwrap(), now)
        .await
        .unwrap()
        .payment;
    assert_eq!(
        (captured.status, captured.captured_minor),
        (PaymentStatus::Captured, 1200)
    );
}

/// Each documented decline token declines with its code; verification and timeouts behave as
/// documented.
#[tokio::test]
async fn test_cards_behave_as_documented() {
    use openpalm_domain::payment::{DeclineReason, PendingOp};
    let clock: Arc<MovableClock> = Arc::new(MovableClock::default());
    let s = Sandbox::in_memory(clock.clone(), Faults::default());
    let now = clock.now();
    let pay = |n: &str, token: &str| {
        Payment::open(
            format!("pay_{n}"),
            "biz".into(),
            "dev".into(),
            n.into(),
            Money::new(999, "USD").unwrap(),
            now,
        )
        .recognised("per", Some(token), now)
        .unwrap()
        .start_authorize(false, now)
        .unwrap()
    };
    for (token, reason) in [
        ("tok_sandbox_decline", DeclineReason::GenericDecline),
        ("tok_sandbox_insufficient_funds", DeclineReason::InsufficientFunds),
        ("tok_sandbox_expired_card", DeclineReason::ExpiredCard),
        ("tok_sandbox_processing_error", DeclineReason::ProcessingError),
        ("tok_sandbox_timeout", DeclineReason::ProcessorUnavailable),
        ("tok_unknown", DeclineReason::GenericDecline),
    ] {
        let p = settle(&s, &pay(token, token), now).await.unwrap().payment;
        assert_eq!(
            (p.status, p.decline),
            (PaymentStatus::Declined, Some(reason)),
            "{token}"
        );
    }
    let p = settle(&s, &pay("v", "tok_sandbox_requires_verification_7777"), now)
        .await
        .unwrap()
        .payment;
    assert_eq!(p.status, PaymentStatus::StepUpRequired);
    let p = settle(&s, &p.start_authorize(true, now).unwrap(), now)
        .await
        .unwrap()
        .payment;
    assert_eq!(
        (p.status, p.card_last4.as_deref()),
        (PaymentStatus::Authorized, Some("7777"))
    );
    let p = settle(&s, &pay("t", "tok_sandbox_timeout_after_auth"), now)
        .await
        .unwrap()
        .payment;
    assert_eq!(
        p.status,
        PaymentStatus::Authorized,
        "the retry with the same key found it"
    );
    // Expiry by the sandbox's clock: a capture after it is refused and the payment expires.
    clock.advance(7 * 86_400);
    let later = clock.now();
    let c = settle(&s, &p.start_capture(999, later - 1).unwrap(), later)
        .await
        .unwrap();
    assert!(c.refused.is_some());
    assert_eq!(c.payment.status, PaymentStatus::Expired);
    assert_eq!(c.payment.pending, None);
    assert_eq!(PendingOp::Void.idempotency_key("x"), "x:void");
}
