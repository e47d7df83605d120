//! The queryable projection of a self-description: every field of the query language with
//! its value for the node and for each service. Kept in memory for all entries, so queries
//! never decode records.

use gaiamesh_protocol::{
    identity::PublicKey,
    sd::{SdDocument, Service, parse_decimal},
    time::UnixMillis,
};

use crate::entry::Entry;

/// Type of a query field's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A single string.
    Str,
    /// A number.
    Num,
    /// A list of strings (`=` and `has` mean "contains").
    List,
    /// A boolean.
    Bool,
}

/// Whether a field belongs to the node or to each service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// One value per node.
    Node,
    /// One value per service.
    Service,
}

/// A query field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Its path in queries, e.g. `node.location.country`.
    pub name: &'static str,
    /// Node or service level.
    pub level: Level,
    /// Value type.
    pub ty: FieldType,
    /// Whether it has an index (and a DHT attribute key).
    pub indexed: bool,
    /// Position in the node's or service's value array.
    pub slot: usize,
}

macro_rules! fields {
    ($($name:literal, $level:ident, $ty:ident, $indexed:literal;)*) => {
        /// Every query field.
        pub const FIELDS: &[Field] = &fields!(@build 0usize, 0usize; []; $($name, $level, $ty, $indexed;)*);
    };
    (@build $n:expr, $s:expr; [$($done:expr,)*];) => { [$($done,)*] };
    (@build $n:expr, $s:expr; [$($done:expr,)*]; $name:literal, Node, $ty:ident, $indexed:literal; $($rest:tt)*) => {
        fields!(@build $n + 1, $s; [$($done,)* Field { name: $name, level: Level::Node, ty: FieldType::$ty, indexed: $indexed, slot: $n },]; $($rest)*)
    };
    (@build $n:expr, $s:expr; [$($done:expr,)*]; $name:literal, Service, $ty:ident, $indexed:literal; $($rest:tt)*) => {
        fields!(@build $n, $s + 1; [$($done,)* Field { name: $name, level: Level::Service, ty: FieldType::$ty, indexed: $indexed, slot: $s },]; $($rest)*)
    };
}

fields! {
    "subject", Node, Str, false;
    "seq", Node, Num, false;
    "alive", Node, Bool, false;
    "participant.legal_name", Node, Str, false;
    "participant.registration", Node, List, false;
    "participant.headquarters.country", Node, Str, true;
    "participant.headquarters.subdivision", Node, Str, false;
    "node.kind", Node, Str, true;
    "node.location.country", Node, Str, true;
    "node.location.subdivision", Node, Str, true;
    "node.location.city", Node, Str, false;
    "node.hardware.cpu_arch", Node, Str, false;
    "node.hardware.vcpus", Node, Num, false;
    "node.hardware.memory_gib", Node, Num, false;
    "node.hardware.gpus", Node, List, false;
    "node.hardware.gpu_count", Node, Num, false;
    "node.hardware.storage_tib", Node, Num, false;
    "node.network.bandwidth_gbps", Node, Num, false;
    "node.energy.pue", Node, Num, false;
    "node.energy.renewable_pct", Node, Num, false;
    "node.energy.heat_reuse_pct", Node, Num, false;
    "node.energy.water_usage_l_per_kwh", Node, Num, false;
    "node.energy.source", Node, Str, false;
    "node.realtime.latency_class", Node, Str, false;
    "node.realtime.max_latency_ms", Node, Num, false;
    "service.id", Service, Str, false;
    "service.kind", Service, Str, true;
    "service.name", Service, Str, false;
    "service.description", Service, Str, false;
    "service.keywords", Service, List, false;
    "service.endpoint", Service, Str, false;
    "service.data_location", Service, List, true;
    "service.processing_location", Service, List, false;
    "service.certification", Service, List, true;
    "service.certification.attested", Service, List, false;
    "service.protection_level", Service, Str, true;
    "service.consumption", Service, Str, false;
    "service.price.amount", Service, Num, false;
    "service.price.currency", Service, Str, false;
    "service.price.unit", Service, Str, false;
}

/// Number of node-level fields.
pub const NODE_SLOTS: usize = 25;
/// Number of service-level fields.
pub const SERVICE_SLOTS: usize = 15;

/// The field named `name`.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// A field's value in one node or service.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Not set.
    Missing,
    /// A string.
    Str(Box<str>),
    /// A number.
    Num(f64),
    /// A list of strings.
    List(Box<[Box<str>]>),
    /// A boolean.
    Bool(bool),
}

/// The projection of one entry.
#[derive(Clone, Debug)]
pub struct Facets {
    /// The subject.
    pub subject: PublicKey,
    /// Its seq.
    pub seq: u64,
    /// Content hash of the stored record.
    pub hash: [u8; 32],
    /// When the record expires.
    pub expires_at: UnixMillis,
    /// Node-level values (`NODE_SLOTS`, `alive` filled in at query time) followed by each
    /// service's values (`SERVICE_SLOTS` each): one allocation per entry, so a scan touches
    /// one cache line run per node instead of one allocation per service.
    values: Box<[Value]>,
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn opt_s(v: Option<&str>) -> Value {
    v.map_or(Value::Missing, s)
}

fn num(v: Option<f64>) -> Value {
    v.map_or(Value::Missing, Value::Num)
}

fn list<'a>(v: impl IntoIterator<Item = &'a str>) -> Value {
    Value::List(v.into_iter().map(Into::into).collect())
}

