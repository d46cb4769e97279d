//! The `mcp-gateway` command line: `serve` (the default), `token`, `check-config`, `migrate`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::auth::{claims_for, mint_with_pem, Authenticator};
use crate::config::Settings;

/// A secure gateway for the Model Context Protocol.
#[derive(Debug, Parser)]
#[command(name = "mcp-gateway", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (migrations and tool sync run first).
    Serve,
    /// Print a JWT for local use, signed with the configured key.
    Token {
        /// The user id (`sub`).
        #[arg(long)]
        sub: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "developer")]
        roles: Vec<String>,
        /// Optional workspace claim.
        #[arg(long)]
        workspace: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// PEM private key for RS256/ES256 (HS algorithms use the configured secret).
        #[arg(long)]
        private_key_file: Option<PathBuf>,
        /// Key id (`kid`) to put in the header, for JWKS set-ups.
        #[arg(long)]
        kid: Option<String>,
    },
    /// Validate the environment, tools.yaml, policy.yaml and keys; exit non-zero on a problem.
    CheckConfig,
    /// Run pending database migrations and exit.
    Migrate,
    /// Exit 0 if `url` answers 2xx within 3 s, 1 otherwise: the container health check of
    /// the gateway and the tool servers (the runtime image has no curl).
    Probe {
        /// The URL to GET, e.g. http://127.0.0.1:8000/health/ready.
        url: String,
    },
    /// The audit trail.
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Tool-definition pins.
    Tools {
        /// What to do.
        #[command(subcommand)]
        action: ToolsAction,
    },
    /// Policy questions answered offline from the configuration files.
    Policy {
        /// What to do.
        #[command(subcommand)]
        action: PolicyAction,
    },
}

/// `mcp-gateway audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Walk every hash chain and the audit ledger; exit non-zero naming altered, inserted or
    /// deleted rows and chains (and, with AUDIT_HMAC_KEY, unsigned or forged evidence).
    Verify {
        /// A ledger end printed by an earlier run (`ORDINAL:LINK`), kept outside the database:
        /// proves the ledger was not cut short or rewritten since.
        #[arg(long)]
        expect_ledger: Option<String>,
        /// With AUDIT_HMAC_KEY: the ledger entry from which on the gateway ran with the key (its
        /// log says "audit chain registered in the ledger"); earlier entries may be unsigned.
        #[arg(long, default_value_t = 1)]
        signed_since: i64,
    },
    /// Delete rows older than N days behind a checkpoint (what `AUDIT_RETENTION_DAYS` does hourly).
    Prune {
        /// Rows older than this many days are deleted.
        #[arg(long)]
        older_than_days: u64,
    },
    /// Print matching rows (newest first) as JSON lines.
    Query {
        /// Filters.
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// Most rows printed.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Write every matching row (newest first) to stdout as CSV or JSON lines.
    Export {
        /// Filters.
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// `csv` or `jsonl`.
        #[arg(long, default_value = "jsonl")]
        format: String,
    },
}

/// The filters of `audit query` and `audit export` (as `GET /admin/audit-logs`).
#[derive(Debug, clap::Args)]
pub struct AuditFilterArgs {
    /// Only this user.
    #[arg(long)]
    user: Option<String>,
    /// Only callers with this role.
    #[arg(long)]
    role: Option<String>,
    /// Only this workspace.
    #[arg(long)]
    workspace: Option<String>,
    /// Only this tool.
    #[arg(long)]
    tool: Option<String>,
    /// Only this decision (allowed, denied, unknown_tool, unauthenticated, rejected, rate_limited).
    #[arg(long)]
    decision: Option<String>,
    /// Only this status.
    #[arg(long)]
    status: Option<String>,
    /// Only this request id.
    #[arg(long)]
    request_id: Option<String>,
    /// From this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
}

impl AuditFilterArgs {
    fn filter(self, limit: i64) -> anyhow::Result<crate::db::audit::AuditFilter> {
        let time = |v: Option<String>| -> anyhow::Result<Option<chrono::NaiveDateTime>> {
            v.map(|t| {
                chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.naive_utc()).context("expected an RFC 3339 time")
            })
            .transpose()
        };
        Ok(crate::db::audit::AuditFilter {
            user: self.user,
            role: self.role,
            workspace: self.workspace,
            tool: self.tool,
            decision: self.decision,
            status: self.status,
            request_id: self.request_id,
            since: time(self.since)?,
            until: time(self.until)?,
            before_id: None,
            limit,
        })
    }
}

