//! Usage policies, ODRL-inspired: who may receive an asset (participants, roles), for what
//! (purposes), where the consumer is established (jurisdiction), when (validity window),
//! how often (maximum transfers), and whether the data may be passed on.
//!
//! ```toml
//! participants = ["vatID:DE123456789", "12D3KooW…"]  # registration kind:value or peer id; empty: any member
//! roles = ["consumer"]                 # any one of them; empty: any
//! purposes = ["research", "ai.training"] # a purpose covers its sub-purposes ("research.medical")
//! jurisdiction = ["EU", "CH"]          # the consumer's headquarters country; "EU" = the member states
//! valid_from = "2026-12-01T00:00:00Z"
//! valid_until = "2027-12-01T00:00:00Z"
//! max_transfers = 10
//! onward_transfer = false              # false: refused when the consumer says it will pass the data on
//! ```
//!
//! [`evaluate`] checks the dimensions in this order and returns the first refusal:
//! validity window, participant, role, jurisdiction, purpose, transfer count, onward
//! transfer.

use gaiamesh_protocol::{codes, time::UnixMillis};
use serde::{Deserialize, Serialize};

/// Most entries in each list of a policy.
pub const MAX_LIST: usize = 64;
/// Longest purpose, role or participant entry, bytes.
pub const MAX_ENTRY: usize = 128;

/// A usage policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Permitted participants: `kind:value` registration numbers (`vatID:DE123456789`) or
    /// peer ids. Empty: any member of the federation.
    #[serde(default)]
    pub participants: Vec<String>,
    /// The consumer must hold one of these membership roles. Empty: any.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Permitted purposes; each covers its dot-separated sub-purposes. Empty: any.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Countries (ISO 3166-1 alpha-2) or `EU` where the consumer's headquarters must be.
    /// Empty: anywhere.
    #[serde(default)]
    pub jurisdiction: Vec<String>,
    /// Not before.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub valid_from: Option<UnixMillis>,
    /// Not after.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub valid_until: Option<UnixMillis>,
    /// Most transfers of the asset to one consumer.
    #[serde(default)]
    pub max_transfers: Option<u32>,
    /// Whether the consumer may pass the data on. Default: yes.
    #[serde(default = "yes")]
    pub onward_transfer: bool,
    /// Offered for computation: which algorithms may run on it (docs/exchange.md,
    /// "Compute-to-data"). Absent: offered for transfer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<crate::compute::ComputePolicy>,
}

fn yes() -> bool {
    true
}

/// What the provider knows about the consumer, from its verified membership credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// The consumer node's peer id.
    pub peer_id: String,
    /// `kind:value`, e.g. `vatID:DE123456789`.
    pub registration: String,
    /// ISO 3166-1 alpha-2 country of its headquarters.
    pub headquarters_country: String,
    /// Its membership roles.
    pub roles: Vec<String>,
}

/// What the consumer asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The stated purpose, e.g. `research.medical`.
    pub purpose: String,
    /// Whether it intends to pass the data on.
    pub onward_transfer: bool,
    /// Transfers of this asset this consumer already had.
    pub transfers_so_far: u32,
    /// When it asks.
    pub now: UnixMillis,
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Before `valid_from`.
    #[error("the policy is valid from {from}, it is {now}")]
    NotYetValid {
        /// Start of validity.
        from: UnixMillis,
        /// The request time.
        now: UnixMillis,
    },
    /// After `valid_until`.
    #[error("the policy expired at {until}, it is {now}")]
    Expired {
        /// End of validity.
        until: UnixMillis,
        /// The request time.
        now: UnixMillis,
    },
    /// Not a permitted participant.
    #[error("participant {registration} (peer {peer_id}) is not permitted")]
    Participant {
        /// The consumer's registration.
        registration: String,
        /// The consumer's peer id.
        peer_id: String,
    },
    /// None of the required roles.
    #[error("the consumer holds none of the roles {required:?} (it has {held:?})")]
    Role {
        /// Required (any one).
        required: Vec<String>,
        /// Held.
        held: Vec<String>,
    },
    /// Outside the permitted jurisdictions.
    #[error("the consumer is established in {country}, outside {permitted:?}")]
    Jurisdiction {
        /// The consumer's country.
        country: String,
        /// Permitted.
        permitted: Vec<String>,
    },
    /// Purpose not permitted.
    #[error("purpose {purpose:?} is not among the permitted {permitted:?}")]
    Purpose {
        /// The stated purpose.
        purpose: String,
        /// Permitted.
        permitted: Vec<String>,
    },
    /// The transfer limit is used up.
    #[error("{done} of at most {max} transfers already made")]
    TransferLimit {
        /// Made so far.
        done: u32,
        /// The limit.
        max: u32,
    },
    /// Onward transfer is not allowed and the consumer intends it.
    #[error("the policy forbids onward transfer, which the consumer intends")]
    OnwardTransfer,
}

impl Refusal {
    /// The dimension refused, as the policy names it.
    pub fn dimension(&self) -> &'static str {
        match self {
            Self::NotYetValid { .. } => "valid_from",
            Self::Expired { .. } => "valid_until",
            Self::Participant { .. } => "participants",
            Self::Role { .. } => "roles",
            Self::Jurisdiction { .. } => "jurisdiction",
            Self::Purpose { .. } => "purposes",
            Self::TransferLimit { .. } => "max_transfers",
            Self::OnwardTransfer => "onward_transfer",
        }
    }
}

/// Why a policy document is refused: every problem, with its field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {}", .0.join("; "))]
pub struct PolicyError(pub Vec<String>);

