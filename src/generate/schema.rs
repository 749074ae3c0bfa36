//! From a JSON Schema to a proptest strategy, and to the list of its mutations.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::names::name_parts;
use crate::spec::{SchemaId, Spec};

/// Room kept in generated names for the check's marker.
const MARKER_ROOM: usize = 48;

/// A schema node and the spec file it sits in (for resolving relative `$ref`s).
#[derive(Clone, Copy)]
struct Node<'a> {
    file: &'a str,
    schema: &'a Value,
}

fn resolve<'a>(spec: &'a Spec, node: Node<'a>) -> Node<'a> {
    let mut node = node;
    // Bounded: the spec's refs are acyclic, but a bad edit must not hang the run.
    for _ in 0..16 {
        let Some(reference) = node.schema.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let (file_part, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let file: &'a str = if file_part.is_empty() {
            node.file
        } else {
            let dir = node.file.rsplit_once('/').map_or("", |(dir, _)| dir);
            let candidate = if dir.is_empty() {
                file_part.to_owned()
            } else {
                format!("{dir}/{file_part}")
            };
            match spec.schemas().files().find(|(name, _)| *name == candidate) {
                Some((name, _)) => name,
                None => return node,
            }
        };
        let Some(target) = spec.schemas().file(file).and_then(|v| v.pointer(pointer)) else {
            return node;
        };
        node = Node {
            file,
            schema: target,
        };
    }
    node
}

fn annotation<'a>(node: Node<'a>, key: &str) -> Option<&'a str> {
    node.schema.get(key).and_then(Value::as_str)
}

/// A strategy for instances of `id`. With `every_member`, optional members are always present.
pub(super) fn strategy_for(
    spec: &'static Spec,
    id: SchemaId,
    every_member: bool,
) -> BoxedStrategy<Value> {
    let (file, pointer) = id.location();
    match spec.schemas().file(file).and_then(|v| v.pointer(pointer)) {
        Some(schema) => node_strategy(spec, Node { file, schema }, every_member),
        None => Just(Value::Null).boxed(),
    }
}

fn node_strategy(
    spec: &'static Spec,
    node: Node<'static>,
    every_member: bool,
) -> BoxedStrategy<Value> {
    // Annotations on the referencing node win over the target's.
    match annotation(node, "x-bind") {
        Some("path_id") => return Just(json!({ "$bind": "path_id" })).boxed(),
        Some("role") => {
            return (0u64..4)
                .prop_map(|index| json!({ "$bind": "role", "index": index }))
                .boxed();
        }
        _ => {}
    }
    if annotation(node, "x-generate") == Some("name") {
        return name_parts(MARKER_ROOM)
            .prop_map(|p| json!({ "$bind": "name", "lead": p.lead, "before": p.before, "after": p.after, "trail": p.trail }))
            .boxed();
    }
    let node = resolve(spec, node);
    if let Some(value) = node.schema.get("const") {
        return Just(value.clone()).boxed();
    }
    if let Some(values) = node.schema.get("enum").and_then(Value::as_array)
        && !values.is_empty()
    {
        return proptest::sample::select(values.clone()).boxed();
    }
    match node.schema.get("type").and_then(Value::as_str) {
        Some("object") => object_strategy(spec, node, every_member),
        Some("boolean") => any::<bool>().prop_map(Value::Bool).boxed(),
        Some("integer") => (0i64..1000).prop_map(|n| json!(n)).boxed(),
        Some("string") => "[a-z0-9]{1,12}".prop_map(Value::String).boxed(),
        _ => Just(Value::Null).boxed(),
    }
}

fn object_strategy(
    spec: &'static Spec,
    node: Node<'static>,
    every_member: bool,
) -> BoxedStrategy<Value> {
    let required: Vec<&str> = node
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = node.schema.get("properties").and_then(Value::as_object) else {
        return Just(json!({})).boxed();
    };
    let members: Vec<BoxedStrategy<Option<(String, Value)>>> = properties
        .iter()
        .map(|(name, schema)| {
            let name = name.clone();
            let inner = node_strategy(
                spec,
                Node {
                    file: node.file,
                    schema,
                },
                every_member,
            );
            if every_member || required.contains(&name.as_str()) {
                inner.prop_map(move |v| Some((name.clone(), v))).boxed()
            } else {
                proptest::option::of(inner)
                    .prop_map(move |v| v.map(|v| (name.clone(), v)))
                    .boxed()
            }
        })
        .collect();
    members
        .prop_map(|members| Value::Object(members.into_iter().flatten().collect::<Map<_, _>>()))
        .boxed()
}

