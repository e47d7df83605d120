//! The DHT key scheme (DESIGN §6) and the light-mode query plan, as pure functions the node
//! and the simulator share.
//!
//! - `sd/<PeerId>`: the subject's signed self-description (a Kademlia record).
//! - `attr/<field>/<value>`: the subject is a *provider* of this key for every indexed
//!   attribute value it has ([`attribute_keys`]); values are lower case.
//!
//! A light node keeps no replica: [`light_plan`] picks the most selective attribute key(s) of
//! a query, the node fetches those keys' providers and their `sd/` records, and
//! [`light_query`] validates them through the normal merge rules and filters locally.

use gaiamesh_protocol::{
    federation::FederationTrust, identity::PublicKey, sd::SignedSelfDescription, time::UnixMillis,
};

use crate::{
    catalogue::{Catalogue, QueryOptions, QueryOutput},
    entry::Entry,
    facets::{FIELDS, Facets, Field},
    index::values_of,
    query::{Cmp, Expr, Literal, Op},
    store::{MemoryStore, StoreError},
};

/// The fields announced as DHT attribute keys (the indexed fields), most selective first:
/// the order light mode uses when a query constrains several of them.
pub const ATTRIBUTES_BY_SELECTIVITY: [&str; 8] = [
    "node.location.subdivision",
    "service.certification",
    "node.location.country",
    "service.data_location",
    "participant.headquarters.country",
    "service.protection_level",
    "service.kind",
    "node.kind",
];

/// Key of a subject's self-description record.
pub fn sd_key(subject: &PublicKey) -> Vec<u8> {
    format!("sd/{subject}").into_bytes()
}

/// Key of an attribute value.
pub fn attr_key(field: &str, value: &str) -> Vec<u8> {
    format!("attr/{field}/{}", value.to_lowercase()).into_bytes()
}

/// Parses an `sd/<PeerId>` key.
pub fn parse_sd_key(key: &[u8]) -> Option<PublicKey> {
    std::str::from_utf8(key)
        .ok()?
        .strip_prefix("sd/")?
        .parse()
        .ok()
}

/// Every attribute key `entry`'s subject provides.
pub fn attribute_keys(entry: &Entry) -> Vec<Vec<u8>> {
    let f = Facets::of(entry);
    FIELDS
        .iter()
        .filter(|x| x.indexed)
        .flat_map(|field| {
            values_of(field, &f)
                .into_iter()
                .map(move |v| attr_key(field.name, &v))
        })
        .collect()
}

/// How a light node answers a query.
#[derive(Clone, Debug, PartialEq)]
pub struct LightPlan {
    /// The attribute whose providers are fetched.
    pub field: &'static Field,
    /// Its values (providers of any of them are candidates).
    pub values: Vec<String>,
    /// The DHT keys to ask for providers.
    pub keys: Vec<Vec<u8>>,
    /// The full predicate, applied to the fetched records.
    pub filter: Expr,
}

/// Why a query cannot run on a light node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LightPlanError {
    /// No top-level `and` term is an equality on an announced attribute.
    #[error(
        "a light node needs an equality (=, in, has) on one of {} in a top-level `and`",
        ATTRIBUTES_BY_SELECTIVITY.join(", ")
    )]
    NoAttribute,
}

/// Picks the DHT attribute keys for `expr`: among top-level conjuncts that are equalities on
/// announced attributes, the one with the fewest values, ties broken by field selectivity.
pub fn light_plan(expr: &Expr) -> Result<LightPlan, LightPlanError> {
    let conjuncts: Vec<&Expr> = match expr {
        Expr::And(xs) => xs.iter().collect(),
        other => vec![other],
    };
    let rank = |name: &str| ATTRIBUTES_BY_SELECTIVITY.iter().position(|a| *a == name);
    let best = conjuncts
        .into_iter()
        .filter_map(|e| match e {
            Expr::Cmp(Cmp {
                field,
                op: Op::Eq | Op::In | Op::Has,
                values,
            }) => {
                let r = rank(field.name)?;
                let vals: Option<Vec<String>> = values
                    .iter()
                    .map(|v| {
                        if let Literal::Str(s) = v {
                            Some(s.clone())
                        } else {
                            None
                        }
                    })
                    .collect();
                let vals = vals?;
                Some((vals.len(), r, *field, vals))
            }
            _ => None,
        })
        .min_by_key(|(n, r, _, _)| (*n, *r))
        .ok_or(LightPlanError::NoAttribute)?;
    let (_, _, field, values) = best;
    let keys = values.iter().map(|v| attr_key(field.name, v)).collect();
    Ok(LightPlan {
        field,
        values,
        keys,
        filter: expr.clone(),
    })
}

