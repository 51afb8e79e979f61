//! One network call for any number of concurrent callers asking the same thing (the same new
//! token, the same membership): the first caller's call answers everyone.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

pub struct Coalescer<K, V> {
    in_flight: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Coalescer {
            in_flight: Mutex::default(),
        }
    }
}

/// Removes a key's entry when the caller that created it is done, also when it is dropped
/// half-way (the client went away): the entry never outlives every waiter.
struct InFlight<'a, K: Hash + Eq, V> {
    map: &'a Mutex<HashMap<K, Arc<OnceCell<V>>>>,
    key: Option<K>,
    cell: Arc<OnceCell<V>>,
}

impl<K: Hash + Eq, V> Drop for InFlight<'_, K, V> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Only the entry this guard stands for: a later one for the same key stays.
        if map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &self.cell)) {
            map.remove(&key);
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Coalescer<K, V> {
    /// The value of `call` for `key`, run once for all concurrent callers; `joined` is told
    /// when this caller waits for a call already in flight.
    pub async fn run<F: Future<Output = V>>(
        &self,
        key: K,
        call: impl FnOnce() -> F,
        joined: impl FnOnce(),
    ) -> V {
        let (cell, guard) = {
            let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some(cell) => {
                    joined();
                    (cell.clone(), None)
                }
                None => {
                    let cell = Arc::new(OnceCell::new());
                    map.insert(key.clone(), cell.clone());
                    let guard = InFlight {
                        map: &self.in_flight,
                        key: Some(key),
                        cell: cell.clone(),
                    };
                    (cell, Some(guard))
                }
            }
        };
        // A waiter whose leader was dropped takes over the call (OnceCell hands it on).
        let value = cell.get_or_init(call).await.clone();
        drop(guard);
        value
    }
}
