//! The audit table: the database side of `AuditWriterActor` and the queries behind
//! `GET /admin/audit-logs`, one file per concept.
//!
//! | module | holds |
//! |---|---|
//! | [`row`] | the row as stored |
//! | [`store`] | batched inserts, chains and heads; the CLI's own rows |
//! | [`sink`] | the writer's way in: set a refused row aside, spool while the database is away |
//! | [`spool`] | the local spool and its replay |
//! | [`evidence`] | the ledger, signatures and chain positions |
//! | [`verify`](mod@verify) | `audit verify` |
//! | [`retention`] | deleting old rows without breaking what remains |
//! | [`export`] | filters, queries and the CSV export |

pub mod evidence;
pub mod export;
pub mod retention;
pub mod row;
pub mod sink;
pub mod spool;
pub mod store;
pub mod verify;

pub use evidence::{AuditKey, Evidence};
pub use export::{csv_line, query, AuditFilter, CSV_HEADER};
pub use retention::prune;
pub use row::AuditRow;
pub use sink::{set_aside_rows, store_or_set_aside, DbAuditSink, SetAside};
pub use spool::Spool;
pub use store::{insert_batch, record_admin};
pub use verify::{verify, Verification, VerifyWith};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        let now = chrono::Utc::now().naive_utc();
        let row = AuditRow {
            id: "i".into(),
            created_at: now,
            request_id: "r".into(),
            user_id: Some("=HYPERLINK(\"http://evil\")".into()),
            roles: "[\"a\"]".into(),
            workspace: Some("@ws".into()),
            tool_name: Some("t,x".into()),
            decision: "denied".into(),
            status: "denied".into(),
            http_status: 403,
            error_code: Some(-32002),
            duration_ms: 1.5,
            client_ip: None,
            arguments_sha256: None,
            error_message: Some("-1+1".into()),
            arguments_logged: None,
            transport: "rest".into(),
            kind: gateway_actors::model::TOOL_CALL_KIND.into(),
            chain_id: "c".into(),
            seq: 1,
            prev_hash: "p".into(),
            row_hash: "h".into(),
        };
        let line = csv_line(&row);
        assert!(line.contains(",\"'=HYPERLINK(\"\"http://evil\"\")\","), "{line}");
        assert!(line.contains(",'@ws,\"t,x\",") && line.contains(",-32002,") && line.contains(",'-1+1,"), "{line}");
        assert_eq!(line.split(',').count(), CSV_HEADER.split(',').count() + 1, "one comma is inside \"t,x\": {line}");
    }

    #[test]
    fn a_torn_spool_write_is_cut_off_and_the_whole_lines_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.spool");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n{\"torn\":").unwrap();
        let rows = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let spool = Spool::open(path.clone(), rows.clone());
        assert_eq!(spool.held(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
    }
}
