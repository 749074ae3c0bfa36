//! The run's stop, shared by every clone of a client: a watch channel, so that waiting and
//! in-flight requests end at once when the run stops (deadline, signal). Checks stop first,
//! cleanup last.

use super::{Client, TransportError};

/// How far a run's stop goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    /// Running.
    Running,
    /// The checks send nothing more (deadline, first signal); cleanup still runs.
    Checks,
    /// Nothing is sent any more, cleanup included (cleanup out of time, second signal).
    All,
}

/// The run's stop state, shared by every clone of a client.
#[derive(Debug, Clone)]
pub struct StopState {
    /// How far the stop goes.
    pub level: StopLevel,
    /// Why it went this far, in words (`cleanup did not finish within 30s`).
    pub reason: String,
    /// Why the run stopped at all: the first reason given (`the run's deadline of 15m passed`).
    pub cause: String,
}

/// A watch channel for the stop state (so that waiting requests wake up at once).
#[derive(Debug)]
pub(super) struct StopSignal(tokio::sync::watch::Sender<StopState>);

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal(tokio::sync::watch::Sender::new(StopState {
            level: StopLevel::Running,
            reason: String::new(),
            cause: String::new(),
        }))
    }
}
impl Client {
    /// Stop the run at `level` (a higher level than the current one only): waiting and
    /// in-flight requests of the handles it covers end at once with
    /// [`TransportError::Stopped`]. The first reason given for a level stays, and the first of
    /// all is the stop's cause.
    pub fn stop(&self, level: StopLevel, reason: &str) {
        self.stats.stop.0.send_if_modified(|state| {
            if state.level >= level {
                return false;
            }
            if state.level == StopLevel::Running {
                state.cause = reason.to_owned();
            }
            state.level = level;
            state.reason = reason.to_owned();
            true
        });
    }

    /// The run's stop state now.
    pub fn stop_state(&self) -> StopState {
        self.stats.stop.0.borrow().clone()
    }

    /// A receiver that sees every change of the stop state.
    pub fn stop_watch(&self) -> tokio::sync::watch::Receiver<StopState> {
        self.stats.stop.0.subscribe()
    }

    /// The level from which this handle sends nothing: checks stop first, cleanup last.
    pub(super) fn stop_level(&self) -> StopLevel {
        if self.capped {
            StopLevel::Checks
        } else {
            StopLevel::All
        }
    }

    /// Why this handle may not send now, if it may not.
    pub(super) fn refusal(&self) -> Option<String> {
        let state = self.stats.stop.0.borrow();
        (state.level >= self.stop_level()).then(|| state.reason.clone())
    }

    /// Run `work` unless the run stops first (then it is dropped, and the request with it).
    pub(super) async fn unless_stopped<F: std::future::Future>(
        &self,
        work: F,
    ) -> Result<F::Output, TransportError> {
        let level = self.stop_level();
        let mut watch = self.stats.stop.0.subscribe();
        tokio::pin!(work);
        tokio::select! {
            biased;
            reason = async { watch.wait_for(|s| s.level >= level).await.map(|s| s.reason.clone()) } => match reason {
                Ok(reason) => Err(TransportError::Stopped(reason)),
                // The sender lives as long as the stats: unreachable, but never stop for it.
                Err(_) => Ok(work.await),
            },
            out = &mut work => Ok(out),
        }
    }
}
