//! An algorithm's declaration of what it reads, what it writes and what it needs: a TOML
//! manifest carried inside the component, in a custom section named [`SECTION`].
//!
//! ```toml
//! description = "count, sum, mean, minimum and maximum of one CSV column"
//! usage = "COLUMN"
//!
//! [input]                       # the dataset, on standard input
//! media_types = ["text/csv"]
//!
//! [output]                      # the result, on standard output
//! media_type = "application/json"
//! max_bytes = 4096              # the provider stops it beyond this
//!
//! [resources]                   # what it needs at most; a provider that allows less refuses
//! memory_mib = 64               # the job before it starts
//! fuel = 10_000_000_000
//! wall = "30s"
//! ```
//!
//! Because the manifest is part of the component's bytes, the repository's threshold
//! signature over the component's hash covers it: nobody can change what an algorithm
//! declares without changing the released hash. A Rust algorithm embeds it with
//! `#[unsafe(link_section = "gaiamesh-algorithm")]` (see `config/examples/algorithms/`); a
//! component built by any other toolchain gets it added with [`Manifest::embed`]
//! (`gaiamesh compute embed`).

use std::{borrow::Cow, time::Duration};

use serde::{Deserialize, Serialize};

use crate::Limits;

/// The platform an algorithm target is released for (`repo publish --platform`).
pub const PLATFORM: &str = "wasm32-wasip2";
/// The custom section that holds the manifest.
pub const SECTION: &str = "gaiamesh-algorithm";
/// The largest manifest read, bytes.
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024;
/// The longest text field (description, usage, a media type), bytes.
const MAX_TEXT: usize = 1024;
/// Most media types an input may list.
const MAX_MEDIA_TYPES: usize = 16;

/// Why a manifest is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The component has no manifest section.
    #[error(
        "the component declares no manifest (a {SECTION:?} custom section); add one with `gaiamesh compute embed`"
    )]
    Missing,
    /// The component's bytes could not be read as WebAssembly.
    #[error("the component cannot be read: {0}")]
    Wasm(String),
    /// More than one manifest section.
    #[error("the component has {0} {SECTION:?} sections; exactly one is allowed")]
    Duplicate(usize),
    /// [`Manifest::embed`] into a component that already declares one.
    #[error(
        "the component already carries a manifest; a new declaration needs a new build of the algorithm"
    )]
    AlreadyDeclared,
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("the manifest is {0} bytes, at most {MAX_MANIFEST_BYTES}")]
    TooLarge(usize),
    /// Not UTF-8 TOML of the expected shape.
    #[error("the manifest is not valid: {0}")]
    Syntax(String),
    /// Fields out of range, each named.
    #[error("the manifest is not valid: {}", .0.join("; "))]
    Fields(Vec<String>),
    /// It needs more than the limits allow.
    #[error("the algorithm needs more than this provider allows: {}", .0.join("; "))]
    Exceeds(Vec<String>),
}

/// What an algorithm declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What it computes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its arguments, as a usage line (`COLUMN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    /// The dataset it reads.
    #[serde(default)]
    pub input: Input,
    /// The result it writes.
    #[serde(default)]
    pub output: Output,
    /// What it needs at most.
    #[serde(default)]
    pub resources: Resources,
}

/// The dataset, read on standard input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Media types it understands (`text/csv`); empty: any.
    #[serde(default)]
    pub media_types: Vec<String>,
}

/// The result, written on standard output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Its largest size: the job is stopped beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

/// What one run needs at most.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Linear memory, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Fuel (roughly instructions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock time.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub wall: Option<Duration>,
}

