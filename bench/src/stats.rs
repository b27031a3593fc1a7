//! Latencies and error counts of one scenario, and what is printed of them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// What one worker saw: latencies in microseconds and errors by kind.
#[derive(Default)]
pub struct Recorder {
    /// Every HTTP request (including those that failed).
    pub requests: Vec<u32>,
    /// Every completed flow (sign-in: password + OTP; email: challenge + mail + verify).
    pub flows: Vec<u32>,
    /// Email: from the challenge's answer to the code read from the mail folder.
    pub mail_waits: Vec<u32>,
    /// Requests that got the expected answer.
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn request(&mut self, took: Duration) {
        self.requests.push(micros(took));
    }

    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        self.requests.extend(other.requests);
        self.flows.extend(other.flows);
        self.mail_waits.extend(other.mail_waits);
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
    }
}

pub fn micros(took: Duration) -> u32 {
    u32::try_from(took.as_micros()).unwrap_or(u32::MAX)
}

/// p50/p95/p99/max in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut samples: Vec<u32>, elapsed: Duration) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        // Nearest rank: the smallest sample with at least q of the samples at or below it.
        let at = |q: f64| {
            let rank = (q * samples.len() as f64).ceil() as usize;
            f64::from(samples[rank.clamp(1, samples.len()) - 1]) / 1000.0
        };
        let count = samples.len() as u64;
        Some(Self {
            count,
            per_second: count as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: f64::from(samples[samples.len() - 1]) / 1000.0,
        })
    }
}

/// The server's memory, from `/proc/<pid>/status`, in MiB.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss_mib: f64,
    /// VmHWM: the peak resident size (since the start, or since the reset before the
    /// scenario when `peak_reset` is true).
    pub peak_rss_mib: f64,
}

/// The server's CPU use during a scenario (it shares the cores with this tool, so CPU
/// per request is steadier than requests per second on a busy machine).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ServerCpu {
    /// User + system time of all the server's threads.
    pub cpu_seconds: f64,
    pub cpu_ms_per_request: f64,
    /// Voluntary + involuntary switches of the server's threads per request.
    pub context_switches_per_request: f64,
}

/// The figures of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: &'static str,
    /// What was measured, in words.
    pub what: String,
    pub concurrency: usize,
    pub elapsed_s: f64,
    /// Every HTTP request, whatever its answer.
    pub requests: Option<Latency>,
    /// Requests that got the expected answer.
    pub ok_requests: u64,
    /// Complete flows (signin, email), with their own latency.
    pub flows: Option<Latency>,
    /// Email: challenge answered → code read from the mail folder.
    pub mail_wait: Option<Latency>,
    pub errors: BTreeMap<String, u64>,
    /// Server memory at the end of the scenario; the peak covers this scenario only when
    /// `peak_reset` is true (the peak was reset through `/proc/<pid>/clear_refs`).
    pub memory: Memory,
    pub peak_reset: bool,
    pub server_cpu: ServerCpu,
    pub notes: Vec<String>,
}

fn line(label: &str, latency: &Option<Latency>) -> String {
    match latency {
        Some(l) => format!(
            "  {label:<9} {:>9} {:>10.1}/s   p50 {:>8.2}  p95 {:>8.2}  p99 {:>8.2}  max {:>8.2} ms",
            l.count, l.per_second, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        ),
        None => format!("  {label:<9} none"),
    }
}

impl ScenarioReport {
    pub fn print(&self) {
        println!();
        println!(
            "== {} ({} clients, {:.1} s): {}",
            self.scenario, self.concurrency, self.elapsed_s, self.what
        );
        println!("{}", line("requests", &self.requests));
        println!("  expected answers: {}", self.ok_requests);
        if self.flows.is_some() {
            println!("{}", line("flows", &self.flows));
        }
        if self.mail_wait.is_some() {
            println!("{}", line("mail wait", &self.mail_wait));
        }
        if self.errors.is_empty() {
            println!("  errors: none");
        } else {
            println!("  errors:");
            for (kind, count) in &self.errors {
                println!("    {count:>9}  {kind}");
            }
        }
        println!(
            "  server RSS: peak {:.1} MiB{}, at the end {:.1} MiB",
            self.memory.peak_rss_mib,
            if self.peak_reset {
                " (this scenario)"
            } else {
                " (since start)"
            },
            self.memory.rss_mib
        );
        println!(
            "  server CPU: {:.2} s, {:.3} ms per request, {:.1} context switches per request",
            self.server_cpu.cpu_seconds,
            self.server_cpu.cpu_ms_per_request,
            self.server_cpu.context_switches_per_request
        );
        for note in &self.notes {
            println!("  note: {note}");
        }
    }
}
