//! Counters of one instance, served at `/metrics` in the Prometheus text format (version
//! 0.0.4): sign-ins by outcome, OTP checks by method and outcome, emails by outcome, the
//! latency of requests by route, and database pool usage.
//!
//! Metrics never change an answer: they are written, and read only by the scrape. Each
//! instance counts its own traffic; Prometheus sums instances (`sum without (instance)`).
//! No label carries user input: routes are the router's patterns, outcomes are fixed names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::domain::OtpMethod;

/// How a sign-in attempt ended (one count per answer of the password or a code step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInOutcome {
    /// All steps done: a session started.
    SignedIn,
    /// A credential was refused (unknown user, wrong password or code, locked account).
    Failed,
    /// The sign-in transaction had expired or never existed.
    Expired,
    /// An emailed OTP was needed but the user has no email address.
    EmailMissing,
}

impl SignInOutcome {
    const ALL: [Self; 4] = [
        Self::SignedIn,
        Self::Failed,
        Self::Expired,
        Self::EmailMissing,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::SignedIn => "signed_in",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::EmailMissing => "email_missing",
        }
    }
}

/// Which kind of code an OTP check was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpCheckMethod {
    Totp,
    Hotp,
    Email,
    /// A recovery code where a device code was asked (SPEC 10).
    Recovery,
    /// A security key's or passkey's assertion (SPEC 14).
    SecurityKey,
    /// A temporary access code where a code was asked (SPEC 15).
    TemporaryAccess,
}

impl OtpCheckMethod {
    const ALL: [Self; 6] = [
        Self::Totp,
        Self::Hotp,
        Self::Email,
        Self::Recovery,
        Self::SecurityKey,
        Self::TemporaryAccess,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Hotp => "hotp",
            Self::Email => "email",
            Self::Recovery => "recovery",
            Self::SecurityKey => "security_key",
            Self::TemporaryAccess => "temporary_access",
        }
    }
}

impl From<OtpMethod> for OtpCheckMethod {
    fn from(method: OtpMethod) -> Self {
        match method {
            OtpMethod::Totp => Self::Totp,
            OtpMethod::Hotp => Self::Hotp,
        }
    }
}

/// What became of one delivery attempt of an email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailOutcome {
    /// Handed to the SMTP server (or written to the mail folder).
    Sent,
    /// The attempt failed; another is scheduled.
    Retried,
    /// Given up: the message (its code, or a notification) expired before delivery.
    Dead,
}

impl EmailOutcome {
    const ALL: [Self; 3] = [Self::Sent, Self::Retried, Self::Dead];

    fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retried => "retried",
            Self::Dead => "dead",
        }
    }
}

/// How a bind as a directory user's entry ended (SPEC 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryBindOutcome {
    /// The password is the entry's.
    Success,
    /// Wrong password (LDAP 49 without another sub-code).
    InvalidCredentials,
    /// Any other refusal (expired or must-change password, locked or disabled in the
    /// directory, ...).
    Refused,
    /// The directory could not be reached or could not answer.
    Unavailable,
}

