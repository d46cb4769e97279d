//! Authentication as a client meets it: every bad token is a 401 with a Bearer challenge.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::backend::{Mode, TestBackend};
use common::{claims, sign, TestDb, TestGateway, SECRET};
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
