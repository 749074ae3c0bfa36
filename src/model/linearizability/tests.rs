#![allow(clippy::unwrap_used)]
use super::*;

/// A register of one integer: `Some(v)` writes v, `None` reads (the answer is the value).
struct Register;

impl SequentialSpec for Register {
    type State = i64;
    type Call = Option<i64>;
    type Answer = i64;
    fn init(&self) -> i64 {
        0
    }
    fn step(&self, state: &i64, call: &Option<i64>, answer: &i64) -> Option<i64> {
        match call {
            Some(v) => Some(*v),
            None => (answer == state).then_some(*state),
        }
    }
    fn is_read(&self, call: &Option<i64>) -> bool {
        call.is_none()
    }
    fn overwrites(&self, call: &Option<i64>) -> bool {
        call.is_some()
    }
}

fn op<C, A>(client: usize, start: u64, end: u64, call: C, answer: A) -> Operation<C, A> {
    Operation {
        client,
        start: Duration::from_millis(start),
        end: Duration::from_millis(end),
        call,
        answer,
    }
}

const ON: Perms = Perms::ALL;
const OFF: Perms = Perms { cma: false, ..ON };
const SPEC: PermissionSpec = PermissionSpec { initial: ON };

fn update(client: usize, start: u64, end: u64, to: Perms) -> Operation<PermCall, PermAnswer> {
    op(
        client,
        start,
        end,
        PermCall::Update(to),
        PermAnswer::Updated,
    )
}

fn site(client: usize, start: u64, end: u64, granted: bool) -> Operation<PermCall, PermAnswer> {
    op(
        client,
        start,
        end,
        PermCall::Probe(ProbeKind::CmaRead),
        PermAnswer::Probe(granted),
    )
}

/// Whether the greedy order (by start) is legal: the baseline a search must beat.
fn greedy_is_legal<S: SequentialSpec>(spec: &S, h: &[Operation<S::Call, S::Answer>]) -> bool {
    let mut order: Vec<&Operation<S::Call, S::Answer>> = h.iter().collect();
    order.sort_by_key(|o| o.start);
    let mut state = spec.init();
    for o in order {
        match spec.step(&state, &o.call, &o.answer) {
            Some(next) => state = next,
            None => return false,
        }
    }
    true
}

fn is_legal_order<S: SequentialSpec>(
    spec: &S,
    h: &[Operation<S::Call, S::Answer>],
    order: &[usize],
) -> bool {
    let mut state = spec.init();
    for (k, &i) in order.iter().enumerate() {
        if order[k + 1..].iter().any(|&j| h[j].precedes(&h[i])) {
            return false;
        }
        match spec.step(&state, &h[i].call, &h[i].answer) {
            Some(next) => state = next,
            None => return false,
        }
    }
    order.len() == h.len()
}

#[test]
fn sequential_and_overlapping_histories_that_have_an_order() {
    // Revoke, then a refusal after its answer; a probe overlapping the revoke may see
    // either.
    let h = vec![
        update(0, 0, 10, OFF),
        site(1, 5, 8, true),
        site(2, 6, 9, false),
        site(1, 11, 12, false),
    ];
    let lin = check(&SPEC, &h).unwrap().unwrap();
    assert!(is_legal_order(&SPEC, &h, &lin.order));
    assert!(check(&SPEC, &[]).unwrap().is_some());
}

#[test]
fn a_grant_seen_after_the_revoke_answered_is_not_linearizable() {
    let h = vec![update(0, 0, 10, OFF), site(1, 11, 12, true)];
    assert_eq!(check(&SPEC, &h).unwrap(), None);
    // Equal instants overlap: the probe may have been ordered first.
    let h = vec![update(0, 0, 10, OFF), site(1, 10, 12, true)];
    assert!(check(&SPEC, &h).unwrap().is_some());
}

