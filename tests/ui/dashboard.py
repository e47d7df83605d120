#!/usr/bin/env python3
"""Browser tests of the dashboard (docs/dashboard.md), run by deploy/ci/dashboard.sh.

Starts `gaiamesh devnet`, drives Debian's headless Chromium with Playwright, loads every page,
asserts on what they show against the node's own API, saves a screenshot of each page and
fails on any console error. Usage:

    dashboard.py --gaiamesh target/release/gaiamesh --out ci-artifacts/dashboard [--docs docs/images]
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def log(msg):
    print(f"dashboard: {msg}", flush=True)


class Node:
    """One devnet node's API, read from its api.json."""

    def __init__(self, data_dir):
        info = json.load(open(os.path.join(data_dir, "api.json")))
        self.dir = data_dir
        self.base = info["address"].rstrip("/")
        self.token = info["token"]

    def get(self, path, auth=False):
        req = urllib.request.Request(self.base + path)
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def query(self, q, limit=50, offset=0):
        qs = urllib.parse.urlencode({"q": q, "limit": limit, "offset": offset})
        return self.get(f"/api/v1/directory?{qs}")


def start_devnet(gaiamesh, work):
    """Starts a devnet and returns (process, dashboard URL) once it runs."""
    cmd = [gaiamesh, "devnet", "--nodes", "4", "--dir", os.path.join(work, "devnet"),
           "--repo-mib", "1", "--exchange-mib", "1", "--timeout", "90s"]
    log(" ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(work, "devnet.err"), "w"),
                            text=True, start_new_session=True)
    url = None
    deadline = time.time() + 180
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        m = re.match(r"dashboard of node0: (\S+)", line)
        if m:
            url = m.group(1)
        if line.startswith("running;"):
            break
    if url is None or proc.poll() is not None:
        stop(proc)
        sys.exit("dashboard: the devnet did not start or printed no dashboard URL:\n" + "".join(lines)
                 + open(os.path.join(work, "devnet.err")).read()[-4000:])
    return proc, url


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def save_answers(out, n0, n1, subject):
    """Saves the OpenAPI document and answers of the running nodes (success and error) for
    deploy/ci/check_openapi.py, which checks each against its declared schema."""
    d = os.path.join(out, "api")
    os.makedirs(d, exist_ok=True)
    with urllib.request.urlopen(n0.base + "/api/v1/openapi.json", timeout=10) as r:
        open(os.path.join(out, "openapi.json"), "wb").write(r.read())
    calls = [
        (n0, "/api/v1/status", False), (n0, "/api/v1/health", False), (n0, "/api/v1/peers", False),
        (n0, "/api/v1/federation", False), (n0, "/api/v1/updates?limit=5", False),
        (n0, "/api/v1/directory?q=seq%20%3E%3D%200&limit=20", False),
        (n0, f"/api/v1/directory/{subject}", False), (n0, "/api/v1/repo", False),
        (n0, "/api/v1/repo/bundle", False), (n0, "/api/v1/repo/holders", False), (n0, "/api/v1/assets", False), (n0, "/api/v1/assets", True),
        (n1, "/api/v1/exchange", True), (n1, "/api/v1/exchange/fetch/1", True),
        (n1, "/api/v1/compute", True), (n1, "/api/v1/compute/1", True),
        (n0, "/api/v1/compute/reviews", True), (n0, "/api/v1/compute/reviews/999", True),
        (n1, "/api/v1/audit?from=0&limit=50", True), (n1, "/api/v1/audit/verify", True),
        (n0, "/api/v1/audit", True),
        # Errors: problem documents.
        (n0, "/api/v1/directory?q=node.location.country%20%3D", False),
        (n0, "/api/v1/directory/not-a-peer", False), (n0, "/api/v1/exchange", False),
        (n1, "/api/v1/exchange/fetch/999", True), (n1, "/api/v1/compute/999", True),
    ]
    for i, (node, path, auth) in enumerate(calls):
        req = urllib.request.Request(node.base + path)
        if auth:
            req.add_header("Authorization", f"Bearer {node.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        json.dump({"method": "GET", "path": path, "status": status, "body": json.loads(body)},
                  open(os.path.join(d, f"{i:02d}.json"), "w"), indent=1)
    log(f"saved {len(calls)} API answers for the schema check")


