//! Changes that ask for confirmation first (SPEC section 11): an IP rule broader than /16
//! or /48. The rule of what is broad is [`IpNetwork::is_broad`]; here it is enforced for
//! the console and the JSON API, which both call [`Admin::add_ip_rule_confirmed`].

use super::{invalid, Actor, Admin, AdminError};
use crate::domain::{IpNetwork, Permission};
use crate::store::StoredIpRule;

impl Admin {
    /// "Add Acceptable IP Rule", refusing a broad network unless `confirm_broad`
    /// ([`AdminError::BroadNetwork`]); everything else as [`Admin::add_ip_rule`].
    pub async fn add_ip_rule_confirmed(
        &self,
        actor: &Actor,
        network: &str,
        bypass_2fa: bool,
        note: &str,
        confirm_broad: bool,
        ip: Option<&str>,
    ) -> Result<StoredIpRule, AdminError> {
        actor.require(Permission::ManageIpSettings)?;
        let parsed = IpNetwork::parse(network).map_err(|e| invalid("network", e))?;
        // A bad note is reported before asking to confirm the network.
        ip_rule_note(note)?;
        if parsed.is_broad() && !confirm_broad {
            return Err(AdminError::BroadNetwork(parsed));
        }
        self.add_ip_rule(actor, network, bypass_2fa, note, ip).await
    }
}

impl Admin {
    /// Whether Enable Bypass 2FA OTP is on, for IP Settings (Manage IP Settings): the
    /// rules' "Bypass 2FA" applies only while it is.
    pub async fn bypass_enabled(&self, actor: &Actor) -> Result<bool, AdminError> {
        actor.require(Permission::ManageIpSettings)?;
        Ok(self.ctx.store.settings().await?.bypass_enabled())
    }
}

/// An IP rule's note: at most 200 characters, no control characters.
pub(super) fn ip_rule_note(note: &str) -> Result<&str, AdminError> {
    let note = note.trim();
    if note.chars().count() > 200 || note.chars().any(char::is_control) {
        return Err(invalid(
            "note",
            "a note has at most 200 characters and no control characters",
        ));
    }
    Ok(note)
}
