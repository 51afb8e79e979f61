//! The configuration's JSON Schema and reference page, as committed, are what the code
//! generates (regenerate with `scopegate schema > docs/scopegate.schema.json` and
//! `scopegate schema --markdown > docs/configuration.md`), every key has an example, and the
//! shipped configurations are read by the same types the schema describes.

use scopegate::config::reference;

fn committed(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_default()
}

#[test]
fn the_committed_json_schema_is_the_one_the_code_generates() {
    assert!(
        committed("scopegate.schema.json") == reference::schema_text(),
        "docs/scopegate.schema.json is stale: run `cargo run -- schema > docs/scopegate.schema.json`"
    );
}

#[test]
fn the_reference_page_is_generated_and_every_key_has_an_example() {
    assert_eq!(
        reference::keys_without_example(),
        Vec::<String>::new(),
        "keys with neither a default nor an example in config/reference.rs"
    );
    assert!(
        committed("configuration.md") == reference::markdown(),
        "docs/configuration.md is stale: run `cargo run -- schema --markdown > docs/configuration.md`"
    );
}

#[test]
fn the_schema_names_every_top_level_section_and_refuses_unknown_keys() {
    let schema = reference::schema();
    let properties = schema["properties"].as_object().unwrap();
    for section in [
        "server",
        "admin",
        "issuers",
        "tokens",
        "upstreams",
        "routes",
        "protected_resources",
        "decision",
        "cluster",
    ] {
        assert!(properties.contains_key(section), "{section}");
    }
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["required"],
        serde_json::json!(["server", "upstreams", "routes"])
    );
}
