//! Secret keys on disk: written with mode 0600 (never overwritten), and refused when the file
//! is readable by group or others, as ssh does.

use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use gaiamesh_protocol::identity::{Keypair, SecretKeyError};

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The file exists already; keys are never overwritten.
    #[error("{0} exists already; refusing to overwrite a key")]
    Exists(PathBuf),
    /// The file is readable or writable by others.
    #[error(
        "{path} has mode {mode:o}; a secret key must not be accessible to others (chmod 600 {path})"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The content is not a key.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SecretKeyError,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes `key` to a new file at `path` with mode 0600.
pub fn write_new(path: &Path, key: &Keypair) -> Result<(), KeystoreError> {
    let io = |source| KeystoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeystoreError::Exists(path.to_owned()),
            _ => io(e),
        })?;
    file.write_all(key.to_secret_text().as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a key file, refusing files accessible to group or others.
pub fn read(path: &Path) -> Result<Keypair, KeystoreError> {
    let io = |source| KeystoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeystoreError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(io)?);
    Keypair::from_secret_text(&text).map_err(|source| KeystoreError::Format {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = Keypair::generate();
        write_new(&path, &key).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(&path).unwrap().public(), key.public());
        assert!(matches!(
            write_new(&path, &Keypair::generate()),
            Err(KeystoreError::Exists(_))
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&path).unwrap_err();
        assert!(err.to_string().contains("mode 644"), "{err}");
        fs::write(dir.path().join("junk"), "hello").unwrap();
        fs::set_permissions(dir.path().join("junk"), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read(&dir.path().join("junk")),
            Err(KeystoreError::Format { .. })
        ));
    }
}