#[test]
fn once_a_concurrent_probe_saw_the_new_permissions_a_later_one_cannot_see_the_old() {
    // Both probes overlap the revoke, but the second begins after the first ended: the
    // revoke is ordered before the first, hence before the second.
    let h = vec![
        update(0, 0, 100, OFF),
        site(1, 10, 20, false),
        site(2, 30, 40, true),
    ];
    assert_eq!(check(&SPEC, &h).unwrap(), None);
}

#[test]
fn three_clients_only_a_search_can_order() {
    // Client 0 revokes over a long call; client 1 grants in the middle of it; client 2,
    // after the grant's answer, is refused. In order of start (revoke, grant, probe) the
    // probe would be granted; only the order grant, revoke, probe is legal.
    let h = vec![
        update(0, 0, 100, OFF),
        update(1, 10, 20, ON),
        site(2, 30, 40, false),
    ];
    assert!(!greedy_is_legal(&SPEC, &h));
    let lin = check(&SPEC, &h).unwrap().unwrap();
    assert_eq!(lin.order, vec![1, 0, 2]);
    assert!(is_legal_order(&SPEC, &h, &lin.order));
    // The same on a register, with reads, so the search backtracks over a read.
    let h = vec![
        op(0, 0, 100, Some(1), 0),
        op(1, 5, 20, Some(2), 0),
        op(2, 8, 30, None, 2),
        op(2, 40, 50, None, 1),
    ];
    assert!(!greedy_is_legal(&Register, &h));
    let lin = check(&Register, &h).unwrap().unwrap();
    assert!(is_legal_order(&Register, &h, &lin.order));
}

#[test]
fn a_register_read_of_a_value_never_written_is_not_linearizable() {
    let h = vec![op(0, 0, 10, Some(1), 0), op(1, 2, 5, None, 7)];
    assert_eq!(check(&Register, &h).unwrap(), None);
    // Two writes answered, then two reads that disagree on which came last.
    let h = vec![
        op(0, 0, 10, Some(1), 0),
        op(1, 0, 10, Some(2), 0),
        op(2, 20, 30, None, 1),
        op(3, 40, 50, None, 2),
    ];
    assert_eq!(check(&Register, &h).unwrap(), None);
}

#[test]
fn the_minimal_violation_keeps_the_revoke_and_the_stale_probe() {
    let mut h = vec![
        update(0, 0, 5, OFF),
        site(1, 6, 7, false),
        update(0, 8, 10, ON),
    ];
    for t in 0..20u64 {
        h.push(site(1 + (t as usize % 3), 11 + 3 * t, 13 + 3 * t, true));
    }
    h.push(update(0, 80, 90, OFF));
    h.push(site(2, 91, 92, false));
    h.push(site(3, 93, 94, true)); // stale
    h.push(site(1, 95, 96, false));
    h.push(update(0, 100, 101, ON));
    h.push(site(1, 102, 103, true));
    assert_eq!(check(&SPEC, &h).unwrap(), None);
    let keep = minimal_violation(&SPEC, &h).unwrap().unwrap();
    let picked: Vec<_> = keep.iter().map(|&i| h[i].clone()).collect();
    assert_eq!(picked, vec![update(0, 80, 90, OFF), site(3, 93, 94, true)]);
    assert_eq!(check(&SPEC, &picked).unwrap(), None);
    assert_eq!(minimal_violation(&SPEC, &h[..5]).unwrap(), None);
}

#[test]
fn shrinking_never_drops_the_write_a_refusal_depends_on() {
    // A refusal after a revoke is legal; without the revoke it would not be. The stale
    // grant later is the violation, and the shrunk history must not blame the refusal.
    let h = vec![
        update(0, 0, 5, OFF),
        site(1, 6, 7, false),
        site(2, 8, 9, true),
    ];
    let keep = minimal_violation(&SPEC, &h).unwrap().unwrap();
    assert!(keep.contains(&0), "{keep:?}");
    assert!(keep.contains(&2), "{keep:?}");
    // Two writes overlap: neither is a cut point, both stay.
    let h = vec![
        update(0, 0, 10, OFF),
        update(1, 0, 10, ON),
        site(2, 20, 30, false),
        site(3, 40, 50, true),
    ];
    let keep = minimal_violation(&SPEC, &h).unwrap().unwrap();
    assert_eq!(keep, vec![0, 1, 2, 3]);
}

