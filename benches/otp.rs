//! OTP verification cost: `cargo bench --bench otp`.
//!
//! TOTP with skew 1 computes 3 candidates, HOTP with window 10 computes 11; both key the
//! HMAC once per verification. The wrong-code cases are the worst case (no early exit
//! happens in either case: every candidate is always computed).

// A benchmark may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use twostep::otp::{Algorithm, Digits, Hotp, OtpCode, OtpSecret, Period, Totp};

fn secret() -> OtpSecret {
    OtpSecret::from_bytes(b"12345678901234567890".to_vec()).expect("20 bytes")
}

fn verify(c: &mut Criterion) {
    let now = 1_700_000_000u64;
    let totp = Totp {
        secret: secret(),
        algorithm: Algorithm::Sha1,
        digits: Digits::SIX,
        period: Period::DEFAULT,
    };
    let right = totp.generate_at(now);
    let wrong = OtpCode::parse("000000").expect("digits");
    c.bench_function("totp_verify_skew1_sha1_right_code", |b| {
        b.iter(|| totp.verify(black_box(&right), black_box(now), 1, None))
    });
    c.bench_function("totp_verify_skew1_sha1_wrong_code", |b| {
        b.iter(|| totp.verify(black_box(&wrong), black_box(now), 1, None))
    });

    let hotp = Hotp {
        secret: secret(),
        algorithm: Algorithm::Sha1,
        digits: Digits::SIX,
    };
    let at_window_end = hotp.generate(1_010);
    c.bench_function("hotp_verify_window10_sha1_right_code", |b| {
        b.iter(|| hotp.verify(black_box(&at_window_end), black_box(1_000), 10))
    });
    c.bench_function("hotp_verify_window10_sha1_wrong_code", |b| {
        b.iter(|| hotp.verify(black_box(&wrong), black_box(1_000), 10))
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
