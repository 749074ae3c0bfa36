//! An independent model of the access-token API: the oracle the isolation and sequence checks
//! compare a target with.
//!
//! It is written from `specs/` and the documentation page ("Update an API token"), never from
//! the reference server in `src/reference/`, so that it can find that server wrong; a test at
//! the bottom of this file keeps the two from importing each other.
//!
//! What it covers: tokens (name, the three surface flags, role, whether the run still knows
//! the secret, `hardcoded_type`), roles as named boolean permissions, and the calls the checks
//! make as the run's management token (a token manager): update, rotate, a role permission
//! change, and reads. For each it says the status class, and how every resource reads after
//! it. For a probe made with a token's own secret ([`Probe`]) it says whether it is granted.
//!
//! What it deliberately does not cover (the answer is [`Prediction::Unknown`], which the
//! checks record as a warning instead of asserting): whether `can_access_cda_preview` alone
//! reads published content or drafts without `can_access_cda`; exact error statuses and codes
//! other than the documented class; `last_*_access`; roles' `environments_access` and
//! record/upload permissions; calls made by tokens that are not token managers.

mod probe;

pub mod linearizability;
pub mod machine;

use std::collections::BTreeMap;

use serde_json::Value;

pub use probe::{Prediction, Probe};

/// The three surface flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Surfaces {
    /// `can_access_cda`.
    pub cda: bool,
    /// `can_access_cda_preview`.
    pub cda_preview: bool,
    /// `can_access_cma`.
    pub cma: bool,
}

impl Surfaces {
    /// All three on.
    pub const ALL: Surfaces = Surfaces {
        cda: true,
        cda_preview: true,
        cma: true,
    };
}

/// What the model knows of a token's secret. It never holds the value: the checks do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// Unchanged since the run last saw it ("The token's secret value is not affected" by
    /// an update): a read must show that value.
    Known,
    /// Rotated since: a new value the model cannot name, only that it differs from the old.
    Unknown,
}

/// A token as the model expects it to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `attributes.name`.
    pub name: String,
    /// The surface flags.
    pub surfaces: Surfaces,
    /// `relationships.role.data.id`.
    pub role: Option<String>,
    /// The secret, as far as the model knows it.
    pub secret: Secret,
    /// `attributes.hardcoded_type` (`None` for tokens created through the API).
    pub hardcoded: Option<String>,
}

/// A role: its boolean permissions (only the ones the run set; others are not modelled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    /// Permission name → granted.
    pub permissions: BTreeMap<String, bool>,
}

/// The documented class of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx.
    Success,
    /// 4xx.
    Refused,
}

/// What the model says a call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The status class.
    pub class: Class,
    /// The error code the documentation names for a refusal, if it names one.
    pub code: Option<&'static str>,
}

impl Expect {
    const SUCCESS: Expect = Expect {
        class: Class::Success,
        code: None,
    };

    fn refused(code: Option<&'static str>) -> Expect {
        Expect {
            class: Class::Refused,
            code,
        }
    }

    /// Whether a status agrees with the class.
    pub fn admits(&self, status: u16) -> bool {
        match self.class {
            Class::Success => (200..300).contains(&status),
            Class::Refused => (400..500).contains(&status),
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.class, self.code) {
            (Class::Success, _) => f.write_str("2xx"),
            (Class::Refused, Some(code)) => write!(f, "4xx {code}"),
            (Class::Refused, None) => f.write_str("4xx"),
        }
    }
}

/// `PUT /access_tokens/:id` as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// `attributes.name`.
    pub name: String,
    /// The three flags.
    pub surfaces: Surfaces,
    /// `relationships.role.data.id`; `None` when `relationships` is omitted.
    pub role: Option<String>,
}

/// The resources the run knows, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    tokens: BTreeMap<String, Token>,
    roles: BTreeMap<String, Role>,
}

/// The error code the documentation gives for editing a factory token.
pub const NON_EDITABLE: &str = "NON_EDITABLE_ACCESS_TOKEN";

impl Model {
    /// An empty model.
    pub fn new() -> Model {
        Model::default()
    }

    /// Add (or replace) a token the run knows.
    pub fn add_token(&mut self, id: impl Into<String>, token: Token) {
        self.tokens.insert(id.into(), token);
    }

    /// Add (or replace) a role the run knows.
    pub fn add_role(&mut self, id: impl Into<String>, role: Role) {
        self.roles.insert(id.into(), role);
    }

    /// A token as the model expects it.
    pub fn token(&self, id: &str) -> Option<&Token> {
        self.tokens.get(id)
    }

