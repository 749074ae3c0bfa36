//! The one harness of the router tests ([`super::router`], [`super::faults`]): the reference
//! server's two routers driven without sockets through `tower::ServiceExt::oneshot`.
//!
//! Every response from a server without faults goes through [`send`]'s checks of what must hold
//! for all of them: JSON content type, rate-limit headers, no 5xx, and for errors the documented
//! envelope with the deterministic id (recomputed here with MD5, independently of the server's
//! code). A server with faults breaks those on purpose, so its answers are only recorded.
//!
//! Requests are built with [`Req`] ([`get`], [`put`], …, which send Accept and X-Api-Version);
//! the fault tests' short forms ([`Api::call`], [`Api::put`], [`Api::site`], …) send only the
//! credentials and an `application/json` body.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use token_conformance::faults::{Fault, FaultSet};
use token_conformance::reference::{ADMIN_ROLE_NAME, ServerConfig, routers};
use token_conformance::spec::{SchemaId, Spec};
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------------
// Requests and answers
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) uri: String,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

pub(crate) fn request(method: Method, uri: &str) -> Req {
    Req {
        method,
        uri: uri.to_owned(),
        headers: vec![
            ("accept".to_owned(), b"application/json".to_vec()),
            ("x-api-version".to_owned(), b"3".to_vec()),
        ],
        body: Vec::new(),
    }
}

/// A request with no header at all: the short forms add only what they name.
pub(crate) fn bare(method: Method, uri: &str) -> Req {
    Req {
        method,
        uri: uri.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

pub(crate) fn get(uri: &str) -> Req {
    request(Method::GET, uri)
}
pub(crate) fn post(uri: &str) -> Req {
    request(Method::POST, uri)
}
pub(crate) fn put(uri: &str) -> Req {
    request(Method::PUT, uri)
}
pub(crate) fn delete(uri: &str) -> Req {
    request(Method::DELETE, uri)
}

/// A CDA query (the CDA needs no Accept/X-Api-Version).
pub(crate) fn graphql(query: &str) -> Req {
    bare(Method::POST, "/").plain_json(&json!({ "query": query }))
}

pub(crate) const SITE_QUERY: &str = "{ _site { locales } }";

impl Req {
    pub(crate) fn bearer(self, secret: &str) -> Req {
        self.header("authorization", format!("Bearer {secret}"))
    }
    pub(crate) fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Req {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }
    pub(crate) fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| n != name);
        self
    }
    pub(crate) fn json(self, body: &Value) -> Req {
        self.header("content-type", "application/vnd.api+json")
            .raw(body.to_string())
    }
    /// `body` as `application/json`, the content type the short forms and the CDA use.
    pub(crate) fn plain_json(self, body: &Value) -> Req {
        self.header("content-type", "application/json")
            .raw(body.to_string())
    }
    pub(crate) fn raw(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }
}

