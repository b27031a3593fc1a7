//! `twostep-load`: seeds users into a fresh database and drives the JSON API of the
//! release server (`target/release/twostep`, built by `cargo build --release` first).
//!
//! ```sh
//! cargo build --release
//! cargo run --release -p twostep-load -- --scenario verify --users 1000 --concurrency 64 --duration 10
//! ```
//!
//! Steps: a fresh data dir (or PostgreSQL schema); a first server start creates the
//! database; SIGTERM; users, devices, roles, settings and an API token are seeded through
//! twostep's `Store` API; a second start is timed (spawn → first `200` from `/healthz`);
//! the scenarios run; SIGTERM; the data dir and schema are removed. See `bench/README.md`.

mod scenarios;
mod seed;
mod server;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Serialize;
use twostep::clock::{Clock, SystemClock};
use twostep::crypto::MasterKey;

use scenarios::{Load, Scenario};
use server::{Server, ServerConfig};
use stats::ScenarioReport;

/// Load tool for twostep's JSON API. Needs the release server: run `cargo build --release`
/// first.
#[derive(Debug, Parser)]
#[command(name = "twostep-load", version)]
struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value = "verify")]
    scenario: Scenario,

    /// Users with a confirmed HOTP device (role Force, no OTP Required; Every Login).
    #[arg(long, default_value_t = 1000)]
    users: usize,

    /// Users without a device in an OTP Required role, with an email address (email
    /// scenario only). Default: as many as --users, at most 10,000.
    #[arg(long)]
    email_users: Option<usize>,

    /// Concurrent clients, each sending one request after the other.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,

    /// Seconds each scenario runs.
    #[arg(long, default_value_t = 10)]
    duration: u64,

    /// A PostgreSQL server URL, e.g. postgres://postgres@127.0.0.1:5432/test: the run uses
    /// a fresh schema `load_<random>` there, dropped at the end. Default: SQLite in the
    /// data dir.
    #[arg(long)]
    database: Option<String>,

    /// The data dir (must be empty or absent); kept afterwards. Default: a temp dir,
    /// removed at the end.
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// The server binary. Default: target/release/twostep of this workspace.
    #[arg(long)]
    server: Option<PathBuf>,

    /// Failure Delay (ms) for the run. Default: the server's default, 500 ms, which bounds
    /// the wrong-code scenario to about concurrency / 0.5 s.
    #[arg(long)]
    failure_delay_ms: Option<u32>,

    /// Concurrent seeding tasks. Default: 16 on PostgreSQL; 1 on SQLite, whose writes
    /// take turns anyway (more tasks only wait on the write lock: 20,000 users took
    /// 5.5 s with 1 task, 6.0 s with 4 and 11.7 s with 16).
    #[arg(long)]
    seed_tasks: Option<usize>,

    /// SQLite: seed on the database file itself instead of a copy in /dev/shm (see
    /// `seed_in_memory`). Seeding then waits for about three fsyncs per user.
    #[arg(long)]
    seed_on_disk: bool,

    /// One more argument for `twostep serve`, e.g. `--server-arg=--db-max-connections=4`
    /// (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,

    /// Threads of this tool's own runtime (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,

    /// Keep the temp data dir and the PostgreSQL schema.
    #[arg(long)]
    keep: bool,

    /// Print one JSON document instead of the text report.
    #[arg(long)]
    json: bool,
}

/// Everything the run measured.
#[derive(Debug, Serialize)]
struct Report {
    /// Unix milliseconds when the run ended.
    finished_unix_ms: i64,
    backend: &'static str,
    users: usize,
    email_users: usize,
    concurrency: usize,
    duration_s: u64,
    failure_delay_ms: u32,
    password_hash: &'static str,
    seed_seconds: f64,
    /// The first start, which creates the database.
    first_start_new_database_ms: f64,
    /// Spawn → first 200 from /healthz, on the seeded (existing) database.
    start_to_first_answer_ms: f64,
    /// VmRSS right after that first answer.
    idle_rss_mib: f64,
    scenarios: Vec<ScenarioReport>,
}