impl Manifest {
    /// Parses and checks a manifest's TOML text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(text.len()));
        }
        let manifest: Self =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        let problems = manifest.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError::Fields(problems))
        }
    }

    /// The manifest as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Problems with the fields, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let text = |out: &mut Vec<String>, name: &str, v: &str| {
            if v.is_empty() || v.len() > MAX_TEXT {
                out.push(format!("{name}: between 1 and {MAX_TEXT} bytes"));
            }
        };
        let media = |out: &mut Vec<String>, name: &str, v: &str| {
            let ok = v.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && v.len() <= 255
                    && v.bytes().all(|c| c.is_ascii_graphic() && c != b',')
            });
            if !ok {
                out.push(format!("{name}: {v:?} is not a media type (type/subtype)"));
            }
        };
        if let Some(d) = &self.description {
            text(&mut out, "description", d);
        }
        if let Some(u) = &self.usage {
            text(&mut out, "usage", u);
        }
        if self.input.media_types.len() > MAX_MEDIA_TYPES {
            out.push(format!(
                "input.media_types: {} entries, at most {MAX_MEDIA_TYPES}",
                self.input.media_types.len()
            ));
        }
        for (i, m) in self.input.media_types.iter().enumerate() {
            media(&mut out, &format!("input.media_types[{i}]"), m);
        }
        if let Some(m) = &self.output.media_type {
            media(&mut out, "output.media_type", m);
        }
        if self.output.max_bytes == Some(0) {
            out.push("output.max_bytes: 0 would permit no result".into());
        }
        if self.resources.memory_mib == Some(0) {
            out.push("resources.memory_mib: must be at least 1".into());
        }
        if self.resources.fuel == Some(0) {
            out.push("resources.fuel: must be at least 1".into());
        }
        if self.resources.wall.is_some_and(|w| w.is_zero()) {
            out.push("resources.wall: must be longer than 0".into());
        }
        out
    }

    /// The manifest a component carries: `Ok(None)` when it has none. The section may be
    /// at the component's top level or inside one of its core modules (where a Rust
    /// `link_section` puts it).
    pub fn read(component: &[u8]) -> Result<Option<Self>, ManifestError> {
        match sections(component)?.as_slice() {
            [] => Ok(None),
            [data] => {
                if data.len() > MAX_MANIFEST_BYTES {
                    return Err(ManifestError::TooLarge(data.len()));
                }
                let text = std::str::from_utf8(data)
                    .map_err(|e| ManifestError::Syntax(format!("not UTF-8: {e}")))?;
                Self::parse(text).map(Some)
            }
            more => Err(ManifestError::Duplicate(more.len())),
        }
    }

    /// The manifest `component` carries; [`ManifestError::Missing`] when none (an algorithm
    /// must declare what it reads, writes and needs).
    pub fn require(component: &[u8]) -> Result<Self, ManifestError> {
        Self::read(component)?.ok_or(ManifestError::Missing)
    }

    /// `component` with this manifest added as a top-level custom section; refused when it
    /// already carries one (changing a declaration is a new build, not an edit).
    pub fn embed(&self, component: &[u8]) -> Result<Vec<u8>, ManifestError> {
        use wasm_encoder::ComponentSection;
        let problems = self.problems();
        if !problems.is_empty() {
            return Err(ManifestError::Fields(problems));
        }
        if !wasmparser::Parser::is_component(component) {
            return Err(ManifestError::Wasm(
                "not a WebAssembly component (a core module, or not WebAssembly)".into(),
            ));
        }
        if !sections(component)?.is_empty() {
            return Err(ManifestError::AlreadyDeclared);
        }
        let text = self.to_toml();
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(text.len()));
        }
        let mut out = component.to_vec();
        wasm_encoder::CustomSection {
            name: Cow::Borrowed(SECTION),
            data: Cow::Borrowed(text.as_bytes()),
        }
        .append_to_component(&mut out);
        Ok(out)
    }

    /// Checks the declared needs fit `limits` (a provider's): every need above its limit is
    /// named, with the limit.
    pub fn fits(&self, limits: &Limits) -> Result<(), ManifestError> {
        let mut over = Vec::new();
        let r = &self.resources;
        if let Some(m) = r.memory_mib
            && m.saturating_mul(1024 * 1024) > limits.memory_bytes
        {
            over.push(format!(
                "{m} MiB of memory, {} MiB allowed",
                limits.memory_bytes / (1024 * 1024)
            ));
        }
        if let Some(f) = r.fuel
            && f > limits.fuel
        {
            over.push(format!("{f} fuel, {} allowed", limits.fuel));
        }
        if let Some(w) = r.wall
            && w > limits.wall
        {
            over.push(format!(
                "{} of wall-clock time, {} allowed",
                humantime::format_duration(w),
                humantime::format_duration(limits.wall)
            ));
        }
        if over.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Exceeds(over))
        }
    }

    /// `limits` with the result bounded by what the algorithm declares (an algorithm that
    /// writes more than it said is stopped there).
    #[must_use]
    pub fn bound(&self, mut limits: Limits) -> Limits {
        if let Some(max) = self.output.max_bytes {
            limits.output_bytes = limits.output_bytes.min(max);
        }
        limits
    }
}

/// The data of every manifest section in `component`, nested core modules included.
fn sections(component: &[u8]) -> Result<Vec<&[u8]>, ManifestError> {
    let mut found = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| ManifestError::Wasm(e.to_string()))?;
        if let wasmparser::Payload::CustomSection(reader) = payload
            && reader.name() == SECTION
        {
            found.push(reader.data());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
