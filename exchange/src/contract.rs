//! Contracts: the consumer's request, the agreement both parties sign, and the receipt the
//! consumer signs for a completed transfer. Pure data with their signature rules.

use std::fmt;

use gaiamesh_protocol::{
    codec,
    federation::FederationId,
    identity::{Domain, Keypair, PublicKey, Signature},
    sd::Registration,
    time::UnixMillis,
};
use serde::{Deserialize, Serialize};

/// Largest encoded negotiation message (a request carries a membership credential).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest encoded agreement.
pub const MAX_AGREEMENT_BYTES: usize = 8 * 1024;
/// How long an agreement lets the consumer start or resume its transfer (24 h).
pub const AGREEMENT_TTL_MS: u64 = 24 * 3600 * 1000;

/// The id of an agreement: BLAKE3 of its encoded body (hex in JSON, bytes in postcard).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgreementId(pub [u8; 32]);

impl Serialize for AgreementId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for AgreementId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(d).map(Self)
        }
    }
}

/// Text that is not an agreement id.
#[derive(Debug, thiserror::Error)]
#[error("agreement id {text:?}: {source} (64 hex digits expected)")]
pub struct AgreementIdError {
    text: String,
    source: hex::FromHexError,
}

impl std::str::FromStr for AgreementId {
    type Err = AgreementIdError;
    fn from_str(s: &str) -> Result<Self, AgreementIdError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|source| AgreementIdError {
            text: s.chars().take(80).collect(),
            source,
        })?;
        Ok(Self(out))
    }
}

impl AgreementId {
    /// The first 8 hex digits.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for AgreementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for AgreementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgreementId({})", self.short())
    }
}

/// What a consumer asks for (the Dataspace Protocol's contract request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractRequest {
    /// Who it asks.
    pub provider: PublicKey,
    /// Who asks (must be the node on the other end of the stream).
    pub consumer: PublicKey,
    /// The asset id.
    pub asset: String,
    /// The stated purpose.
    pub purpose: String,
    /// Whether the consumer will pass the data on.
    pub onward_transfer: bool,
    /// Fresh per request; bound into the agreement.
    pub nonce: [u8; 16],
    /// When it asks.
    pub requested_at: UnixMillis,
    /// The consumer's encoded membership credential.
    pub credential: Vec<u8>,
}

/// What both parties sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementBody {
    /// The federation both are members of.
    pub federation: FederationId,
    /// The provider's node key.
    pub provider: PublicKey,
    /// The consumer's node key.
    pub consumer: PublicKey,
    /// The consumer's registration (`kind:value`), from its credential.
    pub consumer_registration: String,
    /// The asset id.
    pub asset: String,
    /// The asset's manifest hash (BLAKE3, hex): what the transfer must deliver.
    pub manifest_blake3: String,
    /// Total bytes.
    pub size: u64,
    /// Files.
    pub files: u32,
    /// The agreed purpose.
    pub purpose: String,
    /// Whether the consumer may pass the data on (what it asked for, allowed by the policy).
    pub onward_transfer: bool,
    /// The policy's one-line summary.
    pub policy: String,
    /// BLAKE3 of the policy's JSON form, hex.
    pub policy_blake3: String,
    /// The request's nonce.
    pub nonce: [u8; 16],
    /// When the provider offered it.
    pub agreed_at: UnixMillis,
    /// Transfers must start (or resume) before this.
    pub expires_at: UnixMillis,
}

impl AgreementBody {
    /// The canonical bytes both signatures cover.
    pub fn encode(&self) -> Result<Vec<u8>, ContractError> {
        Ok(codec::encode("agreement", self, MAX_AGREEMENT_BYTES)?)
    }

    /// Its id.
    pub fn id(&self) -> Result<AgreementId, ContractError> {
        Ok(AgreementId(*blake3::hash(&self.encode()?).as_bytes()))
    }

    /// Signs it with `key` (the provider's or the consumer's).
    pub fn sign(&self, key: &Keypair) -> Result<Signature, ContractError> {
        Ok(key.sign(Domain::ContractAgreement, &self.encode()?))
    }
}

/// An agreement signed by both parties.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// What they agreed.
    pub body: AgreementBody,
    /// The provider's signature.
    pub provider_signature: Signature,
    /// The consumer's signature.
    pub consumer_signature: Signature,
}

impl Agreement {
    /// Checks both signatures; returns the id.
    pub fn verify(&self) -> Result<AgreementId, ContractError> {
        let bytes = self.body.encode()?;
        if !self
            .body
            .provider
            .verify(Domain::ContractAgreement, &bytes, &self.provider_signature)
        {
            return Err(ContractError::BadSignature("provider"));
        }
        if !self
            .body
            .consumer
            .verify(Domain::ContractAgreement, &bytes, &self.consumer_signature)
        {
            return Err(ContractError::BadSignature("consumer"));
        }
        Ok(AgreementId(*blake3::hash(&bytes).as_bytes()))
    }

    /// Encoded.
    pub fn encode(&self) -> Result<Vec<u8>, ContractError> {
        Ok(codec::encode("agreement", self, MAX_AGREEMENT_BYTES)?)
    }

    /// Decoded (signatures not checked: call [`Agreement::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, ContractError> {
        Ok(codec::decode("agreement", bytes, MAX_AGREEMENT_BYTES)?)
    }
}