impl Resp {
    #[track_caller]
    pub(crate) fn expect(&self, status: u16, code: &str) -> &Resp {
        assert_eq!(self.status, status, "{self:#?}");
        if !code.is_empty() {
            assert_eq!(self.code(), code, "{self:#?}");
        }
        self
    }
    #[track_caller]
    pub(crate) fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{self:#?}");
        &self.body["data"]
    }
    /// The `data` member, whatever the status.
    pub(crate) fn data(&self) -> &Value {
        &self.body["data"]
    }
    pub(crate) fn code(&self) -> &str {
        self.body["data"][0]["attributes"]["code"]
            .as_str()
            .unwrap_or("")
    }
    pub(crate) fn details(&self) -> &Value {
        &self.body["data"][0]["attributes"]["details"]
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

pub(crate) struct Api {
    pub(crate) cma: Router,
    pub(crate) cda: Router,
    /// The management token's secret.
    pub(crate) admin: String,
    /// Whether [`send`] checks every answer: only a server without faults must pass.
    checked: bool,
}

impl Api {
    /// The conformant server, rate limiting off.
    pub(crate) fn new() -> Api {
        Api::faulty(&[])
    }

    /// A server with these faults (none: the conformant server), rate limiting off.
    pub(crate) fn faulty(faults: &[Fault]) -> Api {
        Api::with(ServerConfig {
            rate_limit: None,
            faults: FaultSet::of(faults.iter().copied()),
            ..ServerConfig::default()
        })
    }

    pub(crate) fn with(config: ServerConfig) -> Api {
        let (cma, cda, admin) = routers(&config).unwrap();
        Api {
            cma,
            cda,
            admin,
            checked: config.faults.is_empty(),
        }
    }

    pub(crate) async fn cma(&self, req: Req) -> Resp {
        send(&self.cma, req, self.checked).await
    }

    pub(crate) async fn cda(&self, req: Req) -> Resp {
        send(&self.cda, req, self.checked).await
    }

    /// A CMA call as the management token.
    pub(crate) async fn admin(&self, req: Req) -> Resp {
        let secret = self.admin.clone();
        self.cma(req.bearer(&secret)).await
    }

    pub(crate) async fn tokens(&self) -> Vec<Value> {
        self.admin(get("/access_tokens"))
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .clone()
    }

    pub(crate) async fn token_named(&self, name: &str) -> Value {
        self.tokens()
            .await
            .into_iter()
            .find(|t| t["attributes"]["name"] == name)
            .unwrap()
    }

    /// The token `id` as a read shows it.
    pub(crate) async fn token(&self, id: &str) -> Value {
        self.admin(get(&format!("/access_tokens/{id}")))
            .await
            .ok(200)
            .clone()
    }

    pub(crate) async fn role_named(&self, name: &str) -> String {
        let roles = self.admin(get("/roles")).await.ok(200).clone();
        let role = roles
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["attributes"]["name"] == name);
        role.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// A new role with exactly `permissions` on.
    pub(crate) async fn create_role(&self, name: &str, permissions: &[&str]) -> String {
        let mut attributes = json!({ "name": name });
        for p in permissions {
            attributes[*p] = json!(true);
        }
        let body = json!({"data": {"type": "role", "attributes": attributes}});
        let role = self.admin(post("/roles").json(&body)).await;
        role.ok(201)["id"].as_str().unwrap().to_owned()
    }

    /// A new token: (id, secret).
    pub(crate) async fn create_token(
        &self,
        name: &str,
        role: &str,
        flags: Flags,
    ) -> (String, String) {
        let body = json!({"data": {"type": "access_token",
            "attributes": attributes(name, flags),
            "relationships": {"role": {"data": {"type": "role", "id": role}}}}});
        let created = self.admin(post("/access_tokens").json(&body)).await;
        let data = created.ok(201);
        (
            data["id"].as_str().unwrap().to_owned(),
            data["attributes"]["token"].as_str().unwrap().to_owned(),
        )
    }

    /// A token with role Admin and all flags on.
    pub(crate) async fn admin_like_token(&self, name: &str) -> (String, String) {
        let admin_role = self.role_named(ADMIN_ROLE_NAME).await;
        self.create_token(name, &admin_role, ALL).await
    }

    /// A token with a new permission-less role: (id, secret).
    pub(crate) async fn plain_token(&self, name: &str, flags: Flags) -> (String, String) {
        let role = self.create_role(&format!("{name} role"), &[]).await;
        self.create_token(name, &role, flags).await
    }

    // The short forms: only the credentials (if any) and an `application/json` body.

    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = bare(method, uri);
        if let Some(secret) = auth {
            req = req.bearer(secret);
        }
        if let Some(body) = body {
            req = req.plain_json(body);
        }
        self.cma(req).await
    }

    /// A CMA `GET` as the management token.
    pub(crate) async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, Some(&self.admin), None).await
    }

    /// An update of token `id` as the management token.
    pub(crate) async fn put(&self, id: &str, body: &Value) -> Resp {
        self.call(
            Method::PUT,
            &format!("/access_tokens/{id}"),
            Some(&self.admin),
            Some(body),
        )
        .await
    }

    /// The status of `GET /site` as `secret`.
    pub(crate) async fn site(&self, secret: &str) -> u16 {
        self.call(Method::GET, "/site", Some(secret), None)
            .await
            .status
    }

    /// The status of the CDA's site query as `secret`, with or without drafts.
    pub(crate) async fn cda_status(&self, secret: &str, drafts: bool) -> u16 {
        let drafts = if drafts { "true" } else { "false" };
        let req = graphql(SITE_QUERY)
            .bearer(secret)
            .header("x-include-drafts", drafts);
        self.cda(req).await.status
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub(crate) struct Flags {
    pub(crate) cda: bool,
    pub(crate) preview: bool,
    pub(crate) cma: bool,
}
pub(crate) const ALL: Flags = Flags {
    cda: true,
    preview: true,
    cma: true,
};
pub(crate) const CMA_ONLY: Flags = Flags {
    cda: false,
    preview: false,
    cma: true,
};

pub(crate) fn attributes(name: &str, flags: Flags) -> Value {
    json!({"name": name, "can_access_cda": flags.cda,
           "can_access_cda_preview": flags.preview, "can_access_cma": flags.cma})
}

pub(crate) fn update_body(id: &str, name: &str, flags: Flags) -> Value {
    json!({"data": {"type": "access_token", "id": id, "attributes": attributes(name, flags)}})
}

pub(crate) fn update_with_role(id: &str, name: &str, flags: Flags, role: &str) -> Value {
    let mut body = update_body(id, name, flags);
    body["data"]["relationships"] = json!({"role": {"data": {"type": "role", "id": role}}});
    body
}

/// One request through the router; if `checked`, with every invariant that holds for all
/// responses of a conformant server.
pub(crate) async fn send(router: &Router, req: Req, checked: bool) -> Resp {
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(req.uri.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    let request = builder.body(Body::from(req.body.clone())).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();

    if checked {
        assert!(
            !status.is_server_error(),
            "{} {} gave {status}",
            req.method,
            req.uri
        );
        assert_eq!(
            headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json; charset=utf-8"[..]),
            "{} {}",
            req.method,
            req.uri
        );
        let limit: u64 = headers["x-ratelimit-limit"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let remaining: u64 = headers["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(remaining <= limit);
        assert_eq!(
            headers.contains_key("x-ratelimit-reset"),
            status == StatusCode::TOO_MANY_REQUESTS
        );
    }

    // An empty body (a 204) reads as null.
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    if checked && !status.is_success() {
        assert_envelope(&body);
    }
    Resp {
        status: status.as_u16(),
        headers,
        body,
    }
}

/// The documented envelope, and the observed id formula recomputed from scratch.
#[track_caller]
pub(crate) fn assert_envelope(body: &Value) {
    assert_eq!(
        Spec::embedded().schemas().validate(SchemaId::Error, body),
        Ok(()),
        "{body}"
    );
    for error in body["data"].as_array().unwrap() {
        let attributes = &error["attributes"];
        let code = attributes["code"].as_str().unwrap();
        let key = format!(
            r#"{{"code":{},"details":{}}}"#,
            json!(code),
            attributes["details"]
        );
        let digest = format!("{:x}", md5::compute(key.as_bytes()));
        assert_eq!(error["id"], digest[..6], "{body}");
        assert_eq!(error["type"], "api_error");
        assert_eq!(
            attributes["doc_url"],
            format!("https://www.datocms.com/docs/content-management-api/errors#{code}")
        );
        assert_eq!(attributes["transient"], false);
    }
}

#[track_caller]
pub(crate) fn assert_valid(id: SchemaId, body: &Value) {
    assert_eq!(
        Spec::embedded().schemas().validate(id, body),
        Ok(()),
        "{body}"
    );
}
