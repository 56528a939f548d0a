package store_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
)

func TestIPKeyOrdersAsNetip(t *testing.T) {
	ips := []string{"10.0.0.10", "10.0.0.9", "9.0.0.1", "255.255.255.255", "0.0.0.0", "::1", "::",
		"2001:db8::10", "2001:db8::9", "fe80::1%eth0", "fe80::1", "::ffff:10.0.0.1", "junk", "also junk"}
	for _, a := range ips {
		for _, b := range ips {
			want := 0
			pa, errA := netip.ParseAddr(a)
			pb, errB := netip.ParseAddr(b)
			switch {
			case errA == nil && errB == nil:
				want = pa.Compare(pb)
			case errA != nil && errB != nil:
				want = bytes.Compare([]byte(a), []byte(b))
			case errA != nil:
				want = -1
			default:
				want = 1
			}
			if got := bytes.Compare(store.IPKey(a), store.IPKey(b)); got != want {
				t.Errorf("IPKey(%q) vs IPKey(%q) = %d, want %d", a, b, got, want)
			}
			if got := store.CompareIP(a, b); got != want {
				t.Errorf("CompareIP(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// TestEndpointStatesNumericOrder stores endpoints whose text order differs
// from their numeric order and reads them back through SQLite's ip_key.
func TestEndpointStatesNumericOrder(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	ca, err := scannertest.NewCA("order")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ca.Leaf(scannertest.CertOptions{CommonName: "order.test"})
	if err != nil {
		t.Fatal(err)
	}
	chain := []scanner.Cert{scanner.ParseCert(tc.Certificate[0]), scanner.ParseCert(tc.Certificate[1])}
	id, err := db.CreateSweep(ctx, store.Sweep{Name: "order", Targets: []string{"10.0.0.0/24"}, Ports: "443"})
	if err != nil {
		t.Fatal(err)
	}
	w := db.NewWriter(id, store.WriterOptions{BatchSize: 3, FlushEvery: time.Hour})
	eps := []string{"10.0.0.10:443", "[2001:db8::9]:443", "10.0.0.9:8443", "10.0.0.9:443", "9.1.1.1:443",
		"[2001:db8::10]:443", "100.0.0.1:443", "[::1]:443"}
	now := time.Now()
	for i, ep := range eps {
		r := scanner.Result{Target: scanner.Target{Addr: netip.MustParseAddrPort(ep)}, Start: now, End: now,
			Status: scanner.StatusOK, Connected: true, Chain: chain}
		if i == 3 {
			r.Target.SNI = "b.test" // the same address and port, with and without SNI
			if err := w.Write(ctx, uint64(len(eps)), scanner.Result{Target: scanner.Target{Addr: r.Target.Addr},
				Start: now, End: now, Status: scanner.StatusHandshake, Connected: true}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Write(ctx, uint64(i), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	var got []string
	var states []store.EndpointState
	for e, err := range db.EndpointStates(ctx, id) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, netip.AddrPortFrom(e.Addr, uint16(e.Port)).String()+" "+e.SNI+" "+e.LeafSHA256[:min(4, len(e.LeafSHA256))])
		states = append(states, e)
	}
	leaf := chain[0].Fingerprint()[:4]
	want := []string{"9.1.1.1:443  " + leaf, "10.0.0.9:443  ", "10.0.0.9:443 b.test " + leaf, "10.0.0.9:8443  " + leaf,
		"10.0.0.10:443  " + leaf, "100.0.0.1:443  " + leaf, "[::1]:443  " + leaf, "[2001:db8::9]:443  " + leaf, "[2001:db8::10]:443  " + leaf}
	if !slices.Equal(got, want) {
		t.Errorf("EndpointStates order:\n got  %q\n want %q", got, want)
	}
	if !slices.IsSortedFunc(states, store.CompareEndpoints) {
		t.Error("EndpointStates is not in CompareEndpoints order")
	}

	// ChainCerts: by certificate, then endpoint in the same order.
	var rows []store.ChainCert
	for c, err := range db.ChainCerts(ctx, id) {
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, c)
	}
	if len(rows) != 2*len(eps) {
		t.Fatalf("ChainCerts yielded %d rows, want %d", len(rows), 2*len(eps))
	}
	for i := 1; i < len(rows); i++ {
		a, b := rows[i-1], rows[i]
		ea := store.EndpointState{IP: a.IP, Addr: a.Addr, Port: a.Port, SNI: a.SNI}
		eb := store.EndpointState{IP: b.IP, Addr: b.Addr, Port: b.Port, SNI: b.SNI}
		if a.CertID > b.CertID || a.CertID == b.CertID && store.CompareEndpoints(ea, eb) > 0 {
			t.Errorf("ChainCerts rows %d and %d out of order: %+v, %+v", i-1, i, a, b)
		}
	}
	if rows[0].SHA256 != chain[0].Fingerprint() || rows[0].Position != 0 || rows[0].IP != "9.1.1.1" {
		t.Errorf("first ChainCerts row = %+v, want the leaf at 9.1.1.1", rows[0])
	}
}

func TestLatestComplete(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	mk := func(name, state string) int64 {
		id, err := db.CreateSweep(ctx, store.Sweep{Name: name, Targets: []string{"10.0.0.1"}, Ports: "443"})
		if err != nil {
			t.Fatal(err)
		}
		if state != store.StateRunning {
			if err := db.FinishSweep(ctx, id, state, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	w1 := mk("weekly", store.StateComplete)
	mk("adhoc", store.StateComplete)
	w3 := mk("weekly", store.StateComplete)
	mk("weekly", store.StateInterrupted)
	old := mk("", store.StateComplete)
	for _, c := range []struct {
		name  string
		after int64
		want  int64
	}{{"weekly", 0, w3}, {"weekly", w1, w3}, {"weekly", w3, 0}, {"", 0, old}, {"nosuch", 0, 0}} {
		s, err := db.LatestComplete(ctx, c.name, c.after)
		switch {
		case c.want == 0 && !errors.Is(err, store.ErrNotFound):
			t.Errorf("LatestComplete(%q, %d) = %d, %v; want ErrNotFound", c.name, c.after, s.ID, err)
		case c.want != 0 && (err != nil || s.ID != c.want):
			t.Errorf("LatestComplete(%q, %d) = %d, %v; want %d", c.name, c.after, s.ID, err, c.want)
		}
	}
}

// TestReuseCountsSites: the same private address at two sites is two
// hosts, for key-reuse and shared-certificate alike.
func TestReuseCountsSites(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("sites")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ca.Leaf(scannertest.CertOptions{CommonName: "a.test"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ca.Leaf(scannertest.CertOptions{CommonName: "b.test", Key: a.PrivateKey.(crypto.Signer)}) // a's key
	if err != nil {
		t.Fatal(err)
	}
	db := openTemp(t)
	id, err := db.CreateSweep(ctx, store.Sweep{Name: "merged"})
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort("10.0.0.5:443")
	now := time.Now()
	// One sweep holding two sites, as merge makes it: a at 10.0.0.5 in
	// fra, b (same key) and a at 10.0.0.5 in dal.
	for pos, o := range []struct {
		site string
		der  []byte
		port uint16
	}{{"fra", a.Certificate[0], 443}, {"dal", b.Certificate[0], 443}, {"dal", a.Certificate[0], 8443}} {
		w := db.NewWriter(id, store.WriterOptions{Site: o.site})
		r := scanner.Result{Target: scanner.Target{Addr: netip.AddrPortFrom(addr.Addr(), o.port)}, Start: now, End: now,
			Status: scanner.StatusOK, Connected: true, Chain: []scanner.Cert{scanner.ParseCert(o.der)}}
		if err := w.Write(ctx, uint64(pos), r); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	reused, err := db.ReusedKeys(ctx, id, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(reused) != 1 {
		t.Fatalf("reused keys: %v, want one", reused)
	}
	for _, k := range reused {
		if want := []string{"dal:10.0.0.5", "fra:10.0.0.5"}; !slices.Equal(k.Hosts, want) || k.Count != 2 {
			t.Errorf("key reused at %v (%d), want %v", k.Hosts, k.Count, want)
		}
	}
	if few, err := db.ReusedKeys(ctx, id, 1); err != nil || len(few) != 1 {
		t.Errorf("ReusedKeys keeping 1: %v, %v", few, err)
	} else {
		for _, k := range few {
			if len(k.Hosts) != 1 || k.Count != 2 {
				t.Errorf("ReusedKeys keeping 1: %+v, want one host of 2", k)
			}
		}
	}
	shared, err := db.SharedCertificates(ctx, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(a.Certificate[0])
	if len(shared) != 1 || shared[hex.EncodeToString(sum[:])] != 2 {
		t.Errorf("shared certificates: %v, want a's on 2 hosts", shared)
	}
}

// TestSuccessorsStayAtTheirSite: a renewal inherits an owner only from
// the certificate it replaced at the same site: the same private address
// at another site is another host.
func TestSuccessorsStayAtTheirSite(t *testing.T) {
	ctx := context.Background()
	ca, err := scannertest.NewCA("successors")
	if err != nil {
		t.Fatal(err)
	}
	db := openTemp(t)
	ap := netip.MustParseAddrPort("10.0.0.5:443")
	now := time.Now()
	sweep := func(site string) (int64, string) {
		t.Helper()
		c, err := ca.Leaf(scannertest.CertOptions{CommonName: "www.test"})
		if err != nil {
			t.Fatal(err)
		}
		id, err := db.CreateSweep(ctx, store.Sweep{Name: "weekly"})
		if err != nil {
			t.Fatal(err)
		}
		w := db.NewWriter(id, store.WriterOptions{Site: site})
		r := scanner.Result{Target: scanner.Target{Addr: ap}, Start: now, End: now, Status: scanner.StatusOK,
			Connected: true, Chain: []scanner.Cert{scanner.ParseCert(c.Certificate[0])}}
		if err := w.Write(ctx, 0, r); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishSweep(ctx, id, store.StateComplete, now); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(c.Certificate[0])
		return id, hex.EncodeToString(sum[:])
	}
	_, old := sweep("fra")
	dal, _ := sweep("dal")
	fra, renewed := sweep("fra")
	successors := func(id int64) []string {
		var out []string
		for s, err := range db.Successors(ctx, id, old) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s.Site+" "+s.SHA256)
		}
		return out
	}
	if got := successors(dal); len(got) != 0 {
		t.Errorf("another site's certificate at the same address succeeds it: %v", got)
	}
	if got, want := successors(fra), []string{"fra " + renewed}; !slices.Equal(got, want) {
		t.Errorf("successors at its own site: %v, want %v", got, want)
	}
}
