#![allow(clippy::unwrap_used)]

use super::*;

#[tokio::test]
async fn cases_beyond_the_bound_are_a_configuration_error() {
    for cases in [0, MAX_CASES + 1] {
        let plan = Plan {
            cases,
            ..Plan::default()
        };
        let Err(err) = Session::open(&plan).await else {
            panic!("the session opened with {cases} cases");
        };
        assert!(matches!(err, RunError::Plan(PlanError::Cases(_))), "{err}");
    }
}

#[test]
fn an_unreachable_target_is_named_once_with_its_cause() {
    let err = RunError::Unreachable(TransportError::Unreachable {
        url: "http://127.0.0.1:9/site".to_owned(),
        message: "error sending request for url (http://127.0.0.1:9/site): client error (Connect): tcp connect error: Connection refused (os error 111)".to_owned(),
    });
    let text = err.to_string();
    assert_eq!(
        text,
        "the target could not be reached: nothing answered at http://127.0.0.1:9/site: tcp connect error: Connection refused (os error 111)"
    );
    assert_eq!(text.matches("127.0.0.1:9").count(), 1, "{text}");
}
