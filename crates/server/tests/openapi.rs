//! The OpenAPI document: every operation answers with a schema generated from its Rust type
//! (never a bare `{"type": "object"}`), every error is problem+json, every reference and link
//! resolves.

use openpalm_server::api::{openapi_document, routes, Access};
use serde_json::Value;

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("reference outside components: {r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "{r} does not resolve");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Whether a schema says something about its shape beyond "an object".
fn specific(doc: &Value, schema: &Value) -> bool {
    let s = resolve(doc, schema);
    ["properties", "items", "enum", "const", "oneOf", "anyOf", "allOf"]
        .iter()
        .any(|k| s.get(*k).is_some())
        || s.get("type").is_some_and(|t| t != "object")
}

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_operation_has_specific_response_schemas_and_problem_errors() {
    let doc = openapi_document();
    for r in routes() {
        let op = &doc["paths"][r.path][r.method];
        let responses = op["responses"].as_object().unwrap();
        let ok = &responses[&r.ok.to_string()];
        if r.ok == 204 {
            assert!(ok.get("content").is_none(), "{}: 204 has no body", r.operation_id);
        } else {
            let schema = &ok["content"]["application/json"]["schema"];
            assert!(
                specific(&doc, schema),
                "{}: success schema is generic: {schema}",
                r.operation_id
            );
        }
        for (status, resp) in responses {
            if status.starts_with('2') {
                continue;
            }
            assert_eq!(
                resp["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                "{} {status}",
                r.operation_id
            );
        }
        let has = |s: &str| responses.contains_key(s);
        assert!(has("404") && has("400") && has("default"), "{}", r.operation_id);
        if r.access != Access::Public {
            assert!(has("401"), "{}: 401 undocumented", r.operation_id);
        }
        if r.access == Access::ApiKey {
            assert!(has("403"), "{}: 403 undocumented", r.operation_id);
        }
        if r.body.is_some() {
            for s in ["413", "415", "422"] {
                assert!(has(s), "{}: {s} undocumented", r.operation_id);
            }
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                specific(&doc, schema),
                "{}: request schema is generic",
                r.operation_id
            );
        }
        if r.method != "get" {
            assert!(has("409"), "{}: 409 undocumented", r.operation_id);
        }
        // Links lead to operations that take the parameter they fill.
        for l in r.links {
            let target = routes()
                .into_iter()
                .find(|t| t.operation_id == l.operation_id)
                .unwrap_or_else(|| panic!("{}: link to unknown {}", r.operation_id, l.operation_id));
            let params = &doc["paths"][target.path][target.method]["parameters"];
            assert!(
                params
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == l.parameter),
                "{} -> {}: no parameter {}",
                r.operation_id,
                l.operation_id,
                l.parameter
            );
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        resolve(&doc, &serde_json::json!({ "$ref": r }));
    }
    // The problem schema is the one the service answers with.
    let problem = &doc["components"]["schemas"]["Problem"];
    for f in ["type", "title", "status", "detail", "code"] {
        assert!(problem["properties"][f].is_object(), "Problem.{f}");
    }
}

#[test]
fn request_schemas_carry_the_constraints_the_handlers_enforce() {
    let doc = openapi_document();
    let s = &doc["components"]["schemas"];
    let site = &s["RegisterDevice"]["properties"]["site"];
    assert_eq!(site["minLength"], 1);
    assert_eq!(site["maxLength"], 200);
    assert!(site["pattern"].is_string());
    assert!(s["RegisterDevice"]["properties"]["public_key"]["pattern"].is_string());
    assert_eq!(s["CreateKey"]["properties"]["scopes"]["minItems"], 1);
    let nonce = s["SealedCaptureWire"]["properties"]["nonce"]["pattern"]
        .as_str()
        .unwrap();
    assert!(
        nonce.contains("{21}"),
        "16 bytes are 24 base64 characters: {nonce}"
    );
    let devices = &doc["paths"]["/v1/devices"]["get"]["parameters"];
    let cursor = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cursor")
        .unwrap();
    assert!(
        cursor["schema"]["pattern"].is_string(),
        "an empty cursor is not schema-valid"
    );
}
