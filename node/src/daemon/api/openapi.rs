//! The OpenAPI 3.1 description of the node API (`GET /api/v1/openapi.json`). A test checks
//! that every route the router serves is described here and the other way round.

use serde_json::{Value, json};

/// Every path the API serves (fault injection included, though only routed when enabled).
#[cfg(test)]
pub(crate) const PATHS: [&str; 28] = [
    "/api/v1/federation",
    "/api/v1/updates",
    "/api/v1/directory/{peer}/gaiax",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/events",
    "/api/v1/status",
    "/api/v1/peers",
    "/api/v1/directory",
    "/api/v1/directory/{peer}",
    "/api/v1/sd",
    "/api/v1/revocations",
    "/api/v1/debug/gossip",
    "/api/v1/debug/flood",
    "/api/v1/health",
    "/api/v1/repo",
    "/api/v1/repo/bundle",
    "/api/v1/repo/release",
    "/api/v1/repo/fetch",
    "/api/v1/debug/corrupt-blobs",
    "/api/v1/assets",
    "/api/v1/exchange",
    "/api/v1/exchange/fetch",
    "/api/v1/exchange/fetch/{job}",
    "/api/v1/audit",
    "/api/v1/audit/verify",
    "/api/v1/debug/spoiled-agreement",
    "/api/v1/backup",
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The document.
pub(crate) fn document() -> Value {
    let bearer = json!([{"bearer": []}]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gaiamesh node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The local API of one gaiamesh node. Reads are open on the bound \
                address (loopback by default); writes and the exchange and audit reads need \
                `Authorization: Bearer <token>` with the token from DATA_DIR/api.json (mode \
                0600). Every error is an application/problem+json document."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
                    "description": "RFC 9457 problem document; every error response is one",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "parameter": {"type": "string",
                            "description": "the query parameter, path segment, header or body at fault"}
                    }},
                "Status": {"type": "object",
                    "required": ["peer_id", "federation", "connected_peers", "admitted_peers",
                        "directory_entries", "listen_addrs"],
                    "properties": {
                        "peer_id": {"type": "string"},
                        "federation": {"type": "string"},
                        "connected_peers": {"type": "integer"},
                        "admitted_peers": {"type": "integer"},
                        "directory_entries": {"type": "integer"},
                        "listen_addrs": {"type": "array", "items": {"type": "string"}},
                        "own_seq": {"type": ["integer", "null"]},
                        "mode": {"enum": ["full", "light"]}
                    }},
                "Peer": {"type": "object", "required": ["peer_id", "admitted"],
                    "properties": {
                        "peer_id": {"type": "string"},
                        "admitted": {"type": "boolean"},
                        "last_seen_ms": {"type": ["integer", "null"]},
                        "score": {"type": ["number", "null"],
                            "description": "gossipsub peer score; negative means penalised"}
                    }},
                "QueryReply": {"type": "object",
                    "required": ["source", "truncated", "plan", "total", "examined", "matches"],
                    "properties": {
                        "source": {"enum": ["replica", "dht"]},
                        "providers": {"type": "integer"},
                        "truncated": {"type": "boolean"},
                        "plan": {"type": "string"},
                        "total": {"type": "integer"},
                        "examined": {"type": "integer"},
                        "matches": {"type": "array", "items": {"type": "object"}}
                    }},
                "Entry": {"type": "object",
                    "required": ["subject", "seq", "received_at_ms", "document"],
                    "properties": {
                        "subject": {"type": "string"},
                        "seq": {"type": "integer"},
                        "received_at_ms": {"type": "integer"},
                        "from": {"type": ["string", "null"]},
                        "last_seen_ms": {"type": ["integer", "null"]},
                        "document": {"type": "object"}
                    }}
            }
        },
        "paths": {
            "/metrics": {"get": {
                "summary": "Prometheus metrics (OpenMetrics text): gaiamesh_* and libp2p_*",
                "responses": {"200": {"description": "metrics",
                    "content": {"application/openmetrics-text": {}}}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document",
                "responses": {"200": json_response("OpenAPI 3.1", json!({"type": "object"}))}}},
            "/api/v1/health": {"get": {"summary": "Liveness: 200 while the event loop answers",
                "responses": {"200": json_response("alive", json!({"type": "object"})),
                    "503": error_response("shutting down")}}},
            "/api/v1/events": {"get": {
                "summary": "Server-sent events: sd_stored, sd_rejected, published, \
                    peer_admitted, peer_refused, revocations (and lagged when a slow reader \
                    missed some); data is one JSON object with a `type` field",
                "responses": {"200": {"description": "event stream",
                    "content": {"text/event-stream": {}}}}}},
            "/api/v1/status": {"get": {"summary": "Node status",
                "responses": {"200": json_response("status",
                    json!({"$ref": "#/components/schemas/Status"})),
                    "503": error_response("shutting down")}}},
            "/api/v1/peers": {"get": {"summary": "Connected peers",
                "responses": {"200": json_response("peers",
                    json!({"type": "array", "items": {"$ref": "#/components/schemas/Peer"}}))}}},
            "/api/v1/federation": {"get": {"summary": "The genesis this node trusts and the revocations in force (never the pre-shared key)",
                "responses": {"200": json_response("federation", json!({"type": "object",
                    "required": ["id", "name", "authorities", "repository", "revocation_version", "revoked"]}))}}},
            "/api/v1/directory": {"get": {
                "summary": "Query the directory (docs/query.md); a light node answers \
                    through the DHT and needs an equality on an announced attribute",
                "parameters": [
                    {"name": "q", "in": "query", "required": true, "schema": {"type": "string"}},
                    {"name": "sort", "in": "query", "schema": {"type": "string"},
                        "description": "FIELD or -FIELD"},
                    {"name": "limit", "in": "query",
                        "schema": {"type": "integer", "default": 100, "maximum": 10000}},
                    {"name": "offset", "in": "query",
                        "schema": {"type": "integer", "default": 0},
                        "description": "skip this many matches (after sorting): paging"}
                ],
                "responses": {
                    "200": json_response("matches",
                        json!({"$ref": "#/components/schemas/QueryReply"})),
                    "400": error_response("the query does not parse (with the column)"),
                    "409": error_response("a light node cannot answer this query through the DHT"),
                    "503": error_response("too many light queries running; retry (Retry-After)")
                }}},
            "/api/v1/directory/{peer}": {"get": {"summary": "One directory entry",
                "parameters": [{"name": "peer", "in": "path", "required": true,
                    "schema": {"type": "string"}, "description": "PeerId of the subject"}],
                "responses": {
                    "200": json_response("entry", json!({"$ref": "#/components/schemas/Entry"})),
                    "400": error_response("not a PeerId"),
                    "404": error_response("not in the directory")
                }}},
            "/api/v1/directory/{peer}/gaiax": {"get": {
                "summary": "The entry's self-description as unsigned Gaia-X (Loire) JSON-LD \
                    credentials in a presentation (docs/gaiax.md)",
                "parameters": [{"name": "peer", "in": "path", "required": true,
                    "schema": {"type": "string"}, "description": "PeerId of the subject"}],
                "responses": {
                    "200": {"description": "a verifiable presentation",
                        "content": {"application/ld+json": {"schema": {"type": "object"}}}},
                    "400": error_response("not a PeerId"),
                    "404": error_response("not in the directory")
                }}},
            "/api/v1/updates": {"get": {
                "summary": "The last directory updates this node stored (at most 1024 kept, \
                    not persisted), newest first",
                "parameters": [
                    {"name": "subject", "in": "query", "schema": {"type": "string"},
                        "description": "only this subject's versions"},
                    {"name": "limit", "in": "query",
                        "schema": {"type": "integer", "default": 50, "maximum": 1024}}
                ],
                "responses": {"200": json_response("updates", json!({"type": "object",
                    "required": ["updates", "capacity"]}))}}},
            "/api/v1/sd": {"post": {
                "summary": "Sign and publish a self-description document (TOML or JSON); \
                    an empty body re-publishes the current one with seq + 1",
                "security": bearer,
                "requestBody": {"content": {"application/toml": {}, "application/json": {}}},
                "responses": {
                    "415": error_response("Content-Type is neither application/toml nor application/json"),
                    "200": json_response("published",
                        json!({"type": "object", "properties": {
                            "seq": {"type": "integer"},
                            "gossip_after_ms": {"type": "number",
                                "description": "from issuing the version until it was handed to gossip"}}})),
                    "401": error_response("missing or wrong token"),
                    "409": error_response("no document to re-publish yet (empty body)"),
                    "422": error_response("the document is invalid (every error with its path)"),
                    "500": error_response("storing it failed")
                }}},
            "/api/v1/revocations": {"post": {
                "summary": "Put a threshold-signed revocation list (TOML) in force",
                "security": bearer,
                "requestBody": {"content": {"text/plain": {}}},
                "responses": {
                    "200": json_response("applied", json!({"type": "object",
                        "properties": {"removed_entries": {"type": "integer"}}})),
                    "401": error_response("missing or wrong token"),
                    "422": error_response("the list does not verify")
                }}},
            "/api/v1/repo": {"get": {
                "summary": "The trusted repository release: versions, validity, every target \
                    with its category, size, BLAKE3 hash, local state and fetch progress",
                "responses": {"200": json_response("release", json!({"type": "object"}))}}},
            "/api/v1/repo/bundle": {"get": {
                "summary": "The trusted repository metadata (root chain, timestamp, \
                    snapshot, targets) as hex of its postcard encoding",
                "responses": {"200": json_response("bundle", json!({"type": "object",
                    "properties": {"bundle": {"type": "string"}}}))}}},
            "/api/v1/repo/release": {"post": {
                "summary": "Trust a new release signed by the CLI and import its file (a \
                    path on this machine); the release must name the file's BLAKE3 hash. \
                    The release is announced to the mesh",
                "security": bearer,
                "requestBody": {"content": {"application/json": {"schema": {"type": "object",
                    "properties": {"bundle": {"type": "string"}, "file": {"type": "string"}}}}}},
                "responses": {
                    "200": json_response("trusted", json!({"type": "object"})),
                    "401": error_response("missing or wrong token"),
                    "422": error_response("the release does not verify or does not name the file")
                }}},
            "/api/v1/repo/fetch": {"post": {
                "summary": "Fetch a target (NAME@VERSION, or NAME for its newest version) from \
                    the mesh; progress in GET /api/v1/repo",
                "security": bearer,
                "requestBody": {"content": {"text/plain": {}}},
                "responses": {
                    "200": json_response("started", json!({"type": "object"})),
                    "401": error_response("missing or wrong token"),
                    "404": error_response("not in the trusted release"),
                    "409": error_response("no valid release (none yet, or it expired)")
                }}},
            "/api/v1/assets": {"get": {"summary": "The assets this node offers (DATA_DIR/assets.json)",
                "responses": {"200": json_response("assets", json!({"type": "array"}))}}},
            "/api/v1/exchange": {"get": {"summary": "Recent fetch jobs (the last 64)",
                "security": bearer,
                "responses": {"200": json_response("jobs", json!({"type": "object"})),
                    "401": error_response("missing or wrong token")}}},
            "/api/v1/exchange/fetch": {"post": {
                "summary": "Negotiate and fetch an asset in the background: JSON \
                    {provider, asset} or {query[, asset]}, purpose, out (absolute path), \
                    onward_transfer (default false), attempts (default 3). Returns {job}",
                "security": bearer,
                "requestBody": {"content": {"application/json": {}}},
                "responses": {
                    "200": json_response("started", json!({"type": "object",
                        "properties": {"job": {"type": "integer"}}})),
                    "400": error_response("malformed JSON"),
                    "401": error_response("missing or wrong token"),
                    "409": error_response("a fetch into the same out is running"),
                    "422": error_response("a field is invalid (named)"),
                    "503": error_response("64 fetches are running; retry (Retry-After)")
                }}},
            "/api/v1/exchange/fetch/{job}": {"get": {
                "summary": "One fetch job: state (negotiating, transferring, completed, \
                    failed), provider, bytes of total, resumed_from, attempts (providers \
                    that failed and why), agreement, negotiation_ms, transfer_ms, error",
                "security": bearer,
                "parameters": [{"name": "job", "in": "path", "required": true,
                    "schema": {"type": "integer"}}],
                "responses": {
                    "200": json_response("the job", json!({"type": "object"})),
                    "401": error_response("missing or wrong token"),
                    "404": error_response("no such job")
                }}},
            "/api/v1/audit": {"get": {
                "summary": "Audit log entries from `from` (default 0), at most `limit` \
                    (default 1000): agreements, transfers, receipts, refusals",
                "parameters": [
                    {"name": "from", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "security": bearer,
                "responses": {"200": json_response("entries", json!({"type": "object"})),
                    "401": error_response("missing or wrong token")}}},
            "/api/v1/audit/verify": {"get": {
                "summary": "Check the audit chain (hashes, signatures, links, signed head)",
                "security": bearer,
                "responses": {
                    "401": error_response("missing or wrong token"),
                    "200": json_response("intact", json!({"type": "object"})),
                    "409": error_response("broken: names the first bad entry")
                }}},
            "/api/v1/backup": {"post": {
                "summary": "Write a consistent backup of the data dir (key, configuration, \
                    catalogue and audit log snapshots) to DATA_DIR/backups/; answers its path \
                    and manifest. `gaiamesh backup` calls it and moves the file",
                "security": bearer,
                "responses": {
                    "200": json_response("written", json!({"type": "object"})),
                    "401": error_response("missing or wrong token"),
                    "500": error_response("the backup could not be written")
                }}},
            "/api/v1/debug/corrupt-blobs": {"post": {
                "summary": "Testing only, routed when [api] fault_injection = true: `on` \
                    makes this node serve blob data with a flipped byte, `off` stops it",
                "security": bearer,
                "requestBody": {"content": {"text/plain": {}}},
                "responses": {
                    "200": json_response("set", json!({"type": "object"})),
                    "401": error_response("missing or wrong token"),
                    "404": {"description": "fault injection is off"}
                }}},
            "/api/v1/debug/spoiled-agreement": {"post": {
                "summary": "Testing only, routed when [api] fault_injection = true: present \
                    this node's latest agreement with `provider`, spoiled `how` (altered: \
                    the purpose changed, signatures kept; forged: the provider signature \
                    made with another key), to that provider; returns its answer",
                "security": bearer,
                "requestBody": {"content": {"application/json": {}}},
                "responses": {
                    "200": json_response("the provider's answer", json!({"type": "object"})),
                    "401": error_response("missing or wrong token"),
                    "404": {"description": "fault injection is off"}
                }}},
            "/api/v1/debug/flood": {"post": {
                "summary": "Testing only, routed when [api] fault_injection = true: publish \
                    per_second invalid messages a second on the directory topic for seconds \
                    (JSON {per_second: 1–100000, seconds: 1–3600}); peers penalise and then \
                    disconnect this node. Progress in status.flood",
                "security": bearer,
                "requestBody": {"content": {"application/json": {}}},
                "responses": {
                    "200": json_response("started", json!({"type": "object"})),
                    "400": error_response("malformed JSON"),
                    "401": error_response("missing or wrong token"),
                    "404": {"description": "fault injection is off"},
                    "422": error_response("a value out of range")
                }}},
            "/api/v1/debug/gossip": {"post": {
                "summary": "Testing only, routed when [api] fault_injection = true: publish \
                    the raw body on the directory topic (peers will penalise this node)",
                "security": bearer,
                "requestBody": {"content": {"application/octet-stream": {}}},
                "responses": {
                    "200": json_response("published", json!({"type": "object"})),
                    "401": error_response("missing or wrong token"),
                    "404": {"description": "fault injection is off"}
                }}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_exactly_the_served_paths() {
        let doc = document();
        let described: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut served = PATHS.to_vec();
        served.sort_unstable();
        let mut described_sorted = described.clone();
        described_sorted.sort_unstable();
        assert_eq!(described_sorted, served);
        let router_src = include_str!("../api.rs");
        for p in PATHS {
            assert!(
                router_src.contains(&format!("\"{p}\"")),
                "{p} is described but not routed"
            );
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
