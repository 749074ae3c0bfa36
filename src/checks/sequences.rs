//! `update.isolation`, generated: sequences of updates (renames, flag changes, role moves
//! with and without `relationships`), role permission changes, rotations and probes over
//! three tokens and two roles, run against the target and the model side by side. After
//! every step that writes, every token of the sequence must read as the model says; every
//! probe must get the model's decision (an unknown one is recorded as a warning). A
//! divergence is shrunk by `proptest-state-machine` to the shortest sequence that still
//! diverges, and shown step by step: the request, the answer, the model's prediction.
//!
//! Each case starts from the same state: the run's own fixtures, reset with the requests
//! that undo what the previous case left (all of them after a failure), so a shrunk case
//! replays from where the first one started. Secrets cannot be reset; the model never needs
//! their values, and the check keeps the latest one of each token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proptest_state_machine::ReferenceStateMachine;
use reqwest::Method;
use serde_json::{Value, json};

use super::Cx;
use super::isolation::{entry, list_tokens, update_body};
use crate::client::{Action, Auth, Collection, Exchange, Request};
use crate::fixtures::{Flags, RoleFx, TokenFx, truncate};
use crate::model::machine::{GATE, Machine, ROLES, START_GATES, START_ROLES, Step, TOKENS, World};
use crate::model::{Model, Prediction, Probe};
use crate::outcome::{CheckResult, Failure, Finding};

/// What the cases share: the fixtures, the secrets as last seen, what the target holds.
/// Deliberately not `Debug`: it holds secrets.
struct Rig {
    cx: Cx,
    tokens: Vec<TokenFx>,
    roles: Vec<RoleFx>,
    /// Real names are this followed by the model's name, but a token's start name, which is
    /// the name it was created with (see [`Rig::real_name`]).
    prefix: String,
    secrets: Mutex<Vec<String>>,
    /// The model the target last agreed with at the end of a case; `None`: unknown, reset all.
    agreed: Mutex<Option<Model>>,
    /// Whether CDA probes can be sent (the target's CDA URL is known).
    cda: bool,
}

/// One step as it ran, for the report.
struct Line {
    step: String,
    call: String,
    model: String,
}

impl Rig {
    fn role(&self, label: &str) -> Option<&RoleFx> {
        let i = ROLES.iter().position(|r| *r == label)?;
        self.roles.get(i)
    }

    fn auth(&self, i: usize) -> Auth {
        let secret = self
            .secrets
            .lock()
            .ok()
            .and_then(|s| s.get(i).cloned())
            .unwrap_or_default();
        Auth::Token {
            secret,
            label: format!("$FIXTURE_TOKEN_{}", self.tokens[i].id),
        }
    }

    /// The real name of model name `name` of token `i`: the model starts every token under its
    /// label, which is the name the fixture was created with, so that the first case starts
    /// where the fixtures are and resets nothing; a rename (the label and a suffix) carries
    /// the rig's prefix, the run's fixture marker.
    fn real_name(&self, i: usize, name: &str) -> String {
        match self.tokens.get(i) {
            Some(token) if TOKENS.get(i) == Some(&name) => token.name.clone(),
            _ => format!("{}{name}", self.prefix),
        }
    }

    /// The model's ids and names turned into the target's.
    fn real_update(&self, label: &str, update: &crate::model::Update) -> Option<Value> {
        let i = TOKENS.iter().position(|t| *t == label)?;
        let id = &self.tokens.get(i)?.id;
        let mut real = update.clone();
        real.name = self.real_name(i, &update.name);
        real.role = match &update.role {
            Some(role) => Some(self.role(role)?.id.to_string()),
            None => None,
        };
        Some(update_body(id.as_str(), &real))
    }

    fn role_body(&self, role: &RoleFx, gate: Option<bool>) -> Value {
        let mut attributes = json!({ "name": role.name });
        if let Some(on) = gate {
            attributes[GATE] = json!(on);
        }
        json!({ "data": { "type": "role", "id": role.id, "attributes": attributes } })
    }

