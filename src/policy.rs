//! The sign-in decision of SPEC section 3: what happens after a correct password.
//!
//! One pure function, [`decide`], whose `match` is SPEC's table row by row. The sign-in
//! service gathers the facts (role, confirmed device, in network) and follows the steps.

use crate::domain::{PromptMode, Require2fa, RoleSecurity};

/// What the decision reads, gathered after the password was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInFacts {
    /// The user's role (interface roles are already known not to require 2FA or OTP).
    pub role: RoleSecurity,
    /// The prompt mode of the user's confirmed device; `None` without one. A pending
    /// (unconfirmed) device is never passed here.
    pub device: Option<PromptMode>,
    /// Bypass is enabled and the client IP matches a rule with Bypass 2FA
    /// ([`crate::domain::in_network`]).
    pub in_network: bool,
}

/// One step between the password and a signed-in session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// A code emailed by the system (OTP Required).
    EmailOtp,
    /// A code from the user's confirmed device.
    DeviceOtp,
    /// Set up a device; `required: false` offers "Set up later".
    Enroll { required: bool },
}

impl From<Step> for crate::domain::PendingStep {
    fn from(step: Step) -> Self {
        match step {
            Step::EmailOtp => Self::EmailOtp,
            Step::DeviceOtp => Self::DeviceOtp,
            Step::Enroll { required } => Self::Enroll { required },
        }
    }
}

/// The outcome: the SPEC row that applied and the steps it asks for, in order.
/// No steps means Allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The row of SPEC section 3's table, 1 to 13.
    pub row: u8,
    pub steps: &'static [Step],
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        self.steps.is_empty()
    }
}

const ALLOW: &[Step] = &[];
const DEVICE_OTP: &[Step] = &[Step::DeviceOtp];
const EMAIL_OTP: &[Step] = &[Step::EmailOtp];
const ENROLL_OPTIONAL: &[Step] = &[Step::Enroll { required: false }];
const ENROLL_REQUIRED: &[Step] = &[Step::Enroll { required: true }];
const EMAIL_OTP_THEN_ENROLL_OPTIONAL: &[Step] = &[Step::EmailOtp, Step::Enroll { required: false }];
const EMAIL_OTP_THEN_ENROLL_REQUIRED: &[Step] = &[Step::EmailOtp, Step::Enroll { required: true }];

/// SPEC section 3, row for row. Only one OTP is ever asked; a confirmed device replaces
/// the emailed OTP for good; being in network skips an OTP prompt, never enrollment.
#[rustfmt::skip]
pub fn decide(facts: SignInFacts) -> Decision {
    use PromptMode::{EveryLogin, WhenAppropriate};
    use Require2fa::{Encourage, Force, No};

    let role = facts.role;
    let (row, steps) = match (facts.device, role.require_2fa(), role.otp_required(), facts.in_network) {
        //  device                role        otp_required  in network
        _ if role.interface()                            => (1, ALLOW),
        (Some(WhenAppropriate), _,         _,     true)  => (2, ALLOW),
        (Some(WhenAppropriate), _,         _,     false) => (3, DEVICE_OTP),
        (Some(EveryLogin),      _,         _,     _)     => (4, DEVICE_OTP),
        (None,                  No,        false, _)     => (5, ALLOW),
        (None,                  No,        true,  false) => (6, EMAIL_OTP),
        (None,                  No,        true,  true)  => (7, ALLOW),
        (None,                  Encourage, false, _)     => (8, ENROLL_OPTIONAL),
        (None,                  Encourage, true,  false) => (9, EMAIL_OTP_THEN_ENROLL_OPTIONAL),
        (None,                  Encourage, true,  true)  => (10, ENROLL_OPTIONAL),
        (None,                  Force,     false, _)     => (11, ENROLL_REQUIRED),
        (None,                  Force,     true,  false) => (12, EMAIL_OTP_THEN_ENROLL_REQUIRED),
        (None,                  Force,     true,  true)  => (13, ENROLL_REQUIRED),
    };
    Decision { row, steps }
}

