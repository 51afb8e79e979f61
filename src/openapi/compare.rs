//! A configuration against a document: operations no route serves (they would get 404 or
//! 405 through the gateway), and routes no operation reaches (left over, or a typo).

use super::{Operation, Spec};
use crate::decision::Rules;
use crate::route::Lookup;

#[derive(Debug, Default)]
pub struct Comparison {
    pub operations: usize,
    /// `GET /path (operationId)` of each operation without a route.
    pub unrouted: Vec<String>,
    /// Names of the routes no operation reaches.
    pub unused: Vec<String>,
}

/// Looks each operation up in the route table with a path its template matches.
pub fn compare(spec: &Spec, rules: &Rules) -> Comparison {
    let mut reached = vec![false; rules.routes.len()];
    let mut out = Comparison {
        operations: spec.operations.len(),
        ..Comparison::default()
    };
    for op in &spec.operations {
        match route_of(op, rules) {
            Some(i) => reached[i] = true,
            None => out.unrouted.push(match &op.operation_id {
                Some(id) => format!("{} {} ({id})", op.method, op.template),
                None => format!("{} {}", op.method, op.template),
            }),
        }
    }
    out.unused = rules
        .routes
        .iter()
        .zip(&reached)
        .filter(|(_, hit)| !**hit)
        .map(|(r, _)| r.name.clone())
        .collect();
    out
}

/// The route serving `op`, asked with each parameter given a plain value.
fn route_of(op: &Operation, rules: &Rules) -> Option<usize> {
    let sample: Vec<&str> = op
        .pattern
        .split('/')
        .map(|s| if s.starts_with('{') { "sample" } else { s })
        .collect();
    let path = crate::request::normalize(&sample.join("/")).ok()?;
    let method = http::Method::from_bytes(op.method.as_bytes()).ok()?;
    match rules.table.lookup(None, &method, &path) {
        Lookup::Found(m) => Some(m.route),
        _ => None,
    }
}
