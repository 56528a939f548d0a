#!/usr/bin/env python3
"""Compare certsweep's stored leaf fingerprints with the independent client's.

    python3 compare.py INDEPENDENT.tsv ENDPOINTS.json INTEROP.db

INDEPENDENT.tsv (written by run.sh), one endpoint a line, tab-separated:
port, expected protocol, daemon, SHA-256 of the certificate the daemon was
configured with, SHA-256 that openssl s_client / rdp_cert.py saw ("-": none).
ENDPOINTS.json is `certsweep endpoints --format json` (one object a line).
INTEROP.db is certsweep's database: when its observations table has a
protocol column, the protocol certsweep stored for each port must be the
expected one too.

Prints one row per endpoint and exits 1 unless every row is OK:
  OK        same leaf, handshake ok (and the expected protocol, when stored)
  MISMATCH  certsweep stored a different leaf
  MISSING   certsweep stored no leaf for the port (its outcome and error shown)
  FAILED    same leaf, but certsweep's handshake did not end ok
  PROTOCOL  same leaf, but stored under another protocol
  LAB       the independent client did not see the configured certificate:
            the lab itself is broken, not certsweep
"""

import json
import sqlite3
import sys


def load_endpoints(path):
    with open(path) as f:
        text = f.read().strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def stored_protocols(db):
    """{(port, sha256-or-''): protocol} from the latest sweep, or None when
    the observations table has no protocol column."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(observations)")]
        if "protocol" not in cols:
            return None
        rows = con.execute(
            """SELECT o.port, o.protocol, COALESCE(c.sha256, '')
               FROM observations o LEFT JOIN certificates c ON c.id = o.leaf_id
               WHERE o.sweep_id = (SELECT MAX(sweep_id) FROM observations)""")
        out = {}
        for port, proto, sha in rows:
            out.setdefault(int(port), []).append((proto, sha))
        return out
    finally:
        con.close()


def pick(rows, proto):
    """The observation to judge when a port has several (one per protocol)."""
    for r in rows:
        if r.get("protocol") == proto:
            return r
    for r in rows:
        if r.get("sha256"):
            return r
    return rows[0] if rows else None


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    expected = []
    with open(argv[1]) as f:
        for line in f:
            if line.strip():
                port, proto, daemon, configured, seen = line.rstrip("\n").split("\t")
                expected.append((int(port), proto, daemon, configured, "" if seen == "-" else seen))
    by_port = {}
    for r in load_endpoints(argv[2]):
        by_port.setdefault(int(r["port"]), []).append(r)
    protocols = stored_protocols(argv[3])

    header = ("PORT", "PROTOCOL", "DAEMON", "INDEPENDENT SHA-256", "CERTSWEEP SHA-256", "STATUS", "NOTE")
    table = [header]
    failed = 0
    for port, proto, daemon, configured, seen in expected:
        r = pick(by_port.get(port, []), proto)
        got = (r or {}).get("sha256", "") or ""
        outcome = (r or {}).get("outcome", "")
        note = ""
        if r is not None:
            note = outcome + (": " + r.get("error", "") if r.get("error") else "")
        stored = None
        if protocols is not None:
            cands = protocols.get(port, [])
            match = [p for p, sha in cands if sha == got] or [p for p, _ in cands]
            stored = proto if proto in match else (match[0] if match else None)
        elif r is not None and "protocol" in r:
            stored = r["protocol"]
        if seen != configured:
            status = "LAB"
            note = "independent client saw %s, configured %s" % (seen[:12] or "nothing", configured[:12])
        elif r is None:
            status, note = "MISSING", "no observation stored for this port"
        elif not got:
            status = "MISSING"
        elif got != seen:
            status = "MISMATCH"
        elif outcome != "ok":
            status = "FAILED"
        elif stored is not None and stored != proto:
            status = "PROTOCOL"
            note = "stored protocol %r, want %r" % (stored, proto)
        else:
            status = "OK"
            note = "protocol %s" % stored if stored is not None else "protocol not stored"
        if status != "OK":
            failed += 1
        table.append((str(port), proto, daemon, seen or "-", got or "-", status, note))

    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    if protocols is None:
        print("(observations has no protocol column: protocol %s)"
              % ("taken from certsweep endpoints" if any("protocol" in r for rows in by_port.values() for r in rows)
                 else "not checked"))
    print("interop: %d passed, %d failed" % (len(expected) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
