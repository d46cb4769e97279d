//! The approval store: calls held for a person's decision. A held call is a job in status
//! `awaiting_approval` plus one row here with the same id; a decision moves both at once —
//! approved: the job becomes `pending` and any replica's dispatcher runs it; denied or expired:
//! the job ends `denied`. Every change is conditional on the row still being pending, so two
//! approvers (on two replicas) cannot both decide, and a decision cannot follow an expiry.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::schema::{approvals, jobs};
use super::{Db, DbError};
use crate::with_conn;

/// An approval request as stored.
#[derive(Debug, Clone, Insertable, Queryable, Selectable, Serialize)]
#[diesel(table_name = approvals, treat_none_as_default_value = false)]
pub struct ApprovalRow {
    /// The held job's id.
    pub id: String,
    /// The tool called.
    pub tool_name: String,
    /// Who called it.
    pub requester: String,
    /// Their roles (JSON array).
    pub requester_roles: String,
    /// Their workspace.
    pub workspace: Option<String>,
    /// The role that decides.
    pub approver_role: String,
    /// The arguments as approvers see them (JSON).
    pub arguments: String,
    /// Why it was held (JSON array of words).
    pub reasons: String,
    /// The call's request id (its audit rows share it).
    pub request_id: String,
    /// pending | approved | denied | expired | withdrawn.
    pub status: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The approver's reason.
    pub reason: Option<String>,
    /// When the call was held (UTC).
    pub created_at: NaiveDateTime,
    /// When a pending request is denied by itself.
    pub expires_at: NaiveDateTime,
    /// When it was decided.
    pub decided_at: Option<NaiveDateTime>,
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Record a held call's request unless its requester already has `cap` pending: the count and
/// the insert are one step (PostgreSQL: under a transaction-scoped advisory lock per requester,
/// so replicas agree; SQLite: one immediate transaction). Returns whether it was recorded.
pub async fn insert_capped(db: &Db, row: &ApprovalRow, cap: i64) -> Result<bool, DbError> {
    match db {
        Db::Pg(pool) => {
            use diesel_async::AsyncConnection;
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            let row = row.clone();
            conn.transaction::<bool, diesel::result::Error, _>(async |conn| {
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind::<diesel::sql_types::Text, _>(format!("mcpgw-approvals:{}", row.requester))
                    .execute(conn)
                    .await?;
                let pending: i64 = approvals::table
                    .filter(approvals::status.eq("pending"))
                    .filter(approvals::requester.eq(&row.requester))
                    .count()
                    .get_result(conn)
                    .await?;
                if pending >= cap {
                    return Ok(false);
                }
                diesel::insert_into(approvals::table).values(&row).execute(conn).await?;
                Ok(true)
            })
            .await
            .map_err(DbError::from_display)
        }
        Db::Sqlite(pool) => {
            let mut conn = pool.get().await.map_err(DbError::from_display)?;
            let row = row.clone();
            conn.spawn_blocking(move |conn| {
                conn.immediate_transaction(|conn| {
                    let pending: i64 = diesel::RunQueryDsl::get_result(
                        approvals::table
                            .filter(approvals::status.eq("pending"))
                            .filter(approvals::requester.eq(&row.requester))
                            .count(),
                        conn,
                    )?;
                    if pending >= cap {
                        return Ok(false);
                    }
                    diesel::RunQueryDsl::execute(diesel::insert_into(approvals::table).values(&row), conn)?;
                    Ok::<bool, diesel::result::Error>(true)
                })
            })
            .await
            .map_err(DbError::from_display)
        }
    }
}

/// One request.
pub async fn get(db: &Db, id: &str) -> Result<Option<ApprovalRow>, DbError> {
    with_conn!(db, |conn| {
        approvals::table
            .find(id)
            .select(ApprovalRow::as_select())
            .first::<ApprovalRow>(conn)
            .await
            .optional()
            .map_err(DbError::from_display)
    })
}

/// Requests newest first, decided by one of `roles`, with `status` (any when `None`), for
/// `tool` (any when `None`), at most `limit`.
pub async fn list(
    db: &Db,
    roles: &[String],
    status: Option<&str>,
    tool: Option<&str>,
    limit: i64,
) -> Result<Vec<ApprovalRow>, DbError> {
    with_conn!(db, |conn| {
        let mut q = approvals::table.filter(approvals::approver_role.eq_any(roles)).into_boxed();
        if let Some(s) = status {
            q = q.filter(approvals::status.eq(s));
        }
        if let Some(t) = tool {
            q = q.filter(approvals::tool_name.eq(t));
        }
        q.order(approvals::created_at.desc())
            .limit(limit)
            .select(ApprovalRow::as_select())
            .load::<ApprovalRow>(conn)
            .await
            .map_err(DbError::from_display)
    })
}

/// How many requests are pending (for the overview and metrics).
pub async fn pending_count(db: &Db) -> Result<i64, DbError> {
    with_conn!(db, |conn| {
        approvals::table
            .filter(approvals::status.eq("pending"))
            .count()
            .get_result(conn)
            .await
            .map_err(DbError::from_display)
    })
}

/// How a pending request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// An approver said yes: the job runs.
    Approved,
    /// An approver said no.
    Denied,
    /// Nobody decided in time.
    Expired,
    /// The caller cancelled the call.
    Withdrawn,
}

