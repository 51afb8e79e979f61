//! One replica does a job at a time (polling a SET stream, fetching a policy document,
//! introspecting a new token): it holds a lease in Redis. Taking and renewing are one Lua
//! script (atomic: two replicas never both believe they hold it). The lease's value is the
//! holder and a sealed renewal time; a lease whose value does not open (forged), or whose
//! holder has not renewed within `stale_after` (dead, or a genuine value written back by
//! someone else), is taken over — compare-and-set on the value seen, so a takeover races
//! with nothing. When Redis cannot say, every replica does the job itself (better twice than
//! never).

use super::Cluster;
use super::seal::now_ms;
use std::time::Duration;

/// `KEYS[1]` the lease; `ARGV`: this replica, its new value, the TTL in ms, and the value a
/// takeover replaces ("" for none). Takes an absent lease, renews this replica's own,
/// replaces exactly the value seen; otherwise answers the value that holds it.
const SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[4] or string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return v
";

/// A lease, as asked for.
pub struct Lease<'a> {
    /// What the lease is for (hashed into its key name).
    pub name: &'a str,
    /// The label of its age metric, for the leases ops watch (`poll`, `organizations`).
    pub label: Option<&'static str>,
    /// How long a holder keeps it without renewing.
    pub ttl: Duration,
    /// Not renewed for this long, a holder is taken for gone.
    pub stale_after: Duration,
    /// How often its holder renews it (for the metric and the alert).
    pub interval: Duration,
}

enum Answer {
    Held,
    By(String),
}

impl Cluster {
    /// Whether this replica holds (or now takes, or renews) `lease`.
    pub async fn hold_lease(&self, lease: Lease<'_>) -> bool {
        let key = self.key(&format!("lease:{}", super::digest(&[lease.name])));
        if let Some(label) = lease.label {
            self.metrics
                .lease_interval
                .with_label_values(&[label])
                .set(lease.interval.as_secs_f64());
        }
        let age = |secs: f64| {
            if let Some(label) = lease.label {
                self.metrics.lease_age.with_label_values(&[label]).set(secs);
            }
        };
        let held = match self.try_lease(&key, lease.ttl, "").await {
            Err(_) => return true,
            Ok(Answer::Held) => {
                age(0.0);
                return true;
            }
            Ok(Answer::By(value)) => value,
        };
        // Another replica's, if it is sealed and renewed in time.
        let opened = held
            .split_once('|')
            .ok_or(super::seal::SealError::Malformed)
            .and_then(|(holder, sealed)| {
                let opened = self.seal.open(&key, sealed)?;
                if opened.body == holder {
                    Ok(opened.at_ms)
                } else {
                    Err(super::seal::SealError::BadMac)
                }
            });
        let fresh = match opened {
            Ok(at_ms) => {
                let since = Duration::from_millis(now_ms().saturating_sub(at_ms));
                age(since.as_secs_f64());
                since <= lease.stale_after
            }
            Err(e) => {
                self.rejected("lease", &key, e);
                false
            }
        };
        if fresh {
            return false;
        }
        match self.try_lease(&key, lease.ttl, &held).await {
            Ok(Answer::Held) => {
                tracing::warn!(
                    "cluster: lease {} taken over from a holder that was forged or gone",
                    lease.label.unwrap_or("(introspection)")
                );
                age(0.0);
                true
            }
            Ok(Answer::By(_)) => false,
            Err(_) => true,
        }
    }

    async fn try_lease(&self, key: &str, ttl: Duration, replaces: &str) -> Result<Answer, ()> {
        let value = format!("{}|{}", self.id, self.seal.seal(key, now_ms(), &self.id));
        let attempt = async {
            let mut conn = self.connection().await.map_err(|_| ())?;
            redis::Script::new(SCRIPT)
                .key(key)
                .arg(&self.id)
                .arg(value)
                .arg(ttl.as_millis().max(1) as u64)
                .arg(replaces)
                .invoke_async::<redis::Value>(&mut conn)
                .await
                .map_err(|_| ())
        };
        match attempt.await? {
            redis::Value::Int(1) => Ok(Answer::Held),
            redis::Value::BulkString(v) => Ok(Answer::By(String::from_utf8_lossy(&v).into_owned())),
            redis::Value::SimpleString(v) => Ok(Answer::By(v)),
            _ => Err(()),
        }
    }
}
