//! A linearizability checker (Wing & Gong's search, with the memoisation of Lowe and of
//! Porcupine), generic over a sequential specification, and the specification of permission
//! probes that `update.effect.*` checks histories against.
//!
//! A history is a set of operations, each with the interval in which it was in flight (from
//! just before its request was sent to just after its answer arrived, on the suite's clock).
//! It is linearizable when there is a total order of its operations that respects real time
//! (an operation that ended before another began comes first) and in which every answer is the
//! one the sequential specification gives. Operations whose intervals overlap may take either
//! order: that is exactly the freedom the documentation leaves ("a request that was permitted
//! under the previous configuration may be rejected on the very next call once the new
//! permissions have been written" binds only the calls that begin after the write's answer).
//!
//! The search ([`check`]) repeatedly picks a *minimal* operation (one that no remaining
//! operation precedes in real time), applies it to the specification's state if the answer is
//! legal there, and backtracks otherwise; a cache of (set of operations already ordered,
//! state) pairs it has explored cuts every repeated sub-search, so its cost grows with the
//! number of distinct such pairs, not with the number of orders.
//!
//! Splitting (exact, for any specification whose reads change nothing): the writes (every call
//! that is not a read) are grouped into *clusters*, the writes whose intervals overlap, joined by
//! any read that overlaps two of them; a cluster holds its writes and every read that overlaps
//! its span. Every other read falls in a *gap* between two clusters, where nothing can have
//! changed the state. Each cluster is searched on its own from each state the ones before it
//! can leave, and each gap's reads must be legal in one of those states. A history that has a
//! legal order has one that takes the pieces one after the other (the proof is in
//! [`check_within`]), so the verdict is the whole search's, at a cost linear in the number of
//! reads: histories of thousands of probes are checked in milliseconds.
//!
//! Cost, bounded: a history holds at most [`MAX_OPS`] operations, a cluster at most
//! [`MAX_CLUSTER`], and a search explores at most [`MAX_STEPS`] (set, state) pairs before it
//! gives up as [`LinError::TooCostly`] (an inconclusive check, never a verdict). Linearizability
//! is local (Herlihy & Wing): a history over several independent objects is linearizable iff
//! each object's sub-history is, so the suite checks one token's history at a time
//! ([`partition`] splits a mixed one). Measured by `cargo run --example lincheck_bench` (a
//! debug build, as the tests run it; a release build is faster) on the project's 2-core
//! machines: see the README's Performance table. The suite's own histories hold a few thousand
//! probes under the full budget and a few dozen under the staging one.
//!
//! The permission specification ([`PermissionSpec`]) states the rule the documentation gives
//! (effective capability = role ∩ surface flags) once more, small and on its own: the suite's
//! model of the API states it too; the duplication is deliberate, so that this checker can be
//! tested without the model.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

/// The most operations one history may hold.
pub const MAX_OPS: usize = 1 << 16;

/// The most operations one cluster (the writes that overlap, and the reads that overlap them)
/// may hold: the search's sets of operations are bit sets of this size.
pub const MAX_CLUSTER: usize = 256;

/// The most (ordered set, state) pairs one search explores before it gives up.
pub const MAX_STEPS: u64 = 2_000_000;

/// A sequential specification: what each call answers, one after the other.
pub trait SequentialSpec {
    /// The object's state.
    type State: Clone + Eq + Hash + Debug;
    /// A call, with its arguments.
    type Call: Clone + Debug;
    /// What the call answered.
    type Answer: Clone + Debug;

    /// The state before the history's first operation.
    fn init(&self) -> Self::State;

    /// The state after `call` in `state`, if `answer` is a legal answer to it there.
    fn step(
        &self,
        state: &Self::State,
        call: &Self::Call,
        answer: &Self::Answer,
    ) -> Option<Self::State>;

    /// Whether `call` never changes the state (it may still be refused as illegal): removing
    /// such calls from a linearizable history leaves it linearizable, which shrinking uses.
    fn is_read(&self, call: &Self::Call) -> bool;

