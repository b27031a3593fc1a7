//! Setting up and removing 2FA devices (SPEC section 5), for the user at sign-in and for
//! an administrator on Edit User: Create, then Complete Setup with a code from the app.

use rand::rngs::OsRng;

use super::{notify, Context};
use crate::domain::{new_device_otp, Device, OtpMethod, PromptMode, Use2fa, User};
use crate::domain::{AuditEvent, SecurityEvent};
use crate::otp::{qr_svg, OtpCode, OtpSecret};
use crate::store::{NewDevice, StoreError};

/// What the set-up page shows after Create.
#[derive(Clone)]
pub struct SetupInfo {
    pub method: OtpMethod,
    /// The `otpauth://` key URI.
    pub otpauth_uri: String,
    /// The secret in base32, for typing into an app.
    pub secret_base32: String,
    /// The QR code of the key URI, as an SVG document.
    pub qr_svg: String,
    /// The issuer the app shows (the site name) and the account name (the username).
    pub issuer: String,
    pub account: String,
}

impl std::fmt::Debug for SetupInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupInfo")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("this method is not offered (system setting Use 2FA)")]
    MethodNotAllowed,
    #[error("set-up was not started, or was replaced; press Create again")]
    NoPendingDevice,
    #[error("the code does not match; enter the code your app shows now")]
    WrongCode,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Create: a new pending device with a fresh secret. A confirmed device keeps working
/// until this one is confirmed (Setup New Device).
pub async fn begin_setup(
    ctx: &Context,
    user: &User,
    use_2fa: Use2fa,
    method: OtpMethod,
    prompt_mode: PromptMode,
) -> Result<SetupInfo, SetupError> {
    let device = begin_pending(ctx, user, use_2fa, method, prompt_mode).await?;
    Ok(setup_info(ctx, user, &device))
}

/// Create, answering the new pending device itself (My account binds it to the session
/// that gave fresh proof).
pub async fn begin_pending(
    ctx: &Context,
    user: &User,
    use_2fa: Use2fa,
    method: OtpMethod,
    prompt_mode: PromptMode,
) -> Result<Device, SetupError> {
    if !use_2fa.allows(method) {
        return Err(SetupError::MethodNotAllowed);
    }
    let otp = new_device_otp(method, OtpSecret::generate(&mut OsRng));
    Ok(ctx
        .store
        .create_pending_device(user.id, &NewDevice { prompt_mode, otp }, ctx.now())
        .await?)
}

/// The set-up page of a pending device (shown again after a wrong code).
pub fn setup_info(ctx: &Context, user: &User, device: &Device) -> SetupInfo {
    let uri = device.key_uri(&ctx.config.site_name, user.username.as_str());
    let otpauth_uri = uri.to_uri();
    SetupInfo {
        method: device.method(),
        secret_base32: uri.secret.to_base32(),
        // A key URI of a 64-character username and a short issuer is far below QR capacity;
        // should it ever fail, the page still shows the key for manual entry.
        qr_svg: qr_svg(&otpauth_uri).unwrap_or_default(),
        otpauth_uri,
        issuer: ctx.config.site_name.clone(),
        account: user.username.as_str().to_owned(),
    }
}

/// Complete Setup: the code proves the app has the secret; the device becomes the one
/// used at sign-in, replacing any earlier one. Audited with `actor` (the user or an
/// administrator).
pub async fn complete_setup(
    ctx: &Context,
    user: &User,
    code: &OtpCode,
    actor: &str,
    client_ip: Option<&str>,
) -> Result<Device, SetupError> {
    let pending = ctx
        .store
        .pending_device(user.id)
        .await?
        .ok_or(SetupError::NoPendingDevice)?;
    confirm_pending(ctx, user, pending, code, actor, client_ip).await
}

/// Complete Setup of a given pending device (the one My account's session started).
pub async fn confirm_pending(
    ctx: &Context,
    user: &User,
    pending: Device,
    code: &OtpCode,
    actor: &str,
    client_ip: Option<&str>,
) -> Result<Device, SetupError> {
    let settings = ctx.store.settings().await?;
    let now = ctx.now();
    let used = pending
        .check(
            code,
            now,
            settings.hotp_window(),
            settings.totp_skew_steps(),
        )
        .ok_or(SetupError::WrongCode)?;
    if !ctx.store.confirm_device(&pending, used, now).await? {
        return Err(SetupError::WrongCode);
    }
    ctx.audit(
        AuditEvent::DeviceEnrolled,
        Some(actor),
        Some(user.username.as_str()),
        client_ip,
        format!(
            "method={} prompt_mode={}",
            pending.method().as_str(),
            pending.prompt_mode.as_str()
        ),
    )
    .await?;
    notify::security_logged(ctx, user, SecurityEvent::DeviceAdded, client_ip).await;
    Ok(pending)
}

/// Disable: removes the user's device; "2 Step Verification: Not Enabled".
pub async fn disable(
    ctx: &Context,
    user: &User,
    actor: &str,
    client_ip: Option<&str>,
) -> Result<bool, StoreError> {
    let had = ctx.store.delete_devices(user.id).await?;
    if had {
        ctx.audit(
            AuditEvent::DeviceDisabled,
            Some(actor),
            Some(user.username.as_str()),
            client_ip,
            "",
        )
        .await?;
        notify::security_logged(ctx, user, SecurityEvent::DeviceRemoved, client_ip).await;
    }
    Ok(had)
}
