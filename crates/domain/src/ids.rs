//! Identifiers and the small enumerations of the domain.

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A fresh random identifier: `prefix` + `_` + 32 hex digits (128 random bits).
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

/// Prefixes of the identifiers the service hands out.
pub mod prefix {
    pub const BUSINESS: &str = "biz";
    pub const PERSON: &str = "per";
    pub const DEVICE: &str = "dev";
    pub const API_KEY: &str = "key";
    pub const LINK: &str = "lnk";
    pub const IDENTIFICATION: &str = "idn";
    pub const ENROLLMENT: &str = "enr";
    pub const WEBHOOK_ENDPOINT: &str = "whe";
    pub const EVENT: &str = "msg";
    /// A venue event (not a webhook event).
    pub const VENUE_EVENT: &str = "evt";
    pub const TICKET: &str = "tkt";
    /// One decision at a lane.
    pub const PASSAGE: &str = "ent";
    pub const PAYMENT: &str = "pay";
    pub const REFUND: &str = "re";
}

/// What a reader is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Enrollment and linking, with a screen for the consent text.
    Kiosk,
    /// Entry: identification only.
    Gate,
    /// Payment: identification only.
    Checkout,
}

impl DeviceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeviceKind::Kiosk => "kiosk",
            DeviceKind::Gate => "gate",
            DeviceKind::Checkout => "checkout",
        }
    }

    /// The capture purposes this kind of reader may send.
    pub fn allows(&self, purpose: Purpose) -> bool {
        match self {
            DeviceKind::Kiosk => true,
            DeviceKind::Gate | DeviceKind::Checkout => purpose == Purpose::Identify,
        }
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kiosk" => Ok(DeviceKind::Kiosk),
            "gate" => Ok(DeviceKind::Gate),
            "checkout" => Ok(DeviceKind::Checkout),
            other => Err(format!(
                "unknown device kind {other:?}: expected kiosk, gate or checkout"
            )),
        }
    }
}

/// What a capture is for; signed into the capture so that an enrollment capture cannot be
/// replayed as an identification and vice versa.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Enroll,
    Identify,
}

impl Purpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            Purpose::Enroll => "enroll",
            Purpose::Identify => "identify",
        }
    }
}

impl std::str::FromStr for Purpose {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enroll" => Ok(Purpose::Enroll),
            "identify" => Ok(Purpose::Identify),
            other => Err(format!("unknown purpose {other:?}: expected enroll or identify")),
        }
    }
}

/// Which hand a template is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandSide {
    Left,
    Right,
}

impl HandSide {
    pub fn as_str(&self) -> &'static str {
        match self {
            HandSide::Left => "left",
            HandSide::Right => "right",
        }
    }
}

impl std::str::FromStr for HandSide {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "left" => Ok(HandSide::Left),
            "right" => Ok(HandSide::Right),
            other => Err(format!("unknown hand {other:?}: expected left or right")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = new_id(prefix::PERSON);
        let b = new_id(prefix::PERSON);
        assert!(a.starts_with("per_"));
        assert_eq!(a.len(), 4 + 32);
        assert_ne!(a, b);
    }

    #[test]
    fn gates_cannot_enroll() {
        assert!(DeviceKind::Kiosk.allows(Purpose::Enroll));
        assert!(!DeviceKind::Gate.allows(Purpose::Enroll));
        assert!(!DeviceKind::Checkout.allows(Purpose::Enroll));
        assert!(DeviceKind::Checkout.allows(Purpose::Identify));
    }
}
