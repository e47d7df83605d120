//! Semantic validation of a self-description document. Every problem is reported, each with
//! the field path where it is (`services[2].price.currency: "EURO" is not an ISO 4217 code`).

use std::{collections::BTreeSet, fmt};

use super::schema::{
    Address, Certification, DataExport, Energy, Hardware, Location, NodeInfo, Participant, Price,
    Registration, RegistrationKind, SdDocument, Service,
};
use crate::{codes, limits::*};

/// One problem in a document, at a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where the problem is, e.g. `services[2].price.currency`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems found in a document, in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    fn push(&mut self, path: impl fmt::Display, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.to_string(),
            message: message.into(),
        });
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A field path, formatted only when a problem is reported there (a valid document, the
/// common case on the ingest path, formats none).
type Path<'a> = &'a dyn fmt::Display;

/// `base[index]`, formatted when needed.
struct Index<'a>(Path<'a>, usize);

impl fmt::Display for Index<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

/// `base.field`, formatted when needed.
struct Field<'a>(Path<'a>, &'static str);

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Validates a document, returning every problem found.
pub fn validate_document(doc: &SdDocument) -> Result<(), ValidationErrors> {
    let mut v = ValidationErrors::default();
    participant(&mut v, &doc.participant);
    node(&mut v, &doc.node);
    if doc.services.len() > MAX_SERVICES {
        v.push(
            "services",
            format!(
                "{} services, at most {MAX_SERVICES} allowed",
                doc.services.len()
            ),
        );
    }
    let mut ids = BTreeSet::new();
    for (i, s) in doc.services.iter().enumerate().take(MAX_SERVICES) {
        let p = Index(&"services", i);
        if !ids.insert(s.id.as_str()) {
            v.push(
                Field(&p, "id"),
                format!("{:?} is used by an earlier service", s.id),
            );
        }
        service(&mut v, &p, s);
    }
    if doc.extensions.len() > MAX_EXTENSIONS {
        v.push(
            "extensions",
            format!(
                "{} entries, at most {MAX_EXTENSIONS} allowed",
                doc.extensions.len()
            ),
        );
    }
    for (k, val) in doc.extensions.iter().take(MAX_EXTENSIONS) {
        text(&mut v, &"extensions", k, MAX_SHORT_STRING, true);
        text(
            &mut v,
            &format_args!("extensions.{k}"),
            val,
            MAX_TEXT_STRING,
            false,
        );
    }
    if v.is_empty() { Ok(()) } else { Err(v) }
}

fn participant(v: &mut ValidationErrors, p: &Participant) {
    text(
        v,
        &"participant.legal_name",
        &p.legal_name,
        MAX_SHORT_STRING,
        true,
    );
    if p.registration.is_empty() {
        v.push(
            "participant.registration",
            "at least one registration number is required",
        );
    }
    list_len(
        v,
        &"participant.registration",
        p.registration.len(),
        MAX_REGISTRATIONS,
    );
    for (i, r) in p.registration.iter().enumerate().take(MAX_REGISTRATIONS) {
        registration(v, &format_args!("participant.registration[{i}]"), r);
    }
    address(v, &"participant.headquarters", &p.headquarters);
    if let Some(a) = &p.legal_address {
        address(v, &"participant.legal_address", a);
    }
}

fn registration(v: &mut ValidationErrors, path: Path<'_>, r: &Registration) {
    let path = Field(path, "value");
    let val = r.value.as_str();
    let alnum = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    let problem = match r.kind {
        RegistrationKind::VatId => {
            // Greece uses the prefix EL instead of its ISO code GR.
            let (cc, rest) = val.split_at(val.len().min(2));
            let cc_ok = codes::is_country(cc) || cc == "EL";
            (!(cc_ok && (2..=13).contains(&rest.len()) && alnum(rest))).then(|| {
                format!("{val:?} is not a VAT id (country prefix and 2–13 letters or digits)")
            })
        }
        RegistrationKind::LeiCode => (!(val.len() == 20 && alnum(val)))
            .then(|| format!("{val:?} is not an LEI (20 upper-case letters or digits)")),
        RegistrationKind::Eori => {
            let (cc, rest) = val.split_at(val.len().min(2));
            (!(codes::is_country(cc) && (1..=15).contains(&rest.len()) && alnum(rest))).then(|| {
                format!("{val:?} is not an EORI number (country prefix and up to 15 characters)")
            })
        }
        RegistrationKind::Euid | RegistrationKind::TaxId | RegistrationKind::Local => None,
    };
    match problem {
        Some(m) => v.push(path, m),
        None => text(v, &path, val, 64, true),
    }
}