impl DirectoryBindOutcome {
    const ALL: [Self; 4] = [
        Self::Success,
        Self::InvalidCredentials,
        Self::Refused,
        Self::Unavailable,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Refused => "refused",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// One latency histogram (cumulative buckets are computed when rendered).
#[derive(Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The `_bucket`, `_sum` and `_count` lines of one histogram; `labels` go before `le`.
fn histogram_lines(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0u64;
    for (bound, count) in BUCKETS.iter().zip(&histogram.buckets) {
        cumulative += count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
        );
    }
    let count = histogram.count.load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0;
    if labels.is_empty() {
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    } else {
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// The database pool at the moment of a scrape.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// The counters of this instance; cheap to share (`Arc`), lock-free to count.
#[derive(Default)]
pub struct Metrics {
    signins: [AtomicU64; SignInOutcome::ALL.len()],
    otp_checks: [[AtomicU64; 2]; OtpCheckMethod::ALL.len()],
    emails: [AtomicU64; EmailOutcome::ALL.len()],
    directory_binds: [AtomicU64; DirectoryBindOutcome::ALL.len()],
    directory_bind_latency: Histogram,
    /// Latency by (route pattern, status class); the map grows only with new routes.
    requests: RwLock<BTreeMap<(String, &'static str), Arc<Histogram>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn signin(&self, outcome: SignInOutcome) {
        // The discriminant is the position in `ALL` (declaration order).
        self.signins[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn otp_check(&self, method: OtpCheckMethod, accepted: bool) {
        self.otp_checks[method as usize][usize::from(accepted)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn email(&self, outcome: EmailOutcome) {
        self.emails[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One bind as a directory user's entry, and how long it took.
    pub fn directory_bind(&self, outcome: DirectoryBindOutcome, elapsed: Duration) {
        self.directory_binds[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.directory_bind_latency.observe(elapsed);
    }

    /// One answered request: `route` is the router's pattern (`/api/v1/users/{username}`),
    /// never the concrete path, so the label set stays small.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let found = self
            .requests
            .read()
            .ok()
            .and_then(|map| map.get(&(route.to_owned(), class)).cloned());
        let histogram = match found {
            Some(histogram) => histogram,
            None => match self.requests.write() {
                Ok(mut map) => map.entry((route.to_owned(), class)).or_default().clone(),
                Err(_) => return,
            },
        };
        histogram.observe(elapsed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, pool: PoolUsage) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "twostep_signins_total",
            "counter",
            "Sign-in answers by outcome (password and code steps).",
        );
        for (outcome, count) in SignInOutcome::ALL.iter().zip(&self.signins) {
            let _ = writeln!(
                out,
                "twostep_signins_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                count.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "twostep_otp_checks_total",
            "counter",
            "One-time password checks by method and outcome.",
        );
        for (method, counts) in OtpCheckMethod::ALL.iter().zip(&self.otp_checks) {
            for (outcome, count) in ["refused", "accepted"].iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "twostep_otp_checks_total{{method=\"{}\",outcome=\"{outcome}\"}} {}",
                    method.label(),
                    count.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "twostep_emails_total",
            "counter",
            "Email delivery attempts by outcome.",
        );
        for (outcome, count) in EmailOutcome::ALL.iter().zip(&self.emails) {
            let _ = writeln!(
                out,
                "twostep_emails_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                count.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "twostep_directory_binds_total",
            "counter",
            "Binds as a directory user's entry (password checks) by outcome.",
        );
        for (outcome, count) in DirectoryBindOutcome::ALL.iter().zip(&self.directory_binds) {
            let _ = writeln!(
                out,
                "twostep_directory_binds_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                count.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "twostep_directory_bind_duration_seconds",
            "histogram",
            "Time a bind as a directory user's entry took, connection included.",
        );
        histogram_lines(
            &mut out,
            "twostep_directory_bind_duration_seconds",
            "",
            &self.directory_bind_latency,
        );
        header(
            &mut out,
            "twostep_http_request_duration_seconds",
            "histogram",
            "Time from request to response, by route and status class.",
        );
        if let Ok(map) = self.requests.read() {
            for ((route, class), histogram) in map.iter() {
                let labels = format!("route=\"{}\",status=\"{class}\"", escape(route));
                histogram_lines(
                    &mut out,
                    "twostep_http_request_duration_seconds",
                    &labels,
                    histogram,
                );
            }
        }
        header(
            &mut out,
            "twostep_db_pool_connections",
            "gauge",
            "Database connections of this instance by state.",
        );
        let in_use = pool.open.saturating_sub(pool.idle);
        let _ = writeln!(
            out,
            "twostep_db_pool_connections{{state=\"in_use\"}} {in_use}"
        );
        let _ = writeln!(
            out,
            "twostep_db_pool_connections{{state=\"idle\"}} {}",
            pool.idle
        );
        header(
            &mut out,
            "twostep_db_pool_max_connections",
            "gauge",
            "The most database connections this instance opens.",
        );
        let _ = writeln!(out, "twostep_db_pool_max_connections {}", pool.max);
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix} in\n{text}"))
    }

    #[test]
    fn counters_start_at_zero_and_count_each_outcome_apart() {
        let metrics = Metrics::new();
        let text = metrics.render(PoolUsage::default());
        assert_eq!(
            line(&text, "twostep_signins_total{outcome=\"signed_in\"}"),
            "twostep_signins_total{outcome=\"signed_in\"} 0"
        );
        metrics.signin(SignInOutcome::Failed);
        metrics.signin(SignInOutcome::Failed);
        metrics.signin(SignInOutcome::SignedIn);
        metrics.otp_check(OtpCheckMethod::Hotp, true);
        metrics.otp_check(OtpCheckMethod::Email, false);
        metrics.email(EmailOutcome::Dead);
        let text = metrics.render(PoolUsage {
            open: 5,
            idle: 2,
            max: 16,
        });
        assert!(text.contains("twostep_signins_total{outcome=\"failed\"} 2\n"));
        assert!(text.contains("twostep_signins_total{outcome=\"signed_in\"} 1\n"));
        assert!(text.contains("twostep_signins_total{outcome=\"expired\"} 0\n"));
        assert!(text.contains("twostep_otp_checks_total{method=\"hotp\",outcome=\"accepted\"} 1\n"));
        assert!(text.contains("twostep_otp_checks_total{method=\"hotp\",outcome=\"refused\"} 0\n"));
        assert!(text.contains("twostep_otp_checks_total{method=\"email\",outcome=\"refused\"} 1\n"));
        assert!(text.contains("twostep_emails_total{outcome=\"dead\"} 1\n"));
        assert!(text.contains("twostep_emails_total{outcome=\"sent\"} 0\n"));
        assert!(text.contains("twostep_db_pool_connections{state=\"in_use\"} 3\n"));
        assert!(text.contains("twostep_db_pool_connections{state=\"idle\"} 2\n"));
        assert!(text.contains("twostep_db_pool_max_connections 16\n"));
    }

    #[test]
    fn latency_buckets_are_cumulative_and_end_with_the_count() {
        let metrics = Metrics::new();
        metrics.request("/api/v1/signin", 200, Duration::from_micros(800));
        metrics.request("/api/v1/signin", 204, Duration::from_millis(30));
        metrics.request("/api/v1/signin", 401, Duration::from_secs(20));
        let text = metrics.render(PoolUsage::default());
        let labels = "route=\"/api/v1/signin\",status=\"2xx\"";
        assert!(text.contains(&format!(
            "twostep_http_request_duration_seconds_bucket{{{labels},le=\"0.001\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "twostep_http_request_duration_seconds_bucket{{{labels},le=\"0.025\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "twostep_http_request_duration_seconds_bucket{{{labels},le=\"0.05\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "twostep_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "twostep_http_request_duration_seconds_count{{{labels}}} 2\n"
        )));
        assert!(text.contains(&format!(
            "twostep_http_request_duration_seconds_sum{{{labels}}} 0.0308\n"
        )));
        let slow = "route=\"/api/v1/signin\",status=\"4xx\"";
        assert!(text.contains(&format!(
            "twostep_http_request_duration_seconds_bucket{{{slow},le=\"10\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "twostep_http_request_duration_seconds_bucket{{{slow},le=\"+Inf\"}} 1\n"
        )));
    }

    #[test]
    fn each_outcome_counts_in_its_own_slot() {
        for (i, o) in SignInOutcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
        for (i, m) in OtpCheckMethod::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
        }
        for (i, o) in EmailOutcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_metric_has_help_and_type_before_its_samples() {
        let metrics = Metrics::new();
        metrics.request("/", 200, Duration::from_millis(1));
        let text = metrics.render(PoolUsage::default());
        let mut declared = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                let base = name
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count");
                assert!(
                    declared.contains(name) || declared.contains(base),
                    "{name} has no TYPE line before it"
                );
            }
        }
    }
}
