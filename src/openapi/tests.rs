use super::*;

const DOC: &str = r#"
openapi: 3.1.0
info: { title: Pets, version: "2.0" }
servers: [{ url: "https://api.example.com/v2/" }]
security: [{ oauth: [pets.read] }]
components:
  securitySchemes:
    oauth: { type: oauth2, flows: {} }
    key: { type: apiKey, in: header, name: X-Key }
paths:
  /pets:
    get: { operationId: listPets }
    post:
      operationId: createPet
      security: [{ oauth: [pets.write] }, { oauth: [admin], key: [] }]
  /pets/{pet-id}:
    get: { operationId: getPet, security: [{ oauth: [pets.read, pets.extra] }] }
  /pets/mine:
    get: { operationId: myPets, security: [{ key: [] }] }
  /pets/{id}:cancel:
    post: { operationId: cancelPet, security: [{ oauth: [pets.write] }] }
  /pets/{id}:undo:
    post: { operationId: undoPet, security: [{ oauth: [admin] }] }
  /health:
    get: { operationId: health, security: [] }
  /maybe:
    get: { operationId: maybe, security: [{}, { oauth: [pets.read] }] }
"#;

fn op<'a>(spec: &'a Spec, id: &str) -> &'a Operation {
    spec.operations
        .iter()
        .find(|o| o.operation_id.as_deref() == Some(id))
        .unwrap()
}

fn scope(s: &str) -> Expr {
    Expr::Scope(s.into())
}

#[test]
fn security_requirements_become_scope_expressions_and_paths_patterns() {
    let spec = read(DOC).unwrap();
    assert_eq!(spec.operations.len(), 8);
    let list = op(&spec, "listPets");
    assert_eq!(list.pattern, "/v2/pets", "the server's base path first");
    assert_eq!(list.requirement, Requirement::Token(scope("pets.read")));
    // Alternatives are `any`; one object's schemes are all needed (an API key adds none).
    assert_eq!(
        op(&spec, "createPet").requirement,
        Requirement::Token(Expr::Any(vec![scope("pets.write"), scope("admin")]))
    );
    assert_eq!(
        op(&spec, "getPet").requirement,
        Requirement::Token(Expr::All(vec![scope("pets.read"), scope("pets.extra")]))
    );
    assert_eq!(op(&spec, "getPet").pattern, "/v2/pets/{pet_id}");
    assert_eq!(
        op(&spec, "myPets").requirement,
        Requirement::Token(Expr::NONE)
    );
    assert_eq!(op(&spec, "health").requirement, Requirement::Public);
    assert_eq!(op(&spec, "maybe").requirement, Requirement::Public);
    let cancel = op(&spec, "cancelPet");
    assert_eq!(
        (cancel.pattern.as_str(), cancel.widened),
        ("/v2/pets/{id}", true)
    );
}

#[test]
fn the_routes_parse_as_configuration_most_specific_first_and_serve_every_operation() {
    let spec = read(DOC).unwrap();
    let routes = routes_yaml(&spec, "api", "pets.yaml");
    assert!(routes.contains("8 operations as 7 routes"), "{routes}");
    // `/pets/mine` before `/pets/{pet_id}`: the first route in file order wins.
    let mine = routes.find("\"myPets\"").unwrap();
    let get_pet = routes.find("\"getPet\"").unwrap();
    assert!(mine < get_pet, "{routes}");
    // Two operations on one route need what each needs.
    assert!(
        routes.contains("require: { scopes: { all: [\"pets.write\", \"admin\"] } }"),
        "{routes}"
    );
    assert!(routes.contains("# from POST /v2/pets/{id}:cancel, POST /v2/pets/{id}:undo"));
    let config = format!(
        "server: {{ listen: 127.0.0.1:1 }}\nissuers: [{{ id: a, issuer: https://a, audiences: [x] }}]\nupstreams: {{ api: {{ url: http://127.0.0.1:2 }} }}\n{routes}"
    );
    let compiled = crate::compile::from_text(&config, "imported").unwrap();
    let c = compare(&spec, &compiled.rules);
    assert_eq!(c.operations, 8);
    assert!(c.unrouted.is_empty(), "{:?}", c.unrouted);
    assert!(c.unused.is_empty(), "{:?}", c.unused);
}

#[test]
fn a_comparison_names_operations_without_a_route_and_routes_without_an_operation() {
    let spec = read(DOC).unwrap();
    let config = "server: { listen: 127.0.0.1:1 }\nupstreams: { api: { url: http://127.0.0.1:2 } }\nroutes:\n  - { name: pets, match: { methods: [GET], path: /v2/pets }, upstream: api, auth: none }\n  - { name: stale, match: { path: /v1/old }, upstream: api, auth: none }\n";
    let compiled = crate::compile::from_text(config, "t").unwrap();
    let c = compare(&spec, &compiled.rules);
    assert_eq!(c.unrouted.len(), 7, "{:?}", c.unrouted);
    assert!(
        c.unrouted
            .contains(&"POST /v2/pets (createPet)".to_string())
    );
    assert_eq!(c.unused, vec!["stale".to_string()]);
}

#[test]
fn swagger_2_and_other_documents_are_refused_with_a_reason() {
    assert!(
        read("{\"swagger\": \"2.0\", \"paths\": {}}")
            .unwrap_err()
            .contains("convert it to OpenAPI 3")
    );
    assert!(read("title: x").unwrap_err().contains("not an OpenAPI 3"));
}
