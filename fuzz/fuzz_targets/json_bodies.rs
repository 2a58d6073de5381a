//! Every JSON request body of the service, parsed as the service parses it
//! (`openpalm_server::body::ApiJson`: bytes to a JSON value, the canonical re-serialisation
//! hashed for idempotency, then the value into the endpoint's type), and straight from the
//! bytes as well. The first input byte picks the endpoint's type; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openpalm_domain::model::normalise_link_value;
use openpalm_domain::protocol::{SealedCapture, SealedCaptureWire};
use openpalm_server::api::{
    admin, devices, enroll, events, identify, join, lane, me, payments, people, webhooks,
};
use serde::de::DeserializeOwned;

/// What the service does with a body before the handler sees it; returns the value.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    let direct = serde_json::from_slice::<T>(body).ok();
    let raw: serde_json::Value = serde_json::from_slice(body).ok()?;
    // The idempotency hash is taken over this; it must always be there. (It is not a fixed
    // point: without serde_json's `float_roundtrip` a long decimal may parse one ULP off,
    // so the hash is of the value as parsed, the same for the same bytes.)
    let canonical = serde_json::to_vec(&raw).expect("a parsed JSON value serialises");
    let again: serde_json::Value = serde_json::from_slice(body).expect("the same bytes parse again");
    assert_eq!(
        serde_json::to_vec(&again).expect("serialise"),
        canonical,
        "parsing is not deterministic"
    );
    let via_value = serde_json::from_value::<T>(raw).ok();
    via_value.or(direct)
}

fn captures(ws: &[SealedCaptureWire]) {
    for w in ws {
        if let Ok(c) = SealedCapture::try_from(w) {
            let _ = c.signed_bytes();
        }
    }
}

fn link(l: &people::LinkRequest) {
    let _ = normalise_link_value(l.kind, &l.value);
}

macro_rules! bodies {
    ($data:expr; $($ty:ty $(=> $then:expr)?),+ $(,)?) => {{
        let data: &[u8] = $data;
        let Some((&which, body)) = data.split_first() else { return };
        let all: &[fn(&[u8])] = &[$(|b: &[u8]| {
            #[allow(unused_variables)]
            if let Some(v) = parse::<$ty>(b) {
                $( ($then)(&v); )?
            }
        }),+];
        all[which as usize % all.len()](body);
    }};
}

fuzz_target!(|data: &[u8]| {
    bodies!(data;
        admin::CreateBusiness,
        admin::CreateKey,
        devices::RegisterDevice,
        enroll::EnrollRequest => |r: &enroll::EnrollRequest| {
            for h in &r.hands {
                captures(&h.captures);
            }
            r.links.iter().for_each(link);
        },
        events::CreateEvent,
        events::IssueTickets,
        events::TransferTicket,
        identify::IdentifyRequest,
        join::JoinRequest,
        me::SignInRequest,
        me::SessionRequest,
        me::OffersChoice,
        payments::PutSettings,
        people::LinkRequest => link,
        people::OperatorErasure,
        webhooks::CreateEndpoint,
        lane::attendant::OverrideRequest,
        lane::attendant::ManualEntryRequest,
        lane::GateRequest,
        payments::checkout::PalmRequest,
        payments::checkout::StepUpRequest,
        payments::offers::OffersConsent,
        payments::offers::CreateOffer,
        payments::CreatePayment,
        payments::CaptureRequest,
        payments::RefundRequest,
    );
});
