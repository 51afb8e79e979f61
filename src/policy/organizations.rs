//! Organization access restrictions (the GitHub OAuth-app model): membership for private
//! resources, approved clients for organizations that restrict third-party applications, and
//! an SSO session where required. Public resources need none of that.
//!
//! Which policy applies is looked up by a canonical name (ASCII lowercase, trailing dots and
//! spaces removed), whatever `compare` says, so no spelling of a restricted organization
//! (`ACME`, `acme.`) escapes its restriction; `compare` governs membership and SSO, which
//! compare the name with the token's claims.

use crate::principal::Principal;
use crate::token::Membership;
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgPolicy {
    pub restrict_third_party_apps: bool,
    pub approved_clients: Vec<String>,
    pub require_sso: bool,
}

/// Policies by organization name, with the one for organizations not listed.
#[derive(Debug, Default, Clone)]
pub struct Organizations {
    /// Keys are canonical names ([`canonical`]).
    by_name: HashMap<String, OrgPolicy>,
    default: OrgPolicy,
    case_insensitive: bool,
}

/// Why an organization refuses a caller (each is a 403 with this `error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgDenial {
    NotAMember(String),
    Restricted(String),
    SsoRequired(String),
}

impl OrgDenial {
    pub fn error(&self) -> &'static str {
        match self {
            OrgDenial::NotAMember(_) => "not_a_member",
            OrgDenial::Restricted(_) => "organization_restricted",
            OrgDenial::SsoRequired(_) => "sso_required",
        }
    }

    pub fn description(&self) -> String {
        match self {
            OrgDenial::NotAMember(o) => {
                format!("the caller is not a member of the organization {o}")
            }
            OrgDenial::Restricted(o) => format!(
                "the organization {o} restricts third-party applications: an organization admin must approve this application"
            ),
            OrgDenial::SsoRequired(o) => {
                format!("the organization {o} requires an active single sign-on session")
            }
        }
    }
}

impl Organizations {
    /// `policies` by name; the entry `default` applies to organizations not listed.
    pub fn new(
        policies: impl IntoIterator<Item = (String, OrgPolicy)>,
        case_insensitive: bool,
    ) -> Organizations {
        let mut o = Organizations {
            case_insensitive,
            ..Organizations::default()
        };
        o.extend(policies);
        o
    }

    /// Adds or replaces policies (a later source overrides the inline configuration). Names
    /// of one batch that are the same canonical name get the stricter of their policies.
    pub fn extend(&mut self, policies: impl IntoIterator<Item = (String, OrgPolicy)>) {
        let mut batch: HashMap<String, OrgPolicy> = HashMap::new();
        for (name, policy) in policies {
            if name == "default" {
                self.default = policy;
                continue;
            }
            let merged = match batch.remove(&canonical(&name)) {
                Some(other) => stricter(other, policy),
                None => policy,
            };
            batch.insert(canonical(&name), merged);
        }
        self.by_name.extend(batch);
    }

