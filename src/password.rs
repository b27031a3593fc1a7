//! Passwords: what people type, what they may set, and argon2id hashing on a few threads
//! of its own, each reusing its argon2 memory.
//!
//! This is a shell module: hashing runs on its own threads, and salts come from the OS RNG
//! (see [`PasswordHasher::hash`]).

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    Output, ParamsString, PasswordHash, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::distributions::{Distribution, Uniform};
use rand::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Fewest characters of a password being set (NIST SP 800-63B asks for at least 8; 12 is
/// our floor for a hospital's accounts).
pub const MIN_NEW_PASSWORD_CHARS: usize = 12;
/// Most characters of a password being set.
pub const MAX_NEW_PASSWORD_CHARS: usize = 256;
/// Most bytes accepted at sign-in: enough for any password that could have been set (256
/// characters of up to 4 bytes each is 1024), small enough that hashing cost stays bounded.
pub const MAX_SIGN_IN_BYTES: usize = 1024;
/// Characters of [`Password::generate`]'s passwords (about 117 bits).
pub const GENERATED_PASSWORD_CHARS: usize = 20;
/// Letters and digits that cannot be mistaken for one another: no 0/O, 1/l/I.
const GENERATED_ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// OWASP's argon2id recommendation (m = 19 MiB, t = 2, p = 1), the argon2 crate's defaults.
pub const DEFAULT_M_KIB: u32 = 19_456;
pub const DEFAULT_T_COST: u32 = 2;
pub const DEFAULT_P_COST: u32 = 1;

/// Bounds on the parameters of a *stored* hash that [`PasswordHasher::verify`] will run.
/// The parameters of a stored hash are trusted (they come from our own database), but a
/// corrupted or hostile row must not make one sign-in allocate gigabytes or run for minutes.
/// These are far above anything twostep sets.
const MAX_STORED_M_KIB: u32 = 256 * 1024;
const MAX_STORED_T_COST: u32 = 16;
const MAX_STORED_P_COST: u32 = 8;

/// A password. Never printed: `Debug` shows `[redacted]`, and there is no `Display`; the
/// text is reached only through [`Password::expose`], so that every use shows in review.
pub struct Password(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is too short; use at least {min} characters")]
    TooShort { min: usize },
    /// At sign-in the limit is [`MAX_SIGN_IN_BYTES`] bytes; for a new password it is
    /// [`MAX_NEW_PASSWORD_CHARS`] characters.
    #[error("the password is too long; use at most {MAX_NEW_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("the password contains a control character (such as a tab or a line break)")]
    ControlCharacter,
    #[error("max_concurrent must be at least 1")]
    NoConcurrency,
    #[error("invalid argon2 parameters: {0}")]
    InvalidParams(argon2::Error),
    #[error("password hashing failed: {0}")]
    Hashing(argon2::password_hash::Error),
    /// The blocking task was cancelled or panicked (e.g. during runtime shutdown).
    #[error("the password hashing task did not complete")]
    TaskFailed,
}

impl PasswordError {
    /// The rule of [`crate::domain::password_rules`] that a refused new password broke;
    /// `None` for the errors of the hasher.
    pub fn as_problem(&self) -> Option<crate::domain::PasswordProblem> {
        use crate::domain::PasswordProblem;
        match self {
            Self::Empty => Some(PasswordProblem::Empty),
            Self::TooShort { .. } => Some(PasswordProblem::TooShort),
            Self::TooLong => Some(PasswordProblem::TooLong),
            Self::ControlCharacter => Some(PasswordProblem::ControlCharacter),
            Self::NoConcurrency | Self::InvalidParams(_) | Self::Hashing(_) | Self::TaskFailed => {
                None
            }
        }
    }
}

impl Password {
    /// What a person typed at sign-in. Anything is accepted but the absurd: empty, or more
    /// than [`MAX_SIGN_IN_BYTES`] bytes (so that a megabyte-long "password" cannot buy
    /// hashing time). No other rule: the stored hash decides.
    pub fn for_sign_in(text: String) -> Result<Self, PasswordError> {
        if text.is_empty() {
            Err(PasswordError::Empty)
        } else if text.len() > MAX_SIGN_IN_BYTES {
            Err(PasswordError::TooLong)
        } else {
            Ok(Self(text))
        }
    }

    /// A password being set, in the style of NIST SP 800-63B: a length rule (12 to 256
    /// characters, counted as Unicode scalar values, not bytes) and no control characters;
    /// no composition rules. The text is kept as given: no trimming, no normalisation.
    pub fn new_password(text: String) -> Result<Self, PasswordError> {
        if text.is_empty() {
            return Err(PasswordError::Empty);
        }
        // Bounded before counting, so that a huge input is refused in constant time.
        if text.len() > MAX_NEW_PASSWORD_CHARS * 4 {
            return Err(PasswordError::TooLong);
        }
        let chars = text.chars().count();
        if chars < MIN_NEW_PASSWORD_CHARS {
            Err(PasswordError::TooShort {
                min: MIN_NEW_PASSWORD_CHARS,
            })
        } else if chars > MAX_NEW_PASSWORD_CHARS {
            Err(PasswordError::TooLong)
        } else if text.chars().any(char::is_control) {
            Err(PasswordError::ControlCharacter)
        } else {
            Ok(Self(text))
        }
    }

    /// A random password of [`GENERATED_PASSWORD_CHARS`] characters from an alphabet
    /// without look-alikes, e.g. for the bootstrap administrator. It satisfies
    /// [`Password::new_password`].
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        // Uniform rejects out-of-range samples instead of reducing modulo 57: no bias.
        let index = Uniform::new(0, GENERATED_ALPHABET.len());
        let text = (0..GENERATED_PASSWORD_CHARS)
            .map(|_| char::from(GENERATED_ALPHABET[index.sample(rng)]))
            .collect();
        Self(text)
    }

    /// The password's text. Named so that every place that reads it stands out.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Hashes and verifies passwords with argon2id, at most `max_concurrent` at a time, on
/// `max_concurrent` threads of its own (never on the async worker threads), each with its
/// argon2 memory allocated once and reused (19 MiB with the defaults), so memory stays
/// 19 MiB times `max_concurrent` however many sign-ins come. (On tokio's blocking pool,
/// with a fresh allocation per hash, the C allocator kept freed blocks in the arenas of
/// many threads: about 470 MiB resident under sign-in load, against 57 MiB now.) Cheap to
/// clone: clones share the limit and the threads, which end with the last clone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
    jobs: Arc<std::sync::mpsc::Sender<Job>>,
}

