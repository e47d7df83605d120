#!/usr/bin/env python3
"""Writes the JSON-LD fixtures of gaiax/tests/fixtures/ld with an independent implementation.

JSON-LD goes to RDF with pyld (Digital Bazaar's JSON-LD processor for Python), canonical
N-Quads come from rdf-canonize (Digital Bazaar's RDFC-1.0 for JavaScript, run with node);
JsonWebSignature2020 proofs are made over them with `cryptography`, the way
jsonld-signatures and the Gaia-X 22.10 signer tool make them. gaiamesh's own code (oxjsonld, our RDFC-1.0,
our verifier) must then agree with them: the fixtures are test vectors, not round trips.

    pip install pyld cryptography
    npm install --prefix scripts/gaiax-fixtures
    python3 scripts/gaiax-fixtures/make_ld_fixtures.py

Contexts are read from the ssi-contexts crate in the cargo registry (the same bytes gaiamesh
bundles) and from tests/fixtures/ld/contexts for the project-written Gaia-X stand-in.
Keys are generated fresh on every run, so re-running rewrites every signed fixture.
"""

import base64
import copy
import glob
import hashlib
import json
import os
import subprocess
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pyld import jsonld

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
if not os.path.isdir(os.path.join(HERE, "node_modules", "rdf-canonize")):
    sys.exit("run `npm install --prefix scripts/gaiax-fixtures` first (rdf-canonize)")
OUT = os.path.join(ROOT, "gaiax", "tests", "fixtures", "ld")

SSI = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/ssi-contexts-0.1.*")))
if not SSI:
    sys.exit("ssi-contexts is not in the cargo registry: run `cargo fetch` first")
SSI = SSI[-1]
CONTEXTS = {
    "https://www.w3.org/2018/credentials/v1": "w3c-2018-credentials-v1.jsonld",
    "https://www.w3.org/ns/credentials/v2": "w3c-ns-credentials-v2.jsonld",
    "https://w3id.org/security/suites/jws-2020/v1": "w3id-jws2020-v1.jsonld",
}
GX_URL = "https://registry.lab.gaia-x.eu/development/api/trusted-shape-registry/v1/shapes/jsonld/trustframework#"
GX_FILE = os.path.join(OUT, "contexts", "gx-trustframework-stand-in.jsonld")


def loader(url, _options=None):
    if url in CONTEXTS:
        path = os.path.join(SSI, CONTEXTS[url])
    elif url == GX_URL:
        path = GX_FILE
    else:
        raise jsonld.JsonLdError("not bundled: " + url, "loading document failed")
    with open(path, encoding="utf-8") as f:
        return {"contextUrl": None, "documentUrl": url, "document": json.load(f)}


def canon(doc):
    """JSON-LD to RDF with pyld, then RDFC-1.0 with rdf-canonize (node).

    pyld's own URDNA2015 is not used: on graphs of several indistinguishable blank nodes it
    labels differently from rdf-canonize (7 of the 12 random graphs below, pyld 3.3.0 against
    rdf-canonize 4.0.1), and rdf-canonize
    is the reference implementation of the W3C test suite.
    """
    nquads = jsonld.to_rdf(doc, {"format": "application/n-quads", "documentLoader": loader})
    out = subprocess.run(
        ["node", os.path.join(HERE, "canonize.mjs")],
        input=nquads,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"rdf-canonize failed on:\n{nquads}\n{out.stderr}")
    return out.stdout


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(n, size):
    return b64(n.to_bytes(size, "big"))


def write(name, value):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(value, str):
            f.write(value)
        else:
            json.dump(value, f, indent=2, ensure_ascii=False)
            f.write("\n")


