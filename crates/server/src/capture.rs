//! Sealed captures in: device, signature, clock and nonce checks (each with its own error),
//! then HPKE open, decode, template, and the image wiped.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::http::StatusCode;
use openpalm_domain::ids::Purpose;
use openpalm_domain::model::{Caller, Device};
use openpalm_domain::now_unix;
use openpalm_domain::protocol::{CaptureError, SealedCapture, SealedCaptureWire, VerifyingKey};
use openpalm_engine::{Extraction, InputKind};
use std::collections::HashSet;

/// The problem+json for a refused capture.
pub fn capture_problem(e: &CaptureError, index: usize) -> ApiError {
    let status = match e {
        CaptureError::Malformed(_) | CaptureError::Undecryptable => StatusCode::UNPROCESSABLE_ENTITY,
        CaptureError::UnknownDevice
        | CaptureError::DeviceRevoked
        | CaptureError::BadSignature
        | CaptureError::WrongPurpose { .. } => StatusCode::FORBIDDEN,
        CaptureError::StaleTimestamp { .. } => StatusCode::BAD_REQUEST,
        CaptureError::ReplayedNonce => StatusCode::CONFLICT,
    };
    ApiError::new(status, e.code(), e.to_string()).with("capture_index", index)
}

/// Check captures sent together (one device, one purpose) and record their nonces, all or
/// none. Nothing is written unless every check passes.
pub async fn verify(
    state: &AppState,
    caller: &Caller,
    wires: &[SealedCaptureWire],
    purpose: Purpose,
) -> Result<(Device, Vec<SealedCapture>), ApiError> {
    let mut captures = Vec::with_capacity(wires.len());
    for (i, w) in wires.iter().enumerate() {
        captures.push(SealedCapture::try_from(w).map_err(|e| capture_problem(&e, i))?);
    }
    let Some(first) = captures.first() else {
        return Err(ApiError::unprocessable(
            "no_captures",
            "send at least one sealed capture",
        ));
    };
    if let Some(i) = captures.iter().position(|c| c.device_id != first.device_id) {
        return Err(ApiError::unprocessable(
            "mixed_devices",
            "all captures of one request must come from the same device",
        )
        .with("capture_index", i));
    }
    let device = match state.store.device(&first.device_id).await? {
        Some(d) if d.business_id == caller.business_id => d,
        _ => return Err(capture_problem(&CaptureError::UnknownDevice, 0)),
    };
    if device.revoked_at.is_some() {
        return Err(capture_problem(&CaptureError::DeviceRevoked, 0));
    }
    // A registered key that is not an Ed25519 point verifies nothing.
    let key = VerifyingKey::from_bytes(&device.public_key)
        .map_err(|_| capture_problem(&CaptureError::BadSignature, 0))?;
    let now = now_unix();
    let mut nonces = HashSet::new();
    for (i, c) in captures.iter().enumerate() {
        c.verify_signature(&key).map_err(|e| capture_problem(&e, i))?;
        c.check_time(now).map_err(|e| capture_problem(&e, i))?;
        if c.purpose != purpose || !device.kind.allows(purpose) {
            let e = CaptureError::WrongPurpose {
                kind: device.kind.as_str(),
                purpose: purpose.as_str(),
            };
            return Err(capture_problem(&e, i));
        }
        if !nonces.insert(c.nonce) {
            return Err(capture_problem(&CaptureError::ReplayedNonce, i));
        }
    }
    // Counted once the device has proven itself (its signature), so a caller that only knows
    // a device's ID cannot spend that device's allowance.
    let what = match purpose {
        Purpose::Enroll => crate::limits::CaptureUse::Enroll,
        _ => crate::limits::CaptureUse::Identify,
    };
    state.limits.capture(&device.id, what)?;
    let hexes: Vec<String> = captures.iter().map(|c| hex::encode(c.nonce)).collect();
    if !state.store.record_nonces(&device.id, &hexes, now).await? {
        return Err(capture_problem(&CaptureError::ReplayedNonce, 0));
    }
    Ok((device, captures))
}

/// Open each capture and extract its template, off the async threads. Image bytes are wiped
/// as soon as each template is made (and on every error path).
pub async fn extract_all(
    state: &AppState,
    captures: Vec<SealedCapture>,
    input: InputKind,
) -> Result<Vec<Extraction>, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(captures.len());
        for (i, c) in captures.iter().enumerate() {
            // `Zeroizing` wipes the opened image when it goes out of scope.
            let image = c
                .open(state.keys.hpke_private())
                .map_err(|e| capture_problem(&e, i))?;
            let extraction = state.engine.extract(&image, input).map_err(|e| {
                ApiError::unprocessable(e.code(), e.to_string())
                    .with("capture_index", i)
                    .with("capture_refused", true)
            })?;
            out.push(extraction);
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal("extraction task", e))?
}
