//! The OpenID Connect client registry (SPEC 13, "Applications"), under Manage
//! Applications: every change audited with the client's values; a confidential client's
//! secret is made here, returned once by [`Admin::create_application`] and stored only as
//! its hash.

use rand::rngs::OsRng;

use super::{invalid, Actor, Admin, AdminError};
use crate::crypto::Token;
use crate::domain::oidc::{ClientId, ClientRegistration, RedirectUri, RegistrationError};
use crate::domain::{AuditEvent, Permission};

/// A new application, as the API body, the console form or the command line gives it.
#[derive(Clone, Debug, Default)]
pub struct ApplicationInput {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub confidential: bool,
    pub require_2fa: bool,
}

/// A change to an application; `None` keeps the current value. `confidential` may only
/// be given as it is: a client does not change type (its secret would appear or vanish).
#[derive(Clone, Debug, Default)]
pub struct ApplicationPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub confidential: Option<bool>,
    pub require_2fa: Option<bool>,
}

/// A registered application with, for a confidential client, its secret: shown once.
#[derive(Debug)]
pub struct NewApplication {
    pub client: ClientRegistration,
    pub secret: Option<Token>,
}

fn redirect_uris(field: &'static str, texts: &[String]) -> Result<Vec<RedirectUri>, AdminError> {
    texts
        .iter()
        .map(|text| RedirectUri::parse(text.trim()).map_err(|error| invalid(field, error)))
        .collect()
}

