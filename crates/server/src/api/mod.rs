//! The HTTP surface: one route table from which both the router and the OpenAPI document
//! are built, so they cannot disagree; request IDs and problem+json on every response.

pub mod admin;
pub mod devices;
pub mod enroll;
pub mod events;
pub mod identify;
pub mod join;
pub mod lane;
pub mod me;
pub mod openapi;
pub mod payments;
pub mod people;
pub mod public;
pub mod summary;
pub mod webhooks;

use crate::problem::{for_status, ApiError, PROBLEM_JSON};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Public,
    Admin,
    ApiKey,
    /// A person's own session (`ops_...` from `POST /v1/me/sessions`).
    Person,
}

/// How a type's JSON Schema is made: each request and response type derives
/// [`schemars::JsonSchema`], so the document describes what the handlers parse and build.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, as a reference into `#/components/schemas/` where it is named.
pub fn s<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

pub use openpalm_domain::{trim_blank, NOT_BLANK};

/// A list that is not paged.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "ListItems_{T}")]
pub struct ListItems<T> {
    pub items: Vec<T>,
}

/// An OpenAPI link from a route's success response to another operation.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// The operation it leads to.
    pub operation_id: &'static str,
    /// The parameter (path or query) of that operation.
    pub parameter: &'static str,
    /// A runtime expression, e.g. `$response.body#/id`.
    pub value: &'static str,
}

const fn link(operation_id: &'static str, parameter: &'static str, value: &'static str) -> Link {
    Link {
        operation_id,
        parameter,
        value,
    }
}

/// One documented route.
#[derive(Clone, Copy, Debug)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// The request body's type, if the route takes a body.
    pub body: Option<SchemaFn>,
    /// The type of the success response's body (`None`: no body, e.g. 204).
    pub response: Option<SchemaFn>,
    /// Success status.
    pub ok: u16,
    /// Another non-problem answer: its status and body (a refund the processor refused).
    pub alt: Option<(u16, SchemaFn)>,
    /// Whether `Idempotency-Key` is required.
    pub idempotent: bool,
    /// The query parameters: the properties of this type.
    pub query: Option<SchemaFn>,
    /// Operations a client can follow from the success response.
    pub links: &'static [Link],
}

const fn doc(
    method: &'static str,
    path: &'static str,
    operation_id: &'static str,
    response: Option<SchemaFn>,
    summary: &'static str,
    access: Access,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        operation_id,
        summary,
        access,
        body: None,
        response,
        ok: 200,
        alt: None,
        idempotent: false,
        query: None,
        links: &[],
    }
}

