//! Temporary access codes on Edit User (SPEC 15): the service desk (Manage Users) issues
//! one for a user who lost the device, with a reason, minutes and uses; it is shown once,
//! kept as a keyed hash, audited with the reason, and the user and the security officer
//! are emailed. Revoking removes it.

use rand::rngs::OsRng;

use super::{invalid, Actor, Admin, AdminError};
use crate::domain::{
    AuditEvent, Permission, SecurityEvent, TemporaryAccess, TemporaryAccessCode,
    TemporaryAccessTerms, User,
};
use crate::mail::template::SecurityValues;
use crate::service::notify;
use crate::store::NewAuditEntry;

/// A code just issued: shown once to the administrator, never again.
#[derive(Debug)]
pub struct IssuedAccess {
    pub code: TemporaryAccessCode,
    pub access: TemporaryAccess,
}

impl Admin {
    /// The user's code as stored (live, used up or expired), if any: Edit User lists it
    /// with its time and uses left. Needs Manage Users.
    pub async fn temporary_access(
        &self,
        actor: &Actor,
        username: &str,
    ) -> Result<Option<TemporaryAccess>, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        Ok(self.ctx.store.temporary_access(user.id).await?)
    }

    /// Issues a code for `username` (replacing any earlier one): `minutes` 1..1440, `uses`
    /// 1..10 and a reason. An interface user has no second factor for it to stand in for,
    /// and is refused. Needs Manage Users.
    pub async fn issue_temporary_access(
        &self,
        actor: &Actor,
        username: &str,
        minutes: u32,
        uses: u32,
        reason: &str,
        ip: Option<&str>,
    ) -> Result<IssuedAccess, AdminError> {
        actor.require(Permission::ManageUsers)?;
        let terms = TemporaryAccessTerms::new(minutes, uses, reason)
            .map_err(|error| invalid(error.field(), error))?;
        let user = self.user_named(username).await?;
        let interface = self
            .ctx
            .store
            .role_by_id(user.role_id)
            .await?
            .is_some_and(|role| role.security.interface());
        if interface {
            return Err(invalid(
                "username",
                "an interface user has no second factor for a temporary access code to stand in for",
            ));
        }
        let code = TemporaryAccessCode::generate(&mut OsRng);
        let hash = self.ctx.store.key().temporary_access_hash(user.id, &code);
        let now = self.ctx.now();
        let entry = NewAuditEntry {
            event: AuditEvent::TemporaryAccessIssued,
            actor: Some(actor.name().to_owned()),
            subject: Some(user.username.as_str().to_owned()),
            client_ip: ip.map(str::to_owned),
            detail: format!(
                "minutes={} uses={} reason={}",
                terms.minutes(),
                terms.uses(),
                terms.reason()
            ),
        };
        let access = self
            .ctx
            .store
            .issue_temporary_access(user.id, hash, &terms, actor.name(), &entry, now)
            .await?;
        notify::security_logged(&self.ctx, &user, SecurityEvent::TemporaryAccessIssued, ip).await;
        self.tell_security_officer(actor, &user, &access).await;
        Ok(IssuedAccess { code, access })
    }

    /// Revokes the user's code and ends the sessions it opened (someone who should not
    /// have had it is signed out); `NotFound("temporary access code")` when there is none.
    /// Needs Manage Users.
    pub async fn revoke_temporary_access(
        &self,
        actor: &Actor,
        username: &str,
        ip: Option<&str>,
    ) -> Result<(), AdminError> {
        actor.require(Permission::ManageUsers)?;
        let user = self.user_named(username).await?;
        let entry = NewAuditEntry {
            event: AuditEvent::TemporaryAccessRevoked,
            actor: Some(actor.name().to_owned()),
            subject: Some(user.username.as_str().to_owned()),
            client_ip: ip.map(str::to_owned),
            detail: String::new(),
        };
        match self
            .ctx
            .store
            .revoke_temporary_access(user.id, &entry, self.ctx.now())
            .await?
        {
            Some(_ended) => Ok(()),
            None => Err(AdminError::NotFound("temporary access code")),
        }
    }

    /// The security officer's email (SPEC 15): who issued a code for whom, why, until
    /// when and for how many sign-ins; never the code. A failure to queue it is logged.
    async fn tell_security_officer(&self, actor: &Actor, user: &User, access: &TemporaryAccess) {
        let site = self.ctx.config.site_name.as_str();
        let subject = format!(
            "{site}: temporary access code issued for {}",
            user.username.as_str()
        );
        let text = format!(
            "{issuer} issued a temporary access code for {name} ({username}) on {site}.\r\n\
             \r\n\
             Reason: {reason}\r\n\
             Issued: {issued}\r\n\
             Expires: {expires}\r\n\
             Sign-ins: {uses}\r\n\
             \r\n\
             With the user's password, the code stands in for their 2-step verification \
             until it expires or is used up. Edit User on {site} shows it and can revoke it.\r\n",
            issuer = actor.name(),
            name = user.display_name.as_str(),
            username = user.username.as_str(),
            reason = access.reason,
            issued = SecurityValues::event_time_text(access.created_at),
            expires = SecurityValues::event_time_text(access.expires_at),
            uses = access.uses,
        );
        if let Err(error) = notify::security_officer(&self.ctx, &subject, &text).await {
            tracing::warn!(%error, "security officer notification not queued");
        }
    }
}