async fn audit_rows_command(
    settings: &Settings,
    filter: AuditFilterArgs,
    limit: Option<i64>,
    csv: bool,
) -> anyhow::Result<()> {
    crate::db::migrate(&settings.database_url).await?;
    let db = crate::db::Db::connect(&settings.database_url, 1)?;
    let action = match (limit, csv) {
        (Some(_), _) => "cli/audit-query",
        (None, true) => "cli/audit-export csv",
        (None, false) => "cli/audit-export jsonl",
    };
    crate::db::audit::record_admin(&db, action, Ok(()), &evidence(settings)).await?;
    let mut remaining = limit.unwrap_or(i64::MAX);
    let mut filter = filter.filter(remaining.min(1000))?;
    if csv {
        println!("{}", crate::db::audit::CSV_HEADER);
    }
    while remaining > 0 {
        filter.limit = remaining.min(1000);
        let rows = crate::db::audit::query(&db, &filter).await?;
        for r in &rows {
            println!("{}", if csv { crate::db::audit::csv_line(r) } else { serde_json::to_string(r)? });
        }
        remaining -= rows.len() as i64;
        if (rows.len() as i64) < filter.limit {
            break;
        }
        filter.before_id = rows.last().map(|r| r.id.clone());
    }
    Ok(())
}

/// `mcp-gateway tools …`.
#[derive(Debug, Subcommand)]
pub enum ToolsAction {
    /// Approve a tool's changed definition (its last observed digest becomes the pin).
    Approve {
        /// The tool's name.
        name: String,
        /// Approve only if this is still the observed digest (from `tools list`).
        #[arg(long)]
        digest: Option<String>,
    },
    /// List tools with their pinned and observed digests.
    List,
}

/// `mcp-gateway policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// The decision (and its chain of rules) for a subject, tool and arguments.
    Explain {
        /// Subject (`sub`).
        #[arg(long)]
        sub: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Workspace.
        #[arg(long)]
        workspace: Option<String>,
        /// Tool name.
        #[arg(long)]
        tool: String,
        /// Arguments as JSON.
        #[arg(long)]
        arguments: Option<String>,
    },
}

async fn probe(url: &str) -> anyhow::Result<()> {
    let client = awc::Client::builder().timeout(std::time::Duration::from_secs(3)).finish();
    let resp = client.get(url).send().await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    anyhow::ensure!(resp.status().is_success(), "{url}: HTTP {}", resp.status());
    Ok(())
}

/// Parse arguments and run the chosen command.
pub fn run() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    crate::install_crypto_provider();
    let cli = Cli::parse();
    if let Some(Command::Probe { url }) = &cli.command {
        return actix_web::rt::System::new().block_on(probe(url));
    }
    let settings = Settings::from_env().context("invalid configuration")?;
    crate::telemetry::init(settings.log_format);
    let system = actix_web::rt::System::new();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => system.block_on(serve(Arc::new(settings))),
        Command::CheckConfig => {
            let (tools, _, auth) = crate::app::check_config(&settings)?;
            println!(
                "configuration ok: {} tools, {} servers, database {}, {}",
                tools.tools.len(),
                tools.servers.len(),
                if settings.database_url.starts_with("sqlite") { "sqlite" } else { "postgres" },
                if auth.dev_mode { "dev-mode secret" } else { "configured JWT key" }
            );
            Ok(())
        }
        Command::Probe { .. } => Ok(()),
        Command::Migrate => {
            let ran = system.block_on(crate::db::migrate(&settings.database_url))?;
            println!("{ran} migrations applied");
            Ok(())
        }
        Command::Tools { action } => system.block_on(tools_command(&settings, action)),
        Command::Audit { action: AuditAction::Query { filter, limit } } => {
            system.block_on(audit_rows_command(&settings, filter, Some(limit), false))
        }
        Command::Audit { action: AuditAction::Export { filter, format } } => match format.as_str() {
            "csv" | "jsonl" => system.block_on(audit_rows_command(&settings, filter, None, format == "csv")),
            other => anyhow::bail!("--format {other:?}: use csv or jsonl"),
        },
        Command::Audit { action: AuditAction::Prune { older_than_days } } => {
            system.block_on(prune_command(&settings, older_than_days))
        }
        Command::Audit { action: AuditAction::Verify { expect_ledger, signed_since } } => {
            system.block_on(verify_command(&settings, expect_ledger, signed_since))
        }
        Command::Policy { action: PolicyAction::Explain { sub, roles, workspace, tool, arguments } } => {
            explain_command(
                &settings,
                gateway_actors::Caller { user_id: sub, roles, workspace, scopes: Vec::new() },
                &tool,
                arguments,
            )
        }
        Command::Token { sub, roles, workspace, ttl, private_key_file, kid } => {
            token_command(&settings, &sub, roles, workspace, ttl, private_key_file, kid)
        }
    }
}

