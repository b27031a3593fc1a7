//! Cross-check of the OTP engine with an independent implementation: OATH Toolkit's
//! `oathtool` (Debian package `oathtool`), on random secrets, counters and times.

use std::path::Path;
use std::process::Command;

use rand::rngs::{OsRng, StdRng};
use rand::{Rng, RngCore, SeedableRng};
use twostep::otp::{Algorithm, Digits, Hotp, OtpSecret, Period, Totp};

use crate::helpers::require_program;

const CASES: usize = 1_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn oathtool(program: &Path, args: &[String]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .expect("oathtool runs");
    assert!(
        output.status.success(),
        "oathtool {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// A seeded RNG whose seed is printed, so that a failing case can be replayed with
/// `TWOSTEP_TEST_SEED`.
fn seeded_rng() -> StdRng {
    let seed = std::env::var("TWOSTEP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| OsRng.next_u64());
    eprintln!("TWOSTEP_TEST_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

fn random_secret(rng: &mut StdRng) -> OtpSecret {
    let mut key = vec![0u8; rng.gen_range(16..=64)];
    rng.fill_bytes(&mut key);
    OtpSecret::from_bytes(key).expect("16 to 64 bytes")
}

/// Runs `check` for `CASES` cases on two threads (oathtool is a process per case).
fn run_cases(check: impl Fn(&mut StdRng) + Sync) {
    let base_seed: u64 = seeded_rng().gen();
    std::thread::scope(|scope| {
        for thread in 0..2u64 {
            let check = &check;
            scope.spawn(move || {
                let mut rng = StdRng::seed_from_u64(base_seed ^ thread);
                for _ in 0..CASES / 2 {
                    check(&mut rng);
                }
            });
        }
    });
}

#[test]
fn hotp_agrees_with_oathtool_on_random_secrets_and_counters() {
    let Some(program) = require_program("oathtool", "apt-get install oathtool") else {
        return;
    };
    for digits in [Digits::SIX, Digits::EIGHT] {
        run_cases(|rng| {
            let hotp = Hotp {
                secret: random_secret(rng),
                algorithm: Algorithm::Sha1,
                digits,
            };
            // oathtool reads the counter as a signed 64-bit number.
            let counter = rng.gen_range(0..=i64::MAX as u64);
            let expected = oathtool(
                &program,
                &[
                    "--hotp".into(),
                    format!("--digits={}", digits.get()),
                    format!("--counter={counter}"),
                    hex(hotp.secret.as_bytes()),
                ],
            );
            assert_eq!(
                hotp.generate(counter).as_str(),
                expected,
                "counter {counter}"
            );
            assert_eq!(
                hotp.verify(&hotp.generate(counter), counter, 0),
                Some(counter)
            );
        });
    }
}

#[test]
fn totp_agrees_with_oathtool_on_random_secrets_and_times() {
    let Some(program) = require_program("oathtool", "apt-get install oathtool") else {
        return;
    };
    for digits in [Digits::SIX, Digits::EIGHT] {
        run_cases(|rng| {
            let algorithm =
                [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][rng.gen_range(0..3)];
            let period = Period::new([30, 60][rng.gen_range(0..2)]).expect("valid period");
            let totp = Totp {
                secret: random_secret(rng),
                algorithm,
                digits,
                period,
            };
            // Up to the year 3000.
            let time: u64 = rng.gen_range(0..32_503_680_000);
            let expected = oathtool(
                &program,
                &[
                    format!("--totp={}", algorithm.as_str()),
                    format!("--digits={}", digits.get()),
                    format!("--time-step-size={}s", period.get()),
                    format!("--now=@{time}"),
                    hex(totp.secret.as_bytes()),
                ],
            );
            assert_eq!(
                totp.generate_at(time).as_str(),
                expected,
                "{algorithm:?} at {time}"
            );
            assert_eq!(
                totp.verify(&totp.generate_at(time), time, 0, None),
                Some(totp.step_at(time))
            );
        });
    }
}
