//! stdio upstreams as managed processes: one [`StdioProcess`] actor per `servers:` entry with
//! `transport: stdio`. It starts the program (argv, no shell; a clean environment plus the
//! entry's `env`; its `cwd`), performs the MCP handshake, publishes the [`StdioLink`] callers
//! use, logs the program's stderr as JSON lines tagged with the server, and restarts the
//! program with back-off when it exits (calls in flight fail with 502). On stop it sends
//! SIGTERM, then SIGKILL after a grace period.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message};
use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::backend::stdio::{Links, Said, StdioLink};
use crate::config::servers::{ServerConfig, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_PENDING};

/// How long a program has to answer `initialize`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// Longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A program that ran this long before exiting is restarted after the shortest back-off again.
const STABLE: Duration = Duration::from_secs(60);
/// Lines of stderr logged per second per program; more are counted, not logged.
const STDERR_LINES_PER_SECOND: u32 = 50;
/// Longest stderr line logged (characters); the rest is cut.
const STDERR_LINE_CHARS: usize = 2000;
/// Variables a program inherits from the gateway; everything else it gets from its `env`.
const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// What `/health/actors` and `/metrics` show of one program.
#[derive(Debug, Default)]
pub struct ProcessStatus {
    pub(super) up: AtomicBool,
    pub(super) restarts: AtomicU64,
    pub(super) pid: AtomicU32,
    pub(super) dropped_lines: AtomicU64,
    pub(super) unknown_ids: AtomicU64,
    pub(super) garbage_lines: AtomicU64,
    pub(super) last_exit: Mutex<Option<String>>,
    pub(super) link: Mutex<Option<Arc<StdioLink>>>,
}

impl ProcessStatus {
    /// Whether the program is running and has answered `initialize`.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Times the program was started again after it exited.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Requests waiting for the program's answer.
    pub fn pending(&self) -> usize {
        self.link.lock().ok().and_then(|l| l.as_ref().map(|l| l.pending())).unwrap_or(0)
    }

    /// The report for `/health/actors`.
    pub fn report(&self) -> Value {
        json!({
            "up": self.is_up(),
            "pid": Some(self.pid.load(Ordering::Relaxed)).filter(|p| *p != 0),
            "restarts": self.restarts(),
            "pending_calls": self.pending(),
            "last_exit": self.last_exit.lock().ok().and_then(|e| e.clone()),
            "lines_over_limit": self.dropped_lines.load(Ordering::Relaxed),
            "answers_to_unknown_ids": self.unknown_ids.load(Ordering::Relaxed),
            "lines_not_json_rpc": self.garbage_lines.load(Ordering::Relaxed),
        })
    }
}

/// What a process tells the registry's owner.
pub type OnEvent = Arc<dyn Fn(&str, Said) + Send + Sync>;

/// The actor running one stdio program.
pub struct StdioProcess {
    config: Arc<ServerConfig>,
    /// The name its link is published under: the server's, or `<server>#<client>` for one
    /// client's process of a `per_client` server.
    link_key: String,
    /// A client's process stops after this long without calls, and is not restarted.
    idle: Option<Duration>,
    links: Links,
    status: Arc<ProcessStatus>,
    on_event: OnEvent,
    /// The running program's pid (for signals), and when it started.
    running: Option<(u32, Instant)>,
    generation: u64,
    backoff: Duration,
    stopping: bool,
}

impl StdioProcess {
    /// An actor for `config` publishing its link into `links` and its state into `status`.
    pub fn new(config: Arc<ServerConfig>, links: Links, status: Arc<ProcessStatus>, on_event: OnEvent) -> Self {
        let link_key = config.name.clone();
        Self {
            config,
            link_key,
            idle: None,
            links,
            status,
            on_event,
            running: None,
            generation: 0,
            backoff: Duration::from_secs(1),
            stopping: false,
        }
    }

    /// One client's process of a `per_client` server, published as `link_key`, stopped after
    /// `idle` without calls.
    pub fn for_client(
        config: Arc<ServerConfig>,
        link_key: String,
        idle: Duration,
        links: Links,
        status: Arc<ProcessStatus>,
    ) -> Self {
        let mut process = Self::new(config, links, status, Arc::new(|_: &str, _| {}));
        process.link_key = link_key;
        process.idle = Some(idle);
        process
    }

    fn name(&self) -> &str {
        &self.link_key
    }