/// The domain's check, its refusal given to the field it is about.
fn checked(client: ClientRegistration) -> Result<ClientRegistration, AdminError> {
    match client.check() {
        Ok(()) => Ok(client),
        Err(error) => {
            let field = match &error {
                RegistrationError::Name => "name",
                RegistrationError::NoRedirectUri => "redirect_uris",
                RegistrationError::TooManyRedirectUris(list)
                | RegistrationError::DuplicateRedirectUri { list, .. } => list.as_str(),
            };
            Err(invalid(field, error))
        }
    }
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

/// The audit log's text of a client: every registered value, no secret.
fn client_text(client: &ClientRegistration) -> String {
    let list = |uris: &[RedirectUri]| {
        uris.iter()
            .map(RedirectUri::as_str)
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "client_id={} name={} confidential={} require_2fa={} redirect_uris=[{}] post_logout_redirect_uris=[{}]",
        client.client_id.as_str(),
        client.name,
        yes_no(client.confidential),
        yes_no(client.require_2fa),
        list(&client.redirect_uris),
        list(&client.post_logout_redirect_uris),
    )
}

impl Admin {
    /// Every registered application, by client id.
    pub async fn applications(&self, actor: &Actor) -> Result<Vec<ClientRegistration>, AdminError> {
        actor.require(Permission::ManageApplications)?;
        Ok(self.ctx.store.list_oidc_clients().await?)
    }

    /// The application of that client id (exactly).
    pub async fn application(
        &self,
        actor: &Actor,
        client_id: &str,
    ) -> Result<ClientRegistration, AdminError> {
        actor.require(Permission::ManageApplications)?;
        let client_id =
            ClientId::parse(client_id).map_err(|_| AdminError::NotFound("application"))?;
        self.ctx
            .store
            .oidc_client(&client_id)
            .await?
            .ok_or(AdminError::NotFound("application"))
    }

    /// Registers an application; a confidential one gets a new random secret (256 bits),
    /// returned here once and stored only as its hash.
    pub async fn create_application(
        &self,
        actor: &Actor,
        input: &ApplicationInput,
        ip: Option<&str>,
    ) -> Result<NewApplication, AdminError> {
        actor.require(Permission::ManageApplications)?;
        let client = checked(ClientRegistration {
            client_id: ClientId::parse(input.client_id.trim())
                .map_err(|error| invalid("client_id", error))?,
            name: input.name.trim().to_owned(),
            redirect_uris: redirect_uris("redirect_uris", &input.redirect_uris)?,
            post_logout_redirect_uris: redirect_uris(
                "post_logout_redirect_uris",
                &input.post_logout_redirect_uris,
            )?,
            confidential: input.confidential,
            require_2fa: input.require_2fa,
        })?;
        let secret = client.confidential.then(|| Token::generate(&mut OsRng));
        let hash = secret.as_ref().map(Token::hash);
        let client = self
            .ctx
            .store
            .create_oidc_client(
                &client,
                hash.as_ref().map(<[u8; 32]>::as_slice),
                self.ctx.now(),
            )
            .await?;
        self.audit(
            actor,
            AuditEvent::ApplicationCreated,
            None,
            ip,
            client_text(&client),
        )
        .await?;
        Ok(NewApplication { client, secret })
    }

    /// Changes an application's name, redirect URIs or `require_2fa`.
    pub async fn update_application(
        &self,
        actor: &Actor,
        client_id: &str,
        patch: &ApplicationPatch,
        ip: Option<&str>,
    ) -> Result<ClientRegistration, AdminError> {
        let before = self.application(actor, client_id).await?;
        if patch.confidential.is_some_and(|c| c != before.confidential) {
            return Err(invalid(
                "confidential",
                "an application cannot change between confidential and public; remove it and add it again",
            ));
        }
        let changed = checked(ClientRegistration {
            client_id: before.client_id.clone(),
            name: match &patch.name {
                Some(name) => name.trim().to_owned(),
                None => before.name.clone(),
            },
            redirect_uris: match &patch.redirect_uris {
                Some(uris) => redirect_uris("redirect_uris", uris)?,
                None => before.redirect_uris.clone(),
            },
            post_logout_redirect_uris: match &patch.post_logout_redirect_uris {
                Some(uris) => redirect_uris("post_logout_redirect_uris", uris)?,
                None => before.post_logout_redirect_uris.clone(),
            },
            confidential: before.confidential,
            require_2fa: patch.require_2fa.unwrap_or(before.require_2fa),
        })?;
        let after = self
            .ctx
            .store
            .update_oidc_client(&changed, self.ctx.now())
            .await?;
        self.audit(
            actor,
            AuditEvent::ApplicationChanged,
            None,
            ip,
            format!(
                "before: {}; after: {}",
                client_text(&before),
                client_text(&after)
            ),
        )
        .await?;
        Ok(after)
    }

    /// A new secret for a confidential application, returned here once and stored only
    /// as its hash; the old secret stops working at once. A public application has none.
    pub async fn new_application_secret(
        &self,
        actor: &Actor,
        client_id: &str,
        ip: Option<&str>,
    ) -> Result<Token, AdminError> {
        let client = self.application(actor, client_id).await?;
        if !client.confidential {
            return Err(invalid(
                "confidential",
                "a public application has no client secret (it uses PKCE)",
            ));
        }
        let secret = Token::generate(&mut OsRng);
        match self
            .ctx
            .store
            .replace_oidc_client_secret(&client.client_id, &secret.hash(), self.ctx.now())
            .await
        {
            Ok(()) => {}
            Err(crate::store::StoreError::NotFound) => {
                return Err(AdminError::NotFound("application"))
            }
            Err(other) => return Err(other.into()),
        }
        self.audit(
            actor,
            AuditEvent::ApplicationChanged,
            None,
            ip,
            format!("new client secret for {}", client.client_id.as_str()),
        )
        .await?;
        Ok(secret)
    }

    /// Removes an application: its client id no longer signs anyone in.
    pub async fn delete_application(
        &self,
        actor: &Actor,
        client_id: &str,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        let client = self.application(actor, client_id).await?;
        match self.ctx.store.delete_oidc_client(&client.client_id).await {
            Ok(()) => {}
            Err(crate::store::StoreError::NotFound) => {
                return Err(AdminError::NotFound("application"))
            }
            Err(other) => return Err(other.into()),
        }
        self.audit(
            actor,
            AuditEvent::ApplicationDeleted,
            None,
            ip,
            client_text(&client),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(redirect: &[&str], logout: &[&str]) -> ClientRegistration {
        let uris = |list: &[&str]| {
            list.iter()
                .map(|u| RedirectUri::parse(u).unwrap())
                .collect()
        };
        ClientRegistration {
            client_id: ClientId::parse("wiki").unwrap(),
            name: "Wiki".into(),
            redirect_uris: uris(redirect),
            post_logout_redirect_uris: uris(logout),
            confidential: true,
            require_2fa: false,
        }
    }

    fn field(result: Result<ClientRegistration, AdminError>) -> &'static str {
        match result {
            Err(AdminError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    /// SPEC 13: a refused registration names the field it is about, so that the API's
    /// `invalid_field` and the console point at the right list.
    #[test]
    fn a_refused_registration_names_its_field() {
        let a = "https://wiki.example.org/a";
        let b = "https://wiki.example.org/b";
        assert_eq!(field(checked(client(&[], &[]))), "redirect_uris");
        assert_eq!(field(checked(client(&[a, a], &[]))), "redirect_uris");
        assert_eq!(
            field(checked(client(&[a], &[b, b]))),
            "post_logout_redirect_uris"
        );
        let many: Vec<String> = (0..21)
            .map(|n| format!("https://wiki.example.org/{n}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(field(checked(client(&many, &[]))), "redirect_uris");
        assert_eq!(
            field(checked(client(&[a], &many))),
            "post_logout_redirect_uris"
        );
        let nameless = ClientRegistration {
            name: " ".into(),
            ..client(&[a], &[])
        };
        assert_eq!(field(checked(nameless)), "name");
        assert!(checked(client(&[a, b], &[a])).is_ok());
    }

    /// SPEC 13: the audit text has every registered value and says which client it is.
    #[test]
    fn the_audit_text_lists_the_registration() {
        let text = client_text(&client(&["https://wiki.example.org/a"], &[]));
        assert_eq!(
            text,
            "client_id=wiki name=Wiki confidential=yes require_2fa=no \
             redirect_uris=[https://wiki.example.org/a] post_logout_redirect_uris=[]"
        );
    }
}
