//! Transfers under an agreement: the messages of `/gaiamesh/transfer/1`, the provider's
//! authorization check (pure), and the consumer's side on disk — a staging file hashed as it
//! is written, resumed from its verified length, renamed into place only when its BLAKE3
//! matches the agreed manifest.
//!
//! One stream carries one request: the manifest, one file from an offset, or the receipt.
//! The answer is a length-prefixed [`Reply`] header, then (for `Ok`) exactly `len` raw bytes.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Component, Path, PathBuf},
};

use gaiamesh_protocol::{codec, identity::PublicKey, time::UnixMillis};
use serde::{Deserialize, Serialize};

use crate::{
    asset::{AssetFile, MAX_FILES, manifest_hash},
    contract::{Agreement, AgreementId, ContractError, Receipt},
};

/// Largest encoded request (an agreement, or a receipt).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Largest encoded reply header.
pub const MAX_REPLY_BYTES: usize = 4096;
/// Largest encoded manifest (100,000 files with long paths).
pub const MAX_MANIFEST_BYTES: usize = 32 * 1024 * 1024;

/// What a consumer asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferRequest {
    /// The asset's file list.
    Manifest {
        /// The agreement it is under.
        agreement: Box<Agreement>,
    },
    /// One file's bytes from `offset` to its end.
    File {
        /// The agreement it is under.
        agreement: Box<Agreement>,
        /// Index in the manifest.
        index: u32,
        /// Where to start (a resumed transfer's verified length).
        offset: u64,
    },
    /// The consumer's receipt once everything arrived and verified.
    Receipt {
        /// The receipt.
        receipt: Box<Receipt>,
    },
    /// Run an algorithm on the asset; the provider answers with [`Reply::Ok`] and `len`
    /// bytes of an encoded [`crate::compute::UsageRecord`] followed by the result (its
    /// length in the record), or [`Reply::Refused`].
    Compute(Box<crate::compute::JobRequest>),
    /// The consumer's countersigned usage record of a job.
    Usage {
        /// The record, signed by both.
        record: Box<crate::compute::UsageRecord>,
    },
}

impl TransferRequest {
    /// Encoded.
    pub fn encode(&self) -> Result<Vec<u8>, ContractError> {
        Ok(codec::encode("transfer request", self, MAX_REQUEST_BYTES)?)
    }

    /// Decoded.
    pub fn decode(bytes: &[u8]) -> Result<Self, ContractError> {
        Ok(codec::decode("transfer request", bytes, MAX_REQUEST_BYTES)?)
    }
}

/// The provider's answer header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `len` bytes follow.
    Ok {
        /// How many.
        len: u64,
    },
    /// Refused.
    Refused {
        /// Why.
        reason: String,
    },
}

impl Reply {
    /// Encoded.
    pub fn encode(&self) -> Result<Vec<u8>, ContractError> {
        Ok(codec::encode("transfer reply", self, MAX_REPLY_BYTES)?)
    }

    /// Decoded.
    pub fn decode(bytes: &[u8]) -> Result<Self, ContractError> {
        Ok(codec::decode("transfer reply", bytes, MAX_REPLY_BYTES)?)
    }
}

/// Why a provider refuses a transfer request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferRefusal {
    /// Forged or altered.
    #[error("agreement: {0}")]
    Agreement(#[from] ContractError),
    /// Not this provider's, or not this consumer's.
    #[error("{0}")]
    WrongParty(String),
    /// Signed correctly but not in this provider's log.
    #[error("agreement {0} was not made by this provider (not in its audit log)")]
    Unknown(AgreementId),
    /// Past its window.
    #[error("agreement expired at {0}")]
    Expired(UnixMillis),
}

/// The provider's check of a request's agreement: both signatures, the parties, its own
/// record of it (`recorded`, looked up by id in its audit log), the window.
pub fn authorize(
    agreement: &Agreement,
    me: &PublicKey,
    peer: &PublicKey,
    recorded: Option<&Agreement>,
    now: UnixMillis,
) -> Result<AgreementId, TransferRefusal> {
    let id = agreement.verify()?;
    if agreement.body.provider != *me {
        return Err(TransferRefusal::WrongParty(
            "the agreement names another provider".into(),
        ));
    }
    if agreement.body.consumer != *peer {
        return Err(TransferRefusal::WrongParty(format!(
            "the agreement is for consumer {}, the request came from {}",
            agreement.body.consumer.to_peer_id(),
            peer.to_peer_id()
        )));
    }
    if recorded != Some(agreement) {
        return Err(TransferRefusal::Unknown(id));
    }
    if now > agreement.body.expires_at {
        return Err(TransferRefusal::Expired(agreement.body.expires_at));
    }
    Ok(id)
}