    fn spawn(&mut self, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        let config = self.config.clone();
        let Some(program) = config.command.as_deref() else { return };
        let mut command = tokio::process::Command::new(program);
        command.args(&config.args).env_clear();
        for name in INHERITED {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        for (name, value) in &config.env {
            command.env(name, &value.0);
        }
        if let Some(cwd) = &config.cwd {
            command.current_dir(cwd);
        }
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                // The program path and the error only: never its environment.
                tracing::error!(server = %config.name, program, error = %e, "cannot start stdio server; retrying");
                self.exited(ctx, generation, format!("could not start: {e}"), Duration::ZERO);
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        self.running = Some((pid, Instant::now()));
        self.status.pid.store(pid, Ordering::Relaxed);
        let max_pending = config.max_pending.unwrap_or(DEFAULT_MAX_PENDING);
        let max_line = config.max_line_bytes.unwrap_or(DEFAULT_MAX_LINE_BYTES);
        let (lines_tx, mut lines_rx) = mpsc::channel::<Vec<u8>>(max_pending + 16);
        let link = Arc::new(StdioLink::new(&format!("stdio server {}", config.name), lines_tx, max_pending));
        if let Ok(mut slot) = self.status.link.lock() {
            *slot = Some(link.clone());
        }
        tracing::info!(server = %config.name, pid, "stdio server started");
        if let Some(mut stdin) = child.stdin.take() {
            actix_web::rt::spawn(async move {
                while let Some(line) = lines_rx.recv().await {
                    if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                        break;
                    }
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            actix_web::rt::spawn(log_stderr(config.name.clone(), stderr));
        }
        if let Some(stdout) = child.stdout.take() {
            let (link, status, on_event, name) =
                (link.clone(), self.status.clone(), self.on_event.clone(), config.name.clone());
            actix_web::rt::spawn(async move {
                read_stdout(&name, stdout, max_line, &link, &status, &on_event).await;
            });
        }
        // The handshake: the link is published only once the program answered `initialize`.
        let (links, status, on_event, addr) =
            (self.links.clone(), self.status.clone(), self.on_event.clone(), ctx.address());
        let key = self.link_key.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = handshake(&key, &link, &links, &status, &on_event).await {
                tracing::error!(server = %config.name, error = %e, "stdio server did not complete initialize; restarting it");
                addr.do_send(Kill { generation });
            }
        });
        let addr = ctx.address();
        actix_web::rt::spawn(async move {
            let status = child.wait().await;
            let how = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("cannot wait for it: {e}"),
            };
            addr.do_send(Exited { generation, how });
        });
    }

    fn exited(&mut self, ctx: &mut Context<Self>, generation: u64, how: String, ran: Duration) {
        if generation != self.generation {
            return;
        }
        self.running = None;
        self.status.up.store(false, Ordering::Relaxed);
        self.status.pid.store(0, Ordering::Relaxed);
        if let Ok(mut last) = self.status.last_exit.lock() {
            *last = Some(how.clone());
        }
        if let Ok(mut slot) = self.status.link.lock() {
            if let Some(link) = slot.take() {
                link.close();
            }
        }
        self.links.remove(&self.link_key);
        if self.stopping || self.idle.is_some() {
            tracing::info!(server = %self.name(), exit = %how, "stdio server stopped");
            ctx.stop();
            return;
        }
        self.backoff = if ran >= STABLE { Duration::from_secs(1) } else { self.backoff };
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.status.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(server = %self.name(), exit = %how, restart_in_ms = wait.as_millis() as u64, "stdio server exited; calls in flight failed");
        ctx.run_later(wait, |actor, ctx| actor.spawn(ctx));
    }

    fn signal(&self, kill: bool) {
        let Some((pid, _)) = self.running else { return };
        let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return };
        let signal = if kill { rustix::process::Signal::KILL } else { rustix::process::Signal::TERM };
        let _ = rustix::process::kill_process(pid, signal);
    }
}

impl Actor for StdioProcess {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.spawn(ctx);
        if let Some(idle) = self.idle {
            ctx.run_interval((idle / 4).max(Duration::from_millis(250)), move |actor, ctx| {
                let quiet = actor
                    .status
                    .link
                    .lock()
                    .ok()
                    .and_then(|l| l.as_ref().map(|l| l.pending() == 0 && l.idle_for() >= idle))
                    .unwrap_or(false);
                if quiet && !actor.stopping {
                    tracing::info!(server = %actor.link_key, "client's stdio process idle; stopping it");
                    ctx.notify(Stop);
                }
            });
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Never leave a program behind (the owner stops this actor on removal and shutdown).
        self.signal(true);
        self.links.remove(&self.link_key);
    }
}

/// The program exited.
#[derive(Message)]
#[rtype(result = "()")]
struct Exited {
    generation: u64,
    how: String,
}

impl Handler<Exited> for StdioProcess {
    type Result = ();

    fn handle(&mut self, msg: Exited, ctx: &mut Context<Self>) {
        let ran = self.running.map(|(_, since)| since.elapsed()).unwrap_or_default();
        self.exited(ctx, msg.generation, msg.how, ran);
    }
}

/// Kill this generation's program (it failed its handshake); it is restarted with back-off.
#[derive(Message)]
#[rtype(result = "()")]
struct Kill {
    generation: u64,
}

impl Handler<Kill> for StdioProcess {
    type Result = ();

    fn handle(&mut self, msg: Kill, _: &mut Context<Self>) {
        if msg.generation == self.generation {
            self.signal(true);
        }
    }
}

/// Stop the program for good: SIGTERM, SIGKILL after a grace period.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for StdioProcess {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.stopping = true;
        if self.running.is_none() {
            ctx.stop();
            return;
        }
        self.signal(false);
        ctx.run_later(GRACE, |actor, _| actor.signal(true));
    }
}