/// Work for a hashing thread, with that thread's argon2 memory.
type Job = Box<dyn FnOnce(&Inner, &mut Scratch) + Send>;

/// A hashing thread's argon2 memory (19 MiB with the defaults), allocated once and reused
/// by every hash and verification with the current parameters: no allocation per
/// sign-in, so the allocator has nothing to hold on to.
#[derive(Default)]
struct Scratch(Vec<Block>);

impl Scratch {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.0.len() != count {
            self.0 = vec![Block::default(); count];
        }
        &mut self.0
    }
}

struct Inner {
    permits: Arc<Semaphore>,
    argon2: Argon2<'static>,
    params: Params,
    /// A PHC string with the current parameters, for unknown users; see `dummy_hash`.
    dummy_hash: String,
    #[cfg(test)]
    probe: tests::ConcurrencyProbe,
}

/// How a verification on a hashing thread ended.
enum Verified {
    Match,
    Mismatch,
    /// The stored string was unusable; the dummy hash was verified instead.
    Malformed(argon2::password_hash::Error),
}

impl PasswordHasher {
    /// A hasher with OWASP's argon2id parameters (m = 19456 KiB, t = 2, p = 1, version
    /// 0x13). Fails only when `max_concurrent` is 0.
    pub fn new(max_concurrent: usize) -> Result<Self, PasswordError> {
        Self::with_params(
            max_concurrent,
            DEFAULT_M_KIB,
            DEFAULT_T_COST,
            DEFAULT_P_COST,
        )
    }

