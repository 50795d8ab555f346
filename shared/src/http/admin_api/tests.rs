//! The admin API's wire format (Storyden's shape) without I/O: the admin bodies, queries and errors.

use super::*;
use serde_json::{Value, json};

fn body(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

#[test]
fn a_long_error_message_is_cut_on_a_character_boundary() {
    // serde quotes the unknown field; each offset puts the cut inside "é" once.
    for offset in 0..4 {
        let field = format!("{}{}", "a".repeat(offset), "é".repeat(400));
        let raw = format!(r#"{{"{field}": 1}}"#);
        let error =
            json_body::<CreateClientRequest>(&Body::from(raw)).expect_err("an unknown field");
        let r = error.into_response();
        assert_eq!(r.status(), 400);
        let message = body(&r)["message"].as_str().unwrap().to_owned();
        assert!(message.len() <= MAX_MESSAGE_LEN, "{offset}");
        assert!(message.starts_with("the body is not valid: unknown field"));
    }
}

#[test]
fn api_errors_follow_storyden() {
    let r = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such client")
        .suggest("list the clients")
        .into_response();
    assert_eq!(r.status(), 404);
    assert_eq!(
        body(&r),
        json!({"error": "not_found", "message": "no such client", "suggested": "list the clients", "metadata": {}})
    );
}

#[test]
fn every_client_outcome_has_its_status() {
    let cases = [
        (ClientAdminError::NotFound, 404, "not_found"),
        (ClientAdminError::AlreadyExists, 409, "conflict"),
        (ClientAdminError::Conflict, 409, "conflict"),
        (
            ClientAdminError::Invalid(ClientError::Name),
            400,
            "invalid_request",
        ),
    ];
    for (outcome, status, error) in cases {
        let response = ApiError::from(outcome).into_response();
        assert_eq!(response.status(), status);
        assert_eq!(body(&response)["error"], error);
    }
}

#[test]
fn a_long_parser_message_is_cut_on_a_character_boundary() {
    let body = Body::from(format!("{{\"{}\": 1", "é".repeat(400)));
    let err = json_body::<Value>(&body).unwrap_err();
    assert!(err.message.len() <= MAX_MESSAGE_LEN);
    assert_eq!(err.status, 400);
}

#[test]
fn patch_bodies_tell_null_from_absent() {
    let patch: PatchClientRequest = serde_json::from_value(json!({
        "poll_interval_seconds": null,
        "access_token_lifetime_seconds": 900,
    }))
    .unwrap();
    let changes = patch.into_changes().unwrap();
    assert_eq!(changes.overrides.poll_interval, Some(None));
    assert_eq!(
        changes.overrides.access_token_lifetime,
        Some(Some(std::time::Duration::from_secs(900)))
    );
    assert_eq!(changes.overrides.device_code_lifetime, None);
    let out_of_range: PatchClientRequest =
        serde_json::from_value(json!({"poll_interval_seconds": 0})).unwrap();
    assert_eq!(
        out_of_range.into_changes().unwrap_err(),
        ClientError::OutOfRange(Setting::PollInterval)
    );
}

#[test]
fn a_view_shows_every_seed_field_and_never_the_secret_hash() {
    let client = crate::domain::test_client("tv");
    let view = serde_json::to_value(ClientView::from(&client)).unwrap();
    assert_eq!(view["client_id"], "tv");
    assert_eq!(view["type"], "public");
    assert!(view.get("secret_hash").is_none());
}

#[test]
fn internal_errors_hide_their_cause() {
    let cause = std::io::Error::other("secret-detail");
    let r = ApiError::internal("test", &cause).into_response();
    assert_eq!(r.status(), 500);
    assert!(!String::from_utf8_lossy(r.body().as_ref()).contains("secret-detail"));
}
