//! The provider's journal of running compute jobs, so that a restart never loses one
//! silently and never runs one twice: each job is written to `compute/running/` before its
//! algorithm starts and removed when its usage record is made. A node that finds entries
//! there when it starts was stopped mid-job; it signs a usage record saying so (outcome
//! `interrupted: …`, no result) for each, appends it to the audit log and removes the entry.
//! The job is not run again: its consumer saw the connection close and decides itself
//! (`gaiamesh compute run --query` tries the next provider).

use std::path::{Path, PathBuf};

use gaiamesh_exchange::compute::UsageBody;

/// The directory under the data dir.
const DIR: &str = "compute/running";
/// Entries read at start-up at most (more are left for the next start, and logged).
const MAX_RECOVERED: usize = 10_000;
/// The largest entry read.
const MAX_ENTRY_BYTES: u64 = 256 * 1024;

/// Why a journal entry could not be kept or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    /// The file system refused.
    #[error("compute journal {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An entry that is not a usage body (written by something else, or cut short).
    #[error("compute journal {path}: not a job entry: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One job's entry; removing it ends the entry.
#[derive(Debug)]
pub(crate) struct Entry {
    path: PathBuf,
}

impl Entry {
    /// Writes `body` (the job as it starts) under `root` as entry `key`, durably: it must
    /// be there if the node dies during the run. Blocking.
    pub(crate) fn begin(root: &Path, key: &str, body: &UsageBody) -> Result<Self, JournalError> {
        let dir = root.join(DIR);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("{key}.json"));
        let bytes = serde_json::to_vec(body).map_err(|e| JournalError::Malformed {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(Self { path })
    }

    /// The job ended (its record is made): the entry goes. Blocking.
    pub(crate) fn end(self) -> Result<(), JournalError> {
        std::fs::remove_file(&self.path).map_err(io(&self.path))
    }
}

/// The jobs a previous run of the node left in its journal under `root`: each body with its
/// entry's path (remove it once recorded, [`set_aside`] it when unreadable). Blocking.
pub(crate) fn leftovers(root: &Path) -> Vec<(PathBuf, Result<UsageBody, JournalError>)> {
    let dir = root.join(DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        // (a `.tmp` is an entry whose write did not finish: its job never started)
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    found.sort();
    found.truncate(MAX_RECOVERED);
    found
        .into_iter()
        .map(|path| {
            let body = read(&path);
            (path, body)
        })
        .collect()
}

/// Keeps an unreadable entry for the operator under another name, so that it is not read
/// again at every start. Blocking.
pub(crate) fn set_aside(path: &Path) -> Result<(), JournalError> {
    std::fs::rename(path, path.with_extension("unreadable")).map_err(io(path))
}

/// Removes a recorded entry. Blocking.
pub(crate) fn remove(path: &Path) -> Result<(), JournalError> {
    std::fs::remove_file(path).map_err(io(path))
}

fn read(path: &Path) -> Result<UsageBody, JournalError> {
    let malformed = |reason: String| JournalError::Malformed {
        path: path.display().to_string(),
        reason,
    };
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    if len > MAX_ENTRY_BYTES {
        return Err(malformed(format!("{len} bytes, at most {MAX_ENTRY_BYTES}")));
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use gaiamesh_exchange::{compute::UsageBody, contract::AgreementId, metering::Usage};
    use gaiamesh_protocol::{identity::Keypair, time::UnixMillis};

    use super::{Entry, leftovers};

    fn body() -> UsageBody {
        let key = Keypair::generate();
        UsageBody {
            agreement: AgreementId([7; 32]),
            provider: key.public(),
            consumer: Keypair::generate().public(),
            asset: "weather".into(),
            algorithm: "column-stats@1.0.0".into(),
            algorithm_blake3: "ab".repeat(32),
            args: vec!["temperature".into()],
            outcome: String::new(),
            result_blake3: String::new(),
            usage: Usage::default(),
            charge: None,
            started_at: UnixMillis(1),
            finished_at: UnixMillis(1),
        }
    }

    #[test]
    fn an_entry_outlives_a_crash_and_goes_when_the_job_ends() {
        let dir = tempfile::tempdir().unwrap();
        let done = Entry::begin(dir.path(), "a-1", &body()).unwrap();
        let _crashed = Entry::begin(dir.path(), "a-2", &body()).unwrap();
        done.end().unwrap();
        let left = leftovers(dir.path());
        assert_eq!(left.len(), 1);
        assert!(left[0].0.ends_with("a-2.json"));
        let recovered = left[0].1.as_ref().unwrap();
        assert_eq!(recovered.asset, "weather");
        assert_eq!(recovered.args, ["temperature"]);
        // garbage is reported with its path, not fatal
        std::fs::write(dir.path().join("compute/running/x.json"), b"{").unwrap();
        let left = leftovers(dir.path());
        assert_eq!(left.len(), 2);
        let err = left[1].1.as_ref().unwrap_err().to_string();
        assert!(
            err.contains("x.json") && err.contains("not a job entry"),
            "{err}"
        );
        assert!(leftovers(&dir.path().join("nowhere")).is_empty());
    }
}