    /// A hasher with other argon2id parameters: memory `m_kib` in KiB (at least `8 * p`),
    /// `t` passes and `p` lanes. For tests and benchmarks that need a cheap hash (e.g.
    /// `with_params(4, 8, 1, 1)`), or to raise the cost; not a way to weaken production
    /// hashing. Hashes made with other parameters keep verifying (their parameters are in
    /// the PHC string), and [`PasswordHasher::needs_rehash`] reports them.
    pub fn with_params(
        max_concurrent: usize,
        m_kib: u32,
        t: u32,
        p: u32,
    ) -> Result<Self, PasswordError> {
        if max_concurrent == 0 {
            return Err(PasswordError::NoConcurrency);
        }
        let params = Params::new(m_kib, t, p, None).map_err(PasswordError::InvalidParams)?;
        let dummy_hash = dummy_hash(&params)?;
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()),
            params,
            dummy_hash,
            #[cfg(test)]
            probe: tests::ConcurrencyProbe::default(),
        });
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for index in 0..max_concurrent {
            let (inner, queue) = (Arc::clone(&inner), Arc::clone(&queue));
            std::thread::Builder::new()
                .name(format!("twostep-argon2-{index}"))
                .spawn(move || hashing_thread(&inner, &queue))
                .map_err(|_| PasswordError::TaskFailed)?;
        }
        Ok(Self {
            inner,
            jobs: Arc::new(jobs),
        })
    }

    /// The PHC string of `password` (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), with
    /// a fresh 128-bit salt.
    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let text = password.0.clone();
        self.run_blocking(move |inner, scratch| {
            // The salt comes from the OS RNG inside the blocking task: it is needed only
            // here, and threading a caller's RNG into a `'static` blocking closure would
            // mean a `Send + 'static` RNG parameter for no gain.
            let salt = SaltString::generate(&mut OsRng);
            inner.hash_with(text.as_bytes(), &salt, scratch)
        })
        .await?
    }

    /// Whether `password` matches the `stored` PHC string. With `None` (no such user), the
    /// same work is done against a dummy hash with the current parameters and the answer is
    /// `false`, so that an unknown user costs the same time as a known one. A stored string
    /// that cannot be used (malformed, or parameters beyond sane bounds) is logged without
    /// its content, also costs the dummy's work, and is `false`. Hashes with parameters
    /// other than the current ones verify normally.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> bool {
        let text = password.0.clone();
        let stored = stored.map(str::to_owned);
        let known_user = stored.is_some();
        let outcome = self
            .run_blocking(move |inner, scratch| {
                inner.verify_blocking(&text, stored.as_deref(), scratch)
            })
            .await;
        match outcome {
            Ok(Verified::Match) => known_user,
            Ok(Verified::Mismatch) => false,
            Ok(Verified::Malformed(error)) => {
                tracing::warn!(%error, "a stored password hash is unusable; the sign-in fails");
                false
            }
            Err(error) => {
                tracing::warn!(%error, "password verification did not run; the sign-in fails");
                false
            }
        }
    }

    /// Whether `stored` was made with other parameters (algorithm, version, m, t, p or
    /// output length) than this hasher's, or cannot be read: after a successful sign-in the
    /// caller should store a fresh [`PasswordHasher::hash`] of the password.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(hash) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return true;
        };
        let current = &self.inner.params;
        hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(Version::V0x13.into())
            || params.m_cost() != current.m_cost()
            || params.t_cost() != current.t_cost()
            || params.p_cost() != current.p_cost()
            || hash.hash.map(|output| output.len()) != Some(Params::DEFAULT_OUTPUT_LEN)
    }

    /// Runs `work` on a hashing thread once a permit is free. The permit moves into the
    /// job and is released only when the work ends, so that a caller who gives up
    /// (a dropped request future) cannot let more than `max_concurrent` hashes run at once.
    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner, &mut Scratch) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::TaskFailed)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |inner: &Inner, scratch: &mut Scratch| {
            let result = {
                let _permit = permit;
                #[cfg(test)]
                let _running = inner.probe.enter();
                work(inner, scratch)
            };
            // The permit is back before the caller hears the result.
            let _ = reply.send(result);
        });
        self.jobs.send(job).map_err(|_| PasswordError::TaskFailed)?;
        answer.await.map_err(|_| PasswordError::TaskFailed)
    }
}

