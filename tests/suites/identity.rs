//! Tokens from a real identity provider: the npm `oidc-provider` package (a certified OpenID
//! Provider), started here on 127.0.0.1 with client credentials, authorization code + PKCE and
//! dynamic registration (`tests/clients/oidc_provider.mjs`). The gateway finds its keys by OIDC
//! discovery, maps its `groups` claim to roles, follows key rotation, keeps verifying when the
//! provider is gone, and cannot be made to hammer it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{client, free_port, npm_dir, DbKind, TestDb, TestGateway};

/// The gateway's identifier, the audience its tokens must name (RFC 8707 resource).
const RESOURCE: &str = "http://127.0.0.1/mcp-gateway-under-test";

/// One running `oidc-provider`, killed on drop.
struct Idp {
    child: std::process::Child,
    issuer: String,
}

impl Idp {
    /// Start the provider on `port` signing with the first of `kids` (keys kept in `keys`).
    /// `None` (skipped) outside CI when the package is not installed.
    async fn start(port: u16, keys: &Path, kids: &str) -> Option<Self> {
        Self::start_for(port, keys, kids, RESOURCE).await
    }

    /// [`Idp::start`] issuing access tokens for `resource` when a client names none.
    async fn start_for(port: u16, keys: &Path, kids: &str, resource: &str) -> Option<Self> {
        Self::start_with(port, keys, kids, resource, None).await
    }

