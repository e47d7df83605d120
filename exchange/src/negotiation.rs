//! Contract negotiation as two sans-IO state machines (the node runs them over
//! `/gaiamesh/negotiate/1`; tests run them directly).
//!
//! The Dataspace Protocol's states, as gaiamesh maps them onto four messages:
//!
//! | message (sender)        | state after it | what the receiver checks |
//! |---|---|---|
//! | `Request` (consumer)    | REQUESTED  | the provider verifies the consumer's membership credential (bound to the stream's peer) and evaluates the asset's policy |
//! | `Offer` (provider)      | OFFERED    | the consumer checks the body is what it asked for and the provider's signature |
//! | `Agree` (consumer)      | AGREED     | the provider checks the consumer's signature over exactly the offered body |
//! | —                        | VERIFIED   | (the provider, having both signatures verified, records the agreement) |
//! | `Finalize` (provider)   | FINALIZED  | the consumer holds the agreement signed by both |
//!
//! Either side may send `Terminate { reason }` instead: TERMINATED.

use gaiamesh_protocol::{
    codec,
    federation::{FederationTrust, MembershipCredential},
    identity::{Keypair, PublicKey, Signature},
    time::UnixMillis,
};
use serde::{Deserialize, Serialize};

use crate::{
    asset::Asset,
    contract::{
        AGREEMENT_TTL_MS, Agreement, AgreementBody, ContractError, ContractRequest,
        MAX_MESSAGE_BYTES, registration_text,
    },
    policy::{self, Refusal},
};

/// A negotiation message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Consumer → provider.
    Request(ContractRequest),
    /// Provider → consumer: the body it proposes, signed.
    Offer {
        /// What the provider proposes.
        body: AgreementBody,
        /// Its signature.
        provider_signature: Signature,
    },
    /// Consumer → provider: its signature over the offered body.
    Agree {
        /// The consumer's signature.
        consumer_signature: Signature,
    },
    /// Provider → consumer: both signatures verified and the agreement recorded.
    Finalize,
    /// Either way: the negotiation ends.
    Terminate {
        /// Why.
        reason: String,
    },
}

impl Message {
    /// Encoded (length limit [`MAX_MESSAGE_BYTES`]).
    pub fn encode(&self) -> Result<Vec<u8>, ContractError> {
        Ok(codec::encode(
            "negotiation message",
            self,
            MAX_MESSAGE_BYTES,
        )?)
    }

    /// Decoded.
    pub fn decode(bytes: &[u8]) -> Result<Self, ContractError> {
        Ok(codec::decode(
            "negotiation message",
            bytes,
            MAX_MESSAGE_BYTES,
        )?)
    }

    /// The message's name.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Request(_) => "Request",
            Message::Offer { .. } => "Offer",
            Message::Agree { .. } => "Agree",
            Message::Finalize => "Finalize",
            Message::Terminate { .. } => "Terminate",
        }
    }
}

/// Dataspace Protocol negotiation states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// The consumer asked.
    Requested,
    /// The provider offered (and signed).
    Offered,
    /// The consumer signed.
    Agreed,
    /// The provider verified both signatures.
    Verified,
    /// Both hold the agreement.
    Finalized,
    /// Ended without an agreement.
    Terminated,
}

/// Why a negotiation ended without an agreement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The policy refuses the request.
    #[error("refused by the usage policy: {0}")]
    Policy(Refusal),
    /// The provider has no such asset.
    #[error("no asset {0:?} at this provider")]
    UnknownAsset(String),
    /// The consumer's membership credential is not accepted.
    #[error("membership credential: {0}")]
    Credential(String),
    /// The request or offer names someone else.
    #[error("{0}")]
    WrongParty(String),
    /// A message arrived that the current state does not allow.
    #[error("unexpected {got} in state {state:?}")]
    Unexpected {
        /// The state.
        state: State,
        /// The message.
        got: &'static str,
    },
    /// The other side terminated.
    #[error("terminated by the other side: {0}")]
    Terminated(String),
    /// A contract object is malformed, altered or forged.
    #[error(transparent)]
    Contract(#[from] ContractError),
}

impl NegotiationError {
    /// The reason as it goes into a `Terminate` message.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// What the provider knows when a request arrives.
#[derive(Debug)]
pub struct ProviderInputs<'a> {
    /// Its node key.
    pub key: &'a Keypair,
    /// The federation's trust (to verify the consumer's credential).
    pub trust: &'a FederationTrust,
    /// The node key of the peer on the other end of the stream.
    pub peer: PublicKey,
    /// The requested asset, if registered.
    pub asset: Option<&'a Asset>,
    /// Agreements this consumer already holds for this asset.
    pub transfers_so_far: u32,
    /// Now.
    pub now: UnixMillis,
}

