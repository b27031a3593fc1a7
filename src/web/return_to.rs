//! Where a browser may be sent back to after signing in (forward-auth): an http(s) URL on
//! the public URL's host or under an allowed domain, never anywhere else, so that twostep
//! is not an open redirect.
//!
//! URLs are parsed with the WHATWG rules browsers use (the `url` crate), and the URL that
//! is redirected to is the parsed one, re-serialized: what was checked is what the browser
//! follows (`https://evil.example\@hospital.org` is host `evil.example` to both).

use url::Url;

use crate::domain::host_of;
pub use crate::domain::DomainName;

/// The longest return URL accepted (longer ones are dropped, not truncated).
const MAX_URL_BYTES: usize = 2048;

/// A URL that passed [`ReturnPolicy::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnUrl {
    url: String,
    host: String,
}

impl ReturnUrl {
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host, for telling the user where they are going.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Which URLs sign-in may return to.
#[derive(Clone, Debug, Default)]
pub struct ReturnPolicy {
    /// The public URL's host (exactly) and the allowed domains (with their subdomains).
    public_host: Option<String>,
    domains: Vec<DomainName>,
    /// The public URL is https: return only to https.
    https_only: bool,
}

impl ReturnPolicy {
    pub fn new(public_url: Option<&str>, domains: Vec<DomainName>) -> Self {
        Self {
            public_host: public_url.and_then(host_of),
            domains,
            https_only: public_url.is_some_and(|url| url.starts_with("https://")),
        }
    }

    /// The URL to return to, or `None` when `raw` is not one twostep may redirect to.
    pub fn check(&self, raw: &str) -> Option<ReturnUrl> {
        // The URL parser drops tabs and newlines and trims spaces; a URL that needs that
        // is not one a proxy sent in good faith.
        if raw.is_empty()
            || raw.len() > MAX_URL_BYTES
            || raw.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return None;
        }
        let url = Url::parse(raw).ok()?;
        match url.scheme() {
            "https" => {}
            "http" if !self.https_only => {}
            _ => return None,
        }
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        let allowed = self.public_host.as_deref() == Some(host.as_str())
            || (matches!(url.host(), Some(url::Host::Domain(_)))
                && self.domains.iter().any(|domain| domain.covers(&host)));
        allowed.then(|| ReturnUrl {
            url: url.to_string(),
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ReturnPolicy {
        ReturnPolicy::new(
            Some("https://signin.hospital.example"),
            vec![DomainName::parse("hospital.example").unwrap()],
        )
    }

    #[test]
    fn urls_on_allowed_domains_are_returned_to_as_parsed() {
        let p = policy();
        for ok in [
            "https://hospital.example/",
            "https://ehr.hospital.example/patients?id=4#top",
            "https://EHR.Hospital.Example:8443/a/b",
            "https://signin.hospital.example/",
        ] {
            assert!(p.check(ok).is_some(), "{ok} should be allowed");
        }
        assert_eq!(
            p.check("https://EHR.Hospital.Example/x").unwrap().as_str(),
            "https://ehr.hospital.example/x"
        );
    }

    #[test]
    fn every_other_destination_is_refused() {
        let p = policy();
        for bad in [
            "https://evil.example/",
            "https://evilhospital.example/",
            "https://hospital.example.evil.example/",
            "https://evil.example\\@hospital.example/",
            "https://evil.example#.hospital.example",
            "https://evil.example?.hospital.example",
            "https://user@ehr.hospital.example/",
            "https://user:pw@ehr.hospital.example/",
            "//evil.example/",
            "/relative/path",
            "javascript:alert(1)//hospital.example",
            "data:text/html,hi",
            "ftp://ehr.hospital.example/",
            "http://ehr.hospital.example/",
            "https://ehr.hospital.example/\n",
            "https://ehr.hospital\t.example/",
            " https://ehr.hospital.example/",
            "https://127.0.0.1/",
            "",
        ] {
            assert!(p.check(bad).is_none(), "{bad:?} must be refused");
        }
        let long = format!("https://ehr.hospital.example/{}", "a".repeat(MAX_URL_BYTES));
        assert!(p.check(&long).is_none());
    }

    #[test]
    fn plain_http_is_allowed_only_when_twostep_itself_is_plain_http() {
        let p = ReturnPolicy::new(
            Some("http://signin.hospital.test:8080"),
            vec![DomainName::parse("hospital.test").unwrap()],
        );
        assert!(p.check("http://app.hospital.test:9000/x").is_some());
        assert!(p.check("http://signin.hospital.test:8080/").is_some());
    }

    #[test]
    fn without_domains_only_the_public_host_is_allowed() {
        let p = ReturnPolicy::new(Some("https://signin.hospital.example"), vec![]);
        assert!(p.check("https://signin.hospital.example/admin").is_some());
        assert!(p.check("https://ehr.hospital.example/").is_none());
        let none = ReturnPolicy::new(None, vec![]);
        assert!(none.check("https://signin.hospital.example/").is_none());
    }
}