    /// Whether the state after `call` does not depend on the state before it (a write of the
    /// whole state), which lets shrinking cut the history before it.
    fn overwrites(&self, call: &Self::Call) -> bool;
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<C, A> {
    /// Which client made it (for the timeline only).
    pub client: usize,
    /// When its request was about to be sent, since the run's epoch.
    pub start: Duration,
    /// When its answer had arrived.
    pub end: Duration,
    /// The call.
    pub call: C,
    /// Its answer.
    pub answer: A,
}

impl<C, A> Operation<C, A> {
    /// Whether `self` ended before `other` began: then every order must put `self` first.
    /// Equal instants are taken as overlapping (the clock cannot tell them apart).
    pub fn precedes(&self, other: &Operation<C, A>) -> bool {
        self.end < other.start
    }
}

/// A history that has a legal order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linearization {
    /// A legal order, as indices into the history.
    pub order: Vec<usize>,
}

/// Why no verdict could be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinError {
    /// More operations than [`MAX_OPS`].
    #[error("a history of {0} operations is longer than the checker's cap of {MAX_OPS}")]
    TooLong(usize),
    /// A cluster (writes that overlap, and the reads that overlap them) of more operations
    /// than [`MAX_CLUSTER`].
    #[error(
        "{0} operations overlap one another around a change, more than the checker's cap of \
         {MAX_CLUSTER}"
    )]
    TooDense(usize),
    /// An operation that ended before it began.
    #[error("operation {0} ends before it starts")]
    BadInterval(usize),
    /// The search explored its step budget without a verdict.
    #[error("the search gave up after exploring {0} states")]
    TooCostly(u64),
}

/// A set of operation indices below [`MAX_CLUSTER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct Bits([u64; MAX_CLUSTER / 64]);

impl Bits {
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn flip(&mut self, i: usize) {
        self.0[i / 64] ^= 1 << (i % 64);
    }
}

/// Whether `history` is linearizable against `spec`: `Ok(Some(order))` if it is, `Ok(None)`
/// if no order is legal.
pub fn check<S: SequentialSpec>(
    spec: &S,
    history: &[Operation<S::Call, S::Answer>],
) -> Result<Option<Linearization>, LinError> {
    check_within(spec, history, MAX_STEPS)
}

/// [`check`] with a step budget of its own (for each cluster's search).
///
/// Why taking the pieces one after the other loses no verdict. Clusters are built so that no
/// read overlaps two of them and every write of one ends before any write of the next begins.
/// Then an operation of a later piece never ends before one of an earlier piece begins (each
/// starts after the earlier cluster's last write ends, or ends after the later one's first
/// write begins), so the piecewise order respects real time. Conversely, in any legal order
/// every write keeps its piece's place (it is ordered in real time against every operation
/// of another piece but reads of the same stretch), so the only pairs out of piecewise order
/// are two reads with no write between them: swapping them changes no state and no answer.
pub fn check_within<S: SequentialSpec>(
    spec: &S,
    history: &[Operation<S::Call, S::Answer>],
    max_steps: u64,
) -> Result<Option<Linearization>, LinError> {
    validate(history)?;
    let pieces = pieces(spec, history);
    let reach = match forward(spec, history, &pieces, max_steps)? {
        Forward::Reach(reach) => reach,
        Forward::FailsAt(_) => return Ok(None),
    };
    // Backward: one chain of states, then each cluster's order along it.
    let mut chain = Vec::with_capacity(pieces.len());
    let mut want: Option<S::State> = None;
    for step in reach.iter().rev() {
        let (end, from) = match &want {
            None => step.first(),
            Some(w) => step.iter().find(|(end, _)| end == w),
        }
        .cloned()
        .ok_or(LinError::TooCostly(max_steps))?;
        chain.push((from.clone(), end));
        want = Some(from);
    }
    chain.reverse();
    let mut order = Vec::with_capacity(history.len());
    for (piece, (from, end)) in pieces.iter().zip(chain) {
        match piece {
            Piece::Gap(reads) => order.extend(reads),
            Piece::Cluster(ops) => {
                let found = search_cluster(spec, history, ops, &from, Goal::End(end), max_steps)?;
                order.extend(found.order.iter().map(|&k| ops[k]));
            }
        }
    }
    Ok(Some(Linearization { order }))
}