/// One line of a program's output, or the news that it was longer than allowed.
enum Line {
    Text(Vec<u8>),
    /// Too long: only its first [`OVERLONG_HEAD`] bytes are kept.
    Overlong(Vec<u8>),
}

/// How much of an overlong line is kept, to find the id of the request it answers.
const OVERLONG_HEAD: usize = 256;

/// The next line from `reader` (without its newline), reading at most `max` bytes into memory:
/// a longer line is consumed and dropped whole. `None` at the end of the stream.
async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> Option<Line> {
    let mut line: Vec<u8> = Vec::new();
    let mut overlong = false;
    loop {
        let (used, done) = {
            let buf = reader.fill_buf().await.ok()?;
            if buf.is_empty() {
                return None;
            }
            let (part, used, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            if !overlong && line.len() + part.len() <= max {
                line.extend_from_slice(part);
            } else if !overlong {
                overlong = true;
                line.extend_from_slice(&part[..part.len().min(OVERLONG_HEAD.saturating_sub(line.len()))]);
                line.truncate(OVERLONG_HEAD);
            }
            (used, done)
        };
        reader.consume(used);
        if done {
            return Some(if overlong { Line::Overlong(line) } else { Line::Text(line) });
        }
    }
}

/// Read the program's stdout line by line (each at most `max_line` bytes; longer lines are
/// dropped whole and counted) into the link.
async fn read_stdout(
    name: &str,
    stdout: impl AsyncRead + Unpin,
    max_line: usize,
    link: &StdioLink,
    status: &ProcessStatus,
    on_event: &OnEvent,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    while let Some(line) = next_line(&mut reader, max_line).await {
        let text = match line {
            Line::Text(text) => text,
            Line::Overlong(head) => {
                status.dropped_lines.fetch_add(1, Ordering::Relaxed);
                let failed_a_call = link.overlong(&head, max_line);
                tracing::warn!(
                    server = name,
                    max_line_bytes = max_line,
                    failed_a_call,
                    "stdio server printed a line over its limit; dropped"
                );
                continue;
            }
        };
        on_line(name, &text, link, status, on_event);
    }
}

/// Hand one line (or SSE message) an upstream sent to its link; count and log what is not
/// an answer or notification (rate-limited: the first ten of each kind).
pub fn on_line(name: &str, text: &[u8], link: &StdioLink, status: &ProcessStatus, on_event: &OnEvent) {
    if text.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match link.deliver(text) {
        Said::Nothing => {}
        Said::UnknownId => {
            if status.unknown_ids.fetch_add(1, Ordering::Relaxed) < 10 {
                tracing::warn!(server = name, "upstream answered a request id it was never sent; ignored");
            }
        }
        Said::Garbage => {
            if status.garbage_lines.fetch_add(1, Ordering::Relaxed) < 10 {
                tracing::warn!(server = name, "upstream sent a message that is not JSON-RPC; ignored");
            }
        }
        Said::ListChanged => on_event(name, Said::ListChanged),
    }
}

/// The MCP handshake over a fresh link: `initialize` (within [`HANDSHAKE_TIMEOUT`]), then
/// `notifications/initialized`; the link is published for callers and the owner told to
/// discover the server's tools.
pub async fn handshake(
    name: &str,
    link: &Arc<StdioLink>,
    links: &Links,
    status: &ProcessStatus,
    on_event: &OnEvent,
) -> Result<(), crate::error::GatewayError> {
    let params = crate::backend::hello();
    let result = link.request("initialize", &params, HANDSHAKE_TIMEOUT, None).await?;
    if let Some(v) = result.get("protocolVersion").and_then(Value::as_str) {
        link.set_protocol_version(v);
    }
    link.notify("notifications/initialized", json!({}));
    if link.is_closed() {
        return Ok(());
    }
    links.insert(name.to_owned(), link.clone());
    status.up.store(true, Ordering::Relaxed);
    tracing::info!(server = name, "upstream ready");
    on_event(name, Said::ListChanged);
    Ok(())
}

/// Log the program's stderr, a JSON log line per line tagged with the server (at most
/// [`STDERR_LINES_PER_SECOND`] a second, each cut at [`STDERR_LINE_CHARS`]; memory bounded
/// whatever the program prints).
async fn log_stderr(name: String, stderr: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stderr);
    let (mut second, mut logged, mut skipped) = (Instant::now(), 0u32, 0u64);
    while let Some(line) = next_line(&mut reader, 64 * 1024).await {
        if second.elapsed() >= Duration::from_secs(1) {
            if skipped > 0 {
                tracing::warn!(server = %name, skipped, "stdio server stderr lines not logged (rate limit)");
            }
            (second, logged, skipped) = (Instant::now(), 0, 0);
        }
        if logged >= STDERR_LINES_PER_SECOND {
            skipped += 1;
            continue;
        }
        logged += 1;
        let text = match line {
            Line::Text(bytes) => String::from_utf8_lossy(&bytes).chars().take(STDERR_LINE_CHARS).collect::<String>(),
            Line::Overlong(_) => "[a line over 64 KiB, not logged]".to_owned(),
        };
        tracing::info!(server = %name, stderr = %text.trim_end(), "stdio server stderr");
    }
}
