//! Reading self-description documents from TOML or JSON.

use super::{SdDocument, ValidationErrors, validate_document};
use crate::limits::MAX_DOCUMENT_BYTES;

/// The text format of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentFormat {
    /// TOML, the layout of DESIGN §5.
    Toml,
    /// The same structure in JSON.
    Json,
}

impl DocumentFormat {
    /// JSON when the text starts with `{`, TOML otherwise.
    pub fn sniff(text: &str) -> Self {
        if text.trim_start().starts_with('{') {
            Self::Json
        } else {
            Self::Toml
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// Larger than any self-description may be.
    #[error("document is {0} bytes, at most {MAX_DOCUMENT_BYTES} allowed")]
    TooLarge(usize),
    /// The TOML does not parse into the schema (unknown key, wrong type, missing field).
    #[error("{0}")]
    Toml(String),
    /// The JSON does not parse into the schema.
    #[error("{0}")]
    Json(String),
    /// The document parses but breaks rules; every problem is listed.
    #[error("{0}")]
    Invalid(ValidationErrors),
}

impl SdDocument {
    /// Parses and validates a document in `format`.
    pub fn parse(text: &str, format: DocumentFormat) -> Result<Self, DocumentError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::TooLarge(text.len()));
        }
        let doc: Self = match format {
            DocumentFormat::Toml => {
                toml::from_str(text).map_err(|e| DocumentError::Toml(e.to_string()))?
            }
            DocumentFormat::Json => {
                serde_json::from_str(text).map_err(|e| DocumentError::Json(e.to_string()))?
            }
        };
        validate_document(&doc).map_err(DocumentError::Invalid)?;
        Ok(doc)
    }

    /// The TOML form.
    pub fn to_toml(&self) -> Result<String, DocumentError> {
        toml::to_string_pretty(self).map_err(|e| DocumentError::Toml(e.to_string()))
    }
}
