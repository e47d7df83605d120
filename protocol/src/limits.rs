//! Size limits for every wire type. Each limit is enforced before a value is stored or
//! forwarded; decoders check the input length before they allocate.

/// Largest encoded signed self-description, in bytes.
pub const MAX_SD_BYTES: usize = 32 * 1024;
/// Largest encoded membership credential, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;
/// Largest encoded attestation, in bytes.
pub const MAX_ATTESTATION_BYTES: usize = 2 * 1024;
/// Largest encoded genesis, in bytes.
pub const MAX_GENESIS_BYTES: usize = 64 * 1024;
/// Largest encoded revocation list, in bytes.
pub const MAX_REVOCATION_LIST_BYTES: usize = 1024 * 1024;
/// Largest human document (TOML or JSON) accepted as input, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Longest short string (names, ids, codes, units), in bytes.
pub const MAX_SHORT_STRING: usize = 128;
/// Longest free-text string (descriptions, addresses, URLs), in bytes.
pub const MAX_TEXT_STRING: usize = 1024;
/// Most services in one self-description.
pub const MAX_SERVICES: usize = 64;
/// Most keywords per service.
pub const MAX_KEYWORDS: usize = 16;
/// Most certifications per service.
pub const MAX_CERTIFICATIONS: usize = 16;
/// Most countries in a location list.
pub const MAX_COUNTRIES: usize = 32;
/// Most registration numbers of a participant.
pub const MAX_REGISTRATIONS: usize = 8;
/// Most network addresses a node announces.
pub const MAX_ADDRESSES: usize = 16;
/// Most GPU entries in a hardware description.
pub const MAX_GPU_KINDS: usize = 8;
/// Most data-export entries per service.
pub const MAX_DATA_EXPORTS: usize = 8;
/// Most attestations embedded in one self-description.
pub const MAX_EMBEDDED_ATTESTATIONS: usize = 16;
/// Most extension entries (unmapped properties kept from imported documents).
pub const MAX_EXTENSIONS: usize = 32;
/// Most PeerIds one membership credential binds.
pub const MAX_CREDENTIAL_PEERS: usize = 16;
/// Most roles in one membership credential.
pub const MAX_ROLES: usize = 8;
/// Most signatures carried by a threshold-signed object.
pub const MAX_SIGNATURES: usize = 32;
/// Most keys in any key set of a genesis (authorities, certifiers, repository roots).
pub const MAX_KEYSET: usize = 32;
/// Most bootstrap addresses in a genesis.
pub const MAX_BOOTSTRAP: usize = 64;
/// Most entries in one revocation list.
pub const MAX_REVOCATIONS: usize = 8192;
/// Longest validity of a self-description: 7 days, in milliseconds.
pub const MAX_SD_VALIDITY_MS: u64 = 7 * 24 * 3600 * 1000;
/// Tolerated clock skew for documents issued "in the future", in milliseconds.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// Largest encoded signed repository root metadata, in bytes.
pub const MAX_ROOT_BYTES: usize = 64 * 1024;
/// Largest encoded signed repository targets metadata, in bytes.
pub const MAX_TARGETS_BYTES: usize = 256 * 1024;
/// Largest encoded signed snapshot or timestamp metadata, in bytes.
pub const MAX_SNAPSHOT_BYTES: usize = 4 * 1024;
/// Most targets in the repository.
pub const MAX_TARGETS: usize = 1024;
/// Most root versions walked in one update (or carried in one bundle).
pub const MAX_ROOT_CHAIN: usize = 64;
/// Largest blob a target may describe: 64 GiB.
pub const MAX_BLOB_BYTES: u64 = 64 * 1024 * 1024 * 1024;
/// Longest target name (`name@version`), in bytes.
pub const MAX_TARGET_NAME: usize = 160;
