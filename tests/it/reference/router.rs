//! The reference server's behaviour, driven without sockets through `tower::ServiceExt::oneshot`.
//!
//! Every response of every test goes through [`send`], which asserts what must hold for all of
//! them: JSON content type, rate-limit headers, no 5xx, and for errors the documented envelope
//! with the deterministic id (recomputed here with MD5, independently of the server's code).
//! The harness is [`super::harness`].

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use token_conformance::reference::{
    ADMIN_ROLE_NAME, FULL_ACCESS_TOKEN_NAME, MANAGEMENT_TOKEN_NAME, MAX_BODY_BYTES,
    READ_ONLY_ROLE_NAME, READ_ONLY_TOKEN_NAME, RateLimit, ServerConfig, routers,
};
use token_conformance::spec::{SchemaId, Spec};

use super::harness::*;

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_seeded_project_has_two_roles_a_factory_token_and_the_management_token() {
    let api = Api::new();
    let list = api.admin(get("/access_tokens")).await;
    assert_valid(SchemaId::AccessTokenList, &list.body);
    let tokens = list.ok(200).as_array().unwrap();
    let names: Vec<&str> = tokens
        .iter()
        .map(|t| t["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [READ_ONLY_TOKEN_NAME, MANAGEMENT_TOKEN_NAME]);

    let admin_role = api.role_named(ADMIN_ROLE_NAME).await;
    let read_only_role = api.role_named(READ_ONLY_ROLE_NAME).await;
    let factory = &tokens[0];
    assert_eq!(factory["attributes"]["hardcoded_type"], "readonly");
    assert_eq!(factory["attributes"]["can_access_cda"], true);
    assert_eq!(factory["attributes"]["can_access_cda_preview"], false);
    assert_eq!(factory["attributes"]["can_access_cma"], false);
    assert_eq!(
        factory["relationships"]["role"]["data"],
        json!({"type": "role", "id": read_only_role})
    );

    let management = &tokens[1];
    assert_eq!(management["attributes"]["hardcoded_type"], Value::Null);
    assert_eq!(management["attributes"]["token"], api.admin.as_str());
    assert_eq!(
        management["relationships"]["role"]["data"]["id"],
        admin_role.as_str()
    );
    for flag in ["can_access_cda", "can_access_cda_preview", "can_access_cma"] {
        assert_eq!(management["attributes"][flag], true);
    }

    let roles = api.admin(get("/roles")).await;
    assert_valid(SchemaId::RoleList, &roles.body);
    let admin = api.admin(get(&format!("/roles/{admin_role}"))).await;
    let read_only = api.admin(get(&format!("/roles/{read_only_role}"))).await;
    for permission in Spec::embedded().role_permissions() {
        assert_eq!(
            admin.ok(200)["attributes"][permission],
            true,
            "{permission}"
        );
        assert_eq!(
            read_only.ok(200)["attributes"][permission],
            false,
            "{permission}"
        );
    }
    assert_eq!(admin.ok(200)["attributes"]["environments_access"], "all");
}

#[tokio::test]
async fn legacy_factory_tokens_adds_the_full_access_token() {
    let api = Api::with(ServerConfig {
        rate_limit: None,
        legacy_factory_tokens: true,
        ..ServerConfig::default()
    });
    let full = api.token_named(FULL_ACCESS_TOKEN_NAME).await;
    assert_eq!(full["attributes"]["hardcoded_type"], "admin");
    let admin_role = api.role_named(ADMIN_ROLE_NAME).await;
    assert_eq!(
        full["relationships"]["role"]["data"]["id"],
        admin_role.as_str()
    );
    let id = full["id"].as_str().unwrap();
    api.admin(put(&format!("/access_tokens/{id}")).json(&update_body(id, "x", ALL)))
        .await
        .expect(401, "NON_EDITABLE_ACCESS_TOKEN");
}

#[tokio::test]
async fn a_configured_admin_secret_is_used() {
    let api = Api::with(ServerConfig {
        admin_secret: Some("my-own-secret".to_owned()),
        rate_limit: None,
        ..ServerConfig::default()
    });
    assert_eq!(api.admin, "my-own-secret");
    api.cma(get("/site").bearer("my-own-secret")).await.ok(200);
    let bad = ServerConfig {
        admin_secret: Some("has space".to_owned()),
        ..ServerConfig::default()
    };
    assert!(routers(&bad).is_err());
}

#[tokio::test]
async fn create_answers_201_and_the_token_is_retrievable_and_listed() {
    let api = Api::new();
    let role = api.role_named(READ_ONLY_ROLE_NAME).await;
    let body = json!({"data": {"type": "access_token", "attributes": attributes("new one", CMA_ONLY),
        "relationships": {"role": {"data": {"type": "role", "id": role}}}}});
    let created = api.admin(post("/access_tokens").json(&body)).await;
    assert_valid(SchemaId::AccessToken, &created.body);
    let data = created.ok(201).clone();
    assert_eq!(data["attributes"]["hardcoded_type"], Value::Null);
    assert_eq!(data["attributes"]["last_cma_access"], "never");
    assert_eq!(data["attributes"]["last_cda_access"], "never");
    let secret = data["attributes"]["token"].as_str().unwrap();
    assert_eq!(secret.len(), 30);
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    let id = data["id"].as_str().unwrap();
    let retrieved = api.admin(get(&format!("/access_tokens/{id}"))).await;
    assert_valid(SchemaId::AccessToken, &retrieved.body);
    assert_eq!(retrieved.ok(200), &data);
    assert!(api.tokens().await.contains(&data));
}

#[tokio::test]
async fn update_applies_name_and_flags_and_keeps_secret_and_role_when_relationships_are_omitted() {
    let api = Api::new();
    let viewer = api.create_role("Viewer", &[]).await;
    let (id, secret) = api.create_token("before", &viewer, ALL).await;
    let flags = Flags {
        cda: false,
        preview: true,
        cma: true,
    };
    let updated = api
        .admin(put(&format!("/access_tokens/{id}")).json(&update_body(&id, "after", flags)))
        .await;
    assert_valid(SchemaId::AccessToken, &updated.body);
    let data = updated.ok(200).clone();
    assert_eq!(data["id"], id.as_str());
    assert_eq!(data["attributes"]["name"], "after");
    assert_eq!(data["attributes"]["can_access_cda"], false);
    assert_eq!(data["attributes"]["can_access_cda_preview"], true);
    assert_eq!(data["attributes"]["can_access_cma"], true);
    assert_eq!(data["attributes"]["token"], secret.as_str());
    assert_eq!(data["relationships"]["role"]["data"]["id"], viewer.as_str());
    assert_eq!(api.token(&id).await, data);
    // The secret still authenticates.
    api.cma(get("/site").bearer(&secret)).await.ok(200);
}

#[tokio::test]
async fn update_with_relationships_reassigns_the_role() {
    let api = Api::new();
    let viewer = api.create_role("Viewer", &[]).await;
    let manager = api
        .create_role("Manager", &["can_manage_access_tokens"])
        .await;
    let (id, _) = api.create_token("t", &viewer, ALL).await;
    let body = update_with_role(&id, "t", ALL, &manager);
    let data = api
        .admin(put(&format!("/access_tokens/{id}")).json(&body))
        .await
        .ok(200)
        .clone();
    assert_eq!(
        data["relationships"]["role"]["data"],
        json!({"type": "role", "id": manager})
    );
    assert_eq!(
        api.token(&id).await["relationships"]["role"]["data"]["id"],
        manager.as_str()
    );
}

#[tokio::test]
async fn a_role_change_holds_on_the_very_next_request() {
    let api = Api::new();
    let viewer = api.create_role("Viewer", &[]).await;
    let manager = api
        .create_role("Manager", &["can_manage_access_tokens"])
        .await;
    let (id, secret) = api.create_token("t", &viewer, ALL).await;
    let (other, _) = api.create_token("other", &viewer, ALL).await;
    let rename =
        |name: &str| put(&format!("/access_tokens/{other}")).json(&update_body(&other, name, ALL));

    api.cma(rename("o1").bearer(&secret))
        .await
        .expect(401, "INSUFFICIENT_PERMISSIONS");
    api.admin(
        put(&format!("/access_tokens/{id}")).json(&update_with_role(&id, "t", ALL, &manager)),
    )
    .await
    .ok(200);
    api.cma(rename("o2").bearer(&secret)).await.ok(200);
    api.admin(put(&format!("/access_tokens/{id}")).json(&update_with_role(&id, "t", ALL, &viewer)))
        .await
        .ok(200);
    api.cma(rename("o3").bearer(&secret))
        .await
        .expect(401, "INSUFFICIENT_PERMISSIONS");
}

#[tokio::test]
async fn a_change_of_a_role_itself_holds_on_the_very_next_request() {
    let api = Api::new();
    let role = api.create_role("Shifting", &[]).await;
    let (_, secret) = api.create_token("t", &role, ALL).await;
    let (other, _) = api.create_token("other", &role, ALL).await;
    let rename = put(&format!("/access_tokens/{other}")).json(&update_body(&other, "o", ALL));
    api.cma(rename.clone().bearer(&secret))
        .await
        .expect(401, "INSUFFICIENT_PERMISSIONS");
    let grant = json!({"data": {"type": "role", "attributes": {"can_manage_access_tokens": true}}});
    api.admin(put(&format!("/roles/{role}")).json(&grant))
        .await
        .ok(200);
    api.cma(rename.bearer(&secret)).await.ok(200);
}

#[tokio::test]
async fn a_change_of_can_access_cma_holds_on_the_very_next_request() {
    let api = Api::new();
    let (id, secret) = api.admin_like_token("t").await;
    api.cma(get("/site").bearer(&secret)).await.ok(200);
    let off = Flags { cma: false, ..ALL };
    api.admin(put(&format!("/access_tokens/{id}")).json(&update_body(&id, "t", off)))
        .await
        .ok(200);
    api.cma(get("/site").bearer(&secret))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
    api.admin(put(&format!("/access_tokens/{id}")).json(&update_body(&id, "t", ALL)))
        .await
        .ok(200);
    api.cma(get("/site").bearer(&secret)).await.ok(200);
}

#[tokio::test]
async fn a_token_can_take_away_its_own_cma_access() {
    let api = Api::new();
    let (id, secret) = api.admin_like_token("t").await;
    let off = Flags { cma: false, ..ALL };
    let body = update_body(&id, "t", off);
    api.cma(
        put(&format!("/access_tokens/{id}"))
            .json(&body)
            .bearer(&secret),
    )
    .await
    .ok(200);
    api.cma(get("/users/me").bearer(&secret))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
}

#[tokio::test]
async fn rotation_gives_a_new_secret_and_the_old_one_fails_on_its_very_next_request() {
    let api = Api::new();
    let (id, old) = api.admin_like_token("t").await;
    api.cma(get("/site").bearer(&old)).await.ok(200);
    let before = api.token(&id).await;
    let rotated = api
        .admin(post(&format!("/access_tokens/{id}/regenerate_token")))
        .await;
    assert_valid(SchemaId::AccessToken, &rotated.body);
    let data = rotated.ok(200).clone();
    let new = data["attributes"]["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(data["relationships"], before["relationships"]);
    for flag in [
        "name",
        "can_access_cda",
        "can_access_cda_preview",
        "can_access_cma",
    ] {
        assert_eq!(data["attributes"][flag], before["attributes"][flag]);
    }
    api.cma(get("/site").bearer(&old))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
    api.cda(graphql(SITE_QUERY).bearer(&old))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
    api.cma(get("/site").bearer(&new)).await.ok(200);
}

#[tokio::test]
async fn delete_answers_the_deleted_token_and_it_is_gone() {
    let api = Api::new();
    let (id, secret) = api.admin_like_token("doomed").await;
    let deleted = api.admin(delete(&format!("/access_tokens/{id}"))).await;
    assert_valid(SchemaId::AccessToken, &deleted.body);
    assert_eq!(deleted.ok(200)["id"], id.as_str());
    api.admin(get(&format!("/access_tokens/{id}")))
        .await
        .expect(404, "NOT_FOUND");
    api.cma(get("/site").bearer(&secret))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
    api.admin(delete(&format!("/access_tokens/{id}")))
        .await
        .expect(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_token_cannot_delete_itself() {
    let api = Api::new();
    let me = api.token_named(MANAGEMENT_TOKEN_NAME).await;
    let id = me["id"].as_str().unwrap();
    api.admin(delete(&format!("/access_tokens/{id}")))
        .await
        .expect(422, "CANNOT_DESTROY_CURRENT_USER");
    assert_eq!(
        api.token(id).await["attributes"]["name"],
        MANAGEMENT_TOKEN_NAME
    );
}

#[tokio::test]
async fn a_factory_token_refuses_updates_and_stays_exactly_as_it_was() {
    let api = Api::new();
    let factory = api.token_named(READ_ONLY_TOKEN_NAME).await;
    let id = factory["id"].as_str().unwrap();
    // Its own current values, as the suite sends them; then a real change.
    let same = update_body(
        id,
        READ_ONLY_TOKEN_NAME,
        Flags {
            cda: true,
            preview: false,
            cma: false,
        },
    );
    let admin_role = api.role_named(ADMIN_ROLE_NAME).await;
    let change = update_with_role(id, "hijacked", ALL, &admin_role);
    for body in [same, change] {
        api.admin(put(&format!("/access_tokens/{id}")).json(&body))
            .await
            .expect(401, "NON_EDITABLE_ACCESS_TOKEN");
        assert_eq!(api.token(id).await, factory);
    }
}

#[tokio::test]
async fn a_factory_token_can_be_rotated_and_deleted() {
    let api = Api::new();
    let factory = api.token_named(READ_ONLY_TOKEN_NAME).await;
    let id = factory["id"].as_str().unwrap();
    let old = factory["attributes"]["token"].as_str().unwrap();
    api.cda(graphql(SITE_QUERY).bearer(old)).await.ok(200);
    let rotated = api
        .admin(post(&format!("/access_tokens/{id}/regenerate_token")))
        .await;
    let new = rotated.ok(200)["attributes"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rotated.ok(200)["attributes"]["hardcoded_type"], "readonly");
    api.cda(graphql(SITE_QUERY).bearer(old))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
    api.cda(graphql(SITE_QUERY).bearer(&new)).await.ok(200);
    api.admin(delete(&format!("/access_tokens/{id}")))
        .await
        .ok(200);
    assert!(api.tokens().await.iter().all(|t| t["id"] != id));
}

#[tokio::test]
async fn the_secret_is_shown_only_to_callers_whose_role_manages_tokens() {
    let api = Api::new();
    let viewer = api.create_role("Viewer", &[]).await;
    let manager = api
        .create_role("Manager", &["can_manage_access_tokens"])
        .await;
    let (viewer_id, viewer_secret) = api.create_token("viewer", &viewer, CMA_ONLY).await;
    let (_, manager_secret) = api.create_token("manager", &manager, CMA_ONLY).await;

    let as_viewer = api.cma(get("/access_tokens").bearer(&viewer_secret)).await;
    assert_valid(SchemaId::AccessTokenList, &as_viewer.body);
    for token in as_viewer.ok(200).as_array().unwrap() {
        assert_eq!(token["attributes"]["token"], Value::Null);
    }
    let one = api
        .cma(get(&format!("/access_tokens/{viewer_id}")).bearer(&viewer_secret))
        .await;
    assert_eq!(one.ok(200)["attributes"]["token"], Value::Null);
    let me = api.cma(get("/users/me").bearer(&viewer_secret)).await;
    assert_eq!(me.ok(200)["attributes"]["token"], Value::Null);

    let as_manager = api.cma(get("/access_tokens").bearer(&manager_secret)).await;
    for token in as_manager.ok(200).as_array().unwrap() {
        assert!(token["attributes"]["token"].is_string(), "{token}");
    }
    let me = api.cma(get("/users/me").bearer(&manager_secret)).await;
    assert_eq!(me.ok(200)["attributes"]["token"], manager_secret.as_str());

    // A caller that moves itself to a role without the permission gets null in that very answer.
    let me_id = me.ok(200)["id"].as_str().unwrap().to_owned();
    let demote = update_with_role(&me_id, "manager", CMA_ONLY, &viewer);
    let answer = api
        .cma(
            put(&format!("/access_tokens/{me_id}"))
                .json(&demote)
                .bearer(&manager_secret),
        )
        .await;
    assert_eq!(answer.ok(200)["attributes"]["token"], Value::Null);
}

#[tokio::test]
async fn effective_capabilities_are_role_and_flags_together() {
    let api = Api::new();
    let admin_role = api.role_named(ADMIN_ROLE_NAME).await;
    let (_, no_cma) = api
        .create_token("no cma", &admin_role, Flags { cma: false, ..ALL })
        .await;
    let no_cma_site = api.cma(get("/site").bearer(&no_cma)).await;
    no_cma_site.expect(401, "INVALID_AUTHORIZATION_HEADER");
    let viewer = api.create_role("Viewer", &[]).await;
    let (_, viewer_secret) = api.create_token("viewer", &viewer, ALL).await;
    let body = json!({"data": {"type": "role", "attributes": {"name": "x"}}});
    let refused = api
        .cma(post("/roles").json(&body).bearer(&viewer_secret))
        .await;
    refused.expect(401, "INSUFFICIENT_PERMISSIONS");
    assert_eq!(
        refused.details(),
        &json!({"permission": "can_manage_users"})
    );
}

#[tokio::test]
async fn last_access_goes_from_never_to_today_per_api() {
    let api = Api::new();
    let (id, secret) = api.admin_like_token("t").await;
    let access = |t: &Value| {
        (
            t["attributes"]["last_cma_access"].clone(),
            t["attributes"]["last_cda_access"].clone(),
        )
    };
    assert_eq!(
        access(&api.token(&id).await),
        (json!("never"), json!("never"))
    );
    api.cma(get("/site").bearer(&secret)).await.ok(200);
    assert_eq!(
        access(&api.token(&id).await),
        (json!("today"), json!("never"))
    );
    api.cda(graphql(SITE_QUERY).bearer(&secret)).await.ok(200);
    assert_eq!(
        access(&api.token(&id).await),
        (json!("today"), json!("today"))
    );

    // A refused call does not count as a use.
    let admin_role = api.role_named(ADMIN_ROLE_NAME).await;
    let (other, other_secret) = api
        .create_token("no cma", &admin_role, Flags { cma: false, ..ALL })
        .await;
    api.cma(get("/site").bearer(&other_secret))
        .await
        .expect(401, "");
    assert_eq!(
        access(&api.token(&other).await),
        (json!("never"), json!("never"))
    );
}

#[tokio::test]
async fn roles_can_be_created_read_updated_and_deleted() {
    let api = Api::new();
    let body = json!({"data": {"type": "role", "attributes": {
        "name": "Editors", "can_edit_schema": true, "environments_access": "primary_only",
        "positive_item_type_permissions": [{"item_type": "1", "action": "all"}]}}});
    let created = api.admin(post("/roles").json(&body)).await;
    assert_valid(SchemaId::Role, &created.body);
    let role = created.ok(201).clone();
    let id = role["id"].as_str().unwrap();
    assert_eq!(role["attributes"]["can_edit_schema"], true);
    assert_eq!(role["attributes"]["can_manage_access_tokens"], false);
    assert_eq!(role["attributes"]["environments_access"], "primary_only");
    assert_eq!(
        role["attributes"]["positive_item_type_permissions"],
        json!([{"item_type": "1", "action": "all"}])
    );
    assert_eq!(role["attributes"]["negative_upload_permissions"], json!([]));
    assert_eq!(api.admin(get(&format!("/roles/{id}"))).await.ok(200), &role);

    let partial =
        json!({"data": {"type": "role", "id": id, "attributes": {"can_manage_webhooks": true}}});
    let updated = api.admin(put(&format!("/roles/{id}")).json(&partial)).await;
    assert_valid(SchemaId::Role, &updated.body);
    let updated = updated.ok(200).clone();
    assert_eq!(updated["attributes"]["can_manage_webhooks"], true);
    assert_eq!(updated["attributes"]["can_edit_schema"], true);
    assert_eq!(updated["attributes"]["name"], "Editors");

    let deleted = api.admin(delete(&format!("/roles/{id}"))).await;
    assert_eq!(deleted.ok(200)["id"], id);
    api.admin(get(&format!("/roles/{id}")))
        .await
        .expect(404, "NOT_FOUND");
}

#[tokio::test]
async fn role_validation() {
    let api = Api::new();
    let blank = json!({"data": {"type": "role", "attributes": {"name": " \u{3000} "}}});
    let refused = api.admin(post("/roles").json(&blank)).await;
    refused.expect(422, "INVALID_FIELD");
    assert_eq!(
        refused.details(),
        &json!({"field": "name", "code": "VALIDATION_REQUIRED"})
    );

    let role = api.create_role("Used", &[]).await;
    api.create_token("holder", &role, ALL).await;
    let in_use = api.admin(delete(&format!("/roles/{role}"))).await;
    in_use.expect(422, "INVALID_FIELD");
    assert_eq!(
        in_use.details(),
        &json!({"field": "role", "code": "VALIDATION_IN_USE"})
    );

    let wrong_id = json!({"data": {"type": "role", "id": "999", "attributes": {}}});
    let mismatch = api
        .admin(put(&format!("/roles/{role}")).json(&wrong_id))
        .await;
    mismatch.expect(422, "INVALID_FIELD");
    assert_eq!(
        mismatch.details(),
        &json!({"field": "id", "code": "VALIDATION_INVALID"})
    );

    let no_name = json!({"data": {"type": "role", "attributes": {"can_edit_site": true}}});
    api.admin(post("/roles").json(&no_name))
        .await
        .expect(422, "INVALID_FORMAT");
    let viewer = api.create_role("Viewer", &[]).await;
    let (_, viewer_secret) = api.create_token("viewer", &viewer, CMA_ONLY).await;
    api.cma(delete(&format!("/roles/{role}")).bearer(&viewer_secret))
        .await
        .expect(401, "INSUFFICIENT_PERMISSIONS");
    api.cma(get(&format!("/roles/{role}")).bearer(&viewer_secret))
        .await
        .ok(200);
}

#[tokio::test]
async fn site_and_users_me_are_open_to_every_cma_token() {
    let api = Api::new();
    let viewer = api.create_role("Viewer", &[]).await;
    let (id, secret) = api.create_token("viewer", &viewer, CMA_ONLY).await;
    let site = api.cma(get("/site").bearer(&secret)).await;
    assert_eq!(site.ok(200)["type"], "site");
    assert_eq!(site.ok(200)["attributes"]["locales"], json!(["en"]));
    let me = api.cma(get("/users/me").bearer(&secret)).await;
    assert_valid(SchemaId::AccessToken, &me.body);
    assert_eq!(me.ok(200)["id"], id.as_str());
}

// ---------------------------------------------------------------------------------------------
// The CDA
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_cda_answers_the_site_locales_query() {
    let api = Api::new();
    for query in [
        SITE_QUERY,
        "query { _site { locales } }",
        "query Locales {\n _site {\n locales\n }\n}",
    ] {
        let answer = api.cda(graphql(query).bearer(&api.admin)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, json!({"data": {"_site": {"locales": ["en"]}}}));
    }
    let other = api
        .cda(graphql("{ allArticles { id } }").bearer(&api.admin))
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(
        other.body["errors"][0]["message"].is_string(),
        "{:?}",
        other.body
    );
    assert!(other.body.get("data").is_none());
}

#[tokio::test]
async fn the_cda_checks_flags_and_drafts() {
    let api = Api::new();
    let role = api.role_named(READ_ONLY_ROLE_NAME).await;
    let none = Flags {
        cda: false,
        preview: false,
        cma: true,
    };
    let published_only = Flags {
        cda: true,
        preview: false,
        cma: false,
    };
    let preview_only = Flags {
        cda: false,
        preview: true,
        cma: false,
    };
    let (_, none) = api.create_token("none", &role, none).await;
    let (_, published) = api.create_token("published", &role, published_only).await;
    let (_, preview) = api.create_token("preview", &role, preview_only).await;
    let drafts = |secret: &str| {
        graphql(SITE_QUERY)
            .bearer(secret)
            .header("x-include-drafts", "true")
    };

    let refused = api.cda(graphql(SITE_QUERY).bearer(&none)).await;
    refused.expect(401, "INVALID_AUTHORIZATION_HEADER");
    assert!(refused.details()["message"].is_string());
    api.cda(graphql(SITE_QUERY).bearer(&published))
        .await
        .ok(200);
    api.cda(
        graphql(SITE_QUERY)
            .bearer(&published)
            .header("x-include-drafts", "false"),
    )
    .await
    .ok(200);
    api.cda(drafts(&published))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
    api.cda(graphql(SITE_QUERY).bearer(&preview)).await.ok(200);
    api.cda(drafts(&preview)).await.ok(200);
    // The CDA ignores the role: the Read-only role is enough to read.
    api.cda(drafts(&api.admin)).await.ok(200);
}

#[tokio::test]
async fn cda_errors() {
    let api = Api::new();
    let missing = api.cda(graphql(SITE_QUERY)).await;
    missing.expect(401, "INVALID_AUTHORIZATION_HEADER");
    assert!(missing.details()["message"].is_string());
    api.cda(graphql(SITE_QUERY).bearer("nope"))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
    for value in ["TRUE", "1", "yes", ""] {
        let bad = graphql(SITE_QUERY)
            .bearer(&api.admin)
            .header("x-include-drafts", value);
        api.cda(bad)
            .await
            .expect(400, "INVALID_X_INCLUDE_DRAFTS_HEADER");
    }
    let not_json = graphql(SITE_QUERY).bearer(&api.admin).raw("{query");
    api.cda(not_json).await.expect(400, "INVALID_REQUEST_BODY");
    let no_query = graphql(SITE_QUERY)
        .bearer(&api.admin)
        .raw(r#"{"query": 1}"#);
    api.cda(no_query).await.expect(400, "INVALID_REQUEST_BODY");
    let mut elsewhere = graphql(SITE_QUERY).bearer(&api.admin);
    elsewhere.uri = "/graphql".to_owned();
    api.cda(elsewhere).await.expect(404, "INVALID_ENDPOINT");
    let mut wrong_method = graphql(SITE_QUERY).bearer(&api.admin);
    wrong_method.method = Method::GET;
    api.cda(wrong_method).await.expect(404, "INVALID_ENDPOINT");
    let huge = graphql(SITE_QUERY)
        .bearer(&api.admin)
        .raw(vec![b' '; MAX_BODY_BYTES + 1]);
    api.cda(huge).await.expect(413, "REQUEST_TOO_LARGE");
    // Header checks come before credentials.
    let both = graphql(SITE_QUERY).header("x-include-drafts", "maybe");
    api.cda(both)
        .await
        .expect(400, "INVALID_X_INCLUDE_DRAFTS_HEADER");
}

// ---------------------------------------------------------------------------------------------
// Every error path
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn routing_errors_are_invalid_endpoint() {
    let api = Api::new();
    for (method, uri) in [
        (Method::GET, "/nope"),
        (Method::GET, "/access_tokens/"),
        (Method::PATCH, "/access_tokens/100"),
        (Method::POST, "/access_tokens/100"),
        (Method::GET, "/access_tokens/100/regenerate_token"),
        (Method::DELETE, "/access_tokens"),
        (Method::OPTIONS, "/site"),
        (Method::GET, "/"),
    ] {
        api.admin(request(method, uri))
            .await
            .expect(404, "INVALID_ENDPOINT");
    }
}

#[tokio::test]
async fn header_errors() {
    let api = Api::new();
    api.admin(get("/site").without("accept")).await.ok(200);
    api.admin(get("/site").without("accept").header("accept", "*/*"))
        .await
        .ok(200);
    api.admin(
        get("/site")
            .without("accept")
            .header("accept", "application/vnd.api+json"),
    )
    .await
    .ok(200);
    for bad in ["text/html", "application/xml", "image/*"] {
        let req = get("/site").without("accept").header("accept", bad);
        api.admin(req).await.expect(406, "INVALID_ACCEPT_HEADER");
    }
    api.admin(get("/site").without("x-api-version"))
        .await
        .ok(200);
    for bad in ["2", "4", "three"] {
        let req = get("/site")
            .without("x-api-version")
            .header("x-api-version", bad);
        api.admin(req)
            .await
            .expect(400, "INVALID_API_VERSION_HEADER");
    }
}

#[tokio::test]
async fn body_errors() {
    let api = Api::new();
    let id = api.token_named(MANAGEMENT_TOKEN_NAME).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/access_tokens/{id}");
    let body = update_body(&id, MANAGEMENT_TOKEN_NAME, ALL).to_string();
    let with_type = |ct: &str| put(&path).header("content-type", ct).raw(body.clone());
    api.admin(with_type("application/json")).await.ok(200);
    api.admin(with_type("application/json; charset=utf-8"))
        .await
        .ok(200);
    api.admin(with_type("Application/VND.API+JSON"))
        .await
        .ok(200);
    for bad in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        api.admin(with_type(bad))
            .await
            .expect(415, "INVALID_CONTENT_TYPE_HEADER");
    }
    api.admin(put(&path).raw(body.clone()))
        .await
        .expect(415, "INVALID_CONTENT_TYPE_HEADER");

    let raw = |bytes: Vec<u8>| {
        put(&path)
            .header("content-type", "application/json")
            .raw(bytes)
    };
    for bad in [
        b"".to_vec(),
        b"{".to_vec(),
        b"{\"data\": \"\xff\xfe\"}".to_vec(),
        b"1e999999".to_vec(),
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
    ] {
        api.admin(raw(bad)).await.expect(415, "INVALID_JSON_BODY");
    }
    api.admin(raw(vec![b' '; MAX_BODY_BYTES + 1]))
        .await
        .expect(413, "REQUEST_TOO_LARGE");
    // Exactly the limit is read (and then fails the schema, not the size check).
    let mut at_limit = b"{}".to_vec();
    at_limit.resize(MAX_BODY_BYTES, b' ');
    api.admin(raw(at_limit)).await.expect(422, "INVALID_FORMAT");
}

#[tokio::test]
async fn credential_errors() {
    let api = Api::new();
    let missing = api.cma(get("/site")).await;
    missing.expect(401, "INVALID_SITE");
    for bad in ["Bearer nope", "nope", "Basic abc", "Bearer", "Bearer a b"] {
        api.cma(get("/site").header("authorization", bad))
            .await
            .expect(401, "INVALID_AUTHORIZATION_HEADER");
    }
    let doubled = get("/site").bearer(&api.admin).bearer(&api.admin);
    api.cma(doubled)
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
    let factory = api.token_named(READ_ONLY_TOKEN_NAME).await;
    let factory_secret = factory["attributes"]["token"].as_str().unwrap();
    // The factory token has can_access_cma off.
    api.cma(get("/site").bearer(factory_secret))
        .await
        .expect(401, "INVALID_AUTHORIZATION_HEADER");
}

#[tokio::test]
async fn schema_errors_name_the_failing_paths() {
    let api = Api::new();
    let id = api.token_named(MANAGEMENT_TOKEN_NAME).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/access_tokens/{id}");
    let mut body = update_body(&id, "x", ALL);
    body["data"]["type"] = json!("user");
    body["data"]["attributes"]["can_access_cma"] = json!("x".repeat(5000));
    let refused = api.admin(put(&path).json(&body)).await;
    refused.expect(422, "INVALID_FORMAT");
    let details = refused.details();
    let paths: Vec<&str> = details["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/data/type"), "{details}");
    assert!(
        paths.contains(&"/data/attributes/can_access_cma"),
        "{details}"
    );
    for error in details["errors"].as_array().unwrap() {
        assert!(
            error["schema_path"]
                .as_str()
                .unwrap()
                .contains("update_request.schema.json"),
            "{details}"
        );
    }
    let messages = details["messages"].as_array().unwrap();
    assert_eq!(messages.len(), paths.len());
    for message in messages {
        let message = message.as_str().unwrap();
        assert!(message.starts_with('/'), "{message}");
        assert!(message.chars().count() <= 201, "{message}");
    }
    // Nothing changed.
    assert_eq!(
        api.token(&id).await["attributes"]["name"],
        MANAGEMENT_TOKEN_NAME
    );

    for (mutate, pointer) in [
        (json!({"data": {"type": "access_token", "id": id}}), "/data"),
        (
            json!({"data": {"type": "access_token", "id": id, "attributes": {}}}),
            "/data/attributes",
        ),
        (json!([]), ""),
    ] {
        let refused = api.admin(put(&path).json(&mutate)).await;
        refused.expect(422, "INVALID_FORMAT");
        let errors = refused.details()["errors"].as_array().unwrap().clone();
        assert!(errors.iter().any(|e| e["path"] == pointer), "{errors:?}");
    }
    let null_role = json!({"data": {"type": "access_token", "id": id, "attributes": attributes("x", ALL),
        "relationships": {"role": {"data": null}}}});
    api.admin(put(&path).json(&null_role))
        .await
        .expect(422, "INVALID_FORMAT");
}

#[tokio::test]
async fn validation_errors() {
    let api = Api::new();
    let (id, _) = api.admin_like_token("mine").await;
    api.admin_like_token("taken").await;
    let path = format!("/access_tokens/{id}");

    let duplicate = api
        .admin(put(&path).json(&update_body(&id, "taken", ALL)))
        .await;
    duplicate.expect(422, "INVALID_FIELD");
    assert_eq!(
        duplicate.details(),
        &json!({"field": "name", "code": "VALIDATION_UNIQUENESS"})
    );
    // Names compare exactly, and a token keeps its own name.
    api.admin(put(&path).json(&update_body(&id, "Taken", ALL)))
        .await
        .ok(200);
    api.admin(put(&path).json(&update_body(&id, "Taken", ALL)))
        .await
        .ok(200);

    let other_id = api
        .admin(put(&path).json(&update_body("999", "x", ALL)))
        .await;
    other_id.expect(422, "INVALID_FIELD");
    assert_eq!(
        other_id.details(),
        &json!({"field": "id", "code": "VALIDATION_INVALID"})
    );

    let unknown_role = api
        .admin(put(&path).json(&update_with_role(&id, "x", ALL, "424242")))
        .await;
    unknown_role.expect(422, "INVALID_FIELD");
    assert_eq!(
        unknown_role.details(),
        &json!({"field": "role", "code": "VALIDATION_INVALID"})
    );

    let create = |name: &str, role: &str| {
        post("/access_tokens").json(
            &json!({"data": {"type": "access_token", "attributes": attributes(name, ALL),
            "relationships": {"role": {"data": {"type": "role", "id": role}}}}}),
        )
    };
    let admin_role = api.role_named(ADMIN_ROLE_NAME).await;
    let dup = api.admin(create("taken", &admin_role)).await;
    assert_eq!(
        dup.details(),
        &json!({"field": "name", "code": "VALIDATION_UNIQUENESS"})
    );
    let bad_role = api.admin(create("fresh", "424242")).await;
    assert_eq!(
        bad_role.details(),
        &json!({"field": "role", "code": "VALIDATION_INVALID"})
    );
    assert_eq!(api.token(&id).await["attributes"]["name"], "Taken");
}

#[tokio::test]
async fn a_blank_name_is_refused_and_changes_nothing() {
    let api = Api::new();
    let (id, _) = api.admin_like_token("mine").await;
    // The spec's update schema may itself refuse blank names (`pattern: \S`); then the schema
    // step answers first. Either way it is a 422 that names the name.
    let schema_refuses = Spec::embedded()
        .schemas()
        .validate(SchemaId::UpdateRequest, &update_body(&id, " ", ALL))
        .is_err();
    for blank in ["", "   ", "\t\n", "\u{3000}\u{a0}"] {
        let refused = api
            .admin(put(&format!("/access_tokens/{id}")).json(&update_body(&id, blank, ALL)))
            .await;
        if schema_refuses {
            refused.expect(422, "INVALID_FORMAT");
            assert_eq!(
                refused.details()["errors"][0]["path"],
                "/data/attributes/name"
            );
        } else {
            refused.expect(422, "INVALID_FIELD");
            assert_eq!(
                refused.details(),
                &json!({"field": "name", "code": "VALIDATION_REQUIRED"})
            );
        }
    }
    assert_eq!(api.token(&id).await["attributes"]["name"], "mine");
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let api = Api::new();
    let body = |id: &str| update_body(id, "x", ALL);
    api.admin(get("/access_tokens/424242"))
        .await
        .expect(404, "NOT_FOUND");
    api.admin(put("/access_tokens/424242").json(&body("424242")))
        .await
        .expect(404, "NOT_FOUND");
    api.admin(post("/access_tokens/424242/regenerate_token"))
        .await
        .expect(404, "NOT_FOUND");
    api.admin(delete("/access_tokens/424242"))
        .await
        .expect(404, "NOT_FOUND");
    api.admin(get("/roles/424242"))
        .await
        .expect(404, "NOT_FOUND");
    // An id that is not even UTF-8 is simply one that does not exist.
    api.admin(get("/access_tokens/%FF%FE"))
        .await
        .expect(404, "NOT_FOUND");
    api.admin(get("/roles/%C0")).await.expect(404, "NOT_FOUND");
}

#[tokio::test]
async fn the_error_id_is_the_same_for_the_same_error() {
    let api = Api::new();
    let one = api.admin(get("/access_tokens/424242")).await;
    let two = api.admin(get("/access_tokens/525252")).await;
    assert_eq!(one.body, two.body);
    let digest = format!(
        "{:x}",
        md5::compute(br#"{"code":"NOT_FOUND","details":{}}"#)
    );
    assert_eq!(one.body["data"][0]["id"], digest[..6]);
    // The exported helper agrees with the formula.
    assert_eq!(
        token_conformance::reference::error_id("NOT_FOUND", &json!({})),
        digest[..6]
    );
}

// ---------------------------------------------------------------------------------------------
// Order of checks: with two faults in one request, the earlier check answers.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_checks_run_in_the_documented_order() {
    let api = Api::new();
    let viewer = api.create_role("Viewer", &[]).await;
    let (_, viewer_secret) = api.create_token("viewer", &viewer, CMA_ONLY).await;
    let (id, _) = api.admin_like_token("target").await;
    api.admin_like_token("taken").await;
    let factory = api.token_named(READ_ONLY_TOKEN_NAME).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/access_tokens/{id}");
    let good = update_body(&id, "target", ALL);
    let schema_error = json!({"data": {"type": "nope"}});
    let admin = api.admin.clone();

    let cases: Vec<(&str, Req, u16, &str)> = vec![
        (
            "unknown route before Accept",
            get("/nope")
                .header("accept", "text/html")
                .without("x-api-version")
                .header("x-api-version", "9"),
            404,
            "INVALID_ENDPOINT",
        ),
        (
            "wrong method before Accept",
            request(Method::PATCH, &path)
                .without("accept")
                .header("accept", "text/html"),
            404,
            "INVALID_ENDPOINT",
        ),
        (
            "Accept before X-Api-Version",
            put(&path)
                .without("accept")
                .header("accept", "text/html")
                .without("x-api-version")
                .header("x-api-version", "2")
                .header("content-type", "text/plain"),
            406,
            "INVALID_ACCEPT_HEADER",
        ),
        (
            "Accept before Content-Type",
            put(&path)
                .without("accept")
                .header("accept", "text/html")
                .header("content-type", "text/plain")
                .raw("{"),
            406,
            "INVALID_ACCEPT_HEADER",
        ),
        (
            "X-Api-Version before Content-Type",
            put(&path)
                .without("x-api-version")
                .header("x-api-version", "2")
                .header("content-type", "text/plain"),
            400,
            "INVALID_API_VERSION_HEADER",
        ),
        (
            "Content-Type before JSON",
            put(&path).header("content-type", "text/plain").raw("{"),
            415,
            "INVALID_CONTENT_TYPE_HEADER",
        ),
        (
            "Content-Type before credentials",
            put(&path)
                .header("content-type", "text/plain")
                .raw(good.to_string()),
            415,
            "INVALID_CONTENT_TYPE_HEADER",
        ),
        (
            "size before credentials",
            put(&path)
                .header("content-type", "application/json")
                .raw(vec![b' '; MAX_BODY_BYTES + 1]),
            413,
            "REQUEST_TOO_LARGE",
        ),
        (
            "JSON before credentials",
            put(&path)
                .header("content-type", "application/json")
                .raw("{"),
            415,
            "INVALID_JSON_BODY",
        ),
        (
            "no credentials before schema",
            put(&path).json(&schema_error),
            401,
            "INVALID_SITE",
        ),
        (
            "unknown token before schema",
            put(&path).json(&schema_error).bearer("nope"),
            401,
            "INVALID_AUTHORIZATION_HEADER",
        ),
        (
            "permission before schema",
            put(&path).json(&schema_error).bearer(&viewer_secret),
            401,
            "INSUFFICIENT_PERMISSIONS",
        ),
        (
            "permission before lookup",
            put("/access_tokens/424242")
                .json(&update_body("424242", "x", ALL))
                .bearer(&viewer_secret),
            401,
            "INSUFFICIENT_PERMISSIONS",
        ),
        (
            "permission before hardcoded",
            put(&format!("/access_tokens/{factory}"))
                .json(&update_body(&factory, "x", ALL))
                .bearer(&viewer_secret),
            401,
            "INSUFFICIENT_PERMISSIONS",
        ),
        (
            "schema before lookup",
            put("/access_tokens/424242")
                .json(&schema_error)
                .bearer(&admin),
            422,
            "INVALID_FORMAT",
        ),
        (
            "lookup before validation",
            put("/access_tokens/424242")
                .json(&update_body("1", "taken", ALL))
                .bearer(&admin),
            404,
            "NOT_FOUND",
        ),
        (
            "hardcoded before duplicate name",
            put(&format!("/access_tokens/{factory}"))
                .json(&update_body(&factory, "taken", ALL))
                .bearer(&admin),
            401,
            "NON_EDITABLE_ACCESS_TOKEN",
        ),
        (
            "hardcoded before id mismatch",
            put(&format!("/access_tokens/{factory}"))
                .json(&update_body("999", "x", ALL))
                .bearer(&admin),
            401,
            "NON_EDITABLE_ACCESS_TOKEN",
        ),
        (
            "hardcoded before unknown role",
            put(&format!("/access_tokens/{factory}"))
                .json(&update_with_role(&factory, "x", ALL, "424242"))
                .bearer(&admin),
            401,
            "NON_EDITABLE_ACCESS_TOKEN",
        ),
        (
            "id mismatch before duplicate name",
            put(&path)
                .json(&update_body("999", "taken", ALL))
                .bearer(&admin),
            422,
            "INVALID_FIELD",
        ),
        (
            "lookup before self-delete",
            delete("/access_tokens/424242").bearer(&admin),
            404,
            "NOT_FOUND",
        ),
        (
            "Accept before credentials on reads",
            get("/access_tokens")
                .without("accept")
                .header("accept", "text/html"),
            406,
            "INVALID_ACCEPT_HEADER",
        ),
    ];
    for (name, req, status, code) in cases {
        let got = api.cma(req).await;
        assert_eq!((got.status, got.code()), (status, code), "{name}: {got:#?}");
    }
    let mismatch = api
        .admin(put(&path).json(&update_body("999", "taken", ALL)))
        .await;
    assert_eq!(mismatch.details()["field"], "id");
    // None of the refused updates changed the target.
    assert_eq!(api.token(&id).await["attributes"]["name"], "target");
}

// ---------------------------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_rate_limit_counts_per_caller_and_answers_429_with_reset() {
    // A long window, so that the test never straddles two windows however slow the machine.
    let limit = RateLimit {
        requests: 3,
        window: std::time::Duration::from_secs(60),
    };
    let api = Api::with(ServerConfig {
        rate_limit: Some(limit),
        ..ServerConfig::default()
    });
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let ok = api.admin(get("/site")).await;
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.header("x-ratelimit-limit"), Some("3"));
        remaining.push(ok.header("x-ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    // Over the limit: 429 before anything else, unknown routes included.
    for req in [
        get("/site"),
        get("/nope"),
        get("/site").without("accept").header("accept", "text/html"),
    ] {
        let limited = api.admin(req).await;
        limited.expect(429, "RATE_LIMIT_EXCEEDED");
        assert_eq!(limited.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
        let reset: u64 = limited
            .header("x-ratelimit-reset")
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }
    // Another credential has its own window; anonymous callers share one.
    let anonymous = api.cma(get("/nope")).await;
    anonymous.expect(404, "INVALID_ENDPOINT");
    assert_eq!(anonymous.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(
        api.cma(get("/site")).await.header("x-ratelimit-remaining"),
        Some("1")
    );
    // The CDA listener has its own limiter.
    let cda = api.cda(graphql(SITE_QUERY).bearer(&api.admin)).await;
    assert_eq!(cda.status, StatusCode::OK);
    assert_eq!(cda.header("x-ratelimit-remaining"), Some("2"));
}

#[tokio::test]
async fn with_the_limit_off_the_headers_are_still_sent() {
    let api = Api::new();
    for _ in 0..100 {
        let ok = api.admin(get("/site")).await;
        assert_eq!(ok.status, StatusCode::OK);
        let limit: u64 = ok.header("x-ratelimit-limit").unwrap().parse().unwrap();
        assert!(limit >= 1_000_000);
    }
}
