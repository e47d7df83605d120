//! Queries over the 24 example self-descriptions: results, plans, sort, limit, alive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_directory::{
    catalogue::{Catalogue, QueryOptions},
    query::{self, Access},
    store::MemoryStore,
};
use gaiamesh_protocol::{
    identity::Keypair,
    testing::{NOW, TestFederation, example_documents},
};

fn examples() -> (Catalogue<MemoryStore>, Vec<Keypair>) {
    let f = TestFederation::new(3, 2, true);
    let docs = example_documents();
    let keys: Vec<Keypair> = (0..docs.len())
        .map(|i| Keypair::from_secret_bytes(&[i as u8 + 1; 32]))
        .collect();
    let mut c = Catalogue::open(MemoryStore::new(), f.trust.clone(), 1000).unwrap();
    let batch = docs
        .into_iter()
        .zip(&keys)
        .map(|(d, k)| (f.sign_document(k, 1, d), None))
        .collect();
    let outs = c.merge_batch(batch, NOW).unwrap();
    assert!(outs.iter().all(|o| o.changed()), "{outs:?}");
    (c, keys)
}

fn names(c: &Catalogue<MemoryStore>, q: &str, opts: QueryOptions) -> Vec<String> {
    let expr = query::parse(q).unwrap();
    c.query(&expr, opts, NOW)
        .matches
        .iter()
        .map(|m| {
            let e = c.get(&m.subject).unwrap().unwrap();
            let doc = &e.record.sd.document;
            match m.service_index {
                Some(i) => format!("{}/{}", doc.participant.legal_name, doc.services[i].id),
                None => doc.participant.legal_name.clone(),
            }
        })
        .collect()
}

#[test]
fn the_design_query_finds_the_right_services() {
    let (c, _) = examples();
    let mut got = names(
        &c,
        "service.kind = storage.object and service.data_location in [DE, AT, LU]
         and service.certification = C5 and service.price.amount < 0.02
         and node.energy.renewable_pct >= 80 and not node.kind = edge",
        QueryOptions::default(),
    );
    got.sort();
    assert_eq!(
        got,
        vec![
            "Lëtzebuerg Sovereign Cloud S.A./sov-obj",
            "Nordwolke GmbH/s3-eu-central"
        ]
    );
}

#[test]
fn operators() {
    let (c, _) = examples();
    let count = |q: &str| names(&c, q, QueryOptions::default()).len();
    assert_eq!(
        count("node.location.country = de"),
        5,
        "case-insensitive; DE has 3 nodes with 5 services"
    );
    assert_eq!(count("node.kind = hpc"), 4);
    assert_eq!(count("service.kind = ai.training"), 3);
    assert_eq!(count("node.hardware.gpus has \"NVIDIA H100 SXM\""), 1);
    assert_eq!(
        count("service.description ~ kubernetes"),
        2,
        "Seine k8s, Lumière training"
    );
    assert_eq!(
        count("service.keywords has kubernetes"),
        2,
        "Seine k8s, Polder edge"
    );
    assert!(count("service.kind != data.resource") > 30);
    assert_eq!(count("service.kind = data.resource"), 3);
    assert_eq!(
        count("service.certification = SecNumCloud or service.certification = ENS"),
        4
    );
    assert_eq!(count("node.realtime.latency_class = ultra_low"), 2);
    assert_eq!(count("node.energy.pue <= 1.08"), 5);
    assert_eq!(
        count("participant.legal_name ~ gmbh and node.location.country != DE"),
        4,
        "Alpen and Donau, 2 services each"
    );
    assert_eq!(count("alive = true"), 0);
}

