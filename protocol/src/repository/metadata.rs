//! The four roles' metadata, target names and target descriptions, and their signed,
//! size-capped encodings.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{BlobHash, RepoError, Role};
use crate::{
    codec,
    federation::{FederationId, KeySet, ThresholdSigned},
    identity::{Domain, PublicKey},
    limits::{
        MAX_BLOB_BYTES, MAX_KEYSET, MAX_ROOT_BYTES, MAX_SHORT_STRING, MAX_SNAPSHOT_BYTES,
        MAX_TARGET_NAME, MAX_TARGETS, MAX_TARGETS_BYTES,
    },
    sd::FieldError,
    time::UnixMillis,
};

/// A [`FieldError`] at `path`.
fn field(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}

/// Keys of one role and how many must sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Distinct keys (at most 32).
    pub keys: Vec<PublicKey>,
    /// Distinct valid signatures required (1 ≤ threshold ≤ keys).
    pub threshold: u8,
}

impl RoleKeys {
    fn check(&self, role: &str) -> Result<(), FieldError> {
        if self.keys.is_empty() || self.keys.len() > MAX_KEYSET {
            return Err(field(
                format!("{role}.keys"),
                format!("between 1 and {MAX_KEYSET} keys"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self.keys.iter().find(|k| !seen.insert(**k)) {
            return Err(field(
                format!("{role}.keys"),
                format!("{dup} is listed twice (a key counts once)"),
            ));
        }
        if self.threshold == 0 || usize::from(self.threshold) > self.keys.len() {
            return Err(field(
                format!("{role}.threshold"),
                format!(
                    "{} is not between 1 and the {} key(s)",
                    self.threshold,
                    self.keys.len()
                ),
            ));
        }
        Ok(())
    }
}

impl From<&KeySet> for RoleKeys {
    fn from(k: &KeySet) -> Self {
        Self {
            keys: k.keys.clone(),
            threshold: k.threshold,
        }
    }
}

/// Root metadata: the keys of every role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// The federation (genesis hash).
    pub federation: FederationId,
    /// Version, starting at 1, one more per rotation.
    pub version: u64,
    /// When it stops being trusted.
    pub expires: UnixMillis,
    /// Keys that sign root metadata.
    pub root: RoleKeys,
    /// Keys that sign targets metadata.
    pub targets: RoleKeys,
    /// Keys that sign snapshot metadata.
    pub snapshot: RoleKeys,
    /// Keys that sign timestamp metadata.
    pub timestamp: RoleKeys,
}

impl Root {
    /// The keys of `role`.
    pub fn keys(&self, role: Role) -> &RoleKeys {
        match role {
            Role::Root => &self.root,
            Role::Targets => &self.targets,
            Role::Snapshot => &self.snapshot,
            Role::Timestamp => &self.timestamp,
        }
    }

    fn check(&self) -> Result<(), FieldError> {
        if self.version == 0 {
            return Err(field("version", "starts at 1"));
        }
        for role in [Role::Root, Role::Targets, Role::Snapshot, Role::Timestamp] {
            self.keys(role).check(&role.to_string())?;
        }
        Ok(())
    }
}

/// Whether nodes fetch a component as soon as it is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Fetched and pinned by every node as soon as it is released.
    Mandatory,
    /// Fetched on demand.
    Optional,
}

impl FromStr for Category {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mandatory" => Ok(Self::Mandatory),
            "optional" => Ok(Self::Optional),
            _ => Err(crate::ParseError::new(
                s,
                "a category (mandatory or optional)",
            )),
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mandatory => "mandatory",
            Self::Optional => "optional",
        })
    }
}

/// The `custom` part of a target: what gaiamesh needs beyond TUF's length and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetCustom {
    /// Mandatory or optional.
    pub category: Category,
    /// The blob's BLAKE3 hash (its content address).
    pub blake3: BlobHash,
    /// Platform it is for (e.g. `linux-x86_64`); none: any.
    pub platform: Option<String>,
}

/// One target: a component version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Exact length in bytes (downloads stop there).
    pub length: u64,
    /// Category, hash, platform.
    pub custom: TargetCustom,
}

/// A target's name: `NAME@VERSION`, where NAME is one or more `/`-separated segments and
/// every segment and the version use `[A-Za-z0-9._+-]`, are not `.` or `..`, and are at
/// most 64 bytes. Nothing that could escape a directory when used as a path is accepted.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetName {
    full: String,
    at: usize,
}