fn address(v: &mut ValidationErrors, path: Path<'_>, a: &Address) {
    country(v, &format_args!("{path}.country"), &a.country);
    if let Some(s) = &a.subdivision {
        subdivision(v, &format_args!("{path}.subdivision"), s, &a.country);
    }
    if let Some(c) = &a.city {
        text(v, &format_args!("{path}.city"), c, MAX_SHORT_STRING, true);
    }
}

fn node(v: &mut ValidationErrors, n: &NodeInfo) {
    location(v, &"node.location", &n.location);
    list_len(v, &"node.addresses", n.addresses.len(), MAX_ADDRESSES);
    for (i, a) in n.addresses.iter().enumerate().take(MAX_ADDRESSES) {
        let p = Index(&"node.addresses", i);
        if !a.starts_with('/') {
            v.push(
                &p,
                format!("{a:?} is not a multiaddr (must start with '/')"),
            );
        } else {
            text(v, &p, a, 256, true);
        }
    }
    if let Some(s) = &n.software {
        text(v, &"node.software.name", &s.name, MAX_SHORT_STRING, true);
        text(v, &"node.software.version", &s.version, 64, true);
        if let Some(h) = &s.build_hash
            && (h.is_empty() || h.len() > 128 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            v.push(
                "node.software.build_hash",
                format!("{h:?} is not a hex hash (1–128 hex digits)"),
            );
        }
    }
    if let Some(h) = &n.hardware {
        hardware(v, h);
    }
    if let Some(net) = &n.network {
        range(
            v,
            &"node.network.bandwidth_gbps",
            net.bandwidth_gbps,
            0.001,
            100_000.0,
        );
    }
    if let Some(e) = &n.energy {
        energy(v, e);
    }
    if let Some(rt) = &n.realtime
        && let Some(ms) = rt.max_latency_ms
        && (ms == 0 || ms > 60_000)
    {
        v.push(
            "node.realtime.max_latency_ms",
            format!("{ms} is outside 1–60000"),
        );
    }
}

fn location(v: &mut ValidationErrors, path: Path<'_>, l: &Location) {
    country(v, &format_args!("{path}.country"), &l.country);
    if let Some(s) = &l.subdivision {
        subdivision(v, &format_args!("{path}.subdivision"), s, &l.country);
    }
    if let Some(c) = &l.city {
        text(v, &format_args!("{path}.city"), c, MAX_SHORT_STRING, true);
    }
    if let Some(c) = &l.coordinates {
        range(
            v,
            &format_args!("{path}.coordinates.lat"),
            c.lat,
            -90.0,
            90.0,
        );
        range(
            v,
            &format_args!("{path}.coordinates.lon"),
            c.lon,
            -180.0,
            180.0,
        );
    }
}

fn hardware(v: &mut ValidationErrors, h: &Hardware) {
    if let Some(a) = &h.cpu_arch {
        token(v, &"node.hardware.cpu_arch", a, 32);
    }
    if let Some(n) = h.vcpus
        && (n == 0 || n > 10_000_000)
    {
        v.push("node.hardware.vcpus", format!("{n} is outside 1–10000000"));
    }
    if let Some(n) = h.memory_gib
        && n == 0
    {
        v.push("node.hardware.memory_gib", "must be at least 1");
    }
    list_len(v, &"node.hardware.gpus", h.gpus.len(), MAX_GPU_KINDS);
    for (i, g) in h.gpus.iter().enumerate().take(MAX_GPU_KINDS) {
        text(
            v,
            &format_args!("node.hardware.gpus[{i}].model"),
            &g.model,
            64,
            true,
        );
        if g.count == 0 || g.count > 1_000_000 {
            v.push(
                format!("node.hardware.gpus[{i}].count"),
                format!("{} is outside 1–1000000", g.count),
            );
        }
    }
    if let Some(t) = h.storage_tib {
        range(v, &"node.hardware.storage_tib", t, 0.0, 1.0e9);
    }
}