#[test]
fn sort_and_limit() {
    let (c, _) = examples();
    let opts = QueryOptions {
        sort: Some("service.price.amount".parse().unwrap()),
        limit: Some(3),
        offset: 0,
    };
    let cheapest = names(&c, "service.kind = storage.object", opts);
    assert_eq!(
        cheapest,
        vec![
            "Nordic Hydro Cloud AB/cold-archive",
            "Tejo Cloud, Lda./obj-lisboa",
            "Nordwolke GmbH/s3-eu-central"
        ]
    );
    let opts = QueryOptions {
        sort: Some("node.energy.renewable_pct:desc".parse().unwrap()),
        limit: Some(1),
        offset: 0,
    };
    let greenest = names(&c, "node.kind = hpc", opts);
    assert_eq!(greenest.len(), 1);
    assert!(
        greenest[0].starts_with("Aurora") || greenest[0].starts_with("Lumière"),
        "{greenest:?}"
    );
    assert!("nope".parse::<query::Sort>().is_err());
    assert!("service.kind:sideways".parse::<query::Sort>().is_err());
}

#[test]
fn pages_follow_one_another_in_sort_order() {
    let (c, _) = examples();
    let page = |offset, limit| {
        let opts = QueryOptions {
            sort: Some("service.price.amount".parse().unwrap()),
            limit: Some(limit),
            offset,
        };
        names(&c, "service.kind = storage.object", opts)
    };
    let all = page(0, 1000);
    assert!(all.len() > 4, "{all:?}");
    let mut paged = page(0, 3);
    paged.extend(page(3, 3));
    paged.extend(page(6, 1000));
    assert_eq!(paged, all);
    assert!(
        page(all.len(), 10).is_empty(),
        "a page past the end is empty"
    );
}

