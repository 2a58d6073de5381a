//! The OpenAPI 3.1 document, built from the route table ([`super::routes`]) and the request
//! body schemas, so that it lists exactly the routes the router serves.

use super::{routes, Access};
use crate::problem::PROBLEM_JSON;
use serde_json::{json, Map, Value};

fn schemas() -> Value {
    let capture = json!({
        "type": "object",
        "required": ["device_id", "nonce", "timestamp", "purpose", "enc", "ciphertext", "signature"],
        "properties": {
            "device_id": {"type": "string"},
            "nonce": {"type": "string", "contentEncoding": "base64", "description": "16 random bytes"},
            "timestamp": {"type": "integer", "description": "Unix seconds; within 60 s of the service clock"},
            "purpose": {"type": "string", "enum": ["enroll", "identify"]},
            "enc": {"type": "string", "contentEncoding": "base64", "description": "HPKE encapsulated key"},
            "ciphertext": {"type": "string", "contentEncoding": "base64", "description": "HPKE ciphertext of the image; AAD = header"},
            "signature": {"type": "string", "contentEncoding": "base64", "description": "Ed25519 over the canonical bytes"}
        }
    });
    let link = json!({
        "type": "object", "required": ["kind", "value"],
        "properties": {
            "kind": {"type": "string", "enum": ["member_id", "payment_token", "phone"]},
            "value": {"type": "string"}
        }
    });
    json!({
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "code"],
            "properties": {
                "type": {"type": "string", "format": "uri"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "code": {"type": "string"}
            }
        },
        "SealedCapture": capture,
        "LinkRequest": link,
        "CreateBusiness": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "environment": {"type": "string", "enum": ["test", "live"]}}
        },
        "CreateApiKey": {
            "type": "object", "required": ["environment", "scopes"],
            "properties": {
                "environment": {"type": "string", "enum": ["test", "live"]},
                "scopes": {"type": "array", "items": {"type": "string", "enum": ["keys", "devices", "enroll", "identify", "people", "webhooks", "events", "payments"]}}
            }
        },
        "RegisterDevice": {
            "type": "object", "required": ["kind", "site", "public_key"],
            "properties": {
                "kind": {"type": "string", "enum": ["kiosk", "gate", "checkout"]},
                "site": {"type": "string"},
                "public_key": {"type": "string", "contentEncoding": "base64", "description": "Ed25519, 32 bytes"}
            }
        },
        "EnrollRequest": {
            "type": "object", "required": ["consent", "input", "hands"],
            "properties": {
                "consent": {"type": "object", "required": ["text_version", "accepted"],
                    "properties": {"text_version": {"type": "integer"}, "accepted": {"type": "boolean"}}},
                "input": {"type": "string", "enum": ["roi", "hand"]},
                "hands": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
                    "type": "object", "required": ["hand", "captures"],
                    "properties": {
                        "hand": {"type": "string", "enum": ["left", "right"]},
                        "captures": {"type": "array", "minItems": 3, "maxItems": 10, "items": {"$ref": "#/components/schemas/SealedCapture"}}
                    }
                }},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/LinkRequest"}}
            }
        },
        "JoinRequest": {
            "type": "object", "required": ["consent", "input", "capture"],
            "properties": {
                "consent": {"type": "object", "required": ["text_version", "accepted"],
                    "properties": {"text_version": {"type": "integer"}, "accepted": {"type": "boolean"}}},
                "input": {"type": "string", "enum": ["roi", "hand"]},
                "capture": {"$ref": "#/components/schemas/SealedCapture"},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/LinkRequest"}}
            }
        },
        "CreateWebhookEndpoint": {
            "type": "object", "required": ["url"],
            "properties": {
                "url": {"type": "string", "format": "uri", "description": "https:// URL that receives POSTs with webhook-id, webhook-timestamp and webhook-signature (v1, HMAC-SHA256 of id.timestamp.body)"},
                "events": {"type": "array", "items": {"type": "string", "enum": ["person.linked", "person.unlinked", "person.deleted", "entry.admitted", "entry.denied"]}, "description": "default: all"}
            }
        },
        "CreateEvent": {
            "type": "object", "required": ["name", "site", "starts_at", "ends_at", "doors_open_at", "gates"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "site": {"type": "string", "minLength": 1, "maxLength": 200},
                "starts_at": {"type": "integer", "description": "Unix seconds"},
                "ends_at": {"type": "integer", "description": "Unix seconds, after starts_at"},
                "doors_open_at": {"type": "integer", "description": "Unix seconds, no later than starts_at: the palm lane admits from then"},
                "doors_close_at": {"type": "integer", "description": "Unix seconds, no later than ends_at; default ends_at"},
                "gates": {"type": "array", "minItems": 1, "maxItems": 64, "items": {"type": "string"}, "description": "entry gate device IDs (kind gate)"},
                "exit_gates": {"type": "array", "maxItems": 64, "items": {"type": "string"}, "description": "exit gate device IDs"},
                "reentry": {"type": "object", "required": ["max_reentries"], "properties": {"max_reentries": {"type": "integer", "minimum": 0, "maximum": 100}}}
            }
        },
        "HolderRef": {
            "type": "object", "description": "exactly one of the two",
            "properties": {"pseudonymous_id": {"type": "string"}, "member_id": {"type": "string"}}
        },
        "IssueTickets": {
            "type": "object", "required": ["tickets"],
            "properties": {"tickets": {"type": "array", "minItems": 1, "maxItems": 5000, "items": {
                "type": "object", "required": ["holder", "ticket_type"],
                "properties": {
                    "holder": {"$ref": "#/components/schemas/HolderRef"},
                    "ticket_type": {"type": "string", "minLength": 1, "maxLength": 100},
                    "gates": {"type": "array", "items": {"type": "string"}, "description": "entry gates it is valid at; default all"},
                    "external_ref": {"type": "string", "minLength": 1, "maxLength": 100, "description": "the business's ticket number, unique per event"}
                }
            }}}
        },
        "TransferTicket": {
            "type": "object", "required": ["to"],
            "properties": {"to": {"$ref": "#/components/schemas/HolderRef"}}
        },
        "GateRequest": {
            "type": "object", "required": ["event_id", "input", "capture"],
            "properties": {
                "event_id": {"type": "string"},
                "input": {"type": "string", "enum": ["roi", "hand"]},
                "capture": {"$ref": "#/components/schemas/SealedCapture"}
            }
        },
        "OverrideRequest": {
            "type": "object", "required": ["decision", "attendant", "note"],
            "properties": {
                "decision": {"type": "string", "enum": ["admit", "deny"]},
                "attendant": {"type": "string", "minLength": 1, "maxLength": 100},
                "note": {"type": "string", "minLength": 1, "maxLength": 1000}
            }
        },
        "ManualEntryRequest": {
            "type": "object", "required": ["attendant", "note"], "description": "ticket_id or external_ref, one of the two",
            "properties": {
                "ticket_id": {"type": "string"},
                "external_ref": {"type": "string"},
                "gate": {"type": "string"},
                "attendant": {"type": "string", "minLength": 1, "maxLength": 100},
                "note": {"type": "string", "minLength": 1, "maxLength": 1000}
            }
        },
        "IdentifyRequest": {
            "type": "object", "required": ["input", "capture"],
            "properties": {
                "input": {"type": "string", "enum": ["roi", "hand"]},
                "capture": {"$ref": "#/components/schemas/SealedCapture"}
            }
        },
        "CreatePayment": {
            "type": "object", "required": ["device_id", "amount_minor", "currency", "order_reference"],
            "properties": {
                "device_id": {"type": "string", "description": "the checkout device (kind checkout)"},
                "amount_minor": {"type": "integer", "minimum": 1, "maximum": 10000000000u64, "description": "minor units of the currency (cents for EUR)"},
                "currency": {"type": "string", "description": "ISO 4217 code with a minor unit"},
                "order_reference": {"type": "string", "minLength": 1, "maxLength": 200, "description": "unique per business"}
            }
        },
        "PalmRequest": {
            "type": "object", "required": ["input", "capture"],
            "properties": {
                "input": {"type": "string", "enum": ["roi", "hand"]},
                "capture": {"$ref": "#/components/schemas/SealedCapture"}
            }
        },
        "StepUpRequest": {
            "type": "object", "required": ["code"],
            "properties": {"code": {"type": "string", "maxLength": 16}}
        },
        "CaptureRequest": {
            "type": "object",
            "properties": {"amount_minor": {"type": "integer", "minimum": 1, "description": "default: everything authorised"}}
        },
        "RefundRequest": {
            "type": "object", "required": ["amount_minor"],
            "properties": {
                "amount_minor": {"type": "integer", "minimum": 1},
                "reason": {"type": "string", "maxLength": 500}
            }
        },
        "PaymentSettings": {
            "type": "object", "required": ["currency"],
            "properties": {
                "currency": {"type": "string"},
                "per_payment_limit_minor": {"type": "integer", "minimum": 0},
                "daily_limit_minor": {"type": "integer", "minimum": 0},
                "step_up_above_minor": {"type": "integer", "minimum": 0},
                "step_up": {"type": "object", "required": ["method", "code"], "properties": {
                    "method": {"type": "string", "enum": ["pin", "phone_last4"]},
                    "code": {"type": "string", "pattern": "^[0-9]{4,8}$"}
                }}
            }
        },
        "OffersConsent": {
            "type": "object", "required": ["opted_in"],
            "properties": {"opted_in": {"type": "boolean"}}
        },
        "CreateOffer": {
            "type": "object", "required": ["title", "currency", "min_payments", "window_days"],
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": 200},
                "currency": {"type": "string"},
                "min_payments": {"type": "integer", "minimum": 0, "maximum": 10000},
                "min_spent_minor": {"type": "integer", "minimum": 0},
                "window_days": {"type": "integer", "minimum": 1, "maximum": 366}
            }
        },
        "OperatorErasure": {
            "type": "object", "required": ["business_id", "pseudonymous_id", "verification"],
            "properties": {
                "business_id": {"type": "string"},
                "pseudonymous_id": {"type": "string"},
                "verification": {"type": "string", "minLength": 1, "maxLength": 500}
            }
        },
        "SignInRequest": {
            "type": "object", "required": ["phone"],
            "properties": {"phone": {"type": "string", "description": "international form, e.g. +33612345678"}}
        },
        "SessionRequest": {
            "type": "object", "required": ["challenge_id", "code"],
            "properties": {"challenge_id": {"type": "string"}, "code": {"type": "string", "pattern": "^[0-9]{6}$"}}
        }
    })
}

