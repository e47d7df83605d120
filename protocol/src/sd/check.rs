//! Checking a signed self-description against a federation: membership, revocation,
//! jurisdictions, and which certifications are attested.

use serde::Serialize;

use super::{Canonical, SdError, SignedSelfDescription};
use crate::{
    federation::{FederationTrust, VerifiedCache},
    identity::PublicKey,
    time::UnixMillis,
};

/// What a federation-aware check found out about an accepted self-description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SdReport {
    /// Membership of the subject.
    pub membership: MembershipStatus,
    /// Every certification claim, in document order.
    pub certifications: Vec<CertificationStatus>,
}

/// Membership of the subject as far as its embedded credential shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MembershipStatus {
    /// A valid credential binds the subject.
    Member {
        /// The admitted participant.
        legal_name: String,
        /// Its roles.
        roles: Vec<String>,
        /// When the credential expires.
        expires_at: UnixMillis,
    },
    /// No credential, in a federation that does not require one.
    NotPresented,
    /// A credential that does not count, in a federation that does not require one.
    Invalid {
        /// Why.
        reason: String,
    },
}

/// One certification claim and whether a certifier backs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificationStatus {
    /// The service claiming it.
    pub service: String,
    /// Scheme.
    pub scheme: String,
    /// Scope as claimed.
    pub scope: Option<String>,
    /// The certifier whose attestation backs it; `None` means self-declared.
    pub attested_by: Option<PublicKey>,
    /// Until when the attestation is valid.
    pub attested_until: Option<UnixMillis>,
}

impl CertificationStatus {
    /// Whether a certifier of the federation backs the claim.
    pub fn is_attested(&self) -> bool {
        self.attested_by.is_some()
    }
}

impl SignedSelfDescription {
    /// Full acceptance check in `trust`'s federation at time `now`: everything
    /// [`SignedSelfDescription::verify`] checks, plus federation id, revocation, membership
    /// (required or not), participant identity and jurisdictions. Returns the membership and
    /// certification status on success.
    pub fn check(&self, trust: &FederationTrust, now: UnixMillis) -> Result<SdReport, SdError> {
        self.check_cached(trust, now, None)
    }

    /// [`Self::check`] with a cache of credentials and attestations already verified, so a
    /// re-published record costs one signature check.
    pub fn check_cached(
        &self,
        trust: &FederationTrust,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Result<SdReport, SdError> {
        self.verify(now)?;
        self.check_in_federation(trust, now, cache)
    }

    /// [`Self::check_cached`] with the record's canonical encoding already made.
    pub fn check_canonical(
        &self,
        canonical: &Canonical,
        trust: &FederationTrust,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Result<SdReport, SdError> {
        self.verify_canonical(now, canonical)?;
        self.check_in_federation(trust, now, cache)
    }

    /// What [`Self::check_cached`] checks beyond [`Self::verify`].
    fn check_in_federation(
        &self,
        trust: &FederationTrust,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Result<SdReport, SdError> {
        let sd = &self.sd;
        if sd.federation != trust.id() {
            return Err(SdError::WrongFederation {
                expected: trust.id(),
                found: sd.federation,
            });
        }
        if let Some(r) = trust.revocation(&sd.subject) {
            return Err(SdError::Revoked {
                subject: sd.subject,
                reason: r.reason.clone(),
            });
        }
        let membership = self.membership_status(trust, now, cache)?;
        self.check_jurisdictions(trust)?;
        let certifications = self.certification_status(trust, now, cache);
        Ok(SdReport {
            membership,
            certifications,
        })
    }

    fn membership_status(
        &self,
        trust: &FederationTrust,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Result<MembershipStatus, SdError> {
        let sd = &self.sd;
        let required = trust.genesis().policy.require_membership;
        let not_member = |reason: String| SdError::NotAMember {
            subject: sd.subject,
            reason,
        };
        let Some(cred) = &sd.membership else {
            return if required {
                Err(not_member("no membership credential is attached".into()))
            } else {
                Ok(MembershipStatus::NotPresented)
            };
        };
        let body = match trust.verify_credential_cached(cred, Some(&sd.subject), now, cache) {
            Ok(body) => body,
            Err(e) if required => return Err(not_member(e.to_string())),
            Err(e) => {
                return Ok(MembershipStatus::Invalid {
                    reason: e.to_string(),
                });
            }
        };
        let p = &sd.document.participant;
        if !p.registration.contains(&body.participant.registration) {
            return Err(SdError::ParticipantMismatch(format!(
                "the credential admits {} ({:?} {}), which participant.registration does not list",
                body.participant.legal_name,
                body.participant.registration.kind,
                body.participant.registration.value
            )));
        }
        Ok(MembershipStatus::Member {
            legal_name: body.participant.legal_name.clone(),
            roles: body.roles.clone(),
            expires_at: body.expires_at,
        })
    }

    fn check_jurisdictions(&self, trust: &FederationTrust) -> Result<(), SdError> {
        let g = trust.genesis();
        let doc = &self.sd.document;
        let outside = |path: String, country: &String| {
            (!g.allows_jurisdiction(country)).then(|| SdError::Jurisdiction {
                path,
                country: country.clone(),
            })
        };
        if let Some(e) = outside("node.location.country".into(), &doc.node.location.country) {
            return Err(e);
        }
        for (i, s) in doc.services.iter().enumerate() {
            for (field, list) in [
                ("data_location", &s.data_location),
                ("processing_location", &s.processing_location),
            ] {
                for (j, c) in list.iter().enumerate() {
                    if let Some(e) = outside(format!("services[{i}].{field}[{j}]"), c) {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    fn certification_status(
        &self,
        trust: &FederationTrust,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Vec<CertificationStatus> {
        let sd = &self.sd;
        let valid: Vec<_> = sd
            .attestations
            .iter()
            .filter(|a| {
                a.body.subject == sd.subject
                    && trust.verify_attestation_cached(a, now, cache).is_ok()
            })
            .collect();
        let mut out = Vec::new();
        for s in &sd.document.services {
            for c in &s.certifications {
                let backing = valid.iter().find(|a| a.covers(&c.scheme, &s.id));
                out.push(CertificationStatus {
                    service: s.id.clone(),
                    scheme: c.scheme.clone(),
                    scope: c.scope.clone(),
                    attested_by: backing.map(|a| a.certifier),
                    attested_until: backing.map(|a| a.body.valid_until),
                });
            }
        }
        out
    }
}
