//! # gaiamesh-config
//!
//! Typed configuration for gaiamesh. A file struct ([`NodeConfigFile`]) mirrors the TOML
//! (`deny_unknown_fields`, every field documented and defaulted) and converts into a validated
//! runtime [`NodeConfig`]; a bad file gets an error that names the key and says why.
//!
//! Example files live in `config/examples/` (see [`EXAMPLES_DIR`]).
//!
//! ```
//! let cfg = gaiamesh_config::NodeConfig::from_toml_str("[directory]\nmode = \"light\"\n", "node.toml").unwrap();
//! assert_eq!(cfg.directory.mode, gaiamesh_config::DirectoryMode::Light);
//! ```

mod examples;
mod node;

pub use examples::EXAMPLE_SDS;

pub use node::{
    ApiConfig, ComputeConfig, ComputeSection, ConfigError, DirectoryConfig, DirectoryMode,
    LogConfig, LogFormat, NetworkConfig, NodeConfig, NodeConfigFile, RepositoryConfig,
    RepositorySection, SdConfig,
};

/// Where the example documents live, relative to the workspace root.
pub const EXAMPLES_DIR: &str = "config/examples";

/// Absolute path of the example directory in this source tree (for tests and `devnet`).
pub fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}