    /// [`Idp::start_for`], with the gateway's console registered as a public client redirecting
    /// to `console`.
    async fn start_with(port: u16, keys: &Path, kids: &str, resource: &str, console: Option<&str>) -> Option<Self> {
        let dir = npm_dir();
        let node = dir.join("node_modules/.bin/node");
        if !dir.join("node_modules/oidc-provider").is_dir() || !node.is_file() {
            assert!(std::env::var_os("CI").is_none(), "CI must install oidc-provider (see .ci/run)");
            eprintln!("oidc-provider is not installed under {}: skipping", dir.display());
            return None;
        }
        let script = dir.join("oidc_provider.mjs");
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oidc_provider.mjs"), &script).unwrap();
        let mut command = std::process::Command::new(node);
        if let Some(redirect) = console {
            command.env("CONSOLE_REDIRECT_URI", redirect);
        }
        let child = command
            .arg(&script)
            .args([&port.to_string(), &keys.display().to_string(), kids, resource])
            .stdout(std::process::Stdio::null())
            .stderr(if std::env::var_os("OIDC_DEBUG").is_some() {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::null()
            })
            .spawn()
            .unwrap();
        let idp = Self { child, issuer: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while idp.stats().await.is_none() {
            assert!(Instant::now() < deadline, "oidc-provider did not start");
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        Some(idp)
    }

    /// An access token by the client credentials grant, for `resource`.
    async fn token(&self, resource: &str) -> String {
        let mut resp = client()
            .post(format!("{}/token", self.issuer))
            .basic_auth("svc-client", "svc-secret-for-tests-only-0123456789")
            .send_form(&[("grant_type", "client_credentials"), ("scope", "mcp:tools"), ("resource", resource)])
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_owned()
    }

    /// What the provider counted (`jwks`, `discovery`, `token` requests).
    async fn stats(&self) -> Option<Value> {
        let mut resp = client().get(format!("{}/__stats", self.issuer)).send().await.ok()?;
        resp.json().await.ok()
    }

    async fn jwks_requests(&self) -> u64 {
        self.stats().await.unwrap()["jwks"].as_u64().unwrap()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `IDENTITY_PROVIDERS_FILE` trusting `issuer`, its `groups` mapped to gateway roles.
fn providers_file(dir: &Path, issuer: &str) -> String {
    let file = dir.join("providers.yaml");
    std::fs::write(
        &file,
        format!(
            "providers:\n- issuer: {issuer}\n  audiences: [{RESOURCE}]\n  roles_claims: [groups]\n  \
             role_map: {{ g-developers: [developer], g-admins: [admin] }}\n  subject_prefix: \"idp:\"\n"
        ),
    )
    .unwrap();
    file.display().to_string()
}

/// A gateway builder with an `echo` tool at `backend`, trusting `issuer` through
/// [`providers_file`] written in `conf`.
fn trusting<'a>(
    db: &'a TestDb,
    backend: &crate::common::backend::TestBackend,
    conf: &Path,
    issuer: &str,
) -> crate::common::GatewayBuilder<'a> {
    TestGateway::builder(db).tool("echo", &backend.url).var("IDENTITY_PROVIDERS_FILE", &providers_file(conf, issuer))
}

/// The same token with another `kid` in its header (its signature no longer matters: the
/// gateway must look the key up first).
fn with_kid(token: &str, kid: &str) -> String {
    use base64::Engine;
    let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": kid }).to_string();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
    let rest = token.split_once('.').unwrap().1;
    format!("{header}.{rest}")
}

async fn health(gw: &TestGateway) -> Value {
    let (_, body) = gw.get("/health/actors", Some(&gw.token("ops", &["operator"]))).await;
    body["identity_providers"][0].clone()
}

/// A token from the provider is accepted and its groups become roles; the attack: tokens for
/// another audience, from an untrusted provider using the same `kid`, or with a made-up `kid`
/// are refused — and the audit row names the provider's subject.
async fn provider_tokens_verify_and_groups_map_to_roles(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let keys = tempfile::tempdir().unwrap();
    let Some(idp) = Idp::start(free_port(), keys.path(), "k1").await else { return };
    let other_keys = tempfile::tempdir().unwrap();
    let Some(stranger) = Idp::start(free_port(), other_keys.path(), "k1").await else { return };
    let backend = crate::common::backend::TestBackend::start(crate::common::backend::Mode::Echo).await;
    let conf = tempfile::tempdir().unwrap();
    let gw = trusting(&db, &backend, conf.path(), &idp.issuer).var("JWKS_REFETCH_SECONDS", "1").start().await;
    let token = idp.token(RESOURCE).await;
    let (status, body) = gw.invoke(&token, "echo", json!({ "x": 1 })).await;
    assert_eq!(status, 200, "{body}");
    // g-developers → developer: may call echo; nothing maps to admin for this client.
    let (status, _) = gw.get("/health/actors", Some(&token)).await;
    assert_eq!(status, 403);
    for (what, refused) in [
        ("another audience", idp.token("http://127.0.0.1/some-other-api").await),
        ("an untrusted issuer with the same kid", stranger.token(RESOURCE).await),
        ("a made-up kid", with_kid(&token, "made-up")),
    ] {
        let (status, body) = gw.invoke(&refused, "echo", json!({})).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(!body.to_string().contains("made-up"), "nothing of the token is echoed: {body}");
    }
    let report = health(&gw).await;
    assert_eq!((report["keys"].as_u64(), report["stale"].as_bool()), (Some(1), Some(false)), "{report}");
    // The policy explanation says which claim produced which role.
    let mut resp = client()
        .post(format!("{}/admin/policy/explain", gw.base))
        .bearer_auth(gw.token("root", &["admin"]))
        .send_json(&json!({ "token": token, "tool_name": "echo" }))
        .await
        .unwrap();
    let explained: Value = resp.json().await.unwrap();
    assert_eq!(explained["allowed"], true, "{explained}");
    assert_eq!(explained["subject"]["sub"], "idp:svc-client");
    assert_eq!(explained["subject"]["roles_from"], json!([{ "role": "developer", "claim": "groups: g-developers" }]));
    gw.stop().await;
    let rows = db.wait_for_rows(6).await;
    let allowed: Vec<_> = rows.iter().filter(|r| r.http_status == 200 && r.transport == "rest").collect();
    assert_eq!(allowed.len(), 1, "{rows:?}");
    assert_eq!(allowed[0].user_id.as_deref(), Some("idp:svc-client"));
    db.drop_db().await;
}

crate::common::on_both_databases!(provider_tokens_verify_and_groups_map_to_roles => provider_tokens_verify_and_groups_map_to_roles);

/// Key rotation: the provider publishes a new signing key; the first token naming it makes the
/// gateway fetch the keys once, and tokens signed with the old key still verify. Then the
/// provider goes away: the keys in hand keep verifying, and health says they are stale.
#[actix_web::test]
async fn key_rotation_and_a_provider_that_goes_away() {
    let db = TestDb::sqlite().await;
    let keys = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(idp) = Idp::start(port, keys.path(), "k1").await else { return };
    let backend = crate::common::backend::TestBackend::start(crate::common::backend::Mode::Echo).await;
    let conf = tempfile::tempdir().unwrap();
    let gw = trusting(&db, &backend, conf.path(), &idp.issuer).var("JWKS_REFETCH_SECONDS", "1").start().await;
    let old = idp.token(RESOURCE).await;
    assert_eq!(gw.invoke(&old, "echo", json!({})).await.0, 200);
    let old_unused = idp.token(RESOURCE).await;
    drop(idp);
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let Some(idp) = Idp::start(port, keys.path(), "k2,k1").await else { return };
    let before = idp.jwks_requests().await;
    let new = idp.token(RESOURCE).await;
    assert!(new != old);
    let (status, body) = gw.invoke(&new, "echo", json!({})).await;
    assert_eq!(status, 200, "a token signed with the new key: {body}");
    assert_eq!(idp.jwks_requests().await - before, 1, "the new kid was fetched once");
    assert_eq!(gw.invoke(&old_unused, "echo", json!({})).await.0, 200, "the old key still verifies");
    let report = health(&gw).await;
    assert_eq!(report["keys"].as_u64(), Some(2), "{report}");

    // The attack after a key leaked: the provider withdraws k1 (publishes k3 alone). Once the
    // gateway holds the new set, a k1 token it had already verified stops working too.
    drop(idp);
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let Some(idp) = Idp::start(port, keys.path(), "k3").await else { return };
    let newest = idp.token(RESOURCE).await;
    assert_eq!(gw.invoke(&newest, "echo", json!({})).await.0, 200);
    assert_eq!(gw.invoke(&old, "echo", json!({})).await.0, 401, "a cached token of a withdrawn key");
    assert_eq!(gw.invoke(&new, "echo", json!({})).await.0, 401);

    // The provider is gone: a refetch (caused by an unknown kid) fails; the keys stay.
    let newer_unused = idp.token(RESOURCE).await;
    drop(idp);
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(gw.invoke(&with_kid(&newest, "k4"), "echo", json!({})).await.0, 401);
    let report = health(&gw).await;
    assert_eq!((report["stale"].as_bool(), report["keys"].as_u64()), (Some(true), Some(1)), "{report}");
    assert!(report["last_error"].as_str().unwrap_or("").contains("127.0.0.1"), "{report}");
    assert_eq!(gw.invoke(&newer_unused, "echo", json!({})).await.0, 200, "cached keys still verify");
    assert!(gw.metrics().await.contains("mcpgw_identity_provider_keys_stale{issuer=\"http://127.0.0.1:"));
    gw.stop().await;
}

/// The attack: a flood of tokens naming random `kid`s. The gateway refuses each, and asks the
/// provider for its keys at most once per `JWKS_REFETCH_SECONDS`, however many arrive.
#[actix_web::test]
async fn a_flood_of_unknown_kids_cannot_hammer_the_provider() {
    let db = TestDb::sqlite().await;
    let keys = tempfile::tempdir().unwrap();
    let Some(idp) = Idp::start(free_port(), keys.path(), "k1").await else { return };
    let backend = crate::common::backend::TestBackend::start(crate::common::backend::Mode::Echo).await;
    let conf = tempfile::tempdir().unwrap();
    let gw = trusting(&db, &backend, conf.path(), &idp.issuer).var("JWKS_REFETCH_SECONDS", "30").start().await;
    let token = idp.token(RESOURCE).await;
    assert_eq!(gw.invoke(&token, "echo", json!({})).await.0, 200);
    let before = idp.jwks_requests().await;
    let started = Instant::now();
    let calls = (0..300).map(|i| {
        let forged = with_kid(&token, &format!("random-{i}"));
        let gw = &gw;
        async move { gw.invoke(&forged, "echo", json!({})).await.0 }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let made = idp.jwks_requests().await - before;
    assert!(made <= 1, "{made} key-set requests for 300 unknown kids in {:?}", started.elapsed());
    assert_eq!(gw.invoke(&token, "echo", json!({})).await.0, 200, "real tokens still verify");
    gw.stop().await;
}

/// `JWT_ISSUER` alone (no secret, no key file): keys by OIDC discovery, audience from
/// `JWT_AUDIENCE`, roles from `JWT_ROLES_CLAIM` through `JWT_ROLE_MAP`.
#[actix_web::test]
async fn jwt_issuer_alone_discovers_the_keys() {
    let db = TestDb::sqlite().await;
    let keys = tempfile::tempdir().unwrap();
    let Some(idp) = Idp::start(free_port(), keys.path(), "k1").await else { return };
    let backend = crate::common::backend::TestBackend::start(crate::common::backend::Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .var("JWT_SECRET_KEY", "")
        .var("JWT_ISSUER", &idp.issuer)
        .var("JWT_AUDIENCE", RESOURCE)
        .var("JWT_ROLES_CLAIM", "groups")
        .var("JWT_ROLE_MAP", "g-developers:developer")
        .start()
        .await;
    let token = idp.token(RESOURCE).await;
    let (status, body) = gw.invoke(&token, "echo", json!({})).await;
    assert_eq!(status, 200, "{body}");
    // No shared secret is trusted in this mode (nor generated: not dev mode).
    assert_eq!(gw.invoke(&gw.token("dev", &["developer"]), "echo", json!({})).await.0, 401);
    assert_eq!(idp.stats().await.unwrap()["discovery"].as_u64(), Some(1));
    gw.stop().await;
}

/// Step-up: a tool that requires a scope the token lacks answers HTTP 403 with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…", resource_metadata="…"` —
/// over REST and over `/mcp` (not a tool error inside a 200) — and each refusal is audited; a
/// token granting the scope calls it.
async fn a_missing_scope_is_403_insufficient_scope(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let keys = tempfile::tempdir().unwrap();
    let Some(idp) = Idp::start(free_port(), keys.path(), "k1").await else { return };
    let backend = crate::common::backend::TestBackend::start(crate::common::backend::Mode::Echo).await;
    let conf = tempfile::tempdir().unwrap();
    let gw = TestGateway::builder(&db)
        .tool_with("admin_echo", &backend.url, "required_scopes: [mcp:admin]")
        .var("IDENTITY_PROVIDERS_FILE", &providers_file(conf.path(), &idp.issuer))
        .start()
        .await;
    let narrow = idp.token(RESOURCE).await;
    let challenge = |headers: &awc::http::header::HeaderMap| {
        headers.get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    };
    let mut resp = client()
        .post(format!("{}/mcp/invoke", gw.base))
        .bearer_auth(&narrow)
        .send_json(&json!({ "tool_name": "admin_echo", "arguments": {} }))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let said = challenge(resp.headers());
    assert!(
        said.contains("error=\"insufficient_scope\"")
            && said.contains("scope=\"mcp:admin\"")
            && said.contains("resource_metadata=\"http://127.0.0.1:"),
        "{said}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["data"]["kind"], "insufficient_scope", "{body}");
    let sid = gw.mcp_session(&narrow).await;
    let params = json!({ "name": "admin_echo", "arguments": {} });
    let reply =
        crate::common::mcp::post(&gw, Some(&narrow), Some(&sid), &[], crate::common::mcp::rpc(3, "tools/call", params))
            .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert!(challenge(&reply.headers).contains("scope=\"mcp:admin\""));
    assert_eq!(reply.body["id"], 3);
    // The client asks its provider for the scope and retries.
    let mut resp = client()
        .post(format!("{}/token", idp.issuer))
        .basic_auth("svc-client", "svc-secret-for-tests-only-0123456789")
        .send_form(&[("grant_type", "client_credentials"), ("scope", "mcp:tools mcp:admin"), ("resource", RESOURCE)])
        .await
        .unwrap();
    let wide = resp.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let (status, body) = gw.invoke(&wide, "admin_echo", json!({})).await;
    assert_eq!(status, 200, "{body}");
    // The metadata names the provider.
    let (_, meta) = gw.get("/.well-known/oauth-protected-resource/mcp", None).await;
    assert_eq!(meta["authorization_servers"], json!([idp.issuer]), "{meta}");
    gw.stop().await;
    let rows = db.wait_for_rows(3).await;
    let refused = rows.iter().filter(|r| r.status == "insufficient_scope").count();
    assert_eq!(refused, 2, "{rows:?}");
    db.drop_db().await;
}

crate::common::on_both_databases!(a_missing_scope_is_403_insufficient_scope => a_missing_scope_is_403_insufficient_scope);

/// The whole MCP authorization flow with no hand-minted token: the TypeScript SDK's OAuth
/// client, headless, goes from the gateway's 401 to its RFC 9728 metadata, the provider's
/// metadata, dynamic registration, authorization code + PKCE with the gateway as resource, and
/// a token; then lists and calls a tool. The audit row names the provider's subject.
#[actix_web::test]
async fn an_mcp_client_completes_the_oauth_flow_on_its_own() {
    let db = TestDb::sqlite().await;
    let keys = tempfile::tempdir().unwrap();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let idp_port = free_port();
    let dir = npm_dir();
    if !dir.join("node_modules/@modelcontextprotocol/sdk").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI must install the TypeScript SDK (see .ci/run)");
        return;
    }
    // The provider issues tokens for the resource the client names: the gateway's /mcp.
    let Some(idp) = Idp::start_for(idp_port, keys.path(), "k1", &format!("{public}/mcp")).await else { return };
    let backend = crate::common::backend::TestBackend::start(crate::common::backend::Mode::Echo).await;
    let conf = tempfile::tempdir().unwrap();
    let file = conf.path().join("providers.yaml");
    std::fs::write(
        &file,
        format!(
            "providers:\n- issuer: {}\n  roles_claims: [groups]\n  role_map: {{ g-developers: [developer] }}\n  \
             scopes_supported: [mcp:tools]\n  subject_prefix: \"idp:\"\n",
            idp.issuer
        ),
    )
    .unwrap();
    let gw = TestGateway::builder(&db)
        .port(port)
        .tool("echo", &backend.url)
        .var("PUBLIC_URL", &public)
        .var("IDENTITY_PROVIDERS_FILE", &file.display().to_string())
        .start()
        .await;
    let script = dir.join("oauth_client.mjs");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oauth_client.mjs"), &script).unwrap();
    let node = dir.join("node_modules/.bin/node");
    let url = format!("{public}/mcp");
    let run = std::thread::spawn(move || {
        std::process::Command::new("timeout")
            .arg("60")
            .arg(node)
            .arg(script)
            .args([&url, "alice", "echo"])
            .output()
            .unwrap()
    });
    while !run.is_finished() {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let out = run.join().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("STEP tools/call PASS") && !text.contains(" FAIL"), "{text}");
    let stats = idp.stats().await.unwrap();
    assert_eq!(stats["registration"].as_u64(), Some(1), "{stats}");
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    let call = rows.iter().find(|r| r.tool_name.as_deref() == Some("echo") && r.http_status == 200);
    assert_eq!(call.and_then(|r| r.user_id.as_deref()), Some("idp:alice"), "{rows:?}");
}

/// Providers that misbehave: discovery naming another issuer, redirecting elsewhere, 10 MB,
/// 30 s slow, not JSON, a plain-http key set elsewhere, and a key set of keys to refuse. Each
/// gets a clear reason in health; the gateway keeps serving its other tokens, and a token
/// claiming such an issuer is refused within the fetch timeout.
#[actix_web::test]
async fn bad_providers_are_refused_and_the_gateway_keeps_serving() {
    let db = TestDb::sqlite().await;
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/bad_idp.py");
    let _provider = Killed(
        std::process::Command::new(crate::common::replicas::python())
            .arg(script)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let modes = ["other_issuer", "redirect", "huge", "slow", "not_json", "http_jwks", "bad_keys"];
    let mut yaml = String::from("providers:\n");
    for mode in modes {
        yaml.push_str(&format!("- issuer: http://127.0.0.1:{port}/{mode}\n  audiences: [{RESOURCE}]\n"));
    }
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(conf.path().join("providers.yaml"), yaml).unwrap();
    let backend = crate::common::backend::TestBackend::start(crate::common::backend::Mode::Echo).await;
    // The fake provider is up before the gateway asks it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while client().get(format!("http://127.0.0.1:{port}/x/jwks")).send().await.is_err() {
        assert!(Instant::now() < deadline, "bad_idp.py did not start");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .var("IDENTITY_PROVIDERS_FILE", &conf.path().join("providers.yaml").display().to_string())
        .start()
        .await;
    let dev = gw.token("dev", &["developer"]);
    assert_eq!(gw.invoke(&dev, "echo", json!({})).await.0, 200, "the gateway serves meanwhile");
    // Every provider's first fetch has ended (the slow one by the 5 s timeout).
    let expected = [
        ("other_issuer", "names another issuer"),
        ("redirect", "redirects elsewhere"),
        ("huge", "openid-configuration"),
        ("slow", "no answer within 5 s"),
        ("not_json", "not a JSON document"),
        ("http_jwks", "jwks_uri is not an https URL"),
        ("bad_keys", "no usable key in the set"),
    ];
    // (Failed fetches are retried after 5 s, 10 s, …: a reason is read until it is the
    // expected one, in case a retry met a transient error.)
    let said = |reports: &[Value], mode: &str, why: &str| {
        reports.iter().any(|r| {
            r["issuer"].as_str().is_some_and(|i| i.ends_with(mode))
                && r["last_error"].as_str().is_some_and(|e| e.contains(why))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let reports = loop {
        let (_, body) = gw.get("/health/actors", Some(&gw.token("ops", &["operator"]))).await;
        let reports = body["identity_providers"].as_array().cloned().unwrap_or_default();
        if expected.iter().all(|(mode, why)| said(&reports, mode, why)) || Instant::now() > deadline {
            break reports;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    for (mode, why) in expected {
        let report = reports.iter().find(|r| r["issuer"].as_str().is_some_and(|i| i.ends_with(mode))).unwrap();
        assert_eq!(report["keys"], 0, "{report}");
        assert!(report["last_error"].as_str().unwrap_or("").contains(why), "{mode}: {report}");
    }
    // A token claiming a bad provider: refused (within the fetch timeout), nothing echoed.
    use base64::Engine;
    let encode = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({ "iss": format!("http://127.0.0.1:{port}/bad_keys"), "aud": RESOURCE, "sub": "x",
        "exp": jsonwebtoken::get_current_timestamp() + 60 });
    let forged = format!("{}.{}.{}", encode(json!({ "alg": "RS256", "kid": "dup" })), encode(claims), "c2ln");
    let started = Instant::now();
    assert_eq!(gw.invoke(&forged, "echo", json!({})).await.0, 401);
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());
    assert_eq!(gw.invoke(&dev, "echo", json!({})).await.0, 200);
    gw.stop().await;
}

/// A child process killed when the test ends, even by a failed assertion.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The attack: two trusted providers (or a provider and the shared secret) both name a user
/// `svc-client`. They are two users: one's job is not the other's to read, and their subjects
/// differ in every row.
async fn the_same_subject_at_two_providers_is_two_users(kind: DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let (keys_a, keys_c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let Some(a) = Idp::start(free_port(), keys_a.path(), "k1").await else { return };
    let Some(c) = Idp::start(free_port(), keys_c.path(), "k1").await else { return };
    let backend = crate::common::backend::TestBackend::start(crate::common::backend::Mode::Echo).await;
    let conf = tempfile::tempdir().unwrap();
    let file = conf.path().join("providers.yaml");
    let entry = |issuer: &str| {
        format!("- issuer: {issuer}\n  audiences: [{RESOURCE}]\n  roles_claims: [groups]\n  role_map: {{ g-developers: [developer] }}\n")
    };
    std::fs::write(&file, format!("providers:\n{}{}", entry(&a.issuer), entry(&c.issuer))).unwrap();
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .var("IDENTITY_PROVIDERS_FILE", &file.display().to_string())
        .start()
        .await;
    let (token_a, token_c) = (a.token(RESOURCE).await, c.token(RESOURCE).await);
    let mut resp = client()
        .post(format!("{}/mcp/jobs", gw.base))
        .bearer_auth(&token_a)
        .send_json(&json!({ "tool_name": "echo", "arguments": { "secret": 42 } }))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let job: Value = resp.json().await.unwrap();
    let id = job["job_id"].as_str().or(job["id"].as_str()).unwrap().to_owned();
    let mut resp = client().get(format!("{}/mcp/jobs", gw.base)).bearer_auth(&token_c).send().await.unwrap();
    let listed = String::from_utf8_lossy(&resp.body().await.unwrap()).into_owned();
    assert!(!listed.contains(&id), "C's svc-client sees A's job: {listed}");
    let resp = client().get(format!("{}/mcp/jobs/{id}", gw.base)).bearer_auth(&token_c).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // A static token for `svc-client` is a third user.
    let resp = client()
        .get(format!("{}/mcp/jobs/{id}", gw.base))
        .bearer_auth(gw.token("svc-client", &["developer"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = client().get(format!("{}/mcp/jobs/{id}", gw.base)).bearer_auth(&token_a).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    let subjects: Vec<&str> = rows.iter().filter_map(|r| r.user_id.as_deref()).collect();
    assert!(subjects.contains(&format!("{}#svc-client", a.issuer).as_str()), "{subjects:?}");
    db.drop_db().await;
}

crate::common::on_both_databases!(the_same_subject_at_two_providers_is_two_users => the_same_subject_at_two_providers_is_two_users);

/// The console signs in by the provider's authorization code flow with PKCE (a public client,
/// `CONSOLE_CLIENT_ID`) in a real headless browser: the button leads to the provider, back to
/// `/console` with a code, exchanged for a token naming the gateway as audience; the page then
/// shows the provider's user with the roles its groups map to.
#[actix_web::test]
async fn the_console_signs_in_with_the_provider() {
    if !crate::console::browser_ready() {
        return;
    }
    let db = TestDb::sqlite().await;
    let keys = tempfile::tempdir().unwrap();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let console = format!("{public}/console");
    let resource = format!("{public}/mcp");
    let Some(idp) = Idp::start_with(free_port(), keys.path(), "k1", &resource, Some(&console)).await else { return };
    let conf = tempfile::tempdir().unwrap();
    let file = conf.path().join("providers.yaml");
    std::fs::write(
        &file,
        format!(
            "providers:\n- issuer: {}\n  roles_claims: [groups]\n  role_map: {{ g-developers: [operator] }}\n  \
             scopes_supported: [mcp:tools]\n  subject_prefix: \"idp:\"\n",
            idp.issuer
        ),
    )
    .unwrap();
    let gw = TestGateway::builder(&db)
        .port(port)
        .var("PUBLIC_URL", &public)
        .var("IDENTITY_PROVIDERS_FILE", &file.display().to_string())
        .var("CONSOLE_CLIENT_ID", "console")
        .var("CONSOLE_SCOPES", "openid mcp:tools")
        .start()
        .await;
    let output = crate::console::browse(json!({ "mode": "oidc", "base": gw.base, "expect_user": "idp:alice" })).await;
    assert!(output.contains("STEP oidc-signed-in PASS"), "{output}");
    let stats = idp.stats().await.unwrap();
    assert_eq!(stats["token"].as_u64(), Some(1), "one code exchanged: {stats}");
    gw.stop().await;
    let rows = db.wait_for_rows(1).await;
    assert!(rows.iter().all(|r| r.user_id.as_deref() != Some("alice")), "the subject carries its prefix");
}
