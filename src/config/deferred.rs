//! Value errors found while the document is read (a bad duration, an unset environment
//! variable, a bad time) are collected instead of ending the reading: one run of `check`
//! reports them all, and the checks that come after reading still run on the rest of the
//! file (each bad value read as a placeholder). Outside a collecting read, a value error
//! ends the reading as usual.

use serde::de;
use serde_saphyr::Location;
use std::cell::RefCell;

thread_local! {
    static FOUND: RefCell<Option<Vec<(Location, String)>>> = const { RefCell::new(None) };
}

/// Runs `read`, collecting the value errors it meets.
pub fn collecting<T>(read: impl FnOnce() -> T) -> (T, Vec<(Location, String)>) {
    let outer = FOUND.with(|f| f.borrow_mut().replace(Vec::new()));
    let value = read();
    let found = FOUND.with(|f| std::mem::replace(&mut *f.borrow_mut(), outer));
    (value, found.unwrap_or_default())
}

/// A bad value at `at`: collected, with `placeholder` read in its place, during a collecting
/// read; the error otherwise.
pub fn value_error<T, E: de::Error>(at: Location, message: String, placeholder: T) -> Result<T, E> {
    FOUND.with(|f| match f.borrow_mut().as_mut() {
        Some(found) => {
            found.push((at, message));
            Ok(placeholder)
        }
        None => Err(E::custom(message)),
    })
}
