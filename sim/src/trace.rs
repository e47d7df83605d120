//! Core traces on disk: what a node's [`gaiamesh_core::node::NodeState`] was told and
//! decided, one JSON entry per line ([`gaiamesh_core::node::trace`]). The daemon writes
//! them with `GAIAMESH_CORE_TRACE=1` (peers as the hex of their PeerId bytes), the simulator
//! for its scenario's `trace_node` (peers as 8 hex digits of their index). Both spell a peer
//! so that the strings sort as the peers do, so [`load`] can replace them by their ranks and
//! [`check`] replays either through the simulator's instantiation, `NodeState<u32>`.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use gaiamesh_core::node::trace::{self, Entry, Replayed};

/// Why a trace could not be read or did not replay.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a trace entry.
    #[error("{path}:{line}: not a core trace entry: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// The trace holds no start of a core.
    #[error("{path}: no core start recorded (not a trace from its beginning)")]
    NoStart {
        /// The file.
        path: String,
    },
    /// The replay decided otherwise than the recording.
    #[error("{path}: the core decides otherwise on replay at {divergence}")]
    Diverged {
        /// The file.
        path: String,
        /// Where and how.
        divergence: String,
    },
}

/// The simulator's spelling of peer `i`.
pub fn peer_name(i: u32) -> String {
    format!("{i:08x}")
}

/// `entries` as JSON lines, peers spelt by [`peer_name`].
pub fn to_jsonl(entries: &[Entry<u32>]) -> String {
    let mut out = String::new();
    for e in entries {
        let named = e.clone().map_peers(peer_name);
        // An entry of strings, numbers and enums always serialises.
        if let Ok(line) = serde_json::to_string(&named) {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// Reads a trace file, peers replaced by their ranks among all peers in it.
pub fn load(path: &Path) -> Result<Vec<Entry<u32>>, TraceError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Read {
        path: p.clone(),
        source,
    })?;
    parse(&text, &p)
}

/// [`load`] on text; `path` names it in errors.
pub fn parse(text: &str, path: &str) -> Result<Vec<Entry<u32>>, TraceError> {
    let mut named = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e: Entry<String> = serde_json::from_str(line).map_err(|e| TraceError::Parse {
            path: path.to_owned(),
            line: n + 1,
            message: e.to_string(),
        })?;
        named.push(e);
    }
    let mut ranks: BTreeMap<String, u32> = BTreeMap::new();
    for e in &named {
        let _ = e.clone().map_peers(|p| ranks.insert(p, 0));
    }
    for (i, r) in ranks.values_mut().enumerate() {
        *r = u32::try_from(i).unwrap_or(u32::MAX);
    }
    Ok(named
        .into_iter()
        .map(|e| e.map_peers(|p| ranks.get(&p).copied().unwrap_or(u32::MAX)))
        .collect())
}

/// Replays `entries` (from `path`) and says what went through.
pub fn check(entries: &[Entry<u32>], path: &str) -> Result<Replayed, TraceError> {
    let done = trace::replay(entries).map_err(|d| TraceError::Diverged {
        path: path.to_owned(),
        divergence: d.to_string(),
    })?;
    if done.starts == 0 {
        return Err(TraceError::NoStart {
            path: path.to_owned(),
        });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_and_headless_traces_are_named() {
        let e = parse("{\"start\":", "t.jsonl").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.jsonl:1: not a core trace entry"),
            "{e}"
        );
        let step = "{\"step\":{\"input\":{\"connected\":\"0a\"},\"decisions\":[{\"request_admission\":\"0a\"}]}}";
        let entries = parse(&format!("\n{step}\n"), "t.jsonl").unwrap();
        assert_eq!(entries.len(), 1);
        let e = check(&entries, "t.jsonl").unwrap_err();
        assert!(matches!(e, TraceError::NoStart { .. }), "{e}");
    }

    #[test]
    fn peers_become_ranks_in_their_sort_order() {
        let line = |p: &str| format!("{{\"step\":{{\"input\":{{\"disconnected\":\"{p}\"}}}}}}");
        let text = [line("ff"), line("0a"), line("7c"), line("0a")].join("\n");
        let peers: Vec<u32> = parse(&text, "t")
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Entry::Step {
                    input: trace::Input::Disconnected(p),
                    ..
                } => p,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(peers, vec![2, 0, 1, 0]);
    }
}
