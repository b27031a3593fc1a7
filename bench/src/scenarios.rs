//! The four scenarios: workers that each own a disjoint slice of the seeded users and send
//! requests one after the other until the duration is over.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::OsRng;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::seed::{Seeded, PASSWORD};
use crate::stats::Recorder;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// (a) `POST /api/v1/verify` with valid HOTP codes, each used once.
    Verify,
    /// (b) the same with wrong codes (401 after the Failure Delay).
    Wrong,
    /// (c) `POST /api/v1/signin` then `POST /api/v1/signin/otp` with the HOTP code.
    Signin,
    /// (d) `POST /api/v1/verify/challenge`, the code from the mail folder, then verify.
    Email,
    /// All four: verify, signin, email, wrong (wrong last: its failures count toward
    /// the lockout of the users the others sign in).
    All,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Wrong => "wrong",
            Self::Signin => "signin",
            Self::Email => "email",
            Self::All => "all",
        }
    }

    pub fn expand(self) -> Vec<Scenario> {
        match self {
            Self::All => vec![Self::Verify, Self::Signin, Self::Email, Self::Wrong],
            one => vec![one],
        }
    }
}

/// Everything a scenario needs.
#[derive(Clone)]
pub struct Load {
    pub client: reqwest::Client,
    pub base: String,
    pub seeded: Arc<Seeded>,
    pub concurrency: usize,
    pub duration: Duration,
    pub mail_dir: PathBuf,
}

/// What a run of one scenario gives back, before memory is added.
pub struct Outcome {
    pub recorder: Recorder,
    pub elapsed: Duration,
    pub workers: usize,
    pub notes: Vec<String>,
}

/// An answer: the status and the JSON body (`Null` when there is none).
type Answer = Result<(u16, Value), String>;

async fn post(client: &reqwest::Client, url: &str, token: Option<&str>, body: &Value) -> Answer {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|error| transport(&error))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|error| transport(&error))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn transport(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    format!("transport error: {kind}")
}

/// The error kind of an unexpected answer: the status and the API's error code.
fn unexpected(step: &str, answer: &Answer) -> String {
    match answer {
        Ok((status, body)) => {
            let code = body
                .get("code")
                .or_else(|| body.get("status"))
                .and_then(Value::as_str)
                .unwrap_or("");
            format!("{step}HTTP {status} {code}").trim_end().to_owned()
        }
        Err(kind) => format!("{step}{kind}"),
    }
}

/// Runs `workers` copies of `work`, worker `w` owning the indices `w, w + workers, ...`
/// of `0..count`, each until `deadline`.
async fn run_workers<F, Fut>(load: &Load, count: usize, work: F) -> (Recorder, Duration, usize)
where
    F: Fn(Load, Vec<usize>, Instant) -> Fut,
    Fut: Future<Output = Recorder> + Send + 'static,
{
    let workers = load.concurrency.min(count).max(1);
    let started = Instant::now();
    let deadline = started + load.duration;
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let mine: Vec<usize> = (w..count).step_by(workers).collect();
            tokio::spawn(work(load.clone(), mine, deadline))
        })
        .collect();
    let mut recorder = Recorder::default();
    for handle in handles {
        match handle.await {
            Ok(part) => recorder.merge(part),
            Err(error) => recorder.error(format!("worker failed: {error}")),
        }
    }
    (recorder, started.elapsed(), workers)
}

pub async fn run(load: &Load, scenario: Scenario) -> Outcome {
    let mut notes = Vec::new();
    let users = load.seeded.device_users.len();
    let (recorder, elapsed, workers) = match scenario {
        Scenario::Verify => run_workers(load, users, verify_worker).await,
        Scenario::Wrong => run_workers(load, users, wrong_worker).await,
        Scenario::Signin => run_workers(load, users, signin_worker).await,
        Scenario::Email => {
            let waiters: Waiters = Arc::default();
            let stop = Arc::new(AtomicBool::new(false));
            let unmatched = Arc::new(AtomicU64::new(0));
            let watcher = {
                let (dir, waiters, stop, unmatched) = (
                    load.mail_dir.clone(),
                    Arc::clone(&waiters),
                    Arc::clone(&stop),
                    Arc::clone(&unmatched),
                );
                std::thread::spawn(move || watch_mail(&dir, &waiters, &stop, &unmatched))
            };
            let count = load.seeded.email_users.len();
            let result = run_workers(load, count, |load, mine, deadline| {
                email_worker(load, mine, deadline, Arc::clone(&waiters))
            })
            .await;
            stop.store(true, Ordering::SeqCst);
            let _ = watcher.join();
            let unmatched = unmatched.load(Ordering::SeqCst);
            if unmatched > 0 {
                notes.push(format!(
                    "{unmatched} emails matched no waiting challenge (late, or unreadable)"
                ));
            }
            result
        }
        Scenario::All => unreachable!("expanded before running"),
    };
    if workers < load.concurrency {
        notes.push(format!(
            "only {workers} clients: each owns at least one user of its own"
        ));
    }
    Outcome {
        recorder,
        elapsed,
        workers,
        notes,
    }
}