def expected_markers(rows, anchors):
    """One marker per (provider, storage|processing, country with an anchor): app.js's rule."""
    keys = set()
    for r in rows:
        s = r.get("service") or {}
        for role, codes in (("storage", s.get("data_location") or []),
                            ("processing", s.get("processing_location") or [])):
            for code in codes:
                c = code[:2].upper()
                if c in anchors:
                    keys.add((r["subject"], role, c))
    return keys


class Browser:
    def __init__(self, pw, out):
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        self.out = out
        self.errors = []
        self.expected = []
        self.shots = []

    def page(self, name):
        ctx = self.browser.new_context(viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(15000)

        def on_console(m, name=name):
            if m.type == "error":
                self.errors.append(f"{name}: console error: {m.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda e, name=name: self.errors.append(f"{name}: uncaught: {e}"))
        return page

    def expect(self, name, status):
        """The next failed request of page `name` with HTTP `status` is provoked by the test:
        Chromium logs every failed request as a console error, even one the page handles."""
        self.expected.append(f"{name}: console error: Failed to load resource: the server responded "
                             f"with a status of {status}")

    def unexpected_errors(self):
        left = list(self.errors)
        for e in self.expected:
            hit = next((x for x in left if x.startswith(e)), None)
            if hit is None:
                left.append(f"expected but not seen: {e}")
            else:
                left.remove(hit)
        return left

    def open(self, page, url, name):
        page.goto(url)
        # The router marks the page it rendered (no script evaluation: the CSP forbids eval).
        page.wait_for_selector(f"body[data-page='{name}']", state="attached")
        return page

    def shot(self, page, name):
        path = os.path.join(self.out, f"{name}.png")
        page.screenshot(path=path, full_page=True)
        self.shots.append(path)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    log(f"ok: {msg}")


def run(args):
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="gaiamesh-ui-")
    proc, url = start_devnet(args.gaiamesh, work)
    log(f"dashboard at {url}")
    n0 = Node(os.path.join(work, "devnet", "node0"))
    n1 = Node(os.path.join(work, "devnet", "node1"))
    check(url == f"{n0.base}/ui/", "devnet prints node0's dashboard URL")
    try:
        with sync_playwright() as pw:
            b = Browser(pw, args.out)
            status = n0.get("/api/v1/status")

            # Overview.
            p = b.open(b.page("overview"), url, "overview")
            p.wait_for_selector("#directory-size")
            check(p.inner_text("#peer-id") == status["peer_id"], "overview shows this node's PeerId")
            check(int(p.inner_text("#directory-size")) == n0.get("/api/v1/status")["directory_entries"],
                  "overview's directory size is the node's")
            check(p.locator("#peers tbody tr").count() == len(n0.get("/api/v1/peers")), "overview lists every peer")
            b.shot(p, "overview")

            # Directory: every row, the provider count, the map.
            anchors = n0.get("/ui/countries.json")["countries"]
            p = b.open(b.page("directory"), url + "#/directory", "directory")
            p.wait_for_selector("#providers")
            everything = n0.query("seq >= 0", limit=500)
            check(int(p.get_attribute("#total", "data-total")) == everything["total"],
                  f"directory total is the API's ({everything['total']} rows)")
            subjects = {r.get_attribute("data-subject") for r in p.locator("#providers tbody tr").all()}
            entries = n0.get("/api/v1/status")["directory_entries"]
            check(len(subjects) == entries, f"the table names every provider of the directory ({entries})")
            want = expected_markers(everything["matches"], anchors)
            got = {(m.get_attribute("data-subject"), m.get_attribute("data-role"), m.get_attribute("data-country"))
                   for m in p.locator("#map .marker").all()}
            check(p.locator("#map .marker").count() == len(want) and got == want,
                  f"the map has one marker per provider location ({len(want)})")
            b.shot(p, "directory")

            # A query narrows the table.
            q = "node.location.country = DE"
            narrowed = n0.query(q)["total"]
            p.fill("#q", q)
            p.click("#search")
            p.wait_for_selector(f"#effective:text-is('{q}')")
            p.wait_for_selector("#providers")
            rows = p.locator("#providers tbody tr").count()
            check(rows == narrowed and 0 < rows < everything["total"], f"'{q}' narrows the table to {narrowed} rows")
            countries = {t.strip() for t in p.locator("#providers tbody tr td:nth-child(2)").all_inner_texts()}
            check(countries == {"DE"}, "every narrowed row is in DE")

            # Filters add up with the query.
            p.fill("#cert", "C5")
            p.fill("#renew", "90")
            p.click("#search")
            eff = 'node.location.country = DE and service.certification = "C5" and node.energy.renewable_pct >= 90'
            p.locator("#effective").filter(has_text="renewable_pct >= 90").wait_for()
            check(p.locator("#providers tbody tr").count() == n0.query(eff)["total"],
                  "certification and energy filters narrow as the API does")

            # A query error names the column.
            p.fill("#cert", "")
            p.fill("#renew", "")
            p.fill("#q", "node.location.country = DE and")
            b.expect("directory", 400)
            p.click("#search")
            p.wait_for_selector("#query-error")
            text = p.inner_text("#query-error")
            check("column" in text and "^" in text, f"a bad query shows its column: {text.splitlines()[0]}")
            b.shot(p, "directory-error")

            # Server-side paging.
            p = b.open(b.page("paging"), url + "#/directory?limit=4", "directory")
            p.wait_for_selector("#providers")
            first = [r.get_attribute("data-subject") for r in p.locator("#providers tbody tr").all()]
            check(len(first) == 4 and p.locator("#next").count() == 1, "a page holds 'limit' rows and links the next")
            p.click("#next")
            p.locator("#total").filter(has_text="rows 5–8").wait_for()
            page2 = n0.query("seq >= 0", limit=4, offset=4)["matches"]
            got2 = [r.get_attribute("data-subject") for r in p.locator("#providers tbody tr").all()]
            check(got2 == [m["subject"] for m in page2], "the next page is the API's offset 4")

            # Provider: signatures, membership, export.
            subject = everything["matches"][0]["subject"]
            p = b.open(b.page("provider"), url + f"#/provider/{subject}", "provider")
            p.wait_for_selector("#signature")
            check(p.get_attribute("#signature [data-check]", "data-check") == "ok"
                  and "valid" in p.inner_text("#signature"), "the provider page shows a valid signature")
            check("valid" in p.inner_text("#membership"), "and a valid membership credential")
            entry = n0.get(f"/api/v1/directory/{subject}")
            check(p.inner_text("#provider-name") == entry["document"]["participant"]["legal_name"],
                  "the provider page names the participant")
            href = p.get_attribute("#gaiax-export", "href")
            r = p.request.get(n0.base + href)
            vp = r.json()
            check(r.ok and "verifiableCredential" in json.dumps(vp), "the Gaia-X export link gives a presentation")
            check(p.locator("#map .marker").count() >= 1, "the provider's locations are on its map")
            b.shot(p, "provider")

            # Federation.
            fed = n0.get("/api/v1/federation")
            p = b.open(b.page("federation"), url + "#/federation", "federation")
            p.wait_for_selector("#federation-id")
            check(p.inner_text("#federation-id") == fed["id"], "the federation page shows the genesis id")
            check(p.inner_text("#authority-threshold") ==
                  f"{fed['authorities']['threshold']} of {len(fed['authorities']['keys'])}",
                  "and the authorities' threshold")
            b.shot(p, "federation")

            # Repository.
            repo = n0.get("/api/v1/repo")
            p = b.open(b.page("repository"), url + "#/repository", "repository")
            p.wait_for_selector("#targets")
            check(p.locator("#targets tbody tr").count() == len(repo["targets"]), "the repository page lists every target")
            check("complete" in p.inner_text("#targets"), "node0 holds the released component")
            holders = n0.get("/api/v1/repo/holders")["targets"][0]["holders"]
            shown = int(p.get_attribute("#targets tbody tr td.holders", "data-holders"))
            check(status["peer_id"] in holders and shown == len(holders),
                  f"the page shows the {len(holders)} node(s) holding the component, node0 among them")
            b.shot(p, "repository")

            # Exchanges on node1 (the consumer): the token, then a fetch appears live.
            p = b.open(b.page("exchanges"), f"{n1.base}/ui/#/exchanges", "exchanges")
            p.wait_for_selector("#need-token")
            p.fill("#token", "not-the-token")
            b.expect("exchanges", 401)
            b.expect("exchanges", 401)  # the jobs and the audit log are asked at once
            p.press("#token", "Enter")
            p.wait_for_selector("#token-error")
            check("refused" in p.inner_text("#token-error"), "a wrong token is refused with a message")
            p.fill("#token", n1.token)
            p.press("#token", "Enter")
            p.wait_for_selector("#jobs")
            p.wait_for_selector("#audit-verify .ok")
            before = p.locator("#jobs tbody tr").count()
            jobs_before = len(n1.get("/api/v1/exchange", auth=True)["jobs"])
            check(before == jobs_before, f"the exchanges page lists node1's {before} transfer(s)")
            asset = n0.get("/api/v1/assets")[0]["id"]
            out = os.path.join(work, "fetched.bin")
            subprocess.run([args.gaiamesh, "exchange", "fetch", "--data-dir", n1.dir, "--provider", status["peer_id"],
                            "--asset", asset, "--purpose", "research.climate", "--out", out, "--timeout", "60s"],
                           check=True, stdout=subprocess.DEVNULL)
            # No reload: the SSE stream (exchange_changed) brings the new job in.
            p.locator("#jobs tbody tr").nth(before).wait_for()
            p.locator(f"#jobs tbody tr[data-state='completed']").nth(before).wait_for()
            check(p.locator("#jobs tbody tr").count() == before + 1, "the new transfer appeared live, completed")
            total = n1.get("/api/v1/audit?from=0&limit=1", auth=True)["total"]
            p.locator("#audit-box h2").filter(has_text=f"Audit log ({total} entries)").wait_for()
            check("intact" in p.inner_text("#audit-verify"), "the audit log verifies, grown live")
            b.shot(p, "exchanges")

            save_answers(args.out, n0, n1, subject)
            # The live metric names, for deploy/ci/check_grafana.py (after the exchange, so
            # labelled families have series too).
            for node, name in ((n0, "node0"), (n1, "node1")):
                with urllib.request.urlopen(node.base + "/metrics", timeout=10) as r:
                    open(os.path.join(args.out, f"metrics-{name}.txt"), "wb").write(r.read())
            bad = b.unexpected_errors()
            check(not bad, "no console errors on any page (besides the refusals the test provokes)"
                  + (f": {bad}" if bad else ""))
            b.browser.close()
    finally:
        stop(proc)
    if args.docs:
        os.makedirs(args.docs, exist_ok=True)
        for s in b.shots:
            name = os.path.basename(s)
            if name != "directory-error.png":
                shutil.copy(s, os.path.join(args.docs, f"dashboard-{name}"))
        log(f"screenshots copied to {args.docs}")
    shutil.rmtree(work, ignore_errors=True)
    log(f"all checks passed; screenshots in {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gaiamesh", required=True, help="the gaiamesh binary")
    ap.add_argument("--out", required=True, help="directory for the screenshots (CI artefacts)")
    ap.add_argument("--docs", help="also copy the screenshots here (docs/images)")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
