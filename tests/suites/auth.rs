//! Authentication as a client meets it: every bad token is a 401 with a Bearer challenge.

use crate::common::backend::{Mode, TestBackend};
use crate::common::{claims, sign, TestDb, TestGateway, SECRET};
use serde_json::json;

fn unsigned_token() -> String {
    let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let body = base64_url(serde_json::to_string(&claims("mallory", &["admin"], None)).unwrap().as_bytes());
    format!("{header}.{body}.")
}

/// Minimal base64url without padding (no extra dependency for one test).
fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[actix_web::test]
async fn missing_expired_forged_unsigned_and_wrong_audience_tokens_are_401() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).var("JWT_AUDIENCE", "mcp-gateway").start().await;

    let mut good = claims("alice", &["developer"], None);
    good.aud = Some("mcp-gateway".into());
    let (status, body) = gw.invoke(&sign(&good, SECRET), "echo", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let mut listed_aud = good.clone();
    listed_aud.aud = Some(mcp_gateway::auth::Audience::Many(vec!["other-api".into(), "mcp-gateway".into()]));
    let (status, body) = gw.invoke(&sign(&listed_aud, SECRET), "echo", json!({})).await;
    assert_eq!(status, 200, "an aud list holding ours passes: {body}");

    let mut expired = good.clone();
    expired.exp = jsonwebtoken::get_current_timestamp() - 120;
    let mut wrong_aud = good.clone();
    wrong_aud.aud = Some("someone-else".into());
    let mut no_aud = good.clone();
    no_aud.aud = None;
    let mut listed_wrong = good.clone();
    listed_wrong.aud = Some(mcp_gateway::auth::Audience::Many(vec!["other-api".into()]));
    let mut future_nbf = good.clone();
    future_nbf.nbf = Some(jsonwebtoken::get_current_timestamp() + 600);
    let cases = [
        ("expired", Some(sign(&expired, SECRET))),
        ("wrong signature", Some(sign(&good, "another-secret-that-is-also-long-enough"))),
        ("alg none", Some(unsigned_token())),
        ("wrong audience", Some(sign(&wrong_aud, SECRET))),
        ("missing audience", Some(sign(&no_aud, SECRET))),
        ("a list of audiences without ours", Some(sign(&listed_wrong, SECRET))),
        ("not yet valid", Some(sign(&future_nbf, SECRET))),
        ("garbage", Some("not-a-jwt".to_owned())),
    ];
    for (what, token) in cases {
        let body = json!({"tool_name": "echo", "arguments": {}}).to_string().into_bytes();
        let (status, headers, json) = gw.post_invoke(token.as_deref(), body).await;
        assert_eq!(status, 401, "{what}: {json}");
        assert_eq!(json["error"]["code"], -32000, "{what}");
        let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{what}: {challenge}");
    }
    let (status, headers, _) = gw.post_invoke(None, b"{}".to_vec()).await;
    assert_eq!(status, 401);
    let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap();
    assert!(challenge.starts_with("Bearer resource_metadata=\"http://127.0.0.1:"), "{challenge}");
    assert!(!challenge.contains("invalid_token"));
    assert_eq!(backend.count("tools/call"), 2, "no bad token reached the backend");

    let rows = db.wait_for_rows(11).await;
    assert_eq!(rows.iter().filter(|r| r.decision == "unauthenticated").count(), 9);
    assert!(rows
        .iter()
        .filter(|r| r.decision == "unauthenticated")
        .all(|r| r.user_id.is_none() && r.http_status == 401));
    gw.stop().await;
    backend.stop().await;
}

#[actix_web::test]
async fn es256_tokens_verify_against_a_jwks_key_chosen_by_kid() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db)
        .tool("echo", &backend.url)
        .var("JWT_ALGORITHM", "ES256")
        .var("JWT_JWKS_FILE", &fixtures.join("es256-jwks.json").display().to_string())
        .var("JWT_ISSUER", "https://issuer.test")
        .start()
        .await;
    let pem = std::fs::read(fixtures.join("es256-private.pem")).unwrap();
    let mut c = claims("erin", &["developer"], None);
    c.iss = Some("https://issuer.test".into());
    let es = |c: &mcp_gateway::auth::Claims, kid: &str| {
        mcp_gateway::auth::mint_with_pem(c, jsonwebtoken::Algorithm::ES256, &pem, Some(kid.into())).unwrap()
    };
    assert_eq!(gw.invoke(&es(&c, "test-es256"), "echo", json!({})).await.0, 200);
    assert_eq!(gw.invoke(&es(&c, "unknown-kid"), "echo", json!({})).await.0, 401);
    let mut wrong_iss = c.clone();
    wrong_iss.iss = Some("https://evil.test".into());
    assert_eq!(gw.invoke(&es(&wrong_iss, "test-es256"), "echo", json!({})).await.0, 401);
    // An HS256 token signed with the public key's bytes must not pass (algorithm confusion).
    let public = std::fs::read_to_string(fixtures.join("es256-public.pem")).unwrap();
    assert_eq!(gw.invoke(&sign(&c, &public), "echo", json!({})).await.0, 401);
    gw.stop().await;
    backend.stop().await;
}