/// `audit prune --older-than-days N`.
async fn prune_command(settings: &Settings, older_than_days: u64) -> anyhow::Result<()> {
    crate::db::migrate(&settings.database_url).await?;
    let db = crate::db::Db::connect(&settings.database_url, 1)?;
    let days = chrono::Duration::try_days(i64::try_from(older_than_days.min(36_500))?)
        .context("--older-than-days is out of range")?;
    let cutoff = (chrono::Utc::now() - days).naive_utc();
    let rows = crate::db::audit::prune(&db, cutoff, settings.audit_hmac_key.as_ref()).await?;
    println!("{rows} audit rows older than {cutoff} UTC deleted; the rest still verifies from its checkpoints");
    Ok(())
}

/// `audit verify [--expect-ledger END] [--signed-since ORDINAL]`: prints each problem and note.
async fn verify_command(settings: &Settings, expect_ledger: Option<String>, signed_since: i64) -> anyhow::Result<()> {
    crate::db::migrate(&settings.database_url).await?;
    let db = crate::db::Db::connect(&settings.database_url, 1)?;
    let with = crate::db::audit::VerifyWith {
        key: settings.audit_hmac_key.as_ref(),
        expect_ledger: expect_ledger.as_deref(),
        signed_since,
    };
    let found = crate::db::audit::verify(&db, &with).await?;
    let problems = &found.problems;
    let outcome = format!("{} problem(s)", problems.len());
    let outcome = if problems.is_empty() { Ok(()) } else { Err(outcome.as_str()) };
    crate::db::audit::record_admin(&db, "cli/audit-verify", outcome, &evidence(settings)).await?;
    for p in problems {
        println!("TAMPERED {p}");
    }
    for note in &found.notes {
        println!("NOTE {note}");
    }
    if let Some(end) = &found.ledger_end {
        println!("ledger end {end} (keep it elsewhere; --expect-ledger {end} proves it is still there)");
    }
    println!(
        "{} rows in {} chains checked{}, {} problem(s)",
        found.rows,
        found.chains,
        if settings.audit_hmac_key.is_some() { " with AUDIT_HMAC_KEY" } else { "" },
        problems.len()
    );
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("the audit trail does not verify")
    }
}

