//! What an import did, for humans and for `--json`.

use serde::Serialize;

/// The Trust Framework release a credential follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// 22.10 (Tagus): `gx:LegalParticipant`, `gx:legalRegistrationNumber`, …
    Tagus,
    /// Loire (24.x / 25.11): `gx:LegalPerson`, `gx:VatID`, …
    Loire,
    /// Neither could be told from the types.
    Unknown,
}

/// Whether a credential's proof was checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProofStatus {
    /// The signature verifies.
    Verified {
        /// JWS algorithm.
        alg: String,
        /// Which key: `header jwk`, `did:key issuer`, `trusted key <kid>`.
        key: String,
    },
    /// The signature does not verify, or the proof is malformed.
    Invalid {
        /// Why.
        reason: String,
    },
    /// There is a proof, but it cannot be checked offline.
    NotChecked {
        /// Why.
        reason: String,
    },
    /// The credential carries no proof.
    Unsigned,
}

impl ProofStatus {
    /// One line for humans: `proof verified (PS256, trusted key k)`, `proof INVALID: …`.
    pub fn describe(&self) -> String {
        match self {
            Self::Verified { alg, key } => format!("proof verified ({alg}, {key})"),
            Self::Invalid { reason } => format!("proof INVALID: {reason}"),
            Self::NotChecked { reason } => format!("proof not checked: {reason}"),
            Self::Unsigned => "no proof".to_owned(),
        }
    }
}

/// One credential found in the input.
#[derive(Clone, Debug, Serialize)]
pub struct CredentialReport {
    /// File and JSON path where it is.
    pub origin: String,
    /// `json-ld` or `vc-jwt`.
    pub format: &'static str,
    /// Its subjects' types (local names).
    pub types: Vec<String>,
    /// The release its types belong to.
    pub release: Release,
    /// SHA-256 of its original bytes (the JWT, or the file for JSON-LD), hex.
    pub sha256: String,
    /// Proof check.
    pub proof: ProofStatus,
    /// Its validity window at the instant checked.
    pub validity: crate::Validity,
}

/// A property: where it was and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// File and JSON path in the input.
    pub path: String,
    /// The self-description field it went to, the extension key, or what is wrong.
    pub detail: String,
}

/// A presentation that carries its own proof (the holder's).
#[derive(Clone, Debug, Serialize)]
pub struct PresentationReport {
    /// File and JSON path where it is.
    pub origin: String,
    /// Proof check.
    pub proof: ProofStatus,
}

/// What an import found, mapped, kept aside and refused.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Every credential read.
    pub credentials: Vec<CredentialReport>,
    /// Every presentation with a proof of its own.
    pub presentations: Vec<PresentationReport>,
    /// Properties mapped to self-description fields (`detail`: the field path).
    pub mapped: Vec<Finding>,
    /// Properties not mapped (`detail`: the extension key, or why they were not kept).
    pub kept_aside: Vec<Finding>,
    /// Invalid input (`detail`: what is wrong). Invalid values are not mapped.
    pub invalid: Vec<Finding>,
    /// Mapped, but not as the release says (another release's property name under this
    /// release's type): errors with `--strict`.
    pub warnings: Vec<Finding>,
    /// SHACL shape violations (`path`: the focus node and property path; `detail`: the
    /// constraint and the shape): errors with `--strict`.
    pub shape_violations: Vec<Finding>,
    /// Which shapes the credentials were validated against, or why they were not.
    pub shapes: Vec<String>,
    /// How property names were read: by the IRIs the credentials' JSON-LD contexts expand
    /// them to, or by local name where a context is not available offline (and which).
    pub terms: Vec<String>,
}

impl Report {
    pub(crate) fn mapped(&mut self, path: impl Into<String>, field: impl Into<String>) {
        self.mapped.push(Finding {
            path: path.into(),
            detail: field.into(),
        });
    }

    pub(crate) fn kept(&mut self, path: impl Into<String>, detail: impl Into<String>) {
        self.kept_aside.push(Finding {
            path: path.into(),
            detail: detail.into(),
        });
    }

    pub(crate) fn warning(&mut self, path: impl Into<String>, detail: impl Into<String>) {
        self.warnings.push(Finding {
            path: path.into(),
            detail: detail.into(),
        });
    }

    /// A SHACL shape violation (from `gaiamesh-shapes`).
    pub fn shape_violation(&mut self, path: impl Into<String>, detail: impl Into<String>) {
        self.shape_violations.push(Finding {
            path: path.into(),
            detail: detail.into(),
        });
    }

    pub(crate) fn invalid(&mut self, path: impl Into<String>, detail: impl Into<String>) {
        self.invalid.push(Finding {
            path: path.into(),
            detail: detail.into(),
        });
    }

    /// What strict mode refuses (`gaiax import --strict`): every credential or presentation
    /// whose proof is missing, not checked, invalid or verified only with a VC-JWT header's
    /// own key (not bound to the issuer), every credential outside its validity
    /// window, every invalid item, every warning and every shape violation — each naming
    /// where and why.
    pub fn strict_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.credentials {
            match &c.proof {
                ProofStatus::Verified { key, .. } if key == crate::jwt::SELF_ASSERTED => {
                    out.push(format!(
                        "{}: verified only with the JWT header's own key, which is not bound \
                         to the issuer; pass the issuer's key (--trust-key, --did-document)",
                        c.origin
                    ));
                }
                ProofStatus::Verified { .. } => {}
                other => out.push(format!("{}: {}", c.origin, other.describe())),
            }
        }
        for p in &self.presentations {
            if !matches!(p.proof, ProofStatus::Verified { .. }) {
                out.push(format!(
                    "{} (presentation): {}",
                    p.origin,
                    p.proof.describe()
                ));
            }
        }
        for f in self
            .invalid
            .iter()
            .chain(&self.warnings)
            .chain(&self.shape_violations)
        {
            out.push(format!("{}: {}", f.path, f.detail));
        }
        out.dedup();
        out
    }

    /// The human summary: counts, then every invalid item and every proof status.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} credential(s): {} field(s) mapped, {} kept aside, {} invalid",
            self.credentials.len(),
            self.mapped.len(),
            self.kept_aside.len(),
            self.invalid.len()
        );
        for c in &self.credentials {
            let proof = c.proof.describe();
            let _ = writeln!(
                s,
                "  {} [{}; {:?}; {}]: {proof}; {}",
                c.origin,
                c.format,
                c.release,
                c.types.join(", "),
                c.validity.describe()
            );
        }
        for p in &self.presentations {
            let _ = writeln!(s, "  {} [presentation]: {}", p.origin, p.proof.describe());
        }
        for f in &self.invalid {
            let _ = writeln!(s, "  invalid: {}: {}", f.path, f.detail);
        }
        for f in &self.warnings {
            let _ = writeln!(s, "  warning: {}: {}", f.path, f.detail);
        }
        for note in &self.terms {
            let _ = writeln!(s, "  terms: {note}");
        }
        for note in &self.shapes {
            let _ = writeln!(s, "  shapes: {note}");
        }
        for f in &self.shape_violations {
            let _ = writeln!(s, "  shape violation: {}: {}", f.path, f.detail);
        }
        s
    }
}