impl TargetName {
    /// The component name (before `@`).
    pub fn name(&self) -> &str {
        &self.full[..self.at]
    }

    /// The version (after `@`).
    pub fn version(&self) -> &str {
        &self.full[self.at + 1..]
    }

    /// The whole `NAME@VERSION`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// Checks one `/`-separated segment of the name (`what` is `name` or `version`).
    fn segment(full: &str, s: &str, what: &'static str) -> Result<(), TargetNameError> {
        let bad = |problem: String| TargetNameError::Segment {
            name: full.to_owned(),
            what,
            segment: s.to_owned(),
            problem,
        };
        if s.is_empty() || s.len() > 64 {
            return Err(bad("between 1 and 64 bytes".into()));
        }
        if s == "." || s == ".." {
            return Err(bad("not allowed".into()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
        {
            return Err(bad(format!("character {c:?} not allowed")));
        }
        Ok(())
    }
}

/// Text that is not a target name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetNameError {
    /// Longer than [`MAX_TARGET_NAME`].
    #[error("target name is {0} bytes, at most {MAX_TARGET_NAME}")]
    TooLong(usize),
    /// No `@`.
    #[error("target name {0:?}: expected NAME@VERSION")]
    NoVersion(String),
    /// A segment of the name, or the version, is not allowed.
    #[error("target name {name:?}: {what} segment {segment:?}: {problem}")]
    Segment {
        /// The whole name.
        name: String,
        /// `name` or `version`.
        what: &'static str,
        /// The segment.
        segment: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl FromStr for TargetName {
    type Err = TargetNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_TARGET_NAME {
            return Err(TargetNameError::TooLong(s.len()));
        }
        let at = s
            .rfind('@')
            .ok_or_else(|| TargetNameError::NoVersion(s.to_owned()))?;
        let (name, version) = (&s[..at], &s[at + 1..]);
        for seg in name.split('/') {
            Self::segment(s, seg, "name")?;
        }
        Self::segment(s, version, "version")?;
        Ok(Self {
            full: s.to_owned(),
            at,
        })
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetName({})", self.full)
    }
}

impl Serialize for TargetName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for TargetName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// Targets metadata: every component version of the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// The federation.
    pub federation: FederationId,
    /// Version, one more per release.
    pub version: u64,
    /// When it stops being trusted.
    pub expires: UnixMillis,
    /// Name → description (at most 1024).
    pub targets: BTreeMap<TargetName, TargetInfo>,
}

impl Targets {
    fn check(&self) -> Result<(), FieldError> {
        if self.targets.len() > MAX_TARGETS {
            return Err(field("targets", format!("at most {MAX_TARGETS} entries")));
        }
        for (name, t) in &self.targets {
            if t.length > MAX_BLOB_BYTES {
                return Err(field(
                    format!("targets[{name}].length"),
                    format!("{} bytes, at most {MAX_BLOB_BYTES}", t.length),
                ));
            }
            if t.custom
                .platform
                .as_ref()
                .is_some_and(|p| p.is_empty() || p.len() > MAX_SHORT_STRING)
            {
                return Err(field(
                    format!("targets[{name}].custom.platform"),
                    format!("between 1 and {MAX_SHORT_STRING} bytes"),
                ));
            }
        }
        Ok(())
    }

    /// The newest version of component `name` (by the order of versions as released: the
    /// highest version string under semantic-version comparison, falling back to text).
    pub fn latest(&self, name: &str) -> Option<(&TargetName, &TargetInfo)> {
        self.targets
            .iter()
            .filter(|(t, _)| t.name() == name)
            .max_by(|a, b| compare_versions(a.0.version(), b.0.version()))
    }
}

/// Compares dotted versions numerically where both parts are numbers.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let mut ai = a.split(['.', '-', '+']);
    let mut bi = b.split(['.', '-', '+']);
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

/// What a snapshot or timestamp says about the metadata below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRef {
    /// Its version.
    pub version: u64,
    /// Length of its signed encoding.
    pub length: u64,
    /// BLAKE3 of its signed encoding.
    pub blake3: BlobHash,
}

impl MetaRef {
    /// The reference to `bytes` of `version`.
    pub fn of(version: u64, bytes: &[u8]) -> Self {
        Self {
            version,
            length: bytes.len() as u64,
            blake3: BlobHash::of(bytes),
        }
    }
}

/// Snapshot metadata: the current targets version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The federation.
    pub federation: FederationId,
    /// Version.
    pub version: u64,
    /// When it stops being trusted.
    pub expires: UnixMillis,
    /// The targets metadata of this snapshot.
    pub targets: MetaRef,
}

