//! How long the linearizability checker takes on permission histories of growing size (the
//! suite's own, under the full budget, hold up to 3,000 calls). `cargo run --example lincheck_bench` (debug, as the tests run; `--release` is
//! faster) prints one line per size: the slowest of several random histories, linearizable
//! ones and ones with one stale probe (checked, then shrunk to a minimal violation). A
//! measurement, not a test: timings depend on the machine.

use std::time::{Duration, Instant};

use token_conformance::model::linearizability::{
    Operation, PermAnswer, PermCall, PermissionSpec, Perms, ProbeKind, check, minimal_violation,
};

const CLIENTS: u64 = 8;
const HISTORIES_PER_SIZE: u64 = 20;

const ON: Perms = Perms::ALL;

/// xorshift64*: enough randomness for shapes, without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

type Op = Operation<PermCall, PermAnswer>;

/// A history that a correct server could produce: `CLIENTS` clients, each call lasting 1–40
/// units and taking effect at a random instant inside its interval; one call in 16 flips
/// `can_access_cma`, the others probe it.
fn linearizable(rng: &mut Rng, size: usize) -> Vec<Op> {
    let mut clock = vec![0u64; CLIENTS as usize];
    let mut calls: Vec<(u64, Op)> = Vec::with_capacity(size);
    for k in 0..size {
        let client = (rng.below(CLIENTS)) as usize;
        let start = clock[client] + rng.below(5);
        let end = start + 1 + rng.below(40);
        clock[client] = end + 1;
        let point = start + rng.below(end - start + 1);
        let call = if k % 16 == 0 {
            PermCall::Update(Perms {
                cma: (k / 16) % 2 == 1,
                ..ON
            })
        } else {
            PermCall::Probe(ProbeKind::CmaRead)
        };
        let op = Operation {
            client,
            start: Duration::from_micros(start),
            end: Duration::from_micros(end),
            call,
            answer: PermAnswer::Updated,
        };
        calls.push((point, op));
    }
    // Answer every call as of its instant of effect, in the order of those instants.
    calls.sort_by_key(|(point, _)| *point);
    let mut state = ON;
    calls
        .into_iter()
        .map(|(_, mut op)| {
            match op.call {
                PermCall::Update(to) => state = to,
                PermCall::Probe(kind) => {
                    op.answer = PermAnswer::Probe(kind.predicted(state).unwrap_or(true));
                }
            }
            op
        })
        .collect()
}

/// The same, with one probe that began after an update's answer seeing the state before it.
fn with_a_stale_probe(rng: &mut Rng, size: usize) -> Option<Vec<Op>> {
    let mut history = linearizable(rng, size);
    let updates: Vec<usize> = (0..history.len())
        .filter(|&i| matches!(history[i].call, PermCall::Update(_)))
        .collect();
    let &u = updates.get(updates.len() / 2)?;
    let PermCall::Update(to) = history[u].call else {
        return None;
    };
    // The first probe after the update's answer, with no other update in flight by then.
    let victim = (0..history.len())
        .filter(|&i| history[i].start > history[u].end)
        .filter(|&i| matches!(history[i].call, PermCall::Probe(_)))
        .min_by_key(|&i| history[i].start)?;
    // No other update may be in flight between the update and the stale probe.
    let (from, to_end) = (history[u].start, history[victim].end);
    if updates
        .iter()
        .any(|&o| o != u && history[o].end >= from && history[o].start <= to_end)
    {
        return None;
    }
    history[victim].answer = PermAnswer::Probe(!to.cma);
    Some(history)
}

fn main() {
    let spec = PermissionSpec { initial: ON };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    println!(" size  slowest linearizable  slowest violation (check + shrink)  shrunk to");
    for size in [16, 64, 256, 1024, 4096, 16384] {
        let mut worst_ok = Duration::ZERO;
        let mut worst_bad = Duration::ZERO;
        let mut shrunk_max = 0;
        for _ in 0..HISTORIES_PER_SIZE {
            let history = linearizable(&mut rng, size);
            let started = Instant::now();
            let verdict = check(&spec, &history);
            worst_ok = worst_ok.max(started.elapsed());
            assert!(matches!(verdict, Ok(Some(_))), "{verdict:?}");
            if let Some(bad) = with_a_stale_probe(&mut rng, size) {
                let started = Instant::now();
                let verdict = check(&spec, &bad);
                assert!(matches!(verdict, Ok(None)), "{verdict:?}");
                let keep = minimal_violation(&spec, &bad);
                worst_bad = worst_bad.max(started.elapsed());
                if let Ok(Some(keep)) = keep {
                    shrunk_max = shrunk_max.max(keep.len());
                }
            }
        }
        println!(
            "{size:>5}  {:>17.1} ms  {:>31.1} ms  {shrunk_max:>4} ops",
            worst_ok.as_secs_f64() * 1000.0,
            worst_bad.as_secs_f64() * 1000.0,
        );
    }
}