/// One way to break a valid body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// JSON pointer of the member changed (its parent, for an added member).
    pub pointer: String,
    /// What is done there.
    pub kind: MutationKind,
    /// Free text used by some kinds (a wrong const, the unknown member's name).
    pub text: String,
}

/// The kinds of mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutationKind {
    /// A required member removed.
    Remove,
    /// The member replaced by a value of another JSON type.
    WrongType(JsonType),
    /// A `const` string replaced by another string.
    WrongConst,
    /// A string that must contain a non-space character made blank.
    Blank,
    /// A string with `minLength` made empty.
    Empty,
    /// An unknown member added to an object that allows none (observed, 2022 schema).
    UnknownMember,
    /// A reference made to name a resource that does not exist (`text` is the id): not a
    /// rule of the schema's shape but of what it describes (a `relationships.role.data` is a
    /// role).
    UnknownReference,
}

/// The JSON types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// `null`
    Null,
    /// `true`
    Boolean,
    /// `1.5`
    Number,
    /// `"text"`
    String,
    /// `[]`
    Array,
    /// `{}`
    Object,
}

impl JsonType {
    const ALL: [JsonType; 6] = [
        JsonType::Null,
        JsonType::Boolean,
        JsonType::Number,
        JsonType::String,
        JsonType::Array,
        JsonType::Object,
    ];

    fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }

    fn sample(self) -> Value {
        match self {
            JsonType::Null => Value::Null,
            JsonType::Boolean => json!(true),
            JsonType::Number => json!(1.5),
            JsonType::String => json!("true"),
            JsonType::Array => json!([]),
            JsonType::Object => json!({}),
        }
    }

    fn of(value: &Value) -> JsonType {
        match value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }
}

impl Mutation {
    /// Apply to a bound body.
    pub fn apply(&self, body: &mut Value) {
        match self.kind {
            MutationKind::Remove => {
                if let Some((parent, key)) = self.pointer.rsplit_once('/')
                    && let Some(Value::Object(map)) = body.pointer_mut(parent)
                {
                    map.remove(key);
                }
            }
            MutationKind::WrongType(t) => set(body, &self.pointer, t.sample()),
            MutationKind::WrongConst => {
                // The schema's own list carries the const itself: the near miss (its plural,
                // the collection's name) is what a loose comparison lets through.
                let replacement = if self.text == "access_token" || self.text == "role" {
                    format!("{}s", self.text)
                } else {
                    self.text.clone()
                };
                set(body, &self.pointer, json!(replacement));
            }
            MutationKind::Blank => set(body, &self.pointer, json!("  ")),
            MutationKind::Empty => set(body, &self.pointer, json!("")),
            MutationKind::UnknownReference => set(body, &self.pointer, json!(self.text)),
            MutationKind::UnknownMember => {
                if let Some(Value::Object(map)) = body.pointer_mut(&self.pointer) {
                    map.insert(format!("x_{}", self.text), json!(true));
                }
            }
        }
    }
}

impl std::fmt::Display for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "(root)"
        } else {
            &self.pointer
        };
        match self.kind {
            MutationKind::Remove => write!(f, "{at} removed"),
            MutationKind::WrongType(t) => write!(f, "{at} given a {}", t.name()),
            MutationKind::WrongConst => write!(f, "{at} set to another string"),
            MutationKind::Blank => write!(f, "{at} made blank"),
            MutationKind::Empty => write!(f, "{at} made empty"),
            MutationKind::UnknownMember => write!(f, "an unknown member added to {at}"),
            MutationKind::UnknownReference => {
                write!(f, "{at} naming a resource that does not exist")
            }
        }
    }
}

fn set(body: &mut Value, pointer: &str, value: Value) {
    if pointer.is_empty() {
        *body = value;
    } else if let Some(slot) = body.pointer_mut(pointer) {
        *slot = value;
    }
}

/// Every mutation the schema `id` allows, in a fixed order.
pub fn mutations(spec: &'static Spec, id: SchemaId) -> Vec<Mutation> {
    let (file, pointer) = id.location();
    let mut out = Vec::new();
    if let Some(schema) = spec.schemas().file(file).and_then(|v| v.pointer(pointer)) {
        walk(spec, Node { file, schema }, String::new(), &mut out);
    }
    out
}

