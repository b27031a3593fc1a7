//! The directory client against a real OpenLDAP (SPEC section 12): finding a user with the
//! service account (RFC 4515 escaping), checking passwords by binding as the entry (an
//! empty password never binds), TLS with only the configured CA, and a server that stops
//! and comes back.

use std::time::Duration;

use tokio::time::Instant;

use twostep::directory::{BindResult, DirectoryClient, DirectoryConfig, DirectoryError};
use twostep::domain::{DirectoryAttributes, Username};

use crate::slapd::{self, Slapd, ADMINS_GROUP, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, STAFF_GROUP};

fn config_for(url: &str) -> DirectoryConfig {
    let mut config = DirectoryConfig::new(url, SERVICE_DN, SERVICE_PASSWORD, PEOPLE);
    config.connect_timeout = Duration::from_secs(2);
    config.operation_timeout = Duration::from_secs(2);
    config
}

async fn client_of(server: &Slapd) -> DirectoryClient {
    DirectoryClient::connect(config_for(&server.url()))
        .await
        .unwrap()
}

/// slapd's stats lines of a BIND as `dn` (one `method=128` line per bind request).
pub(crate) fn binds_of(server: &Slapd, dn: &str) -> usize {
    let needle = format!("BIND dn=\"{dn}\" method=128");
    server
        .log()
        .lines()
        .filter(|line| line.contains(&needle))
        .count()
}

// SPEC 12: the user is looked up with the service bind; name, email and groups are read.
#[tokio::test]
async fn finds_a_user_with_name_email_and_groups() {
    let Some(server) = Slapd::start() else { return };
    let client = client_of(&server).await;
    let jane = client
        .find_user("jane")
        .await
        .unwrap()
        .expect("jane is found");
    assert_eq!(jane.dn, slapd::dn_of("jane"));
    assert_eq!(jane.values("cn"), ["Jane Doe".to_owned()]);
    assert_eq!(jane.values("MAIL"), ["jane@example.org".to_owned()]);
    let names = DirectoryAttributes::default();
    let read = jane.entry(Username::parse("jane").unwrap(), &names);
    assert_eq!(read.display_name.as_str(), "Jane Doe");
    assert_eq!(
        read.email.map(|e| e.as_str().to_owned()).as_deref(),
        Some("jane@example.org")
    );
    let mut groups = read.groups.clone();
    groups.sort();
    assert_eq!(
        groups,
        vec![ADMINS_GROUP.to_owned(), STAFF_GROUP.to_owned()]
    );
    assert_eq!(jane.values("userAccountControl"), ["512".to_owned()]);
    assert!(!read.disabled);

    let omar = client
        .find_user("omar")
        .await
        .unwrap()
        .expect("omar is found");
    assert_eq!(omar.values("memberOf"), [STAFF_GROUP.to_owned()]);
    // The disabled entry is found, with AD's ACCOUNTDISABLE bit for the rules to read.
    let dora = client
        .find_user("dora")
        .await
        .unwrap()
        .expect("dora is found");
    assert!(
        dora.entry(Username::parse("dora").unwrap(), &names)
            .disabled
    );

    assert_eq!(client.find_user("nobody").await.unwrap(), None);
    assert_eq!(client.find_user("").await.unwrap(), None);
}

// SPEC 12: the filter escapes the username (RFC 4515): none of these finds anyone nor
// fails, and `*` does not match everyone.
#[tokio::test]
async fn filter_characters_in_a_username_find_nobody() {
    let Some(server) = Slapd::start() else { return };
    let client = client_of(&server).await;
    for username in [
        "*",
        "j*",
        "jane)(uid=*",
        "*)(|(uid=*",
        "jane\\",
        "\\2a",
        "ja(ne",
        "jane\0",
        "\0",
        "omar)",
    ] {
        assert_eq!(
            client.find_user(username).await.unwrap(),
            None,
            "{username:?} found someone"
        );
    }
    // The connection is still good afterwards.
    assert!(client.find_user("jane").await.unwrap().is_some());
}

// SPEC 12: the password is checked by binding as the entry; the raw result code comes back.
#[tokio::test]
async fn right_password_binds_and_wrong_is_code_49() {
    let Some(server) = Slapd::start() else { return };
    let client = client_of(&server).await;
    let jane = slapd::dn_of("jane");
    assert_eq!(
        client
            .check_password(&jane, &slapd::password_of("jane"))
            .await
            .unwrap(),
        BindResult::Accepted
    );
    match client
        .check_password(&jane, "not jane's password at all 9")
        .await
        .unwrap()
    {
        BindResult::Refused { code, .. } => assert_eq!(code, 49),
        other => panic!("a wrong password answered {other:?}"),
    }
    // Another user's password is not jane's.
    match client
        .check_password(&jane, &slapd::password_of("omar"))
        .await
        .unwrap()
    {
        BindResult::Refused { code, .. } => assert_eq!(code, 49),
        other => panic!("omar's password for jane answered {other:?}"),
    }
}