/// A hashing thread: runs jobs until the last [`PasswordHasher`] clone is gone. A job that
/// panics fails only its own caller (its reply is dropped); the thread carries on.
fn hashing_thread(inner: &Inner, queue: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>) {
    let mut scratch = Scratch::default();
    loop {
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(inner, &mut scratch)));
    }
}

impl Inner {
    /// The PHC string of `password` with `salt` and the current parameters, computed in
    /// the thread's reused memory (the same string argon2's `hash_password` makes).
    fn hash_with(
        &self,
        password: &[u8],
        salt: &SaltString,
        scratch: &mut Scratch,
    ) -> Result<String, PasswordError> {
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt
            .as_salt()
            .decode_b64(&mut salt_bytes)
            .map_err(PasswordError::Hashing)?;
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.argon2
            .hash_password_into_with_memory(
                password,
                salt_bytes,
                &mut output,
                scratch.blocks(&self.params),
            )
            .map_err(|error| PasswordError::Hashing(error.into()))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(PasswordError::Hashing)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(PasswordError::Hashing)?),
        };
        Ok(hash.to_string())
    }

    fn verify_blocking(
        &self,
        password: &str,
        stored: Option<&str>,
        scratch: &mut Scratch,
    ) -> Verified {
        let parsed = match stored.map(usable_stored_hash) {
            None => None,
            Some(Ok(hash)) => Some(hash),
            Some(Err(error)) => {
                self.verify_dummy(password, scratch);
                return Verified::Malformed(error);
            }
        };
        match parsed {
            Some(hash) => match self.verify_with(password.as_bytes(), &hash, scratch) {
                Ok(()) => Verified::Match,
                Err(argon2::password_hash::Error::Password) => Verified::Mismatch,
                Err(error) => Verified::Malformed(error),
            },
            None => {
                self.verify_dummy(password, scratch);
                Verified::Mismatch
            }
        }
    }

    /// Verifies `password` against `hash`: with the current parameters in the thread's
    /// reused memory (constant-time comparison of the outputs); a hash made with other
    /// parameters through argon2's own verification (which allocates its memory).
    fn verify_with(
        &self,
        password: &[u8],
        hash: &PasswordHash<'_>,
        scratch: &mut Scratch,
    ) -> argon2::password_hash::Result<()> {
        use argon2::password_hash::Error;
        let current = &self.params;
        let same_parameters = hash.algorithm == Algorithm::Argon2id.ident()
            && hash.version == Some(Version::V0x13.into())
            && Params::try_from(hash).is_ok_and(|params| {
                params.m_cost() == current.m_cost()
                    && params.t_cost() == current.t_cost()
                    && params.p_cost() == current.p_cost()
            })
            && hash.hash.map(|output| output.len()) == Some(Params::DEFAULT_OUTPUT_LEN);
        if !same_parameters {
            return self.argon2.verify_password(password, hash);
        }
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
            return Err(Error::PhcStringField);
        };
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.argon2
            .hash_password_into_with_memory(
                password,
                salt_bytes,
                &mut output,
                scratch.blocks(current),
            )
            .map_err(Error::from)?;
        if bool::from(expected.as_bytes().ct_eq(&output)) {
            Ok(())
        } else {
            Err(Error::Password)
        }
    }

    /// Spends the same work as a real verification; the result is meaningless.
    fn verify_dummy(&self, password: &str, scratch: &mut Scratch) {
        if let Ok(hash) = PasswordHash::new(&self.dummy_hash) {
            let _outcome = self.verify_with(password.as_bytes(), &hash, scratch);
            #[cfg(test)]
            {
                self.probe.record_dummy(&_outcome);
            }
        }
    }
}

