//! The job store: asynchronous tool calls that any replica can answer for and exactly one
//! replica runs. Claims take pending jobs in order (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
//! SQLite serialises writers); a running job carries its replica and a heartbeat, so a job left
//! by a dead process is found and re-queued or failed.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::schema::jobs;
use super::{Db, DbError};
use crate::with_conn;

/// Statuses a job can end in.
pub const TERMINAL: [&str; 5] = ["succeeded", "failed", "cancelled", "timed_out", "denied"];

/// A job as stored.
#[derive(Debug, Clone, Insertable, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = jobs, treat_none_as_default_value = false)]
pub struct JobRow {
    /// Job id (UUID v7).
    pub id: String,
    /// The JWT subject that submitted it.
    pub owner: String,
    /// Owner's roles (JSON array).
    pub roles: String,
    /// Owner's workspace.
    pub workspace: Option<String>,
    /// The tool.
    pub tool_name: String,
    /// Arguments (JSON), cleared once terminal.
    pub arguments: Option<String>,
    /// awaiting_approval | pending | running | succeeded | failed | cancelled | timed_out | denied.
    pub status: String,
    /// The submission's request id (the completion's audit row shares it).
    pub request_id: String,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// `rest` or `mcp_task`.
    pub transport: String,
    /// Replica running it.
    pub claimed_by: Option<String>,
    /// Latest progress (JSON).
    pub progress: Option<String>,
    /// The tool's result (JSON).
    pub result: Option<String>,
    /// The failure (JSON `{code, message}`).
    pub error: Option<String>,
    /// Client address at submission.
    pub client_ip: Option<String>,
    /// Submitted (UTC).
    pub created_at: NaiveDateTime,
    /// Last change.
    pub updated_at: NaiveDateTime,
    /// Claimed by a replica.
    pub started_at: Option<NaiveDateTime>,
    /// Reached a terminal status.
    pub finished_at: Option<NaiveDateTime>,
    /// Last sign of life of the replica running it.
    pub heartbeat_at: Option<NaiveDateTime>,
    /// The result is removed after this.
    pub expires_at: Option<NaiveDateTime>,
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Insert `row`, or return the owner's existing job with the same idempotency key.
pub async fn insert(db: &Db, row: &JobRow) -> Result<JobRow, DbError> {
    if let Some(key) = &row.idempotency_key {
        if let Some(existing) = by_key(db, &row.owner, key).await? {
            return Ok(existing);
        }
    }
    let inserted: Result<usize, DbError> = with_conn!(db, |conn| diesel::insert_into(jobs::table)
        .values(row)
        .execute(conn)
        .await
        .map_err(DbError::from_display));
    match (inserted, &row.idempotency_key) {
        (Ok(_), _) => Ok(row.clone()),
        // A concurrent submission with the same key won the race.
        (Err(e), Some(key)) => by_key(db, &row.owner, key).await?.ok_or(e),
        (Err(e), None) => Err(e),
    }
}

async fn by_key(db: &Db, owner: &str, key: &str) -> Result<Option<JobRow>, DbError> {
    with_conn!(db, |conn| {
        jobs::table
            .filter(jobs::owner.eq(owner))
            .filter(jobs::idempotency_key.eq(key))
            .select(JobRow::as_select())
            .first::<JobRow>(conn)
            .await
            .optional()
            .map_err(DbError::from_display)
    })
}

/// One job.
pub async fn get(db: &Db, id: &str) -> Result<Option<JobRow>, DbError> {
    with_conn!(db, |conn| {
        jobs::table
            .find(id)
            .select(JobRow::as_select())
            .first::<JobRow>(conn)
            .await
            .optional()
            .map_err(DbError::from_display)
    })
}

/// A page of jobs, newest first (`owner` `None`: everyone's).
pub async fn list(
    db: &Db,
    owner: Option<&str>,
    status: Option<&str>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, DbError> {
    macro_rules! page {
        ($conn:expr, $backend:ty) => {{
            let mut q = jobs::table.into_boxed::<$backend>();
            if let Some(o) = owner {
                q = q.filter(jobs::owner.eq(o));
            }
            if let Some(s) = status {
                q = q.filter(jobs::status.eq(s));
            }
            if let Some(b) = before_id {
                q = q.filter(jobs::id.lt(b));
            }
            q.order(jobs::id.desc())
                .limit(limit)
                .select(JobRow::as_select())
                .load::<JobRow>($conn)
                .await
                .map_err(DbError::from_display)
        }};
    }
    match db {
        Db::Pg(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            page!(&mut *conn, diesel::pg::Pg)
        }
        Db::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            page!(&mut *conn, diesel::sqlite::Sqlite)
        }
    }
}

/// Pending jobs to start, fairly: each candidate's place is its owner's running jobs plus its
/// rank among the owner's pending ones (then, among the jobs that place admits, the same per
/// tool), so the oldest job of a user with
/// nothing running goes before the fifth job of a user with four; nobody past
/// `JOB_MAX_PER_USER` running, no tool past `JOB_MAX_PER_TOOL`. Counts are across all replicas.
const CANDIDATES: &str = "SELECT id FROM (\
    SELECT u.id, u.created_at, u.user_slot, \
      COALESCE(rt.n, 0) + ROW_NUMBER() OVER (PARTITION BY u.tool_name ORDER BY u.user_slot, u.created_at, u.id) \
        AS tool_slot \
    FROM (\
      SELECT p.id, p.tool_name, p.created_at, \
        COALESCE(ru.n, 0) + ROW_NUMBER() OVER (PARTITION BY p.owner ORDER BY p.created_at, p.id) AS user_slot \
      FROM jobs p \
      LEFT JOIN (SELECT owner, COUNT(*) AS n FROM jobs WHERE status = 'running' GROUP BY owner) ru \
        ON ru.owner = p.owner \
      WHERE p.status = 'pending') u \
    LEFT JOIN (SELECT tool_name, COUNT(*) AS n FROM jobs WHERE status = 'running' GROUP BY tool_name) rt \
      ON rt.tool_name = u.tool_name \
    WHERE u.user_slot <= $4) c \
  WHERE tool_slot <= $5 ORDER BY user_slot, created_at, id LIMIT $3";

/// Claim up to `n` pending jobs for `replica` (see [`CANDIDATES`] for which). On PostgreSQL
/// claims are serialised by a transaction-scoped advisory lock, so two replicas claiming at
/// once never both fill a user's last slot; SQLite has one writer anyway.
pub async fn claim(db: &Db, replica: &str, n: i64, per_user: i64, per_tool: i64) -> Result<Vec<JobRow>, DbError> {
    let t = now();
    let update = format!(
        "UPDATE jobs SET status = 'running', claimed_by = $1, started_at = $2, heartbeat_at = $2, updated_at = $2 \
         WHERE status = 'pending' AND id IN ({CANDIDATES}) RETURNING *"
    );
    macro_rules! claim_on {
        ($conn:expr, $sql:expr) => {
            diesel::sql_query($sql)
                .bind::<Text, _>(replica)
                .bind::<Timestamp, _>(t)
                .bind::<BigInt, _>(n)
                .bind::<BigInt, _>(per_user)
                .bind::<BigInt, _>(per_tool)
                .load::<JobRow>($conn)
                .await
        };
    }
    match db {
        Db::Pg(pool) => {
            use diesel_async::AsyncConnection;
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            conn.transaction::<Vec<JobRow>, diesel::result::Error, _>(async |conn| {
                diesel::sql_query("SELECT pg_advisory_xact_lock(7346510093)").execute(conn).await?;
                claim_on!(conn, update.as_str())
            })
            .await
            .map_err(DbError::from_display)
        }
        Db::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            let sql = update.replace('$', "?");
            claim_on!(&mut *conn, sql.as_str()).map_err(DbError::from_display)
        }
    }
}