fn verify_url(load: &Load) -> String {
    format!("{}/api/v1/verify", load.base)
}

async fn verify_worker(load: Load, mine: Vec<usize>, deadline: Instant) -> Recorder {
    let mut recorder = Recorder::default();
    let url = verify_url(&load);
    let seeded = &load.seeded;
    for &user in mine.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        // Always moves on: a code whose answer was lost is never sent again, and the
        // server's look-ahead window (10) covers the gap.
        let counter = seeded.counters[user].fetch_add(1, Ordering::Relaxed);
        let code = seeded.hotps[user].generate(counter);
        let body = json!({"username": seeded.device_users[user], "code": code.as_str()});
        let began = Instant::now();
        let answer = post(&load.client, &url, Some(&seeded.token), &body).await;
        recorder.request(began.elapsed());
        match &answer {
            Ok((200, body)) if body["result"] == "accept" => recorder.ok += 1,
            _ => recorder.error(unexpected("", &answer)),
        }
    }
    recorder
}

/// A 6-digit code that is none of the codes the server would accept for this device.
fn wrong_code(seeded: &Seeded, user: usize) -> String {
    let next = seeded.counters[user].load(Ordering::Relaxed);
    let hotp = &seeded.hotps[user];
    loop {
        let candidate = format!("{:06}", OsRng.gen_range(0..1_000_000u32));
        if !(next..=next + 10).any(|c| hotp.generate(c).as_str() == candidate) {
            return candidate;
        }
    }
}

async fn wrong_worker(load: Load, mine: Vec<usize>, deadline: Instant) -> Recorder {
    let mut recorder = Recorder::default();
    let url = verify_url(&load);
    let seeded = &load.seeded;
    for &user in mine.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let body = json!({"username": seeded.device_users[user], "code": wrong_code(seeded, user)});
        let began = Instant::now();
        let answer = post(&load.client, &url, Some(&seeded.token), &body).await;
        recorder.request(began.elapsed());
        match &answer {
            Ok((401, body)) if body["code"] == "invalid_credentials" => recorder.ok += 1,
            _ => recorder.error(unexpected("", &answer)),
        }
    }
    recorder
}

async fn signin_worker(load: Load, mine: Vec<usize>, deadline: Instant) -> Recorder {
    let mut recorder = Recorder::default();
    let signin = format!("{}/api/v1/signin", load.base);
    let otp = format!("{}/api/v1/signin/otp", load.base);
    let seeded = &load.seeded;
    for &user in mine.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let began = Instant::now();
        let body = json!({"username": seeded.device_users[user], "password": PASSWORD});
        let answer = post(&load.client, &signin, None, &body).await;
        recorder.request(began.elapsed());
        let transaction = match &answer {
            Ok((200, body)) if body["status"] == "otp_required" && body["method"] == "device" => {
                recorder.ok += 1;
                body["transaction"].as_str().unwrap_or_default().to_owned()
            }
            _ => {
                recorder.error(unexpected("password step: ", &answer));
                continue;
            }
        };
        let counter = seeded.counters[user].fetch_add(1, Ordering::Relaxed);
        let code = seeded.hotps[user].generate(counter);
        let body = json!({"transaction": transaction, "code": code.as_str()});
        let step = Instant::now();
        let answer = post(&load.client, &otp, None, &body).await;
        recorder.request(step.elapsed());
        match &answer {
            Ok((200, body)) if body["status"] == "signed_in" => {
                recorder.ok += 1;
                recorder.flows.push(crate::stats::micros(began.elapsed()));
            }
            _ => recorder.error(unexpected("OTP step: ", &answer)),
        }
    }
    recorder
}

/// Email address (lower case) → the worker waiting for its code.
type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>;

/// How long a challenge's email may take to appear.
const MAIL_TIMEOUT: Duration = Duration::from_secs(30);