/// The covering set of the schema `id`: one mutation per constraint the schema documents
/// (each required member removed, each `type` given one wrong JSON type, each `const`
/// changed, each blank or empty string, each closed object given an unknown member), in a
/// fixed order. Where [`mutations`] gives every wrong type of a member, this gives the one
/// a lenient parser most likely lets through: a string for a boolean (`"true"`), `null`
/// for an object or a `const` string, a number for a free string (the id, the name), a
/// string for the rest.
pub fn covering_mutations(spec: &'static Spec, id: SchemaId) -> Vec<Mutation> {
    let all = mutations(spec, id);
    let mut out: Vec<Mutation> = Vec::new();
    for mutation in &all {
        let MutationKind::WrongType(first) = mutation.kind else {
            out.push(mutation.clone());
            continue;
        };
        if out
            .iter()
            .any(|m| m.pointer == mutation.pointer && matches!(m.kind, MutationKind::WrongType(_)))
        {
            continue;
        }
        let offered: Vec<JsonType> = all
            .iter()
            .filter(|m| m.pointer == mutation.pointer)
            .filter_map(|m| match m.kind {
                MutationKind::WrongType(t) => Some(t),
                _ => None,
            })
            .collect();
        // A boolean member is offered every type but boolean; the rest get null first.
        let order = if offered.contains(&JsonType::Boolean) {
            [JsonType::Null, JsonType::String, JsonType::Number]
        } else {
            [JsonType::String, JsonType::Null, JsonType::Number]
        };
        let preferred = order
            .into_iter()
            .find(|t| offered.contains(t))
            .unwrap_or(first);
        // A free string (an id, the name) gets a number instead: the wrong type a lenient
        // parser most likely casts to a string (`312` for `"312"`); a missing member (its own
        // mutation) already shows a parser that reads `null` as absent.
        let free_string = !offered.contains(&JsonType::String)
            && !all
                .iter()
                .any(|m| m.pointer == mutation.pointer && m.kind == MutationKind::WrongConst);
        let preferred = if free_string && offered.contains(&JsonType::Number) {
            JsonType::Number
        } else {
            preferred
        };
        out.push(Mutation {
            kind: MutationKind::WrongType(preferred),
            ..mutation.clone()
        });
    }
    out
}

fn allowed_types(node: Node<'_>) -> Vec<JsonType> {
    if let Some(value) = node.schema.get("const") {
        return vec![JsonType::of(value)];
    }
    match node.schema.get("type") {
        Some(Value::String(t)) => JsonType::ALL
            .into_iter()
            .filter(|j| j.name() == t || (t == "integer" && *j == JsonType::Number))
            .collect(),
        Some(Value::Array(ts)) => JsonType::ALL
            .into_iter()
            .filter(|j| ts.iter().any(|t| t.as_str() == Some(j.name())))
            .collect(),
        _ => Vec::new(),
    }
}

fn walk(spec: &'static Spec, node: Node<'static>, pointer: String, out: &mut Vec<Mutation>) {
    let is_name = annotation(node, "x-generate") == Some("name");
    let node = resolve(spec, node);
    let push = |out: &mut Vec<Mutation>, kind| {
        out.push(Mutation {
            pointer: pointer.clone(),
            kind,
            text: String::new(),
        })
    };
    let allowed = allowed_types(node);
    if !allowed.is_empty() {
        for t in JsonType::ALL {
            if !allowed.contains(&t) {
                push(out, MutationKind::WrongType(t));
            }
        }
    }
    if let Some(constant) = node.schema.get("const").and_then(Value::as_str) {
        out.push(Mutation {
            pointer: pointer.clone(),
            kind: MutationKind::WrongConst,
            text: constant.to_owned(),
        });
    }
    if is_name {
        push(out, MutationKind::Blank);
    }
    if node
        .schema
        .get("minLength")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 0)
    {
        push(out, MutationKind::Empty);
    }
    if node.schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        push(out, MutationKind::UnknownMember);
    }
    let required: Vec<&str> = node
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = node.schema.get("properties").and_then(Value::as_object) {
        for (name, schema) in properties {
            let child = format!("{pointer}/{name}");
            if required.contains(&name.as_str()) {
                out.push(Mutation {
                    pointer: child.clone(),
                    kind: MutationKind::Remove,
                    text: String::new(),
                });
            }
            walk(
                spec,
                Node {
                    file: node.file,
                    schema,
                },
                child,
                out,
            );
        }
    }
}

#[cfg(test)]
mod tests;
