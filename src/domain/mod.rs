//! Plain domain types: every SPEC noun, parsed once and valid from then on.
//!
//! No I/O here. Storage rows and wire bodies are separate types that convert to and from
//! these.

pub mod device;
pub mod ip;
pub mod role;

pub use device::{OtpMethod, PromptMode, Use2fa};
pub use ip::{in_network, IpNetwork, IpNetworkError, IpRule};
pub use role::{Permission, Require2fa, RoleSecurity, RoleSecurityError};