impl Ending {
    fn status(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// End request `id` if it is still pending (and, for a decision, not past its expiry):
/// record who and why, and move its job (`pending` to run, or `denied` with `error`). Returns
/// the request as it ended, or `None` when it was no longer pending. A decision whose job was
/// cancelled in the meantime (the caller withdrew first) ends the request `withdrawn` instead:
/// the request and its job never disagree, and the call has one end.
pub async fn end(
    db: &Db,
    id: &str,
    ending: Ending,
    by: Option<&str>,
    reason: Option<&str>,
    job_error: Option<&str>,
    ttl: chrono::Duration,
) -> Result<Option<ApprovalRow>, DbError> {
    let t = now();
    let updated = with_conn!(db, |conn| {
        let pending = approvals::table.find(id).filter(approvals::status.eq("pending"));
        let set = (
            approvals::status.eq(ending.status()),
            approvals::decided_by.eq(by),
            approvals::reason.eq(reason),
            approvals::decided_at.eq(t),
        );
        match ending {
            // A decision after the deadline is too late: expiry has the last word.
            Ending::Approved | Ending::Denied => {
                diesel::update(pending.filter(approvals::expires_at.gt(t))).set(set).execute(conn).await
            }
            Ending::Expired | Ending::Withdrawn => diesel::update(pending).set(set).execute(conn).await,
        }
        .map_err(DbError::from_display)
    })?;
    if updated != 1 {
        return Ok(None);
    }
    let held = jobs::table.find(id).filter(jobs::status.eq("awaiting_approval"));
    let moved = with_conn!(db, |conn| {
        match ending {
            Ending::Approved => {
                diesel::update(held).set((jobs::status.eq("pending"), jobs::updated_at.eq(t))).execute(conn).await
            }
            Ending::Denied | Ending::Expired => {
                diesel::update(held)
                    .set((
                        jobs::status.eq("denied"),
                        jobs::error.eq(job_error),
                        jobs::arguments.eq(None::<String>),
                        jobs::finished_at.eq(t),
                        jobs::updated_at.eq(t),
                        jobs::expires_at.eq(t + ttl),
                    ))
                    .execute(conn)
                    .await
            }
            // The job was cancelled by the caller (which is what withdraws the request).
            Ending::Withdrawn => Ok(1),
        }
        .map_err(DbError::from_display)
    })?;
    if moved != 1 {
        with_conn!(db, |conn| diesel::update(approvals::table.find(id))
            .set(approvals::status.eq("withdrawn"))
            .execute(conn)
            .await
            .map_err(DbError::from_display))?;
        return Ok(None);
    }
    get(db, id).await
}

/// Remove ended requests decided before `before` (with the jobs' purge: their arguments go
/// with them).
pub async fn purge(db: &Db, before: NaiveDateTime) -> Result<usize, DbError> {
    with_conn!(db, |conn| {
        diesel::delete(
            approvals::table.filter(approvals::status.ne("pending")).filter(approvals::decided_at.lt(before)),
        )
        .execute(conn)
        .await
        .map_err(DbError::from_display)
    })
}

/// Pending requests past their deadline (at most `limit`), for the expiry sweep.
pub async fn overdue(db: &Db, limit: i64) -> Result<Vec<String>, DbError> {
    let t = now();
    with_conn!(db, |conn| {
        approvals::table
            .filter(approvals::status.eq("pending"))
            .filter(approvals::expires_at.le(t))
            .order(approvals::expires_at)
            .limit(limit)
            .select(approvals::id)
            .load::<String>(conn)
            .await
            .map_err(DbError::from_display)
    })
}
