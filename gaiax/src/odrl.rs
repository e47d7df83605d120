//! An ODRL policy (`gx:servicePolicy` as an object) read for the terms gaiamesh's usage
//! policies can enforce: purposes, residency (jurisdiction), the validity period, a use
//! count and whether the data may be passed on. Everything else is listed as not mapped,
//! with the reason, so that nothing is dropped silently.

use serde::Serialize;
use serde_json::Value;

use crate::json::{items, local, text, texts};

/// What an ODRL policy says that a usage policy can enforce.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OdrlTerms {
    /// Permitted purposes (`purpose` constraints).
    pub purposes: Vec<String>,
    /// Where the consumer must be (`spatial` constraints: country codes or `EU`).
    pub jurisdiction: Vec<String>,
    /// Not before (`dateTime` `gt`/`gteq`), as written.
    pub valid_from: Option<String>,
    /// Not after (`dateTime` `lt`/`lteq`), as written.
    pub valid_until: Option<String>,
    /// Most uses (`count` `lt`/`lteq`).
    pub max_transfers: Option<u32>,
    /// `Some(false)` when distribution is prohibited.
    pub onward_transfer: Option<bool>,
    /// What was not mapped, each with where and why.
    pub unmapped: Vec<String>,
}

impl OdrlTerms {
    /// One line for the self-description's free-text usage policy.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.purposes.is_empty() {
            parts.push(format!("purposes {}", self.purposes.join(", ")));
        }
        if !self.jurisdiction.is_empty() {
            parts.push(format!("consumers in {}", self.jurisdiction.join(", ")));
        }
        if let Some(f) = &self.valid_from {
            parts.push(format!("from {f}"));
        }
        if let Some(u) = &self.valid_until {
            parts.push(format!("until {u}"));
        }
        if let Some(n) = self.max_transfers {
            parts.push(format!("at most {n} uses"));
        }
        if self.onward_transfer == Some(false) {
            parts.push("no onward transfer".into());
        }
        if parts.is_empty() {
            parts.push("no enforceable terms".into());
        }
        let mut s = format!("ODRL: {}", parts.join("; "));
        if !self.unmapped.is_empty() {
            s.push_str(&format!(" ({} term(s) not mapped)", self.unmapped.len()));
        }
        s
    }
}

/// The terms of the ODRL policy `policy` (a Policy, Set, Offer or Agreement object).
pub fn map(policy: &Value) -> OdrlTerms {
    let mut t = OdrlTerms::default();
    let Some(obj) = policy.as_object() else {
        t.unmapped.push("the policy is not an object".into());
        return t;
    };
    for (k, v) in obj {
        match local(k).as_str() {
            "@context" | "@type" | "type" | "uid" | "@id" | "id" | "profile" | "target"
            | "assigner" => {}
            "permission" => {
                for (i, rule) in items(v).into_iter().enumerate() {
                    permission(rule, &format!("permission[{i}]"), &mut t);
                }
            }
            "prohibition" => {
                for (i, rule) in items(v).into_iter().enumerate() {
                    let actions = rule.get("action").map(texts).unwrap_or_default();
                    let at = format!("prohibition[{i}]");
                    if actions
                        .iter()
                        .any(|a| matches!(local(a).as_str(), "distribute" | "transfer"))
                    {
                        t.onward_transfer = Some(false);
                    } else {
                        t.unmapped.push(format!(
                            "{at}: prohibited {} (only distribution maps, to onward_transfer = false)",
                            actions.join(", ")
                        ));
                    }
                }
            }
            other => t
                .unmapped
                .push(format!("{other}: no usage-policy equivalent")),
        }
    }
    t
}

