//! A realistic audit row for the benchmarks (`audit_writer`, `micro`): chain fields empty, as
//! the writer fills them.

use gateway_actors::AuditRecord;

/// Row `i`: one of 1,000 users calling `exact_compute`, allowed and answered.
pub fn record(i: usize) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::now_v7().to_string(),
        created_at: chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap_or_default(),
        request_id: uuid::Uuid::new_v4().to_string(),
        user_id: Some(format!("user{}", i % 1000)),
        roles: vec!["developer".into()],
        workspace: Some("default".into()),
        tool_name: Some("exact_compute".into()),
        decision: "allowed".into(),
        status: "ok".into(),
        http_status: 200,
        error_code: None,
        duration_ms: 0.42,
        client_ip: Some("127.0.0.1".into()),
        arguments_sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        error_message: None,
        arguments_logged: None,
        transport: "rest".into(),
        kind: gateway_actors::model::TOOL_CALL_KIND.into(),
        chain_id: String::new(),
        seq: 0,
        prev_hash: String::new(),
        row_hash: String::new(),
    }
}
