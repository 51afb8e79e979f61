//! An RFC 8936 poll endpoint for the tests: hands out queued SETs until they are
//! acknowledged, and records every acknowledgement.

use super::serve;
use serde_json::{Value, json};

/// An RFC 8936 poll endpoint: hands out queued SETs until they are acknowledged.
pub struct PollServer {
    pub url: String,
    pub queue: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>,
    pub acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl PollServer {
    pub fn start() -> PollServer {
        use http_body_util::{BodyExt, Full};
        let queue: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>> =
            Default::default();
        let acked: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let (q, a) = (queue.clone(), acked.clone());
        let (addr, runtime) = serve(move |req: hyper::Request<hyper::body::Incoming>| {
            let (q, a) = (q.clone(), a.clone());
            async move {
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut queue = q.lock().unwrap();
                for jti in asked["ack"].as_array().into_iter().flatten() {
                    let jti = jti.as_str().unwrap().to_string();
                    queue.remove(&jti);
                    a.lock().unwrap().push(jti);
                }
                let answer = json!({"sets": *queue, "moreAvailable": false});
                hyper::Response::new(Full::new(bytes::Bytes::from(answer.to_string())))
            }
        });
        PollServer {
            url: format!("http://{addr}/poll"),
            queue,
            acked,
            _runtime: runtime,
        }
    }
}
