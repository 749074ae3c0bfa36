//! The run's request cap as a ledger: under a cap, each clause that runs reserves its planned
//! share up front, and what is left is one pool. A request made for a clause takes from the
//! clause's reservation first, then from the pool; a request made for no clause (the
//! preflight, the observation pass) takes from the pool. When every check of a clause has
//! ended, what it did not spend goes back to the pool. So what a clause gets does not depend
//! on when it is scheduled, nor on how loaded the machine is.
//!
//! Cleanup is paid for up front: before a fixture is created, one slot for deleting it is
//! taken like any request of its clause and set aside (the cleanup reserve), so that under
//! the cap every fixture's deletion is already paid and a run stays within it. Cleanup is
//! exempt as well: what it sends beyond the reserve (a resend after a 429, the lookup of a
//! create that got no answer) is sent all the same, an overdraft, so that a fixture is never
//! left behind.

use std::collections::HashMap;
use std::sync::Mutex;

/// Where a request's slot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// No cap: nothing to take.
    Uncapped,
    /// The clause's own reservation.
    Reserved,
    /// The shared pool.
    Pool,
    /// The cleanup reserve (an exempt request: cleanup).
    Cleanup,
    /// Nothing was left, and the request is exempt (cleanup): sent past the cap.
    Overdraft,
}

/// One clause's reservation.
#[derive(Debug, Default)]
struct Account {
    /// Requests still reserved.
    left: u64,
    /// Checks of the clause that have not ended yet.
    holders: usize,
}

#[derive(Debug, Default)]
struct State {
    /// The cap (`None`: no cap).
    cap: Option<u64>,
    /// Slots no reservation holds.
    pool: u64,
    /// Slots set aside for deleting the fixtures that exist (see [`Ledger::hold_for_cleanup`]).
    cleanup: u64,
    accounts: HashMap<String, Account>,
}

/// The request cap of a run, with a reservation per clause (see the module's text).
#[derive(Debug, Default)]
pub struct Ledger {
    state: Mutex<State>,
}

impl Ledger {
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// Cap the run at `cap` requests, `taken` of which were sent already (`None`: no cap).
    /// Reservations made before are dropped: caps are set before anything is reserved.
    pub fn set_cap(&self, cap: Option<u64>, taken: u64) {
        self.with_state(|s| {
            s.cap = cap;
            s.pool = cap.map_or(0, |cap| cap.saturating_sub(taken));
            s.cleanup = 0;
            s.accounts.clear();
        });
    }

    /// The cap, if any.
    pub fn cap(&self) -> Option<u64> {
        self.with_state(|s| s.cap)
    }

    /// Reserve `requests` for `account`, to be held until `holders` checks have each
    /// [`release`](Self::release)d it. Under no cap nothing is reserved; where the pool holds
    /// less, the rest of the pool is. Returns what was reserved.
    pub fn reserve(&self, account: &str, requests: u64, holders: usize) -> u64 {
        self.with_state(|s| {
            if s.cap.is_none() || holders == 0 {
                return 0;
            }
            let granted = requests.min(s.pool);
            s.pool -= granted;
            let entry = s.accounts.entry(account.to_owned()).or_default();
            entry.left += granted;
            entry.holders += holders;
            granted
        })
    }

    /// Take one slot for a request of `account` (`None`: no clause). `exempt` requests are
    /// never refused. `Err` holds the cap when nothing is left.
    pub fn take(&self, account: Option<&str>, exempt: bool) -> Result<Slot, u64> {
        self.with_state(|s| {
            let Some(cap) = s.cap else {
                return Ok(Slot::Uncapped);
            };
            if exempt && s.cleanup > 0 {
                s.cleanup -= 1;
                return Ok(Slot::Cleanup);
            }
            Self::take_slot(s, account, exempt, cap)
        })
    }

