//! The compiled route table: a segment trie that finds the *first* route in file order whose
//! pattern and method match.
//!
//! matchit ranks matches by specificity (static before parameter before catch-all) and refuses
//! overlapping patterns; scopegate's contract is "first match wins in file order", which users
//! rely on to put an exception before a catch-all. So the trie explores every branch that can
//! match, pruned by the smallest route index below each node. Lookups cost one hash probe per
//! segment and branch, independent of the number of routes.

use super::methods::MethodSet;
use super::pattern::{Pattern, Segment};
use crate::request::NormalizedPath;
use http::Method;
use std::collections::HashMap;

#[derive(Debug, Default)]
struct Node {
    statics: HashMap<Box<str>, usize>,
    param: Option<usize>,
    /// Routes ending here.
    ends: Vec<Terminal>,
    /// Catch-all routes rooted here (they match one or more further segments).
    catch_alls: Vec<Terminal>,
    /// Smallest route index in this subtree, for pruning.
    min_route: usize,
}

#[derive(Debug, Clone, Copy)]
struct Terminal {
    route: usize,
    methods: MethodSet,
}

#[derive(Debug)]
pub struct RouteTable {
    nodes: Vec<Node>,
    /// Parameter names per route, in segment order.
    params: Vec<Vec<String>>,
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'p> {
    Found(RouteMatch<'p>),
    /// The path matches routes, none with this method: the union of their methods.
    MethodNotAllowed(MethodSet),
    NotFound,
}

#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch<'p> {
    pub route: usize,
    /// Captured parameters (name, value) borrowed from the normalized path.
    pub params: Vec<(&'p str, &'p str)>,
}

impl RouteTable {
    /// Builds the table; `routes` are (pattern, methods) in file order.
    pub fn build(routes: &[(Pattern, MethodSet)]) -> RouteTable {
        let indexed: Vec<(usize, &Pattern, MethodSet)> = routes
            .iter()
            .enumerate()
            .map(|(i, (p, m))| (i, p, *m))
            .collect();
        RouteTable::build_indexed(&indexed)
    }

    /// Builds the table of some of the routes, each with its index in file order (the
    /// routes of one host).
    pub fn build_indexed(routes: &[(usize, &Pattern, MethodSet)]) -> RouteTable {
        let mut nodes = vec![Node {
            min_route: usize::MAX,
            ..Node::default()
        }];
        let mut params = vec![Vec::new(); routes.iter().map(|r| r.0 + 1).max().unwrap_or(0)];
        for &(route, pattern, methods) in routes {
            let methods = &methods;
            let mut at = 0;
            nodes[0].min_route = nodes[0].min_route.min(route);
            let mut names = Vec::new();
            let terminal = Terminal {
                route,
                methods: *methods,
            };
            let mut catch_all = false;
            for seg in &pattern.segments {
                let next = match seg {
                    Segment::Static(s) => match nodes[at].statics.get(s.as_str()) {
                        Some(&n) => n,
                        None => {
                            nodes.push(Node {
                                min_route: usize::MAX,
                                ..Node::default()
                            });
                            let n = nodes.len() - 1;
                            nodes[at].statics.insert(s.as_str().into(), n);
                            n
                        }
                    },
                    Segment::Param(name) => {
                        names.push(name.clone());
                        match nodes[at].param {
                            Some(n) => n,
                            None => {
                                nodes.push(Node {
                                    min_route: usize::MAX,
                                    ..Node::default()
                                });
                                let n = nodes.len() - 1;
                                nodes[at].param = Some(n);
                                n
                            }
                        }
                    }
                    Segment::CatchAll(name) => {
                        names.push(name.clone());
                        nodes[at].catch_alls.push(terminal);
                        catch_all = true;
                        break;
                    }
                };
                at = next;
                nodes[at].min_route = nodes[at].min_route.min(route);
            }
            if !catch_all {
                nodes[at].ends.push(terminal);
            }
            params[route] = names;
        }
        RouteTable { nodes, params }
    }

    pub fn lookup<'p>(&'p self, method: &Method, path: &'p NormalizedPath) -> Lookup<'p> {
        let path = path.as_str();
        // Segments of "/a/b/" are ["a", "b", ""]; of "/" it is [""] → treat as no segment.
        let segs: Vec<&'p str> = if path == "/" {
            Vec::new()
        } else {
            path[1..].split('/').collect()
        };
        let mut search = Search {
            table: self,
            method,
            segs: &segs,
            path,
            best: None,
            allow: MethodSet::EMPTY,
            captured: Vec::with_capacity(4),
            best_params: Vec::new(),
        };
        search.visit(0, 0);
        match search.best {
            Some(route) => {
                let names = &self.params[route];
                let params = names
                    .iter()
                    .map(String::as_str)
                    .zip(search.best_params)
                    .collect();
                Lookup::Found(RouteMatch { route, params })
            }
            None if !search.allow.is_empty() => Lookup::MethodNotAllowed(search.allow),
            None => Lookup::NotFound,
        }
    }
}

struct Search<'t, 'p> {
    table: &'t RouteTable,
    method: &'t Method,
    segs: &'t [&'p str],
    path: &'p str,
    best: Option<usize>,
    allow: MethodSet,
    captured: Vec<&'p str>,
    best_params: Vec<&'p str>,
}

