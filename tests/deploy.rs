//! What ships for operators, checked by the tools they use: the Kubernetes manifests against
//! Kubernetes' schemas (`kubernetes-validate`, from PyPI), the alert rules with `promtool`
//! (Debian's prometheus package), and every metric the Grafana dashboard and the alerts
//! query against a live `/metrics`.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool from PATH or `target/tools/bin`, installed by `scripts/test-tools` when missing.
fn tool(name: &str) -> PathBuf {
    support::tools::need(name)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_kubernetes_manifests_pass_kubernetes_schemas_and_the_configmap_passes_check() {
    let dir = root().join("deploy/kubernetes");
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    let resources: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(resources, files, "kustomization.yaml lists every manifest");
    let validate = tool("kubernetes-validate");
    for r in &resources {
        let out = run(Command::new(&validate).arg("--strict").arg(dir.join(r)));
        assert!(out.contains("passed"), "{r}: {out}");
    }
    // The configuration in the ConfigMap is a valid scopegate configuration.
    let config = yaml(&dir.join("configmap.yaml"))["data"]["scopegate.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let file = std::env::temp_dir().join(format!("scopegate-configmap-{}.yaml", free_port()));
    std::fs::write(&file, config).unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["check", "--config"])
        .arg(&file));
    assert!(out.contains(": ok ("), "{out}");
    // Probes, security and scraping, as the README promises.
    let deployment = yaml(&dir.join("deployment.yaml"));
    let pod = &deployment["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "9901");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool = tool("promtool");
    let dir = root().join("deploy/prometheus");
    run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(dir.join("alerts.yaml")));
    let out = run(Command::new(&promtool)
        .args(["test", "rules"])
        .arg(dir.join("alerts.test.yaml")));
    assert!(out.contains("SUCCESS"), "{out}");
}

/// `scopegate_…` metric names in `text` (histogram series named by their family).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("scopegate_") {
        let start = i + at;
        let end = bytes[start..]
            .iter()
            .position(|b| !(b.is_ascii_lowercase() || *b == b'_' || b.is_ascii_digit()))
            .map_or(text.len(), |n| start + n);
        let name = &text[start..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(family.to_string());
        i = end;
    }
    names
}

#[test]
fn every_metric_the_dashboard_and_the_alerts_query_is_on_a_live_metrics_endpoint() {
    let dashboard = std::fs::read_to_string(root().join("deploy/grafana/scopegate.json")).unwrap();
    let parsed: Value = serde_json::from_str(&dashboard).unwrap();
    let exprs: String = parsed["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let alerts = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yaml")).unwrap();
    let mut wanted = metric_names(&exprs);
    wanted.extend(metric_names(&alerts));

    // A gateway that does everything the dashboard shows once.
    let legacy = "legacy-key-for-the-dashboard";
    let digest: String = scopegate::token::hash(legacy)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let policies = std::env::temp_dir().join(format!("scopegate-orgs-{}.yaml", free_port()));
    std::fs::write(&policies, "acme: { restrict_third_party_apps: false }\n").unwrap();
    let decision = format!("127.0.0.1:{}", free_port());
    let redis = support::redis::Redis::start();
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let tx = scopegate::dev::DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
    let jwks = JsonServer::start(tx.jwks());
    let yaml = Template::corp(&[API, OPAQUE_API])
        .issuer("introspection: { client_id: gateway, client_secret: gateway-secret }")
        .section(&format!("decision:\n  listen: \"{decision}\""))
        .section(&format!(
            "cluster:\n  redis: \"{}\"\n  hmac_key: \"deploy-test-key-0123456789abcdef0123\"\n  key_prefix: \"deploy:\"",
            redis.url
        ))
        .section(&format!(
            "organization_policy:\n  source:\n    file: {}",
            policies.display()
        ))
        .section(
            "tokens:\n  revocation:\n    push:\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{jwks}\"\n      audience: \"https://gateway.scopegate.test\"\n    poll:\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{jwks}\"\n      audience: \"https://gateway.scopegate.test\"\n      endpoint: \"http://127.0.0.1:9/poll\"",
        )
        .section(&format!(
            "credentials:\n  - {{ id: old, header: X-API-Key, sha256: {digest}, subject: s, scopes: [repo], not_after: 2020-01-01T00:00:00Z }}"
        ))
        .routes(
            "  - name: repos\n    match: { path: \"/orgs/{org}/repos\" }\n    upstream: api\n    require: { scopes: repo, org: { param: org } }",
        );
    let yaml = config(&yaml.yaml(), &auth, &upstream).replace("{jwks}", &jwks.url);
    let gw = TestGateway::start(&yaml);
    let jwt = auth.user_token("alice", "full", "repo", API);
    let opaque = auth.user_token("alice", "full", "repo", OPAQUE_API);
    let read_org = auth.user_token("alice", "full", "read:org", API);
    let url = format!("{}/orgs/acme/repos", gw.url);
    for t in [&jwt, &jwt, &opaque, &read_org] {
        get(&url, Some(t));
    }
    reqwest::blocking::Client::new()
        .get(&url)
        .header("x-api-key", legacy)
        .send()
        .unwrap();
    reqwest::blocking::Client::new()
        .get(format!("http://{decision}/nginx"))
        .header("x-original-uri", "/orgs/acme/repos")
        .header("x-original-method", "GET")
        .bearer_auth(&jwt)
        .send()
        .unwrap();
    let now = scopegate::clock::unix_now();
    let set = tx.sign(
        "secevent+jwt",
        &serde_json::json!({"iss": TRANSMITTER, "aud": GATEWAY_AUD, "iat": now, "jti": "dash-1",
            "events": {"https://schemas.openid.net/secevent/risc/event-type/sessions-revoked":
            {"subject": {"format": "iss_sub", "iss": auth.url, "sub": "nobody"}}}}),
    );
    assert_eq!(gw.push_set(&set).0, 202);

    let live = gw.metrics();
    let exposed: BTreeSet<String> = live
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = wanted.difference(&exposed).collect();
    assert!(
        missing.is_empty(),
        "queried but not on /metrics: {missing:?}\n{live}"
    );
    assert!(wanted.len() >= 14, "{wanted:?}");
    let _ = std::fs::remove_file(&policies);
}
