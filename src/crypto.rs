//! The server's master key and what it protects: device secrets sealed at rest, the hashes
//! of emailed codes, the key check that detects a wrong key for an existing database, and
//! opaque bearer tokens.
//!
//! This is a shell module: [`load_or_create_key_file`] touches the file system, and the
//! key file's creation draws a temporary file name from the OS RNG. Everything else takes
//! its randomness as a parameter.
//!
//! One master key, several purposes (device secrets, emailed codes, the key check, the
//! forms' CSRF tokens): each purpose uses its own subkey,
//! HMAC-SHA256(master key, label), so that no key is ever used for two things.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::generic_array::typenum::U64;
use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use data_encoding::{BASE64URL_NOPAD, HEXLOWER, HEXLOWER_PERMISSIVE};
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of the master key.
pub const MASTER_KEY_BYTES: usize = 32;
/// Characters of the key file's content (hex), not counting surrounding whitespace.
pub const MASTER_KEY_HEX_CHARS: usize = 2 * MASTER_KEY_BYTES;

/// First byte of every sealed value; a later format would use another byte.
const SEAL_VERSION: u8 = 1;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// Version byte, nonce and tag: a sealed empty plaintext is this long.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_BYTES + TAG_BYTES;

const DEVICE_SECRET_LABEL: &[u8] = b"twostep device-secret v1";
const EMAILED_OTP_LABEL: &[u8] = b"twostep emailed-otp v1";
const KEY_CHECK_LABEL: &[u8] = b"twostep key-check v1";
const CSRF_LABEL: &[u8] = b"twostep csrf v1";
const RECOVERY_CODE_LABEL: &[u8] = b"twostep recovery-code v1";
const TEMPORARY_ACCESS_LABEL: &[u8] = b"twostep temporary-access v1";
/// The message MACed under the key-check subkey. Any fixed text would do.
const KEY_CHECK_MESSAGE: &[u8] = b"twostep: this database belongs to this master key";

/// The key file is read up to this many bytes; a real one is 65 (hex and a newline).
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The server's 256-bit master key. Never printed: `Debug` shows `[redacted]`, and there
/// is no `Display`. The raw bytes leave only through [`MasterKey::to_hex`], for the key
/// file.
pub struct MasterKey([u8; MASTER_KEY_BYTES]);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the key file {} does not exist; restore it from backup, or let twostep create a new \
         one (only for a new database: a new key cannot read secrets sealed with another)",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "the key file {} is accessible to other users; run chmod 600 {}",
        path.display(),
        path.display()
    )]
    InsecurePermissions { path: PathBuf },
    #[error(
        "the key file {} is not a regular file; point twostep at the key file itself",
        path.display()
    )]
    NotAFile { path: PathBuf },
    /// The content is not given back: it may be (part of) a key.
    #[error("{}", malformed_message(path.as_deref()))]
    Malformed { path: Option<PathBuf> },
    #[error("cannot use the key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Deliberately one variant for every cause (wrong key, tampering, wrong associated
    /// data, unknown format, truncation), so that callers and logs cannot tell them apart.
    #[error("a sealed value could not be decrypted: wrong master key, or corrupted data")]
    Decrypt,
    /// Only for a plaintext far beyond anything twostep seals (hundreds of gigabytes).
    #[error("a value could not be encrypted: it is too long")]
    Encrypt,
}