// SPEC 12: "An empty password is refused before any bind"; slapd's log shows no BIND for it.
#[tokio::test]
async fn an_empty_password_never_reaches_the_server() {
    let Some(server) = Slapd::start() else { return };
    let client = client_of(&server).await;
    let jane = slapd::dn_of("jane");
    assert_eq!(binds_of(&server, &jane), 0);
    assert_eq!(
        client.check_password(&jane, "").await.unwrap(),
        BindResult::EmptyPassword
    );
    // Then one real bind, so that the log is seen to record jane's binds at all.
    assert_eq!(
        client
            .check_password(&jane, &slapd::password_of("jane"))
            .await
            .unwrap(),
        BindResult::Accepted
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while binds_of(&server, &jane) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        binds_of(&server, &jane),
        1,
        "only the real bind reached slapd:\n{}",
        server.log()
    );
}

// SPEC 12: a wrong service password is a clear error at start-up.
#[tokio::test]
async fn a_wrong_service_password_fails_at_connect() {
    let Some(server) = Slapd::start() else { return };
    let mut config = config_for(&server.url());
    config.bind_password = "the wrong service passphrase 1".to_owned();
    let error = DirectoryClient::connect(config)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(error, DirectoryError::ServiceBind { code: 49, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("service account"), "{message}");
    assert!(!message.contains("wrong service passphrase"), "{message}");
}

// SPEC 12: ldaps:// with `--ldap-ca-file`: the test CA is trusted, another CA is refused.
#[tokio::test]
async fn ldaps_trusts_only_the_configured_ca() {
    let Some(server) = Slapd::start() else { return };
    let mut config = config_for(&server.ldaps_url());
    config.ca_file = Some(server.ca_file());
    let client = DirectoryClient::connect(config.clone()).await.unwrap();
    assert!(client.find_user("jane").await.unwrap().is_some());
    assert_eq!(
        client
            .check_password(&slapd::dn_of("jane"), &slapd::password_of("jane"))
            .await
            .unwrap(),
        BindResult::Accepted
    );

    config.ca_file = Some(server.wrong_ca_file());
    let error = DirectoryClient::connect(config)
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, DirectoryError::Tls(_)), "{error:?}");
}

// SPEC 12: `--ldap-starttls` on an ldap:// URL, with the test CA.
#[tokio::test]
async fn starttls_works_with_the_configured_ca() {
    let Some(server) = Slapd::start() else { return };
    let mut config = config_for(&server.url());
    config.starttls = true;
    config.ca_file = Some(server.ca_file());
    let client = DirectoryClient::connect(config.clone()).await.unwrap();
    let omar = client
        .find_user("omar")
        .await
        .unwrap()
        .expect("omar is found");
    assert_eq!(
        client
            .check_password(&omar.dn, &slapd::password_of("omar"))
            .await
            .unwrap(),
        BindResult::Accepted
    );
    // slapd saw the binds over TLS (ssf above 0).
    let log = server.log();
    assert!(
        log.lines().any(
            |line| line.contains(&format!("BIND dn=\"{}\" mech=SIMPLE", omar.dn))
                && !line.contains(" ssf=0")
        ),
        "{log}"
    );

    config.ca_file = Some(server.wrong_ca_file());
    let error = DirectoryClient::connect(config)
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, DirectoryError::Tls(_)), "{error:?}");
}

// SPEC 12: directory unreachable -> `Unavailable`, quickly; back again -> works again.
#[tokio::test]
async fn a_stopped_directory_is_unavailable_and_a_restarted_one_works() {
    let Some(mut server) = Slapd::start() else {
        return;
    };
    let client = client_of(&server).await;
    let jane = slapd::dn_of("jane");
    assert!(client.find_user("jane").await.unwrap().is_some());

    server.stop();
    let started = Instant::now();
    let error = client.find_user("jane").await.expect_err("unavailable");
    assert!(matches!(error, DirectoryError::Unavailable(_)), "{error:?}");
    let error = client
        .check_password(&jane, &slapd::password_of("jane"))
        .await
        .expect_err("unavailable");
    assert!(matches!(error, DirectoryError::Unavailable(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    server.restart();
    assert!(client.find_user("jane").await.unwrap().is_some());
    assert_eq!(
        client
            .check_password(&jane, &slapd::password_of("jane"))
            .await
            .unwrap(),
        BindResult::Accepted
    );
}

// SPEC 12: a server that accepts the connection but never answers is `Unavailable` within
// the operation timeout (2 s here), not a hung sign-in.
#[tokio::test]
async fn a_hung_directory_is_unavailable_within_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let error = DirectoryClient::connect(config_for(&format!("ldap://127.0.0.1:{port}")))
        .await
        .err()
        .expect("unavailable");
    assert!(matches!(error, DirectoryError::Unavailable(_)), "{error:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    silent.abort();
}