# ---------------------------------------------------------------- canonicalization vectors
CANON = {
    # Plain credential: nested blank nodes, numbers, booleans, a language string, a date.
    "credential": {
        "@context": [
            "https://www.w3.org/2018/credentials/v1",
            {"ex": "https://example.org/ns#", "xsd": "http://www.w3.org/2001/XMLSchema#"},
        ],
        "type": ["VerifiableCredential"],
        "issuer": "did:example:issuer",
        "issuanceDate": "2026-11-01T10:00:00Z",
        "credentialSubject": {
            "id": "did:example:subject",
            "ex:name": {"@value": "Nordwolke", "@language": "de"},
            "ex:capacity": 12,
            "ex:pue": 1.25,
            "ex:green": True,
            "ex:quote": "line one\nline \"two\"\t\\",
            "ex:address": {"ex:country": "DE", "ex:street": {"ex:line": "Hauptstr. 1"}},
            "ex:since": {"@value": "2020-01-01", "@type": "xsd:date"},
        },
    },
    # Indistinguishable blank nodes: a three-cycle with one tail, needs N-degree hashing.
    "cycle": {
        "@context": {"ex": "https://example.org/ns#", "next": {"@id": "ex:next", "@type": "@id"}},
        "@graph": [
            {"@id": "_:x", "next": "_:y"},
            {"@id": "_:y", "next": "_:z"},
            {"@id": "_:z", "next": "_:x", "ex:tail": {"ex:v": "t"}},
        ],
    },
    # Two identical twins and a named graph.
    "twins": {
        "@context": {"ex": "https://example.org/ns#"},
        "@id": "https://example.org/g",
        "@graph": [
            {"@id": "https://example.org/a", "ex:knows": [{"ex:name": "same"}, {"ex:name": "same"}, {"ex:name": "other"}]},
            {"@id": "_:q", "ex:p": {"@id": "_:r"}},
            {"@id": "_:r", "ex:p": {"@id": "_:q"}},
        ],
    },
    # A presentation embedding a credential (its own graph).
    "presentation": {
        "@context": ["https://www.w3.org/2018/credentials/v1"],
        "type": "VerifiablePresentation",
        "verifiableCredential": [
            {
                "@context": ["https://www.w3.org/2018/credentials/v1", {"ex": "https://example.org/ns#"}],
                "type": "VerifiableCredential",
                "issuer": "did:example:i",
                "issuanceDate": "2026-11-01T10:00:00Z",
                "credentialSubject": {"ex:v": [1, 2, 3]},
            }
        ],
    },
}

# Random graphs of mostly indistinguishable blank nodes (one or two predicates, few
# literals): these exercise Hash N-Degree Quads and its permutations, where a mistake in
# ordering or in the issuer copies changes the labels.
import random

rng = random.Random(20261201)
for n in range(12):
    nodes = [f"_:n{i}" for i in range(rng.randint(3, 7))]
    graph = []
    for node in nodes:
        entry = {"@id": node}
        for target in rng.sample(nodes, rng.randint(1, 2)):
            pred = rng.choice(["ex:p", "ex:p", "ex:q"])
            entry.setdefault(pred, []).append({"@id": target})
        if rng.random() < 0.2:
            entry["ex:v"] = rng.choice(["a", "b"])
        graph.append(entry)
    CANON[f"random-{n:02}"] = {"@context": {"ex": "https://example.org/ns#"}, "@graph": graph}

for name, doc in CANON.items():
    write(f"canon/{name}.jsonld", doc)
    write(f"canon/{name}.nq", canon(doc))


# ---------------------------------------------------------------- JsonWebSignature2020
def sign_bytes(kind, key, data):
    if kind == "EdDSA":
        return key.sign(data)
    if kind == "ES256":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.sign(
        data,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def public_jwk(kind, key, kid):
    pub = key.public_key()
    if kind == "EdDSA":
        from cryptography.hazmat.primitives import serialization

        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw), "kid": kid}
    if kind == "ES256":
        n = pub.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": int_b64(n.x, 32), "y": int_b64(n.y, 32), "kid": kid}
    n = pub.public_numbers()
    return {"kty": "RSA", "n": int_b64(n.n, 256), "e": int_b64(n.e, 3), "kid": kid}