/// Parses a stored PHC string and refuses what could not be a usable argon2 hash or would
/// cost beyond the `MAX_STORED_*` bounds.
fn usable_stored_hash(stored: &str) -> Result<PasswordHash<'_>, argon2::password_hash::Error> {
    use argon2::password_hash::Error;
    let hash = PasswordHash::new(stored)?;
    Algorithm::try_from(hash.algorithm)?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(Error::PhcStringField);
    }
    let params = Params::try_from(&hash)?;
    if params.m_cost() > MAX_STORED_M_KIB
        || params.t_cost() > MAX_STORED_T_COST
        || params.p_cost() > MAX_STORED_P_COST
    {
        return Err(Error::ParamValueInvalid(
            argon2::password_hash::errors::InvalidValue::TooLong,
        ));
    }
    Ok(hash)
}

/// A PHC string with `params`, a random salt and a random output: verifying any password
/// against it costs exactly what verifying against a real hash with these parameters costs
/// (the work is set by the parameters and the salt and output lengths, which match
/// `hash`'s), and never matches. Built without hashing, so construction is instant.
fn dummy_hash(params: &Params) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    OsRng.fill_bytes(&mut output);
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(PasswordError::Hashing)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(PasswordError::Hashing)?),
    };
    Ok(hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher as _;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts blocking hash tasks while they run and remembers the most at once.
    #[derive(Default)]
    pub(super) struct ConcurrencyProbe {
        running: AtomicUsize,
        high_water: AtomicUsize,
        /// Dummy verifications that ran to the final comparison (the full argon2 work).
        full_dummy_runs: AtomicUsize,
    }

    pub(super) struct Running<'a>(&'a ConcurrencyProbe);

    impl ConcurrencyProbe {
        pub(super) fn enter(&self) -> Running<'_> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.high_water.fetch_max(now, Ordering::SeqCst);
            Running(self)
        }

        pub(super) fn record_dummy(&self, outcome: &argon2::password_hash::Result<()>) {
            if *outcome == Err(argon2::password_hash::Error::Password) {
                self.full_dummy_runs.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Cheap parameters for tests that do not measure cost.
    fn cheap(max_concurrent: usize) -> PasswordHasher {
        PasswordHasher::with_params(max_concurrent, 8, 1, 1).unwrap()
    }

    fn sign_in(text: &str) -> Password {
        Password::for_sign_in(text.to_owned()).unwrap()
    }

    // --- Password ---

    #[test]
    fn sign_in_passwords_refuse_only_empty_and_absurdly_long_input() {
        assert_eq!(
            Password::for_sign_in(String::new()).unwrap_err(),
            PasswordError::Empty
        );
        assert_eq!(
            Password::for_sign_in("x".repeat(1024 * 1024)).unwrap_err(),
            PasswordError::TooLong
        );
        assert_eq!(
            Password::for_sign_in("x".repeat(MAX_SIGN_IN_BYTES + 1)).unwrap_err(),
            PasswordError::TooLong
        );
        for text in ["a", " ", "short\ttab", &"x".repeat(MAX_SIGN_IN_BYTES)] {
            assert_eq!(
                Password::for_sign_in(text.to_owned()).unwrap().expose(),
                text
            );
        }
    }

    #[test]
    fn new_passwords_need_12_to_256_characters() {
        assert_eq!(
            Password::new_password(String::new()).unwrap_err(),
            PasswordError::Empty
        );
        assert_eq!(
            Password::new_password("a".repeat(11)).unwrap_err(),
            PasswordError::TooShort { min: 12 }
        );
        assert!(Password::new_password("a".repeat(12)).is_ok());
        assert!(Password::new_password("a".repeat(256)).is_ok());
        assert_eq!(
            Password::new_password("a".repeat(257)).unwrap_err(),
            PasswordError::TooLong
        );
        assert_eq!(
            Password::new_password("a".repeat(1024 * 1024)).unwrap_err(),
            PasswordError::TooLong
        );
    }

    #[test]
    fn new_password_length_counts_characters_not_bytes() {
        // 12 characters, 24 bytes: long enough.
        let twelve = "éééééééééééé";
        assert_eq!(twelve.chars().count(), 12);
        assert_eq!(twelve.len(), 24);
        assert_eq!(
            Password::new_password(twelve.to_owned()).unwrap().expose(),
            twelve
        );
        // 11 characters, 44 bytes: too short although more than 12 bytes.
        let eleven = "🔒".repeat(11);
        assert_eq!(
            Password::new_password(eleven).unwrap_err(),
            PasswordError::TooShort { min: 12 }
        );
        // 256 four-byte characters (1024 bytes) are fine; 257 are too many.
        assert!(Password::new_password("🔒".repeat(256)).is_ok());
        assert_eq!(
            Password::new_password("🔒".repeat(257)).unwrap_err(),
            PasswordError::TooLong
        );
        // Spaces are ordinary characters (passphrases).
        assert!(Password::new_password("correct horse battery".to_owned()).is_ok());
    }

    #[test]
    fn new_passwords_refuse_control_characters() {
        for text in [
            "twelve chars\n",
            "\ttwelve chars",
            "twelve\u{0}chars",
            "twelve\u{7f}chars",
            "twelve\u{85}chars",
        ] {
            assert_eq!(
                Password::new_password(text.to_owned()).unwrap_err(),
                PasswordError::ControlCharacter,
                "{text:?}"
            );
        }
    }

    #[test]
    fn generated_passwords_are_20_unambiguous_characters_and_valid_new_passwords() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = Password::generate(&mut rng);
        let b = Password::generate(&mut rng);
        assert_ne!(a.expose(), b.expose());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let password = Password::generate(&mut rng);
            assert_eq!(password.expose().chars().count(), 20);
            assert!(!password.expose().contains(['0', 'O', '1', 'l', 'I']));
            assert!(password.expose().chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(Password::new_password(password.expose().to_owned()).is_ok());
            seen.extend(password.expose().chars());
        }
        assert_eq!(seen.len(), GENERATED_ALPHABET.len(), "every symbol is used");
    }

    #[test]
    fn password_debug_output_is_redacted() {
        let password = sign_in("hunter2 is my password");
        let shown = format!("{password:?}");
        assert_eq!(shown, "Password([redacted])");
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn error_messages_name_the_rule() {
        assert!(PasswordError::TooShort { min: 12 }
            .to_string()
            .contains("12 characters"));
        assert!(PasswordError::TooLong.to_string().contains("256"));
    }

    // --- PasswordHasher ---

    #[test]
    fn hasher_construction_refuses_zero_concurrency_and_invalid_params() {
        assert_eq!(
            PasswordHasher::new(0).err(),
            Some(PasswordError::NoConcurrency)
        );
        assert!(matches!(
            PasswordHasher::with_params(1, 1, 1, 1),
            Err(PasswordError::InvalidParams(_))
        ));
        assert!(matches!(
            PasswordHasher::with_params(1, 8, 0, 1),
            Err(PasswordError::InvalidParams(_))
        ));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = cheap(2);
        let stored = hasher.hash(&sign_in("correct horse")).await.unwrap();
        assert!(
            hasher
                .verify(&sign_in("correct horse"), Some(&stored))
                .await
        );
        assert!(!hasher.verify(&sign_in("correct hors"), Some(&stored)).await);
        assert!(
            !hasher
                .verify(&sign_in("Correct horse"), Some(&stored))
                .await
        );
        assert!(
            !hasher
                .verify(&sign_in("correct horse "), Some(&stored))
                .await
        );
    }

    #[tokio::test]
    async fn default_hashes_are_argon2id_with_owasp_parameters() {
        let hasher = PasswordHasher::new(1).unwrap();
        let stored = hasher.hash(&sign_in("correct horse")).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(!stored.contains("correct horse"));
        assert!(!hasher.needs_rehash(&stored));
        assert!(
            hasher
                .verify(&sign_in("correct horse"), Some(&stored))
                .await
        );
    }

    #[tokio::test]
    async fn two_hashes_of_one_password_differ_by_salt() {
        let hasher = cheap(2);
        let password = sign_in("same password");
        let a = hasher.hash(&password).await.unwrap();
        let b = hasher.hash(&password).await.unwrap();
        assert_ne!(a, b);
        assert!(hasher.verify(&password, Some(&a)).await);
        assert!(hasher.verify(&password, Some(&b)).await);
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = cheap(1);
        assert!(!hasher.verify(&sign_in("anything"), None).await);
        assert!(!hasher.verify(&sign_in("x"), None).await);
    }

    #[test]
    fn the_dummy_hash_costs_a_full_verification() {
        // A verification that reaches the final comparison fails with `Error::Password`;
        // a string the verifier cannot use fails earlier, with another error, and cheaply.
        let hasher = PasswordHasher::new(1).unwrap();
        let dummy = PasswordHash::new(&hasher.inner.dummy_hash).unwrap();
        assert!(hasher
            .inner
            .dummy_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            hasher.inner.argon2.verify_password(b"anything", &dummy),
            Err(argon2::password_hash::Error::Password)
        );
        assert!(!hasher.needs_rehash(&hasher.inner.dummy_hash));
        let other = PasswordHasher::new(1).unwrap();
        assert_ne!(hasher.inner.dummy_hash, other.inner.dummy_hash);
    }

    #[tokio::test]
    async fn unknown_users_and_unusable_hashes_cost_a_full_dummy_verification() {
        let hasher = cheap(1);
        let password = sign_in("anything");
        let stored = hasher.hash(&password).await.unwrap();
        let full_dummies = || hasher.inner.probe.full_dummy_runs.load(Ordering::SeqCst);
        assert!(hasher.verify(&password, Some(&stored)).await);
        assert!(!hasher.verify(&sign_in("wrong"), Some(&stored)).await);
        assert_eq!(full_dummies(), 0, "a known user verifies the real hash");
        assert!(!hasher.verify(&password, None).await);
        assert_eq!(full_dummies(), 1, "an unknown user verifies the dummy");
        assert!(!hasher.verify(&password, Some("garbage")).await);
        assert_eq!(full_dummies(), 2, "an unusable hash verifies the dummy");
    }

    #[tokio::test]
    async fn malformed_stored_hashes_are_false_without_panicking() {
        let hasher = cheap(1);
        let password = sign_in("correct horse");
        let good = hasher.hash(&password).await.unwrap();
        let without_hash = good.rsplit_once('$').unwrap().0.to_owned();
        let bad = [
            String::new(),
            "garbage".to_owned(),
            "$argon2id$".to_owned(),
            "$argon2id$v=19$m=19456,t=2,p=1$".to_owned(),
            without_hash,
            good.replace("argon2id", "scrypt"),
            good.replace("m=8", "m=notanumber"),
            format!("{good}$extra"),
            good[..good.len() - 5].to_owned() + "!!!!!",
            // Parameters beyond the bounds: refused rather than run.
            good.replace("m=8", "m=4194304"),
            good.replace("t=1", "t=1000"),
            "$2b$12$abcdefghijklmnopqrstuuJ4Xh4n3ZLxvA1Bt0L0vCqSgVK1Tn9a".to_owned(),
        ];
        for stored in &bad {
            assert!(
                !hasher.verify(&password, Some(stored)).await,
                "{stored:?} must not verify"
            );
            assert!(hasher.needs_rehash(stored), "{stored:?}");
        }
    }

    #[tokio::test]
    async fn hashes_with_other_parameters_verify_and_need_a_rehash() {
        let old = cheap(1);
        let current = PasswordHasher::with_params(1, 16, 2, 1).unwrap();
        let password = sign_in("correct horse");
        let stored = old.hash(&password).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(current.verify(&password, Some(&stored)).await);
        assert!(!current.verify(&sign_in("wrong"), Some(&stored)).await);
        assert!(current.needs_rehash(&stored));
        assert!(!old.needs_rehash(&stored));
        let fresh = current.hash(&password).await.unwrap();
        assert!(!current.needs_rehash(&fresh));
        assert!(current.needs_rehash("garbage"));
    }

    #[tokio::test]
    async fn argon2i_and_argon2d_hashes_still_verify_but_need_a_rehash() {
        let password = sign_in("correct horse");
        let hasher = cheap(1);
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(8, 1, 1, None).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            let stored = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(password.expose().as_bytes(), &salt)
                .unwrap()
                .to_string();
            assert!(hasher.verify(&password, Some(&stored)).await, "{stored}");
            assert!(hasher.needs_rehash(&stored));
        }
    }

    #[tokio::test]
    async fn hashes_made_in_reused_memory_are_standard_argon2id() {
        // What `hash` stores verifies with argon2's own code, and argon2's own hashes
        // with the same parameters verify through the reused-memory path; twice each, so
        // that the second use of a thread's memory is covered too.
        let hasher = cheap(1);
        let password = sign_in("correct horse battery");
        for _ in 0..2 {
            let stored = hasher.hash(&password).await.unwrap();
            let parsed = PasswordHash::new(&stored).unwrap();
            assert!(Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok());
            assert!(Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err());
            let salt = SaltString::generate(&mut OsRng);
            let theirs = hasher
                .inner
                .argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                hasher
                    .inner
                    .hash_with(password.expose().as_bytes(), &salt, &mut Scratch::default())
                    .unwrap(),
                theirs,
                "the same PHC string as argon2's hash_password"
            );
            assert!(hasher.verify(&password, Some(&theirs)).await);
            assert!(!hasher.verify(&sign_in("wrong"), Some(&theirs)).await);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_max_concurrent_hashes_run_at_once() {
        // Real-cost parameters, so that eight hashes started together would overlap on the
        // blocking pool (which has hundreds of threads) if nothing limited them.
        let hasher = PasswordHasher::new(2).unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    hasher
                        .hash(&Password::for_sign_in(format!("password {i}")).unwrap())
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let high_water = hasher.inner.probe.high_water.load(Ordering::SeqCst);
        assert!((1..=2).contains(&high_water), "{high_water} ran at once");
        assert_eq!(hasher.inner.permits.available_permits(), 2);
        assert_eq!(hasher.inner.probe.running.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_hash_keeps_its_permit_until_the_work_ends() {
        // Costly enough (64 MiB, 3 passes) to be still running when checked, nearly always;
        // an attempt where the work ended first proves nothing and is repeated.
        let hasher = PasswordHasher::with_params(1, 65_536, 3, 1).unwrap();
        for _attempt in 0..5 {
            let task = {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash(&sign_in("correct horse")).await })
            };
            while hasher.inner.probe.running.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            // Permits first: the permit is released only after `running` drops to 0, so if
            // the work is still running after this read, the permit was held during it.
            let available = hasher.inner.permits.available_permits();
            let still_running = hasher.inner.probe.running.load(Ordering::SeqCst) == 1;
            if still_running {
                assert_eq!(
                    available, 0,
                    "a cancelled caller must not free the permit early"
                );
            }
            // Once the work has ended, the permit comes back.
            while hasher.inner.permits.available_permits() == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(hasher.inner.probe.running.load(Ordering::SeqCst), 0);
            if still_running {
                return;
            }
        }
        panic!("the hash always ended before the check; make it costlier");
    }

    #[tokio::test]
    async fn clones_share_one_limit() {
        let hasher = cheap(3);
        let clone = hasher.clone();
        assert!(Arc::ptr_eq(&hasher.inner.permits, &clone.inner.permits));
        let stored = clone.hash(&sign_in("shared")).await.unwrap();
        assert!(hasher.verify(&sign_in("shared"), Some(&stored)).await);
    }
}
