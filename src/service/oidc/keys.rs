//! The ID tokens' signing keys (SPEC 13): RSA 2048, generated on first start, the private
//! key sealed under the server key in the database, so that every instance signs with the
//! same key. `twostep oidc rotate-key` makes a new one current; a retired key stays in the
//! JWKS until every ID token it signed has expired.

use std::sync::{Arc, Mutex};

use data_encoding::BASE64URL_NOPAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::rngs::OsRng;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use super::super::Context;
use super::ID_TOKEN_SECONDS;
use crate::clock::Timestamp;
use crate::store::{StoreError, StoredSigningKey};

/// RSA modulus size: 2048 bits, as RFC 7518 3.3 requires at least.
const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the signing key could not be made: {0}")]
    Generate(String),
    #[error("the stored signing key cannot be opened with this server key")]
    Sealed,
    #[error("no signing key is stored")]
    Missing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A public key of the JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// base64url of the modulus and the exponent.
    pub n: String,
    pub e: String,
}

impl From<&StoredSigningKey> for PublicKey {
    fn from(key: &StoredSigningKey) -> Self {
        Self {
            kid: key.kid.clone(),
            n: key.modulus.clone(),
            e: key.exponent.clone(),
        }
    }
}

impl PublicKey {
    pub fn decoding_key(&self) -> Option<DecodingKey> {
        DecodingKey::from_rsa_components(&self.n, &self.e).ok()
    }
}

/// The signing key this instance last opened, so that each token does not unseal and
/// parse it again; the database says which key is current.
#[derive(Default)]
pub struct KeyCache {
    current: Mutex<Option<(String, Arc<EncodingKey>)>>,
}

/// What a sealed private key's associated data is: its place.
fn associated_data(kid: &str) -> Vec<u8> {
    format!("oidc-signing-key:{kid}").into_bytes()
}

/// A new key, sealed, made at `now` (RSA key generation takes a moment: off the async
/// threads).
async fn generate(ctx: &Context, now: Timestamp) -> Result<StoredSigningKey, KeyError> {
    let private = tokio::task::spawn_blocking(|| rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS))
        .await
        .map_err(|error| KeyError::Generate(error.to_string()))?
        .map_err(|error| KeyError::Generate(error.to_string()))?;
    let der = private
        .to_pkcs1_der()
        .map_err(|error| KeyError::Generate(error.to_string()))?;
    let n = BASE64URL_NOPAD.encode(&private.n().to_bytes_be());
    let e = BASE64URL_NOPAD.encode(&private.e().to_bytes_be());
    let kid = thumbprint(&n, &e);
    let sealed = ctx
        .store
        .key()
        .seal(der.as_bytes(), &associated_data(&kid), &mut OsRng)
        .map_err(|error| KeyError::Generate(error.to_string()))?;
    Ok(StoredSigningKey {
        kid,
        sealed_private_key: sealed,
        modulus: n,
        exponent: e,
        created_at: now,
        retired_at: None,
    })
}

/// RFC 7638's JWK thumbprint (SHA-256 of the required members in order), as the `kid`.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    BASE64URL_NOPAD.encode(&Sha256::digest(canonical.as_bytes()))
}

/// Makes the first signing key unless one is stored (at start; two instances starting
/// together store one between them).
pub async fn ensure(ctx: &Context) -> Result<(), KeyError> {
    if ctx.store.oidc_current_signing_key().await?.is_some() {
        return Ok(());
    }
    let key = generate(ctx, ctx.now()).await?;
    if ctx.store.add_first_oidc_signing_key(&key).await? {
        tracing::info!(kid = %key.kid, "made the signing key of ID tokens");
    }
    Ok(())
}

/// Makes a new current signing key; the old one is retired (still published). The new
/// key's id.
pub async fn rotate(ctx: &Context) -> Result<String, KeyError> {
    let now = ctx.now();
    let key = generate(ctx, now).await?;
    ctx.store.rotate_oidc_signing_key(&key).await?;
    ctx.store
        .prune_oidc_signing_keys(now.plus_seconds(-ID_TOKEN_SECONDS))
        .await?;
    Ok(key.kid)
}

/// The keys of the JWKS: the current one, and those retired within an ID token's
/// lifetime (a token they signed may still be valid).
pub async fn published(ctx: &Context) -> Result<Vec<PublicKey>, KeyError> {
    let since = ctx.now().plus_seconds(-ID_TOKEN_SECONDS);
    let keys = ctx.store.oidc_signing_keys(since).await?;
    Ok(keys.iter().map(PublicKey::from).collect())
}

impl KeyCache {
    /// The current signing key: its id and the key to sign with.
    pub async fn current(&self, ctx: &Context) -> Result<(String, Arc<EncodingKey>), KeyError> {
        let stored = ctx
            .store
            .oidc_current_signing_key()
            .await?
            .ok_or(KeyError::Missing)?;
        if let Ok(cached) = self.current.lock() {
            if let Some((kid, key)) = cached.as_ref() {
                if *kid == stored.kid {
                    return Ok((kid.clone(), Arc::clone(key)));
                }
            }
        }
        let der = ctx
            .store
            .key()
            .open(&stored.sealed_private_key, &associated_data(&stored.kid))
            .map_err(|_| KeyError::Sealed)?;
        let key = Arc::new(EncodingKey::from_rsa_der(&der));
        if let Ok(mut cached) = self.current.lock() {
            *cached = Some((stored.kid.clone(), Arc::clone(&key)));
        }
        Ok((stored.kid, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 3.1's example key and its thumbprint.
    #[test]
    fn the_key_id_is_the_rfc_7638_thumbprint() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