    /// Bring the target to `start`, sending only what differs from what it last agreed with.
    async fn reset(&self, start: &Model) -> CheckResult {
        let agreed = self.agreed.lock().ok().and_then(|mut a| a.take());
        for (i, label) in ROLES.iter().enumerate() {
            if agreed.as_ref().and_then(|m| m.role(label)) == start.role(label) {
                continue;
            }
            let role = &self.roles[i];
            let req = Request::cma_resource(Method::PUT, Collection::Roles, &role.id, None)
                .json(self.role_body(role, Some(START_GATES[i])));
            self.cx.expect_success(req, "reset a role").await?;
        }
        for (i, label) in TOKENS.iter().enumerate() {
            let differs = |m: &Model| {
                let (a, b) = (m.token(label), start.token(label));
                a.map(|t| (&t.name, t.surfaces, &t.role))
                    != b.map(|t| (&t.name, t.surfaces, &t.role))
            };
            if agreed.as_ref().is_some_and(|m| !differs(m)) {
                continue;
            }
            let token = start
                .token(label)
                .ok_or_else(|| Finding::inconclusive("no start token"))?;
            let update = crate::model::Update {
                name: token.name.clone(),
                surfaces: token.surfaces,
                role: token.role.clone(),
            };
            let body = self
                .real_update(label, &update)
                .ok_or_else(|| Finding::inconclusive("no fixture for a token of the sequence"))?;
            let req = self
                .cx
                .update_request(&self.tokens[i].id, body, Auth::Management);
            self.cx.expect_success(req, "reset a token").await?;
        }
        Ok(())
    }

    /// Every token of the sequence against a list; the mismatches.
    fn mismatches(&self, model: &Model, entries: &[Value]) -> Vec<String> {
        let secrets = self.secrets.lock().map(|s| s.clone()).unwrap_or_default();
        let mut out = Vec::new();
        for (i, label) in TOKENS.iter().enumerate() {
            let id = self.tokens[i].id.as_str();
            let Some(data) = entry(entries, id) else {
                out.push(format!("token {label} ({id}) is missing from the list"));
                continue;
            };
            // The model's names and role ids are symbolic: compare with them translated.
            let mut want = model.clone();
            if let Some(t) = model.token(label) {
                let mut t = t.clone();
                t.name = self.real_name(i, &t.name);
                t.role = t
                    .role
                    .as_deref()
                    .and_then(|r| self.role(r))
                    .map(|r| r.id.to_string());
                want.add_token(id, t);
            }
            let found = want.mismatches(id, data, secrets.get(i).map(String::as_str));
            if !found.is_empty() {
                out.push(format!("token {label} ({id}): {}", found.join(", ")));
            }
        }
        out
    }

