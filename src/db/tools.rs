//! Syncing `tools.yaml` into the `tools` table at start-up.
//!
//! New tools are inserted, changed ones updated, and tools missing from the file are marked
//! inactive rather than deleted, so audit rows keep pointing at a known tool.

use std::collections::HashMap;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gateway_actors::Tool;

use super::schema::tools;
use super::{Db, DbError};
use crate::with_conn;

/// A `tools` row.
#[derive(Debug, Clone, PartialEq, Insertable, Queryable, Selectable)]
#[diesel(table_name = tools, treat_none_as_default_value = false)]
struct ToolRow {
    name: String,
    description: String,
    backend_url: String,
    risk_level: String,
    required_roles: String,
    is_active: bool,
    timeout_seconds: Option<i64>,
    input_schema: Option<String>,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

impl ToolRow {
    fn from_tool(tool: &Tool, now: chrono::NaiveDateTime) -> Self {
        Self {
            name: tool.name.clone(),
            description: tool.description.clone(),
            backend_url: tool.backend_url.clone(),
            risk_level: tool.risk_level.clone(),
            required_roles: serde_json::to_string(&tool.required_roles).unwrap_or_else(|_| "[]".into()),
            is_active: tool.is_active,
            timeout_seconds: tool.timeout_seconds.map(|t| t as i64),
            input_schema: tool.input_schema.as_ref().map(|s| s.to_string()),
            created_at: now,
            updated_at: now,
        }
    }

    fn same_content(&self, other: &Self) -> bool {
        (
            &self.description,
            &self.backend_url,
            &self.risk_level,
            &self.required_roles,
            self.is_active,
            self.timeout_seconds,
            &self.input_schema,
        ) == (
            &other.description,
            &other.backend_url,
            &other.risk_level,
            &other.required_roles,
            other.is_active,
            other.timeout_seconds,
            &other.input_schema,
        )
    }
}

/// What a sync changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Tools new to the table.
    pub inserted: usize,
    /// Tools whose definition changed.
    pub updated: usize,
    /// Tools no longer in the file, now inactive.
    pub deactivated: usize,
}

/// Make the `tools` table match `file_tools`, in one transaction.
pub async fn sync(db: &Db, file_tools: &[Tool]) -> Result<SyncReport, DbError> {
    let now = Utc::now().naive_utc();
    let wanted: Vec<ToolRow> = file_tools.iter().map(|t| ToolRow::from_tool(t, now)).collect();
    with_conn!(db, |conn| {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let existing: HashMap<String, ToolRow> = tools::table
                .select(ToolRow::as_select())
                .load::<ToolRow>(conn)
                .await?
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect();
            let mut report = SyncReport::default();
            for row in &wanted {
                match existing.get(&row.name) {
                    None => {
                        diesel::insert_into(tools::table).values(row).execute(conn).await?;
                        report.inserted += 1;
                    }
                    Some(old) if !old.same_content(row) => {
                        diesel::update(tools::table.find(&row.name))
                            .set((
                                tools::description.eq(&row.description),
                                tools::backend_url.eq(&row.backend_url),
                                tools::risk_level.eq(&row.risk_level),
                                tools::required_roles.eq(&row.required_roles),
                                tools::is_active.eq(row.is_active),
                                tools::timeout_seconds.eq(row.timeout_seconds),
                                tools::input_schema.eq(&row.input_schema),
                                tools::updated_at.eq(now),
                            ))
                            .execute(conn)
                            .await?;
                        report.updated += 1;
                    }
                    Some(_) => {}
                }
            }
            for (name, old) in &existing {
                if old.is_active && !wanted.iter().any(|w| &w.name == name) {
                    diesel::update(tools::table.find(name))
                        .set((tools::is_active.eq(false), tools::updated_at.eq(now)))
                        .execute(conn)
                        .await?;
                    report.deactivated += 1;
                }
            }
            Ok(report)
        })
        .await
        .map_err(DbError::from_display)
    })
}

/// Active flags by tool name, as stored (for tests and operators' checks).
pub async fn active_flags(db: &Db) -> Result<HashMap<String, bool>, DbError> {
    with_conn!(db, |conn| {
        tools::table
            .select((tools::name, tools::is_active))
            .load::<(String, bool)>(conn)
            .await
            .map(|rows| rows.into_iter().collect())
            .map_err(DbError::from_display)
    })
}

/// A tool's pin state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pin {
    /// Tool name.
    pub name: String,
    /// The approved definition digest.
    pub pinned: Option<String>,
    /// The digest last seen at the backend.
    pub observed: Option<String>,
    /// The approved definition (canonical JSON), for a readable diff; absent for pins made
    /// before definitions were kept.
    pub pinned_definition: Option<String>,
    /// The definition last seen at the backend (canonical JSON).
    pub observed_definition: Option<String>,
}

type PinColumns =
    (tools::name, tools::pinned_digest, tools::observed_digest, tools::pinned_definition, tools::observed_definition);
const PIN_COLUMNS: PinColumns =
    (tools::name, tools::pinned_digest, tools::observed_digest, tools::pinned_definition, tools::observed_definition);
type PinRow = (String, Option<String>, Option<String>, Option<String>, Option<String>);

fn pin((name, pinned, observed, pinned_definition, observed_definition): PinRow) -> Pin {
    Pin { name, pinned, observed, pinned_definition, observed_definition }
}

/// Record the digest and definition seen at the backend; the first one seen becomes the pin.
/// Returns the pin.
pub async fn observe(db: &Db, name: &str, digest: &str, definition: &str) -> Result<Pin, DbError> {
    with_conn!(db, |conn| {
        diesel::update(tools::table.find(name))
            .set((tools::observed_digest.eq(digest), tools::observed_definition.eq(definition)))
            .execute(conn)
            .await
            .map_err(DbError::from_display)?;
        diesel::update(tools::table.find(name).filter(tools::pinned_digest.is_null()))
            .set((tools::pinned_digest.eq(digest), tools::pinned_definition.eq(definition)))
            .execute(conn)
            .await
            .map_err(DbError::from_display)?;
        tools::table.find(name).select(PIN_COLUMNS).first::<PinRow>(conn).await.map(pin).map_err(DbError::from_display)
    })
}

/// Approve the definition last seen for `name` (it becomes the pin). Returns whether a tool
/// with an observed definition was found.
/// With `digest`, only if that is still the observed one: the operator approves the definition
/// they reviewed, not one that changed again since.
pub async fn approve(db: &Db, name: &str, digest: Option<&str>) -> Result<bool, DbError> {
    with_conn!(db, |conn| {
        let observed = tools::table.find(name).filter(tools::observed_digest.is_not_null());
        let approve =
            (tools::pinned_digest.eq(tools::observed_digest), tools::pinned_definition.eq(tools::observed_definition));
        let updated = match digest {
            Some(d) => diesel::update(observed.filter(tools::observed_digest.eq(d))).set(approve).execute(conn).await,
            None => diesel::update(observed).set(approve).execute(conn).await,
        };
        updated.map(|n| n == 1).map_err(DbError::from_display)
    })
}

/// Every tool's pin state.
pub async fn pins(db: &Db) -> Result<Vec<Pin>, DbError> {
    with_conn!(db, |conn| {
        tools::table
            .select(PIN_COLUMNS)
            .order(tools::name)
            .load::<PinRow>(conn)
            .await
            .map(|rows| rows.into_iter().map(pin).collect())
            .map_err(DbError::from_display)
    })
}