    fn same(&self, a: &str, b: &str) -> bool {
        if self.case_insensitive {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    }

    /// Checks access to a private resource of `org` (public resources are not checked).
    /// Membership is what the issuer's API answered when it was asked (GitHub), else the
    /// principal's `orgs`.
    pub fn check_private(
        &self,
        org: &str,
        p: &Principal,
        asked: Option<Membership>,
    ) -> Result<(), OrgDenial> {
        let policy = self.by_name.get(&canonical(org)).unwrap_or(&self.default);
        let member = match asked {
            None => p.orgs().iter().any(|o| self.same(o, org)),
            Some(Membership::Member) => true,
            Some(Membership::NotMember) => false,
            // What the organization itself refused, whatever this configuration says.
            Some(Membership::AppNotApproved) => {
                return Err(OrgDenial::Restricted(org.to_string()));
            }
            Some(Membership::SsoRequired) => {
                return Err(OrgDenial::SsoRequired(org.to_string()));
            }
        };
        if !member {
            return Err(OrgDenial::NotAMember(org.to_string()));
        }
        if policy.restrict_third_party_apps {
            let client = p.client_id.as_ref().and_then(|c| c.to_str().ok());
            if !client.is_some_and(|c| policy.approved_clients.iter().any(|a| a == c)) {
                return Err(OrgDenial::Restricted(org.to_string()));
            }
        }
        if policy.require_sso && !p.sso_orgs().iter().any(|o| self.same(o, org)) {
            return Err(OrgDenial::SsoRequired(org.to_string()));
        }
        Ok(())
    }
}

/// The name a policy is found by: ASCII lowercase, without trailing dots and spaces.
fn canonical(name: &str) -> String {
    name.trim_end_matches(['.', ' ']).to_ascii_lowercase()
}

/// The policy that refuses whatever either of `a` and `b` refuses.
fn stricter(a: OrgPolicy, b: OrgPolicy) -> OrgPolicy {
    let approved_clients = match (a.restrict_third_party_apps, b.restrict_third_party_apps) {
        (true, true) => a
            .approved_clients
            .into_iter()
            .filter(|c| b.approved_clients.contains(c))
            .collect(),
        (true, false) => a.approved_clients,
        (false, _) => b.approved_clients,
    };
    OrgPolicy {
        restrict_third_party_apps: a.restrict_third_party_apps || b.restrict_third_party_apps,
        approved_clients,
        require_sso: a.require_sso || b.require_sso,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Extras;
    use http::HeaderValue;
    use std::sync::Arc;

    fn caller(client: &str, orgs: &[&str], sso: &[&str]) -> Principal {
        Principal {
            client_id: Some(Arc::new(HeaderValue::from_str(client).unwrap())),
            extras: Some(Box::new(Extras {
                orgs: orgs.iter().map(|o| (*o).into()).collect(),
                sso_orgs: sso.iter().map(|o| (*o).into()).collect(),
                ..Extras::default()
            })),
            ..Principal::for_tests()
        }
    }

    fn policies() -> Vec<(String, OrgPolicy)> {
        vec![
            (
                "acme".to_string(),
                OrgPolicy {
                    restrict_third_party_apps: true,
                    approved_clients: vec!["ci-bot".into()],
                    require_sso: false,
                },
            ),
            (
                "Secure".to_string(),
                OrgPolicy {
                    restrict_third_party_apps: false,
                    approved_clients: vec![],
                    require_sso: true,
                },
            ),
        ]
    }

    fn github() -> Organizations {
        Organizations::new(policies(), false)
    }

    #[test]
    fn a_membership_asked_of_the_issuer_replaces_the_claims() {
        let no_claims = caller("any-app", &[], &[]);
        let o = github();
        assert_eq!(
            o.check_private("widgets", &no_claims, Some(Membership::Member)),
            Ok(())
        );
        let claims_say_member = caller("any-app", &["widgets"], &[]);
        assert_eq!(
            o.check_private("widgets", &claims_say_member, Some(Membership::NotMember)),
            Err(OrgDenial::NotAMember("widgets".into()))
        );
        // The organization's own refusals, whatever the configured policy says.
        assert_eq!(
            o.check_private("widgets", &no_claims, Some(Membership::AppNotApproved)),
            Err(OrgDenial::Restricted("widgets".into()))
        );
        assert_eq!(
            o.check_private("widgets", &no_claims, Some(Membership::SsoRequired)),
            Err(OrgDenial::SsoRequired("widgets".into()))
        );
    }

    #[test]
    fn members_reach_private_resources_of_unrestricted_organizations() {
        assert_eq!(
            github().check_private("widgets", &caller("any-app", &["widgets"], &[]), None),
            Ok(())
        );
    }

    #[test]
    fn non_members_are_refused_with_the_organization_named() {
        let e = github()
            .check_private("widgets", &caller("app", &["acme"], &[]), None)
            .unwrap_err();
        assert_eq!(e, OrgDenial::NotAMember("widgets".into()));
        assert!(e.description().contains("widgets"));
    }

    #[test]
    fn a_restricting_organization_admits_only_approved_clients() {
        let o = github();
        assert_eq!(
            o.check_private("acme", &caller("ci-bot", &["acme"], &[]), None),
            Ok(())
        );
        let e = o
            .check_private("acme", &caller("random-app", &["acme"], &[]), None)
            .unwrap_err();
        assert_eq!(e.error(), "organization_restricted");
        assert!(
            e.description()
                .contains("an organization admin must approve")
        );
    }

    #[test]
    fn sso_is_required_where_configured() {
        let o = github();
        assert_eq!(
            o.check_private("Secure", &caller("a", &["Secure"], &["Secure"]), None),
            Ok(())
        );
        assert_eq!(
            o.check_private("Secure", &caller("a", &["Secure"], &[]), None)
                .unwrap_err()
                .error(),
            "sso_required"
        );
    }

    #[test]
    fn membership_is_compared_exactly() {
        assert!(
            github()
                .check_private("Widgets", &caller("a", &["widgets"], &[]), None)
                .is_err()
        );
        assert_eq!(
            github().check_private("acme", &caller("ci-bot", &["Acme"], &[]), None),
            Err(OrgDenial::NotAMember("acme".into()))
        );
    }

    #[test]
    fn no_spelling_of_a_restricted_organization_escapes_its_policy() {
        let o = github();
        for name in ["ACME", "Acme", "acme.", "acme ", "acme.."] {
            assert_eq!(
                o.check_private(name, &caller("random-app", &[name], &[]), None),
                Err(OrgDenial::Restricted(name.into())),
                "{name:?}"
            );
        }
        // `secure` is the SSO-requiring `Secure` too, even under exact comparison.
        assert_eq!(
            o.check_private("secure", &caller("a", &["secure"], &[]), None)
                .map_err(|e| e.error()),
            Err("sso_required")
        );
    }

    #[test]
    fn names_that_are_one_organization_get_the_stricter_policy() {
        let o = Organizations::new(
            [
                (
                    "Acme".to_string(),
                    OrgPolicy {
                        restrict_third_party_apps: true,
                        approved_clients: vec!["a".into(), "b".into()],
                        require_sso: false,
                    },
                ),
                (
                    "acme".to_string(),
                    OrgPolicy {
                        restrict_third_party_apps: true,
                        approved_clients: vec!["b".into()],
                        require_sso: true,
                    },
                ),
            ],
            false,
        );
        assert_eq!(
            o.check_private("acme", &caller("a", &["acme"], &["acme"]), None)
                .unwrap_err()
                .error(),
            "organization_restricted"
        );
        assert_eq!(
            o.check_private("acme", &caller("b", &["acme"], &[]), None)
                .unwrap_err()
                .error(),
            "sso_required"
        );
    }

    #[test]
    fn case_insensitive_comparison_applies_to_membership_policy_and_sso() {
        let o = Organizations::new(policies(), true);
        assert_eq!(
            o.check_private("ACME", &caller("ci-bot", &["Acme"], &[]), None),
            Ok(())
        );
        assert_eq!(
            o.check_private("acme", &caller("other", &["ACME"], &[]), None)
                .unwrap_err()
                .error(),
            "organization_restricted"
        );
        assert_eq!(
            o.check_private("secure", &caller("a", &["SECURE"], &[]), None)
                .unwrap_err()
                .error(),
            "sso_required"
        );
        assert_eq!(
            o.check_private("secure", &caller("a", &["SECURE"], &["Secure"]), None),
            Ok(())
        );
    }

    #[test]
    fn a_later_source_replaces_policies_and_the_default() {
        let mut o = github();
        o.extend([
            ("acme".to_string(), OrgPolicy::default()),
            (
                "default".to_string(),
                OrgPolicy {
                    restrict_third_party_apps: true,
                    ..OrgPolicy::default()
                },
            ),
        ]);
        assert_eq!(
            o.check_private("acme", &caller("random-app", &["acme"], &[]), None),
            Ok(())
        );
        assert_eq!(
            o.check_private("widgets", &caller("random-app", &["widgets"], &[]), None)
                .unwrap_err()
                .error(),
            "organization_restricted"
        );
    }
}