/// Every route: its documentation and its handler.
fn table() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    use Access::*;
    vec![
        (
            doc("get", "/v1/health", "health", Some(s::<public::Health>), "Liveness and gallery size", Public),
            get(public::health),
        ),
        (
            doc(
                "get",
                "/v1/ready",
                "ready", Some(s::<public::Ready>),
                "Readiness: the database answers and the gallery is loaded (503 otherwise)",
                Public,
            ),
            get(public::ready),
        ),
        (
            doc(
                "get",
                "/v1/service-key",
                "getServiceKey", Some(s::<public::ServiceKey>),
                "The HPKE public key readers seal captures to",
                Public,
            ),
            get(public::service_key),
        ),
        (
            doc(
                "get",
                "/v1/consent-texts/current",
                "getCurrentConsentText", Some(s::<openpalm_domain::model::ConsentText>),
                "The consent text a kiosk shows before enrollment",
                Public,
            ),
            get(public::consent_text),
        ),
        (
            doc("get", "/openapi.json", "getOpenApi", Some(s::<openapi::OpenApiDocument>), "This document", Public),
            get(public::openapi),
        ),
        (
            RouteDoc {
                body: Some(s::<admin::CreateBusiness>),
                ok: 201,
                links: const { &[link("rotateApiKey", "id", "$response.body#/api_key/id"), link("revokeApiKey", "id", "$response.body#/api_key/id")] },
..doc(
                    "post",
                    "/v1/businesses",
                    "createBusiness", Some(s::<admin::BusinessCreated>),
                    "Create a business and its first API key (shown once); admin token",
                    Admin,
                )
            },
            post(admin::create_business),
        ),
        (
            doc(
                "get",
                "/v1/api-keys",
                "listApiKeys", Some(s::<admin::KeyList>),
                "The business's API keys (never their secrets)",
                ApiKey,
            ),
            get(admin::list_keys),
        ),
        (
            RouteDoc {
                body: Some(s::<admin::CreateKey>),
                ok: 201,
                idempotent: true,
                links: const { &[link("rotateApiKey", "id", "$response.body#/id"), link("revokeApiKey", "id", "$response.body#/id")] },
..doc(
                    "post",
                    "/v1/api-keys",
                    "createApiKey", Some(s::<admin::NewKeyView>),
                    "Create an API key (shown once)",
                    ApiKey,
                )
            },
            post(admin::create_key),
        ),
        (
            RouteDoc { links: const { &[link("revokeApiKey", "id", "$response.body#/id")] },
                ok: 201,
                idempotent: true,
                ..doc(
                    "post",
                    "/v1/api-keys/{id}/rotate",
                    "rotateApiKey", Some(s::<admin::NewKeyView>),
                    "Replace a key by a new one with the same scopes",
                    ApiKey,
                )
            },
            post(admin::rotate_key),
        ),
        (
            doc(
                "post",
                "/v1/api-keys/{id}/revoke",
                "revokeApiKey", Some(s::<admin::KeyView>),
                "Revoke a key",
                ApiKey,
            ),
            post(admin::revoke_key),
        ),
        (
            doc(
                "get",
                "/v1/summary",
                "getSummary", Some(s::<summary::SummaryView>),
                "The business today: members and links, entries by event and reason, payments approved, declined and captured (any key)",
                ApiKey,
            ),
            get(summary::summary),
        ),
        (
            RouteDoc {
                body: Some(s::<devices::RegisterDevice>),
                ok: 201,
                idempotent: true,
                links: const { &[link("getDevice", "id", "$response.body#/id"), link("revokeDevice", "id", "$response.body#/id")] },
..doc(
                    "post",
                    "/v1/devices",
                    "registerDevice", Some(s::<devices::DeviceView>),
                    "Register a kiosk, gate or checkout with its Ed25519 public key",
                    ApiKey,
                )
            },
            post(devices::register),
        ),
        (
            RouteDoc {
                query: Some(s::<devices::PageQuery>),
                ..doc(
                    "get",
                    "/v1/devices",
                    "listDevices", Some(s::<events::ListPage<devices::DeviceView>>),
                    "The business's devices, oldest first",
                    ApiKey,
                )
            },
            get(devices::list),
        ),
        (
            doc("get", "/v1/devices/{id}", "getDevice", Some(s::<devices::DeviceView>), "One device", ApiKey),
            get(devices::get),
        ),
        (
            doc(
                "post",
                "/v1/devices/{id}/revoke",
                "revokeDevice", Some(s::<devices::DeviceView>),
                "Revoke a device: its captures are refused from now on",
                ApiKey,
            ),
            post(devices::revoke),
        ),
        (
            RouteDoc {
                body: Some(s::<enroll::EnrollRequest>),
                ok: 201,
                idempotent: true,
                links: const { &[link("listLinks", "pseudonymous_id", "$response.body#/person/pseudonymous_id"), link("createLink", "pseudonymous_id", "$response.body#/person/pseudonymous_id"), link("getMatchLog", "pseudonymous_id", "$response.body#/person/pseudonymous_id"), link("erasePerson", "pseudonymous_id", "$response.body#/person/pseudonymous_id")] },
..doc(
                    "post",
                    "/v1/enrollments",
                    "enroll", Some(s::<enroll::Enrollment>),
                    "Enroll a person at a kiosk: consent and sealed captures",
                    ApiKey,
                )
            },
            post(enroll::enroll),
        ),
        (
            RouteDoc {
                body: Some(s::<identify::IdentifyRequest>),
                ..doc(
                    "post",
                    "/v1/identifications",
                    "identify", Some(s::<identify::Identification>),
                    "Identify a person from one sealed capture, in the caller's scope",
                    ApiKey,
                )
            },
            post(identify::identify),
        ),
        (
            RouteDoc { links: const { &[link("listLinks", "pseudonymous_id", "$request.path.pseudonymous_id"), link("deleteLink", "pseudonymous_id", "$request.path.pseudonymous_id"), link("deleteLink", "link_id", "$response.body#/id")] },
                body: Some(s::<people::LinkRequest>),
                ok: 201,
                idempotent: true,
                ..doc(
                    "post",
                    "/v1/people/{pseudonymous_id}/links",
                    "createLink", Some(s::<people::LinkView>),
                    "Link a member ID, payment token or phone to a person",
                    ApiKey,
                )
            },
            post(people::create_link),
        ),
        (
            doc(
                "get",
                "/v1/people/{pseudonymous_id}/links",
                "listLinks", Some(s::<people::LinkList>),
                "The caller's links of a person",
                ApiKey,
            ),
            get(people::list_links),
        ),
        (
            doc(
                "delete",
                "/v1/people/{pseudonymous_id}/links/{link_id}",
                "deleteLink", Some(s::<people::LinkDeleted>),
                "Remove one of the caller's links of a person (webhook person.unlinked)",
                ApiKey,
            ),
            delete(people::delete_link),
        ),
        (
            RouteDoc {
                query: Some(s::<devices::PageQuery>),
                ..doc(
                    "get",
                    "/v1/people/{pseudonymous_id}/match-log",
                    "getMatchLog", Some(s::<events::ListPage<people::LogView>>),
                    "The caller's identifications of a person, oldest first",
                    ApiKey,
                )
            },
            get(people::match_log),
        ),
        (
            doc(
                "post",
                "/v1/people/{pseudonymous_id}/erase",
                "erasePerson", Some(s::<people::RemovedFromBusiness>),
                "Remove the person from this business's scope (erasing everywhere is the person's own right, or the operator's)",
                ApiKey,
            ),
            post(people::erase),
        ),
        (
            RouteDoc {
                body: Some(s::<people::OperatorErasure>),
                links: const { &[link("deletionReceipt", "id", "$response.body#/receipt/receipt_id")] },
..doc(
                    "post",
                    "/v1/operator/erasures",
                    "operatorErasure", Some(s::<people::OperatorErased>),
                    "On a verified request to the operator: erase a person everywhere (crypto-shredding)",
                    Admin,
                )
            },
            post(people::operator_erase),
        ),
        (
            RouteDoc {
                body: Some(s::<join::JoinRequest>),
                ok: 201,
                idempotent: true,
                links: const { &[link("listLinks", "pseudonymous_id", "$response.body#/person/pseudonymous_id"), link("getMatchLog", "pseudonymous_id", "$response.body#/person/pseudonymous_id")] },
..doc(
                    "post",
                    "/v1/memberships",
                    "joinBusiness", Some(s::<join::Joined>),
                    "A person already enrolled elsewhere joins this business, present at its kiosk",
                    ApiKey,
                )
            },
            post(join::join),
        ),
        (
            RouteDoc {
                body: Some(s::<webhooks::CreateEndpoint>),
                ok: 201,
                idempotent: true,
                links: const { &[link("listWebhookDeliveries", "id", "$response.body#/id"), link("deleteWebhookEndpoint", "id", "$response.body#/id")] },
..doc(
                    "post",
                    "/v1/webhook-endpoints",
                    "createWebhookEndpoint", Some(s::<webhooks::NewEndpoint>),
                    "Register a URL for signed webhooks (Standard Webhooks); its secret is shown once",
                    ApiKey,
                )
            },
            post(webhooks::create),
        ),
        (
            doc(
                "get",
                "/v1/webhook-endpoints",
                "listWebhookEndpoints", Some(s::<ListItems<webhooks::EndpointView>>),
                "The business's webhook endpoints (never their secrets)",
                ApiKey,
            ),
            get(webhooks::list),
        ),
        (
            doc(
                "delete",
                "/v1/webhook-endpoints/{id}",
                "deleteWebhookEndpoint", Some(s::<webhooks::EndpointDeleted>),
                "Stop sending to an endpoint; its pending deliveries are cancelled",
                ApiKey,
            ),
            delete(webhooks::delete),
        ),
        (
            RouteDoc { query: Some(s::<webhooks::LimitQuery>), ..doc(
                "get",
                "/v1/webhook-endpoints/{id}/deliveries",
                "listWebhookDeliveries", Some(s::<ListItems<webhooks::DeliveryView>>),
                "An endpoint's latest deliveries, newest first: state, attempts, last status",
                ApiKey,
            ) },
            get(webhooks::deliveries),
        ),
        (
            RouteDoc {
                body: Some(s::<events::CreateEvent>),
                ok: 201,
                idempotent: true,
                links: const { &[link("getEvent", "id", "$response.body#/id"), link("issueTickets", "id", "$response.body#/id"), link("listTickets", "id", "$response.body#/id"), link("listEntries", "id", "$response.body#/id"), link("getEventCounts", "id", "$response.body#/id"), link("manualEntry", "id", "$response.body#/id")] },
..doc(
                    "post",
                    "/v1/events",
                    "createEvent", Some(s::<events::EventView>),
                    "Create an event at a site with the gates of its palm lanes and a re-entry policy",
                    ApiKey,
                )
            },
            post(events::create),
        ),
        (
            RouteDoc {
                query: Some(s::<devices::PageQuery>),
                ..doc("get", "/v1/events", "listEvents", Some(s::<events::ListPage<events::EventView>>), "The business's events, oldest first", ApiKey)
            },
            get(events::list),
        ),
        (
            doc("get", "/v1/events/{id}", "getEvent", Some(s::<events::EventView>), "One event", ApiKey),
            get(events::get),
        ),
        (
            RouteDoc { links: const { &[link("getTicket", "id", "$response.body#/tickets/0/id"), link("cancelTicket", "id", "$response.body#/tickets/0/id"), link("transferTicket", "id", "$response.body#/tickets/0/id")] },
                body: Some(s::<events::IssueTickets>),
                ok: 201,
                idempotent: true,
                ..doc(
                    "post",
                    "/v1/events/{id}/tickets",
                    "issueTickets", Some(s::<events::IssuedTickets>),
                    "Issue up to 5000 tickets to members (by pseudonymous ID or linked member ID); each refused one is listed with its reason",
                    ApiKey,
                )
            },
            post(events::issue),
        ),
        (
            RouteDoc {
                query: Some(s::<devices::PageQuery>),
                ..doc(
                    "get",
                    "/v1/events/{id}/tickets",
                    "listTickets", Some(s::<events::ListPage<events::TicketView>>),
                    "An event's tickets, oldest first",
                    ApiKey,
                )
            },
            get(events::list_tickets),
        ),
        (
            doc("get", "/v1/tickets/{id}", "getTicket", Some(s::<events::TicketView>), "One ticket", ApiKey),
            get(events::get_ticket),
        ),
        (
            doc(
                "post",
                "/v1/tickets/{id}/cancel",
                "cancelTicket", Some(s::<events::TicketView>),
                "Cancel a ticket: it admits nobody from now on",
                ApiKey,
            ),
            post(events::cancel),
        ),
        (
            RouteDoc {
                body: Some(s::<events::TransferTicket>),
                ok: 201,
                idempotent: true,
                links: const { &[link("getTicket", "id", "$response.body#/id"), link("cancelTicket", "id", "$response.body#/id")] },
..doc(
                    "post",
                    "/v1/tickets/{id}/transfer",
                    "transferTicket", Some(s::<events::TicketView>),
                    "Transfer an unused ticket to another member: the old one becomes transferred, a new one is issued",
                    ApiKey,
                )
            },
            post(events::transfer),
        ),
        (
            RouteDoc {
                body: Some(s::<lane::GateRequest>),
                links: const { &[link("overrideEntry", "id", "$response.body#/id")] },
..doc(
                    "post",
                    "/v1/entries",
                    "enterEvent", Some(s::<lane::view::PassageView>),
                    "A palm at an entry gate: admit or deny with a reason, among the event's ticket holders",
                    ApiKey,
                )
            },
            post(lane::entry),
        ),
        (
            RouteDoc {
                body: Some(s::<lane::GateRequest>),
                ..doc(
                    "post",
                    "/v1/exits",
                    "exitEvent", Some(s::<lane::view::PassageView>),
                    "A palm at an exit gate: the holder's leaving is recorded (re-entry counts on it)",
                    ApiKey,
                )
            },
            post(lane::exit),
        ),
        (
            RouteDoc {
                body: Some(s::<lane::attendant::OverrideRequest>),
                ok: 201,
                idempotent: true,
                links: const { &[link("overrideEntry", "id", "$response.body#/id")] },
..doc(
                    "post",
                    "/v1/entries/{id}/override",
                    "overrideEntry", Some(s::<lane::view::PassageView>),
                    "An attendant admits or denies by hand, with a note; recorded with who, when and why",
                    ApiKey,
                )
            },
            post(lane::attendant::override_decision),
        ),
        (
            RouteDoc {
                body: Some(s::<lane::attendant::ManualEntryRequest>),
                ok: 201,
                idempotent: true,
                ..doc(
                    "post",
                    "/v1/events/{id}/manual-entries",
                    "manualEntry", Some(s::<lane::view::PassageView>),
                    "The lane's manual fallback: an attendant admits on the ordinary ticket, under the same rules",
                    ApiKey,
                )
            },
            post(lane::attendant::manual_entry),
        ),
        (
            RouteDoc {
                query: Some(s::<devices::PageQuery>),
                ..doc(
                    "get",
                    "/v1/events/{id}/entries",
                    "listEntries", Some(s::<events::ListPage<lane::view::PassageView>>),
                    "Every decision at an event's lanes, oldest first",
                    ApiKey,
                )
            },
            get(lane::counts::list),
        ),
        (
            doc(
                "get",
                "/v1/events/{id}/counts",
                "getEventCounts", Some(s::<lane::counts::EventCountsView>),
                "Live counts: tickets per state, inside now, decisions per gate and reason",
                ApiKey,
            ),
            get(lane::counts::counts),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::CreatePayment>),
                ok: 201,
                idempotent: true,
                links: const { &[link("getPayment", "id", "$response.body#/id"), link("voidPayment", "id", "$response.body#/id"), link("capturePayment", "id", "$response.body#/id"), link("payByPalm", "id", "$response.body#/id"), link("paymentReceipt", "id", "$response.body#/id"), link("refundPayment", "id", "$response.body#/id")] },
..doc(
                    "post",
                    "/v1/payments",
                    "createPayment", Some(s::<payments::view::PaymentView>),
                    "The point of sale opens a payment for a checkout device: amount, currency, its order reference",
                    ApiKey,
                )
            },
            post(payments::create),
        ),
        (
            RouteDoc {
                query: Some(s::<payments::ListQuery>),
                ..doc(
                    "get",
                    "/v1/payments",
                    "listPayments", Some(s::<payments::view::PaymentPage>),
                    "The store's payments, oldest first; status (or outstanding) and customer filters",
                    ApiKey,
                )
            },
            get(payments::list),
        ),
        (
            doc("get", "/v1/payments/{id}", "getPayment", Some(s::<payments::view::PaymentView>), "One payment", ApiKey),
            get(payments::get),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::checkout::PalmRequest>),
                ..doc(
                    "post",
                    "/v1/payments/{id}/palm",
                    "payByPalm", Some(s::<payments::view::CheckoutAnswer>),
                    "The checkout's palm: approved, declined, step_up_required, not_recognised or ambiguous",
                    ApiKey,
                )
            },
            post(payments::checkout::palm),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::checkout::StepUpRequest>),
                ..doc(
                    "post",
                    "/v1/payments/{id}/step-up",
                    "stepUp", Some(s::<payments::view::CheckoutAnswer>),
                    "The step-up code the person entered at the checkout (attempts limited)",
                    ApiKey,
                )
            },
            post(payments::checkout::step_up),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::CaptureRequest>),
                ..doc(
                    "post",
                    "/v1/payments/{id}/capture",
                    "capturePayment", Some(s::<payments::view::PaymentView>),
                    "Capture in full or in part once the goods are handed over (the rest is released)",
                    ApiKey,
                )
            },
            post(payments::capture),
        ),
        (
            doc(
                "post",
                "/v1/payments/{id}/void",
                "voidPayment", Some(s::<payments::view::PaymentView>),
                "Cancel a payment before capture; an authorisation is released",
                ApiKey,
            ),
            post(payments::void),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::RefundRequest>),
                ok: 201,
                idempotent: true,
                alt: Some((409, s::<payments::view::RefundAnswer>)),