fn energy(v: &mut ValidationErrors, e: &Energy) {
    if let Some(p) = e.pue {
        range(v, &"node.energy.pue", p, 1.0, 5.0);
    }
    for (name, pct) in [
        ("renewable_pct", e.renewable_pct),
        ("heat_reuse_pct", e.heat_reuse_pct),
    ] {
        if let Some(p) = pct
            && p > 100
        {
            v.push(
                format!("node.energy.{name}"),
                format!("{p} is more than 100 percent"),
            );
        }
    }
    if let Some(w) = e.water_usage_l_per_kwh {
        range(v, &"node.energy.water_usage_l_per_kwh", w, 0.0, 100.0);
    }
    if let Some(s) = &e.source {
        text(v, &"node.energy.source", s, 64, true);
    }
}

fn service(v: &mut ValidationErrors, p: Path<'_>, s: &Service) {
    token(v, &format_args!("{p}.id"), &s.id, 64);
    if let Some(n) = &s.name {
        text(v, &format_args!("{p}.name"), n, MAX_SHORT_STRING, true);
    }
    if let Some(d) = &s.description {
        text(
            v,
            &format_args!("{p}.description"),
            d,
            MAX_TEXT_STRING,
            false,
        );
    }
    list_len(
        v,
        &format_args!("{p}.keywords"),
        s.keywords.len(),
        MAX_KEYWORDS,
    );
    for (i, k) in s.keywords.iter().enumerate().take(MAX_KEYWORDS) {
        text(v, &format_args!("{p}.keywords[{i}]"), k, 64, true);
    }
    if let Some(e) = &s.endpoint {
        url(v, &format_args!("{p}.endpoint"), e);
    }
    countries(v, &format_args!("{p}.data_location"), &s.data_location);
    countries(
        v,
        &format_args!("{p}.processing_location"),
        &s.processing_location,
    );
    list_len(
        v,
        &format_args!("{p}.certifications"),
        s.certifications.len(),
        MAX_CERTIFICATIONS,
    );
    for (i, c) in s.certifications.iter().enumerate().take(MAX_CERTIFICATIONS) {
        certification(v, &format_args!("{p}.certifications[{i}]"), c);
    }
    if let Some(price) = &s.price {
        self::price(v, &format_args!("{p}.price"), price);
    }
    if let Some(t) = &s.terms {
        url(v, &format_args!("{p}.terms.url"), &t.url);
        if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            v.push(
                format!("{p}.terms.sha256"),
                format!("{:?} is not a SHA-256 (64 hex digits)", t.sha256),
            );
        }
    }
    list_len(
        v,
        &format_args!("{p}.data_export"),
        s.data_export.len(),
        MAX_DATA_EXPORTS,
    );
    for (i, d) in s.data_export.iter().enumerate().take(MAX_DATA_EXPORTS) {
        data_export(v, &format_args!("{p}.data_export[{i}]"), d);
    }
    if let Some(u) = &s.usage_policy {
        text(
            v,
            &format_args!("{p}.usage_policy"),
            u,
            MAX_TEXT_STRING,
            false,
        );
    }
}

fn certification(v: &mut ValidationErrors, p: Path<'_>, c: &Certification) {
    token(v, &format_args!("{p}.scheme"), &c.scheme, 32);
    if let Some(s) = &c.scope {
        text(v, &format_args!("{p}.scope"), s, MAX_SHORT_STRING, true);
    }
    if let Some(l) = &c.level {
        text(v, &format_args!("{p}.level"), l, 64, true);
    }
}