impl<'p> Search<'_, 'p> {
    fn offer(&mut self, t: Terminal, extra: Option<&'p str>) {
        if self.best.is_some_and(|b| b <= t.route) {
            return;
        }
        if t.methods.contains(self.method) {
            self.best = Some(t.route);
            self.best_params.clear();
            self.best_params.extend_from_slice(&self.captured);
            self.best_params.extend(extra);
        } else {
            self.allow = self.allow.union(t.methods);
        }
    }

    fn visit(&mut self, node: usize, depth: usize) {
        let n = &self.table.nodes[node];
        if self.best.is_some_and(|b| b <= n.min_route) {
            return;
        }
        if depth < self.segs.len() {
            // The rest of the path from this segment on, for catch-alls.
            let offset = self.segs[depth].as_ptr() as usize - self.path.as_ptr() as usize;
            let rest = &self.path[offset..];
            if !rest.is_empty() {
                for i in 0..n.catch_alls.len() {
                    let t = self.table.nodes[node].catch_alls[i];
                    self.offer(t, Some(rest));
                }
            }
        } else {
            for i in 0..n.ends.len() {
                let t = self.table.nodes[node].ends[i];
                self.offer(t, None);
            }
            return;
        }
        let seg = self.segs[depth];
        if let Some(&child) = n.statics.get(seg) {
            self.visit(child, depth + 1);
        }
        if let Some(child) = self.table.nodes[node].param
            && !seg.is_empty()
        {
            self.captured.push(seg);
            self.visit(child, depth + 1);
            self.captured.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::normalize;

    fn table(routes: &[(&str, Option<&[&str]>)]) -> RouteTable {
        let compiled: Vec<_> = routes
            .iter()
            .map(|(p, m)| {
                let methods = match m {
                    Some(list) => {
                        MethodSet::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                            .unwrap()
                    }
                    None => MethodSet::ALL,
                };
                (Pattern::parse(p).unwrap(), methods)
            })
            .collect();
        RouteTable::build(&compiled)
    }

    fn find(t: &RouteTable, m: Method, path: &str) -> Option<(usize, Vec<(String, String)>)> {
        let p = normalize(path).unwrap();
        match t.lookup(&m, &p) {
            Lookup::Found(r) => Some((
                r.route,
                r.params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )),
            _ => None,
        }
    }

    #[test]
    fn first_match_in_file_order_wins_over_specificity() {
        let t = table(&[("/orgs/{org}/repos", None), ("/orgs/acme/repos", None)]);
        assert_eq!(find(&t, Method::GET, "/orgs/acme/repos").unwrap().0, 0);
        let t = table(&[("/orgs/acme/repos", None), ("/orgs/{org}/repos", None)]);
        assert_eq!(find(&t, Method::GET, "/orgs/acme/repos").unwrap().0, 0);
        assert_eq!(find(&t, Method::GET, "/orgs/other/repos").unwrap().0, 1);
    }

    #[test]
    fn a_catch_all_after_specific_routes_only_gets_the_rest() {
        let t = table(&[
            ("/health", None),
            ("/admin/{*rest}", None),
            ("/{*all}", None),
        ]);
        assert_eq!(find(&t, Method::GET, "/health").unwrap().0, 0);
        let (r, params) = find(&t, Method::GET, "/admin/users/7").unwrap();
        assert_eq!(r, 1);
        assert_eq!(params, vec![("rest".to_string(), "users/7".to_string())]);
        assert_eq!(find(&t, Method::GET, "/admin").unwrap().0, 2);
        assert_eq!(find(&t, Method::GET, "/x/y").unwrap().0, 2);
    }

    #[test]
    fn parameters_are_captured_by_name() {
        let t = table(&[("/orgs/{org}/repos/{repo}", None)]);
        let (_, params) = find(&t, Method::GET, "/orgs/acme/repos/web").unwrap();
        assert_eq!(
            params,
            vec![
                ("org".to_string(), "acme".to_string()),
                ("repo".to_string(), "web".to_string())
            ]
        );
    }

    #[test]
    fn parameters_never_match_an_empty_segment_and_slashes_are_distinct() {
        let t = table(&[("/a/{x}", None), ("/b", None)]);
        assert!(find(&t, Method::GET, "/a/").is_none());
        assert!(find(&t, Method::GET, "/b/").is_none());
        assert!(find(&t, Method::GET, "/a").is_none());
    }

    #[test]
    fn methods_select_among_routes_with_the_same_path() {
        let t = table(&[("/r", Some(&["GET"])), ("/r", Some(&["POST"]))]);
        assert_eq!(find(&t, Method::GET, "/r").unwrap().0, 0);
        assert_eq!(find(&t, Method::HEAD, "/r").unwrap().0, 0);
        assert_eq!(find(&t, Method::POST, "/r").unwrap().0, 1);
    }

    #[test]
    fn a_path_known_with_other_methods_is_method_not_allowed_with_their_union() {
        let t = table(&[("/r", Some(&["GET"])), ("/{x}", Some(&["PUT"]))]);
        let p = normalize("/r").unwrap();
        match t.lookup(&Method::DELETE, &p) {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow.allow_header(), "GET, HEAD, PUT"),
            other => panic!("{other:?}"),
        }
        let p = normalize("/nothing/here").unwrap();
        assert_eq!(t.lookup(&Method::GET, &p), Lookup::NotFound);
    }

    #[test]
    fn the_root_path_matches_only_the_root_pattern() {
        let t = table(&[("/", None), ("/{*all}", None)]);
        assert_eq!(find(&t, Method::GET, "/").unwrap().0, 0);
        assert_eq!(find(&t, Method::GET, "/x").unwrap().0, 1);
    }

    #[test]
    fn ten_thousand_routes_still_find_the_right_one() {
        let patterns: Vec<String> = (0..10_000)
            .map(|i| format!("/svc{i}/items/{{id}}"))
            .collect();
        let routes: Vec<_> = patterns.iter().map(|p| (p.as_str(), None)).collect();
        let t = table(&routes);
        assert_eq!(find(&t, Method::GET, "/svc9999/items/4").unwrap().0, 9999);
        assert!(find(&t, Method::GET, "/svc10000/items/4").is_none());
    }
}