    /// Before a fixture is created: take one slot as a request of `account` would, and set it
    /// aside for deleting that fixture (an exempt request takes it first). `Err` holds the cap
    /// when nothing is left: the fixture is then not created, as its deletion could not be
    /// paid. Under no cap nothing is held.
    pub fn hold_for_cleanup(&self, account: Option<&str>) -> Result<(), u64> {
        self.with_state(|s| {
            let Some(cap) = s.cap else {
                return Ok(());
            };
            Self::take_slot(s, account, false, cap)?;
            s.cleanup += 1;
            Ok(())
        })
    }

    /// A slot held for a cleanup that will not be needed (the create made nothing) goes back
    /// to the pool.
    pub fn unhold_cleanup(&self) {
        self.with_state(|s| {
            if s.cleanup > 0 {
                s.cleanup -= 1;
                s.pool += 1;
            }
        });
    }

    /// Slots held for cleanup now.
    #[cfg(test)]
    pub fn held_for_cleanup(&self) -> u64 {
        self.with_state(|s| s.cleanup)
    }

    fn take_slot(
        s: &mut State,
        account: Option<&str>,
        exempt: bool,
        cap: u64,
    ) -> Result<Slot, u64> {
        if let Some(entry) = account.and_then(|a| s.accounts.get_mut(a))
            && entry.left > 0
        {
            entry.left -= 1;
            return Ok(Slot::Reserved);
        }
        if s.pool > 0 {
            s.pool -= 1;
            return Ok(Slot::Pool);
        }
        if exempt {
            Ok(Slot::Overdraft)
        } else {
            Err(cap)
        }
    }

    /// One check of `account` has ended; once all of them have, what the reservation still
    /// holds goes back to the pool. An account that holds no reservation is left alone.
    pub fn release(&self, account: &str) {
        self.with_state(|s| {
            let Some(entry) = s.accounts.get_mut(account) else {
                return;
            };
            entry.holders = entry.holders.saturating_sub(1);
            if entry.holders == 0 {
                let left = entry.left;
                s.accounts.remove(account);
                s.pool += left;
            }
        });
    }

    /// Slots in the pool now (`None`: no cap).
    pub fn pool(&self) -> Option<u64> {
        self.with_state(|s| s.cap.map(|_| s.pool))
    }