const ARGON2_COST: &str = "argon2id m=19456 KiB, t=2, p=1 (the server's default)";

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("twostep-load: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Where the run's database lives, and how to remove it.
struct Database {
    /// For the Store: `sqlite://...` or the PostgreSQL URL with the schema's search path.
    store_url: String,
    /// For `twostep serve --database` (PostgreSQL only).
    server_url: Option<String>,
    /// PostgreSQL: (server URL, schema) to drop at the end.
    pg_schema: Option<(String, String)>,
}

async fn create_schema(server: &str) -> anyhow::Result<(String, String)> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {server}"))?;
    let schema = format!("load_{:016x}", OsRng.next_u64());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await?;
    admin.close().await.ok();
    let separator = if server.contains('?') { '&' } else { '?' };
    Ok((
        format!("{server}{separator}options=-c%20search_path%3D{schema}"),
        schema,
    ))
}

async fn drop_schema(server: &str, schema: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut admin)
        .await?;
    admin.close().await.ok();
    Ok(())
}

fn server_binary(args: &Args) -> anyhow::Result<PathBuf> {
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("release/twostep")
        }
    };
    if !binary.is_file() {
        bail!(
            "the server binary {} is missing: run `cargo build --release` first (or pass --server PATH)",
            binary.display()
        );
    }
    Ok(std::fs::canonicalize(&binary).unwrap_or(binary))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.concurrency == 0 || args.users == 0 || args.duration == 0 {
        bail!("--users, --concurrency and --duration must be at least 1");
    }
    let binary = server_binary(&args)?;
    let (temp, data_dir) = match &args.data_dir {
        Some(dir) => {
            if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                bail!("--data-dir {} is not empty", dir.display());
            }
            std::fs::create_dir_all(dir)?;
            (None, dir.clone())
        }
        None => {
            let temp = tempfile::Builder::new().prefix("twostep-load-").tempdir()?;
            let path = temp.path().to_path_buf();
            (Some(temp), path)
        }
    };
    let database = match &args.database {
        Some(server) => {
            let (url, schema) = create_schema(server).await?;
            Database {
                store_url: url.clone(),
                server_url: Some(url),
                pg_schema: Some((server.clone(), schema)),
            }
        }
        None => Database {
            store_url: format!("sqlite://{}", data_dir.join("twostep.db").display()),
            server_url: None,
            pg_schema: None,
        },
    };
    // Ctrl-C drops the run: the server (kill_on_drop) goes with it, and the data dir and
    // schema are still removed below.
    let result = tokio::select! {
        result = measure(&args, binary, &data_dir, &database) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if args.keep {
        if let Some(temp) = temp {
            eprintln!("kept the data dir {}", temp.keep().display());
        }
        if let Some((_, schema)) = &database.pg_schema {
            eprintln!("kept the PostgreSQL schema {schema}");
        }
    } else {
        drop(temp);
        if let Some((server, schema)) = &database.pg_schema {
            if let Err(error) = drop_schema(server, schema).await {
                eprintln!("warning: the schema {schema} was not dropped: {error:#}");
            }
        }
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

async fn measure(
    args: &Args,
    binary: PathBuf,
    data_dir: &std::path::Path,
    database: &Database,
) -> anyhow::Result<Report> {
    let scenarios = args.scenario.expand();
    let email_users = if scenarios.contains(&Scenario::Email) {
        args.email_users.unwrap_or(args.users.min(10_000))
    } else {
        0
    };
    let config = ServerConfig {
        binary,
        data_dir: data_dir.to_path_buf(),
        database: database.server_url.clone(),
        key_hex: MasterKey::generate(&mut OsRng).to_hex(),
        admin_password: format!("load-admin-{:016x}", OsRng.next_u64()),
        log: data_dir.join("server.log"),
        extra_args: args.server_arg.clone(),
    };
    let backend = if database.pg_schema.is_some() {
        "postgres"
    } else {
        "sqlite"
    };

    eprintln!(
        "twostep-load: {backend}, data dir {}, server {}",
        data_dir.display(),
        config.binary.display()
    );
    let first = Server::start(&config)
        .await
        .context("first start (new database)")?;
    let first_start = first.start_to_first_answer;
    first.stop().await?;

    let seed_tasks = args
        .seed_tasks
        .unwrap_or(if database.pg_schema.is_some() { 16 } else { 1 })
        .max(1);
    eprintln!(
        "seeding {} device users and {email_users} email users ({seed_tasks} tasks)...",
        args.users
    );
    // SQLite: the seeding works on a copy of the database file in /dev/shm (tmpfs, where an
    // fsync costs nothing) that then replaces the file in the data dir, synced; the server
    // only ever runs on the data dir's file. On the disk itself seeding would wait for
    // about three fsyncs per user (~720 users/s here: 23 minutes for a million).
    let shm = PathBuf::from("/dev/shm");
    let in_memory = if database.pg_schema.is_none() && !args.seed_on_disk && shm.is_dir() {
        let dir = tempfile::Builder::new()
            .prefix("twostep-load-seed-")
            .tempdir_in(&shm)?;
        for suffix in ["", "-wal", "-shm"] {
            let from = data_dir.join(format!("twostep.db{suffix}"));
            if from.exists() {
                std::fs::copy(&from, dir.path().join(format!("twostep.db{suffix}")))?;
            }
        }
        Some(dir)
    } else {
        None
    };
    let seed_url = match &in_memory {
        Some(dir) => format!("sqlite://{}", dir.path().join("twostep.db").display()),
        None => database.store_url.clone(),
    };
    let seeded = seed::seed(&seed::SeedOptions {
        database_url: seed_url,
        key_hex: config.key_hex.clone(),
        users: args.users,
        email_users,
        tasks: seed_tasks,
        failure_delay_ms: args.failure_delay_ms,
    })
    .await
    .context("seeding")?;
    if let Some(dir) = in_memory {
        move_back(dir.path(), data_dir).context("moving the seeded database back")?;
    }
    eprintln!("seeded in {:.1} s", seeded.seconds);

    let server = Server::start(&config)
        .await
        .context("second start (seeded database)")?;
    let idle = server.memory()?;
    let start_to_first_answer_ms = server.start_to_first_answer.as_secs_f64() * 1000.0;
    eprintln!(
        "start to first answer: {:.1} ms; idle RSS {:.1} MiB",
        start_to_first_answer_ms, idle.rss_mib
    );

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let seed_seconds = seeded.seconds;
    let failure_delay_ms = seeded.failure_delay_ms;
    let load = Load {
        client,
        base: server.base_url(),
        seeded: Arc::new(seeded),
        concurrency: args.concurrency,
        duration: Duration::from_secs(args.duration),
        mail_dir: data_dir.join("mail"),
    };

    let mut reports = Vec::new();
    let mut outcome = Ok(());
    for scenario in scenarios {
        eprintln!("running {} for {} s...", scenario.name(), args.duration);
        let peak_reset = server.reset_peak();
        let cpu_before = server.cpu()?;
        let result = scenarios::run(&load, scenario).await;
        let cpu_after = server.cpu().unwrap_or(cpu_before);
        let memory = match server.memory() {
            Ok(memory) => memory,
            Err(error) => {
                outcome = Err(error.context(format!(
                    "the server died during {}; log:\n{}",
                    scenario.name(),
                    server::log_tail(&server.log)
                )));
                break;
            }
        };
        let mut notes = result.notes;
        notes.extend(scenario_notes(scenario, failure_delay_ms, args.concurrency));
        let recorder = result.recorder;
        let answered = recorder.requests.len().max(1) as f64;
        let cpu_seconds = cpu_after.cpu_seconds - cpu_before.cpu_seconds;
        let server_cpu = stats::ServerCpu {
            cpu_seconds,
            cpu_ms_per_request: cpu_seconds * 1000.0 / answered,
            context_switches_per_request: cpu_after
                .context_switches
                .saturating_sub(cpu_before.context_switches)
                as f64
                / answered,
        };
        reports.push(ScenarioReport {
            scenario: scenario.name(),
            what: what(scenario).to_owned(),
            concurrency: result.workers,
            elapsed_s: result.elapsed.as_secs_f64(),
            requests: stats::Latency::of(recorder.requests, result.elapsed),
            ok_requests: recorder.ok,
            flows: stats::Latency::of(recorder.flows, result.elapsed),
            mail_wait: stats::Latency::of(recorder.mail_waits, result.elapsed),
            errors: recorder.errors,
            memory,
            peak_reset,
            server_cpu,
            notes,
        });
    }
    server.stop().await?;
    outcome?;

    Ok(Report {
        finished_unix_ms: SystemClock.now().millis(),
        backend,
        users: args.users,
        email_users,
        concurrency: args.concurrency,
        duration_s: args.duration,
        failure_delay_ms,
        password_hash: ARGON2_COST,
        seed_seconds,
        first_start_new_database_ms: first_start.as_secs_f64() * 1000.0,
        start_to_first_answer_ms,
        idle_rss_mib: idle.rss_mib,
        scenarios: reports,
    })
}

/// Replaces the data dir's database with the seeded copy in `from` (closed, so its WAL
/// was checkpointed), and syncs the file and the folder.
fn move_back(from: &std::path::Path, data_dir: &std::path::Path) -> anyhow::Result<()> {
    for suffix in ["-wal", "-shm"] {
        let old = data_dir.join(format!("twostep.db{suffix}"));
        if old.exists() {
            std::fs::remove_file(old)?;
        }
    }
    for suffix in ["", "-wal"] {
        let source = from.join(format!("twostep.db{suffix}"));
        if source.exists() {
            let target = data_dir.join(format!("twostep.db{suffix}"));
            std::fs::copy(&source, &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(())
}

fn what(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Verify => "POST /api/v1/verify with valid HOTP codes, each used once (expect 200 accept)",
        Scenario::Wrong => "POST /api/v1/verify with wrong codes (expect 401 invalid_credentials)",
        Scenario::Signin => {
            "POST /api/v1/signin (password) then /api/v1/signin/otp (HOTP code); a flow is one complete sign-in"
        }
        Scenario::Email => {
            "POST /api/v1/verify/challenge, the code read from <data-dir>/mail, POST /api/v1/verify with it; a flow is all three"
        }
        Scenario::All => "",
    }
}

fn scenario_notes(scenario: Scenario, failure_delay_ms: u32, concurrency: usize) -> Vec<String> {
    match scenario {
        Scenario::Wrong if failure_delay_ms > 0 => vec![format!(
            "every failure is answered no sooner than Failure Delay = {failure_delay_ms} ms: at most about {:.0} requests/s with {concurrency} clients",
            concurrency as f64 * 1000.0 / f64::from(failure_delay_ms)
        )],
        Scenario::Signin => vec![format!(
            "each sign-in verifies one password with {ARGON2_COST}; the server hashes at most one password per core at a time"
        )],
        _ => Vec::new(),
    }
}

fn print_report(report: &Report) {
    println!(
        "twostep-load: {} | {} device users, {} email users | {} clients | {} s per scenario",
        report.backend, report.users, report.email_users, report.concurrency, report.duration_s
    );
    println!("seeding: {:.1} s", report.seed_seconds);
    println!(
        "first start (new database): {:.1} ms to the first answer",
        report.first_start_new_database_ms
    );
    println!(
        "start to first answer (existing database): {:.1} ms; idle RSS right after: {:.1} MiB",
        report.start_to_first_answer_ms, report.idle_rss_mib
    );
    println!(
        "Failure Delay: {} ms; password hashing: {}",
        report.failure_delay_ms, report.password_hash
    );
    for scenario in &report.scenarios {
        scenario.print();
    }
}
