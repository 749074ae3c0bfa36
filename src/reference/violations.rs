//! What a schema violation of an update body is, for the faults that let some violations
//! through (`any-type-accepted`, `unknown-members-accepted`, `missing-flag-defaults-false`,
//! `string-true-coerced`, `invalid-body-5xx`). Decided from the violation's keyword and
//! instance path, never from its message: the validator's wording may change with an upgrade
//! and would silently change which faults fire; its keywords are JSON Schema's own.

use crate::spec::Violation;

/// The surface flags of an update body.
pub(super) const FLAGS: [&str; 3] = ["can_access_cda", "can_access_cda_preview", "can_access_cma"];

/// The classes of violation a fault treats differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// `data.type` is wrong or missing.
    ResourceType,
    /// A member the schema's closed objects (`additionalProperties: false`) do not allow.
    UnknownMember,
    /// A surface flag is missing from `data.attributes`.
    MissingFlag(&'static str),
    /// A surface flag is not a boolean.
    FlagType(&'static str),
    /// Another required member is missing.
    MissingMember,
    /// Anything else.
    Other,
}

/// The class of `violation`.
pub(super) fn classify(violation: &Violation) -> Class {
    let at = violation.instance_path.as_str();
    let keyword = violation.keyword.as_str();
    let missing = violation.missing.as_deref();
    if at == "/data/type" || (at == "/data" && keyword == "required" && missing == Some("type")) {
        return Class::ResourceType;
    }
    if keyword == "additionalProperties" {
        return Class::UnknownMember;
    }
    if keyword == "required" {
        return match FLAGS.into_iter().find(|f| Some(*f) == missing) {
            Some(flag) if at == "/data/attributes" => Class::MissingFlag(flag),
            _ => Class::MissingMember,
        };
    }
    if keyword == "type"
        && let Some(flag) = FLAGS
            .into_iter()
            .find(|f| at.strip_prefix("/data/attributes/") == Some(*f))
    {
        return Class::FlagType(flag);
    }
    Class::Other
}

/// Whether `violation` is a required member missing (whichever member).
pub(super) fn is_missing_member(violation: &Violation) -> bool {
    violation.keyword == "required"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SchemaId, Spec};
    use serde_json::{Value, json};

    fn valid() -> Value {
        json!({ "data": { "type": "access_token", "id": "1", "attributes": {
            "name": "n", "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": true } } })
    }

    /// The classes of the violations of `body`, also when every message is replaced: the
    /// classification must not read it.
    fn classes(edit: impl FnOnce(&mut Value)) -> Vec<Class> {
        let mut body = valid();
        edit(&mut body);
        let violations = Spec::embedded()
            .schemas()
            .validate(SchemaId::UpdateRequest, &body)
            .expect_err("the edited body must be invalid");
        let classes: Vec<Class> = violations.iter().map(classify).collect();
        let reworded: Vec<Class> = violations
            .into_iter()
            .map(|mut v| {
                v.message = "wording of another validator version".to_owned();
                classify(&v)
            })
            .collect();
        assert_eq!(classes, reworded);
        classes
    }

    fn remove(body: &mut Value, parent: &str, member: &str) {
        if let Some(Value::Object(object)) = body.pointer_mut(parent) {
            object.remove(member);
        }
    }

    fn set(body: &mut Value, pointer: &str, value: Value) {
        if let Some(slot) = body.pointer_mut(pointer) {
            *slot = value;
        }
    }

    #[test]
    fn the_valid_body_is_valid() {
        assert_eq!(
            Spec::embedded()
                .schemas()
                .validate(SchemaId::UpdateRequest, &valid()),
            Ok(())
        );
    }

    #[test]
    fn each_fault_relevant_violation_is_classified_by_keyword_and_path() {
        let wrong_type = classes(|b| set(b, "/data/type", json!("api_token")));
        assert!(wrong_type.contains(&Class::ResourceType), "{wrong_type:?}");
        let no_type = classes(|b| remove(b, "/data", "type"));
        assert!(no_type.contains(&Class::ResourceType), "{no_type:?}");
        let unknown = classes(|b| {
            if let Some(Value::Object(attributes)) = b.pointer_mut("/data/attributes") {
                attributes.insert("extra".to_owned(), json!(1));
            }
        });
        assert!(unknown.contains(&Class::UnknownMember), "{unknown:?}");
        for flag in FLAGS {
            let missing = classes(|b| remove(b, "/data/attributes", flag));
            assert_eq!(missing, [Class::MissingFlag(flag)]);
            let text = classes(|b| set(b, &format!("/data/attributes/{flag}"), json!("true")));
            assert_eq!(text, [Class::FlagType(flag)]);
        }
        let no_name = classes(|b| remove(b, "/data/attributes", "name"));
        assert_eq!(no_name, [Class::MissingMember]);
    }

    #[test]
    fn a_missing_member_is_told_by_the_required_keyword() {
        let violation = |keyword: &str, missing: Option<&str>| Violation {
            instance_path: "/data/attributes".to_owned(),
            schema_path: String::new(),
            keyword: keyword.to_owned(),
            missing: missing.map(str::to_owned),
            message: "\"name\" is a required property".to_owned(),
        };
        assert!(is_missing_member(&violation("required", Some("name"))));
        assert!(is_missing_member(&violation(
            "required",
            Some("can_access_cma")
        )));
        // The message says "required", the keyword does not: not a missing member.
        assert!(!is_missing_member(&violation("minLength", None)));
        assert_eq!(classify(&violation("minLength", None)), Class::Other);
    }
}
