#![no_main]
//! Data-exchange wire input from arbitrary bytes: negotiation messages (a request runs
//! through the provider's state machine), transfer requests (their agreement through the
//! provider's authorization), reply headers, and usage-policy text.

use gaiamesh_exchange::{
    asset::{Asset, AssetFile, manifest_hash},
    negotiation::{Message, ProviderInputs, ProviderNegotiation},
    policy::Policy,
    transfer::{Reply, TransferRequest, authorize},
};
use gaiamesh_protocol::testing::{NOW, TestFederation, key};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static FED: OnceLock<(TestFederation, Asset)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (fed, asset) = FED.get_or_init(|| {
        let files = vec![AssetFile {
            path: String::new(),
            size: 3,
            blake3: blake3::hash(b"abc").to_hex().to_string(),
        }];
        let asset = Asset {
            id: "a".into(),
            path: "/nonexistent".into(),
            directory: false,
            manifest_blake3: manifest_hash(&files),
            files,
            size: 3,
            policy: Policy::default(),
            added_at: NOW,
        };
        (TestFederation::new(3, 2, true), asset)
    });
    let provider = key(1);
    if let Ok(Message::Request(req)) = Message::decode(data) {
        let _ = ProviderNegotiation::new().on_request(
            &req,
            &ProviderInputs {
                key: &provider,
                trust: &fed.trust,
                peer: req.consumer,
                asset: Some(asset),
                transfers_so_far: 0,
                now: NOW,
            },
        );
    }
    if let Ok(TransferRequest::File { agreement, .. } | TransferRequest::Manifest { agreement }) =
        TransferRequest::decode(data)
    {
        let _ = authorize(&agreement, &provider.public(), &agreement.body.consumer, None, NOW);
    }
    let _ = Reply::decode(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Policy::parse(text);
    }
});