    /// A role as the model knows it.
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.get(id)
    }

    /// The ids of every token the run knows.
    pub fn token_ids(&self) -> impl Iterator<Item = &str> {
        self.tokens.keys().map(String::as_str)
    }

    /// The model of a token from a read of it (`data` of a retrieve or a list entry): how the
    /// run first learns a resource it did not create (a factory token).
    pub fn token_from_resource(data: &Value) -> Option<Token> {
        let attr = |key: &str| data.pointer(&format!("/attributes/{key}"));
        let flag = |key: &str| attr(key).and_then(Value::as_bool);
        Some(Token {
            name: attr("name")?.as_str()?.to_owned(),
            surfaces: Surfaces {
                cda: flag("can_access_cda")?,
                cda_preview: flag("can_access_cda_preview")?,
                cma: flag("can_access_cma")?,
            },
            role: data
                .pointer("/relationships/role/data/id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            secret: Secret::Known,
            hardcoded: hardcoded(data),
        })
    }

    /// An update of token `id`. "Updates an API token's name, role, or API surface flags":
    /// of that token, and of no other. The role is replaced only when sent ("If you omit
    /// relationships … the existing role is preserved"); the secret is untouched; a factory
    /// token refuses with `NON_EDITABLE_ACCESS_TOKEN` and stays as it was.
    pub fn update(&mut self, id: &str, update: &Update) -> Expect {
        if let Some(role) = &update.role
            && !self.roles.contains_key(role)
        {
            // A role the run does not know may exist on the target: not modelled.
            return Expect::refused(None);
        }
        let Some(token) = self.tokens.get_mut(id) else {
            return Expect::refused(None);
        };
        if token.hardcoded.is_some() {
            return Expect::refused(Some(NON_EDITABLE));
        }
        token.name.clone_from(&update.name);
        token.surfaces = update.surfaces;
        if let Some(role) = &update.role {
            token.role = Some(role.clone());
        }
        Expect::SUCCESS
    }

    /// A rotation (`POST /access_tokens/:id/regenerate_token`): a new secret, role and flags
    /// kept (documented; factory tokens too: "They can still be deleted or rotated").
    pub fn rotate(&mut self, id: &str) -> Expect {
        match self.tokens.get_mut(id) {
            Some(token) => {
                token.secret = Secret::Unknown;
                Expect::SUCCESS
            }
            None => Expect::refused(None),
        }
    }

    /// The run learnt a token's current secret (from a rotation's answer).
    pub fn secret_seen(&mut self, id: &str) {
        if let Some(token) = self.tokens.get_mut(id) {
            token.secret = Secret::Known;
        }
    }

    /// `PUT /roles/:id` setting one permission.
    pub fn set_permission(&mut self, role: &str, permission: &str, granted: bool) -> Expect {
        match self.roles.get_mut(role) {
            Some(role) => {
                role.permissions.insert(permission.to_owned(), granted);
                Expect::SUCCESS
            }
            None => Expect::refused(None),
        }
    }

    /// Whether a call made with token `id`'s own secret is granted. Effective capabilities
    /// are the intersection of the token's role and its surface flags (documented).
    pub fn probe(&self, id: &str, probe: &Probe) -> Prediction {
        let Some(token) = self.tokens.get(id) else {
            return Prediction::Refused;
        };
        let role = token.role.as_deref().and_then(|r| self.roles.get(r));
        probe.decide(token.surfaces, role)
    }

    /// How `data` (a read of token `id` as the management token) differs from the model.
    /// `held` is the secret the run last saw for it, if it holds one: with [`Secret::Known`]
    /// the `token` attribute must show it, with [`Secret::Unknown`] it must not.
    pub fn mismatches(&self, id: &str, data: &Value, held: Option<&str>) -> Vec<String> {
        let Some(want) = self.tokens.get(id) else {
            return vec![format!("token {id} is not in the model")];
        };
        let mut out = Vec::new();
        let attr = |key: &str| data.pointer(&format!("/attributes/{key}"));
        if attr("name").and_then(Value::as_str) != Some(want.name.as_str()) {
            out.push(format!(
                "name {} (expected {})",
                shown(attr("name")),
                crate::text::json_str(&want.name)
            ));
        }
        for (key, value) in [
            ("can_access_cda", want.surfaces.cda),
            ("can_access_cda_preview", want.surfaces.cda_preview),
            ("can_access_cma", want.surfaces.cma),
        ] {
            if attr(key).and_then(Value::as_bool) != Some(value) {
                out.push(format!("{key} {} (expected {value})", shown(attr(key))));
            }
        }
        let role = data
            .pointer("/relationships/role/data/id")
            .and_then(Value::as_str);
        if role != want.role.as_deref() {
            out.push(format!(
                "role {} (expected {})",
                crate::text::json_or(role, "none"),
                crate::text::json_or(want.role.as_deref(), "none")
            ));
        }
        if hardcoded(data) != want.hardcoded {
            out.push(format!(
                "hardcoded_type {} (expected {})",
                shown(attr("hardcoded_type")),
                crate::text::json_or(want.hardcoded.as_deref(), "null")
            ));
        }
        if let Some(held) = held {
            let shows = attr("token").and_then(Value::as_str);
            match want.secret {
                Secret::Known if shows != Some(held) => {
                    out.push("the token attribute is not the secret the run holds".to_owned());
                }
                Secret::Unknown if shows == Some(held) => {
                    out.push("the token attribute still shows the rotated-away secret".to_owned());
                }
                _ => {}
            }
        }
        out
    }
}