fn permission(rule: &Value, at: &str, t: &mut OdrlTerms) {
    let Some(r) = rule.as_object() else {
        t.unmapped.push(format!("{at}: not an object"));
        return;
    };
    for (k, v) in r {
        match local(k).as_str() {
            "action" | "target" | "assigner" | "uid" | "@type" | "type" => {}
            "assignee" => t.unmapped.push(format!(
                "{at}.assignee {}: usage policies name participants by registration number or peer id, not by DID",
                texts(v).join(", ")
            )),
            "constraint" => {
                for (j, c) in items(v).into_iter().enumerate() {
                    constraint(c, &format!("{at}.constraint[{j}]"), t);
                }
            }
            "duty" => t
                .unmapped
                .push(format!("{at}.duty: duties are not enforced by usage policies")),
            other => t.unmapped.push(format!("{at}.{other}: not mapped")),
        }
    }
}

fn constraint(c: &Value, at: &str, t: &mut OdrlTerms) {
    // An operand or operator as written (a string, or an object's @id / @value), without
    // its namespace.
    let field = |name: &str| -> String {
        let v = c.get(name).or_else(|| c.get(format!("odrl:{name}")));
        let raw = match v {
            Some(o @ Value::Object(_)) => o
                .get("@id")
                .or_else(|| o.get("@value"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            Some(other) => text(other),
            None => None,
        }
        .unwrap_or_default();
        raw.rsplit(['#', '/', ':'])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let (left, op) = (field("leftOperand"), field("operator"));
    let right = c
        .get("rightOperand")
        .or_else(|| c.get("odrl:rightOperand"))
        .map(texts)
        .unwrap_or_default();
    let (l, o) = (left.to_ascii_lowercase(), op.to_ascii_lowercase());
    let member = matches!(o.as_str(), "eq" | "isanyof" | "ispartof" | "isa");
    match (l.as_str(), o.as_str()) {
        ("purpose", _) if member => t.purposes.extend(right),
        ("spatial", _) if member => t
            .jurisdiction
            .extend(right.into_iter().map(|s| s.to_ascii_uppercase())),
        ("datetime", "lt" | "lteq") if right.len() == 1 => t.valid_until = right.into_iter().next(),
        ("datetime", "gt" | "gteq") if right.len() == 1 => t.valid_from = right.into_iter().next(),
        ("count", "lt" | "lteq") => match right.first().and_then(|n| n.parse::<u32>().ok()) {
            Some(n) => t.max_transfers = Some(if o == "lt" { n.saturating_sub(1) } else { n }),
            None => t
                .unmapped
                .push(format!("{at}: count {right:?} is not a number")),
        },
        _ => t.unmapped.push(format!(
            "{at}: {left} {op} {} has no usage-policy equivalent",
            right.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::map;

    #[test]
    fn enforceable_terms_map_and_the_rest_is_listed() {
        let policy = json!({
            "@context": "http://www.w3.org/ns/odrl.jsonld",
            "@type": "Offer",
            "uid": "https://provider.example/policy/1",
            "permission": [{
                "action": "use",
                "assignee": "did:web:consumer.example",
                "constraint": [
                    {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["research", "education"]},
                    {"leftOperand": "spatial", "operator": "eq", "rightOperand": "eu"},
                    {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}},
                    {"leftOperand": "count", "operator": "lt", "rightOperand": "6"},
                    {"leftOperand": "payAmount", "operator": "eq", "rightOperand": "10"}
                ],
                "duty": [{"action": "attribute"}]
            }],
            "prohibition": [{"action": "distribute"}, {"action": "commercialize"}]
        });
        let t = map(&policy);
        assert_eq!(t.purposes, ["research", "education"]);
        assert_eq!(t.jurisdiction, ["EU"]);
        assert_eq!(t.valid_until.as_deref(), Some("2027-01-01T00:00:00Z"));
        assert_eq!(t.max_transfers, Some(5));
        assert_eq!(t.onward_transfer, Some(false));
        let all = t.unmapped.join("\n");
        for what in ["assignee", "payAmount", "duty", "commercialize"] {
            assert!(all.contains(what), "{what} not listed in {all}");
        }
        assert!(
            t.summary()
                .starts_with("ODRL: purposes research, education; consumers in EU")
        );
        assert!(
            t.summary().ends_with("(4 term(s) not mapped)"),
            "{}",
            t.summary()
        );
    }
}