#[test]
fn the_documentation_is_silent_on_preview_without_cda() {
    let preview_only = Perms {
        cda: false,
        cda_preview: true,
        ..ON
    };
    assert_eq!(ProbeKind::Cda.predicted(preview_only), None);
    assert_eq!(ProbeKind::CdaDrafts.predicted(preview_only), None);
    assert_eq!(ProbeKind::CdaDrafts.predicted(ON), Some(true));
    let no_cma = Perms { cma: false, ..ON };
    assert_eq!(
        ProbeKind::CmaWrite(Permission::ManageUsers).predicted(no_cma),
        Some(false)
    );
    assert_eq!(ProbeKind::Cda.predicted(no_cma), Some(true));
    let plain = Perms {
        manage_users: false,
        ..ON
    };
    assert_eq!(
        ProbeKind::CmaWrite(Permission::ManageUsers).predicted(plain),
        Some(false)
    );
    assert_eq!(
        ProbeKind::CmaWrite(Permission::ManageAccessTokens).predicted(plain),
        Some(true)
    );
    // An unknown prediction accepts either answer.
    let spec = PermissionSpec {
        initial: preview_only,
    };
    let h = vec![
        op(
            0,
            0,
            1,
            PermCall::Probe(ProbeKind::Cda),
            PermAnswer::Probe(true),
        ),
        op(
            0,
            2,
            3,
            PermCall::Probe(ProbeKind::Cda),
            PermAnswer::Probe(false),
        ),
    ];
    assert!(check(&spec, &h).unwrap().is_some());
}

#[test]
fn limits_are_errors_not_verdicts() {
    let long: Vec<_> = (0..=MAX_OPS as u64)
        .map(|t| site(0, 2 * t, 2 * t + 1, true))
        .collect();
    assert_eq!(check(&SPEC, &long), Err(LinError::TooLong(MAX_OPS + 1)));
    assert!(check(&SPEC, &long[..MAX_OPS]).unwrap().is_some());
    // A change that more reads overlap than a cluster may hold.
    let dense: Vec<_> = std::iter::once(update(0, 0, 1000, Perms::ALL))
        .chain((0..MAX_CLUSTER as u64).map(|t| site(1, t, t + 1, true)))
        .collect();
    assert_eq!(
        check(&SPEC, &dense),
        Err(LinError::TooDense(MAX_CLUSTER + 1))
    );
    let backwards = vec![site(0, 5, 4, true)];
    assert_eq!(check(&SPEC, &backwards), Err(LinError::BadInterval(0)));
    // Every operation overlapping every other, and no order legal: the search must give up
    // within its budget rather than run on.
    let h: Vec<_> = (0..40)
        .map(|i| op(i, 0, 100, Some(i as i64 + 1), 0))
        .chain([op(99, 0, 100, None, 1000)])
        .collect();
    assert_eq!(
        check_within(&Register, &h, 1000),
        Err(LinError::TooCostly(1000))
    );
}

#[test]
fn partition_splits_by_key() {
    let h = vec![
        op(0, 0, 1, Some(1), 0),
        op(1, 0, 1, None, 0),
        op(2, 0, 1, Some(2), 0),
    ];
    let parts = partition(&h, |o| o.call.is_some());
    assert_eq!(parts[&true].len(), 2);
    assert_eq!(parts[&false].len(), 1);
}

/// A counter: reads answer the value, writes set it, increments add one and answer the new
/// value (a call whose effect depends on the state, unlike a write).
struct Counter;

#[derive(Debug, Clone, Copy)]
enum CounterCall {
    Read,
    Write(i64),
    Incr,
}

