//! The provider's assets: files or directories registered with an id and a usage policy,
//! hashed with BLAKE3 when added so transfers can be verified, kept in
//! `DATA_DIR/assets.json` (written atomically).

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
};

use gaiamesh_protocol::time::UnixMillis;
use serde::{Deserialize, Serialize};

use crate::policy::{Policy, PolicyError};

/// Most assets one node registers.
pub const MAX_ASSETS: usize = 1024;
/// Most files in a directory asset.
pub const MAX_FILES: usize = 100_000;

/// One file of an asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssetFile {
    /// Path relative to the asset's root (`/`-separated); empty for a single-file asset.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content, hex.
    pub blake3: String,
}

/// A registered asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Asset {
    /// Its id (also the id of its `data.resource` service).
    pub id: String,
    /// Where it is (absolute). The API shows it only to the operator (with the token).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub path: PathBuf,
    /// Whether `path` is a directory.
    pub directory: bool,
    /// Its files, sorted by path.
    pub files: Vec<AssetFile>,
    /// BLAKE3 over the sorted `path\0size\0blake3\n` lines: one hash for the whole asset.
    pub manifest_blake3: String,
    /// Total bytes.
    pub size: u64,
    /// The usage policy.
    pub policy: Policy,
    /// When it was registered.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub added_at: UnixMillis,
}

/// Why an asset operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// Bad id.
    #[error("asset id {0:?} must be 1–64 letters, digits or . _ + -")]
    BadId(String),
    /// Id in use.
    #[error("asset {0:?} exists; remove it first or choose another id")]
    Exists(String),
    /// Not registered.
    #[error("no asset {0:?}")]
    Unknown(String),
    /// Too many.
    #[error("{0}")]
    Limit(String),
    /// The policy is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A path that is not a regular file or directory (symlinks are not followed).
    #[error("{0}: not a regular file or directory (links are not followed)")]
    NotRegular(PathBuf),
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
    /// The registry file is corrupt.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AssetError + '_ {
    move |source| AssetError::Io {
        path: path.to_owned(),
        source,
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// BLAKE3 and size of a file, read in 1 MiB blocks.
pub fn hash_file(path: &Path) -> Result<(u64, String), AssetError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, h.finalize().to_hex().to_string()))
}

fn walk(root: &Path, rel: &str, out: &mut Vec<AssetFile>) -> Result<(), AssetError> {
    let dir = if rel.is_empty() {
        root.to_owned()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .collect::<Result<_, _>>()
        .map_err(io(&dir))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let t = e.file_type().map_err(io(&e.path()))?;
        if t.is_dir() {
            walk(root, &child, out)?;
        } else if t.is_file() {
            if out.len() >= MAX_FILES {
                return Err(AssetError::Limit(format!(
                    "{}: more than {MAX_FILES} files",
                    root.display()
                )));
            }
            let (size, blake3) = hash_file(&e.path())?;
            out.push(AssetFile {
                path: child,
                size,
                blake3,
            });
        } else {
            return Err(AssetError::NotRegular(e.path()));
        }
    }
    Ok(())
}

/// The manifest hash of sorted files: BLAKE3 over their `path\0size\0blake3\n` lines.
pub fn manifest_hash(files: &[AssetFile]) -> String {
    let mut h = blake3::Hasher::new();
    for f in files {
        h.update(format!("{}\0{}\0{}\n", f.path, f.size, f.blake3).as_bytes());
    }
    h.finalize().to_hex().to_string()
}

impl Asset {
    /// Whether its policy offers it for computation only (never transferred).
    pub fn compute_only(&self) -> bool {
        self.policy.compute.as_ref().is_some_and(|c| c.only)
    }

    /// Hashes `path` (a file, or a directory walked recursively without following links)
    /// into an asset.
    pub fn scan(
        id: &str,
        path: &Path,
        policy: Policy,
        now: UnixMillis,
    ) -> Result<Self, AssetError> {
        if !valid_id(id) {
            return Err(AssetError::BadId(id.to_owned()));
        }
        policy.validate()?;
        let path = std::fs::canonicalize(path).map_err(io(path))?;
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let mut files = Vec::new();
        let directory = meta.is_dir();
        if directory {
            walk(&path, "", &mut files)?;
        } else if meta.is_file() {
            let (size, blake3) = hash_file(&path)?;
            files.push(AssetFile {
                path: String::new(),
                size,
                blake3,
            });
        } else {
            return Err(AssetError::NotRegular(path));
        }
        Ok(Self {
            id: id.to_owned(),
            manifest_blake3: manifest_hash(&files),
            size: files.iter().map(|f| f.size).sum(),
            files,
            directory,
            path,
            policy,
            added_at: now,
        })
    }
}

/// The registry's file name inside the data dir.
pub const REGISTRY_FILE: &str = "assets.json";