/// Prove `replica` still runs job `id`; returns the job's current status (`reassigned` when another
/// replica has taken it over).
pub async fn heartbeat(db: &Db, id: &str, replica: &str, progress: Option<String>) -> Result<Option<String>, DbError> {
    let t = now();
    with_conn!(db, |conn| {
        let mine = jobs::table.find(id).filter(jobs::claimed_by.eq(replica)).filter(jobs::status.eq("running"));
        match &progress {
            Some(p) => {
                diesel::update(mine)
                    .set((jobs::heartbeat_at.eq(t), jobs::progress.eq(p), jobs::updated_at.eq(t)))
                    .execute(conn)
                    .await
            }
            None => diesel::update(mine).set(jobs::heartbeat_at.eq(t)).execute(conn).await,
        }
        .map_err(DbError::from_display)?;
        // A job recovery handed to another replica (this one stalled past JOB_STALE_SECONDS)
        // is no longer ours: the answer says so, and this replica stops running it.
        let row = jobs::table
            .find(id)
            .select((jobs::status, jobs::claimed_by))
            .first::<(String, Option<String>)>(conn)
            .await
            .optional()
            .map_err(DbError::from_display)?;
        Ok(row.map(|(status, owner)| if owner.as_deref() == Some(replica) { status } else { "reassigned".to_owned() }))
    })
}

