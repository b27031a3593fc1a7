//! The release server as a child process: start, first answer, memory, SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::time::Instant;

use crate::stats::Memory;

/// How to start `twostep serve`.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    /// `--database` (PostgreSQL); SQLite in the data dir otherwise.
    pub database: Option<String>,
    pub key_hex: String,
    pub admin_password: String,
    pub log: PathBuf,
    /// More arguments for `twostep serve`.
    pub extra_args: Vec<String>,
}

/// CPU time and context switches of the server so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub cpu_seconds: f64,
    /// Of the threads alive now (the runtime's and the database connections' threads
    /// live as long as the server).
    pub context_switches: u64,
}

pub struct Server {
    child: tokio::process::Child,
    pub pid: u32,
    pub address: String,
    pub log: PathBuf,
    /// Spawn → first `200` from `/healthz`.
    pub start_to_first_answer: Duration,
}

/// A port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

impl Server {
    /// Starts the server and waits for its first `200` from `/healthz`, polling every
    /// 0.5 ms; the time from just before the spawn to that answer is
    /// `start_to_first_answer`.
    pub async fn start(config: &ServerConfig) -> anyhow::Result<Self> {
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.log)
            .with_context(|| format!("cannot write the server log {}", config.log.display()))?;
        let mut command = tokio::process::Command::new(&config.binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(&address)
            .arg("--data-dir")
            .arg(&config.data_dir);
        if let Some(database) = &config.database {
            command.arg("--database").arg(database);
        }
        command.args(&config.extra_args);
        // Nothing of the caller's TWOSTEP_* environment may change the server under test.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TWOSTEP_") {
                command.env_remove(name);
            }
        }
        command
            .env("TWOSTEP_KEY", &config.key_hex)
            .env("TWOSTEP_ADMIN_PASSWORD", &config.admin_password)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("http://{address}/healthz");
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", config.binary.display()))?;
        let pid = child.id().context("the server has no process id")?;
        loop {
            if let Ok(response) = client.get(&url).send().await {
                if response.status() == reqwest::StatusCode::OK {
                    break;
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the server exited ({status}) before answering; its log:\n{}",
                    log_tail(&config.log)
                );
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!(
                    "the server did not answer /healthz within 120 s; its log:\n{}",
                    log_tail(&config.log)
                );
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let start_to_first_answer = started.elapsed();
        Ok(Self {
            child,
            pid,
            address,
            log: config.log.clone(),
            start_to_first_answer,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// VmRSS and VmHWM now.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("cannot read the server's /proc status")?;
        let kib = |field: &str| -> f64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok(Memory {
            rss_mib: kib("VmRSS:") / 1024.0,
            peak_rss_mib: kib("VmHWM:") / 1024.0,
        })
    }

    /// The server's CPU time (user + system, all threads) and context switches so far.
    pub fn cpu(&self) -> anyhow::Result<CpuUse> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .context("cannot read the server's /proc stat")?;
        // The fields after the command name (which is in parentheses and may hold spaces):
        // utime and stime are fields 14 and 15 of the line, in clock ticks (USER_HZ, 100
        // on Linux).
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("unexpected /proc stat")?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| -> anyhow::Result<f64> {
            Ok(fields
                .get(index)
                .context("unexpected /proc stat")?
                .parse::<f64>()?)
        };
        let cpu_seconds = (ticks(11)? + ticks(12)?) / 100.0;
        let mut context_switches = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue; // the thread ended meanwhile
            };
            for line in status.lines() {
                if let Some(rest) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    context_switches += rest.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        Ok(CpuUse {
            cpu_seconds,
            context_switches,
        })
    }

    /// Resets the peak (VmHWM) to the current RSS (Linux `clear_refs` value 5); `false`
    /// when the kernel refuses.
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// SIGTERM (through `kill`), then up to 30 s for a clean exit; SIGKILL after that.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let sent = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await
            .context("cannot run `kill`")?;
        if !sent.success() {
            bail!("`kill -TERM {}` failed", self.pid);
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    eprintln!(
                        "warning: the server exited with {status}; log at {}",
                        self.log.display()
                    );
                }
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("the server did not stop within 30 s of SIGTERM; killed")
            }
        }
    }
}

/// The last lines of the server log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
