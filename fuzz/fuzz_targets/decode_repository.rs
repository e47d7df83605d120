#![no_main]
//! Repository bundles from arbitrary bytes, applied to a client that trusts a real root, and
//! each role's metadata decoded on its own.

use gaiamesh_protocol::{
    repository::{
        TrustedRepository,
        metadata::{Bundle, Root, Signed, Snapshot, Targets, Timestamp},
        publish,
    },
    testing::{NOW, genesis_with_repository_keys},
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static CLIENT: OnceLock<TrustedRepository> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let base = CLIENT.get_or_init(|| {
        let (genesis, keys) = genesis_with_repository_keys(2, 1);
        let mut c = TrustedRepository::new(&genesis);
        let root = publish::initial_root(&genesis, NOW, publish::DAY_MS, &[&keys[0]])
            .expect("root");
        c.update_root(root).expect("trust root");
        c
    });
    if let Ok(bundle) = Bundle::decode(data) {
        let mut c = base.clone();
        let _ = c.apply(&bundle, NOW);
    }
    let _ = Signed::<Root>::decode(data);
    let _ = Signed::<Targets>::decode(data);
    let _ = Signed::<Snapshot>::decode(data);
    let _ = Signed::<Timestamp>::decode(data);
});