..doc(
                    "post",
                    "/v1/payments/{id}/refunds",
                    "refundPayment", Some(s::<payments::view::RefundAnswer>),
                    "Refund part or all of what was captured; several refunds, never above it",
                    ApiKey,
                )
            },
            post(payments::refund),
        ),
        (
            doc(
                "get",
                "/v1/payments/{id}/receipt",
                "paymentReceipt", Some(s::<payments::view::Receipt>),
                "The receipt: store, site, amounts captured and refunded, card's last four digits",
                ApiKey,
            ),
            get(payments::receipt),
        ),
        (
            RouteDoc {
                query: Some(s::<devices::PageQuery>),
                ..doc(
                    "get",
                    "/v1/people/{pseudonymous_id}/payments",
                    "personPayments", Some(s::<payments::view::PaymentPage>),
                    "The store's purchase history with one person, oldest first",
                    ApiKey,
                )
            },
            get(payments::person_history),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::PutSettings>),
                ..doc(
                    "put",
                    "/v1/people/{pseudonymous_id}/payment-settings",
                    "putPaymentSettings", Some(s::<payments::view::SettingsView>),
                    "The person's safeguards at this store: limits per payment and per day, step-up above an amount",
                    ApiKey,
                )
            },
            put(payments::put_settings),
        ),
        (
            doc(
                "get",
                "/v1/people/{pseudonymous_id}/payment-settings",
                "getPaymentSettings", Some(s::<payments::view::SettingsView>),
                "The person's safeguards at this store (never the code)",
                ApiKey,
            ),
            get(payments::get_settings),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::offers::OffersConsent>),
                ..doc(
                    "put",
                    "/v1/people/{pseudonymous_id}/offers-consent",
                    "putOffersConsent", Some(s::<payments::offers::OffersConsentView>),
                    "The person opts in to (or out of) this store's offers",
                    ApiKey,
                )
            },
            put(payments::offers::put_consent),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::offers::CreateOffer>),
                ok: 201,
                idempotent: true,
                ..doc(
                    "post",
                    "/v1/offers",
                    "createOffer", Some(s::<payments::offers::OfferView>),
                    "An offer rule: so many purchases, so much spent, within a window",
                    ApiKey,
                )
            },
            post(payments::offers::create),
        ),
        (
            doc("get", "/v1/offers", "listOffers", Some(s::<payments::offers::OfferList>), "The store's offer rules", ApiKey),
            get(payments::offers::list),
        ),
        (
            doc(
                "get",
                "/v1/people/{pseudonymous_id}/offers",
                "personOffers", Some(s::<payments::offers::PersonOffers>),
                "Offers for a person who opted in, from this store's own payments with them only",
                ApiKey,
            ),
            get(payments::offers::for_person),
        ),
        (
            doc(
                "get",
                "/v1/retention-policy",
                "retentionPolicy", Some(s::<me::RetentionPolicy>),
                "What is kept, for how long, and when it is destroyed; the privacy notice",
                Public,
            ),
            get(me::retention_policy),
        ),
        (
            RouteDoc {
                body: Some(s::<me::SignInRequest>),
                ok: 202,
                ..doc(
                    "post",
                    "/v1/me/sign-in",
                    "personSignIn", Some(s::<me::SignInChallenge>),
                    "A one-time code to the phone the person linked (the answer never says whether it is enrolled)",
                    Public,
                )
            },
            post(me::sign_in),
        ),
        (
            RouteDoc {
                body: Some(s::<me::SessionRequest>),
                ok: 201,
                ..doc(
                    "post",
                    "/v1/me/sessions",
                    "personSession", Some(s::<me::SessionView>),
                    "The code for a short-lived session (attempts limited)",
                    Public,
                )
            },
            post(me::open_session),
        ),
        (
            RouteDoc {
                ok: 204,
                ..doc("delete", "/v1/me/session", "personSignOut", None, "End this session", Person)
            },
            delete(me::end_session),
        ),
        (
            doc(
                "get",
                "/v1/me",
                "personData", Some(s::<me::MeView>),
                "Everything held about me: enrollment, consents with their text, businesses and links, purchases, entries, every identification",
                Person,
            ),
            get(me::me),
        ),
        (
            RouteDoc { query: Some(s::<me::ExportQuery>), ..doc(
                "get",
                "/v1/me/export",
                "personExport", Some(s::<me::Export>),
                "All of it as one JSON document (optionally for one business)",
                Person,
            ) },
            get(me::export),
        ),
        (
            RouteDoc {
                ok: 204,
                ..doc(
                    "delete",
                    "/v1/me/businesses/{business_id}",
                    "personLeaveBusiness", None,
                    "Leave one business (withdrawing its consent); the others are unaffected",
                    Person,
                )
            },
            delete(me::leave),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::offers::OffersConsent>),
                ..doc(
                    "put",
                    "/v1/me/businesses/{business_id}/offers",
                    "personOffersChoice", Some(s::<me::OffersChoiceView>),
                    "Opt in to or out of one business's offers",
                    Person,
                )
            },
            put(me::offers),
        ),
        (
            RouteDoc {
                body: Some(s::<payments::PutSettings>),
                ..doc(
                    "put",
                    "/v1/me/businesses/{business_id}/payment-settings",
                    "personPaymentSettings", Some(s::<payments::view::SettingsView>),
                    "Set my own limits per payment and per day, and my step-up code, at one store",
                    Person,
                )
            },
            put(me::payment_settings),
        ),
        (
            RouteDoc { links: const { &[link("deletionReceipt", "id", "$response.body#/receipt/receipt_id")] }, ..doc(
                "post",
                "/v1/me/delete",
                "personDelete", Some(s::<openpalm_domain::person::SignedReceipt>),
                "Delete my data everywhere now; the answer is a deletion receipt signed by the service",
                Person,
            ) },
            post(me::delete),
        ),
        (
            doc(
                "get",
                "/v1/me/audit",
                "personAudit", Some(s::<Vec<openpalm_domain::audit::AuditRecord>>),
                "Every audit record about me: who did what with my data, when, with which request",
                Person,
            ),
            get(me::audit),
        ),
        (
            doc(
                "post",
                "/v1/me/cancel",
                "personCancel", Some(s::<me::CancellationView>),
                "Cancel my account: the palm stops working at once; deletion follows once open payments are settled",
                Person,
            ),
            post(me::cancel),
        ),
        (
            doc(
                "get",
                "/v1/deletion-receipts/{id}",
                "deletionReceipt", Some(s::<openpalm_domain::person::SignedReceipt>),
                "A deletion receipt signed by the service (it names nobody: the subject is a hash)",
                Public,
            ),
            get(me::receipt),
        ),
    ]
}