def sign_ld(doc, kind, key, vm, gaiax_digest=False):
    """Adds a JsonWebSignature2020 proof.

    Standard form (W3C CCG lds-jws2020, jsonld-signatures): the JWS (b64=false) covers
    SHA-256(c14n(proof options)) || SHA-256(c14n(document)).
    Gaia-X 22.10 form (compliance service and signer tool): it covers the hex string of
    SHA-256(c14n(document)) only.
    """
    doc = copy.deepcopy(doc)
    doc.pop("proof", None)
    proof = {
        "type": "JsonWebSignature2020",
        "created": "2026-11-01T10:00:00Z",
        "proofPurpose": "assertionMethod",
        "verificationMethod": vm,
    }
    doc_hash = hashlib.sha256(canon(doc).encode()).digest()
    if gaiax_digest:
        payload = doc_hash.hex().encode()
    else:
        options = dict(proof)
        options["@context"] = doc["@context"]
        payload = hashlib.sha256(canon(options).encode()).digest() + doc_hash
    header = b64(json.dumps({"alg": kind, "b64": False, "crit": ["b64"]}, separators=(",", ":")).encode())
    sig = sign_bytes(kind, key, header.encode() + b"." + payload)
    proof["jws"] = header + ".." + b64(sig)
    doc["proof"] = proof
    return doc


PARTICIPANT = {
    "@context": [
        "https://www.w3.org/2018/credentials/v1",
        "https://w3id.org/security/suites/jws-2020/v1",
        GX_URL,
    ],
    "type": ["VerifiableCredential"],
    "id": "https://nordwolke.example/credentials/participant.json",
    "issuer": "did:web:nordwolke.example",
    "issuanceDate": "2026-11-01T10:00:00.000Z",
    "credentialSubject": {
        "id": "https://nordwolke.example/participant.json#cs",
        "type": "gx:LegalParticipant",
        "gx:legalName": "Nordwolke GmbH",
        "gx:legalRegistrationNumber": {"id": "https://nordwolke.example/lrn.json#cs"},
        "gx:headquarterAddress": {"gx:countrySubdivisionCode": "DE-BY"},
        "gx:legalAddress": {"gx:countrySubdivisionCode": "DE-BE"},
    },
}

REGISTRATION = {
    "@context": ["https://www.w3.org/2018/credentials/v1", "https://w3id.org/security/suites/jws-2020/v1", GX_URL],
    "type": ["VerifiableCredential"],
    "id": "https://nordwolke.example/credentials/lrn.json",
    "issuer": "did:web:registration.notary.example",
    "issuanceDate": "2026-11-01T10:00:00.000Z",
    "credentialSubject": {
        "id": "https://nordwolke.example/lrn.json#cs",
        "type": "gx:legalRegistrationNumber",
        "gx:vatID": "DE123456789",
    },
}

KEYS = {
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "PS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
jwks = []
for kind, key in KEYS.items():
    kid = f"JWK2020-{kind}"
    jwks.append(public_jwk(kind, key, kid))
    vm = f"did:web:nordwolke.example#{kid}"
    write(f"jws2020/participant-{kind.lower()}.json", sign_ld(PARTICIPANT, kind, key, vm))
write(
    "jws2020/participant-gaiax-digest-ps256.json",
    sign_ld(PARTICIPANT, "PS256", KEYS["PS256"], "did:web:nordwolke.example#JWK2020-PS256", True),
)
# A presentation holding the PS256 credential, itself signed by the holder (EdDSA).
VP = {
    "@context": ["https://www.w3.org/2018/credentials/v1", "https://w3id.org/security/suites/jws-2020/v1"],
    "type": "VerifiablePresentation",
    "holder": "did:web:nordwolke.example",
    "verifiableCredential": [
        sign_ld(PARTICIPANT, "PS256", KEYS["PS256"], "did:web:nordwolke.example#JWK2020-PS256"),
        sign_ld(REGISTRATION, "ES256", KEYS["ES256"], "did:web:registration.notary.example#JWK2020-ES256"),
    ],
}
write(
    "jws2020/presentation-eddsa.json",
    sign_ld(VP, "EdDSA", KEYS["EdDSA"], "did:web:nordwolke.example#JWK2020-EdDSA"),
)
for j in jwks:
    write(f"jws2020/{j['kid']}.jwk.json", j)
print("wrote", OUT)
