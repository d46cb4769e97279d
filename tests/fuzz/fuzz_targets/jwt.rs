//! JWT header and claims handling. Mode 0: any bytes as the Bearer token. Otherwise the input is
//! `header JSON \n claims JSON`, signed with the gateway's own secret, so the fuzzer gets past
//! the signature and into header checks (alg, typ, kid) and claims (exp, nbf, iat, iss, aud,
//! roles, workspace). Must never panic; a token it accepts must carry a non-empty subject.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use mcp_gateway::auth::Authenticator;
use mcp_gateway::config::JwtSettings;
use std::sync::LazyLock;

const SECRET: &str = "fuzz-secret-that-is-long-enough-for-hs256";

static AUTH: LazyLock<Authenticator> = LazyLock::new(|| {
    let settings = JwtSettings {
        secret: Some(SECRET.into()),
        algorithm: Algorithm::HS256,
        public_key_file: None,
        jwks_file: None,
        issuer: Some("https://issuer.example".into()),
        audience: Some("mcp-gateway".into()),
        leeway_seconds: 30,
        max_ttl_seconds: 86_400,
        providers: Vec::new(),
        static_keys: true,
        jwks_refetch: std::time::Duration::from_secs(10),
    };
    Authenticator::from_settings(&settings, std::path::Path::new(".")).expect("settings are valid")
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let token = if mode == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (header, claims) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        match jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256) {
            Ok(signature) => format!("{signing_input}.{signature}"),
            Err(_) => return,
        }
    };
    match AUTH.verify(&token) {
        Ok(caller) => assert!(!caller.user_id.is_empty(), "accepted a token without a subject"),
        Err(e) => {
            let _ = e.to_response(serde_json::Value::Null);
        }
    }
});