/// A history the checker takes: at most [`MAX_OPS`] operations, none ending before it begins.
fn validate<C, A>(history: &[Operation<C, A>]) -> Result<(), LinError> {
    if history.len() > MAX_OPS {
        return Err(LinError::TooLong(history.len()));
    }
    match history.iter().position(|op| op.end < op.start) {
        Some(bad) => Err(LinError::BadInterval(bad)),
        None => Ok(()),
    }
}

/// What the forward pass over a history's pieces found.
enum Forward<State> {
    /// For each piece, the states it can end in, each with a state it can start from.
    Reach(Vec<Vec<(State, State)>>),
    /// The first piece no state the pieces before it leave can go through.
    FailsAt(usize),
}

fn forward<S: SequentialSpec>(
    spec: &S,
    history: &[Operation<S::Call, S::Answer>],
    pieces: &[Piece],
    max_steps: u64,
) -> Result<Forward<S::State>, LinError> {
    let mut reach: Vec<Vec<(S::State, S::State)>> = Vec::with_capacity(pieces.len());
    let mut states = vec![spec.init()];
    for (k, piece) in pieces.iter().enumerate() {
        let mut next: Vec<(S::State, S::State)> = Vec::new();
        for from in &states {
            let ends: Vec<S::State> = match piece {
                Piece::Gap(reads) => reads
                    .iter()
                    .all(|&i| {
                        spec.step(from, &history[i].call, &history[i].answer)
                            .is_some()
                    })
                    .then(|| from.clone())
                    .into_iter()
                    .collect(),
                Piece::Cluster(ops) => {
                    search_cluster(spec, history, ops, from, Goal::AllEnds, max_steps)?.ends
                }
            };
            for end in ends {
                if !next.iter().any(|(e, _)| *e == end) {
                    next.push((end, from.clone()));
                }
            }
        }
        if next.is_empty() {
            return Ok(Forward::FailsAt(k));
        }
        states = next.iter().map(|(end, _)| end.clone()).collect();
        reach.push(next);
    }
    Ok(Forward::Reach(reach))
}

/// A stretch of a history: reads in a gap between clusters (in order of start), or a cluster.
enum Piece {
    Gap(Vec<usize>),
    Cluster(Vec<usize>),
}

/// The history cut into clusters and gaps, in time order (see [`check_within`]).
fn pieces<S: SequentialSpec>(spec: &S, history: &[Operation<S::Call, S::Answer>]) -> Vec<Piece> {
    let mut by_start: Vec<usize> = (0..history.len()).collect();
    by_start.sort_by_key(|&i| (history[i].start, history[i].end));
    let writes: Vec<usize> = by_start
        .iter()
        .copied()
        .filter(|&i| !spec.is_read(&history[i].call))
        .collect();
    // Spans of clusters: a write joins the open cluster if it begins no later than the
    // cluster's writes end, or than a read overlapping them ends.
    let mut spans: Vec<(Duration, Duration)> = Vec::new();
    let mut reach = Duration::ZERO;
    let mut r = 0;
    for &w in &writes {
        let op = &history[w];
        match spans.last_mut() {
            Some(span) if op.start <= reach.max(span.1) => span.1 = span.1.max(op.end),
            _ => spans.push((op.start, op.end)),
        }
        // The reads that begin no later than this cluster's writes end may overlap it.
        let span = spans[spans.len() - 1];
        while r < by_start.len() && history[by_start[r]].start <= span.1 {
            let read = &history[by_start[r]];
            if spec.is_read(&read.call) && read.end >= span.0 {
                reach = reach.max(read.end);
            }
            r += 1;
        }
        reach = reach.max(span.1);
    }
    // Every operation goes to the cluster whose span it overlaps, or to the gap it lies in.
    let mut pieces: Vec<Piece> = Vec::with_capacity(2 * spans.len() + 1);
    let mut gaps: Vec<Vec<usize>> = vec![Vec::new(); spans.len() + 1];
    let mut clusters: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    for &i in &by_start {
        let op = &history[i];
        // The first span that does not end before this operation begins.
        let k = spans.partition_point(|span| span.1 < op.start);
        if k < spans.len() && spans[k].0 <= op.end {
            clusters[k].push(i);
        } else {
            gaps[k].push(i);
        }
    }
    for (k, gap) in gaps.into_iter().enumerate() {
        if !gap.is_empty() {
            pieces.push(Piece::Gap(gap));
        }
        if let Some(cluster) = clusters.get_mut(k) {
            pieces.push(Piece::Cluster(std::mem::take(cluster)));
        }
    }
    pieces
}

