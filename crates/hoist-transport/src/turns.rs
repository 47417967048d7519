//! First come, first served turns at one thing (a host's long-lived shell), with a limit on
//! how long each waits.
//!
//! A plain mutex is not fair: a thread that runs commands back to back takes it again the
//! moment it lets go, so another thread that waits for its one command starves until it gives
//! up (the prune beside a deploy, waiting out the restart's polling, opened SSH sessions of
//! its own while the new workers imported on the same cores). Here each waiter gets the next
//! turn after the one running.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Turns {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The ticket the next waiter takes.
    next: u64,
    /// The ticket whose turn it is (it may be running, or about to).
    serving: u64,
    /// Tickets whose holders stopped waiting before their turn came: skipped.
    given_up: BTreeSet<u64>,
}

/// A turn being had; the next one comes when it is dropped.
pub(crate) struct Turn<'a> {
    turns: &'a Turns,
}

impl Turns {
    /// Waits for this thread's turn, after every thread that asked before it; `None` when it did
    /// not come within `limit`.
    pub(crate) fn wait(&self, limit: Duration) -> Option<Turn<'_>> {
        let deadline = Instant::now() + limit;
        let mut state = self.lock();
        let ticket = state.next;
        state.next += 1;
        while state.serving != ticket {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.given_up.insert(ticket);
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(Turn { turns: self })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self.turns.lock();
        state.serving += 1;
        loop {
            let serving = state.serving;
            if !state.given_up.remove(&serving) {
                break;
            }
            state.serving += 1;
        }
        drop(state);
        self.turns.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[test]
    fn a_waiter_gets_the_next_turn_however_fast_the_holder_asks_again() {
        let turns = Turns::default();
        let stop = AtomicBool::new(false);
        let held_by_busy = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let first = turns.wait(Duration::ZERO).expect("nobody else waits");
            scope.spawn(|| {
                // Back to back, as the restart's polling: asks again the moment it lets go.
                while !stop.load(Ordering::SeqCst) {
                    let _turn = turns.wait(Duration::from_secs(10)).unwrap();
                    held_by_busy.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            std::thread::sleep(Duration::from_millis(20));
            drop(first);
            std::thread::sleep(Duration::from_millis(20));
            // The busy thread has had turns; a newcomer gets the one after the busy thread's
            // running turn (with a plain mutex it waited out its limit).
            let before = held_by_busy.load(Ordering::SeqCst);
            let turn = turns.wait(Duration::from_secs(60));
            assert!(turn.is_some());
            let had = held_by_busy.load(Ordering::SeqCst) - before;
            assert!(
                had <= 1,
                "the busy thread had {had} turns before the newcomer"
            );
            drop(turn);
            stop.store(true, Ordering::SeqCst);
        });
        assert!(held_by_busy.load(Ordering::SeqCst) > 1);
    }

    #[test]
    fn a_waiter_that_gave_up_does_not_hold_up_the_ones_after_it() {
        let turns = Turns::default();
        let first = turns.wait(Duration::ZERO).unwrap();
        // The next ticket gives up while the first still runs ...
        assert!(turns.wait(Duration::from_millis(10)).is_none());
        std::thread::scope(|scope| {
            let third = scope.spawn(|| turns.wait(Duration::from_secs(5)).is_some());
            std::thread::sleep(Duration::from_millis(20));
            // ... so when the first is done, the third's turn comes at once.
            drop(first);
            assert!(third.join().unwrap());
        });
        assert!(turns.wait(Duration::ZERO).is_some());
    }
}