/// The OpenAPI 3.1 document, built from the route table.
pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for d in routes() {
        let mut params = Vec::new();
        for seg in d.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(
                    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
                );
            }
        }
        if d.paged {
            params.push(
                json!({"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"},
                "description": "next_cursor of the previous page"}),
            );
            params.push(json!({"name": "limit", "in": "query", "required": false,
                "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}));
        }
        if d.idempotent {
            params.push(json!({"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "maxLength": 255},
                "description": "A replay returns the stored response; a different body with the same key is refused (422)"}));
        }
        let mut op = json!({
            "operationId": d.operation_id,
            "summary": d.summary,
            "parameters": params,
            "responses": {
                d.ok.to_string(): {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
                "default": {"description": "error", "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            }
        });
        match d.access {
            Access::Public => op["security"] = json!([]),
            Access::Admin => op["security"] = json!([{"adminToken": []}]),
            Access::ApiKey => op["security"] = json!([{"apiKey": []}]),
            Access::Person => op["security"] = json!([{"personSession": []}]),
        }
        if let Some(schema) = d.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let entry = paths.entry(d.path.to_string()).or_insert_with(|| json!({}));
        entry[d.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "OpenPalm service", "version": env!("CARGO_PKG_VERSION"),
            "description": "Enrollment, identification and linking for third-party businesses. Errors are RFC 9457 problem+json; every response carries x-request-id."},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "op_test_... or op_live_..."},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "the admin token from the configuration"},
                "personSession": {"type": "http", "scheme": "bearer", "description": "ops_... from POST /v1/me/sessions"}
            }
        }
    })
}