/// Whether `purpose` is `permitted` or one of its sub-purposes.
fn covers(permitted: &str, purpose: &str) -> bool {
    purpose == permitted
        || purpose
            .strip_prefix(permitted)
            .is_some_and(|rest| rest.starts_with('.'))
}

impl Policy {
    /// Parses a policy from TOML or (when it starts with `{`) JSON and validates it.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let parsed = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())
        };
        let p: Self = parsed.map_err(|e| PolicyError(vec![e]))?;
        p.validate()?;
        Ok(p)
    }

    /// Checks lists, codes and the validity window.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut errors = Vec::new();
        for (name, list) in [
            ("participants", &self.participants),
            ("roles", &self.roles),
            ("purposes", &self.purposes),
            ("jurisdiction", &self.jurisdiction),
        ] {
            if list.len() > MAX_LIST {
                errors.push(format!(
                    "{name}: {} entries, at most {MAX_LIST}",
                    list.len()
                ));
            }
            for (i, e) in list.iter().enumerate() {
                if e.trim().is_empty() || e.len() > MAX_ENTRY || e.chars().any(char::is_whitespace)
                {
                    errors.push(format!(
                        "{name}[{i}]: {e:?} must be 1–{MAX_ENTRY} characters without spaces"
                    ));
                }
            }
        }
        for (i, c) in self.jurisdiction.iter().enumerate() {
            if c != "EU" && !codes::is_country(c) {
                errors.push(format!(
                    "jurisdiction[{i}]: {c:?} is neither EU nor an ISO 3166-1 alpha-2 country code"
                ));
            }
        }
        for (i, p) in self.purposes.iter().enumerate() {
            if p.starts_with('.') || p.ends_with('.') || p.contains("..") {
                errors.push(format!("purposes[{i}]: {p:?} has an empty segment"));
            }
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && from >= until
        {
            errors.push(format!(
                "valid_from {from} is not before valid_until {until}"
            ));
        }
        if self.max_transfers == Some(0) {
            errors.push("max_transfers: 0 would permit nothing; omit the asset instead".into());
        }
        if let Some(c) = &self.compute {
            errors.extend(c.problems());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PolicyError(errors))
        }
    }

    /// A one-line summary for the self-description's `usage_policy` of a data resource.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let list = |l: &[String]| l.join(", ");
        if !self.purposes.is_empty() {
            parts.push(format!("purposes: {}", list(&self.purposes)));
        }
        if !self.jurisdiction.is_empty() {
            parts.push(format!("jurisdiction: {}", list(&self.jurisdiction)));
        }
        if !self.roles.is_empty() {
            parts.push(format!("roles: {}", list(&self.roles)));
        }
        if !self.participants.is_empty() {
            parts.push(format!("{} named participant(s)", self.participants.len()));
        }
        if let Some(m) = self.max_transfers {
            parts.push(format!("at most {m} transfer(s)"));
        }
        if !self.onward_transfer {
            parts.push("no onward transfer".into());
        }
        if let Some(f) = self.valid_from {
            parts.push(format!("from {f}"));
        }
        if let Some(u) = self.valid_until {
            parts.push(format!("until {u}"));
        }
        match &self.compute {
            Some(c) if c.only => parts.push("computation only".into()),
            Some(_) => parts.push("computation or transfer".into()),
            None => {}
        }
        if self.compute.as_ref().is_some_and(|c| c.review) {
            parts.push("results reviewed by the provider".into());
        }
        if parts.is_empty() {
            "any member, any purpose".into()
        } else {
            parts.join("; ")
        }
    }
}

/// Evaluates `policy` for `consumer` making `request`: `Ok` or the first refusal in the
/// order of the module documentation.
pub fn evaluate(policy: &Policy, consumer: &Consumer, request: &Request) -> Result<(), Refusal> {
    let now = request.now;
    if let Some(from) = policy.valid_from
        && now < from
    {
        return Err(Refusal::NotYetValid { from, now });
    }
    if let Some(until) = policy.valid_until
        && now > until
    {
        return Err(Refusal::Expired { until, now });
    }
    if !policy.participants.is_empty()
        && !policy
            .participants
            .iter()
            .any(|p| *p == consumer.peer_id || p.eq_ignore_ascii_case(&consumer.registration))
    {
        return Err(Refusal::Participant {
            registration: consumer.registration.clone(),
            peer_id: consumer.peer_id.clone(),
        });
    }
    if !policy.roles.is_empty() && !policy.roles.iter().any(|r| consumer.roles.contains(r)) {
        return Err(Refusal::Role {
            required: policy.roles.clone(),
            held: consumer.roles.clone(),
        });
    }
    let country = consumer.headquarters_country.as_str();
    if !policy.jurisdiction.is_empty()
        && !policy
            .jurisdiction
            .iter()
            .any(|j| j == country || (j == "EU" && codes::is_eu_member(country)))
    {
        return Err(Refusal::Jurisdiction {
            country: country.to_owned(),
            permitted: policy.jurisdiction.clone(),
        });
    }
    if !policy.purposes.is_empty() && !policy.purposes.iter().any(|p| covers(p, &request.purpose)) {
        return Err(Refusal::Purpose {
            purpose: request.purpose.clone(),
            permitted: policy.purposes.clone(),
        });
    }
    if let Some(max) = policy.max_transfers
        && request.transfers_so_far >= max
    {
        return Err(Refusal::TransferLimit {
            done: request.transfers_so_far,
            max,
        });
    }
    if !policy.onward_transfer && request.onward_transfer {
        return Err(Refusal::OnwardTransfer);
    }
    Ok(())
}