impl SequentialSpec for Counter {
    type State = i64;
    type Call = CounterCall;
    type Answer = i64;
    fn init(&self) -> i64 {
        0
    }
    fn step(&self, state: &i64, call: &CounterCall, answer: &i64) -> Option<i64> {
        match call {
            CounterCall::Read => (answer == state).then_some(*state),
            CounterCall::Write(v) => Some(*v),
            CounterCall::Incr => (*answer == state + 1).then_some(state + 1),
        }
    }
    fn is_read(&self, call: &CounterCall) -> bool {
        matches!(call, CounterCall::Read)
    }
    fn overwrites(&self, call: &CounterCall) -> bool {
        matches!(call, CounterCall::Write(_))
    }
}

/// Every order of `h`, tried one by one: the definition, for small histories.
fn brute_force<S: SequentialSpec>(spec: &S, h: &[Operation<S::Call, S::Answer>]) -> bool {
    fn go<S: SequentialSpec>(
        spec: &S,
        h: &[Operation<S::Call, S::Answer>],
        order: &mut Vec<usize>,
    ) -> bool {
        if order.len() == h.len() {
            return is_legal_order(spec, h, order);
        }
        for i in 0..h.len() {
            if !order.contains(&i) {
                order.push(i);
                if go(spec, h, order) {
                    return true;
                }
                order.pop();
            }
        }
        false
    }
    go(spec, h, &mut Vec::new())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// The search (with its shortcut for reads) agrees with trying every order, on small
    /// histories of overlapping reads, writes and state-dependent increments.
    #[test]
    fn the_search_agrees_with_trying_every_order(
        raw in proptest::collection::vec((0u64..12, 0u64..6, 1u8..4, 0i64..3), 1..7)
    ) {
        let h = counter_history(&raw);
        let found = check(&Counter, &h).unwrap();
        proptest::prop_assert_eq!(found.is_some(), brute_force(&Counter, &h), "{:?}", h);
        if let Some(order) = found {
            proptest::prop_assert!(is_legal_order(&Counter, &h, &order.order));
        }
    }
}

/// The whole history searched at once, without cutting it into clusters and gaps.
fn whole_search<S: SequentialSpec>(spec: &S, h: &[Operation<S::Call, S::Answer>]) -> bool {
    let all: Vec<usize> = (0..h.len()).collect();
    !search_cluster(spec, h, &all, &spec.init(), Goal::AllEnds, MAX_STEPS)
        .unwrap()
        .ends
        .is_empty()
}

/// A counter's history from `(start, length, kind, value)`: kinds 0 and 1 read, 2 writes
/// `value`, 3 increments; the answer is `value`.
fn counter_history(raw: &[(u64, u64, u8, i64)]) -> Vec<Operation<CounterCall, i64>> {
    raw.iter()
        .enumerate()
        .map(|(client, &(start, len, kind, value))| {
            let call = match kind {
                0 | 1 => CounterCall::Read,
                2 => CounterCall::Write(value),
                _ => CounterCall::Incr,
            };
            op(client, start, start + len, call, value)
        })
        .collect()
}

#[test]
fn a_history_is_cut_at_its_changes() {
    // Reads before, a cluster of two overlapping writes and the reads that overlap them, a gap,
    // a single write, a gap: the second write's reads are not the first's.
    let h = vec![
        op(0, 0, 1, None, 0),
        op(1, 2, 5, Some(1), 0),
        op(2, 4, 7, Some(2), 0),
        op(3, 6, 8, None, 2),
        op(0, 9, 10, None, 2),
        op(1, 11, 12, Some(3), 0),
        op(0, 13, 14, None, 3),
    ];
    let shape: Vec<(bool, Vec<usize>)> = pieces(&Register, &h)
        .into_iter()
        .map(|p| match p {
            Piece::Gap(ops) => (false, ops),
            Piece::Cluster(ops) => (true, ops),
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (false, vec![0]),
            (true, vec![1, 2, 3]),
            (false, vec![4]),
            (true, vec![5]),
            (false, vec![6]),
        ]
    );
    let order = check(&Register, &h).unwrap().unwrap().order;
    assert!(is_legal_order(&Register, &h, &order));
    // The read in the last gap sees the single write, not an older value.
    let mut stale = h.clone();
    stale[6].answer = 2;
    assert_eq!(check(&Register, &stale), Ok(None));
}

