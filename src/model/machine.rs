//! The model as a `proptest-state-machine` reference machine: three tokens over two roles,
//! and steps that name "the current token" (a focus step changes which one), so that a
//! shrunk sequence reads as a story and deleting a step does not renumber the others.
//!
//! Ids here are symbolic (tokens `a`, `b`, `c`; roles `x`, `y`); the sequence check maps them
//! to the fixtures it created. Names are symbolic too: the check prefixes them.

use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

use super::{Expect, Model, Probe, Role, Secret, Surfaces, Token, Update};

/// The tokens of a sequence: `a` and `b` share role `x`, `c` has role `y`.
pub const TOKENS: [&str; 3] = ["a", "b", "c"];
/// The roles of a sequence.
pub const ROLES: [&str; 2] = ["x", "y"];
/// Each token's role at the start of a case.
pub const START_ROLES: [usize; 3] = [0, 0, 1];
/// The permission the sequences grant and revoke, and the gated probe needs.
pub const GATE: &str = "can_manage_users";
/// Whether each role grants [`GATE`] at the start of a case.
pub const START_GATES: [bool; 2] = [true, false];

/// The model and which token is the current one.
#[derive(Clone, PartialEq, Eq)]
pub struct World {
    /// Every token and role of the sequence.
    pub model: Model,
    /// Index into [`TOKENS`].
    pub current: usize,
}

/// One generated step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Make another token the current one (no request).
    Focus(usize),
    /// Rename the current token (relationships omitted).
    Rename(u8),
    /// Set the current token's three flags (relationships omitted).
    SetSurfaces(Surfaces),
    /// Update the current token sending `relationships.role` (index into [`ROLES`]), name
    /// and flags unchanged.
    MoveTo(usize),
    /// Rotate the current token's secret.
    Rotate,
    /// Grant or revoke [`GATE`] on the current token's role.
    SetGate(bool),
    /// A call with the current token's secret.
    Probe(Probe),
}

impl World {
    /// The start of every case.
    pub fn start() -> World {
        let mut model = Model::new();
        for (role, gate) in ROLES.iter().zip(START_GATES) {
            let mut r = Role::default();
            r.permissions.insert(GATE.to_owned(), gate);
            model.add_role(*role, r);
        }
        for (token, role) in TOKENS.iter().zip(START_ROLES) {
            model.add_token(
                *token,
                Token {
                    name: (*token).to_owned(),
                    surfaces: Surfaces::ALL,
                    role: Some(ROLES[role].to_owned()),
                    secret: Secret::Known,
                    hardcoded: None,
                },
            );
        }
        World { model, current: 0 }
    }

    /// The current token's id.
    pub fn current_id(&self) -> &'static str {
        TOKENS[self.current.min(TOKENS.len() - 1)]
    }

    /// The current token's model.
    pub fn current_token(&self) -> Option<&Token> {
        self.model.token(self.current_id())
    }

    /// The update a step sends, if it is one.
    pub fn update_for(&self, step: &Step) -> Option<Update> {
        let token = self.current_token()?;
        let id = self.current_id();
        let (name, surfaces, role) = match step {
            Step::Rename(k) => (format!("{id}-{k}"), token.surfaces, None),
            Step::SetSurfaces(s) => (token.name.clone(), *s, None),
            Step::MoveTo(r) => (
                token.name.clone(),
                token.surfaces,
                Some(ROLES[(*r).min(ROLES.len() - 1)].to_owned()),
            ),
            _ => return None,
        };
        Some(Update {
            name,
            surfaces,
            role,
        })
    }

    /// Apply a step to the model; what it predicts for the call (`None`: no call, or a probe,
    /// whose prediction is [`Model::probe`]). A rotation leaves the secret unknown until the
    /// run has seen the answer ([`Model::secret_seen`]).
    pub fn step(&mut self, step: &Step) -> Option<Expect> {
        let id = self.current_id();
        match step {
            Step::Focus(i) => {
                self.current = (*i).min(TOKENS.len() - 1);
                None
            }
            Step::Rename(_) | Step::SetSurfaces(_) | Step::MoveTo(_) => {
                let update = self.update_for(step)?;
                Some(self.model.update(id, &update))
            }
            Step::Rotate => Some(self.model.rotate(id)),
            Step::SetGate(on) => {
                let role = self.current_token()?.role.clone()?;
                Some(self.model.set_permission(&role, GATE, *on))
            }
            Step::Probe(_) => None,
        }
    }
}

