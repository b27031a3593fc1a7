//! A software FIDO2 authenticator for the WebAuthn tests (SPEC 14): an ES256 (P-256) key with
//! "none" attestation and an all-zero AAGUID that answers the JSON options of the server's
//! endpoints with the JSON a browser's `PublicKeyCredential.toJSON()` gives. `Tweak` makes
//! it misbehave in the ways the server must refuse. The tests at the end check it against
//! webauthn-rs directly (no server): accepted ceremonies and each refusal.

use ciborium::Value as Cbor;
use data_encoding::BASE64URL_NOPAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::rngs::OsRng;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

/// authenticatorData flags.
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;

/// ES256 key, "none" attestation, AAGUID all zero.
#[derive(Clone)]
pub(crate) struct SoftKey {
    /// The relying party's origin, verbatim in clientDataJSON.
    origin: String,
    key: SigningKey,
    credential_id: Vec<u8>,
    /// The signature counter: sent as is at registration, incremented before each assertion.
    pub(crate) counter: u32,
    /// The RP ID of the last registration (the options' rp.id, else the origin's host).
    rp_id: String,
    /// The user handle (options' user.id) of the last registration.
    user_handle: Vec<u8>,
}

/// How an answer departs from a well-behaved authenticator's.
#[derive(Clone, Debug)]
pub(crate) struct Tweak {
    /// Default true: flags UP|UV (|AT at registration); false: UP only (|AT).
    pub(crate) user_verified: bool,
    /// Sign/hash another RP ID than the options' (a wrong RP ID hash).
    pub(crate) rp_id: Option<String>,
    /// Put this base64url challenge in clientDataJSON instead of the options'.
    pub(crate) challenge: Option<String>,
    /// clientDataJSON origin instead of the key's.
    pub(crate) origin: Option<String>,
    /// Send this signCount (no increment).
    pub(crate) counter: Option<u32>,
}

impl Default for Tweak {
    fn default() -> Self {
        Tweak {
            user_verified: true,
            rp_id: None,
            challenge: None,
            origin: None,
            counter: None,
        }
    }
}

/// The host of an origin such as "http://localhost:8443".
fn origin_host(origin: &str) -> String {
    Url::parse(origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("origin {origin:?} has a host"))
}

/// Base64url, padded or not (what the options carry).
fn decode_b64url(s: &str) -> Vec<u8> {
    BASE64URL_NOPAD
        .decode(s.trim_end_matches('=').as_bytes())
        .unwrap_or_else(|e| panic!("base64url {s:?}: {e}"))
}

fn str_field<'a>(options: &'a Value, pointer: &str) -> Option<&'a str> {
    options.pointer(pointer).and_then(Value::as_str)
}

/// clientDataJSON in a browser's field order.
fn client_data_json(type_: &str, challenge: &str, origin: &str) -> Vec<u8> {
    format!(
        "{{\"type\":{},\"challenge\":{},\"origin\":{},\"crossOrigin\":false}}",
        Value::from(type_),
        Value::from(challenge),
        Value::from(origin)
    )
    .into_bytes()
}

fn cbor_bytes(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR encodes");
    out
}

impl SoftKey {
    /// A new key for a relying party at `origin` (e.g. "http://localhost:8443"; origin string
    /// used verbatim in clientDataJSON).
    pub(crate) fn new(origin: &str) -> Self {
        let mut credential_id = vec![0u8; 32];
        OsRng.fill_bytes(&mut credential_id);
        SoftKey {
            origin: origin.to_owned(),
            key: SigningKey::random(&mut OsRng),
            credential_id,
            counter: 0,
            rp_id: origin_host(origin),
            user_handle: Vec::new(),
        }
    }

    /// The credential id, base64url.
    pub(crate) fn credential_id(&self) -> String {
        BASE64URL_NOPAD.encode(&self.credential_id)
    }