/// What a cluster's search looks for.
enum Goal<State> {
    /// Every state a legal order of the cluster can end in.
    AllEnds,
    /// A legal order that ends in this state.
    End(State),
}

/// What a cluster's search found.
struct Found<State> {
    ends: Vec<State>,
    order: Vec<usize>,
}

/// Search the operations `ops` of `history` (at most [`MAX_CLUSTER`]) from `from`.
fn search_cluster<S: SequentialSpec>(
    spec: &S,
    history: &[Operation<S::Call, S::Answer>],
    ops: &[usize],
    from: &S::State,
    goal: Goal<S::State>,
    max_steps: u64,
) -> Result<Found<S::State>, LinError> {
    if ops.len() > MAX_CLUSTER {
        return Err(LinError::TooDense(ops.len()));
    }
    let sub: Vec<Operation<S::Call, S::Answer>> = ops.iter().map(|&i| history[i].clone()).collect();
    // Trying candidates in order of start first finds the obvious order at once when there is
    // one; the search only does work where the history is truly concurrent.
    let mut by_start: Vec<usize> = (0..sub.len()).collect();
    by_start.sort_by_key(|&i| (sub[i].start, sub[i].end));
    let mut search = Search {
        spec,
        history: &sub,
        by_start,
        seen: HashSet::new(),
        steps: 0,
        max_steps,
        order: Vec::with_capacity(sub.len()),
        goal,
        ends: Vec::new(),
    };
    let met = search.run(Bits::default(), from.clone())?;
    if let Goal::End(_) = search.goal
        && !met
    {
        // Cannot happen: the end was found by the forward pass, whose search this one
        // retraces. Never a verdict, should it happen all the same.
        return Err(LinError::TooCostly(max_steps));
    }
    Ok(Found {
        ends: search.ends,
        order: search.order,
    })
}

struct Search<'h, S: SequentialSpec> {
    spec: &'h S,
    history: &'h [Operation<S::Call, S::Answer>],
    by_start: Vec<usize>,
    seen: HashSet<(Bits, S::State)>,
    steps: u64,
    max_steps: u64,
    order: Vec<usize>,
    goal: Goal<S::State>,
    ends: Vec<S::State>,
}