/// What the consumer signs when a transfer completed and verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The agreement the transfer was under.
    pub agreement: AgreementId,
    /// The consumer.
    pub consumer: PublicKey,
    /// The manifest hash it verified.
    pub manifest_blake3: String,
    /// Bytes it holds.
    pub bytes: u64,
    /// When it finished.
    pub completed_at: UnixMillis,
}

/// A receipt signed by the consumer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// What it says.
    pub body: ReceiptBody,
    /// The consumer's signature.
    pub signature: Signature,
}

impl Receipt {
    /// `body` signed by `key`.
    pub fn sign(body: ReceiptBody, key: &Keypair) -> Result<Self, ContractError> {
        let bytes = codec::encode("receipt", &body, MAX_AGREEMENT_BYTES)?;
        Ok(Self {
            signature: key.sign(Domain::TransferReceipt, &bytes),
            body,
        })
    }

    /// Checks that it is the consumer's receipt for `agreement` and its manifest.
    pub fn verify(&self, agreement: &AgreementBody, id: AgreementId) -> Result<(), ContractError> {
        if self.body.agreement != id {
            return Err(ContractError::Mismatch("receipt.agreement"));
        }
        if self.body.consumer != agreement.consumer {
            return Err(ContractError::Mismatch("receipt.consumer"));
        }
        if self.body.manifest_blake3 != agreement.manifest_blake3 {
            return Err(ContractError::Mismatch("receipt.manifest_blake3"));
        }
        let bytes = codec::encode("receipt", &self.body, MAX_AGREEMENT_BYTES)?;
        if !self
            .body
            .consumer
            .verify(Domain::TransferReceipt, &bytes, &self.signature)
        {
            return Err(ContractError::BadSignature("receipt"));
        }
        Ok(())
    }
}

/// Why a contract object is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// A signature does not verify.
    #[error("the {0} signature does not verify (forged or altered)")]
    BadSignature(&'static str),
    /// A field differs from what it must be.
    #[error("{0} does not match")]
    Mismatch(&'static str),
    /// Something required is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// Encoding.
    #[error(transparent)]
    Encode(#[from] codec::EncodeError),
    /// Decoding.
    #[error(transparent)]
    Decode(#[from] codec::DecodeError),
}

/// `kind:value` of a registration, as policies name participants.
pub fn registration_text(r: &Registration) -> String {
    let kind = serde_json::to_value(r.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{kind}:{}", r.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(provider: &Keypair, consumer: &Keypair) -> AgreementBody {
        AgreementBody {
            federation: FederationId([1; 32]),
            provider: provider.public(),
            consumer: consumer.public(),
            consumer_registration: "vatID:DE123456789".into(),
            asset: "weather".into(),
            manifest_blake3: "ab".repeat(32),
            size: 10,
            files: 1,
            purpose: "research".into(),
            onward_transfer: false,
            policy: "any member".into(),
            policy_blake3: "cd".repeat(32),
            nonce: [3; 16],
            agreed_at: UnixMillis(1),
            expires_at: UnixMillis(2),
        }
    }

    #[test]
    fn both_signatures_are_checked_and_any_change_breaks_them() {
        let (p, c) = (Keypair::generate(), Keypair::generate());
        let b = body(&p, &c);
        let a = Agreement {
            provider_signature: b.sign(&p).unwrap(),
            consumer_signature: b.sign(&c).unwrap(),
            body: b.clone(),
        };
        assert_eq!(a.verify().unwrap(), b.id().unwrap());
        let mut altered = a.clone();
        altered.body.size = 11;
        assert_eq!(
            altered.verify(),
            Err(ContractError::BadSignature("provider"))
        );
        let mut forged = a.clone();
        forged.consumer_signature = b.sign(&Keypair::generate()).unwrap();
        assert_eq!(
            forged.verify(),
            Err(ContractError::BadSignature("consumer"))
        );
        // A signature in another domain (e.g. a self-description) is no agreement signature.
        let mut other = a.clone();
        other.provider_signature = p.sign(Domain::SelfDescription, &b.encode().unwrap());
        assert_eq!(other.verify(), Err(ContractError::BadSignature("provider")));
        let decoded = Agreement::decode(&a.encode().unwrap()).unwrap();
        assert_eq!(decoded, a);
    }

    #[test]
    fn receipts_bind_agreement_consumer_and_manifest() {
        let (p, c) = (Keypair::generate(), Keypair::generate());
        let b = body(&p, &c);
        let id = b.id().unwrap();
        let rb = ReceiptBody {
            agreement: id,
            consumer: c.public(),
            manifest_blake3: b.manifest_blake3.clone(),
            bytes: 10,
            completed_at: UnixMillis(5),
        };
        let r = Receipt::sign(rb.clone(), &c).unwrap();
        r.verify(&b, id).unwrap();
        assert_eq!(
            r.verify(&b, AgreementId([0; 32])),
            Err(ContractError::Mismatch("receipt.agreement"))
        );
        let by_provider = Receipt::sign(rb.clone(), &p).unwrap();
        assert_eq!(
            by_provider.verify(&b, id),
            Err(ContractError::BadSignature("receipt"))
        );
        let mut wrong = rb;
        wrong.manifest_blake3 = "00".repeat(32);
        assert_eq!(
            Receipt::sign(wrong, &c).unwrap().verify(&b, id),
            Err(ContractError::Mismatch("receipt.manifest_blake3"))
        );
    }
}