/// The provider's side of one negotiation.
#[derive(Debug)]
pub struct ProviderNegotiation {
    state: Option<State>,
    offered: Option<(AgreementBody, Signature)>,
}

impl Default for ProviderNegotiation {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderNegotiation {
    /// Before the request.
    pub fn new() -> Self {
        Self {
            state: None,
            offered: None,
        }
    }

    /// The state reached (`None` before the request).
    pub fn state(&self) -> Option<State> {
        self.state
    }

    /// REQUESTED → OFFERED: verifies the credential, evaluates the policy and returns the
    /// signed offer to send; an error is sent as `Terminate`.
    pub fn on_request(
        &mut self,
        req: &ContractRequest,
        inp: &ProviderInputs<'_>,
    ) -> Result<Message, NegotiationError> {
        if self.state.is_some() {
            return Err(self.unexpected("Request"));
        }
        self.state = Some(State::Requested);
        let r = self.offer(req, inp);
        if r.is_err() {
            self.state = Some(State::Terminated);
        }
        r
    }

    fn offer(
        &mut self,
        req: &ContractRequest,
        inp: &ProviderInputs<'_>,
    ) -> Result<Message, NegotiationError> {
        if req.provider != inp.key.public() {
            return Err(NegotiationError::WrongParty(format!(
                "the request is addressed to {}, not this provider",
                req.provider.to_peer_id()
            )));
        }
        if req.consumer != inp.peer {
            return Err(NegotiationError::WrongParty(format!(
                "the request names consumer {} but came from {}",
                req.consumer.to_peer_id(),
                inp.peer.to_peer_id()
            )));
        }
        let cred = MembershipCredential::decode(&req.credential)
            .map_err(|e| NegotiationError::Credential(e.to_string()))?;
        let member = inp
            .trust
            .verify_credential(&cred, Some(&req.consumer), inp.now)
            .map_err(|e| NegotiationError::Credential(e.to_string()))?;
        let asset = inp
            .asset
            .filter(|a| a.id == req.asset)
            .ok_or_else(|| NegotiationError::UnknownAsset(req.asset.clone()))?;
        let registration = registration_text(&member.participant.registration);
        let consumer = policy::Consumer {
            peer_id: req.consumer.to_peer_id().to_string(),
            registration: registration.clone(),
            headquarters_country: member.participant.headquarters_country.clone(),
            roles: member.roles.clone(),
        };
        let request = policy::Request {
            purpose: req.purpose.clone(),
            onward_transfer: req.onward_transfer,
            transfers_so_far: inp.transfers_so_far,
            now: inp.now,
        };
        policy::evaluate(&asset.policy, &consumer, &request).map_err(NegotiationError::Policy)?;
        let policy_json = serde_json::to_vec(&asset.policy).unwrap_or_default();
        let body = AgreementBody {
            federation: inp.trust.id(),
            provider: inp.key.public(),
            consumer: req.consumer,
            consumer_registration: registration,
            asset: asset.id.clone(),
            manifest_blake3: asset.manifest_blake3.clone(),
            size: asset.size,
            files: u32::try_from(asset.files.len()).unwrap_or(u32::MAX),
            purpose: req.purpose.clone(),
            onward_transfer: req.onward_transfer,
            policy: asset.policy.summary(),
            policy_blake3: blake3::hash(&policy_json).to_hex().to_string(),
            nonce: req.nonce,
            agreed_at: inp.now,
            expires_at: inp.now.plus_ms(AGREEMENT_TTL_MS),
        };
        let provider_signature = body.sign(inp.key)?;
        self.offered = Some((body.clone(), provider_signature));
        self.state = Some(State::Offered);
        Ok(Message::Offer {
            body,
            provider_signature,
        })
    }

    /// OFFERED → AGREED → VERIFIED: checks the consumer's signature over exactly the
    /// offered body. The caller records the agreement, then sends [`Message::Finalize`]
    /// and calls [`ProviderNegotiation::finalized`].
    pub fn on_agree(
        &mut self,
        consumer_signature: Signature,
    ) -> Result<Agreement, NegotiationError> {
        let Some((body, provider_signature)) = self.offered.clone() else {
            return Err(self.unexpected("Agree"));
        };
        if self.state != Some(State::Offered) {
            return Err(self.unexpected("Agree"));
        }
        self.state = Some(State::Agreed);
        let agreement = Agreement {
            body,
            provider_signature,
            consumer_signature,
        };
        if let Err(e) = agreement.verify() {
            self.state = Some(State::Terminated);
            return Err(e.into());
        }
        self.state = Some(State::Verified);
        Ok(agreement)
    }

