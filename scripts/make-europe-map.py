#!/usr/bin/env python3
"""Makes the dashboard's map of Europe (node/ui/europe.svg) and its country anchors
(node/ui/countries.json) from Natural Earth's 1:50m admin-0 countries (public domain), as
redistributed in TopoJSON by the `world-atlas` npm package (ISC):

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    scripts/make-europe-map.py package/countries-50m.json node/ui

The projection is the Lambert azimuthal equal-area of EPSG:3035 (centre 52N 10E) on a sphere;
node/ui/app.js projects node coordinates with the same parameters (in countries.json).
"""
import json
import math
import sys

LAT0, LON0 = 52.0, 10.0
R = 1000.0  # the projected unit; the view below is scaled to about 1000 x 900
# ISO 3166-1 numeric -> alpha-2, for Europe and its neighbours on the map.
ISO = {
    "008": "AL", "020": "AD", "040": "AT", "112": "BY", "056": "BE", "070": "BA", "100": "BG",
    "191": "HR", "196": "CY", "203": "CZ", "208": "DK", "233": "EE", "246": "FI", "250": "FR",
    "276": "DE", "300": "GR", "348": "HU", "352": "IS", "372": "IE", "380": "IT", "428": "LV",
    "438": "LI", "440": "LT", "442": "LU", "470": "MT", "498": "MD", "492": "MC", "499": "ME",
    "528": "NL", "807": "MK", "578": "NO", "616": "PL", "620": "PT", "642": "RO", "643": "RU",
    "674": "SM", "688": "RS", "703": "SK", "705": "SI", "724": "ES", "752": "SE", "756": "CH",
    "804": "UA", "826": "GB", "792": "TR", "336": "VA", "504": "MA", "012": "DZ", "788": "TN",
    "434": "LY", "818": "EG", "268": "GE", "051": "AM", "031": "AZ", "398": "KZ", "760": "SY",
    "422": "LB", "376": "IL", "400": "JO", "368": "IQ", "364": "IR", "304": "GL", "234": "FO",
    "833": "IM", "832": "JE", "831": "GG", "248": "AX", "292": "GI",
}
NAME_ISO = {"Kosovo": "XK", "N. Cyprus": None}


def project(lon, lat):
    phi, lam = math.radians(lat), math.radians(lon - LON0)
    phi0 = math.radians(LAT0)
    k = math.sqrt(2 / (1 + math.sin(phi0) * math.sin(phi)
                       + math.cos(phi0) * math.cos(phi) * math.cos(lam)))
    x = R * k * math.cos(phi) * math.sin(lam)
    y = R * k * (math.cos(phi0) * math.sin(phi) - math.sin(phi0) * math.cos(phi) * math.cos(lam))
    return x, -y


def decode_arcs(topo):
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring(arcs, idx):
    pts = []
    for i in idx:
        a = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        pts.extend(a if not pts else a[1:])
    return pts


def area_centroid(pts):
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        c = x0 * y1 - x1 * y0
        a += c
        cx += (x0 + x1) * c
        cy += (y0 + y1) * c
    if abs(a) < 1e-9:
        return 0.0, pts[0]
    return abs(a) / 2, (cx / (3 * a), cy / (3 * a))


def main():
    src, out = sys.argv[1], sys.argv[2]
    topo = json.load(open(src))
    arcs = decode_arcs(topo)
    # The view: Iceland to the Caspian's west shore, North Cape to Crete and Cyprus.
    corners = [project(lon, lat) for lon, lat in
               [(-24, 63), (-10, 36), (45, 40), (40, 70), (25, 71.5), (10, 34), (34, 34.5)]]
    x0 = min(p[0] for p in corners) - 20
    x1 = max(p[0] for p in corners) + 20
    y0 = min(p[1] for p in corners) - 20
    y1 = max(p[1] for p in corners) + 20
    scale = 1000.0 / (x1 - x0)
    W, H = 1000, round((y1 - y0) * scale)

    def view(x, y):
        return (x - x0) * scale, (y - y0) * scale

    paths, anchors = [], {}
    for g in topo["objects"]["countries"]["geometries"]:
        polys = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]] if g["type"] == "Polygon" else []
        name = g.get("properties", {}).get("name", "")
        code = ISO.get(str(g.get("id", "")), NAME_ISO.get(name))
        d = []
        best = (0.0, None)
        for poly in polys:
            for r_i, r in enumerate(poly):
                geo = ring(arcs, r)
                # Skip what lies far outside Europe's longitudes before projecting (the far
                # side of the globe folds over in an azimuthal projection).
                if all(lon < -35 or lon > 70 or lat < 25 for lon, lat in geo):
                    continue
                pts = [view(*project(lon, lat)) for lon, lat in geo]
                if all(x < -50 or x > W + 50 or y < -50 or y > H + 50 for x, y in pts):
                    continue
                if r_i == 0:
                    a, c = area_centroid(pts)
                    if a > best[0]:
                        best = (a, c)
                s, last = [], None
                for x, y in pts:
                    p = (round(x), round(y))
                    if p != last:
                        s.append(f"{p[0]:g},{p[1]:g}")
                        last = p
                if len(s) >= 3:
                    d.append("M" + "L".join(s) + "Z")
        if not d:
            continue
        attrs = f' id="c-{code}" data-name="{name}"' if code else f' data-name="{name}"'
        paths.append(f'<path{attrs} d="{"".join(d)}"/>')
        if code and best[1] is not None:
            cx, cy = best[1]
            if 0 <= cx <= W and 0 <= cy <= H:
                anchors[code] = [round(cx, 1), round(cy, 1)]
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
           f'class="europe"><title>Europe (Natural Earth 1:50m, public domain)</title>'
           f'<g class="countries">{"".join(paths)}</g></svg>\n')
    open(f"{out}/europe.svg", "w").write(svg)
    meta = {
        "source": "Natural Earth 1:50m admin-0 countries (public domain) via world-atlas 2.0.2",
        "projection": {"kind": "laea", "lat0": LAT0, "lon0": LON0, "radius": R,
                       "x0": x0, "y0": y0, "scale": scale, "width": W, "height": H},
        "countries": dict(sorted(anchors.items())),
    }
    open(f"{out}/countries.json", "w").write(json.dumps(meta, indent=1) + "\n")
    print(f"europe.svg: {len(paths)} countries, {W}x{H}; anchors for {len(anchors)}")


if __name__ == "__main__":
    main()
