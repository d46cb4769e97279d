//! Micro-benchmarks of the four per-call steps the gateway runs on its hot path, with criterion:
//! JWT verification, the policy decision, the rate-limit check and audit-row encoding (hash
//! chain link + database row). `cargo bench --bench micro`. These say where a call's CPU goes;
//! the end-to-end figure comes from `mcp-bench run` (README, "Performance").

// A benchmark whose set-up fails has nothing to measure: panicking with the reason is right.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use gateway_actors::ratelimit::SystemClock;
use gateway_actors::{Caller, Limit, LocalStore, Quota};
use jsonwebtoken::Algorithm;
use mcp_gateway::auth::{claims_for, Authenticator};
use mcp_gateway::config::files::{expand_vars, parse_policy, parse_tools};
use mcp_gateway::config::JwtSettings;
use mcp_gateway::db::audit::AuditRow;
use serde_json::json;

#[path = "support/sample.rs"]
mod sample;

fn jwt(c: &mut Criterion) {
    let settings = JwtSettings {
        secret: Some("bench-secret-that-is-long-enough-for-hs256".into()),
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
    let auth = Authenticator::from_settings(&settings, std::path::Path::new(".")).expect("valid settings");
    let claims = claims_for("bench", vec!["developer".into()], Some("default".into()), 3600, &settings);
    let token = auth.mint(&claims, Algorithm::HS256).expect("mint");
    // An agent's repeated token: answered from the verified-token cache.
    c.bench_function("jwt_verify_hs256_cached", |b| b.iter(|| auth.verify(black_box(&token)).expect("valid")));
    // A token seen for the first time: signature, header and claims checked in full.
    let mut n = 0u64;
    c.bench_function("jwt_verify_hs256_first_sight", |b| {
        b.iter_batched(
            || {
                n += 1;
                let claims = claims_for(&format!("user{n}"), vec!["developer".into()], None, 3600, &settings);
                auth.mint(&claims, Algorithm::HS256).expect("mint")
            },
            |fresh| auth.verify(black_box(&fresh)).expect("valid"),
            criterion::BatchSize::SmallInput,
        )
    });
}

/// A token from an identity provider (RS256, a key from its published set, issuer, audience
/// and roles mapped from a claim): first sight (signature and claims in full) and cached.
fn jwt_provider(c: &mut Criterion) {
    use mcp_gateway::identity::jwks::{KeySet, TrustedKey};
    use mcp_gateway::identity::provider::Snapshot;
    let root = env!("CARGO_MANIFEST_DIR");
    let private = std::fs::read(format!("{root}/tests/fixtures/rs256-private.pem")).expect("fixture");
    let public = std::fs::read(format!("{root}/tests/fixtures/rs256-public.pem")).expect("fixture");
    let provider: mcp_gateway::config::providers::ProviderConfig =
        serde_yaml::from_str("issuer: https://idp.bench\naudiences: [https://gw.bench/mcp]\nroles_claims: [roles]\n")
            .expect("provider");
    let settings = JwtSettings {
        secret: None,
        algorithm: Algorithm::HS256,
        public_key_file: None,
        jwks_file: None,
        issuer: None,
        audience: None,
        leeway_seconds: 30,
        max_ttl_seconds: 86_400,
        providers: vec![provider.finish("bench", &[]).expect("valid")],
        static_keys: false,
        jwks_refetch: std::time::Duration::from_secs(10),
    };
    let auth = Authenticator::from_settings(&settings, std::path::Path::new(".")).expect("valid settings");
    let key = TrustedKey {
        key: jsonwebtoken::DecodingKey::from_rsa_pem(&public).expect("public key"),
        algorithms: vec![Algorithm::RS256],
    };
    let mut set = KeySet::default();
    set.by_kid.insert("k1".into(), key);
    auth.providers[0].keys.store(Arc::new(Snapshot { keys: Arc::new(set), ..Default::default() }));
    let mint = |sub: String| {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = mcp_gateway::auth::Claims {
            sub,
            roles: vec!["developer".into()],
            workspace: None,
            exp: now + 600,
            iat: Some(now),
            nbf: None,
            iss: Some("https://idp.bench".into()),
            aud: Some("https://gw.bench/mcp".into()),
            scope: Some("mcp:tools".into()),
        };
        mcp_gateway::auth::mint_with_pem(&claims, Algorithm::RS256, &private, Some("k1".into())).expect("mint")
    };
    let token = mint("bench".into());
    c.bench_function("jwt_verify_provider_rs256_cached", |b| b.iter(|| auth.verify(black_box(&token)).expect("valid")));
    let mut n = 0u64;
    c.bench_function("jwt_verify_provider_rs256_first_sight", |b| {
        b.iter_batched(
            || {
                n += 1;
                mint(format!("user{n}"))
            },
            |fresh| auth.verify(black_box(&fresh)).expect("valid"),
            criterion::BatchSize::SmallInput,
        )
    });
}

fn policy(c: &mut Criterion) {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |name: &str| {
        let text = std::fs::read_to_string(format!("{root}/config/{name}")).expect("config file");
        expand_vars(&text, &|_: &str| None).expect("expands")
    };
    let policy = parse_policy("policy.yaml", &read("policy.yaml")).expect("policy");
    let tools = parse_tools("tools.yaml", &read("tools.yaml")).expect("tools");
    let tool = tools.tools.iter().find(|t| t.name == "exact_compute").expect("exact_compute");
    let caller = Caller {
        user_id: "bench".into(),
        roles: vec!["developer".into()],
        workspace: Some("finance".into()),
        scopes: vec![],
    };
    let arguments = json!({"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}});
    c.bench_function("policy_decision", |b| {
        b.iter(|| policy.check_call(black_box(&caller), black_box(tool), black_box(&arguments)).expect("allowed"))
    });
    c.bench_function("policy_limits_for", |b| b.iter(|| policy.limits_for(black_box(&caller), "exact_compute")));
}

fn ratelimit(c: &mut Criterion) {
    let store = LocalStore::new(Arc::new(SystemClock::default()));
    let quota = Quota { requests_per_minute: 4_000_000_000, burst: 1_000_000_000 };
    let batches: Vec<Vec<Limit>> = (0..10_000)
        .map(|user| {
            vec![
                Limit { key: format!("u:user{user}"), quota, name: "per_user".into() },
                Limit { key: "t:exact_compute".into(), quota, name: "per_tool".into() },
                Limit { key: format!("ut:user{user}:exact_compute"), quota, name: "per_user_tool".into() },
            ]
        })
        .collect();
    let mut i = 0;
    c.bench_function("ratelimit_check_3_limits_local", |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            black_box(store.check_now(&batches[i]))
        })
    });
}

fn audit(c: &mut Criterion) {
    let mut record = sample::record(1);
    record.arguments_logged = Some(r#"{"operation":"arithmetic"}"#.into());
    (record.chain_id, record.seq, record.prev_hash) = ("bench-chain".into(), 1, "0".repeat(64));
    c.bench_function("audit_row_encode", |b| {
        b.iter(|| {
            record.row_hash = black_box(&record).compute_hash();
            black_box(AuditRow::from(&record))
        })
    });
}

criterion_group!(benches, jwt, jwt_provider, policy, ratelimit, audit);
criterion_main!(benches);