fn malformed_message(path: Option<&Path>) -> String {
    let expected = format!("{MASTER_KEY_HEX_CHARS} hexadecimal characters (0-9, a-f)");
    match path {
        Some(path) => format!(
            "the key file {} is malformed: it must hold exactly {expected}, optionally \
             followed by a newline; restore it from backup",
            path.display()
        ),
        None => format!("the master key is malformed: it must be exactly {expected}"),
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = [0u8; MASTER_KEY_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses the key file's content: 64 hex digits (either case), surrounding whitespace
    /// allowed. The error never contains the input.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let malformed = || KeyError::Malformed { path: None };
        let text = text.trim();
        if text.len() != MASTER_KEY_HEX_CHARS {
            return Err(malformed());
        }
        let decoded = HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .map_err(|_| malformed())?;
        let bytes: [u8; MASTER_KEY_BYTES] = decoded.try_into().map_err(|_| malformed())?;
        Ok(Self(bytes))
    }

    /// Lower-case hex, the key file's content (without the trailing newline).
    pub fn to_hex(&self) -> String {
        HEXLOWER.encode(&self.0)
    }

    /// Encrypts a device secret (or any small value) for storage, with XChaCha20-Poly1305
    /// under the device-secret subkey and a random 24-byte nonce (random nonces of that size
    /// never repeat in practice). `associated_data` binds the result to its place, e.g.
    /// `b"device:42"`: [`MasterKey::open`] refuses it anywhere else.
    ///
    /// Output: version byte `1` || nonce || ciphertext and tag, [`SEAL_OVERHEAD`] bytes
    /// longer than the plaintext. Fails only for a plaintext of hundreds of gigabytes.
    pub fn seal(
        &self,
        plaintext: &[u8],
        associated_data: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rng.fill_bytes(&mut nonce);
        let ciphertext = self
            .device_secret_cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            .map_err(|_| KeyError::Encrypt)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(SEAL_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts what [`MasterKey::seal`] made with the same key and associated data. Any
    /// other input, whatever its length or content, is [`KeyError::Decrypt`].
    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let (&version, rest) = sealed.split_first().ok_or(KeyError::Decrypt)?;
        if version != SEAL_VERSION || rest.len() < NONCE_BYTES + TAG_BYTES {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        self.device_secret_cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated_data,
                },
            )
            .map_err(|_| KeyError::Decrypt)
    }

    /// A value the store keeps next to the data this key protects, so that start-up with a
    /// wrong key file fails at once instead of at the first device secret. It is an HMAC of
    /// a fixed message under a subkey of its own: it reveals nothing about the master key or
    /// the other subkeys. 32 bytes, the same every time for one key.
    pub fn key_check(&self) -> Vec<u8> {
        hmac_sha256(&self.subkey(KEY_CHECK_LABEL), &[KEY_CHECK_MESSAGE]).to_vec()
    }

    /// Whether `stored` is this key's [`MasterKey::key_check`] (constant time).
    pub fn verify_key_check(&self, stored: &[u8]) -> bool {
        ct_eq_hash(&self.key_check(), stored)
    }

    /// What the store keeps of an emailed code: HMAC-SHA256 under the emailed-OTP subkey of
    /// the context (8-byte big-endian length, then the bytes) followed by the code. The
    /// context names what the code is for (e.g. the sign-in transaction), so a hash cannot
    /// be replayed for another one; the length prefix keeps (context, code) pairs from
    /// running into each other. Without the master key, a stolen table of hashes cannot be
    /// searched for the codes (a 6-digit code alone would be found by brute force at once).
    /// Compare hashes with [`ct_eq_hash`].
    pub fn hash_emailed_code(&self, context: &[u8], code: &str) -> [u8; 32] {
        let length = u64::try_from(context.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes();
        hmac_sha256(
            &self.subkey(EMAILED_OTP_LABEL),
            &[&length, context, code.as_bytes()],
        )
    }

    /// The MAC of a form's CSRF token (see `web::csrf`): HMAC-SHA256 under the CSRF subkey
    /// of `parts`, each preceded by its length (8 bytes, big-endian) so that no two lists
    /// of parts give the same message. Without the master key, no one can make the token of
    /// a cookie value, so a planted cookie and form field pair is refused. Compare with
    /// [`ct_eq_hash`].
    pub fn csrf_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let lengths: Vec<[u8; 8]> = parts
            .iter()
            .map(|part| u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes())
            .collect();
        let framed: Vec<&[u8]> = lengths
            .iter()
            .zip(parts)
            .flat_map(|(length, part)| [length.as_slice(), part])
            .collect();
        hmac_sha256(&self.subkey(CSRF_LABEL), &framed)
    }

    /// What the store keeps of a recovery code: HMAC-SHA256 under the recovery-code subkey
    /// of the user's id (8 bytes, big-endian) followed by the code's canonical form. The id
    /// in the message means a code of one user never matches another user's hash, and
    /// without the master key a stolen table cannot be searched for the codes.
    pub fn recovery_code_hash(
        &self,
        user_id: crate::domain::UserId,
        code: &crate::domain::RecoveryCode,
    ) -> [u8; 32] {
        hmac_sha256(
            &self.subkey(RECOVERY_CODE_LABEL),
            &[&user_id.0.to_be_bytes(), code.as_str().as_bytes()],
        )
    }

    /// What the store keeps of a temporary access code (SPEC 15): HMAC-SHA256 under its own
    /// subkey of the user's id (8 bytes, big-endian) and the code's canonical form, for the
    /// reasons of [`MasterKey::recovery_code_hash`].
    pub fn temporary_access_hash(
        &self,
        user_id: crate::domain::UserId,
        code: &crate::domain::TemporaryAccessCode,
    ) -> [u8; 32] {
        hmac_sha256(
            &self.subkey(TEMPORARY_ACCESS_LABEL),
            &[&user_id.0.to_be_bytes(), code.as_str().as_bytes()],
        )
    }

    fn subkey(&self, label: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, &[label])
    }

    fn device_secret_cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.subkey(DEVICE_SECRET_LABEL).into())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// HMAC-SHA256 of the concatenated `parts` under a 32-byte key.
fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC pads a key shorter than the hash's block (64 bytes for SHA-256) with zeros (RFC
    // 2104, section 2). Handing the padded block to the fixed-size constructor is therefore
    // the same HMAC as `new_from_slice(key)`, without an error path that cannot happen (and
    // would need an unwrap). A test checks that the two agree.
    let mut block = GenericArray::<u8, U64>::default();
    block[..key.len()].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality of two hashes or MACs; `false` when the lengths differ (the
/// length itself is not secret).
pub fn ct_eq_hash(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Reads the master key from `path`, or creates it there when it does not exist and
/// `create` is true.
///
/// An existing file must be a regular file (a symbolic link to one is followed) that no one
/// but its owner may access (`chmod 600`). A new file is created with mode 0600 from the
/// start, in directories created with mode 0700 where missing, and appears under its name
/// only once it is complete and on disk: it is written to a temporary file in the same
/// directory, synced, then hard-linked to `path`, which fails if `path` exists. So when
/// several processes start at once, exactly one key is created and every process reads
/// that one; no process can read a half-written file.
pub async fn load_or_create_key_file(path: &Path, create: bool) -> Result<MasterKey, KeyError> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || load_or_create_blocking(&owned, create))
        .await
        .map_err(|join_error| KeyError::Io {
            path: path.to_path_buf(),
            source: io::Error::other(format!("the key file task did not complete: {join_error}")),
        })?
}

fn load_or_create_blocking(path: &Path, create: bool) -> Result<MasterKey, KeyError> {
    match read_key_file(path) {
        Err(KeyError::Missing { .. }) if create => {}
        other => return other,
    }
    let key = MasterKey::generate(&mut rand::rngs::OsRng);
    if write_new_key_file(path, &key)? {
        Ok(key)
    } else {
        // Another process created the file first: its key is the key.
        read_key_file(path)
    }
}

fn read_key_file(path: &Path) -> Result<MasterKey, KeyError> {
    let io_error = |source: io::Error| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Checked before opening so that a FIFO or device is refused rather than opened (which
    // could block), and again on the open file, which is the authoritative check.
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(KeyError::Missing {
                path: path.to_path_buf(),
            })
        }
        Err(error) => return Err(io_error(error)),
    };
    check_key_file_metadata(path, &metadata)?;
    let file = File::open(path).map_err(io_error)?;
    check_key_file_metadata(path, &file.metadata().map_err(io_error)?)?;
    let mut content = Vec::new();
    file.take(MAX_KEY_FILE_BYTES)
        .read_to_end(&mut content)
        .map_err(io_error)?;
    let malformed = || KeyError::Malformed {
        path: Some(path.to_path_buf()),
    };
    let text = std::str::from_utf8(&content).map_err(|_| malformed())?;
    MasterKey::from_hex(text).map_err(|_| malformed())
}

fn check_key_file_metadata(path: &Path, metadata: &std::fs::Metadata) -> Result<(), KeyError> {
    if !metadata.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Writes a new key file; `Ok(false)` when `path` already exists (another process won).
fn write_new_key_file(path: &Path, key: &MasterKey) -> Result<bool, KeyError> {
    let io_error = |source: io::Error| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_directories(&directory).map_err(io_error)?;

    let file_name = path
        .file_name()
        .ok_or_else(|| io_error(io::Error::other("the key file path has no file name")))?;
    // The temporary name only has to be unique among processes racing to create the same
    // key file; the OS RNG is used directly because this is the shell's start-up code and
    // there is no caller RNG to thread through for a file name.
    let mut nonce = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", HEXLOWER.encode(&nonce)));
    let temporary = directory.join(temporary_name);

    let result = write_and_link(&temporary, path, key);
    // The temporary name is only a staging area; whatever happened, it goes.
    let _ = std::fs::remove_file(&temporary);
    let created = result.map_err(io_error)?;
    if created {
        // Make the new directory entry durable too.
        File::open(&directory)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error)?;
    }
    Ok(created)
}