/// Record a job's end, if `replica` still runs it; returns whether it did.
pub async fn finish(
    db: &Db,
    id: &str,
    replica: &str,
    status: &str,
    result: Option<String>,
    error: Option<String>,
    ttl: chrono::Duration,
) -> Result<bool, DbError> {
    let t = now();
    with_conn!(db, |conn| {
        diesel::update(jobs::table.find(id).filter(jobs::claimed_by.eq(replica)).filter(jobs::status.eq("running")))
            .set((
                jobs::status.eq(status),
                jobs::result.eq(result),
                jobs::error.eq(error),
                jobs::arguments.eq(None::<String>),
                jobs::finished_at.eq(t),
                jobs::updated_at.eq(t),
                jobs::expires_at.eq(t + ttl),
            ))
            .execute(conn)
            .await
            .map(|n| n == 1)
            .map_err(DbError::from_display)
    })
}

/// Cancel a pending, running or held (awaiting approval) job; returns whether it was still
/// cancellable.
pub async fn cancel(db: &Db, id: &str, ttl: chrono::Duration) -> Result<bool, DbError> {
    let t = now();
    with_conn!(db, |conn| {
        diesel::update(jobs::table.find(id).filter(jobs::status.eq_any(["pending", "running", "awaiting_approval"])))
            .set((
                jobs::status.eq("cancelled"),
                jobs::arguments.eq(None::<String>),
                jobs::finished_at.eq(t),
                jobs::updated_at.eq(t),
                jobs::expires_at.eq(t + ttl),
            ))
            .execute(conn)
            .await
            .map(|n| n == 1)
            .map_err(DbError::from_display)
    })
}

/// Jobs whose replica stopped beating before `stale_before`: re-queued when their tool is
/// idempotent, failed otherwise with `failure` as their error. Returns how many were re-queued,
/// and the failed jobs (for their audit rows).
pub async fn recover(
    db: &Db,
    stale_before: NaiveDateTime,
    idempotent: &[String],
    failure: &str,
    ttl: chrono::Duration,
) -> Result<(usize, Vec<JobRow>), DbError> {
    let t = now();
    let failure = failure.to_owned();
    with_conn!(db, |conn| {
        let stale = jobs::status.eq("running").and(jobs::heartbeat_at.lt(stale_before));
        let requeued = diesel::update(jobs::table.filter(stale).filter(jobs::tool_name.eq_any(idempotent)))
            .set((jobs::status.eq("pending"), jobs::claimed_by.eq(None::<String>), jobs::updated_at.eq(t)))
            .execute(conn)
            .await
            .map_err(DbError::from_display)?;
        let failed = diesel::update(jobs::table.filter(stale))
            .set((
                jobs::status.eq("failed"),
                jobs::error.eq(failure),
                jobs::arguments.eq(None::<String>),
                jobs::finished_at.eq(t),
                jobs::updated_at.eq(t),
                jobs::expires_at.eq(t + ttl),
            ))
            .returning(JobRow::as_returning())
            .get_results(conn)
            .await
            .map_err(DbError::from_display)?;
        Ok::<_, DbError>((requeued, failed))
    })
}

/// Delete terminal jobs that finished before `before`, and every job past its expiry.
pub async fn purge(db: &Db, before: Option<NaiveDateTime>) -> Result<usize, DbError> {
    let t = now();
    with_conn!(db, |conn| {
        let expired = diesel::delete(jobs::table.filter(jobs::expires_at.lt(t)))
            .execute(conn)
            .await
            .map_err(DbError::from_display)?;
        let old = match before {
            Some(b) => {
                diesel::delete(jobs::table.filter(jobs::status.eq_any(TERMINAL)).filter(jobs::finished_at.lt(b)))
                    .execute(conn)
                    .await
                    .map_err(DbError::from_display)?
            }
            None => 0,
        };
        Ok::<_, DbError>(expired + old)
    })
}

/// How many jobs are in each status (all replicas: the store is shared), for `/metrics`.
pub async fn count_by_status(db: &Db) -> Result<Vec<(String, i64)>, DbError> {
    with_conn!(db, |conn| {
        jobs::table
            .group_by(jobs::status)
            .select((jobs::status, diesel::dsl::count_star()))
            .load::<(String, i64)>(conn)
            .await
            .map_err(DbError::from_display)
    })
}
