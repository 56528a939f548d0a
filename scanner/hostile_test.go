package scanner_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// TestHostileEndpoints probes every hostile lab endpoint: each probe must
// end within its timeout plus slack, be classified, and keep whatever
// certificate bytes arrived.
func TestHostileEndpoints(t *testing.T) {
	lab, err := scannertest.NewLabOf(len(scannertest.HostileKinds), func(i int) string { return scannertest.HostileKinds[i] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)

	type want struct {
		statuses []scanner.Status
		check    func(t *testing.T, r scanner.Result, ep *scannertest.Endpoint)
	}
	keepsDER := func(t *testing.T, r scanner.Result, ep *scannertest.Endpoint) {
		if len(r.Chain) == 0 || !bytes.Equal(r.Chain[0].DER, ep.Presents[0]) {
			t.Errorf("the presented DER was not kept (chain of %d)", len(r.Chain))
			return
		}
		if r.Chain[0].SHA256 != sha256.Sum256(ep.Presents[0]) {
			t.Errorf("fingerprint %s is not the SHA-256 of the presented DER", r.Chain[0].Fingerprint())
		}
	}
	parseFailed := func(t *testing.T, r scanner.Result, ep *scannertest.Endpoint) {
		keepsDER(t, r, ep)
		if len(r.Chain) > 0 && r.Chain[0].ParseError == "" {
			t.Errorf("malformed certificate parsed without error: %+v", r.Chain[0])
		}
	}
	refused := []scanner.Status{scanner.StatusHandshake, scanner.StatusReset}
	wants := map[string]want{
		"stall":                 {[]scanner.Status{scanner.StatusTimeout}, nil},
		"drip":                  {[]scanner.Status{scanner.StatusTimeout}, nil},
		"random-bytes":          {[]scanner.Status{scanner.StatusNotTLS, scanner.StatusHandshake, scanner.StatusTooLarge, scanner.StatusReset}, nil},
		"plain-http":            {[]scanner.Status{scanner.StatusNotTLS}, nil},
		"reset":                 {[]scanner.Status{scanner.StatusReset}, nil},
		"alert":                 {[]scanner.Status{scanner.StatusHandshake}, nil},
		"chain-200":             {[]scanner.Status{scanner.StatusTooLarge, scanner.StatusOK, scanner.StatusHandshake}, nil},
		"huge-1mb":              {[]scanner.Status{scanner.StatusTooLarge}, nil},
		"truncated-der":         {refused, parseFailed},
		"bad-asn1":              {refused, parseFailed},
		"negative-serial":       {append([]scanner.Status{scanner.StatusOK}, refused...), keepsDER},
		"impossible-dates":      {append([]scanner.Status{scanner.StatusOK}, refused...), keepsDER},
		"unknown-key-algorithm": {append([]scanner.Status{scanner.StatusOK}, refused...), keepsDER},
		"10000-sans": {[]scanner.Status{scanner.StatusOK}, func(t *testing.T, r scanner.Result, ep *scannertest.Endpoint) {
			keepsDER(t, r, ep)
			if len(r.Chain) > 0 && len(r.Chain[0].SANs) != 10000 {
				t.Errorf("SANs = %d, want 10000", len(r.Chain[0].SANs))
			}
		}},
		// zcrypto refuses invalid UTF-8 even when parsing permissively: the
		// handshake fails, and the DER is kept with the parse error.
		"subject-non-utf8": {refused, parseFailed},
		"subject-control":  {[]scanner.Status{scanner.StatusOK}, keepsDER},
		"subject-ansi": {[]scanner.Status{scanner.StatusOK}, func(t *testing.T, r scanner.Result, ep *scannertest.Endpoint) {
			keepsDER(t, r, ep)
			if len(r.Chain) > 0 && !strings.Contains(r.Chain[0].Subject, "\x1b[31m") {
				t.Errorf("subject %q: the raw text is the record; escaping is the encoders' job", r.Chain[0].Subject)
			}
		}},
	}
	p := scanner.NewProber()
	p.ConnectTimeout, p.HandshakeTimeout = time.Second, time.Second
	for _, ep := range lab.Endpoints {
		t.Run(ep.Kind, func(t *testing.T) {
			t.Parallel()
			w, ok := wants[ep.Kind]
			if !ok {
				t.Fatalf("no expectation for %s", ep.Kind)
			}
			start := time.Now()
			r := p.Probe(context.Background(), scanner.Target{Addr: ep.Server.Addr})
			// Generous slack: this bounds the cost, it does not time the machine.
			if el := time.Since(start); el > p.ConnectTimeout+p.HandshakeTimeout+3*time.Second {
				t.Errorf("probe took %v, want at most about %v", el, p.HandshakeTimeout)
			}
			if !slices.Contains(w.statuses, r.Status) {
				t.Errorf("status %q (%s), want one of %v", r.Status, r.Err, w.statuses)
			}
			if len(r.Chain) > scanner.DefaultMaxChain {
				t.Errorf("kept %d certificates, want at most %d", len(r.Chain), scanner.DefaultMaxChain)
			}
			if w.check != nil {
				w.check(t, r, ep)
			}
			t.Logf("%s: %s %s (chain %d)", ep.Kind, r.Status, r.Err, len(r.Chain))
		})
	}
}
