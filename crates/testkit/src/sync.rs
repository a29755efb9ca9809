//! Small synchronisation helpers shared by the mocks.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering the data if a previous holder panicked.
///
/// Mock state stays usable after a test's reply closure panics: the data it
/// guards is plain bookkeeping that a panic cannot leave half-written in a way
/// that matters more than losing the whole mock.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
