//! Request bodies generated from the update schema in `specs/`, with proptest.
//!
//! No crate turns a JSON Schema into proptest strategies with real shrinking, so this module
//! walks the few keywords the spec uses (`type`, `properties`, `required`, `const`, `enum`,
//! `$ref`) and builds one. Two annotations in the schema say what cannot be generated
//! blindly: `x-bind` marks values the check supplies (the path id, a role of its own) and
//! `x-generate: "name"` marks the token name, drawn from the whole of Unicode.
//!
//! Invalid bodies are made by mutating a valid one, at every place the schema constrains:
//! each required member removed, each member given each wrong JSON type, a `const` changed,
//! a blank name, an empty id, and (strict only) an unknown member added.

mod names;
mod schema;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

pub use names::{MAX_GENERATED_NAME_CHARS, NameParts, name_parts};
pub use schema::{Mutation, MutationKind, covering_mutations, mutations};

use crate::spec::{SchemaId, Spec};

/// A generated body whose bound values (`{"$bind": ...}`) the check fills in.
#[derive(Debug, Clone)]
pub struct Template(pub Value);

/// What a check supplies to turn a [`Template`] into a body.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The id in the request path.
    pub path_id: &'a str,
    /// The roles the check created; a generated role picks one by index.
    pub roles: &'a [String],
    /// A string unique to the check, placed inside every generated name so that names stay
    /// unique and `sweep` can recognise them.
    pub marker: &'a str,
}

impl Template {
    /// The body, with every bound value filled in.
    pub fn bind(&self, binding: &Binding<'_>) -> Value {
        bind_value(&self.0, binding)
    }

    /// The index of the role this template sends, if it sends one.
    pub fn role_index(&self) -> Option<usize> {
        self.0
            .pointer("/data/relationships/role/data/index")
            .and_then(Value::as_u64)
            .map(|i| i as usize)
    }
}

fn bind_value(value: &Value, binding: &Binding<'_>) -> Value {
    match value {
        Value::Object(map) => match map.get("$bind").and_then(Value::as_str) {
            Some("path_id") => json!(binding.path_id),
            Some("role") => {
                let index = map.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                let id = if binding.roles.is_empty() {
                    String::new()
                } else {
                    binding.roles[index % binding.roles.len()].clone()
                };
                json!({ "type": "role", "id": id })
            }
            Some("name") => {
                let part = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or("");
                json!(format!(
                    "{}{}{}{}{}",
                    part("lead"),
                    part("before"),
                    binding.marker,
                    part("after"),
                    part("trail")
                ))
            }
            _ => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), bind_value(v, binding)))
                    .collect::<Map<_, _>>(),
            ),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| bind_value(v, binding)).collect()),
        other => other.clone(),
    }
}

/// Valid update bodies, from `specs/schemas/update_request.schema.json`.
pub fn valid_update(spec: &'static Spec) -> BoxedStrategy<Template> {
    schema::strategy_for(spec, SchemaId::UpdateRequest, false)
        .prop_map(Template)
        .boxed()
}

/// Valid update bodies that always carry `relationships` (mutations need every member).
pub fn valid_update_with_every_member(spec: &'static Spec) -> BoxedStrategy<Template> {
    schema::strategy_for(spec, SchemaId::UpdateRequest, true)
        .prop_map(Template)
        .boxed()
}

/// An invalid body: a valid one with one mutation applied.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// The valid body it started from.
    pub template: Template,
    /// What was changed.
    pub mutation: Mutation,
}

impl Invalid {
    /// The mutated body, bound.
    pub fn bind(&self, binding: &Binding<'_>) -> Value {
        let mut body = self.template.bind(binding);
        self.mutation.apply(&mut body);
        body
    }
}

/// Invalid update bodies. `strict` adds unknown members (refused only per the 2022 schema).
pub fn invalid_update(spec: &'static Spec, strict: bool) -> BoxedStrategy<Invalid> {
    let all: Vec<Mutation> = mutations(spec, SchemaId::UpdateRequest)
        .into_iter()
        .filter(|m| strict || m.kind != MutationKind::UnknownMember)
        .collect();
    invalid_from(spec, all)
}

/// Valid bodies with one unknown member added somewhere the schema closes.
pub fn with_unknown_member(spec: &'static Spec) -> BoxedStrategy<Invalid> {
    let all: Vec<Mutation> = mutations(spec, SchemaId::UpdateRequest)
        .into_iter()
        .filter(|m| m.kind == MutationKind::UnknownMember)
        .collect();
    invalid_from(spec, all)
}

fn invalid_from(spec: &'static Spec, all: Vec<Mutation>) -> BoxedStrategy<Invalid> {
    (
        valid_update_with_every_member(spec),
        proptest::sample::select(all),
        "[a-z_]{1,12}",
    )
        .prop_map(|(template, mut mutation, text)| {
            mutation.text = text;
            Invalid { template, mutation }
        })
        .boxed()
}
