//! The two resources the server stores, access tokens and roles, and how they are rendered as
//! JSON:API resource objects.
//!
//! A role's attributes are not spelled out here: their names, order and defaults come from
//! `specs/schemas/role.schema.json` (the spec is the one source of truth), so a permission added
//! to the spec is stored, defaulted and returned without touching this file.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::spec::{Spec, Violation};

/// `last_cma_access` / `last_cda_access`. The server has no calendar: a token used once stays
/// "today" for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastAccess {
    Never,
    Today,
}

impl LastAccess {
    fn as_str(self) -> &'static str {
        match self {
            LastAccess::Never => "never",
            LastAccess::Today => "today",
        }
    }
}

/// An API token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) secret: String,
    pub(crate) can_access_cda: bool,
    pub(crate) can_access_cda_preview: bool,
    pub(crate) can_access_cma: bool,
    /// `Some` for built-in factory tokens only; API-created tokens have none.
    pub(crate) hardcoded_type: Option<&'static str>,
    /// The role's id.
    pub(crate) role: Option<String>,
    pub(crate) last_cma_access: LastAccess,
    pub(crate) last_cda_access: LastAccess,
}

impl Token {
    /// The resource object; `token` is the secret only when `show_secret` (the caller's role
    /// may manage tokens), `null` otherwise.
    pub(crate) fn to_resource(&self, show_secret: bool) -> Value {
        let role = match &self.role {
            Some(id) => json!({"type": "role", "id": id}),
            None => Value::Null,
        };
        json!({
            "type": "access_token",
            "id": self.id,
            "attributes": {
                "name": self.name,
                "token": if show_secret { Value::from(self.secret.as_str()) } else { Value::Null },
                "can_access_cda": self.can_access_cda,
                "can_access_cda_preview": self.can_access_cda_preview,
                "can_access_cma": self.can_access_cma,
                "hardcoded_type": self.hardcoded_type,
                "last_cma_access": self.last_cma_access.as_str(),
                "last_cda_access": self.last_cda_access.as_str(),
            },
            "relationships": {"role": {"data": role}},
        })
    }
}

/// A role: its id and its attributes, in the spec's order.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) id: String,
    pub(crate) attributes: Map<String, Value>,
}

impl Role {
    /// Whether the boolean permission `permission` is on.
    pub(crate) fn allows(&self, permission: &str) -> bool {
        self.attributes
            .get(permission)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub(crate) fn to_resource(&self) -> Value {
        json!({"type": "role", "id": self.id, "attributes": self.attributes})
    }
}

/// The attributes a role has, with their defaults, as the spec describes them.
#[derive(Debug, Clone)]
pub(crate) struct RoleCatalog {
    /// `name` first, then every other attribute with its default, in the spec's order.
    template: Map<String, Value>,
    permissions: Vec<String>,
}

impl RoleCatalog {
    const FILE: &'static str = "schemas/role.schema.json";
    const POINTER: &'static str = "/$defs/attributes/properties";

    /// Read from the spec: `Err` names what is missing.
    pub(crate) fn from_spec(spec: &Spec) -> Result<RoleCatalog, String> {
        let properties = spec
            .schemas()
            .file(Self::FILE)
            .and_then(|file| file.pointer(Self::POINTER))
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{} has no object at {}", Self::FILE, Self::POINTER))?;
        let mut template = Map::new();
        template.insert("name".to_owned(), Value::from(""));
        for (name, schema) in properties {
            if name == "name" {
                continue;
            }
            let default = schema
                .get("default")
                .cloned()
                .ok_or_else(|| format!("{}#{}/{name} has no default", Self::FILE, Self::POINTER))?;
            template.insert(name.clone(), default);
        }
        let permissions = spec.role_permissions().to_vec();
        if let Some(missing) = permissions
            .iter()
            .find(|p| !template.contains_key(p.as_str()))
        {
            return Err(format!(
                "{}: permission {missing} is not a role attribute",
                Self::FILE
            ));
        }
        Ok(RoleCatalog {
            template,
            permissions,
        })
    }