/// Short, for the generator value a failure quotes: every case starts from [`World::start`].
impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == World::start() {
            f.write_str("World::start()")
        } else {
            write!(f, "World {{ current: {}, .. }}", self.current_id())
        }
    }
}

/// The reference machine.
#[derive(Debug)]
pub struct Machine;

fn probes() -> impl Strategy<Value = Probe> {
    prop_oneof![
        1 => Just(Probe::CmaRead),
        2 => Just(Probe::GatedWrite { permission: GATE }),
        1 => Just(Probe::Cda),
        1 => Just(Probe::CdaDrafts),
    ]
}

impl ReferenceStateMachine for Machine {
    type State = World;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<World> {
        Just(World::start()).boxed()
    }

    fn transitions(_: &World) -> BoxedStrategy<Step> {
        prop_oneof![
            2 => (0..TOKENS.len()).prop_map(Step::Focus),
            1 => (0..4u8).prop_map(Step::Rename),
            3 => (any::<bool>(), any::<bool>(), any::<bool>())
                .prop_map(|(cda, cda_preview, cma)| Step::SetSurfaces(Surfaces { cda, cda_preview, cma })),
            3 => (0..ROLES.len()).prop_map(Step::MoveTo),
            1 => Just(Step::Rotate),
            2 => any::<bool>().prop_map(Step::SetGate),
            5 => probes().prop_map(Step::Probe),
        ]
        .boxed()
    }

    fn preconditions(world: &World, step: &Step) -> bool {
        // Focusing on the current token is a no-op step.
        !matches!(step, Step::Focus(i) if *i == world.current)
    }

    fn apply(mut world: World, step: &Step) -> World {
        world.step(step);
        if *step == Step::Rotate {
            world.model.secret_seen(world.current_id());
        }
        world
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flags = |s: &Surfaces| {
            format!(
                "can_access_cda={} can_access_cda_preview={} can_access_cma={}",
                s.cda, s.cda_preview, s.cma
            )
        };
        match self {
            Step::Focus(i) => write!(f, "focus on token {}", TOKENS[(*i).min(2)]),
            Step::Rename(k) => write!(f, "rename the current token (suffix -{k})"),
            Step::SetSurfaces(s) => write!(f, "set the current token's flags: {}", flags(s)),
            Step::MoveTo(r) => write!(f, "send relationships.role = role {}", ROLES[(*r).min(1)]),
            Step::Rotate => f.write_str("rotate the current token's secret"),
            Step::SetGate(on) => write!(
                f,
                "{} {GATE} on the current token's role",
                if *on { "grant" } else { "revoke" }
            ),
            Step::Probe(p) => write!(f, "probe with the current token's secret: {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_flag_change_of_a_lands_on_a_alone() {
        let mut w = World::start();
        let off = Surfaces {
            cda: false,
            cda_preview: false,
            cma: false,
        };
        w.step(&Step::SetSurfaces(off));
        assert_eq!(w.model.token("a").unwrap().surfaces, off);
        assert_eq!(w.model.token("b").unwrap().surfaces, Surfaces::ALL);
        w.step(&Step::Focus(1));
        w.step(&Step::MoveTo(1));
        assert_eq!(w.model.token("b").unwrap().role.as_deref(), Some("y"));
        assert_eq!(
            w.model.probe("b", &Probe::GatedWrite { permission: GATE }),
            super::super::Prediction::Refused
        );
        w.step(&Step::SetGate(true));
        assert_eq!(
            w.model.probe("c", &Probe::GatedWrite { permission: GATE }),
            super::super::Prediction::Granted,
            "c shares role y"
        );
    }
}