/// `hardcoded_type`, with `""` read as "not hardcoded" (the documentation's example response
/// shows `""`, a placeholder of its generator, where a token created through the API has `null`).
fn hardcoded(data: &Value) -> Option<String> {
    data.pointer("/attributes/hardcoded_type")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A target's value in a message, cut short (it is target data).
fn shown(value: Option<&Value>) -> String {
    match value {
        None => "missing".to_owned(),
        Some(value) => crate::text::truncate(&value.to_string(), 80),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn model() -> Model {
        let mut m = Model::new();
        for (id, grant) in [("x", true), ("y", false)] {
            let mut role = Role::default();
            role.permissions.insert("can_manage_users".into(), grant);
            m.add_role(id, role);
        }
        for (id, role) in [("a", "x"), ("b", "x"), ("f", "y")] {
            m.add_token(
                id,
                Token {
                    name: id.into(),
                    surfaces: Surfaces::ALL,
                    role: Some(role.into()),
                    secret: Secret::Known,
                    hardcoded: (id == "f").then(|| "readonly".into()),
                },
            );
        }
        m
    }

    #[test]
    fn an_update_changes_only_its_token_and_keeps_an_omitted_role() {
        let mut m = model();
        let before = m.clone();
        let off = Surfaces {
            cda: false,
            cda_preview: false,
            cma: true,
        };
        let update = Update {
            name: "a2".into(),
            surfaces: off,
            role: None,
        };
        assert_eq!(m.update("a", &update), Expect::SUCCESS);
        assert_eq!(m.token("a").unwrap().role.as_deref(), Some("x"));
        assert_eq!(m.token("a").unwrap().surfaces, off);
        assert_eq!(m.token("b"), before.token("b"));
        let moved = Update {
            role: Some("y".into()),
            ..update
        };
        m.update("a", &moved);
        assert_eq!(m.token("a").unwrap().role.as_deref(), Some("y"));
    }

    #[test]
    fn factory_tokens_and_unknown_ids_refuse_and_stay() {
        let mut m = model();
        let before = m.clone();
        let update = Update {
            name: "z".into(),
            surfaces: Surfaces::ALL,
            role: None,
        };
        assert_eq!(m.update("f", &update).code, Some(NON_EDITABLE));
        assert_eq!(m.update("nope", &update).class, Class::Refused);
        assert_eq!(m, before);
        assert_eq!(
            m.rotate("f"),
            Expect::SUCCESS,
            "factory tokens can be rotated"
        );
    }

    #[test]
    fn probes_follow_the_intersection_of_role_and_flags() {
        let mut m = model();
        let gated = Probe::GatedWrite {
            permission: "can_manage_users",
        };
        assert_eq!(m.probe("a", &gated), Prediction::Granted);
        m.set_permission("x", "can_manage_users", false);
        assert_eq!(m.probe("a", &gated), Prediction::Refused);
        m.set_permission("x", "can_manage_users", true);
        let cda_only = Surfaces {
            cda: false,
            cda_preview: true,
            cma: false,
        };
        m.update(
            "a",
            &Update {
                name: "a".into(),
                surfaces: cda_only,
                role: None,
            },
        );
        assert_eq!(
            m.probe("a", &gated),
            Prediction::Refused,
            "no CMA, no write"
        );
        assert_eq!(m.probe("a", &Probe::CmaRead), Prediction::Refused);
        assert!(matches!(m.probe("a", &Probe::Cda), Prediction::Unknown(_)));
        assert!(matches!(
            m.probe("a", &Probe::CdaDrafts),
            Prediction::Unknown(_)
        ));
        assert_eq!(m.probe("b", &Probe::CdaDrafts), Prediction::Granted);
    }

    #[test]
    fn reads_are_compared_field_by_field_and_secrets_by_what_the_run_holds() {
        let mut m = model();
        let data = json!({ "id": "a", "attributes": { "name": "a", "can_access_cda": true,
            "can_access_cda_preview": true, "can_access_cma": true, "hardcoded_type": null,
            "token": "s1" }, "relationships": { "role": { "data": { "type": "role", "id": "x" } } } });
        assert!(m.mismatches("a", &data, Some("s1")).is_empty());
        assert_eq!(m.mismatches("a", &data, Some("s0")).len(), 1);
        m.rotate("a");
        assert_eq!(m.mismatches("a", &data, Some("s1")).len(), 1);
        let mut other = data.clone();
        other["relationships"]["role"]["data"]["id"] = json!("y");
        other["attributes"]["can_access_cma"] = json!(false);
        assert_eq!(m.mismatches("a", &other, None).len(), 2);
    }
}
