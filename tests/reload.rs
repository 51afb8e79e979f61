//! Configuration reload on SIGHUP and on a change of the file (also a Kubernetes-style symlink
//! swap): a good file is put in force without a restart and without forgetting what the
//! gateway learnt (revocations, keys); a bad one is refused and the configuration in force
//! keeps serving.

mod support;

use serde_json::json;
use support::*;

type World = PushWorld;

fn world() -> World {
    PushWorld::start()
}

fn status(w: &World, token: &str) -> u16 {
    get(&format!("{}/orgs/acme/repos", w.gw.url), Some(token))
        .status()
        .as_u16()
}

fn reloads(w: &World, result: &str) -> bool {
    w.gw.metrics().contains(&format!(
        "scopegate_config_reloads_total{{result=\"{result}\"}} 1"
    ))
}

#[test]
fn sighup_puts_a_changed_configuration_in_force_and_keeps_the_revocations() {
    let w = world();
    let repo = w.auth.client_token("full", "repo", API);
    let read_org = w.auth.client_token("full", "read:org", API);
    let bot = w.auth.client_token("bot", "chat.bot", API);
    assert_eq!(status(&w, &repo), 200);
    assert_eq!(status(&w, &read_org), 403);
    // The `bot` client is uninstalled before the reload.
    let now = scopegate::clock::unix_now();
    let set = w.tx.sign(
        "secevent+jwt",
        &json!({"iss": TRANSMITTER, "aud": GATEWAY_AUD, "iat": now, "jti": "uninstall",
            "events": {"https://schemas.openid.net/secevent/risc/event-type/sessions-revoked":
            {"subject": {"format": "client_id", "iss": w.auth.url, "client_id": "bot"}}}}),
    );
    assert_eq!(w.gw.push_set(&set).0, 202);
    assert_eq!(status(&w, &bot), 401);

    // The route now accepts read:org too.
    w.gw.rewrite_config(
        &w.yaml
            .replace("any: [repo, chat.bot]", "any: [repo, chat.bot, read:org]"),
    );
    w.gw.reload();
    eventually("the new configuration in force", || {
        status(&w, &read_org) == 200
    });
    assert!(reloads(&w, "ok"), "{}", w.gw.metrics());
    assert_eq!(status(&w, &repo), 200);
    assert_eq!(status(&w, &bot), 401, "the reload forgot a revocation");
    // The keys were kept: /readyz never went back to waiting.
    let ready = reqwest::blocking::get(format!("{}/readyz", w.gw.admin)).unwrap();
    assert_eq!(ready.status(), 200);
}

#[test]
fn a_bad_configuration_on_sighup_is_refused_and_the_previous_one_keeps_serving() {
    let w = world();
    let repo = w.auth.client_token("full", "repo", API);
    let read_org = w.auth.client_token("full", "read:org", API);

    // An unknown key: the file does not parse.
    w.gw.rewrite_config(
        &w.yaml
            .replace("    upstream: api\n", "    upstreamz: api\n"),
    );
    w.gw.reload();
    eventually("the refused reload", || reloads(&w, "error"));
    assert_eq!(status(&w, &repo), 200);
    assert_eq!(status(&w, &read_org), 403);

    // A valid file that moves the listener needs a restart: refused as well.
    let moved = w
        .yaml
        .replace(
            &w.gw.addr.to_string(),
            &format!("127.0.0.1:{}", free_port()),
        )
        .replace("any: [repo, chat.bot]", "any: [repo, chat.bot, read:org]");
    w.gw.rewrite_config(&moved);
    w.gw.reload();
    eventually("the second refused reload", || {
        w.gw.metrics()
            .contains("scopegate_config_reloads_total{result=\"error\"} 2")
    });
    assert_eq!(status(&w, &read_org), 403);
}

/// A revocation that arrives while the next configuration gets ready (here: waiting for a
/// slow organization policy source) is in force after the swap: the process has one
/// revocation index, not one per configuration.
#[test]
fn a_revocation_pushed_during_a_reload_survives_the_swap() {
    let w = world();
    let repo = w.auth.client_token("full", "repo", API);
    assert_eq!(status(&w, &repo), 200);
    let (slow, _slow_rt) = serve(|_req| async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        http::Response::new(http_body_util::Full::new(bytes::Bytes::from("{}")))
    });
    w.gw.rewrite_config(&format!(
        "{}organization_policy:\n  source: {{ url: \"http://{slow}/orgs.json\" }}\n",
        w.yaml
    ));
    w.gw.reload();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        !reloads(&w, "ok"),
        "the next configuration is still getting ready"
    );
    let now = scopegate::clock::unix_now();
    let set = w.tx.sign(
        "secevent+jwt",
        &json!({"iss": TRANSMITTER, "aud": GATEWAY_AUD, "iat": now, "jti": "during-reload",
            "events": {"https://schemas.openid.net/secevent/risc/event-type/sessions-revoked":
            {"subject": {"format": "client_id", "iss": w.auth.url, "client_id": "full"}}}}),
    );
    assert_eq!(w.gw.push_set(&set).0, 202);
    assert_eq!(status(&w, &repo), 401);
    eventually("the reload done", || reloads(&w, "ok"));
    assert_eq!(status(&w, &repo), 401, "the swap forgot a revocation");
}

#[test]
fn a_configmap_symlink_swap_is_put_in_force_and_a_bad_one_keeps_the_previous() {
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let version = |scope: &str| {
        let t = Template::corp(&[API])
            .server("reload: { check_every: 200ms }")
            .routes(&format!(
                "  - name: repos\n    match: {{ path: \"/orgs/{{org}}/repos\" }}\n    upstream: api\n    require: {{ scopes: {scope} }}"
            ))
            .yaml()
            .replace("{listen}", "${SCOPEGATE_LISTEN}")
            .replace("{admin}", "${SCOPEGATE_ADMIN_LISTEN}");
        config(&t, &auth, &upstream)
    };
    // A ConfigMap as the kubelet mounts it: scopegate.yaml -> ..data/scopegate.yaml,
    // ..data -> ..<timestamp>/, swapped by renaming a new ..data link over the old one.
    let dir = std::env::temp_dir().join(format!("scopegate-configmap-{}", free_port()));
    let publish = |name: &str, yaml: &str| {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("scopegate.yaml"), yaml).unwrap();
        let tmp = dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
    };
    publish("..2026_12_03_v1", &version("repo"));
    std::os::unix::fs::symlink("..data/scopegate.yaml", dir.join("scopegate.yaml")).unwrap();
    let gw = TestGateway::start_file(dir.join("scopegate.yaml").to_str().unwrap(), &[]);
    let read_org = auth.client_token("full", "read:org", API);
    let status = |t: &str| get(&format!("{}/orgs/acme/repos", gw.url), Some(t)).status();
    assert_eq!(status(&read_org), 403);

    publish("..2026_12_03_v2", &version("read:org"));
    eventually("the swapped configuration in force", || {
        status(&read_org) == 200
    });
    let counted = |result: &str| {
        gw.metrics().contains(&format!(
            "scopegate_config_reloads_total{{result=\"{result}\"}} 1"
        ))
    };
    assert!(counted("ok"), "{}", gw.metrics());

    publish("..2026_12_03_v3", "server: [this is not a configuration\n");
    eventually("the bad swap refused and counted", || counted("error"));
    assert_eq!(
        status(&read_org),
        200,
        "the previous configuration keeps serving"
    );
    assert!(counted("ok"), "one good reload only: {}", gw.metrics());
    let _ = std::fs::remove_dir_all(&dir);
}