#[test]
fn a_read_that_joins_two_writes_makes_them_one_cluster() {
    // The long read overlaps both writes: it may see 1 only if it is ordered between them.
    let h = vec![
        op(0, 0, 2, Some(1), 0),
        op(1, 1, 10, None, 1),
        op(0, 5, 6, Some(2), 0),
        op(2, 7, 8, None, 2),
    ];
    let pieces = pieces(&Register, &h);
    assert_eq!(pieces.len(), 2);
    assert!(matches!(&pieces[0], Piece::Cluster(ops) if ops == &[0, 1, 2]));
    assert!(check(&Register, &h).unwrap().is_some());
    // Without the read, the writes are two clusters.
    let apart = [h[0].clone(), h[2].clone(), h[3].clone()];
    assert_eq!(super::pieces(&Register, &apart).len(), 3);
}

#[test]
fn thousands_of_probes_are_checked_and_a_stale_one_is_found() {
    // Three clients probing back to back while a revoke and a grant alternate, 40 changes.
    let mut h = Vec::new();
    let mut perms = Perms::ALL;
    for change in 0..40u64 {
        let at = change * 1000;
        perms.cma = change % 2 == 1;
        h.push(update(0, at, at + 7, perms));
        for client in 1..=3u64 {
            for k in 0..100u64 {
                // The first probes overlap the change: they see it, as they may.
                let start = at + client + 10 * k;
                h.push(site(client as usize, start, start + 3, perms.cma));
            }
        }
    }
    assert!(h.len() > 12_000);
    let order = check(&SPEC, &h).unwrap().expect("a legal history");
    assert!(is_legal_order(&SPEC, &h, &order.order));
    // One probe long after a revoke (the 21st change) sees the grant.
    let late = h
        .iter()
        .position(|o| o.start == Duration::from_millis(20_501))
        .unwrap();
    h[late].answer = PermAnswer::Probe(true);
    assert_eq!(check(&SPEC, &h), Ok(None));
    let keep = minimal_violation(&SPEC, &h).unwrap().unwrap();
    assert!(keep.contains(&late), "{keep:?}");
    assert!(keep.len() <= 3, "{keep:?}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    /// Cut into clusters and gaps, a register's history gets the definition's verdict.
    #[test]
    fn cutting_agrees_with_trying_every_order(
        raw in proptest::collection::vec((0u64..30, 0u64..8, 0u8..3, 0i64..3), 1..7)
    ) {
        let h: Vec<_> = raw
            .iter()
            .enumerate()
            .map(|(client, &(start, len, kind, value))| {
                let call = (kind == 0).then_some(value);
                op(client, start, start + len, call, value)
            })
            .collect();
        let found = check(&Register, &h).unwrap();
        proptest::prop_assert_eq!(found.is_some(), brute_force(&Register, &h), "{:?}", h);
        if let Some(order) = found {
            proptest::prop_assert!(is_legal_order(&Register, &h, &order.order));
        }
    }

    /// On longer histories, too long to try every order, cutting agrees with searching the
    /// whole history at once, for writes and for increments whose effect depends on the state.
    #[test]
    fn cutting_agrees_with_searching_the_whole_history(
        raw in proptest::collection::vec((0u64..200, 0u64..12, 0u8..4, 0i64..3), 1..60)
    ) {
        let h = counter_history(&raw);
        let found = check(&Counter, &h).unwrap();
        proptest::prop_assert_eq!(found.is_some(), whole_search(&Counter, &h), "{:?}", h);
        if let Some(order) = found {
            proptest::prop_assert!(is_legal_order(&Counter, &h, &order.order));
        }
    }
}
