//! Canonical binary encoding: postcard, with a size limit checked before decoding and a
//! strict "no trailing bytes" rule, so every value has exactly one accepted encoding.

use serde::{Serialize, de::DeserializeOwned};

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than this type may ever be.
    #[error("{what} is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The type being decoded.
        what: &'static str,
        /// Input length.
        len: usize,
        /// The limit for this type.
        limit: usize,
    },
    /// The bytes are not a valid encoding of the type.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// The type being decoded.
        what: &'static str,
        /// What postcard reported.
        reason: String,
    },
    /// A valid value was followed by extra bytes.
    #[error("{what} has {extra} trailing bytes")]
    TrailingBytes {
        /// The type being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoding is larger than this type may be.
    #[error("{what} encodes to {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The type being encoded.
        what: &'static str,
        /// Encoded length.
        len: usize,
        /// The limit for this type.
        limit: usize,
    },
    /// The serializer failed (a type that postcard cannot represent).
    #[error("{what} cannot be encoded: {reason}")]
    Serializer {
        /// The type being encoded.
        what: &'static str,
        /// What postcard reported.
        reason: String,
    },
}

/// Encodes `value` canonically, refusing results above `limit` bytes.
pub fn encode<T: Serialize>(
    what: &'static str,
    value: &T,
    limit: usize,
) -> Result<Vec<u8>, EncodeError> {
    let bytes = postcard::to_stdvec(value).map_err(|e| EncodeError::Serializer {
        what,
        reason: e.to_string(),
    })?;
    if bytes.len() > limit {
        return Err(EncodeError::TooLarge {
            what,
            len: bytes.len(),
            limit,
        });
    }
    Ok(bytes)
}

/// Decodes a `T` from exactly `bytes`, refusing inputs above `limit` bytes before parsing.
pub fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
    limit: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            limit,
        });
    }
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what,
            extra: rest.len(),
        });
    }
    Ok(value)
}