#[test]
fn planner_picks_the_most_selective_index() {
    let (c, _) = examples();
    let expr =
        query::parse("node.location.country = LU and service.kind = storage.object").unwrap();
    let plan = c.plan(&expr);
    match &plan.access {
        Access::Index { driver, intersect } => {
            assert_eq!(
                (driver.field.name, driver.nodes),
                ("node.location.country", 1)
            );
            assert_eq!(
                (intersect[0].field.name, intersect[0].nodes),
                ("service.kind", 6)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        plan.to_string(),
        "access: index node.location.country in [lu] (1 node(s))\n        \u{2229} index service.kind in [storage.object] (6 node(s))\nfilter: (node.location.country = lu and service.kind = storage.object)"
    );
    // Intersection: DE has 3 nodes, storage.object 6; only Nordwolke is in both.
    let expr =
        query::parse("service.kind = storage.object and node.location.country = DE").unwrap();
    let out = c.query(&expr, QueryOptions::default(), NOW);
    assert_eq!((out.examined, out.total), (1, 1));
    let out = c.query(&expr, QueryOptions::default(), NOW);
    assert_eq!((out.examined, out.total), (1, 1));
    // No indexed equality at the top level: full scan.
    let expr = query::parse("node.energy.pue < 1.1 or node.kind = edge").unwrap();
    assert!(matches!(
        c.plan(&expr).access,
        Access::FullScan { entries: 24 }
    ));
}

#[test]
fn alive_follows_presence() {
    let (c, keys) = examples();
    c.touch(&keys[0].public(), NOW);
    let opts = QueryOptions::default();
    assert_eq!(
        names(&c, "alive = true", opts).len(),
        2,
        "Nordwolke has two services"
    );
    let later = gaiamesh_protocol::time::UnixMillis(NOW.0 + 31_000);
    let expr = query::parse("alive = true").unwrap();
    assert_eq!(c.query(&expr, opts, later).total, 0);
}

#[test]
fn light_mode_gives_the_same_answer_as_a_full_replica() {
    use gaiamesh_directory::dht;
    let (c, _) = examples();
    let f = TestFederation::new(3, 2, true);
    // A stand-in DHT: every entry's attribute keys → providers, and sd/ keys → records.
    let mut providers: std::collections::HashMap<Vec<u8>, Vec<_>> = Default::default();
    let mut records = std::collections::HashMap::new();
    for (subject, _, _) in c.items() {
        let e = c.get(&subject).unwrap().unwrap();
        for k in dht::attribute_keys(&e) {
            providers.entry(k).or_default().push(subject);
        }
        records.insert(dht::sd_key(&subject), e.record);
    }
    for q in [
        "node.location.country = DE and service.kind = storage.object",
        "service.certification = C5 and node.energy.renewable_pct >= 90",
        "node.kind in [edge, telco_edge] and node.realtime.max_latency_ms <= 10",
    ] {
        let expr = query::parse(q).unwrap();
        let plan = dht::light_plan(&expr).unwrap();
        let mut fetched = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for key in &plan.keys {
            for p in providers.get(key).into_iter().flatten() {
                if seen.insert(*p) {
                    fetched.push(records[&dht::sd_key(p)].clone());
                }
            }
        }
        let (light, _) =
            dht::light_query(&f.trust, fetched, &plan, QueryOptions::default(), NOW).unwrap();
        let full = c.query(&expr, QueryOptions::default(), NOW);
        assert_eq!(light.matches, full.matches, "{q}");
        assert!(!full.matches.is_empty(), "{q}");
        assert!(
            light.examined < c.len(),
            "{q}: light mode fetched everything"
        );
    }
}

/// A re-published version that moves a node (one indexed value changes, the others stay)
/// moves it in the index: found by the new value, gone from the old one's posting, still
/// found by the values it kept; the planner's counts follow.
#[test]
fn a_new_version_moves_its_subject_in_the_index() {
    let f = TestFederation::new(3, 2, true);
    let (mut c, keys) = examples();
    let lu = query::parse("node.location.country = LU").unwrap();
    let (subject, index) = {
        let out = c.query(&lu, QueryOptions::default(), NOW);
        let s = out.matches[0].subject;
        assert!(out.matches.iter().all(|m| m.subject == s), "one node in LU");
        let i = keys.iter().position(|k| k.public() == s).unwrap();
        (s, i)
    };
    let mut doc = c.get(&subject).unwrap().unwrap().record.sd.document.clone();
    let kind = doc.node.kind;
    let pt = {
        let expr = query::parse("node.location.country = PT").unwrap();
        c.plan(&expr).access
    };
    let pt_before = match pt {
        Access::Index { driver, .. } => driver.nodes,
        other => panic!("{other:?}"),
    };
    doc.node.location.country = "PT".into();
    doc.node.location.subdivision = None;
    let out = c
        .merge_batch(vec![(f.sign_document(&keys[index], 2, doc), None)], NOW)
        .unwrap();
    assert!(out[0].changed(), "{out:?}");
    // Nodes matching `q`.
    let count = |c: &Catalogue<MemoryStore>, q: &str| {
        let expr = query::parse(q).unwrap();
        let out = c.query(&expr, QueryOptions::default(), NOW);
        let nodes: std::collections::BTreeSet<_> = out.matches.iter().map(|m| m.subject).collect();
        nodes.len()
    };
    assert_eq!(count(&c, "node.location.country = LU"), 0);
    assert_eq!(count(&c, "node.location.country = PT"), pt_before + 1);
    assert!(count(&c, &format!("node.kind = {}", kind.as_str())) >= 1);
    match c.plan(&lu).access {
        Access::Index { driver, .. } => assert_eq!(driver.nodes, 0),
        other => panic!("{other:?}"),
    }
    // An unchanged re-publication keeps every posting.
    let doc = c.get(&subject).unwrap().unwrap().record.sd.document.clone();
    let before = count(&c, &format!("node.kind = {}", kind.as_str()));
    c.merge_batch(vec![(f.sign_document(&keys[index], 3, doc), None)], NOW)
        .unwrap();
    assert_eq!(count(&c, "node.location.country = PT"), pt_before + 1);
    assert_eq!(count(&c, &format!("node.kind = {}", kind.as_str())), before);
}