/// Serde name of a unit enum variant (`public_cloud`, `low`, …).
fn enum_name<T: serde::Serialize>(v: &T) -> Value {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(name)) => Value::Str(name.into()),
        _ => Value::Missing,
    }
}

impl Facets {
    /// Projects an entry.
    pub fn of(entry: &Entry) -> Self {
        let sd = &entry.record.sd;
        let doc = &sd.document;
        let mut values = node_values(sd.subject, sd.seq, doc);
        values.reserve_exact(doc.services.len() * SERVICE_SLOTS);
        for svc in &doc.services {
            values.extend(service_values(svc, &entry.attested));
        }
        Self {
            subject: sd.subject,
            seq: sd.seq,
            hash: entry.hash,
            expires_at: sd.expires_at,
            values: values.into(),
        }
    }

    /// The node-level values, by slot.
    pub fn node(&self) -> &[Value] {
        &self.values[..NODE_SLOTS]
    }

    /// Each service's values, by slot.
    pub fn services(&self) -> std::slice::ChunksExact<'_, Value> {
        self.values[NODE_SLOTS..].chunks_exact(SERVICE_SLOTS)
    }

    /// Whether the node offers no service.
    pub fn has_no_services(&self) -> bool {
        self.values.len() == NODE_SLOTS
    }
}

fn node_values(subject: PublicKey, seq: u64, doc: &SdDocument) -> Vec<Value> {
    let p = &doc.participant;
    let n = &doc.node;
    let hw = n.hardware.as_ref();
    let e = n.energy.as_ref();
    let rt = n.realtime.as_ref();
    let v = vec![
        s(&subject.to_string()),
        Value::Num(seq as f64),
        Value::Bool(false),
        s(&p.legal_name),
        list(p.registration.iter().map(|r| r.value.as_str())),
        s(&p.headquarters.country),
        opt_s(p.headquarters.subdivision.as_deref()),
        s(n.kind.as_str()),
        s(&n.location.country),
        opt_s(n.location.subdivision.as_deref()),
        opt_s(n.location.city.as_deref()),
        opt_s(hw.and_then(|h| h.cpu_arch.as_deref())),
        num(hw.and_then(|h| h.vcpus).map(f64::from)),
        num(hw.and_then(|h| h.memory_gib).map(f64::from)),
        hw.map_or(Value::Missing, |h| {
            list(h.gpus.iter().map(|g| g.model.as_str()))
        }),
        num(hw.map(|h| h.gpus.iter().map(|g| f64::from(g.count)).sum())),
        num(hw.and_then(|h| h.storage_tib)),
        num(n.network.map(|x| x.bandwidth_gbps)),
        num(e.and_then(|e| e.pue)),
        num(e.and_then(|e| e.renewable_pct).map(f64::from)),
        num(e.and_then(|e| e.heat_reuse_pct).map(f64::from)),
        num(e.and_then(|e| e.water_usage_l_per_kwh)),
        opt_s(e.and_then(|e| e.source.as_deref())),
        rt.map_or(Value::Missing, |r| enum_name(&r.latency_class)),
        num(rt.and_then(|r| r.max_latency_ms).map(f64::from)),
    ];
    debug_assert_eq!(v.len(), NODE_SLOTS);
    v
}

fn service_values(svc: &Service, attested: &[(String, String)]) -> Vec<Value> {
    let v = vec![
        s(&svc.id),
        s(svc.kind.as_str()),
        opt_s(svc.name.as_deref()),
        opt_s(svc.description.as_deref()),
        list(svc.keywords.iter().map(String::as_str)),
        opt_s(svc.endpoint.as_deref()),
        list(svc.data_location.iter().map(String::as_str)),
        list(svc.processing_location.iter().map(String::as_str)),
        list(svc.certifications.iter().map(|c| c.scheme.as_str())),
        list(
            attested
                .iter()
                .filter(|(id, _)| id == &svc.id)
                .map(|(_, scheme)| scheme.as_str()),
        ),
        svc.protection_level
            .as_ref()
            .map_or(Value::Missing, enum_name),
        svc.consumption.as_ref().map_or(Value::Missing, enum_name),
        num(svc.price.as_ref().and_then(|p| parse_decimal(&p.amount))),
        opt_s(svc.price.as_ref().map(|p| p.currency.as_str())),
        opt_s(svc.price.as_ref().map(|p| p.unit.as_str())),
    ];
    debug_assert_eq!(v.len(), SERVICE_SLOTS);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_table() {
        assert_eq!(
            FIELDS.iter().filter(|f| f.level == Level::Node).count(),
            NODE_SLOTS
        );
        assert_eq!(
            FIELDS.iter().filter(|f| f.level == Level::Service).count(),
            SERVICE_SLOTS
        );
        for (i, f) in FIELDS.iter().filter(|f| f.level == Level::Node).enumerate() {
            assert_eq!(f.slot, i, "{}", f.name);
        }
        for (i, f) in FIELDS
            .iter()
            .filter(|f| f.level == Level::Service)
            .enumerate()
        {
            assert_eq!(f.slot, i, "{}", f.name);
        }
    }
}
