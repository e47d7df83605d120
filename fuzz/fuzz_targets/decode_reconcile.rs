#![no_main]
//! Reconciliation messages from arbitrary bytes, answered by a responder holding a small set
//! and fed to an initiator: neither may panic or exceed the message limits.

use gaiamesh_directory::reconcile::{Initiator, Item, ReconcileSet, respond};
use gaiamesh_protocol::reconcile::ReconcileMessage;
use libfuzzer_sys::fuzz_target;

fn set() -> ReconcileSet {
    ReconcileSet::new(
        (0..200u8)
            .map(|i| Item {
                key: [i.wrapping_mul(37); 32],
                id: [i; 16],
            })
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = ReconcileMessage::decode(data) {
        let s = set();
        if let Ok(reply) = respond(&s, &msg) {
            assert!(
                reply.encode().is_ok(),
                "a response must fit the message limit"
            );
        }
        // The message's own salt, so the initiator reads its parts rather than refusing it.
        let (mut init, _) = Initiator::start(s, msg.salt);
        let _ = init.handle(&msg);
    }
});
