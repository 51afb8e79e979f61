//! The routes of a document as configuration text: one route per method and path pattern,
//! the most specific patterns first (a static segment before a parameter at the same place:
//! the first route in file order wins).

use super::{Expr, Operation, Requirement, Spec};
use std::fmt::Write;

/// One route to write: the operations it stands for and what they require together.
struct Route<'a> {
    method: &'a str,
    pattern: &'a str,
    operations: Vec<&'a Operation>,
    requirement: Requirement,
}

/// The `routes:` section for `spec`, every route to `upstream`, with a header saying what
/// was imported and what to check by hand.
pub fn routes_yaml(spec: &Spec, upstream: &str, origin: &str) -> String {
    let mut routes: Vec<Route> = Vec::new();
    for op in &spec.operations {
        // Parameter names do not matter: `/a/{x}` and `/a/{y}` take the same requests.
        match routes
            .iter_mut()
            .find(|r| r.method == op.method && shape(r.pattern) == shape(&op.pattern))
        {
            Some(r) => {
                r.requirement = both(&r.requirement, &op.requirement);
                r.operations.push(op);
            }
            None => routes.push(Route {
                method: &op.method,
                pattern: &op.pattern,
                operations: vec![op],
                requirement: op.requirement.clone(),
            }),
        }
    }
    routes.sort_by_key(|r| (specificity(r.pattern), r.method));
    let count = |f: &dyn Fn(&Route) -> bool| routes.iter().filter(|r| f(r)).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Routes from {origin}: \"{}\" {} (OpenAPI {}), {} operations as {} routes.",
        spec.title,
        spec.version,
        spec.openapi,
        spec.operations.len(),
        routes.len()
    );
    let notes = [
        (
            count(&|r| r.requirement == Requirement::Unspecified),
            "declare no security requirement: they take any valid token (`require: {}`)",
        ),
        (
            count(&|r| r.requirement == Requirement::Public),
            "are public (`security: []` or an optional requirement): `auth: none`",
        ),
        (
            count(&|r| r.operations.iter().any(|o| o.widened)),
            "have a segment mixing a parameter with text (`{id}:cancel`): the route takes any such segment",
        ),
        (
            count(&|r| r.operations.len() > 1),
            "stand for several operations (the same method and pattern): they require what each does",
        ),
    ];
    for (n, what) in notes {
        if n > 0 {
            let _ = writeln!(out, "# {n} routes {what}; check them.");
        }
    }
    for skipped in &spec.skipped {
        let _ = writeln!(out, "# Not imported: {skipped}");
    }
    out.push_str("routes:\n");
    let mut names: Vec<String> = Vec::new();
    for r in &routes {
        let first = r.operations[0];
        let base = first
            .operation_id
            .clone()
            .unwrap_or_else(|| format!("{} {}", r.method, first.template));
        let mut name = base.clone();
        let mut n = 1;
        while names.contains(&name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        if r.operations.len() > 1 || first.widened {
            let from: Vec<String> = r
                .operations
                .iter()
                .map(|o| format!("{} {}", o.method, o.template))
                .collect();
            let _ = writeln!(out, "  # from {}", from.join(", "));
        }
        let _ = writeln!(out, "  - name: {}", quoted(&name));
        let _ = writeln!(
            out,
            "    match: {{ methods: [{}], path: {} }}",
            r.method,
            quoted(r.pattern)
        );
        let _ = writeln!(out, "    upstream: {upstream}");
        match &r.requirement {
            Requirement::Public => out.push_str("    auth: none\n"),
            Requirement::Unspecified => out.push_str("    require: {}\n"),
            Requirement::Token(e) if *e == Expr::NONE => out.push_str("    require: {}\n"),
            Requirement::Token(e) => {
                let _ = writeln!(out, "    require: {{ scopes: {} }}", expr(e));
            }
        }
        names.push(name);
    }
    out
}

/// What two operations on one route require together: each one's requirement (the stricter
/// wins over none; two scope expressions are both needed).
fn both(a: &Requirement, b: &Requirement) -> Requirement {
    use Requirement::*;
    match (a, b) {
        (Public, x) | (x, Public) => x.clone(),
        (Unspecified, x) | (x, Unspecified) => x.clone(),
        (Token(x), Token(y)) if x == y || *y == Expr::NONE => Token(x.clone()),
        (Token(x), Token(y)) if *x == Expr::NONE => Token(y.clone()),
        (Token(x), Token(y)) => Token(Expr::All(vec![x.clone(), y.clone()])),
    }
}

/// Sorts static segments before parameters at the same place, so a more specific route
/// comes first.
fn specificity(pattern: &str) -> Vec<(u8, &str)> {
    pattern
        .split('/')
        .map(|s| match s.strip_prefix('{') {
            Some(rest) if rest.starts_with('*') => (2, ""),
            Some(_) => (1, ""),
            None => (0, s),
        })
        .collect()
}

/// The pattern with its parameters unnamed.
fn shape(pattern: &str) -> Vec<&str> {
    pattern
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect()
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn expr(e: &Expr) -> String {
    let list = |xs: &[Expr]| xs.iter().map(expr).collect::<Vec<_>>().join(", ");
    match e {
        Expr::Scope(s) => quoted(s),
        Expr::All(xs) => format!("{{ all: [{}] }}", list(xs)),
        Expr::Any(xs) => format!("{{ any: [{}] }}", list(xs)),
    }
}
