//! `otpauth://` key URIs (`twostep::otp::KeyUri`): parsing arbitrary text never panics,
//! and whatever parses survives a round trip: `to_uri()` then `parse` gives the same
//! value, and rendering that again gives the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twostep::otp::{KeyUri, MAX_URI_LENGTH};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = KeyUri::parse(text) else {
        return;
    };
    assert!(!uri.account.is_empty(), "parsed an empty account");
    assert!(
        uri.issuer.as_deref() != Some(""),
        "parsed an empty issuer instead of none"
    );
    let rendered = uri.to_uri();
    assert!(rendered.is_ascii(), "to_uri() is not ASCII: {rendered:?}");
    // Names are bounded (`MAX_NAME_BYTES`) so that the worst rendering still fits.
    assert!(rendered.len() <= MAX_URI_LENGTH, "rendered {} bytes", rendered.len());
    match KeyUri::parse(&rendered) {
        Ok(again) => {
            assert_eq!(
                again, uri,
                "round trip changed the value; rendered {rendered:?}"
            );
            assert_eq!(again.to_uri(), rendered, "rendering is not stable");
        }
        Err(error) => panic!("to_uri() output does not parse: {error}; rendered {rendered:?}"),
    }
});