#[actix_web::test]
async fn es256_tokens_verify_against_a_pem_public_key() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let db = TestDb::sqlite().await;
    let gw = TestGateway::builder(&db)
        .var("JWT_ALGORITHM", "ES256")
        .var("JWT_PUBLIC_KEY_FILE", &fixtures.join("es256-public.pem").display().to_string())
        .start()
        .await;
    let pem = std::fs::read(fixtures.join("es256-private.pem")).unwrap();
    let token = mcp_gateway::auth::mint_with_pem(
        &claims("erin", &["developer"], None),
        jsonwebtoken::Algorithm::ES256,
        &pem,
        None,
    )
    .unwrap();
    assert_eq!(gw.get("/mcp/tools", Some(&token)).await.0, 200);
    gw.stop().await;
}

#[actix_web::test]
async fn rs256_tokens_verify_against_a_pem_public_key_and_hs256_is_refused() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let db = TestDb::sqlite().await;
    let gw = TestGateway::builder(&db)
        .var("JWT_ALGORITHM", "RS256")
        .var("JWT_PUBLIC_KEY_FILE", &fixtures.join("rs256-public.pem").display().to_string())
        .start()
        .await;
    let pem = std::fs::read(fixtures.join("rs256-private.pem")).unwrap();
    let c = claims("rita", &["developer"], None);
    let token = mcp_gateway::auth::mint_with_pem(&c, jsonwebtoken::Algorithm::RS256, &pem, None).unwrap();
    assert_eq!(gw.get("/mcp/tools", Some(&token)).await.0, 200);
    let public = std::fs::read_to_string(fixtures.join("rs256-public.pem")).unwrap();
    assert_eq!(gw.get("/mcp/tools", Some(&sign(&c, &public))).await.0, 401, "HS256 with the public key as secret");
    assert_eq!(gw.get("/mcp/tools", Some(&sign(&c, SECRET))).await.0, 401);
    gw.stop().await;
}