/// Why a download failed on the consumer's side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The manifest is not the agreed one.
    #[error("the provider's manifest does not match the agreement: {0}")]
    Manifest(String),
    /// Bytes did not hash to the agreed BLAKE3.
    #[error(
        "{path}: received bytes do not match the agreed BLAKE3 (expected {expected}, got {got}); the staged copy was deleted"
    )]
    Tampered {
        /// The file.
        path: String,
        /// Agreed.
        expected: String,
        /// Received.
        got: String,
    },
    /// More bytes than the file has.
    #[error("{0}: the provider sent more bytes than the agreed size")]
    Oversize(String),
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Checks a provider's manifest against the agreement (hash, size, count) and that every
/// path is relative and stays inside the destination.
pub fn check_manifest(files: &[AssetFile], agreement: &Agreement) -> Result<(), DownloadError> {
    let body = &agreement.body;
    let bad = |m: String| Err(DownloadError::Manifest(m));
    if files.len() > MAX_FILES || files.len() != body.files as usize {
        return bad(format!(
            "{} files, the agreement says {}",
            files.len(),
            body.files
        ));
    }
    if manifest_hash(files) != body.manifest_blake3 {
        return bad("manifest hash differs".into());
    }
    let size: u64 = files.iter().map(|f| f.size).sum();
    if size != body.size {
        return bad(format!("{size} bytes, the agreement says {}", body.size));
    }
    let single = files.len() == 1 && files[0].path.is_empty();
    if !single {
        for f in files {
            safe_relative(&f.path).map_err(|e| DownloadError::Manifest(e.to_string()))?;
        }
    }
    Ok(())
}

/// A manifest path that could leave its root, or name no file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafePath {
    /// Empty, or with a backslash or a NUL byte.
    #[error("unsafe path {0:?}")]
    Characters(String),
    /// Absolute, or with `..` or `.`.
    #[error("unsafe path {0:?} (absolute or with ..)")]
    Component(String),
}

/// A manifest path as a relative path that cannot leave its root.
pub fn safe_relative(p: &str) -> Result<PathBuf, UnsafePath> {
    let path = Path::new(p);
    if p.is_empty() || p.contains('\\') || p.contains('\0') {
        return Err(UnsafePath::Characters(p.to_string()));
    }
    for c in path.components() {
        if !matches!(c, Component::Normal(_)) {
            return Err(UnsafePath::Component(p.to_string()));
        }
    }
    Ok(path.to_owned())
}

/// Where the files of a download are staged and where they end up.
#[derive(Clone, Debug)]
pub struct Destination {
    /// The final path (a file, or a directory for a directory asset).
    pub out: PathBuf,
    /// `OUT.part`: the staging file or directory.
    pub staging: PathBuf,
    /// `OUT.agreement`: the agreement, kept until the download completes (for resuming).
    pub agreement: PathBuf,
}

impl Destination {
    /// For `out`.
    pub fn new(out: &Path) -> Self {
        let with = |ext: &str| {
            let mut s = out.as_os_str().to_owned();
            s.push(ext);
            PathBuf::from(s)
        };
        Self {
            out: out.to_owned(),
            staging: with(".part"),
            agreement: with(".agreement"),
        }
    }

    /// The staging path of one manifest file.
    pub fn staged(&self, file: &AssetFile) -> Result<PathBuf, DownloadError> {
        if file.path.is_empty() {
            Ok(self.staging.clone())
        } else {
            let rel =
                safe_relative(&file.path).map_err(|e| DownloadError::Manifest(e.to_string()))?;
            Ok(self.staging.join(rel))
        }
    }

    /// The agreement a previous, interrupted download left, if it is for `provider` and
    /// `asset` and still valid at `now`.
    pub fn pending_agreement(
        &self,
        provider: &PublicKey,
        asset: &str,
        now: UnixMillis,
    ) -> Option<Agreement> {
        let bytes = std::fs::read(&self.agreement).ok()?;
        let a = Agreement::decode(&bytes).ok()?;
        (a.verify().is_ok()
            && a.body.provider == *provider
            && a.body.asset == asset
            && a.body.expires_at > now)
            .then_some(a)
    }