/// Timestamp metadata: the current snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    /// The federation.
    pub federation: FederationId,
    /// Version.
    pub version: u64,
    /// When it stops being trusted.
    pub expires: UnixMillis,
    /// The snapshot metadata it names.
    pub snapshot: MetaRef,
}

/// Metadata of one role: its domain, size cap, version and expiry, federation and checks.
pub trait RoleMetadata: Serialize + de::DeserializeOwned + Clone {
    /// The role.
    const ROLE: Role;
    /// Signature domain.
    const DOMAIN: Domain;
    /// Largest signed encoding.
    const LIMIT: usize;
    /// Version.
    fn version(&self) -> u64;
    /// Expiry.
    fn expires(&self) -> UnixMillis;
    /// Federation.
    fn federation(&self) -> FederationId;
    /// Field checks beyond decoding.
    fn check_fields(&self) -> Result<(), FieldError>;
}

macro_rules! role_metadata {
    ($t:ty, $role:expr, $domain:expr, $limit:expr, $check:expr) => {
        impl RoleMetadata for $t {
            const ROLE: Role = $role;
            const DOMAIN: Domain = $domain;
            const LIMIT: usize = $limit;
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> UnixMillis {
                self.expires
            }
            fn federation(&self) -> FederationId {
                self.federation
            }
            fn check_fields(&self) -> Result<(), FieldError> {
                #[allow(clippy::redundant_closure_call)]
                ($check)(self)
            }
        }
    };
}

role_metadata!(
    Root,
    Role::Root,
    Domain::RepositoryRoot,
    MAX_ROOT_BYTES,
    Root::check
);
role_metadata!(
    Targets,
    Role::Targets,
    Domain::RepositoryTargets,
    MAX_TARGETS_BYTES,
    Targets::check
);
role_metadata!(
    Snapshot,
    Role::Snapshot,
    Domain::RepositorySnapshot,
    MAX_SNAPSHOT_BYTES,
    |_: &Snapshot| Ok(())
);
role_metadata!(
    Timestamp,
    Role::Timestamp,
    Domain::RepositoryTimestamp,
    MAX_SNAPSHOT_BYTES,
    |_: &Timestamp| Ok(())
);

/// Signed metadata of one role, with the exact bytes it was received as (hashes and
/// lengths in the roles above refer to these bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<T> {
    /// The decoded, signed metadata.
    pub signed: ThresholdSigned<T>,
    /// Its canonical encoding.
    pub bytes: Vec<u8>,
}

impl<T: RoleMetadata> Signed<T> {
    /// Decodes `bytes` (size cap first, then fields). Signatures are checked by the
    /// client, which knows the keys.
    pub fn decode(bytes: &[u8]) -> Result<Self, RepoError> {
        let what = match T::ROLE {
            Role::Root => "root metadata",
            Role::Targets => "targets metadata",
            Role::Snapshot => "snapshot metadata",
            Role::Timestamp => "timestamp metadata",
        };
        let signed: ThresholdSigned<T> =
            codec::decode(what, bytes, T::LIMIT).map_err(|source| RepoError::Decode {
                role: T::ROLE,
                source,
            })?;
        signed.body.check_fields().map_err(|e| RepoError::Invalid {
            role: T::ROLE,
            reason: e.to_string(),
        })?;
        Ok(Self {
            signed,
            bytes: bytes.to_vec(),
        })
    }

    /// Signs `body` with `keys` and encodes it.
    pub fn sign(body: T, keys: &[&crate::identity::Keypair]) -> Result<Self, RepoError> {
        body.check_fields().map_err(|e| RepoError::Invalid {
            role: T::ROLE,
            reason: e.to_string(),
        })?;
        let signed = ThresholdSigned::sign(body, T::DOMAIN, T::LIMIT, keys)?;
        let bytes = codec::encode("repository metadata", &signed, T::LIMIT)?;
        Ok(Self { signed, bytes })
    }

    /// The metadata.
    pub fn body(&self) -> &T {
        &self.signed.body
    }

