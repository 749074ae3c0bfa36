use super::*;
use axum::http::HeaderValue;

fn with_authorization(values: &[&[u8]]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(
            AUTHORIZATION,
            HeaderValue::from_bytes(value).expect("header bytes"),
        );
    }
    headers
}

#[test]
fn bearer_parsing() {
    assert!(matches!(
        bearer_secret(&with_authorization(&[]), &FaultSet::none()),
        Credential::Missing
    ));
    assert!(matches!(
        bearer_secret(&with_authorization(&[b"Bearer abc"]), &FaultSet::none()),
        Credential::Secret(s) if s == "abc"
    ));
    assert!(matches!(
        bearer_secret(&with_authorization(&[b"bearer   abc "]), &FaultSet::none()),
        Credential::Secret(s) if s == "abc"
    ));
    for bad in [
        &b"abc"[..],
        b"Basic abc",
        b"Bearer",
        b"Bearer a b",
        b"Bearer \xff",
    ] {
        assert!(matches!(
            bearer_secret(&with_authorization(&[bad]), &FaultSet::none()),
            Credential::Malformed
        ));
    }
    assert!(matches!(
        bearer_secret(
            &with_authorization(&[b"Bearer a", b"Bearer a"]),
            &FaultSet::none()
        ),
        Credential::Malformed
    ));
}

#[test]
fn secrets_match_exactly_unless_a_forged_bearer_fault_widens_the_match() {
    let secret = "0123456789abcdef";
    let none = FaultSet::none();
    assert!(secret_matches(&none, secret, secret));
    for forged in [
        "0123456789abcdee",
        "0123456789abcde",
        "0123456789abcdef0",
        "01234567ffffffff",
        "0123456789ABCDEF",
        "%30123456789abcdef",
    ] {
        assert!(!secret_matches(&none, secret, forged), "{forged}");
    }
    let prefix = FaultSet::of([Fault::ForgedBearerPrefix]);
    assert!(secret_matches(&prefix, secret, "01234567ffffffff"));
    assert!(!secret_matches(&prefix, secret, "0123456"));
    let case = FaultSet::of([Fault::ForgedBearerCase]);
    assert!(secret_matches(&case, secret, "0123456789ABCDEF"));
    assert!(!secret_matches(&case, secret, "0123456789abcde"));
    let extended = FaultSet::of([Fault::ForgedBearerExtended]);
    assert!(secret_matches(&extended, secret, "0123456789abcdef0"));
    assert!(!secret_matches(&extended, secret, "0123456789abcde"));
    assert_eq!(percent_decoded("%30%31ab%zz%4"), "01ab%zz%4");
    assert_eq!(percent_decoded("plain"), "plain");
}

#[test]
fn the_scheme_stripped_fault_joins_what_is_left_of_the_header() {
    let stripped = FaultSet::of([Fault::ForgedBearerSchemeStripped]);
    for header in [&b"Bearer Bearer abc"[..], b"Bearer a bc", b"abc"] {
        assert!(matches!(
            bearer_secret(&with_authorization(&[header]), &stripped),
            Credential::Secret(s) if s == "abc"
        ));
    }
    assert!(matches!(
        bearer_secret(&with_authorization(&[b"Bearer "]), &stripped),
        Credential::Malformed
    ));
}

#[test]
fn token_writes_need_manage_access_tokens_and_role_writes_manage_users() {
    assert_eq!(
        Action::UpdateToken.required_permission(),
        Some("can_manage_access_tokens")
    );
    assert_eq!(
        Action::DeleteRole.required_permission(),
        Some("can_manage_users")
    );
    assert_eq!(Action::ReadSite.required_permission(), None);
}