    /// Keeps `agreement` next to the staging path.
    pub fn keep_agreement(&self, agreement: &Agreement) -> Result<(), DownloadError> {
        let bytes = agreement
            .encode()
            .map_err(|e| DownloadError::Manifest(e.to_string()))?;
        if let Some(parent) = self.agreement.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&self.agreement, bytes).map_err(io(&self.agreement))
    }

    /// Moves the verified staging path into place and drops the kept agreement.
    pub fn complete(&self) -> Result<(), DownloadError> {
        if self.out.exists() {
            let r = if self.out.is_dir() {
                std::fs::remove_dir_all(&self.out)
            } else {
                std::fs::remove_file(&self.out)
            };
            r.map_err(io(&self.out))?;
        }
        std::fs::rename(&self.staging, &self.out).map_err(io(&self.staging))?;
        let _ = std::fs::remove_file(&self.agreement);
        Ok(())
    }
}

/// One file being received: staged at its path, hashed as it is written.
#[derive(Debug)]
pub struct Incoming {
    path: PathBuf,
    file: File,
    hasher: blake3::Hasher,
    written: u64,
    size: u64,
    expected: String,
    label: String,
}

impl Incoming {
    /// Opens the staged file at `path` for `file`: an existing prefix is hashed and kept
    /// (the offset to resume from); a staged file longer than the agreed size starts over.
    pub fn open(path: &Path, file: &AssetFile) -> Result<Self, DownloadError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        let mut len = f.metadata().map_err(io(path))?.len();
        if len > file.size {
            f.set_len(0).map_err(io(path))?;
            len = 0;
        }
        let mut hasher = blake3::Hasher::new();
        f.seek(SeekFrom::Start(0)).map_err(io(path))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = f.read(&mut buf[..want]).map_err(io(path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        f.seek(SeekFrom::Start(len)).map_err(io(path))?;
        Ok(Self {
            path: path.to_owned(),
            file: f,
            hasher,
            written: len,
            size: file.size,
            expected: file.blake3.clone(),
            label: if file.path.is_empty() {
                path.display().to_string()
            } else {
                file.path.clone()
            },
        })
    }

    /// Bytes already staged (where to resume).
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// Whether every byte is staged.
    pub fn is_full(&self) -> bool {
        self.written == self.size
    }

    /// Appends received bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), DownloadError> {
        if self.written + bytes.len() as u64 > self.size {
            return Err(DownloadError::Oversize(self.label.clone()));
        }
        self.hasher.update(bytes);
        self.file.write_all(bytes).map_err(io(&self.path))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Checks the hash once every byte is staged, and syncs the file; on a mismatch the
    /// staged file is deleted (its bytes cannot be trusted, nor resumed from).
    pub fn finish(self) -> Result<(), DownloadError> {
        let got = self.hasher.finalize().to_hex().to_string();
        if self.written != self.size || got != self.expected {
            drop(self.file);
            let _ = std::fs::remove_file(&self.path);
            return Err(DownloadError::Tampered {
                path: self.label,
                expected: self.expected,
                got: if self.written == self.size {
                    got
                } else {
                    format!("{} of {} bytes", self.written, self.size)
                },
            });
        }
        self.file.sync_all().map_err(io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(data: &[u8]) -> AssetFile {
        AssetFile {
            path: String::new(),
            size: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
        }
    }

    #[test]
    fn a_staged_file_resumes_from_its_length_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let f = file_of(&data);
        let path = dir.path().join("x.part");
        let mut inc = Incoming::open(&path, &f).unwrap();
        assert_eq!(inc.offset(), 0);
        inc.write(&data[..123_456]).unwrap();
        drop(inc); // the connection dropped
        let mut inc = Incoming::open(&path, &f).unwrap();
        assert_eq!(inc.offset(), 123_456);
        inc.write(&data[123_456..]).unwrap();
        assert!(inc.is_full());
        assert!(matches!(inc.write(b"x"), Err(DownloadError::Oversize(_))));
        inc.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn tampered_bytes_are_detected_and_the_staged_copy_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![7u8; 50_000];
        let f = file_of(&data);
        let path = dir.path().join("y.part");
        let mut inc = Incoming::open(&path, &f).unwrap();
        let mut bad = data.clone();
        bad[40_000] ^= 1;
        inc.write(&bad).unwrap();
        let e = inc.finish().unwrap_err();
        assert!(matches!(e, DownloadError::Tampered { .. }), "{e}");
        assert!(!path.exists());
        // A short transfer is no verified one either.
        let mut inc = Incoming::open(&path, &f).unwrap();
        inc.write(&data[..10]).unwrap();
        assert!(matches!(inc.finish(), Err(DownloadError::Tampered { .. })));
    }

    #[test]
    fn unsafe_manifest_paths_are_refused() {
        for p in ["../etc/passwd", "/etc/passwd", "a/../../b", "", "a\\b"] {
            assert!(safe_relative(p).is_err(), "{p}");
        }
        assert!(safe_relative("a/b/c.csv").is_ok());
    }
}