    /// What `account` still holds reserved (`None`: no reservation).
    pub fn reserved(&self, account: &str) -> Option<u64> {
        self.with_state(|s| s.accounts.get(account).map(|a| a.left))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn without_a_cap_everything_goes_and_nothing_is_reserved() {
        let ledger = Ledger::default();
        assert_eq!(ledger.reserve("a", 10, 1), 0);
        for _ in 0..1000 {
            assert_eq!(ledger.take(Some("a"), false), Ok(Slot::Uncapped));
        }
        assert_eq!(ledger.pool(), None);
    }

    #[test]
    fn a_clause_takes_its_reservation_first_then_the_pool() {
        let ledger = Ledger::default();
        ledger.set_cap(Some(10), 1);
        assert_eq!(ledger.pool(), Some(9));
        assert_eq!(ledger.reserve("a", 4, 1), 4);
        assert_eq!(ledger.reserve("b", 3, 1), 3);
        assert_eq!(ledger.pool(), Some(2));
        for _ in 0..4 {
            assert_eq!(ledger.take(Some("a"), false), Ok(Slot::Reserved));
        }
        assert_eq!(ledger.take(Some("a"), false), Ok(Slot::Pool));
        // Requests of no clause take from the pool only: b's share stays b's.
        assert_eq!(ledger.take(None, false), Ok(Slot::Pool));
        assert_eq!(ledger.take(None, false), Err(10));
        assert_eq!(ledger.take(Some("a"), false), Err(10));
        assert_eq!(ledger.reserved("b"), Some(3));
        assert_eq!(ledger.take(Some("b"), false), Ok(Slot::Reserved));
        // Cleanup is never refused.
        assert_eq!(ledger.take(Some("a"), true), Ok(Slot::Overdraft));
    }

    #[test]
    fn a_reservation_returns_to_the_pool_when_its_last_check_ends() {
        let ledger = Ledger::default();
        ledger.set_cap(Some(20), 0);
        assert_eq!(ledger.reserve("a", 8, 2), 8);
        assert_eq!(ledger.pool(), Some(12));
        ledger.take(Some("a"), false).unwrap();
        ledger.release("a");
        assert_eq!(ledger.pool(), Some(12), "one check of two still runs");
        assert_eq!(ledger.reserved("a"), Some(7));
        ledger.release("a");
        assert_eq!(ledger.pool(), Some(19));
        assert_eq!(ledger.reserved("a"), None);
        // Releasing what holds nothing changes nothing.
        ledger.release("a");
        ledger.release("never-reserved");
        assert_eq!(ledger.pool(), Some(19));
    }

    #[test]
    fn a_fixture_deletion_is_paid_before_the_fixture_is_created() {
        let ledger = Ledger::default();
        ledger.set_cap(Some(5), 0);
        assert_eq!(ledger.reserve("a", 3, 1), 3);
        // Two fixtures: each create holds a slot for its deletion, then takes its own.
        for _ in 0..2 {
            ledger.hold_for_cleanup(Some("a")).unwrap();
            ledger.take(Some("a"), false).unwrap();
        }
        assert_eq!((ledger.reserved("a"), ledger.pool()), (Some(0), Some(1)));
        assert_eq!(ledger.held_for_cleanup(), 2);
        // A third: its deletion is held from the pool, then nothing is left for the create.
        ledger.hold_for_cleanup(Some("a")).unwrap();
        assert_eq!(ledger.take(Some("a"), false), Err(5));
        ledger.unhold_cleanup();
        assert_eq!(ledger.hold_for_cleanup(Some("a")), Ok(()));
        ledger.unhold_cleanup();
        // The deletions come out of what was held: the cap is never overdrawn.
        assert_eq!(ledger.take(Some("a"), true), Ok(Slot::Cleanup));
        assert_eq!(ledger.take(Some("a"), true), Ok(Slot::Cleanup));
        assert_eq!(ledger.take(Some("a"), true), Ok(Slot::Pool));
        assert_eq!(ledger.take(Some("a"), true), Ok(Slot::Overdraft));
        // Under no cap nothing is held.
        let free = Ledger::default();
        free.hold_for_cleanup(None).unwrap();
        assert_eq!(free.held_for_cleanup(), 0);
    }

    #[test]
    fn reservations_never_exceed_the_cap() {
        let ledger = Ledger::default();
        ledger.set_cap(Some(10), 0);
        assert_eq!(ledger.reserve("a", 7, 1), 7);
        assert_eq!(ledger.reserve("b", 7, 1), 3);
        assert_eq!(ledger.pool(), Some(0));
        assert_eq!(ledger.reserve("c", 7, 1), 0);
    }

    #[test]
    fn concurrent_takes_never_overshoot_the_cap() {
        let ledger = Arc::new(Ledger::default());
        ledger.set_cap(Some(300), 0);
        let accounts = ["a", "b", "c"];
        for a in accounts {
            ledger.reserve(a, 50, 1);
        }
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let ledger = Arc::clone(&ledger);
                std::thread::spawn(move || {
                    let account = (i % 4 < 3).then(|| accounts[i % 4]);
                    let mut got = (0u64, 0u64);
                    for _ in 0..200 {
                        match ledger.take(account, false) {
                            Ok(Slot::Reserved) => got.0 += 1,
                            Ok(Slot::Pool) => got.1 += 1,
                            Ok(other) => panic!("{other:?}"),
                            Err(cap) => assert_eq!(cap, 300),
                        }
                    }
                    (account, got)
                })
            })
            .collect();
        let mut reserved = std::collections::HashMap::new();
        let mut total = 0;
        for thread in threads {
            let (account, (r, p)) = thread.join().unwrap();
            total += r + p;
            if let Some(a) = account {
                *reserved.entry(a).or_insert(0) += r;
            }
        }
        assert_eq!(total, 300, "every slot taken once, none twice");
        for a in accounts {
            assert_eq!(reserved[a], 50, "{a} got exactly its reservation");
        }
        assert_eq!(ledger.take(None, false), Err(300));
    }
}