/// Validates fetched records with the merge rules and runs the query on them.
pub fn light_query(
    trust: &FederationTrust,
    records: Vec<SignedSelfDescription>,
    plan: &LightPlan,
    opts: QueryOptions,
    now: UnixMillis,
) -> Result<(QueryOutput, Catalogue<MemoryStore>), StoreError> {
    let mut cat = Catalogue::open(MemoryStore::new(), trust.clone(), records.len().max(1))?;
    cat.merge_batch(records.into_iter().map(|r| (r, None)).collect(), now)?;
    let out = cat.query(&plan.filter, opts, now);
    Ok((out, cat))
}

/// Largest DHT key the node stores: `attr/<field>/<value>` with a bounded value.
pub const MAX_DHT_KEY_BYTES: usize = 256;

/// Why a DHT record or provider key is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtRecordError {
    /// The key is not one of the gaiamesh key forms.
    #[error("DHT key {0:?} is not of the form {1}")]
    BadKey(String, &'static str),
    /// The key names an attribute that is not announced.
    #[error("DHT key {0:?} names no announced attribute ({list})", list = ATTRIBUTES_BY_SELECTIVITY.join(", "))]
    UnknownAttribute(String),
    /// The value does not decode or verify.
    #[error("DHT record {key}: {error}")]
    Invalid {
        /// The key, as text.
        key: String,
        /// What is wrong with the value.
        error: gaiamesh_protocol::sd::SdError,
    },
    /// The record is a valid self-description of another subject.
    #[error("DHT record {key} holds the self-description of {subject}")]
    WrongSubject {
        /// The key, as text.
        key: String,
        /// The subject inside.
        subject: PublicKey,
    },
}

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(&key[..key.len().min(MAX_DHT_KEY_BYTES)]).into_owned()
}

/// Validates a `sd/<PeerId>` record as every node must before storing it: the value is the
/// key's subject's signed self-description, valid for the federation (signature, membership,
/// not revoked, not expired) at `now`.
pub fn validate_sd_record(
    trust: &FederationTrust,
    key: &[u8],
    value: &[u8],
    now: UnixMillis,
) -> Result<SignedSelfDescription, DhtRecordError> {
    let subject =
        parse_sd_key(key).ok_or_else(|| DhtRecordError::BadKey(key_text(key), "sd/<PeerId>"))?;
    let invalid = |error| DhtRecordError::Invalid {
        key: key_text(key),
        error,
    };
    let record = SignedSelfDescription::decode(value).map_err(invalid)?;
    if record.sd.subject != subject {
        return Err(DhtRecordError::WrongSubject {
            key: key_text(key),
            subject: record.sd.subject,
        });
    }
    record.check(trust, now).map_err(invalid)?;
    Ok(record)
}

/// Whether a valid `incoming` record should replace the `stored` one: the catalogue's merge
/// rules (higher seq wins; same seq, smaller hash wins), so every DHT node keeps the version
/// every full replica keeps.
pub fn replaces(stored: &SignedSelfDescription, incoming: &SignedSelfDescription) -> bool {
    let version = |r: &SignedSelfDescription| {
        r.content_hash().ok().map(|hash| crate::merge::Version {
            seq: r.sd.seq,
            hash,
        })
    };
    match (version(stored), version(incoming)) {
        (Some(s), Some(i)) => crate::merge::decide(Some(s), i).changed(),
        (None, Some(_)) => true,
        _ => false,
    }
}