/// The documentation of every route, in table order.
pub fn routes() -> Vec<RouteDoc> {
    table().into_iter().map(|(d, _)| d).collect()
}

/// The service's router.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let mut r = Router::new();
    for (d, handler) in table() {
        r = r.route(d.path, handler);
    }
    r.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::audit::layer,
    ))
    .merge(crate::pages::router())
    .merge(crate::metrics::router())
    .fallback(|| async {
        ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such route").into_response()
    })
    .layer(DefaultBodyLimit::max(limit))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::admission::admit,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        request_id_and_problems,
    ))
    .with_state(state)
}

fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

/// Every response gets `x-request-id` (the caller's if well-formed, else a new one); any
/// error that is not already problem+json (wrong method, unreadable path or query) is
/// turned into one. The request is handled in a `request` span (request ID, method, matched
/// route), so every line logged meanwhile names it; a line at its end gives status and
/// latency, and the metrics count it.
async fn request_id_and_problems(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .filter(|v| valid_request_id(v))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&openpalm_domain::ids::new_id("req"))
                .unwrap_or(HeaderValue::from_static("req"))
        });
    let request_id = String::from_utf8_lossy(id.as_bytes()).to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| crate::metrics::UNMATCHED.to_string());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
    );
    req.extensions_mut().insert(crate::audit::RequestId(request_id));
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if (status.is_client_error() || status.is_server_error()) && !is_problem {
        let allow = res.headers().get(header::ALLOW).cloned();
        res = for_status(status).into_response();
        if let Some(a) = allow {
            res.headers_mut().insert(header::ALLOW, a);
        }
    }
    res.headers_mut().insert("x-request-id", id);
    let elapsed = started.elapsed();
    state
        .metrics
        .request(&route, method.as_str(), status.as_u16(), elapsed.as_secs_f64());
    if let Some(crate::problem::LimitHit(limit)) = res.extensions().get() {
        state.metrics.rate_limited(limit);
    }
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), latency_ms, "request finished");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request finished");
        }
    });
    res
}

pub use openapi::openapi_document;
