//! Ctrl-C: the front end calls [`request`]; the engine stops at the next step boundary before
//! the switch (releasing the lock on the way out). Once a switch has happened it finishes, so
//! a host is never left between releases.

use std::sync::atomic::{AtomicBool, Ordering};

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Asks the running deploy to stop as soon as it safely can.
pub fn request() {
    CANCELLED.store(true, Ordering::SeqCst);
    // A pre-switch hook (a migration) stops now rather than when it ends.
    hoist_transport::interrupt_commands();
}

pub(crate) fn requested() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}