    /// A new role: the defaults, overlaid with `given` (only attributes the spec knows).
    pub(crate) fn new_role(&self, id: String, given: &Map<String, Value>) -> Role {
        let mut role = Role {
            id,
            attributes: self.template.clone(),
        };
        self.apply(&mut role, given);
        role
    }

    /// Overwrite the attributes of `role` that `given` names; the order stays the spec's.
    pub(crate) fn apply(&self, role: &mut Role, given: &Map<String, Value>) {
        for (name, value) in given {
            if let Some(slot) = role.attributes.get_mut(name) {
                *slot = value.clone();
            }
        }
    }

    /// Every boolean permission of a role.
    pub(crate) fn permissions(&self) -> &[String] {
        &self.permissions
    }
}

/// `{"data": ...}` of a request, after schema validation.
#[derive(Debug, Deserialize)]
pub(crate) struct Document<T> {
    pub(crate) data: T,
}

/// The `data` of a token create or update request.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenInput {
    pub(crate) id: Option<String>,
    pub(crate) attributes: TokenAttributes,
    pub(crate) relationships: Option<TokenRelationships>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenAttributes {
    pub(crate) name: String,
    pub(crate) can_access_cda: bool,
    pub(crate) can_access_cda_preview: bool,
    pub(crate) can_access_cma: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenRelationships {
    pub(crate) role: Link,
}

/// A to-one relationship: `{"data": {"type", "id"}}` or `{"data": null}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Link {
    pub(crate) data: Option<Reference>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Reference {
    pub(crate) id: String,
}

/// The `data` of a role create or update request.
#[derive(Debug, Deserialize)]
pub(crate) struct RoleInput {
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) attributes: Map<String, Value>,
}

/// Read a schema-valid body into its typed form. The schema already guarantees the shape; if
/// an edited spec ever lets through something these types cannot hold, the client still gets
/// a schema-style error rather than a crash.
pub(crate) fn read_input<T: for<'de> Deserialize<'de>>(body: &Value) -> Result<T, Vec<Violation>> {
    Document::<T>::deserialize(body)
        .map(|doc| doc.data)
        .map_err(|err| {
            vec![Violation {
                instance_path: "/data".to_owned(),
                schema_path: String::new(),
                keyword: String::new(),
                missing: None,
                message: err.to_string(),
            }]
        })
}

/// A blank name: empty or only Unicode whitespace.
pub(crate) fn is_blank(name: &str) -> bool {
    name.chars().all(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_catalog_comes_from_the_spec() {
        let catalog = RoleCatalog::from_spec(Spec::embedded()).expect("embedded spec");
        let role = catalog.new_role("7".to_owned(), &Map::new());
        let names: Vec<&String> = role.attributes.keys().collect();
        assert_eq!(names[0], "name");
        assert!(
            catalog
                .permissions()
                .iter()
                .all(|p| role.attributes[p] == false)
        );
        assert_eq!(role.attributes["environments_access"], "all");
        assert_eq!(role.attributes["positive_item_type_permissions"], json!([]));
        assert!(!role.allows("can_manage_access_tokens"));
    }

    #[test]
    fn given_attributes_overwrite_defaults_in_place() {
        let catalog = RoleCatalog::from_spec(Spec::embedded()).expect("embedded spec");
        let given = json!({"can_manage_access_tokens": true, "name": "x", "unknown": 1});
        let role = catalog.new_role("7".to_owned(), given.as_object().expect("object"));
        assert!(role.allows("can_manage_access_tokens"));
        assert_eq!(role.attributes["name"], "x");
        assert!(!role.attributes.contains_key("unknown"));
        assert_eq!(
            role.attributes.keys().next().map(String::as_str),
            Some("name")
        );
    }

    #[test]
    fn blank_means_empty_or_unicode_whitespace() {
        assert!(is_blank(""));
        assert!(is_blank(" \t\n\u{3000}\u{a0}"));
        assert!(!is_blank(" a "));
        assert!(!is_blank("\u{200b}"));
    }
}