#[test]
fn dev_mode_refuses_a_non_loopback_address_and_keeps_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let vars = |host: &str| {
        [
            ("GATEWAY_HOST", host.to_owned()),
            ("DATA_DIR", dir.path().join("data").display().to_string()),
            ("TOOLS_CONFIG", format!("{}/config/tools.yaml", env!("CARGO_MANIFEST_DIR"))),
            ("POLICY_CONFIG", format!("{}/config/policy.yaml", env!("CARGO_MANIFEST_DIR"))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    };
    let local = mcp_gateway::config::Settings::from_map(&vars("127.0.0.1")).unwrap();
    let (_, _, auth) = mcp_gateway::app::check_config(&local).unwrap();
    assert!(auth.dev_mode);
    let secret = std::fs::read_to_string(dir.path().join("data/jwt-secret")).unwrap();
    let (_, _, again) = mcp_gateway::app::check_config(&local).unwrap();
    let token = again.mint(&claims("d", &[], None), jsonwebtoken::Algorithm::HS256).unwrap();
    assert!(auth.verify(&token).is_ok(), "the generated secret survives a restart");
    assert_eq!(secret, std::fs::read_to_string(dir.path().join("data/jwt-secret")).unwrap());
    let public = mcp_gateway::config::Settings::from_map(&vars("0.0.0.0")).unwrap();
    let err = mcp_gateway::app::check_config(&public).err().unwrap().to_string();
    assert!(err.contains("JWT_SECRET_KEY"), "{err}");
}

/// RFC 7235: the scheme is case-insensitive (`bearer`, `BEARER` are valid). RFC 7515: a token
/// naming `crit` header parameters the gateway does not understand is refused. A token living
/// longer than `JWT_MAX_TTL_SECONDS` is refused though its signature holds. Refusal reasons are
/// fixed phrases: nothing of the token is echoed.
#[actix_web::test]
async fn scheme_case_crit_headers_and_token_lifetime() {
    let db = TestDb::sqlite().await;
    let backend = TestBackend::start(Mode::Echo).await;
    let gw = TestGateway::builder(&db).tool("echo", &backend.url).var("JWT_MAX_TTL_SECONDS", "3600").start().await;
    let token = gw.token("alice", &["developer"]);
    let call = |auth: String| {
        let base = gw.base.clone();
        async move {
            let mut resp = crate::common::client()
                .post(format!("{base}/mcp/invoke"))
                .insert_header(("Authorization", auth))
                .send_json(&json!({"tool_name": "echo", "arguments": {}}))
                .await
                .unwrap();
            let challenge =
                resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            (resp.status().as_u16(), body["error"]["message"].as_str().unwrap_or("").to_owned(), challenge)
        }
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(call(format!("{scheme} {token}")).await.0, 200, "{scheme}");
    }
    assert_eq!(call(format!("Basic {token}")).await.0, 401);

    // A valid signature over a header with `crit`.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.crit = Some(vec!["exp-extension".into()]);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let crit = jsonwebtoken::encode(&header, &claims("alice", &["developer"], None), &key).unwrap();
    let (status, message, _) = call(format!("Bearer {crit}")).await;
    assert_eq!((status, message.as_str()), (401, "invalid token: critical header parameters are not supported"));

    // Signed, unexpired, but valid for a year.
    let mut long = claims("alice", &["developer"], None);
    long.exp += 365 * 86_400;
    let (status, message, _) = call(format!("Bearer {}", sign(&long, SECRET))).await;
    assert_eq!((status, message.as_str()), (401, "invalid token: lifetime longer than JWT_MAX_TTL_SECONDS"));

    // A header made to be echoed: control characters and 60 KB of `kid`.
    let forged = format!(
        "{}.{}.{}",
        base64_url(format!(r#"{{"alg":"HS256\u0000\n","kid":"{}"}}"#, "K".repeat(60_000)).as_bytes()),
        base64_url(b"{}"),
        "sig"
    );
    let (status, message, challenge) = call(format!("Bearer {forged}")).await;
    assert_eq!(status, 401);
    assert!(message.len() < 80 && !message.contains("KKK") && !challenge.contains("KKK"), "{message} {challenge}");
    gw.stop().await;
    let rows = db.wait_for_rows(8).await;
    assert_eq!(rows.len(), 8, "every attempt, refused or not, has its row");
    assert!(rows.iter().all(|r| r.error_message.as_deref().unwrap_or("").len() < 100), "no token content is stored");
}

/// An admin endpoint checks the caller's role before it reads the body: a developer's empty
/// body gets 403, not a 400 describing the body's schema.
#[actix_web::test]
async fn admin_endpoints_check_the_role_before_the_body() {
    let db = TestDb::sqlite().await;
    let gw = TestGateway::builder(&db).start().await;
    let resp = crate::common::client()
        .post(format!("{}/admin/policy/explain", gw.base))
        .bearer_auth(gw.token("dev", &["developer"]))
        .insert_header(("Content-Type", "application/json"))
        .send_body("")
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = crate::common::client()
        .get(format!("{}/admin/audit-logs?colour=red", gw.base))
        .bearer_auth(gw.token("dev", &["developer"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    gw.stop().await;
}

/// The attack: forged tokens and wrong roles on the endpoints that take the caller from the
/// request (listings, jobs, health, metrics, admin). Each refusal leaves its row: 600 forged
/// tokens against `/mcp/tools` cannot pass unseen.
async fn refusals_on_every_endpoint_are_audited(kind: crate::common::DbKind) {
    let Some(db) = TestDb::of(kind).await else { return };
    let gw = TestGateway::builder(&db).start().await;
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    let dev = gw.token("dev", &["developer"]);
    for path in ["/mcp/tools", "/mcp/jobs", "/health/actors", "/metrics"] {
        let (status, _) = gw.get(path, Some(forged)).await;
        assert_eq!(status, 401, "{path}");
    }
    for path in ["/health/actors", "/metrics", "/admin/audit-logs"] {
        let (status, _) = gw.get(path, Some(&dev)).await;
        assert_eq!(status, 403, "{path}");
    }
    gw.stop().await;
    let rows = db.wait_for_rows(7).await;
    let unauthenticated = rows.iter().filter(|r| r.status == "unauthenticated").count();
    let denied: Vec<_> = rows.iter().filter(|r| r.status == "denied").collect();
    assert_eq!((unauthenticated, denied.len()), (4, 3), "{rows:?}");
    assert!(denied.iter().all(|r| r.user_id.as_deref() == Some("dev") && r.http_status == 403));
    assert!(rows.iter().any(|r| r.transport == "rest") && rows.iter().any(|r| r.transport == "admin"));
    db.drop_db().await;
}

crate::common::on_both_databases!(refusals_on_every_endpoint_are_audited => refusals_on_every_endpoint_are_audited);