/// `policy explain`: why a call would be allowed or denied, without a running gateway.
fn explain_command(
    settings: &Settings,
    caller: gateway_actors::Caller,
    tool: &str,
    arguments: Option<String>,
) -> anyhow::Result<()> {
    let (tools, policy, _) = crate::app::check_config(settings)?;
    // Without --arguments, as a live call without arguments: `{}`.
    let arguments: Option<serde_json::Value> = Some(
        arguments
            .map(|a| serde_json::from_str(&a))
            .transpose()
            .context("--arguments is not JSON")?
            .unwrap_or_else(|| serde_json::json!({})),
    );
    let tool = tools.tools.into_iter().find(|t| t.name == tool && t.is_active);
    let out = match &tool {
        Some(t) => {
            let schemas = crate::registry::input_schemas::Schemas::default();
            if let Some(s) = &t.input_schema {
                schemas.set(&t.name, s);
            }
            let schema = arguments.as_ref().map_or(Ok(()), |a| schemas.check(&t.name, a));
            let explained = policy.explain(&caller, t, arguments.as_ref());
            crate::http::policy::explanation(
                Some(explained),
                &t.name,
                &policy.limits_for(&caller, &t.name),
                schema,
                false,
                false,
            )
        }
        None => crate::http::policy::explanation(None, "", &[], Ok(()), false, false),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `token`: mint a token with the configured key (or `--private-key-file`).
fn token_command(
    settings: &Settings,
    sub: &str,
    roles: Vec<String>,
    workspace: Option<String>,
    ttl: u64,
    private_key_file: Option<std::path::PathBuf>,
    kid: Option<String>,
) -> anyhow::Result<()> {
    let claims = claims_for(sub, roles, workspace, ttl, &settings.jwt);
    let token = match private_key_file {
        Some(path) => {
            let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            mint_with_pem(&claims, settings.jwt.algorithm, &pem, kid).with_context(|| {
                format!("{} is not a {:?} private key in PEM", path.display(), settings.jwt.algorithm)
            })?
        }
        None => {
            Authenticator::from_settings(&settings.jwt, &settings.data_dir)?.mint(&claims, settings.jwt.algorithm)?
        }
    };
    println!("{token}");
    Ok(())
}

async fn tools_command(settings: &Settings, action: ToolsAction) -> anyhow::Result<()> {
    crate::db::migrate(&settings.database_url).await?;
    let db = crate::db::Db::connect(&settings.database_url, 1)?;
    match action {
        ToolsAction::Approve { name, digest } => {
            let approved = crate::db::tools::approve(&db, &name, digest.as_deref()).await?;
            let outcome =
                if approved { Ok(()) } else { Err("not approved: the observed definition changed or is absent") };
            crate::db::audit::record_admin(&db, &format!("cli/tools-approve {name}"), outcome, &evidence(settings))
                .await?;
            if approved {
                println!("approved the current definition of {name}");
                Ok(())
            } else if digest.is_some() {
                anyhow::bail!(
                    "{name:?}: the observed definition is no longer the one given by --digest; review it again"
                )
            } else {
                anyhow::bail!("no observed definition for {name:?}: is the tool registered and its backend reachable?")
            }
        }
        ToolsAction::List => {
            for pin in crate::db::tools::pins(&db).await? {
                let state = if pin.pinned == pin.observed { "ok" } else { "DRIFT" };
                println!(
                    "{}\t{state}\tpinned={}\tobserved={}",
                    pin.name,
                    pin.pinned.unwrap_or_default(),
                    pin.observed.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

async fn serve(settings: Arc<Settings>) -> anyhow::Result<()> {
    let listener = TcpListener::bind((settings.host.as_str(), settings.port))
        .with_context(|| format!("binding {}:{}", settings.host, settings.port))?;
    let bundled_on = !matches!(std::env::var("BUNDLED_TOOLS").as_deref(), Ok("off" | "false" | "0"));
    let bundled = if bundled_on { crate::bundled::start() } else { Vec::new() };
    let addr = listener.local_addr()?;
    let gateway = crate::app::start(settings.clone(), listener, true).await?;
    let dev_mode = crate::auth::is_hmac(settings.jwt.algorithm) && settings.jwt.secret.is_none();
    banner(addr, &bundled, dev_mode);
    gateway.wait().await;
    crate::bundled::stop(bundled).await;
    Ok(())
}

/// What a person needs after `cargo run`: where it listens, how to get a token, one call.
fn banner(addr: std::net::SocketAddr, bundled: &[crate::bundled::Bundled], dev_mode: bool) {
    println!("\nmcp-gateway is listening on http://{addr}");
    if dev_mode {
        println!("  !! DEV MODE: no JWT_SECRET_KEY is set; tokens are signed with a generated secret kept");
        println!("  !! under data/. Loopback only. Set JWT_SECRET_KEY (or a public key) for anything else.");
    }
    for b in bundled {
        println!("  bundled tool {:<18} http://{}/mcp", b.tool, b.addr);
    }
    println!("  a token:  T=$(cargo run -q --release -- token --sub demo --roles developer)");
    println!(
        "  a call:   curl -s -H \"Authorization: Bearer $T\" -H 'Content-Type: application/json' \\\n            \
         -d '{{\"tool_name\":\"exact_compute\",\"arguments\":{{\"operation\":\"arithmetic\",\"params\":{{\"operator\":\"+\",\"x\":1,\"y\":2}}}}}}' \\\n            \
         http://{addr}/mcp/invoke"
    );
    println!("  Ctrl-C stops everything (the audit log is flushed first).\n");
}

/// The evidence the CLI's own audit rows carry (signed when `AUDIT_HMAC_KEY` is set).
fn evidence(settings: &Settings) -> crate::db::audit::Evidence {
    crate::db::audit::Evidence::new(settings.audit_hmac_key.clone())
}