/// SPEC 13: an application that requires a second factor (`require_2fa: true`) makes its
/// users do an OTP step even where [`decide`] asks for none. `steps` are the decision's;
/// where they hold an OTP or a required enrollment (whose first code is one), they stand.
/// Otherwise the confirmed device's code is asked, else an emailed code, else a device
/// must be set up (an optional enrollment becomes required).
pub fn demand_second_factor(steps: &[Step], has_device: bool, has_email: bool) -> Vec<Step> {
    let proves = |step: &Step| {
        matches!(
            step,
            Step::EmailOtp | Step::DeviceOtp | Step::Enroll { required: true }
        )
    };
    if steps.iter().any(proves) {
        return steps.to_vec();
    }
    let rest = steps
        .iter()
        .copied()
        .filter(|step| !matches!(step, Step::Enroll { .. }));
    match (has_device, has_email) {
        (true, _) => std::iter::once(Step::DeviceOtp).chain(rest).collect(),
        (false, true) => std::iter::once(Step::EmailOtp)
            .chain(steps.iter().copied())
            .collect(),
        (false, false) => rest.chain([Step::Enroll { required: true }]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PromptMode::{EveryLogin, WhenAppropriate};
    use Require2fa::{Encourage, Force, No};

    fn facts(
        device: Option<PromptMode>,
        require: Require2fa,
        otp: bool,
        in_network: bool,
    ) -> SignInFacts {
        SignInFacts {
            role: RoleSecurity::new(require, otp, false).unwrap(),
            device,
            in_network,
        }
    }

    fn interface_facts(device: Option<PromptMode>, in_network: bool) -> SignInFacts {
        SignInFacts {
            role: RoleSecurity::new(No, false, true).unwrap(),
            device,
            in_network,
        }
    }

    const DEVICES: [Option<PromptMode>; 3] = [None, Some(EveryLogin), Some(WhenAppropriate)];
    const REQUIRES: [Require2fa; 3] = [No, Encourage, Force];

    #[test]
    fn row_1_interface_role_is_allowed_with_any_device_anywhere() {
        for device in DEVICES {
            for in_network in [false, true] {
                let decision = decide(interface_facts(device, in_network));
                assert_eq!(decision, Decision { row: 1, steps: &[] });
                assert!(decision.is_allow());
            }
        }
    }

    #[test]
    fn row_2_when_appropriate_device_in_network_is_allowed_whatever_the_role() {
        for require in REQUIRES {
            for otp in [false, true] {
                let decision = decide(facts(Some(WhenAppropriate), require, otp, true));
                assert_eq!(
                    decision,
                    Decision { row: 2, steps: &[] },
                    "{require:?} otp={otp}"
                );
            }
        }
    }

    #[test]
    fn row_3_when_appropriate_device_outside_the_network_asks_the_device_code() {
        for require in REQUIRES {
            for otp in [false, true] {
                let decision = decide(facts(Some(WhenAppropriate), require, otp, false));
                assert_eq!(
                    decision,
                    Decision {
                        row: 3,
                        steps: &[Step::DeviceOtp]
                    }
                );
            }
        }
    }

    #[test]
    fn row_4_every_login_device_asks_the_device_code_even_in_network() {
        for require in REQUIRES {
            for otp in [false, true] {
                for in_network in [false, true] {
                    let decision = decide(facts(Some(EveryLogin), require, otp, in_network));
                    assert_eq!(
                        decision,
                        Decision {
                            row: 4,
                            steps: &[Step::DeviceOtp]
                        }
                    );
                }
            }
        }
    }

    #[test]
    fn row_5_no_device_role_no_without_otp_is_allowed() {
        for in_network in [false, true] {
            assert_eq!(
                decide(facts(None, No, false, in_network)),
                Decision { row: 5, steps: &[] }
            );
        }
    }

    #[test]
    fn row_6_no_device_role_no_with_otp_outside_the_network_asks_an_emailed_code() {
        assert_eq!(
            decide(facts(None, No, true, false)),
            Decision {
                row: 6,
                steps: &[Step::EmailOtp]
            }
        );
    }

    #[test]
    fn row_7_no_device_role_no_with_otp_in_network_is_allowed() {
        assert_eq!(
            decide(facts(None, No, true, true)),
            Decision { row: 7, steps: &[] }
        );
    }

    #[test]
    fn row_8_no_device_encourage_without_otp_offers_optional_enrollment() {
        for in_network in [false, true] {
            assert_eq!(
                decide(facts(None, Encourage, false, in_network)),
                Decision {
                    row: 8,
                    steps: &[Step::Enroll { required: false }]
                }
            );
        }
    }

    #[test]
    fn row_9_no_device_encourage_with_otp_outside_asks_email_then_optional_enrollment() {
        assert_eq!(
            decide(facts(None, Encourage, true, false)),
            Decision {
                row: 9,
                steps: &[Step::EmailOtp, Step::Enroll { required: false }]
            }
        );
    }

    #[test]
    fn row_10_no_device_encourage_with_otp_in_network_offers_optional_enrollment_only() {
        assert_eq!(
            decide(facts(None, Encourage, true, true)),
            Decision {
                row: 10,
                steps: &[Step::Enroll { required: false }]
            }
        );
    }

    #[test]
    fn row_11_no_device_force_without_otp_requires_enrollment_even_in_network() {
        for in_network in [false, true] {
            assert_eq!(
                decide(facts(None, Force, false, in_network)),
                Decision {
                    row: 11,
                    steps: &[Step::Enroll { required: true }]
                }
            );
        }
    }

    #[test]
    fn row_12_no_device_force_with_otp_outside_asks_email_then_required_enrollment() {
        assert_eq!(
            decide(facts(None, Force, true, false)),
            Decision {
                row: 12,
                steps: &[Step::EmailOtp, Step::Enroll { required: true }]
            }
        );
    }

    #[test]
    fn row_13_no_device_force_with_otp_in_network_requires_enrollment_only() {
        assert_eq!(
            decide(facts(None, Force, true, true)),
            Decision {
                row: 13,
                steps: &[Step::Enroll { required: true }]
            }
        );
    }

    #[test]
    fn an_interface_role_cannot_be_built_to_require_2fa_or_otp() {
        assert!(RoleSecurity::new(Force, false, true).is_err());
        assert!(RoleSecurity::new(Encourage, false, true).is_err());
        assert!(RoleSecurity::new(No, true, true).is_err());
    }

    #[rustfmt::skip]
    /// SPEC section 3 transcribed as data (`None` = "any"), checked against every input.
    /// Exactly one row matches each input, and it is the row `decide` reports.
    #[test]
    fn every_input_matches_exactly_one_spec_row() {
        #[derive(Clone, Copy)]
        enum Dev {
            Any,
            Confirmed(PromptMode),
            Absent,
        }
        struct Row {
            device: Dev,
            interface: bool,
            require: Option<Require2fa>,
            otp: Option<bool>,
            in_network: Option<bool>,
            steps: &'static [Step],
        }
        let table: [Row; 13] = [
            Row { device: Dev::Any, interface: true, require: None, otp: None, in_network: None, steps: &[] },
            Row { device: Dev::Confirmed(WhenAppropriate), interface: false, require: None, otp: None, in_network: Some(true), steps: &[] },
            Row { device: Dev::Confirmed(WhenAppropriate), interface: false, require: None, otp: None, in_network: Some(false), steps: &[Step::DeviceOtp] },
            Row { device: Dev::Confirmed(EveryLogin), interface: false, require: None, otp: None, in_network: None, steps: &[Step::DeviceOtp] },
            Row { device: Dev::Absent, interface: false, require: Some(No), otp: Some(false), in_network: None, steps: &[] },
            Row { device: Dev::Absent, interface: false, require: Some(No), otp: Some(true), in_network: Some(false), steps: &[Step::EmailOtp] },
            Row { device: Dev::Absent, interface: false, require: Some(No), otp: Some(true), in_network: Some(true), steps: &[] },
            Row { device: Dev::Absent, interface: false, require: Some(Encourage), otp: Some(false), in_network: None, steps: &[Step::Enroll { required: false }] },
            Row { device: Dev::Absent, interface: false, require: Some(Encourage), otp: Some(true), in_network: Some(false), steps: &[Step::EmailOtp, Step::Enroll { required: false }] },
            Row { device: Dev::Absent, interface: false, require: Some(Encourage), otp: Some(true), in_network: Some(true), steps: &[Step::Enroll { required: false }] },
            Row { device: Dev::Absent, interface: false, require: Some(Force), otp: Some(false), in_network: None, steps: &[Step::Enroll { required: true }] },
            Row { device: Dev::Absent, interface: false, require: Some(Force), otp: Some(true), in_network: Some(false), steps: &[Step::EmailOtp, Step::Enroll { required: true }] },
            Row { device: Dev::Absent, interface: false, require: Some(Force), otp: Some(true), in_network: Some(true), steps: &[Step::Enroll { required: true }] },
        ];
        let mut inputs = 0;
        for interface in [false, true] {
            for require in REQUIRES {
                for otp in [false, true] {
                    let Ok(role) = RoleSecurity::new(require, otp, interface) else { continue };
                    for device in DEVICES {
                        for in_network in [false, true] {
                            inputs += 1;
                            let matching: Vec<usize> = table
                                .iter()
                                .enumerate()
                                .filter(|(_, row)| {
                                    let device_ok = match row.device {
                                        Dev::Any => true,
                                        Dev::Confirmed(mode) => device == Some(mode),
                                        Dev::Absent => device.is_none(),
                                    };
                                    device_ok
                                        && row.interface == interface
                                        && row.require.map_or(true, |r| r == require)
                                        && row.otp.map_or(true, |o| o == otp)
                                        && row.in_network.map_or(true, |n| n == in_network)
                                })
                                .map(|(index, _)| index + 1)
                                .collect();
                            assert_eq!(matching.len(), 1, "{interface} {require:?} {otp} {device:?} {in_network}: {matching:?}");
                            let decision = decide(SignInFacts { role, device, in_network });
                            assert_eq!(usize::from(decision.row), matching[0]);
                            assert_eq!(decision.steps, table[matching[0] - 1].steps);
                            let otps = decision.steps.iter().filter(|s| matches!(s, Step::EmailOtp | Step::DeviceOtp)).count();
                            assert!(otps <= 1, "only one OTP is ever asked");
                        }
                    }
                }
            }
        }
        // (3 Require 2FA x 2 OTP Required) person roles + 1 interface role, each x 3 devices x 2.
        assert_eq!(inputs, 42);
    }

    /// SPEC 13: every decision, demanded a second factor, asks for exactly one OTP or a
    /// required enrollment; decisions that already ask for one are unchanged.
    #[test]
    fn an_application_requiring_a_second_factor_adds_one_otp_step_where_none_is_asked() {
        for device in DEVICES {
            for require in REQUIRES {
                for otp in [false, true] {
                    for in_network in [false, true] {
                        let decision = decide(facts(device, require, otp, in_network));
                        for has_email in [false, true] {
                            let steps =
                                demand_second_factor(decision.steps, device.is_some(), has_email);
                            let codes = steps
                                .iter()
                                .filter(|s| matches!(s, Step::EmailOtp | Step::DeviceOtp))
                                .count();
                            let enroll_required = steps.contains(&Step::Enroll { required: true });
                            assert!(codes == 1 || enroll_required, "{steps:?}");
                            assert!(codes <= 1, "never more than one OTP: {steps:?}");
                            if !decision.is_allow()
                                && decision
                                    .steps
                                    .iter()
                                    .any(|s| !matches!(s, Step::Enroll { required: false }))
                            {
                                assert_eq!(steps, decision.steps, "unchanged");
                            }
                        }
                    }
                }
            }
        }
        // Role No, in network, with a device: the device's code.
        assert_eq!(demand_second_factor(&[], true, true), vec![Step::DeviceOtp]);
        // No device but an email: an emailed code, then the optional enrollment as before.
        assert_eq!(
            demand_second_factor(ENROLL_OPTIONAL, false, true),
            vec![Step::EmailOtp, Step::Enroll { required: false }]
        );
        // Neither: a device must be set up.
        assert_eq!(
            demand_second_factor(ENROLL_OPTIONAL, false, false),
            vec![Step::Enroll { required: true }]
        );
        assert_eq!(
            demand_second_factor(&[], false, false),
            vec![Step::Enroll { required: true }]
        );
    }
}