    /// The public key as a COSE_Key: {1:2 (EC2), 3:-7 (ES256), -1:1 (P-256), -2:x, -3:y}.
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let x = point.x().expect("uncompressed point has x").to_vec();
        let y = point.y().expect("uncompressed point has y").to_vec();
        cbor_bytes(&Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(x)),
            (Cbor::Integer((-3).into()), Cbor::Bytes(y)),
        ]))
    }

    /// SHA-256(rp_id) | flags | signCount (big endian).
    fn auth_data(rp_id: &str, flags: u8, count: u32) -> Vec<u8> {
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&count.to_be_bytes());
        data
    }

    fn flags(tweak: &Tweak) -> u8 {
        if tweak.user_verified {
            FLAG_UP | FLAG_UV
        } else {
            FLAG_UP
        }
    }

    /// Answers `options` (the `public_key` object of PublicKeyCredentialCreationOptions in
    /// its JSON form) with RegistrationResponseJSON. Remembers the RP ID and the user handle.
    pub(crate) fn register(&mut self, options: &Value) -> Value {
        self.register_with(options, &Tweak::default())
    }

    pub(crate) fn register_with(&mut self, options: &Value, tweak: &Tweak) -> Value {
        let challenge = str_field(options, "/challenge").expect("options have a challenge");
        let user_id = str_field(options, "/user/id").expect("options have user.id");
        self.rp_id = str_field(options, "/rp/id")
            .map(str::to_owned)
            .unwrap_or_else(|| origin_host(&self.origin));
        self.user_handle = decode_b64url(user_id);

        let client_data = client_data_json(
            "webauthn.create",
            tweak.challenge.as_deref().unwrap_or(challenge),
            tweak.origin.as_deref().unwrap_or(&self.origin),
        );
        let rp_id = tweak.rp_id.as_deref().unwrap_or(&self.rp_id);
        let mut auth_data = Self::auth_data(
            rp_id,
            Self::flags(tweak) | FLAG_AT,
            tweak.counter.unwrap_or(self.counter),
        );
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        let id_len = u16::try_from(self.credential_id.len()).expect("credential id length");
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());

        let attestation_object = cbor_bytes(&Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(Vec::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));

        json!({
            "id": self.credential_id(),
            "rawId": self.credential_id(),
            "type": "public-key",
            "response": {
                "clientDataJSON": BASE64URL_NOPAD.encode(&client_data),
                "attestationObject": BASE64URL_NOPAD.encode(&attestation_object),
                "transports": ["usb"],
            },
            "clientExtensionResults": { "credProps": { "rk": true } },
            "authenticatorAttachment": "cross-platform",
        })
    }

    /// Answers PublicKeyCredentialRequestOptions JSON with AuthenticationResponseJSON.
    /// Increments `counter` first (unless `tweak.counter`), signs
    /// authenticatorData || SHA-256(clientDataJSON) (ECDSA P-256, DER signature). The
    /// userHandle is always the remembered user handle. allowCredentials and
    /// userVerification are not checked: the key answers whatever it is asked, so that tests
    /// can show the server refusing it.
    pub(crate) fn assert(&mut self, options: &Value) -> Value {
        self.assert_with(options, &Tweak::default())
    }

    pub(crate) fn assert_with(&mut self, options: &Value, tweak: &Tweak) -> Value {
        let challenge = str_field(options, "/challenge").expect("options have a challenge");
        let count = match tweak.counter {
            Some(count) => count,
            None => {
                self.counter += 1;
                self.counter
            }
        };
        let rp_id = tweak
            .rp_id
            .as_deref()
            .or_else(|| str_field(options, "/rpId"))
            .unwrap_or(&self.rp_id);
        let auth_data = Self::auth_data(rp_id, Self::flags(tweak), count);
        let client_data = client_data_json(
            "webauthn.get",
            tweak.challenge.as_deref().unwrap_or(challenge),
            tweak.origin.as_deref().unwrap_or(&self.origin),
        );

        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);

        json!({
            "id": self.credential_id(),
            "rawId": self.credential_id(),
            "type": "public-key",
            "response": {
                "clientDataJSON": BASE64URL_NOPAD.encode(&client_data),
                "authenticatorData": BASE64URL_NOPAD.encode(&auth_data),
                "signature": BASE64URL_NOPAD.encode(signature.to_der().as_bytes()),
                "userHandle": BASE64URL_NOPAD.encode(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

// The key against webauthn-rs itself.

const ORIGIN: &str = "http://localhost:8443";

fn webauthn() -> Webauthn {
    let origin = Url::parse(ORIGIN).expect("origin parses");
    WebauthnBuilder::new("localhost", &origin)
        .expect("builder")
        .build()
        .expect("webauthn")
}

/// Registration options as the server sends them: `ccr.public_key` in JSON.
fn start_registration(webauthn: &Webauthn, user: Uuid) -> (Value, PasskeyRegistration) {
    let (ccr, state) = webauthn
        .start_passkey_registration(user, "nurse", "Nurse", None)
        .expect("registration starts");
    let options = serde_json::to_value(&ccr.public_key).expect("options serialise");
    (options, state)
}

fn finish_registration(
    webauthn: &Webauthn,
    state: &PasskeyRegistration,
    answer: Value,
) -> Result<Passkey, WebauthnError> {
    let reg: RegisterPublicKeyCredential =
        serde_json::from_value(answer).expect("answer deserialises");
    webauthn.finish_passkey_registration(&reg, state)
}

/// A key registered with webauthn-rs: the key, its passkey and the user's id.
fn registered() -> (Webauthn, SoftKey, Passkey, Uuid) {
    let webauthn = webauthn();
    let user = Uuid::new_v4();
    let (options, state) = start_registration(&webauthn, user);
    let mut key = SoftKey::new(ORIGIN);
    let passkey =
        finish_registration(&webauthn, &state, key.register(&options)).expect("registration");
    (webauthn, key, passkey, user)
}

/// One passkey sign-in with `tweak`: the result of finish_passkey_authentication.
fn sign_in(
    webauthn: &Webauthn,
    key: &mut SoftKey,
    passkey: &Passkey,
    tweak: &Tweak,
) -> Result<AuthenticationResult, WebauthnError> {
    let (rcr, state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(passkey))
        .expect("authentication starts");
    let options = serde_json::to_value(&rcr.public_key).expect("options serialise");
    let answer: PublicKeyCredential =
        serde_json::from_value(key.assert_with(&options, tweak)).expect("answer deserialises");
    webauthn.finish_passkey_authentication(&answer, &state)
}

#[test]
fn registration_is_accepted_with_the_browser_json_shape() {
    let webauthn = webauthn();
    let (options, state) = start_registration(&webauthn, Uuid::new_v4());
    let mut key = SoftKey::new(ORIGIN);
    let answer = key.register(&options);
    assert_eq!(answer["type"], "public-key");
    assert_eq!(answer["id"], key.credential_id());
    assert_eq!(answer["rawId"], key.credential_id());
    assert_eq!(answer["response"]["transports"], json!(["usb"]));
    assert_eq!(answer["clientExtensionResults"]["credProps"]["rk"], true);
    assert_eq!(answer["authenticatorAttachment"], "cross-platform");
    let client_data = BASE64URL_NOPAD
        .decode(
            answer["response"]["clientDataJSON"]
                .as_str()
                .expect("clientDataJSON")
                .as_bytes(),
        )
        .expect("base64url");
    let client_data: Value = serde_json::from_slice(&client_data).expect("JSON");
    assert_eq!(client_data["type"], "webauthn.create");
    assert_eq!(client_data["challenge"], options["challenge"]);
    assert_eq!(client_data["origin"], ORIGIN);
    assert_eq!(client_data["crossOrigin"], false);

    let passkey = finish_registration(&webauthn, &state, answer).expect("registration accepted");
    assert_eq!(
        BASE64URL_NOPAD.encode(passkey.cred_id()),
        key.credential_id()
    );
}

#[test]
fn registration_without_user_verification_is_refused() {
    let webauthn = webauthn();
    let (options, state) = start_registration(&webauthn, Uuid::new_v4());
    let mut key = SoftKey::new(ORIGIN);
    let tweak = Tweak {
        user_verified: false,
        ..Tweak::default()
    };
    let err = finish_registration(&webauthn, &state, key.register_with(&options, &tweak))
        .expect_err("refused");
    assert!(matches!(err, WebauthnError::UserNotVerified), "{err:?}");
}

#[test]
fn registration_with_another_challenge_is_refused() {
    let webauthn = webauthn();
    let (options, state) = start_registration(&webauthn, Uuid::new_v4());
    let mut key = SoftKey::new(ORIGIN);
    let tweak = Tweak {
        challenge: Some(BASE64URL_NOPAD.encode(&[7u8; 32])),
        ..Tweak::default()
    };
    let err = finish_registration(&webauthn, &state, key.register_with(&options, &tweak))
        .expect_err("refused");
    assert!(matches!(err, WebauthnError::MismatchedChallenge), "{err:?}");
}

#[test]
fn registration_for_another_rp_id_is_refused() {
    let webauthn = webauthn();
    let (options, state) = start_registration(&webauthn, Uuid::new_v4());
    let mut key = SoftKey::new(ORIGIN);
    let tweak = Tweak {
        rp_id: Some("evil.example".into()),
        ..Tweak::default()
    };
    let err = finish_registration(&webauthn, &state, key.register_with(&options, &tweak))
        .expect_err("refused");
    assert!(matches!(err, WebauthnError::InvalidRPIDHash), "{err:?}");
}

#[test]
fn authentication_is_accepted_with_counter_one() {
    let (webauthn, mut key, passkey, _) = registered();
    let result = sign_in(&webauthn, &mut key, &passkey, &Tweak::default()).expect("accepted");
    assert_eq!(result.counter(), 1);
    assert_eq!(key.counter, 1);
    assert!(result.user_verified());
    assert_eq!(result.cred_id(), passkey.cred_id());
}

#[test]
fn authentication_without_user_verification_is_refused() {
    let (webauthn, mut key, passkey, _) = registered();
    let tweak = Tweak {
        user_verified: false,
        ..Tweak::default()
    };
    let err = sign_in(&webauthn, &mut key, &passkey, &tweak).expect_err("refused");
    assert!(matches!(err, WebauthnError::UserNotVerified), "{err:?}");
}

#[test]
fn authentication_for_another_rp_id_is_refused() {
    let (webauthn, mut key, passkey, _) = registered();
    let tweak = Tweak {
        rp_id: Some("evil.example".into()),
        ..Tweak::default()
    };
    let err = sign_in(&webauthn, &mut key, &passkey, &tweak).expect_err("refused");
    assert!(matches!(err, WebauthnError::InvalidRPIDHash), "{err:?}");
}

#[test]
fn authentication_with_another_challenge_is_refused() {
    let (webauthn, mut key, passkey, _) = registered();
    let tweak = Tweak {
        challenge: Some(BASE64URL_NOPAD.encode(&[7u8; 32])),
        ..Tweak::default()
    };
    let err = sign_in(&webauthn, &mut key, &passkey, &tweak).expect_err("refused");
    assert!(matches!(err, WebauthnError::MismatchedChallenge), "{err:?}");
}

#[test]
fn authentication_from_another_origin_is_refused() {
    let (webauthn, mut key, passkey, _) = registered();
    let tweak = Tweak {
        origin: Some("http://evil.example:8443".into()),
        ..Tweak::default()
    };
    let err = sign_in(&webauthn, &mut key, &passkey, &tweak).expect_err("refused");
    assert!(matches!(err, WebauthnError::InvalidRPOrigin), "{err:?}");
}

#[test]
fn authentication_with_a_lower_or_equal_counter_is_refused() {
    let (webauthn, mut key, mut passkey, _) = registered();
    for _ in 0..3 {
        let result = sign_in(&webauthn, &mut key, &passkey, &Tweak::default()).expect("accepted");
        assert_eq!(passkey.update_credential(&result), Some(true));
    }
    assert_eq!(key.counter, 3);
    for counter in [3, 2] {
        let tweak = Tweak {
            counter: Some(counter),
            ..Tweak::default()
        };
        let err = sign_in(&webauthn, &mut key, &passkey, &tweak).expect_err("refused");
        assert!(
            matches!(err, WebauthnError::CredentialPossibleCompromise),
            "counter {counter}: {err:?}"
        );
    }
    // A tweaked counter does not move the key's own.
    assert_eq!(key.counter, 3);
    let result = sign_in(&webauthn, &mut key, &passkey, &Tweak::default()).expect("accepted");
    assert_eq!(result.counter(), 4);
}

#[test]
fn discoverable_authentication_identifies_the_user_and_credential() {
    let (webauthn, mut key, passkey, user) = registered();
    let (rcr, state) = webauthn
        .start_discoverable_authentication()
        .expect("authentication starts");
    let options = serde_json::to_value(&rcr.public_key).expect("options serialise");
    assert_eq!(options["allowCredentials"], json!([]));
    let answer: PublicKeyCredential =
        serde_json::from_value(key.assert(&options)).expect("answer deserialises");
    let (found_user, cred_id) = webauthn
        .identify_discoverable_authentication(&answer)
        .expect("identified");
    assert_eq!(found_user, user);
    assert_eq!(cred_id, passkey.cred_id().as_slice());
    assert_eq!(BASE64URL_NOPAD.encode(cred_id), key.credential_id());
    let result = webauthn
        .finish_discoverable_authentication_v2(&answer, state, &passkey)
        .expect("accepted");
    assert_eq!(result.counter(), 1);
}