fn write_and_link(temporary: &Path, path: &Path, key: &MasterKey) -> io::Result<bool> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(temporary)?;
    file.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
    file.sync_all()?;
    drop(file);
    match std::fs::hard_link(temporary, path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

fn create_private_directories(directory: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(directory)
}

/// Bytes of randomness in a [`Token`].
pub const TOKEN_BYTES: usize = 32;
/// Characters of a token's text (unpadded base64url of [`TOKEN_BYTES`]).
pub const TOKEN_CHARS: usize = 43;

/// An opaque bearer token: sign-in transactions, sessions, API tokens, CSRF tokens.
/// 256 random bits as 43 characters of unpadded base64url. Never printed: `Debug` shows
/// `[redacted]`. Deliberately no `PartialEq`: compare [`Token::hash`]es with
/// [`ct_eq_hash`], or look the hash up in the store.
#[derive(Clone)]
pub struct Token(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token must be {TOKEN_CHARS} characters long")]
    WrongLength,
    /// The text is not given back: it may be (part of) a token.
    #[error("the token is not valid base64url text")]
    InvalidEncoding,
}

impl Token {
    /// A new random token.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(BASE64URL_NOPAD.encode(&bytes))
    }

    /// Accepts exactly the text [`Token::generate`] makes: 43 characters of the base64url
    /// alphabet (A-Z, a-z, 0-9, `-`, `_`), in canonical form (the unused low bits of the
    /// last character are zero), so that one token has exactly one text.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if text.len() != TOKEN_CHARS {
            return Err(TokenError::WrongLength);
        }
        match BASE64URL_NOPAD.decode(text.as_bytes()) {
            Ok(bytes) if bytes.len() == TOKEN_BYTES => Ok(Self(text.to_owned())),
            _ => Err(TokenError::InvalidEncoding),
        }
    }

    /// The text to hand to the client (cookie, header, form field).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps instead of the token: SHA-256 of the token's text. A plain,
    /// unkeyed and fast hash is enough here (unlike for passwords or emailed codes) because
    /// a token is 256 random bits: a stolen hash cannot be brute-forced back to a token.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn test_key(seed: u64) -> MasterKey {
        MasterKey::generate(&mut StdRng::seed_from_u64(seed))
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    fn write_with_mode(path: &Path, content: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, content).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    // --- MasterKey: generation, hex, Debug ---

    #[test]
    fn generated_keys_are_32_bytes_and_differ() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = MasterKey::generate(&mut rng);
        let b = MasterKey::generate(&mut rng);
        assert_eq!(a.to_hex().len(), 64);
        assert_ne!(a.to_hex(), b.to_hex());
    }

    #[test]
    fn hex_round_trips_and_tolerates_whitespace_and_upper_case() {
        let key = test_key(2);
        let hex = key.to_hex();
        assert!(hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        for text in [
            hex.clone(),
            format!("{hex}\n"),
            format!("  \t{hex}\r\n"),
            hex.to_uppercase(),
        ] {
            assert_eq!(MasterKey::from_hex(&text).unwrap().to_hex(), hex);
        }
    }

    #[test]
    fn malformed_hex_is_refused_without_echoing_it() {
        let hex = test_key(3).to_hex();
        let bad = [
            String::new(),
            hex[..63].to_owned(),
            format!("{hex}0"),
            format!("{}g", &hex[..63]),
            format!("{} {}", &hex[..32], &hex[32..]),
            "é".repeat(32),
        ];
        for text in bad {
            let error = MasterKey::from_hex(&text).unwrap_err();
            assert!(
                matches!(error, KeyError::Malformed { path: None }),
                "{text}"
            );
            let message = error.to_string();
            assert!(message.contains("64 hexadecimal"), "{message}");
            if text.len() > 8 {
                assert!(!message.contains(&text[..8]), "{message}");
            }
        }
    }

    #[test]
    fn debug_output_redacts_the_master_key() {
        let key = test_key(4);
        let shown = format!("{key:?}");
        assert_eq!(shown, "MasterKey([redacted])");
        assert!(!shown.contains(&key.to_hex()[..6]));
    }

    // --- Subkeys ---

    #[test]
    fn padded_key_hmac_matches_the_hmac_crate_with_a_slice_key() {
        let key = [0x5a; 32];
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        reference.update(b"hello world");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac_sha256(&key, &[b"hello", b" ", b"world"]), expected);
    }

    #[test]
    fn subkeys_differ_from_each_other_and_from_the_master_key() {
        let key = test_key(5);
        let subkeys = [
            key.subkey(DEVICE_SECRET_LABEL),
            key.subkey(EMAILED_OTP_LABEL),
            key.subkey(KEY_CHECK_LABEL),
            key.subkey(CSRF_LABEL),
            key.subkey(RECOVERY_CODE_LABEL),
            key.subkey(TEMPORARY_ACCESS_LABEL),
        ];
        for (i, a) in subkeys.iter().enumerate() {
            assert_ne!(a, &key.0);
            for b in &subkeys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn subkey_derivation_is_hmac_sha256_of_the_label() {
        let master = MasterKey([0u8; 32]);
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).unwrap();
        reference.update(b"twostep device-secret v1");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(master.subkey(DEVICE_SECRET_LABEL), expected);
    }

    // --- seal / open ---

    #[test]
    fn sealed_values_open_with_the_same_key_and_associated_data() {
        let key = test_key(6);
        let mut rng = StdRng::seed_from_u64(60);
        for plaintext in [&b""[..], b"x", b"12345678901234567890", &[0xff; 128]] {
            let sealed = key.seal(plaintext, b"device:42", &mut rng).unwrap();
            assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD);
            assert_eq!(sealed[0], 1);
            assert_eq!(key.open(&sealed, b"device:42").unwrap(), plaintext);
        }
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let key = test_key(7);
        let mut rng = StdRng::seed_from_u64(70);
        let a = key.seal(b"same secret", b"device:1", &mut rng).unwrap();
        let b = key.seal(b"same secret", b"device:1", &mut rng).unwrap();
        assert_ne!(a, b);
        assert_ne!(a[1..25], b[1..25], "nonces must differ");
    }

    #[test]
    fn the_ciphertext_does_not_contain_the_plaintext() {
        let key = test_key(8);
        let plaintext = b"a very recognisable device secret";
        let sealed = key
            .seal(plaintext, b"", &mut StdRng::seed_from_u64(80))
            .unwrap();
        assert!(!sealed
            .windows(plaintext.len())
            .any(|window| window == plaintext));
    }

    #[test]
    fn opening_with_another_key_fails() {
        let sealed = test_key(9)
            .seal(b"secret", b"device:1", &mut StdRng::seed_from_u64(90))
            .unwrap();
        assert!(matches!(
            test_key(10).open(&sealed, b"device:1"),
            Err(KeyError::Decrypt)
        ));
    }

    #[test]
    fn opening_with_other_associated_data_fails() {
        let key = test_key(11);
        let sealed = key
            .seal(b"secret", b"device:42", &mut StdRng::seed_from_u64(110))
            .unwrap();
        for other in [&b"device:43"[..], b"device:4", b"", b"device:42\0"] {
            assert!(matches!(key.open(&sealed, other), Err(KeyError::Decrypt)));
        }
    }

    #[test]
    fn flipping_any_bit_of_a_sealed_value_is_detected() {
        let key = test_key(12);
        let sealed = key
            .seal(b"secret bytes", b"ad", &mut StdRng::seed_from_u64(120))
            .unwrap();
        for index in 0..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[index] ^= 1 << bit;
                assert!(
                    matches!(key.open(&tampered, b"ad"), Err(KeyError::Decrypt)),
                    "byte {index} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn unknown_versions_are_refused() {
        let key = test_key(13);
        let sealed = key
            .seal(b"secret", b"ad", &mut StdRng::seed_from_u64(130))
            .unwrap();
        for version in [0u8, 2, 0xff] {
            let mut other = sealed.clone();
            other[0] = version;
            assert!(matches!(key.open(&other, b"ad"), Err(KeyError::Decrypt)));
        }
    }

    #[test]
    fn every_truncation_of_a_sealed_value_is_refused() {
        let key = test_key(14);
        let sealed = key
            .seal(b"secret", b"ad", &mut StdRng::seed_from_u64(140))
            .unwrap();
        for length in 0..sealed.len() {
            assert!(
                matches!(key.open(&sealed[..length], b"ad"), Err(KeyError::Decrypt)),
                "length {length}"
            );
        }
        let mut extended = sealed.clone();
        extended.push(0);
        assert!(matches!(key.open(&extended, b"ad"), Err(KeyError::Decrypt)));
    }

    #[test]
    fn garbage_input_to_open_is_refused_without_panicking() {
        let key = test_key(15);
        let mut rng = StdRng::seed_from_u64(150);
        for length in 0..300 {
            for _ in 0..8 {
                let mut garbage = vec![0u8; length];
                rng.fill_bytes(&mut garbage);
                if let Some(first) = garbage.first_mut() {
                    // Half the time a valid version byte, to get past the first check.
                    if rng.next_u32() % 2 == 0 {
                        *first = SEAL_VERSION;
                    }
                }
                assert!(matches!(key.open(&garbage, b"ad"), Err(KeyError::Decrypt)));
            }
        }
    }

    // --- Key check ---

    #[test]
    fn key_check_is_stable_for_a_key_and_recognises_only_that_key() {
        let key = test_key(16);
        let check = key.key_check();
        assert_eq!(check.len(), 32);
        assert_eq!(check, key.key_check());
        assert!(key.verify_key_check(&check));
        assert!(!test_key(17).verify_key_check(&check));
        assert!(!key.verify_key_check(&check[..31]));
        assert!(!key.verify_key_check(&[]));
        let mut altered = check.clone();
        altered[31] ^= 1;
        assert!(!key.verify_key_check(&altered));
    }

    #[test]
    fn key_check_does_not_reveal_a_subkey_or_the_master_key() {
        let key = test_key(18);
        let check = key.key_check();
        assert_ne!(check, key.0);
        for label in [
            DEVICE_SECRET_LABEL,
            EMAILED_OTP_LABEL,
            KEY_CHECK_LABEL,
            CSRF_LABEL,
        ] {
            assert_ne!(check, key.subkey(label));
        }
    }

    // --- Emailed codes ---

    #[test]
    fn emailed_code_hashes_depend_on_key_context_and_code() {
        let key = test_key(19);
        let hash = key.hash_emailed_code(b"signin:7", "123456");
        assert_eq!(hash, key.hash_emailed_code(b"signin:7", "123456"));
        assert_ne!(hash, key.hash_emailed_code(b"signin:8", "123456"));
        assert_ne!(hash, key.hash_emailed_code(b"signin:7", "123457"));
        assert_ne!(hash, test_key(20).hash_emailed_code(b"signin:7", "123456"));
    }

    #[test]
    fn the_context_length_prefix_keeps_context_and_code_apart() {
        let key = test_key(21);
        assert_ne!(
            key.hash_emailed_code(b"ab", "c"),
            key.hash_emailed_code(b"a", "bc")
        );
        assert_ne!(
            key.hash_emailed_code(b"", "123456"),
            key.hash_emailed_code(b"1", "23456")
        );
    }

    /// SPEC 15: temporary access codes are kept as keyed hashes of their own subkey, bound
    /// to their user: never equal to a recovery code's hash of the same text.
    #[test]
    fn temporary_access_hashes_depend_on_key_user_and_code() {
        use crate::domain::{TemporaryAccessCode, UserId};
        let key = test_key(33);
        let code = TemporaryAccessCode::parse("abcd-efgh-1234").unwrap();
        let other_code = TemporaryAccessCode::parse("abcd-efgh-1235").unwrap();
        let hash = key.temporary_access_hash(UserId(1), &code);
        assert_eq!(hash, key.temporary_access_hash(UserId(1), &code));
        assert_ne!(hash, key.temporary_access_hash(UserId(2), &code));
        assert_ne!(hash, key.temporary_access_hash(UserId(1), &other_code));
        assert_ne!(hash, test_key(34).temporary_access_hash(UserId(1), &code));
        let mut reference =
            <Hmac<Sha256> as Mac>::new_from_slice(&key.subkey(TEMPORARY_ACCESS_LABEL)).unwrap();
        reference.update(&1i64.to_be_bytes());
        reference.update(b"abcdefgh1234");
        assert_eq!(hash, <[u8; 32]>::from(reference.finalize().into_bytes()));
        assert_ne!(TEMPORARY_ACCESS_LABEL, RECOVERY_CODE_LABEL);
    }

    /// SPEC 10: recovery codes are stored as keyed hashes, bound to their user.
    #[test]
    fn recovery_code_hashes_depend_on_key_user_and_code() {
        use crate::domain::{RecoveryCode, UserId};
        let key = test_key(31);
        let other_key = test_key(32);
        let code = RecoveryCode::parse("abcde-12345").unwrap();
        let other_code = RecoveryCode::parse("abcde-12346").unwrap();
        let hash = key.recovery_code_hash(UserId(1), &code);
        assert_eq!(hash, key.recovery_code_hash(UserId(1), &code));
        assert_ne!(hash, key.recovery_code_hash(UserId(2), &code));
        assert_ne!(hash, key.recovery_code_hash(UserId(1), &other_code));
        assert_ne!(hash, other_key.recovery_code_hash(UserId(1), &code));
        let mut reference =
            <Hmac<Sha256> as Mac>::new_from_slice(&key.subkey(RECOVERY_CODE_LABEL)).unwrap();
        reference.update(&1i64.to_be_bytes());
        reference.update(b"abcde12345");
        assert_eq!(hash, <[u8; 32]>::from(reference.finalize().into_bytes()));
    }

    #[test]
    fn emailed_code_hash_is_hmac_under_the_emailed_otp_subkey() {
        let key = test_key(22);
        let mut reference =
            <Hmac<Sha256> as Mac>::new_from_slice(&key.subkey(EMAILED_OTP_LABEL)).unwrap();
        reference.update(&3u64.to_be_bytes());
        reference.update(b"ctx");
        reference.update(b"000000");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(key.hash_emailed_code(b"ctx", "000000"), expected);
    }

    // --- CSRF ---

    #[test]
    fn csrf_macs_are_hmac_of_length_prefixed_parts_under_the_csrf_subkey() {
        let key = test_key(23);
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key.subkey(CSRF_LABEL)).unwrap();
        reference.update(&4u64.to_be_bytes());
        reference.update(b"form");
        reference.update(&2u64.to_be_bytes());
        reference.update(b"xy");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(key.csrf_mac(&[b"form", b"xy"]), expected);
        assert_ne!(
            key.csrf_mac(&[b"form", b"xy"]),
            key.csrf_mac(&[b"formx", b"y"])
        );
        assert_ne!(key.csrf_mac(&[b"form", b"xy"]), key.csrf_mac(&[b"formxy"]));
        assert_ne!(
            key.csrf_mac(&[b"form", b"xy"]),
            test_key(24).csrf_mac(&[b"form", b"xy"])
        );
    }

    #[test]
    fn constant_time_comparison_handles_equal_different_and_mismatched_lengths() {
        assert!(ct_eq_hash(&[1, 2, 3], &[1, 2, 3]));
        assert!(!ct_eq_hash(&[1, 2, 3], &[1, 2, 4]));
        assert!(!ct_eq_hash(&[1, 2, 3], &[1, 2]));
        assert!(!ct_eq_hash(&[], &[0]));
        assert!(ct_eq_hash(&[], &[]));
    }

    // --- Tokens ---

    #[test]
    fn generated_tokens_are_43_url_safe_characters_and_differ() {
        let mut rng = StdRng::seed_from_u64(23);
        let a = Token::generate(&mut rng);
        let b = Token::generate(&mut rng);
        assert_eq!(a.as_str().len(), TOKEN_CHARS);
        assert!(a
            .as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a.as_str(), b.as_str());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn generated_tokens_parse_back_to_the_same_text() {
        let mut rng = StdRng::seed_from_u64(24);
        for _ in 0..200 {
            let token = Token::generate(&mut rng);
            let parsed = Token::parse(token.as_str()).unwrap();
            assert_eq!(parsed.as_str(), token.as_str());
            assert_eq!(parsed.hash(), token.hash());
        }
    }

    #[test]
    fn token_hash_is_sha256_of_the_text() {
        // 32 zero bytes encode as 43 'A's; `printf 'A%.0s' $(seq 43) | sha256sum`.
        let token = Token::parse(&"A".repeat(43)).unwrap();
        assert_eq!(
            HEXLOWER.encode(&token.hash()),
            "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"
        );
    }

    #[test]
    fn token_parse_refuses_anything_but_canonical_base64url_of_32_bytes() {
        let good = Token::generate(&mut StdRng::seed_from_u64(25));
        let text = good.as_str();
        assert_eq!(Token::parse("").unwrap_err(), TokenError::WrongLength);
        assert_eq!(
            Token::parse(&text[..42]).unwrap_err(),
            TokenError::WrongLength
        );
        assert_eq!(
            Token::parse(&format!("{text}A")).unwrap_err(),
            TokenError::WrongLength
        );
        assert_eq!(
            Token::parse(&format!(" {}", &text[..42])).unwrap_err(),
            TokenError::InvalidEncoding
        );
        for bad in ['+', '/', '=', '.', '\0'] {
            let candidate = format!("{}{bad}", &text[..42]);
            assert_eq!(
                Token::parse(&candidate).unwrap_err(),
                TokenError::InvalidEncoding,
                "{bad:?}"
            );
        }
        // 'é' is two bytes: 41 + 2 = 43 bytes, but not base64url.
        let candidate = format!("{}é", &text[..41]);
        assert_eq!(candidate.len(), 43);
        assert_eq!(
            Token::parse(&candidate).unwrap_err(),
            TokenError::InvalidEncoding
        );
        // The last character carries 2 unused bits; only 'A', 'E', 'I', ... leave them 0.
        let non_canonical = format!("{}B", "A".repeat(42));
        assert_eq!(
            Token::parse(&non_canonical).unwrap_err(),
            TokenError::InvalidEncoding
        );
    }

    #[test]
    fn token_parse_never_panics_on_garbage() {
        let mut rng = StdRng::seed_from_u64(26);
        for length in 0..100 {
            for _ in 0..20 {
                let mut bytes = vec![0u8; length];
                rng.fill_bytes(&mut bytes);
                let text = String::from_utf8_lossy(&bytes);
                let _ = Token::parse(&text);
            }
        }
    }

    #[test]
    fn token_debug_output_is_redacted_and_errors_do_not_echo_input() {
        let token = Token::generate(&mut StdRng::seed_from_u64(27));
        let shown = format!("{token:?}");
        assert_eq!(shown, "Token([redacted])");
        let error = Token::parse(&format!("{}+", &token.as_str()[..42])).unwrap_err();
        assert!(!error.to_string().contains(&token.as_str()[..10]));
    }

    // --- Key file ---

    #[tokio::test]
    async fn a_missing_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twostep.key");
        let created = load_or_create_key_file(&path, true).await.unwrap();
        let content = std::fs::read_to_string(&path).unwrap();
        assert_eq!(content, format!("{}\n", created.to_hex()));
        #[cfg(unix)]
        assert_eq!(mode_of(&path), 0o600);
        let loaded = load_or_create_key_file(&path, false).await.unwrap();
        assert_eq!(loaded.to_hex(), created.to_hex());
        let again = load_or_create_key_file(&path, true).await.unwrap();
        assert_eq!(
            again.to_hex(),
            created.to_hex(),
            "create must not overwrite"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("twostep.key")]);
    }

    #[tokio::test]
    async fn missing_parent_directories_are_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/twostep/twostep.key");
        load_or_create_key_file(&path, true).await.unwrap();
        assert!(path.is_file());
        #[cfg(unix)]
        {
            assert_eq!(mode_of(&dir.path().join("etc")), 0o700);
            assert_eq!(mode_of(&dir.path().join("etc/twostep")), 0o700);
        }
    }

    #[tokio::test]
    async fn a_missing_key_file_without_create_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twostep.key");
        let error = load_or_create_key_file(&path, false).await.unwrap_err();
        assert!(matches!(&error, KeyError::Missing { path: p } if p == &path));
        assert!(error.to_string().contains(&path.display().to_string()));
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_key_file_others_can_access_is_refused_with_the_chmod_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twostep.key");
        let hex = test_key(28).to_hex();
        for mode in [0o644, 0o640, 0o604, 0o601, 0o610, 0o660] {
            write_with_mode(&path, &hex, mode);
            let error = load_or_create_key_file(&path, true).await.unwrap_err();
            assert!(
                matches!(&error, KeyError::InsecurePermissions { path: p } if p == &path),
                "{mode:o}"
            );
            let message = error.to_string();
            assert!(
                message.contains(&format!("chmod 600 {}", path.display())),
                "{message}"
            );
            assert!(!message.contains(&hex[..8]));
        }
        for mode in [0o600, 0o400] {
            write_with_mode(&path, &hex, mode);
            let loaded = load_or_create_key_file(&path, false).await.unwrap();
            assert_eq!(loaded.to_hex(), hex, "{mode:o}");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_malformed_key_file_is_refused_without_echoing_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twostep.key");
        let hex = test_key(29).to_hex();
        for content in [
            hex[..60].to_owned(),
            format!("{hex}{hex}"),
            String::new(),
            format!("key={hex}"),
        ] {
            write_with_mode(&path, &content, 0o600);
            let error = load_or_create_key_file(&path, true).await.unwrap_err();
            assert!(
                matches!(&error, KeyError::Malformed { path: Some(p) } if p == &path),
                "{content}"
            );
            let message = error.to_string();
            assert!(message.contains(&path.display().to_string()));
            assert!(!message.contains(&hex[..8]), "{message}");
        }
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            load_or_create_key_file(&path, false).await,
            Err(KeyError::Malformed { .. })
        ));
        // Whitespace around the key (e.g. an editor's newline) is fine.
        write_with_mode(&path, &format!("\n  {hex}  \n\n"), 0o600);
        assert_eq!(
            load_or_create_key_file(&path, false)
                .await
                .unwrap()
                .to_hex(),
            hex
        );
    }

    #[tokio::test]
    async fn a_directory_in_place_of_the_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_or_create_key_file(dir.path(), true).await.unwrap_err();
        assert!(matches!(error, KeyError::NotAFile { .. }), "{error}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symbolic_link_to_a_private_key_file_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.key");
        let link = dir.path().join("twostep.key");
        let hex = test_key(30).to_hex();
        write_with_mode(&target, &hex, 0o600);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            load_or_create_key_file(&link, false)
                .await
                .unwrap()
                .to_hex(),
            hex
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processes_racing_to_create_the_key_file_all_get_the_same_key() {
        for _round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("sub/twostep.key");
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    tokio::spawn(async move { load_or_create_key_file(&path, true).await })
                })
                .collect();
            let mut keys = Vec::new();
            for task in tasks {
                keys.push(task.await.unwrap().unwrap().to_hex());
            }
            let on_disk = std::fs::read_to_string(&path).unwrap();
            for key in &keys {
                assert_eq!(format!("{key}\n"), on_disk);
            }
            let entries = std::fs::read_dir(dir.path().join("sub")).unwrap().count();
            assert_eq!(entries, 1, "no temporary file is left behind");
        }
    }

    #[test]
    fn error_messages_are_actionable() {
        let path = PathBuf::from("/x/twostep.key");
        let missing = KeyError::Missing { path: path.clone() }.to_string();
        assert!(missing.contains("/x/twostep.key") && missing.contains("backup"));
        let insecure = KeyError::InsecurePermissions { path: path.clone() }.to_string();
        assert!(insecure.contains("chmod 600 /x/twostep.key"), "{insecure}");
        let malformed = KeyError::Malformed {
            path: Some(path.clone()),
        }
        .to_string();
        assert!(malformed.contains("/x/twostep.key") && malformed.contains("64 hexadecimal"));
        let io = KeyError::Io {
            path,
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        }
        .to_string();
        assert!(io.contains("/x/twostep.key"), "{io}");
    }
}
