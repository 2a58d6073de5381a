//! The OpenAPI 3.1 document, built from the route table ([`super::routes`]): every request
//! body, query and response schema is generated from the Rust type that parses or builds it
//! ([`schemars::JsonSchema`], JSON Schema 2020-12, the dialect of OpenAPI 3.1), with the
//! named ones under `#/components/schemas/`. So the document lists exactly the routes the
//! router serves, and what each takes and answers.

use super::{routes, Access, RouteDoc};
use crate::problem::{Problem, PROBLEM_JSON};
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// The document's own type (for its route's response).
pub struct OpenApiDocument;

impl JsonSchema for OpenApiDocument {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OpenApiDocument".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "An OpenAPI 3.1 document (this one)",
            "required": ["openapi", "info", "paths"],
            "properties": {
                "openapi": {"type": "string", "pattern": "^3\\.1\\."},
                "info": {"type": "object"},
                "paths": {"type": "object"},
                "components": {"type": "object"}
            }
        })
    }
}

/// Integers get the bounds of their Rust type, so that no schema-valid number overflows what
/// the handler parses.
fn integer_bounds(schema: &mut Schema) {
    let (min, max): (i128, i128) = match schema.get("format").and_then(Value::as_str) {
        Some("int64") => (i64::MIN.into(), i64::MAX.into()),
        Some("uint64") | Some("uint") => (0, u64::MAX.into()),
        Some("int32") | Some("int") => (i32::MIN.into(), i32::MAX.into()),
        Some("uint32") => (0, u32::MAX.into()),
        Some("uint16") => (0, u16::MAX.into()),
        Some("uint8") => (0, u8::MAX.into()),
        _ => return,
    };
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if !obj.contains_key("minimum") {
        obj.insert("minimum".into(), json!(i64::try_from(min).unwrap_or(i64::MIN)));
    }
    if !obj.contains_key("maximum") {
        let v = match u64::try_from(max) {
            Ok(m) => json!(m),
            Err(_) => json!(u64::MAX),
        };
        obj.insert("maximum".into(), v);
    }
}

fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .with_transform(RecursiveTransform(integer_bounds))
}

fn schema_value(f: super::SchemaFn, g: &mut SchemaGenerator) -> Value {
    f(g).to_value()
}

fn problem_content() -> Value {
    json!({PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}})
}

/// The error statuses a route can answer, with what each means.
fn errors(d: &RouteDoc) -> Vec<(u16, &'static str)> {
    let mut out = vec![(
        400,
        "the query, a header or the path is not what this operation takes (or the body is not JSON)",
    )];
    match d.access {
        Access::Public => {
            if d.operation_id == "personSession" {
                out.push((401, "wrong, expired or spent code"));
            }
        }
        Access::Admin => {
            out.push((401, "missing or wrong admin token"));
            out.push((403, "no admin token is configured"));
        }
        Access::ApiKey => {
            out.push((401, "missing, unknown or revoked API key"));
            out.push((403, "the key lacks the scope, or a device or capture is refused"));
        }
        Access::Person => out.push((401, "missing, expired or revoked session")),
    }
    out.push((404, "no such resource (or not the caller's)"));
    if d.method != "get" {
        out.push((409, "conflicts with the resource's state (or a replayed nonce, or a concurrent request with this Idempotency-Key)"));
    }
    if d.body.is_some() {
        out.push((413, "the body is over the size limit"));
        out.push((415, "the body is not application/json"));
        out.push((
            422,
            "the body does not fit the schema, or a rule the schema cannot say refuses it",
        ));
    } else if d.idempotent {
        out.push((422, "this Idempotency-Key was used with another request"));
    }
    if d.access != Access::Public || d.operation_id.starts_with("person") {
        out.push((
            429,
            "a rate limit is spent (the problem's `limit` names it; `Retry-After` says when to try again)",
        ));
    }
    out.push((
        503,
        if d.operation_id == "ready" {
            "not ready: the database does not answer (`database_unavailable`) or the gallery is not loaded (`gallery_unavailable`)"
        } else {
            "overloaded or over the request time limit; retry after `Retry-After` seconds"
        },
    ));
    out
}

