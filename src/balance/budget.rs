//! How many retries an upstream may get: each request earns a fraction of a retry (`ratio`),
//! up to a few in store, and each retry spends one. With 20 %, retries add at most a fifth
//! to the requests an upstream sees however many fail, unlike "retry every failure once",
//! which doubles the load on an upstream that is already struggling.

use std::sync::Mutex;

#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    max: f64,
    credit: Mutex<f64>,
}

impl RetryBudget {
    /// `ratio` of the requests may be retried, with up to `burst` retries in store.
    pub fn new(ratio: f64, burst: u32) -> RetryBudget {
        let max = f64::from(burst.max(1));
        RetryBudget {
            ratio: ratio.clamp(0.0, 1.0),
            max,
            credit: Mutex::new(max),
        }
    }

    /// A request was sent: it earns its share of a retry.
    pub fn earn(&self) {
        let mut c = self.credit.lock().unwrap_or_else(|p| p.into_inner());
        *c = (*c + self.ratio).min(self.max);
    }

    /// Whether a retry may go now (and spends it).
    pub fn spend(&self) -> bool {
        let mut c = self.credit.lock().unwrap_or_else(|p| p.into_inner());
        if *c >= 1.0 {
            *c -= 1.0;
            true
        } else {
            false
        }
    }
}
