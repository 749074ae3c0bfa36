use super::*;
use crate::generate::{Binding, invalid_update, valid_update};
use proptest::test_runner::{Config, TestRunner};

fn binding() -> Binding<'static> {
    Binding {
        path_id: "42",
        roles: &[],
        marker: "conformance-test-0-",
    }
}

#[test]
fn mutations_cover_what_the_issue_lists() {
    let all = mutations(Spec::embedded(), SchemaId::UpdateRequest);
    let has = |pointer: &str, kind: MutationKind| {
        all.iter().any(|m| m.pointer == pointer && m.kind == kind)
    };
    assert!(has("/data/type", MutationKind::Remove));
    assert!(has("/data/type", MutationKind::WrongConst));
    assert!(has("/data/attributes/name", MutationKind::Remove));
    assert!(has(
        "/data/attributes/can_access_cma",
        MutationKind::WrongType(JsonType::String)
    ));
    assert!(has("/data", MutationKind::WrongType(JsonType::Array)));
    assert!(has(
        "/data/relationships/role/data",
        MutationKind::WrongType(JsonType::Null)
    ));
    assert!(has(
        "/data/relationships/role/data/type",
        MutationKind::WrongConst
    ));
    assert!(has(
        "/data/relationships/role/data/id",
        MutationKind::Remove
    ));
    assert!(has("/data/attributes", MutationKind::UnknownMember));
    assert!(
        !has("/data/relationships", MutationKind::Remove),
        "relationships is optional"
    );
}

#[test]
fn the_covering_set_has_one_mutation_per_constraint() {
    let all = mutations(Spec::embedded(), SchemaId::UpdateRequest);
    let covering = covering_mutations(Spec::embedded(), SchemaId::UpdateRequest);
    // Every pointer and kind of the full list is still there, each wrong type once.
    for m in &all {
        assert!(
            covering.iter().any(|c| c.pointer == m.pointer
                && std::mem::discriminant(&c.kind) == std::mem::discriminant(&m.kind)),
            "{m}"
        );
    }
    let wrong_types = |list: &[Mutation], pointer: &str| {
        list.iter()
            .filter(|m| m.pointer == pointer && matches!(m.kind, MutationKind::WrongType(_)))
            .count()
    };
    for m in &covering {
        assert!(wrong_types(&covering, &m.pointer) <= 1, "{m}");
    }
    // A free string (the id, the name, the role id) gets the number a lenient parser casts.
    for pointer in [
        "/data/id",
        "/data/attributes/name",
        "/data/relationships/role/data/id",
    ] {
        assert!(
            covering.iter().any(
                |m| m.pointer == pointer && m.kind == MutationKind::WrongType(JsonType::Number)
            ),
            "{pointer}"
        );
    }
    assert!(
        covering.len() < all.len() / 2,
        "{} of {}",
        covering.len(),
        all.len()
    );
    let has = |pointer: &str, kind: MutationKind| {
        covering
            .iter()
            .any(|m| m.pointer == pointer && m.kind == kind)
    };
    assert!(has(
        "/data/attributes/can_access_cma",
        MutationKind::WrongType(JsonType::String)
    ));
    assert!(has(
        "/data/relationships/role/data",
        MutationKind::WrongType(JsonType::Null)
    ));
    // A wrong const is the near miss a loose comparison lets through.
    let mut body = json!({ "data": { "type": "access_token" } });
    let wrong_type = covering
        .iter()
        .find(|m| m.pointer == "/data/type" && m.kind == MutationKind::WrongConst)
        .expect("a wrong const of data.type");
    wrong_type.apply(&mut body);
    assert_eq!(body["data"]["type"], "access_tokens");
}

#[test]
fn generated_valid_bodies_match_the_schema_and_invalid_ones_do_not() {
    let spec = Spec::embedded();
    let roles = vec!["7".to_owned()];
    let b = Binding {
        roles: &roles,
        ..binding()
    };
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    runner
        .run(&valid_update(spec), |t| {
            let body = t.bind(&b);
            prop_assert_eq!(
                spec.schemas().validate(SchemaId::UpdateRequest, &body),
                Ok(()),
                "{}",
                body
            );
            Ok(())
        })
        .expect("valid bodies validate");
    runner
        .run(&invalid_update(spec, true), |inv| {
            let body = inv.bind(&b);
            // A blank name is a validation error (VALIDATION_REQUIRED), not a schema one.
            prop_assume!(inv.mutation.kind != MutationKind::Blank);
            prop_assert!(
                spec.schemas()
                    .validate(SchemaId::UpdateRequest, &body)
                    .is_err(),
                "{} {}",
                inv.mutation,
                body
            );
            Ok(())
        })
        .expect("invalid bodies do not validate");
}