    /// Run one case; a divergence is a failure listing the steps so far.
    async fn run_case(&self, steps: &[Step], seen: Option<&AtomicUsize>) -> CheckResult {
        let mut world = World::start();
        self.reset(&world.model).await?;
        let mut lines: Vec<Line> = Vec::new();
        let mut evidence: Vec<Exchange> = Vec::new();
        for step in steps {
            if let Some(seen) = seen {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            let label = world.current_id();
            let i = world.current;
            let mut line = Line {
                step: match step {
                    Step::Focus(_) => step.to_string(),
                    _ => format!("[token {label}] {step}"),
                },
                call: "no request".to_owned(),
                model: String::new(),
            };
            let request = match step {
                Step::Focus(_) => None,
                Step::Rename(_) | Step::SetSurfaces(_) | Step::MoveTo(_) => {
                    let update = world.update_for(step);
                    let body = update.and_then(|u| self.real_update(label, &u));
                    let body = body.ok_or_else(|| Finding::inconclusive("no update body"))?;
                    Some(
                        self.cx
                            .update_request(&self.tokens[i].id, body, Auth::Management),
                    )
                }
                Step::Rotate => Some(Request::cma_resource(
                    Method::POST,
                    Collection::AccessTokens,
                    &self.tokens[i].id,
                    Some(Action::RegenerateToken),
                )),
                Step::SetGate(on) => {
                    let role = world
                        .current_token()
                        .and_then(|t| t.role.as_deref())
                        .and_then(|r| self.role(r))
                        .ok_or_else(|| Finding::inconclusive("the current token has no role"))?;
                    Some(
                        Request::cma_resource(Method::PUT, Collection::Roles, &role.id, None)
                            .json(self.role_body(role, Some(*on))),
                    )
                }
                Step::Probe(probe) => {
                    let prediction = world.model.probe(label, probe);
                    line.model = prediction.to_string();
                    if matches!(probe, Probe::Cda | Probe::CdaDrafts) && !self.cda {
                        line.call = "not sent (no CDA URL)".to_owned();
                        lines.push(line);
                        continue;
                    }
                    let ex = self.cx.send(self.probe_request(probe, i)).await?;
                    line.call = ex.summary();
                    let got = super::effect::allowed(&ex)?;
                    evidence.push(ex);
                    let verdict = match prediction {
                        Prediction::Granted => got,
                        Prediction::Refused => !got,
                        Prediction::Unknown(why) => {
                            let flags = world.current_token().map(|t| t.surfaces);
                            self.cx.warn(format!(
                                "recorded, not asserted: {probe} by a token with {} was {} ({why})",
                                flags.map_or_else(String::new, |s| format!(
                                    "can_access_cda={} can_access_cda_preview={}",
                                    s.cda, s.cda_preview
                                )),
                                if got { "granted" } else { "refused" }
                            ));
                            true
                        }
                    };
                    lines.push(line);
                    if !verdict {
                        return Err(diverged(&lines, evidence, "the probe's decision"));
                    }
                    continue;
                }
            };
            let expect = world.step(step);
            let Some(request) = request else {
                lines.push(line);
                continue;
            };
            let expect = expect.ok_or_else(|| Finding::inconclusive("no prediction"))?;
            line.model = expect.to_string();
            let ex = self
                .cx
                .send_settled(request, "a step of the sequence")
                .await?;
            line.call = ex.summary();
            let admitted = expect.admits(ex.status);
            let rotated = if *step == Step::Rotate && ex.is_success() {
                ex.data()
                    .and_then(|d| d.pointer("/attributes/token"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            } else {
                None
            };
            evidence.push(ex);
            if !admitted {
                lines.push(line);
                return Err(diverged(&lines, evidence, "the status class"));
            }
            if *step == Step::Rotate {
                let old = self.secrets.lock().ok().and_then(|s| s.get(i).cloned());
                match rotated {
                    Some(new) if Some(&new) != old.as_ref() => {
                        let label = format!("$FIXTURE_TOKEN_{}", self.tokens[i].id);
                        self.cx.client().secrets().register(&new, &label);
                        if let Ok(mut secrets) = self.secrets.lock() {
                            secrets[i] = new;
                        }
                        world.model.secret_seen(label_of(i));
                    }
                    _ => {
                        line.model.push_str(", a new secret in the answer");
                        lines.push(line);
                        return Err(diverged(
                            &lines,
                            evidence,
                            "the rotation's answer (no new secret)",
                        ));
                    }
                }
            }
            let (read, entries) = list_tokens(&self.cx).await?;
            let found = self.mismatches(&world.model, &entries);
            line.call = format!("{}; then {}", line.call, read.summary());
            evidence.push(read);
            lines.push(line);
            if !found.is_empty() {
                let last = lines.len() - 1;
                lines[last].model = format!("{}; every token as modelled", lines[last].model);
                return Err(diverged(
                    &lines,
                    evidence,
                    &format!("the tokens as read: {}", found.join("; ")),
                ));
            }
        }
        if let Ok(mut agreed) = self.agreed.lock() {
            *agreed = Some(world.model);
        }
        Ok(())
    }

    fn probe_request(&self, probe: &Probe, i: usize) -> Request {
        let auth = self.auth(i);
        match probe {
            Probe::CmaRead => Request::cma(Method::GET, "/site").auth(auth),
            // A write that changes nothing: role y's own name.
            Probe::GatedWrite { .. } => {
                let role = &self.roles[1];
                Request::cma_resource(Method::PUT, Collection::Roles, &role.id, None)
                    .json(self.role_body(role, None))
                    .auth(auth)
            }
            Probe::Cda => Request::cda(super::effect::CDA_QUERY, auth),
            Probe::CdaDrafts => Request::cda(super::effect::CDA_QUERY, auth)
                .header("X-Include-Drafts", Some("true")),
        }
    }
}

fn label_of(i: usize) -> &'static str {
    TOKENS[i.min(TOKENS.len() - 1)]
}

/// The failure: the steps so far, each with its call and the model's prediction.
fn diverged(lines: &[Line], exchanges: Vec<Exchange>, what: &str) -> Finding {
    let mut message = format!(
        "a sequence of {} step(s) diverged from the model at its last step, on {what}:",
        lines.len()
    );
    for (n, line) in lines.iter().enumerate() {
        message.push_str(&format!(
            "\n  {}. {} — {}; model: {}",
            n + 1,
            line.step,
            line.call,
            if line.model.is_empty() {
                "-"
            } else {
                &line.model
            }
        ));
    }
    message.push_str(&format!(
        "\n(tokens {} and {} start in role {}, {} in role {}; {GATE} starts granted to {} only)",
        TOKENS[0], TOKENS[1], ROLES[START_ROLES[0]], TOKENS[2], ROLES[START_ROLES[2]], ROLES[0]
    ));
    Finding::Fail(Failure {
        message: truncate(&message, 4000),
        exchanges,
    })
}

/// Generated sequences agree with the model, step by step.
pub(super) async fn generated_sequences_agree_with_the_model(cx: Cx) -> CheckResult {
    let x = cx.role("seq-x", &[GATE]).await?;
    let y = cx.role("seq-y", &[]).await?;
    cx.distinct_ids(
        "roles",
        [x.id.as_str(), y.id.as_str()],
        "a role change cannot be observed",
    )?;
    let roles = vec![x, y];
    let mut tokens = Vec::new();
    for (label, role) in TOKENS.iter().zip(START_ROLES) {
        tokens.push(
            cx.token(&format!("seq-{label}"), &roles[role], Flags::ALL)
                .await?,
        );
    }
    cx.distinct_ids(
        "tokens",
        tokens.iter().map(|t| t.id.as_str()),
        "a write reaching a second token cannot be told apart",
    )?;
    let staging = cx.settings().budget.staging;
    let (cases, max_steps) = if staging {
        (2, 3)
    } else {
        (cx.settings().budget.cases.clamp(1, 16), 10)
    };
    let rig = Arc::new(Rig {
        prefix: format!("{}-", cx.fixture_name("seq")),
        secrets: Mutex::new(tokens.iter().map(|t| t.secret.clone()).collect()),
        // The fixtures were just created as the model starts (names, flags, roles, the gate):
        // the first case resets nothing.
        agreed: Mutex::new(Some(World::start().model)),
        cda: cx.client().target().cda_url.is_some(),
        tokens,
        roles,
        cx: cx.clone(),
    });
    cx.property_cases(
        cases,
        move || Machine::sequential_strategy(1..=max_steps),
        move |(_, steps, seen)| {
            let rig = Arc::clone(&rig);
            async move {
                let result = rig.run_case(&steps, seen.as_deref()).await;
                if result.is_err()
                    && let Ok(mut agreed) = rig.agreed.lock()
                {
                    *agreed = None;
                }
                result
            }
        },
    )
    .await
}