async fn email_worker(
    load: Load,
    mine: Vec<usize>,
    deadline: Instant,
    waiters: Waiters,
) -> Recorder {
    let mut recorder = Recorder::default();
    let challenge = format!("{}/api/v1/verify/challenge", load.base);
    let url = verify_url(&load);
    let seeded = &load.seeded;
    for &user in mine.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let (username, address) = &seeded.email_users[user];
        // Registered before the challenge: the email may be written before its answer.
        let (sender, receiver) = oneshot::channel();
        if let Ok(mut waiting) = waiters.lock() {
            waiting.insert(address.to_ascii_lowercase(), sender);
        }
        let began = Instant::now();
        let answer = post(
            &load.client,
            &challenge,
            Some(&seeded.token),
            &json!({"username": username}),
        )
        .await;
        recorder.request(began.elapsed());
        let transaction = match &answer {
            Ok((202, body)) if body["transaction"].is_string() => {
                recorder.ok += 1;
                body["transaction"].as_str().unwrap_or_default().to_owned()
            }
            _ => {
                recorder.error(unexpected("challenge: ", &answer));
                if let Ok(mut waiting) = waiters.lock() {
                    waiting.remove(&address.to_ascii_lowercase());
                }
                continue;
            }
        };
        let answered = Instant::now();
        let code = match tokio::time::timeout(MAIL_TIMEOUT, receiver).await {
            Ok(Ok(code)) => code,
            _ => {
                recorder.error("challenge: no email within 30 s");
                if let Ok(mut waiting) = waiters.lock() {
                    waiting.remove(&address.to_ascii_lowercase());
                }
                continue;
            }
        };
        recorder
            .mail_waits
            .push(crate::stats::micros(answered.elapsed()));
        let body = json!({"username": username, "code": code, "transaction": transaction});
        let step = Instant::now();
        let answer = post(&load.client, &url, Some(&seeded.token), &body).await;
        recorder.request(step.elapsed());
        match &answer {
            Ok((200, body)) if body["result"] == "accept" => {
                recorder.ok += 1;
                recorder.flows.push(crate::stats::micros(began.elapsed()));
            }
            _ => recorder.error(unexpected("verify: ", &answer)),
        }
    }
    recorder
}

/// Reads each new `.eml` of the mail folder (the server writes `.<name>.tmp` and renames
/// it, so a listed `.eml` is complete), hands its code to the worker waiting for its `To:`
/// address and deletes it, so that the folder stays small and a listing stays cheap.
/// Polls every millisecond while nothing arrives.
fn watch_mail(dir: &Path, waiters: &Waiters, stop: &AtomicBool, unmatched: &AtomicU64) {
    while !stop.load(Ordering::SeqCst) {
        let mut found = 0;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') || !name.ends_with(".eml") {
                    continue;
                }
                let path = entry.path();
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let _ = std::fs::remove_file(&path);
                found += 1;
                let sender = to_address(&text).and_then(|to| {
                    waiters
                        .lock()
                        .ok()
                        .and_then(|mut waiting| waiting.remove(&to))
                });
                match (sender, code_in_email(&text)) {
                    (Some(sender), Some(code)) => {
                        let _ = sender.send(code);
                    }
                    _ => {
                        unmatched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        if found == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The address of the `To:` header, lower case.
fn to_address(mail: &str) -> Option<String> {
    let header = mail
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("to").then_some(value.trim())
        })?;
    let address = match (header.rfind('<'), header.rfind('>')) {
        (Some(open), Some(close)) if open < close => &header[open + 1..close],
        _ => header,
    };
    Some(address.trim().to_ascii_lowercase())
}

/// The code: the first line of the (quoted-printable decoded) message that is nothing but
/// 6 to 20 digits.
fn code_in_email(mail: &str) -> Option<String> {
    let joined = mail.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut decoded = String::with_capacity(joined.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Some(value) = joined
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                decoded.push(char::from(value));
                i += 3;
                continue;
            }
        }
        decoded.push(char::from(bytes[i]));
        i += 1;
    }
    decoded
        .lines()
        .map(str::trim)
        .find(|line| (6..=20).contains(&line.len()) && line.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_and_the_address_are_read_from_an_email() {
        let mail = "From: twostep <noreply@example.org>\r\nTo: load-e0000003 <Load-E0000003@example.org>\r\nSubject: Your code\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nYour code is:\r\n\r\n123456\r\n\r\nIt expires in 15 minutes.=\r\n\r\n";
        assert_eq!(
            to_address(mail).as_deref(),
            Some("load-e0000003@example.org")
        );
        assert_eq!(code_in_email(mail).as_deref(), Some("123456"));
        assert_eq!(
            to_address("To: a@example.org\r\n\r\nbody").as_deref(),
            Some("a@example.org")
        );
    }
}