fn parameters(d: &RouteDoc, inline: &mut SchemaGenerator) -> Vec<Value> {
    let mut params = Vec::new();
    for seg in d.path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}));
        }
    }
    if let Some(q) = d.query {
        let schema = schema_value(q, inline);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = schema["properties"].as_object() {
            for (name, p) in props {
                let mut p = p.clone();
                // An absent parameter is the `null` of the Rust `Option`.
                if let Some(types) = p.get("type").and_then(Value::as_array) {
                    let t: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                    p["type"] = if t.len() == 1 {
                        t[0].clone()
                    } else {
                        Value::Array(t)
                    };
                }
                let description = p.as_object_mut().and_then(|o| o.remove("description"));
                let mut param = json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": p});
                if let Some(desc) = description {
                    param["description"] = desc;
                }
                params.push(param);
            }
        }
    }
    if d.idempotent {
        params.push(json!({"name": "Idempotency-Key", "in": "header", "required": true,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
            "description": "1..255 visible ASCII characters (e.g. a UUID). A replay returns the stored response; a different request with the same key is refused (422)"}));
    }
    params
}

fn links(d: &RouteDoc) -> Value {
    let mut out = Map::new();
    for l in d.links {
        let name = format!("{}_{}", l.operation_id, l.parameter);
        out.insert(
            name,
            json!({"operationId": l.operation_id, "parameters": {l.parameter: l.value}}),
        );
    }
    Value::Object(out)
}

/// The OpenAPI 3.1 document, built from the route table.
pub fn openapi_document() -> Value {
    let mut g = settings().into_generator();
    let mut inline = settings().with(|s| s.inline_subschemas = true).into_generator();
    g.subschema_for::<Problem>();
    let mut paths = Map::new();
    for d in routes() {
        let mut responses = Map::new();
        let mut ok = json!({"description": "success"});
        if let Some(r) = d.response {
            ok["content"] = json!({"application/json": {"schema": schema_value(r, &mut g)}});
        }
        if !d.links.is_empty() {
            ok["links"] = links(&d);
        }
        responses.insert(d.ok.to_string(), ok);
        let mut alt_status = None;
        if let Some((status, f)) = d.alt {
            alt_status = Some(status);
            let mut content = problem_content();
            content["application/json"] = json!({"schema": schema_value(f, &mut g)});
            responses.insert(
                status.to_string(),
                json!({"description": "refused, with the full answer (or a problem)", "content": content}),
            );
        }
        for (status, why) in errors(&d) {
            if Some(status) == alt_status {
                continue;
            }
            responses.insert(
                status.to_string(),
                json!({"description": why, "content": problem_content()}),
            );
        }
        responses.insert(
            "default".into(),
            json!({"description": "an unexpected error (5xx)", "content": problem_content()}),
        );
        let mut op = json!({
            "operationId": d.operation_id,
            "summary": d.summary,
            "parameters": parameters(&d, &mut inline),
            "responses": responses,
        });
        op["security"] = match d.access {
            Access::Public => json!([]),
            Access::Admin => json!([{"adminToken": []}]),
            Access::ApiKey => json!([{"apiKey": []}]),
            Access::Person => json!([{"personSession": []}]),
        };
        if let Some(body) = d.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema_value(body, &mut g)}}});
        }
        let entry = paths.entry(d.path.to_string()).or_insert_with(|| json!({}));
        entry[d.method] = op;
    }
    let schemas = g.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "OpenPalm service", "version": env!("CARGO_PKG_VERSION"),
            "description": "Enrollment, identification and linking for third-party businesses. Errors are RFC 9457 problem+json; every response carries x-request-id."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "op_test_... or op_live_..."},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "the admin token from the configuration"},
                "personSession": {"type": "http", "scheme": "bearer", "description": "ops_... from POST /v1/me/sessions"}
            }
        }
    })
}