    /// Checks a threshold of `keys` signed it.
    pub fn verify(&self, keys: &RoleKeys) -> Result<(), RepoError> {
        self.signed
            .verify_threshold(
                match T::ROLE {
                    Role::Root => "repository root",
                    Role::Targets => "repository targets",
                    Role::Snapshot => "repository snapshot",
                    Role::Timestamp => "repository timestamp",
                },
                T::DOMAIN,
                T::LIMIT,
                &keys.keys,
                keys.threshold,
            )
            .map(|_| ())
            .map_err(|source| RepoError::Signatures {
                role: T::ROLE,
                version: self.signed.body.version(),
                source,
            })
    }

    /// Refuses it when expired at `now`.
    pub fn check_fresh(&self, now: UnixMillis) -> Result<(), RepoError> {
        let b = &self.signed.body;
        if b.expires() <= now {
            return Err(RepoError::Expired {
                role: T::ROLE,
                version: b.version(),
                expires: b.expires(),
                now,
            });
        }
        Ok(())
    }

    /// Its reference (version, length, hash) for the role above.
    pub fn meta_ref(&self) -> MetaRef {
        MetaRef::of(self.signed.body.version(), &self.bytes)
    }
}

/// Everything a node needs to bring another node up to date: the root chain (oldest
/// first) and the current timestamp, snapshot and targets, as signed bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Root versions, oldest first (at most 64).
    pub roots: Vec<Vec<u8>>,
    /// Timestamp metadata.
    pub timestamp: Option<Vec<u8>>,
    /// Snapshot metadata.
    pub snapshot: Option<Vec<u8>>,
    /// Targets metadata.
    pub targets: Option<Vec<u8>>,
}

/// Largest encoded bundle.
pub const MAX_BUNDLE_BYTES: usize = crate::limits::MAX_ROOT_CHAIN * MAX_ROOT_BYTES
    + MAX_TARGETS_BYTES
    + 2 * MAX_SNAPSHOT_BYTES
    + 64;

impl Bundle {
    /// Canonical encoding.
    pub fn encode(&self) -> Result<Vec<u8>, RepoError> {
        Ok(codec::encode("repository bundle", self, MAX_BUNDLE_BYTES)?)
    }

    /// Decodes a bundle (each part is checked when applied).
    pub fn decode(bytes: &[u8]) -> Result<Self, RepoError> {
        codec::decode("repository bundle", bytes, MAX_BUNDLE_BYTES).map_err(|source| {
            RepoError::Decode {
                role: Role::Timestamp,
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_refuse_paths_that_escape() {
        for ok in [
            "identity/oidc-bridge@1.2.0",
            "certs@2026.11",
            "a/b/c@v1+build.7",
        ] {
            let t: TargetName = ok.parse().unwrap();
            assert_eq!(t.as_str(), ok);
        }
        let t: TargetName = "trust/eu-lotl@3.1".parse().unwrap();
        assert_eq!((t.name(), t.version()), ("trust/eu-lotl", "3.1"));
        for bad in [
            "../etc/passwd@1",
            "a/../../b@1",
            "/abs@1",
            "a//b@1",
            "a\\b@1",
            "name@..",
            "name",
            "name@",
            "na me@1",
            "a/./b@1",
            "trailing/@1",
        ] {
            assert!(bad.parse::<TargetName>().is_err(), "{bad} accepted");
        }
        assert!(
            format!("{}@1", "x".repeat(200))
                .parse::<TargetName>()
                .is_err()
        );
        // Decoding applies the same rules.
        let bytes = postcard::to_stdvec(&"../x@1").unwrap();
        assert!(postcard::from_bytes::<TargetName>(&bytes).is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("1.10.0", "1.9.3"), Greater);
        assert_eq!(compare_versions("2.0", "2.0.1"), Less);
        assert_eq!(compare_versions("1.0", "1.0"), Equal);
    }

    #[test]
    fn role_keys_refuse_duplicates_and_bad_thresholds() {
        let k = crate::testing::key(1).public();
        let dup = RoleKeys {
            keys: vec![k, k],
            threshold: 2,
        };
        let e = dup.check("root").unwrap_err();
        assert_eq!(e.path, "root.keys");
        assert!(e.message.contains("listed twice"), "{e}");
        let zero = RoleKeys {
            keys: vec![k],
            threshold: 0,
        };
        assert!(zero.check("targets").is_err());
        let high = RoleKeys {
            keys: vec![k],
            threshold: 2,
        };
        assert!(high.check("snapshot").is_err());
    }
}