/// The registry in `DATA_DIR/assets.json`.
#[derive(Debug)]
pub struct Registry {
    file: PathBuf,
    assets: BTreeMap<String, Asset>,
}

impl Registry {
    /// Opens (or starts) the registry of the data dir at `root`.
    pub fn open(root: &Path) -> Result<Self, AssetError> {
        let file = root.join(REGISTRY_FILE);
        let assets = match std::fs::read(&file) {
            Ok(bytes) => {
                let list: Vec<Asset> =
                    serde_json::from_slice(&bytes).map_err(|e| AssetError::Corrupt {
                        path: file.clone(),
                        reason: e.to_string(),
                    })?;
                list.into_iter().map(|a| (a.id.clone(), a)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(&file)(e)),
        };
        Ok(Self { file, assets })
    }

    /// Every asset, by id.
    pub fn list(&self) -> impl Iterator<Item = &Asset> {
        self.assets.values()
    }

    /// One asset.
    pub fn get(&self, id: &str) -> Option<&Asset> {
        self.assets.get(id)
    }

    /// Adds `asset` (its id must be new) and saves.
    pub fn add(&mut self, asset: Asset) -> Result<(), AssetError> {
        if self.assets.contains_key(&asset.id) {
            return Err(AssetError::Exists(asset.id));
        }
        if self.assets.len() >= MAX_ASSETS {
            return Err(AssetError::Limit(format!("at most {MAX_ASSETS} assets")));
        }
        self.assets.insert(asset.id.clone(), asset);
        self.save()
    }

    /// Removes an asset and saves.
    pub fn remove(&mut self, id: &str) -> Result<Asset, AssetError> {
        let a = self
            .assets
            .remove(id)
            .ok_or_else(|| AssetError::Unknown(id.to_owned()))?;
        self.save()?;
        Ok(a)
    }

    fn save(&self) -> Result<(), AssetError> {
        let list: Vec<&Asset> = self.assets.values().collect();
        let bytes = serde_json::to_vec_pretty(&list).map_err(|e| AssetError::Corrupt {
            path: self.file.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self.file.with_extension("json.tmp");
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &self.file).map_err(io(&self.file))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn files_and_directories_are_hashed_and_the_registry_survives_reopening() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("b.csv"), b"x,y\n1,2\n").unwrap();
        std::fs::write(data.join("sub/a.bin"), vec![7u8; 3 << 20]).unwrap();
        let a = Asset::scan("weather", &data, Policy::default(), UnixMillis(1)).unwrap();
        assert!(a.directory);
        let paths: Vec<&str> = a.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["b.csv", "sub/a.bin"]);
        assert_eq!(a.size, 8 + (3 << 20));
        assert_eq!(
            a.files[1].blake3,
            blake3::hash(&vec![7u8; 3 << 20]).to_hex().to_string()
        );
        let one =
            Asset::scan("one", &data.join("b.csv"), Policy::default(), UnixMillis(1)).unwrap();
        assert!(!one.directory);
        assert_eq!(one.files[0].path, "");

        let mut r = Registry::open(d.path()).unwrap();
        r.add(a.clone()).unwrap();
        r.add(one).unwrap();
        assert!(matches!(r.add(a.clone()), Err(AssetError::Exists(_))));
        let r2 = Registry::open(d.path()).unwrap();
        assert_eq!(r2.get("weather"), Some(&a));
        assert_eq!(r2.list().count(), 2);
        let mut r2 = r2;
        r2.remove("one").unwrap();
        assert!(matches!(r2.remove("one"), Err(AssetError::Unknown(_))));
        assert_eq!(Registry::open(d.path()).unwrap().list().count(), 1);

        // A changed file changes the manifest hash.
        std::fs::write(data.join("b.csv"), b"x,y\n1,3\n").unwrap();
        let changed = Asset::scan("weather", &data, Policy::default(), UnixMillis(1)).unwrap();
        assert_ne!(changed.manifest_blake3, a.manifest_blake3);
    }

    #[test]
    fn bad_ids_links_and_corrupt_registries_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"1").unwrap();
        assert!(matches!(
            Asset::scan("a b", &f, Policy::default(), UnixMillis(1)),
            Err(AssetError::BadId(_))
        ));
        #[cfg(unix)]
        {
            let dir = d.path().join("dir");
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
            let e = Asset::scan("d", &dir, Policy::default(), UnixMillis(1)).unwrap_err();
            assert!(matches!(e, AssetError::NotRegular(_)), "{e}");
        }
        assert!(matches!(
            Asset::scan(
                "x",
                &d.path().join("missing"),
                Policy::default(),
                UnixMillis(1)
            ),
            Err(AssetError::Io { .. })
        ));
        std::fs::write(d.path().join("assets.json"), b"[{").unwrap();
        let e = Registry::open(d.path()).unwrap_err();
        assert!(e.to_string().contains("assets.json"), "{e}");
    }
}