impl<S: SequentialSpec> Search<'_, S> {
    /// Depth-first; the depth is at most [`MAX_CLUSTER`], so recursion is bounded. `Ok(true)`
    /// when the goal is met: an order that ends in the wanted state (the order is then in
    /// `self.order`); when every end is wanted, the search runs through and records them.
    fn run(&mut self, done: Bits, state: S::State) -> Result<bool, LinError> {
        if self.order.len() == self.history.len() {
            return Ok(match &self.goal {
                Goal::End(want) => *want == state,
                Goal::AllEnds => {
                    if !self.ends.contains(&state) {
                        self.ends.push(state);
                    }
                    false
                }
            });
        }
        if !self.seen.insert((done, state.clone())) {
            return Ok(false);
        }
        self.steps += 1;
        if self.steps > self.max_steps {
            return Err(LinError::TooCostly(self.max_steps));
        }
        // Minimal operations: those that begin no later than every remaining one ends.
        let first_end = self
            .by_start
            .iter()
            .filter(|&&i| !done.has(i))
            .map(|&i| self.history[i].end)
            .min();
        let Some(first_end) = first_end else {
            return Ok(true);
        };
        // A minimal read (a call that never changes the state, [`SequentialSpec::is_read`])
        // whose answer is legal here can go first in some legal order if any order exists:
        // no remaining operation has to precede it, and moving it ahead of those a legal
        // order puts before it changes no state that they or it see (it is legal where it
        // was, and changes nothing there either). So it is taken without trying the others
        // first, which spares the search every order of concurrent reads. (A write that
        // happens to leave this state as it is does not qualify: later, it might not.)
        let mut unchanged = None;
        for &i in &self.by_start {
            if done.has(i) {
                continue;
            }
            let op = &self.history[i];
            if op.start > first_end {
                break;
            }
            if self.spec.is_read(&op.call)
                && self.spec.step(&state, &op.call, &op.answer).as_ref() == Some(&state)
            {
                unchanged = Some(i);
                break;
            }
        }
        if let Some(i) = unchanged {
            return self.take(done, i, state);
        }
        for k in 0..self.by_start.len() {
            let i = self.by_start[k];
            if done.has(i) {
                continue;
            }
            let op = &self.history[i];
            if op.start > first_end {
                break;
            }
            if let Some(next) = self.spec.step(&state, &op.call, &op.answer)
                && self.take(done, i, next)?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Order operation `i` next, leading to `next`, and search on from there; on failure the
    /// order is as it was.
    fn take(&mut self, done: Bits, i: usize, next: S::State) -> Result<bool, LinError> {
        let mut with = done;
        with.flip(i);
        self.order.push(i);
        if self.run(with, next)? {
            return Ok(true);
        }
        self.order.pop();
        Ok(false)
    }
}

/// Split a history by `key` (a token, an object): linearizability is local, so each part can
/// be checked on its own, and each is far cheaper than the whole.
pub fn partition<C: Clone, A: Clone, K: Ord>(
    history: &[Operation<C, A>],
    key: impl Fn(&Operation<C, A>) -> K,
) -> BTreeMap<K, Vec<Operation<C, A>>> {
    let mut parts: BTreeMap<K, Vec<Operation<C, A>>> = BTreeMap::new();
    for op in history {
        parts.entry(key(op)).or_default().push(op.clone());
    }
    parts
}

/// A small sub-history of a non-linearizable `history` that is itself not linearizable, as
/// sorted indices into `history`; `None` if `history` is linearizable after all.
///
/// Only removals that cannot turn a linearizable history into a non-linearizable one are
/// made, so the result is a real witness of the violation, not an artefact of shrinking:
/// removing reads; removing an operation that begins after every other one has ended (every
/// order puts it last); and cutting everything before an overwriting operation `W` that
/// overlaps no other state-changing one (what follows it in real time sees only `W` and
/// later writes, whatever came before), keeping `W` and the operations that begin after it.
pub fn minimal_violation<S: SequentialSpec>(
    spec: &S,
    history: &[Operation<S::Call, S::Answer>],
) -> Result<Option<Vec<usize>>, LinError> {
    let violates = |keep: &[usize]| -> Result<bool, LinError> {
        let sub: Vec<_> = keep.iter().map(|&i| history[i].clone()).collect();
        Ok(check(spec, &sub)?.is_none())
    };
    validate(history)?;
    // The pieces up to the first that cannot be gone through already violate (what follows
    // them does not change how they are cut, nor what they allow): the rest is dropped first.
    let pieces = pieces(spec, history);
    let Forward::FailsAt(failing) = forward(spec, history, &pieces, MAX_STEPS)? else {
        return Ok(None);
    };
    let mut keep: Vec<usize> = pieces[..=failing]
        .iter()
        .flat_map(|piece| match piece {
            Piece::Gap(ops) | Piece::Cluster(ops) => ops.iter().copied(),
        })
        .collect();
    keep.sort_unstable();
    if !violates(&keep)? {
        // Cannot happen (see above); the whole history is the witness then.
        keep = (0..history.len()).collect();
    }
    // Each pass removes at least one operation or ends the loop.
    for _ in 0..=history.len() {
        let before = keep.len();
        keep = cut_before_an_isolated_write(spec, history, keep, &violates)?;
        keep = drop_reads(spec, history, keep, &violates)?;
        keep = drop_trailing(history, keep, &violates)?;
        if keep.len() == before {
            break;
        }
    }
    Ok(Some(keep))
}

type Violates<'a> = dyn Fn(&[usize]) -> Result<bool, LinError> + 'a;

fn cut_before_an_isolated_write<S: SequentialSpec>(
    spec: &S,
    history: &[Operation<S::Call, S::Answer>],
    keep: Vec<usize>,
    violates: &Violates<'_>,
) -> Result<Vec<usize>, LinError> {
    let writes: Vec<usize> = keep
        .iter()
        .copied()
        .filter(|&i| !spec.is_read(&history[i].call))
        .collect();
    // The latest cut that still violates is the smallest; try them from the latest.
    let mut anchors: Vec<usize> = writes
        .iter()
        .copied()
        .filter(|&w| spec.overwrites(&history[w].call))
        .filter(|&w| {
            writes.iter().all(|&o| {
                o == w || history[o].precedes(&history[w]) || history[w].precedes(&history[o])
            })
        })
        .collect();
    anchors.sort_by_key(|&w| std::cmp::Reverse(history[w].start));
    for w in anchors {
        let cut: Vec<usize> = keep
            .iter()
            .copied()
            .filter(|&i| i == w || history[w].precedes(&history[i]))
            .collect();
        if cut.len() < keep.len() && violates(&cut)? {
            return Ok(cut);
        }
    }
    Ok(keep)
}

fn drop_reads<S: SequentialSpec>(
    spec: &S,
    history: &[Operation<S::Call, S::Answer>],
    mut keep: Vec<usize>,
    violates: &Violates<'_>,
) -> Result<Vec<usize>, LinError> {
    // Halves, then quarters, … of the reads at a time (delta debugging), down to one.
    let mut chunk = keep.len().div_ceil(2).max(1);
    loop {
        let reads: Vec<usize> = keep
            .iter()
            .copied()
            .filter(|&i| spec.is_read(&history[i].call))
            .collect();
        let mut removed_any = false;
        for group in reads.chunks(chunk) {
            let trial: Vec<usize> = keep
                .iter()
                .copied()
                // `keep`, and so `group`, is in ascending order.
                .filter(|i| group.binary_search(i).is_err())
                .collect();
            if violates(&trial)? {
                keep = trial;
                removed_any = true;
            }
        }
        if chunk == 1 && !removed_any {
            return Ok(keep);
        }
        if !removed_any {
            chunk = chunk.div_ceil(2);
        }
    }
}

fn drop_trailing<C: Clone, A: Clone>(
    history: &[Operation<C, A>],
    mut keep: Vec<usize>,
    violates: &Violates<'_>,
) -> Result<Vec<usize>, LinError> {
    for _ in 0..history.len() {
        let last = keep.iter().copied().find(|&i| {
            keep.iter()
                .all(|&o| o == i || history[o].precedes(&history[i]))
        });
        let Some(last) = last else {
            break;
        };
        let trial: Vec<usize> = keep.iter().copied().filter(|&i| i != last).collect();
        if trial.is_empty() || !violates(&trial)? {
            break;
        }
        keep = trial;
    }
    Ok(keep)
}

/// What a token may do: its three surface flags and the role permissions the probes need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perms {
    /// `can_access_cma`.
    pub cma: bool,
    /// `can_access_cda`.
    pub cda: bool,
    /// `can_access_cda_preview`.
    pub cda_preview: bool,
    /// The role's `can_manage_users`.
    pub manage_users: bool,
    /// The role's `can_manage_access_tokens`.
    pub manage_access_tokens: bool,
}