/// Validates a provider key: `attr/<announced field>/<value>`, or `blob/<hex>` for
/// repository blobs, at most [`MAX_DHT_KEY_BYTES`].
pub fn validate_provider_key(key: &[u8]) -> Result<(), DhtRecordError> {
    let form = "attr/<field>/<value> or blob/<hex>";
    let bad = || DhtRecordError::BadKey(key_text(key), form);
    if key.len() > MAX_DHT_KEY_BYTES {
        return Err(bad());
    }
    let text = std::str::from_utf8(key).map_err(|_| bad())?;
    if let Some(rest) = text.strip_prefix("attr/") {
        let (field, value) = rest.split_once('/').ok_or_else(bad)?;
        if value.is_empty() || value != value.to_lowercase() {
            return Err(bad());
        }
        if !ATTRIBUTES_BY_SELECTIVITY.contains(&field) {
            return Err(DhtRecordError::UnknownAttribute(text.to_owned()));
        }
        Ok(())
    } else if let Some(hex) = text.strip_prefix("blob/") {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(())
            .ok_or_else(bad)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;

    #[test]
    fn keys() {
        assert_eq!(
            attr_key("node.location.country", "DE"),
            b"attr/node.location.country/de".to_vec()
        );
        let k = gaiamesh_protocol::testing::key(1).public();
        assert_eq!(parse_sd_key(&sd_key(&k)), Some(k));
        assert_eq!(parse_sd_key(b"attr/x/y"), None);
    }

    #[test]
    fn picks_the_most_selective_attribute() {
        let p = light_plan(
            &parse("service.kind = storage.object and node.location.country = DE").unwrap(),
        )
        .unwrap();
        assert_eq!(
            (p.field.name, p.values.clone()),
            ("node.location.country", vec!["de".to_owned()])
        );
        let p = light_plan(
            &parse("service.kind = storage.object and node.location.country in [DE, AT]").unwrap(),
        )
        .unwrap();
        assert_eq!(p.field.name, "service.kind", "one value beats two");
        assert_eq!(p.keys, vec![b"attr/service.kind/storage.object".to_vec()]);
        assert_eq!(
            light_plan(&parse("node.energy.pue < 1.2").unwrap()),
            Err(LightPlanError::NoAttribute)
        );
        assert_eq!(
            light_plan(&parse("node.kind = edge or node.kind = hpc").unwrap()),
            Err(LightPlanError::NoAttribute)
        );
    }

    #[test]
    fn every_indexed_field_is_an_attribute() {
        let indexed: Vec<_> = FIELDS
            .iter()
            .filter(|f| f.indexed)
            .map(|f| f.name)
            .collect();
        for f in &indexed {
            assert!(ATTRIBUTES_BY_SELECTIVITY.contains(f), "{f}");
        }
        assert_eq!(indexed.len(), ATTRIBUTES_BY_SELECTIVITY.len());
    }

    #[test]
    fn records_are_validated_like_the_catalogue_does() {
        use gaiamesh_protocol::testing::{NOW, TestFederation, example_documents, key};
        let fed = TestFederation::new(3, 2, true);
        let now = NOW;
        let (a, b) = (key(1), key(2));
        let rec = fed.sign_document(&a, 1, example_documents()[0].clone());
        let bytes = rec.encode().unwrap();
        let key = sd_key(&rec.sd.subject);
        assert!(validate_sd_record(&fed.trust, &key, &bytes, now).is_ok());
        let other = sd_key(&b.public());
        assert!(matches!(
            validate_sd_record(&fed.trust, &other, &bytes, now),
            Err(DhtRecordError::WrongSubject { .. })
        ));
        let mut forged = bytes.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let err = validate_sd_record(&fed.trust, &key, &forged, now).unwrap_err();
        assert!(matches!(err, DhtRecordError::Invalid { .. }), "{err}");
        assert!(matches!(
            validate_sd_record(&fed.trust, b"attr/x/y", &bytes, now),
            Err(DhtRecordError::BadKey(..))
        ));
        let expired = rec.sd.expires_at.plus_ms(1);
        assert!(validate_sd_record(&fed.trust, &key, &bytes, expired).is_err());
        let newer = fed.sign_document(&a, 2, example_documents()[1].clone());
        assert!(replaces(&rec, &newer));
        assert!(!replaces(&newer, &rec));
        assert!(!replaces(&rec, &rec));
    }

    #[test]
    fn provider_keys() {
        assert!(validate_provider_key(b"attr/node.location.country/de").is_ok());
        assert!(validate_provider_key(&[b"blob/".as_slice(), &[b'a'; 64]].concat()).is_ok());
        for bad in [
            b"attr/node.location.country/DE".to_vec(),
            b"attr/node.location.country/".to_vec(),
            b"sd/x".to_vec(),
            b"blob/xyz".to_vec(),
            vec![b'a'; 300],
        ] {
            assert!(matches!(
                validate_provider_key(&bad),
                Err(DhtRecordError::BadKey(..))
            ));
        }
        assert!(matches!(
            validate_provider_key(b"attr/node.energy.pue/1"),
            Err(DhtRecordError::UnknownAttribute(_))
        ));
    }
}
