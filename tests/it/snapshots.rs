//! Regression snapshots of what the embedded reference server answers where the
//! documentation is silent (`src/observe.rs` makes the observations). With `CI=true` a
//! changed or missing snapshot fails; locally insta writes `.snap.new` files for
//! `cargo insta review`.

use std::path::Path;
use std::sync::Arc;

use token_conformance::engine::Session;
use token_conformance::observe::{self, Observation};
use token_conformance::plan::Plan;

fn observations() -> Vec<Observation> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options = Plan {
            seed: 1,
            ..Plan::default()
        };
        let session = Arc::new(Session::open(&options).await.unwrap());
        observe::observe(&session).await.unwrap()
    })
}

fn snapshot_dir() -> std::path::PathBuf {
    observe::snapshot_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"),
        "reference",
    )
}

#[test]
fn the_reference_server_answers_as_recorded() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_sort_maps(true);
    settings.bind(|| {
        for obs in observations() {
            let observation = &obs.value;
            insta::assert_json_snapshot!(obs.name.as_str(), observation);
        }
    });
}

#[test]
fn the_cli_writes_snapshots_as_insta_does() {
    let observations = observations();
    assert!(
        observations.len() >= 20,
        "every kind of observation is made"
    );
    for obs in observations {
        // The committed snapshots are what insta wrote; a missing one fails the test above.
        let path = snapshot_dir().join(format!("{}.snap", obs.name));
        let stored = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let body = |text: &str| {
            text.splitn(3, "---\n")
                .nth(2)
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        assert_eq!(
            body(&observe::snapshot_file_text(&obs)),
            body(&stored),
            "{}",
            path.display()
        );
    }
}

#[test]
fn observations_hold_no_secret_and_no_run_id() {
    for obs in observations() {
        let text = obs.value.to_string();
        assert!(!text.contains("conformance-"), "{}: {text}", obs.name);
        assert!(!text.contains("Bearer "), "{}: {text}", obs.name);
    }
}