impl Perms {
    /// Every surface flag and both role permissions granted.
    pub const ALL: Perms = Perms {
        cma: true,
        cda: true,
        cda_preview: true,
        manage_users: true,
        manage_access_tokens: true,
    };
}

impl std::fmt::Display for Perms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "can_access_cma={} can_access_cda={} can_access_cda_preview={} role: can_manage_users={} can_manage_access_tokens={}",
            self.cma, self.cda, self.cda_preview, self.manage_users, self.manage_access_tokens
        )
    }
}

/// A role permission a CMA write needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `can_manage_users` (role writes).
    ManageUsers,
    /// `can_manage_access_tokens` (token writes).
    ManageAccessTokens,
}

/// A call that tells whether the token is allowed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// A CMA read any CMA token may make (`GET /site`).
    CmaRead,
    /// A CMA write the role gates.
    CmaWrite(Permission),
    /// A CDA query for published content.
    Cda,
    /// A CDA query with `X-Include-Drafts: true`.
    CdaDrafts,
}

impl ProbeKind {
    /// What the documentation says the probe gets under `perms`: `None` where it is silent.
    /// The rule is role ∩ flags: a CMA call needs `can_access_cma` (and the role's permission
    /// for a gated write); published CDA content needs `can_access_cda`, drafts need
    /// `can_access_cda_preview`. Whether `can_access_cda_preview` alone opens published
    /// content, or drafts need `can_access_cda` besides, the documentation does not say.
    pub fn predicted(self, perms: Perms) -> Option<bool> {
        match self {
            ProbeKind::CmaRead => Some(perms.cma),
            ProbeKind::CmaWrite(Permission::ManageUsers) => Some(perms.cma && perms.manage_users),
            ProbeKind::CmaWrite(Permission::ManageAccessTokens) => {
                Some(perms.cma && perms.manage_access_tokens)
            }
            ProbeKind::Cda if perms.cda => Some(true),
            ProbeKind::Cda if !perms.cda_preview => Some(false),
            ProbeKind::CdaDrafts if !perms.cda_preview => Some(false),
            ProbeKind::CdaDrafts if perms.cda => Some(true),
            ProbeKind::Cda | ProbeKind::CdaDrafts => None,
        }
    }
}

