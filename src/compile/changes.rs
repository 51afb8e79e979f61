//! What a reload changes in the policy, in one line for the log: routes, scopes and issuers
//! added, removed or changed.

use crate::config::File;
use std::collections::BTreeSet;

/// `routes +2 (a, b) -1 (c) ~1 (d); scopes +repo:write; issuers -partner`, or `no policy
/// change` when routes, scopes and issuers are as they were.
pub fn summary(before: &File, after: &File) -> String {
    let routes = |f: &File| -> Vec<(String, String)> {
        f.routes
            .iter()
            .map(|r| (r.name.clone(), format!("{r:?}")))
            .collect()
    };
    let (old, new) = (routes(before), routes(after));
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<BTreeSet<_>>();
    let (old_names, new_names) = (names(&old), names(&new));
    let changed: BTreeSet<String> = new
        .iter()
        .filter(|(n, d)| old.iter().any(|(o, od)| o == n && od != d))
        .map(|(n, _)| n.clone())
        .collect();
    let scopes = |f: &File| -> BTreeSet<String> {
        f.routes
            .iter()
            .flat_map(|r| r.scopes())
            .map(str::to_string)
            .collect()
    };
    let issuers =
        |f: &File| -> BTreeSet<String> { f.issuers.iter().map(|i| i.id.clone()).collect() };
    let mut parts = Vec::new();
    let route_part = [
        ("+", diff(&new_names, &old_names)),
        ("-", diff(&old_names, &new_names)),
        ("~", changed),
    ]
    .into_iter()
    .filter(|(_, set)| !set.is_empty())
    .map(|(sign, set)| format!("{sign}{} ({})", set.len(), list(&set)))
    .collect::<Vec<_>>();
    if !route_part.is_empty() {
        parts.push(format!("routes {}", route_part.join(" ")));
    }
    for (what, old, new) in [
        ("scopes", scopes(before), scopes(after)),
        ("issuers", issuers(before), issuers(after)),
    ] {
        let signed: Vec<String> = diff(&new, &old)
            .iter()
            .map(|s| format!("+{s}"))
            .chain(diff(&old, &new).iter().map(|s| format!("-{s}")))
            .collect();
        if !signed.is_empty() {
            parts.push(format!("{what} {}", signed.join(" ")));
        }
    }
    if parts.is_empty() {
        "no policy change".into()
    } else {
        parts.join("; ")
    }
}

fn diff(a: &BTreeSet<String>, b: &BTreeSet<String>) -> BTreeSet<String> {
    a.difference(b).cloned().collect()
}

/// At most five names, then how many more.
fn list(set: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = set.iter().take(5).map(String::as_str).collect();
    match set.len() {
        n if n > 5 => format!("{}, and {} more", shown.join(", "), n - 5),
        _ => shown.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(routes: &str, issuers: &str) -> File {
        crate::config::parse(
            &format!(
                "server: {{ listen: 127.0.0.1:1 }}\nissuers: [{issuers}]\nupstreams: {{ api: {{ url: http://127.0.0.1:2 }} }}\nroutes:\n{routes}"
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn the_summary_names_routes_scopes_and_issuers_added_removed_and_changed() {
        let before = file(
            "  - { name: a, match: { path: /a }, upstream: api, require: { scopes: repo } }\n  - { name: b, match: { path: /b }, upstream: api, require: { scopes: admin } }\n",
            "{ id: corp, issuer: https://c, audiences: [x] }",
        );
        let after = file(
            "  - { name: a, match: { path: /a }, upstream: api, require: { scopes: repo:write } }\n  - { name: c, match: { path: /c }, upstream: api, auth: none }\n",
            "{ id: corp, issuer: https://c, audiences: [x] }, { id: partner, issuer: https://p, audiences: [x] }",
        );
        assert_eq!(
            summary(&before, &after),
            "routes +1 (c) -1 (b) ~1 (a); scopes +repo:write -admin -repo; issuers +partner"
        );
        assert_eq!(summary(&before, &before), "no policy change");
    }
}
