//! Domain names as administrators configure them (`--redirect-domain`, `--cookie-domain`),
//! and the host of a URL: what a return URL or a cookie may be scoped to.

use url::Url;

/// A DNS name as configured by an administrator (`hospital.example`): lower case, labels
/// of letters, digits and hyphens, no leading or trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainName(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a domain name (letters, digits, hyphens and dots, like hospital.example)")]
pub struct DomainNameError(String);

impl DomainName {
    pub fn parse(text: &str) -> Result<Self, DomainNameError> {
        let name = text.trim().trim_start_matches('.').to_ascii_lowercase();
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(DomainNameError(text.chars().take(80).collect()));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `host` is this name or a name under it (`app.hospital.example` under
    /// `hospital.example`; `evilhospital.example` is not).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        host == self.0
            || host
                .strip_suffix(self.0.as_str())
                .is_some_and(|prefix| prefix.ends_with('.'))
    }
}

impl std::fmt::Display for DomainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host of an `http(s)://` URL, lower case (for the public URL).
pub fn host_of(url: &str) -> Option<String> {
    Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_parsed_strictly() {
        assert_eq!(
            DomainName::parse(" .Hospital.Example ").unwrap().as_str(),
            "hospital.example"
        );
        for bad in [
            "",
            ".",
            "hospital..example",
            "-a.example",
            "a-.example",
            "a_b.example",
            "hospital.example/",
            "*.example",
            "hospital.example.",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?}");
        }
        let d = DomainName::parse("hospital.example").unwrap();
        assert!(d.covers("hospital.example"));
        assert!(d.covers("a.b.Hospital.example"));
        assert!(!d.covers("evilhospital.example"));
        assert!(!d.covers("example"));
    }
}