/// A call of a permission history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermCall {
    /// An update that sets the token's flags and role (the whole of [`Perms`]).
    Update(Perms),
    /// A probe.
    Probe(ProbeKind),
}

/// The answer to a [`PermCall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermAnswer {
    /// The update succeeded.
    Updated,
    /// The probe was granted (`true`) or refused.
    Probe(bool),
}

/// The sequential specification of one token's permissions.
#[derive(Debug, Clone, Copy)]
pub struct PermissionSpec {
    /// The token's permissions when the history begins.
    pub initial: Perms,
}

impl SequentialSpec for PermissionSpec {
    type State = Perms;
    type Call = PermCall;
    type Answer = PermAnswer;

    fn init(&self) -> Perms {
        self.initial
    }

    fn step(&self, state: &Perms, call: &PermCall, answer: &PermAnswer) -> Option<Perms> {
        match (call, answer) {
            (PermCall::Update(to), PermAnswer::Updated) => Some(*to),
            (PermCall::Probe(kind), PermAnswer::Probe(granted)) => match kind.predicted(*state) {
                Some(expected) if expected != *granted => None,
                _ => Some(*state),
            },
            _ => None,
        }
    }

    fn is_read(&self, call: &PermCall) -> bool {
        matches!(call, PermCall::Probe(_))
    }

    fn overwrites(&self, call: &PermCall) -> bool {
        matches!(call, PermCall::Update(_))
    }
}

#[cfg(test)]
mod tests;
