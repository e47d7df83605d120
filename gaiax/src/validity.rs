//! A credential's validity window and whether an instant is inside it: `validFrom` /
//! `validUntil` (VC data model 2.0, Loire), `issuanceDate` / `expirationDate` (1.1, 22.10),
//! and a VC-JWT's `nbf` / `exp` claims; where several are given, the narrowest window.

use serde::Serialize;
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// Where an instant stands against a credential's validity window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Validity {
    /// Inside the window (or the credential names none).
    Valid {
        /// The start, RFC 3339 (absent: none given).
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The end, RFC 3339 (absent: none given).
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    /// Past its end.
    Expired {
        /// The end.
        until: String,
        /// The instant checked.
        at: String,
    },
    /// Before its start.
    NotYetValid {
        /// The start.
        from: String,
        /// The instant checked.
        at: String,
    },
    /// A date that cannot be read.
    Malformed {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
}

impl Validity {
    /// Whether the credential may be used at the instant checked.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid { .. })
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            Self::Valid { from, until } => match (from, until) {
                (None, None) => "valid (no validity period given)".into(),
                (f, u) => format!(
                    "valid from {} until {}",
                    f.as_deref().unwrap_or("(no start)"),
                    u.as_deref().unwrap_or("(no end)")
                ),
            },
            Self::Expired { until, at } => format!("EXPIRED at {until} (checked at {at})"),
            Self::NotYetValid { from, at } => {
                format!("NOT YET VALID: from {from} (checked at {at})")
            }
            Self::Malformed { field, reason } => format!("validity {field}: {reason}"),
        }
    }
}

/// Text that is not a date and time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 date and time")]
pub struct TimeError(String);

/// Parses an RFC 3339 / XSD dateTime (an offset, or none meaning UTC).
pub fn parse_time(text: &str) -> Result<OffsetDateTime, TimeError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
        .map_err(|_| TimeError(text.chars().take(64).collect()))
}

fn format(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The window of `vc` (and of the JWT `claims` around it) at `at`.
pub(crate) fn check(vc: &Value, claims: Option<&Value>, at: OffsetDateTime) -> Validity {
    let mut from: Option<OffsetDateTime> = None;
    let mut until: Option<OffsetDateTime> = None;
    for (field, is_start) in [
        ("validFrom", true),
        ("issuanceDate", true),
        ("validUntil", false),
        ("expirationDate", false),
    ] {
        let Some(v) = vc.get(field) else { continue };
        let Some(text) = v.as_str() else {
            return Validity::Malformed {
                field: field.into(),
                reason: "not a string".into(),
            };
        };
        let t = match parse_time(text) {
            Ok(t) => t,
            Err(e) => {
                return Validity::Malformed {
                    field: field.into(),
                    reason: e.to_string(),
                };
            }
        };
        narrow(&mut from, &mut until, t, is_start);
    }
    for (claim, is_start) in [("nbf", true), ("exp", false)] {
        let Some(v) = claims.and_then(|c| c.get(claim)) else {
            continue;
        };
        let t = v
            .as_i64()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        let Some(t) = t else {
            return Validity::Malformed {
                field: claim.into(),
                reason: format!("{v} is not a NumericDate (seconds since 1970)"),
            };
        };
        narrow(&mut from, &mut until, t, is_start);
    }
    match (from, until) {
        // a window that ends before it starts holds no instant, whatever `at` is
        (Some(f), Some(u)) if u <= f => Validity::Malformed {
            field: "validity period".into(),
            reason: format!(
                "it ends ({}) before it starts ({}): the credential is valid at no instant",
                format(u),
                format(f)
            ),
        },
        (_, Some(u)) if at >= u => Validity::Expired {
            until: format(u),
            at: format(at),
        },
        (Some(f), _) if at < f => Validity::NotYetValid {
            from: format(f),
            at: format(at),
        },
        (f, u) => Validity::Valid {
            from: f.map(format),
            until: u.map(format),
        },
    }
}

/// The window narrowed by `t` as a start (the latest start wins) or an end (the earliest).
fn narrow(
    from: &mut Option<OffsetDateTime>,
    until: &mut Option<OffsetDateTime>,
    t: OffsetDateTime,
    is_start: bool,
) {
    if is_start {
        *from = Some(from.map_or(t, |f| f.max(t)));
    } else {
        *until = Some(until.map_or(t, |u| u.min(t)));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Validity, check, parse_time};

    #[test]
    fn the_narrowest_window_of_every_form_decides() {
        let at = parse_time("2026-12-07T10:00:00Z").unwrap();
        let v = check(
            &json!({"validFrom": "2026-01-01T00:00:00+01:00", "validUntil": "2027-01-01T00:00:00Z"}),
            None,
            at,
        );
        assert!(v.is_valid(), "{v:?}");
        let v = check(&json!({"expirationDate": "2026-12-01T00:00:00Z"}), None, at);
        assert!(
            matches!(&v, Validity::Expired { until, .. } if until == "2026-12-01T00:00:00Z"),
            "{v:?}"
        );
        let v = check(&json!({"issuanceDate": "2027-03-01T00:00:00"}), None, at);
        assert!(matches!(v, Validity::NotYetValid { .. }), "{v:?}");
        // the JWT's exp is earlier than the credential's own end: it wins
        let exp = parse_time("2026-12-07T09:00:00Z").unwrap().unix_timestamp();
        let v = check(
            &json!({"validUntil": "2027-01-01T00:00:00Z"}),
            Some(&json!({"exp": exp})),
            at,
        );
        assert!(matches!(v, Validity::Expired { .. }), "{v:?}");
        let v = check(&json!({}), Some(&json!({"nbf": "soon"})), at);
        assert!(
            matches!(&v, Validity::Malformed { field, .. } if field == "nbf"),
            "{v:?}"
        );
        let v = check(&json!({"validUntil": "next tuesday"}), None, at);
        assert!(v.describe().contains("validUntil"), "{v:?}");
        assert_eq!(
            check(&json!({}), None, at),
            Validity::Valid {
                from: None,
                until: None
            }
        );
    }
}