fn price(v: &mut ValidationErrors, p: Path<'_>, price: &Price) {
    if !codes::is_currency(&price.currency) {
        v.push(
            format!("{p}.currency"),
            format!("{:?} is not an ISO 4217 code", price.currency),
        );
    }
    if parse_decimal(&price.amount).is_none() {
        v.push(
            format!("{p}.amount"),
            format!(
                "{:?} is not a decimal amount (digits, optionally '.' and up to 8 decimals)",
                price.amount
            ),
        );
    }
    text(v, &format_args!("{p}.unit"), &price.unit, 32, true);
}

fn data_export(v: &mut ValidationErrors, p: Path<'_>, d: &DataExport) {
    const REQUEST: [&str; 6] = [
        "API",
        "email",
        "webform",
        "unregisteredLetter",
        "registeredLetter",
        "supportCenter",
    ];
    if !REQUEST.contains(&d.request_type.as_str()) {
        v.push(
            format!("{p}.request_type"),
            format!("{:?} is not one of {}", d.request_type, REQUEST.join(", ")),
        );
    }
    if !["digital", "physical"].contains(&d.access_type.as_str()) {
        v.push(
            format!("{p}.access_type"),
            format!("{:?} is not digital or physical", d.access_type),
        );
    }
    text(v, &format_args!("{p}.format"), &d.format, 64, true);
}

/// Parses a non-negative decimal amount: 1–12 integer digits, optionally `.` and 1–8 decimals.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |x: &str, max: usize| {
        !x.is_empty() && x.len() <= max && x.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(int, 12) || frac.is_some_and(|f| !digits(f, 8)) {
        return None;
    }
    s.parse().ok()
}

fn country(v: &mut ValidationErrors, path: Path<'_>, c: &str) {
    if !codes::is_country(c) {
        v.push(
            path,
            format!("{c:?} is not an ISO 3166-1 alpha-2 country code"),
        );
    }
}

fn subdivision(v: &mut ValidationErrors, path: Path<'_>, s: &str, country: &str) {
    if let Err(m) = codes::check_subdivision(s, Some(country)) {
        v.push(path, m.to_string());
    }
}

fn countries(v: &mut ValidationErrors, path: Path<'_>, list: &[String]) {
    list_len(v, path, list.len(), MAX_COUNTRIES);
    let mut seen = BTreeSet::new();
    for (i, c) in list.iter().enumerate().take(MAX_COUNTRIES) {
        country(v, &format_args!("{path}[{i}]"), c);
        if !seen.insert(c) {
            v.push(format!("{path}[{i}]"), format!("{c:?} is listed twice"));
        }
    }
}

fn url(v: &mut ValidationErrors, path: Path<'_>, u: &str) {
    let scheme_ok = u.split_once("://").is_some_and(|(s, rest)| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'+' || b == b'-')
            && !rest.is_empty()
    });
    if !scheme_ok || u.chars().any(char::is_whitespace) {
        v.push(path, format!("{u:?} is not a URL (scheme://…)"));
    } else {
        text(v, path, u, MAX_TEXT_STRING, true);
    }
}

/// Identifier-like strings: letters, digits and `._+-`.
fn token(v: &mut ValidationErrors, path: Path<'_>, s: &str, max: usize) {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if !ok {
        v.push(
            path,
            format!("{s:?} must be 1–{max} letters, digits or . _ + -"),
        );
    }
}

fn text(v: &mut ValidationErrors, path: Path<'_>, s: &str, max: usize, single_line: bool) {
    if s.trim().is_empty() {
        v.push(path, "must not be empty");
    } else if s.len() > max {
        v.push(
            path,
            format!("is {} bytes long, at most {max} allowed", s.len()),
        );
    } else if s
        .chars()
        .any(|c| c.is_control() && !(!single_line && (c == '\n' || c == '\t')))
    {
        v.push(path, "contains control characters");
    }
}

fn list_len(v: &mut ValidationErrors, path: Path<'_>, len: usize, max: usize) {
    if len > max {
        v.push(path, format!("{len} entries, at most {max} allowed"));
    }
}

fn range(v: &mut ValidationErrors, path: Path<'_>, x: f64, lo: f64, hi: f64) {
    if !x.is_finite() || x < lo || x > hi {
        v.push(path, format!("{x} is outside {lo}–{hi}"));
    }
}
