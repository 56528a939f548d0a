package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certsweep/certsweep/scanner/scannertest"
)

// TestSweepVirtualHosts is issue 11's lab: one address serves five virtual
// hosts whose names appear only in (a) a names file, (b) the default
// certificate's SANs, (c) a certificate found by following (depth 2), (d)
// the inventory of an earlier sweep, (e) reverse DNS; each is found by its
// option and not without it. A second address holds an ECDSA and an RSA
// certificate side by side: --all-keys stores both.
func TestSweepVirtualHosts(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("vhosts")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(o scannertest.CertOptions) (tls.Certificate, string) {
		c, err := ca.Leaf(o)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(c.Certificate[0])
		return c, hex.EncodeToString(sum[:])
	}
	sans := map[string][]string{
		"":          {"portal.vh.test", "b.vh.test"}, // the default certificate
		"a.vh.test": {"a.vh.test"},
		"b.vh.test": {"b.vh.test", "c.vh.test"},
		"c.vh.test": {"c.vh.test", "f.vh.test"}, // f is depth 3: never followed
		"f.vh.test": {"f.vh.test"},
		"d.vh.test": {"d.vh.test"},
		"e.vh.test": {"e.vh.test"},
	}
	leaves := map[string]string{}
	byName := map[string]tls.Certificate{}
	var def tls.Certificate
	for name, dns := range sans {
		c, fp := issue(scannertest.CertOptions{CommonName: dns[0], DNSNames: dns})
		leaves[name] = fp
		if name == "" {
			def = c
		} else {
			byName[name] = c
		}
	}
	ec, ecFP := issue(scannertest.CertOptions{CommonName: "dual.vh.test", DNSNames: []string{"dual.vh.test"}})
	rsa, rsaFP := issue(scannertest.CertOptions{CommonName: "dual.vh.test", DNSNames: []string{"dual.vh.test"}, RSABits: 2048})

	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(mrand.IntN(254) + 1), byte(mrand.IntN(256)), 0}), 30)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port free on 127.0.0.1 is very likely free on the /30 too
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	vhostAddr, dualAddr := prefix.Addr().Next(), prefix.Addr().Next().Next()
	for addr, cfg := range map[netip.Addr]*tls.Config{
		vhostAddr: scannertest.VhostConfig(def, byName),
		dualAddr:  {Certificates: []tls.Certificate{ec, rsa}},
	} {
		s, err := scannertest.NewTLSServer(netip.AddrPortFrom(addr, port).String(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
	}
	dns, err := scannertest.NewDNSServer(map[netip.Addr][]string{vhostAddr: {"e.vh.test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)

	dir := t.TempDir()
	namesFile := filepath.Join(dir, "names.txt")
	if err := os.WriteFile(namesFile, []byte("# from the zone export\na.vh.test\nnot-here.vh.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inventoryFile := filepath.Join(dir, "d.txt")
	if err := os.WriteFile(inventoryFile, []byte(vhostAddr.String()+" d.vh.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	sweep := func(db string, args ...string) string {
		t.Helper()
		args = append([]string{"sweep", "--db", db, "--rate", "0", "--ports", fmt.Sprint(port), "--dns-server", dns.Addr}, args...)
		out, errOut, code := run(t, ctx, append(args, prefix.String())...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s%s", args, code, out, errOut)
		}
		return out
	}
	// seen maps "sni/offer@address" to the leaf stored in the latest sweep, with the SNI source.
	type obs struct{ leaf, source string }
	seen := func(db string) map[string]obs {
		t.Helper()
		out, errOut, code := run(t, ctx, "endpoints", "--db", db, "--format", "json")
		if code != 0 {
			t.Fatalf("endpoints: exit %d: %s", code, errOut)
		}
		got := map[string]obs{}
		for _, r := range jsonLines(t, out) {
			key := fmt.Sprintf("%s/%s@%s", r["sni"], r["offer"], r["ip"])
			if _, dup := got[key]; dup {
				t.Errorf("%s listed twice", key)
			}
			got[key] = obs{r["sha256"].(string), r["sni_source"].(string)}
		}
		return got
	}
	at := func(name, source string) (string, obs) {
		return name + "/@" + vhostAddr.String(), obs{leaves[name], source}
	}
	base := map[string]obs{
		"/@" + vhostAddr.String(): {leaves[""], ""},
		"/@" + dualAddr.String():  {ecFP, ""},
	}
	expect := func(extra ...[2]any) map[string]obs {
		m := map[string]obs{}
		for k, v := range base {
			m[k] = v
		}
		for _, e := range extra {
			m[e[0].(string)] = e[1].(obs)
		}
		return m
	}
	pair := func(name, source string) [2]any {
		k, v := at(name, source)
		return [2]any{k, v}
	}
	check := func(what, db string, want map[string]obs) {
		t.Helper()
		got := seen(db)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %+v, want %+v", what, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: unexpected endpoint %s %+v", what, k, got[k])
			}
		}
	}

	t.Run("no options: the default certificates only", func(t *testing.T) {
		db := filepath.Join(dir, "none.db")
		out := sweep(db)
		check("no options", db, base)
		if strings.Contains(out, "probes by source") {
			t.Errorf("summary counts name probes that were not made:\n%s", out)
		}
	})
	t.Run("names file (a)", func(t *testing.T) {
		db := filepath.Join(dir, "file.db")
		out := sweep(db, "--names-file", namesFile)
		check("--names-file", db, expect(pair("a.vh.test", "names-file")))
		// a.vh.test and not-here.vh.test at each of the two addresses.
		if !strings.Contains(out, "probes by source: address 4, names-file 4 (1 found)") {
			t.Errorf("summary does not count the names file's probes:\n%s", out)
		}
		// Connect discovery expands the same way (root sweeps above use SYN).
		db = filepath.Join(dir, "file-connect.db")
		sweep(db, "--names-file", namesFile, "--discovery", "connect")
		check("--names-file, connect discovery", db, expect(pair("a.vh.test", "names-file")))
	})
	t.Run("follow (b, c at depth 2, never f)", func(t *testing.T) {
		db := filepath.Join(dir, "follow.db")
		sweep(db, "--follow-names")
		// portal.vh.test is on the default certificate, which covers it: kept.
		// dual.vh.test is followed at the dual address and covered too.
		check("--follow-names", db, expect(
			[2]any{"portal.vh.test/@" + vhostAddr.String(), obs{leaves[""], "followed"}}, pair("b.vh.test", "followed"), pair("c.vh.test", "followed"),
			[2]any{"dual.vh.test/@" + dualAddr.String(), obs{ecFP, "followed"}},
		))
		// With the cap at 1, only the first followed name is tried.
		db = filepath.Join(dir, "capped.db")
		out := sweep(db, "--follow-names", "--max-names-per-address", "1")
		if !strings.Contains(out, "names cap (--max-names-per-address 1) reached at 1 endpoints: 1 names not tried") {
			t.Errorf("the cap is not reported:\n%s", out)
		}
	})
	t.Run("ptr (e)", func(t *testing.T) {
		db := filepath.Join(dir, "ptr.db")
		sweep(db, "--ptr")
		check("--ptr", db, expect(pair("e.vh.test", "ptr")))
	})
	t.Run("inventory (d)", func(t *testing.T) {
		db := filepath.Join(dir, "inventory.db")
		sweep(db, "--names-file", inventoryFile)
		check("found once", db, expect(pair("d.vh.test", "names-file")))
		sweep(db)
		check("without --inventory-names", db, base)
		out := sweep(db, "--inventory-names")
		check("--inventory-names", db, expect(pair("d.vh.test", "inventory")))
		if !strings.Contains(out, "inventory 1 (1 found)") {
			t.Errorf("summary does not count the inventory's probe:\n%s", out)
		}
		// Each (address, port, SNI) is its own endpoint: against the sweep
		// without names, d.vh.test is new; the default endpoints unchanged.
		out, errOut, code := run(t, ctx, "diff", "--db", db, "--format", "csv")
		if code != 0 {
			t.Fatalf("diff: exit %d: %s", code, errOut)
		}
		rows := csvRows(t, out)
		if len(rows) != 1 || rows[0]["change"] != "endpoint-new" || rows[0]["sni"] != "d.vh.test" || rows[0]["new_sha256"] != leaves["d.vh.test"] {
			t.Errorf("diff = %v, want d.vh.test endpoint-new only", rows)
		}
	})
	t.Run("all keys (dual certificates)", func(t *testing.T) {
		db := filepath.Join(dir, "keys.db")
		out := sweep(db, "--all-keys")
		check("--all-keys", db, expect([2]any{"/rsa@" + dualAddr.String(), obs{rsaFP, ""}}))
		if !strings.Contains(out, "other key family 2 (1 found)") {
			t.Errorf("summary does not count the key probes:\n%s", out)
		}
		// Both certificates are judged; each covers the name it was reached by.
		out, errOut, code := run(t, ctx, "report", "--db", db, "--format", "csv", "--no-system-roots")
		if code != 0 {
			t.Fatalf("report: exit %d: %s", code, errOut)
		}
		var offers []string
		for _, r := range csvRows(t, out) {
			if r["ip"] == dualAddr.String() {
				offers = append(offers, r["offer"]+"="+r["sha256"])
			}
		}
		slices.Sort(offers)
		if want := []string{"=" + ecFP, "rsa=" + rsaFP}; !slices.Equal(offers, want) {
			t.Errorf("report rows of the dual address: %v, want %v", offers, want)
		}
	})
	t.Run("hostname-mismatch judges the SNI sent", func(t *testing.T) {
		db := filepath.Join(dir, "follow.db")
		out, errOut, code := run(t, ctx, "findings", "--db", db, "--format", "csv", "--no-system-roots", "--kind", "hostname-mismatch")
		if code != 0 && code != 3 {
			t.Fatalf("findings: exit %d: %s", code, errOut)
		}
		if rows := csvRows(t, out); len(rows) != 0 {
			t.Errorf("every vhost certificate covers its name, yet: %v", rows)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.txt")
		if err := os.WriteFile(bad, []byte("ok.vh.test\n*.vh.test\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--names-file", bad}, "line 2"},
			{[]string{"--names-file", filepath.Join(dir, "missing.txt")}, "cannot read names file"},
			{[]string{"--sni", "x.vh.test", "--follow-names"}, "cannot be combined"},
			{[]string{"--max-names-per-address", "0", "--ptr"}, "must be 1-10000"},
			{[]string{"--dns-server", "nowhere", "--ptr"}, "want HOST:PORT"},
		} {
			args := append([]string{"sweep", "--db", filepath.Join(dir, "bad.db")}, c.args...)
			_, errOut, code := run(t, ctx, append(args, prefix.String())...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("%q: exit %d, %q; want exit 2 and %q", c.args, code, errOut, c.want)
			}
		}
	})
}
