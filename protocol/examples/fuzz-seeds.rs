//! Writes valid encodings of every wire type as fuzz seeds: `fuzz-seeds DIR`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{fs, path::PathBuf};

use gaiamesh_protocol::{
    federation::{RevocationBody, RevocationList},
    identity::Keypair,
    repository::{metadata::Category, publish},
    sd::SCHEMA_VERSION,
    testing::{DOCUMENT_TOML, NOW, TestFederation, key},
};

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: fuzz-seeds DIR"));
    let f = TestFederation::new(3, 2, true);
    let node = key(1);
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = out.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    };
    write(
        "decode_signed_sd",
        "seed-sd",
        &f.signed_sd(&node, 1).encode().unwrap(),
    );
    write(
        "decode_credential",
        "seed-cred",
        &f.credential(&node, 3).encode().unwrap(),
    );
    write(
        "decode_attestation",
        "seed-att",
        &f.attestation(&node, "C5").encode().unwrap(),
    );
    let body = RevocationBody {
        schema_version: SCHEMA_VERSION,
        federation: f.trust.id(),
        version: 1,
        issued_at: NOW,
        revoked: vec![],
    };
    let keys: Vec<&Keypair> = f.authorities.iter().collect();
    write(
        "decode_revocation_list",
        "seed-rev",
        &RevocationList::issue(body, &keys)
            .unwrap()
            .encode()
            .unwrap(),
    );
    write(
        "decode_genesis",
        "seed-genesis",
        &f.trust.genesis().encode().unwrap(),
    );
    write(
        "decode_genesis",
        "seed-genesis-toml",
        f.trust.genesis().to_toml().unwrap().as_bytes(),
    );
    write("parse_documents", "seed-sd-toml", DOCUMENT_TOML.as_bytes());
    let recon = gaiamesh_protocol::reconcile::ReconcileMessage {
        salt: [9; 8],
        parts: vec![gaiamesh_protocol::reconcile::Part::Split {
            prefix: gaiamesh_protocol::reconcile::Prefix::root(),
            nonempty: 0b101,
            fingerprints: vec![[1; 4], [2; 4]],
        }],
    };
    write("decode_reconcile", "seed-split", &recon.encode().unwrap());
    write(
        "parse_query",
        "seed-query",
        b"service.kind = storage.object and service.data_location in [DE, AT] and not node.kind = edge",
    );
    write(
        "parse_documents",
        "seed-cred-toml",
        f.credential(&node, 2).to_toml().unwrap().as_bytes(),
    );
    // The fuzz target's client trusts root v1 of these keys; a release bundle for it.
    let (genesis, rkeys) = gaiamesh_protocol::testing::genesis_with_repository_keys(2, 1);
    let mut repo = gaiamesh_protocol::repository::TrustedRepository::new(&genesis);
    let root = publish::initial_root(&genesis, NOW, publish::DAY_MS, &[&rkeys[0]]).unwrap();
    write("decode_repository", "seed-root", &root.bytes);
    repo.update_root(root).unwrap();
    let info = publish::target_info(b"component", Category::Mandatory, None);
    let bundle = publish::release(
        &repo,
        &[("identity/bridge@1.0".parse().unwrap(), info)],
        NOW,
        publish::DAY_MS,
        &[&rkeys[0]],
    )
    .unwrap();
    write(
        "decode_repository",
        "seed-bundle",
        &bundle.encode().unwrap(),
    );
}