    /// VERIFIED → FINALIZED.
    pub fn finalized(&mut self) {
        if self.state == Some(State::Verified) {
            self.state = Some(State::Finalized);
        }
    }

    /// The consumer ended it.
    pub fn on_terminate(&mut self, reason: &str) -> NegotiationError {
        self.state = Some(State::Terminated);
        NegotiationError::Terminated(reason.to_owned())
    }

    fn unexpected(&mut self, got: &'static str) -> NegotiationError {
        let state = self.state.unwrap_or(State::Requested);
        self.state = Some(State::Terminated);
        NegotiationError::Unexpected { state, got }
    }
}

/// The consumer's side of one negotiation.
#[derive(Debug)]
pub struct ConsumerNegotiation {
    request: ContractRequest,
    state: State,
    agreement: Option<Agreement>,
}

impl ConsumerNegotiation {
    /// A request for `asset` from `provider` for `purpose`, presenting `credential`.
    pub fn new(
        key: &Keypair,
        provider: PublicKey,
        asset: &str,
        purpose: &str,
        onward_transfer: bool,
        credential: Vec<u8>,
        now: UnixMillis,
    ) -> Self {
        Self {
            request: ContractRequest {
                provider,
                consumer: key.public(),
                asset: asset.to_owned(),
                purpose: purpose.to_owned(),
                onward_transfer,
                nonce: rand::random(),
                requested_at: now,
                credential,
            },
            state: State::Requested,
            agreement: None,
        }
    }

    /// The first message to send.
    pub fn request(&self) -> Message {
        Message::Request(self.request.clone())
    }

    /// The state reached.
    pub fn state(&self) -> State {
        self.state
    }

    /// Handles the provider's message: an offer is checked and answered with `Agree`;
    /// `Finalize` returns the agreement; `Terminate` ends with its reason.
    pub fn on_message(
        &mut self,
        key: &Keypair,
        msg: Message,
        now: UnixMillis,
    ) -> Result<Step, NegotiationError> {
        let r = self.handle(key, msg, now);
        if r.is_err() {
            self.state = State::Terminated;
        }
        r
    }

    fn handle(
        &mut self,
        key: &Keypair,
        msg: Message,
        now: UnixMillis,
    ) -> Result<Step, NegotiationError> {
        match (self.state, msg) {
            (_, Message::Terminate { reason }) => Err(NegotiationError::Terminated(reason)),
            (
                State::Requested,
                Message::Offer {
                    body,
                    provider_signature,
                },
            ) => {
                let req = &self.request;
                let mismatch = [
                    (body.provider != req.provider, "offer.provider"),
                    (body.consumer != req.consumer, "offer.consumer"),
                    (body.asset != req.asset, "offer.asset"),
                    (body.purpose != req.purpose, "offer.purpose"),
                    (
                        body.onward_transfer != req.onward_transfer,
                        "offer.onward_transfer",
                    ),
                    (body.nonce != req.nonce, "offer.nonce"),
                    (body.expires_at <= now, "offer.expires_at"),
                ];
                if let Some((_, field)) = mismatch.iter().find(|(bad, _)| *bad) {
                    return Err(ContractError::Mismatch(field).into());
                }
                let consumer_signature = body.sign(key)?;
                let agreement = Agreement {
                    body,
                    provider_signature,
                    consumer_signature,
                };
                agreement.verify()?;
                self.agreement = Some(agreement);
                self.state = State::Agreed;
                Ok(Step::Send(Message::Agree { consumer_signature }))
            }
            (State::Agreed, Message::Finalize) => {
                self.state = State::Finalized;
                self.agreement
                    .clone()
                    .map(Step::Finalized)
                    .ok_or(NegotiationError::Unexpected {
                        state: State::Agreed,
                        got: "Finalize",
                    })
            }
            (state, m) => Err(NegotiationError::Unexpected {
                state,
                got: m.name(),
            }),
        }
    }
}

/// What the consumer does next.
#[derive(Debug)]
pub enum Step {
    /// Send this message and wait for the next.
    Send(Message),
    /// Done: the agreement signed by both.
    Finalized(Agreement),
}
