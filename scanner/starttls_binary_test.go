package scanner_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

var binaryProtocols = []scanner.Protocol{scanner.ProtoLDAP, scanner.ProtoPostgres, scanner.ProtoMySQL, scanner.ProtoMSSQL, scanner.ProtoRDP}

// probeAs probes addr speaking proto there.
func probeAs(p *scanner.Prober, proto scanner.Protocol, addr netip.AddrPort) scanner.Result {
	p.Protocols = map[uint16]scanner.Protocol{addr.Port(): proto}
	return p.Probe(context.Background(), scanner.Target{Addr: addr})
}

func serve(t *testing.T, handle func(net.Conn)) *scannertest.Server {
	t.Helper()
	s, err := scannertest.NewServer(loopback(t), handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// checkOK wants a completed handshake at version presenting cert's chain.
func checkOK(t *testing.T, r scanner.Result, proto scanner.Protocol, cert tls.Certificate, version uint16) {
	t.Helper()
	if r.Status != scanner.StatusOK || r.Protocol != proto {
		t.Fatalf("Probe = %q over %q (%s), want ok over %q", r.Status, r.Protocol, r.Err, proto)
	}
	if r.TLSVersion != version {
		t.Errorf("TLSVersion = %#x, want %#x", r.TLSVersion, version)
	}
	if got, want := fingerprints(r.Chain), derFingerprints(cert.Certificate); !slices.Equal(got, want) || got[0] != sha256.Sum256(cert.Certificate[0]) {
		t.Errorf("chain = %x, want %x", got, want)
	}
}

func TestBinaryStartTLS(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "db.test", DNSNames: []string{"db.test"}})
	for _, proto := range binaryProtocols {
		for _, v := range []struct {
			name     string
			max, got uint16
		}{{"default", 0, tls.VersionTLS13}, {"tls12", tls.VersionTLS12, tls.VersionTLS12}} {
			t.Run(string(proto)+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				s, err := scannertest.NewPeer(loopback(t), string(proto), scannertest.TLSConfig(cert, 0, v.max), scannertest.Normal)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				checkOK(t, probeAs(scanner.NewProber(), proto, s.Addr), proto, cert, v.got)
			})
		}
	}
}

func TestBinaryStartTLSHostile(t *testing.T) {
	ca := newCA(t)
	cfg := scannertest.TLSConfig(leaf(t, ca, scannertest.CertOptions{CommonName: "db.test"}), 0, 0)
	want := map[scannertest.Behaviour]scanner.Status{
		scannertest.NoUpgrade:          scanner.StatusNoStartTLS,
		scannertest.RefuseUpgrade:      scanner.StatusNoStartTLS,
		scannertest.StallAfterGreeting: scanner.StatusTimeout,
		scannertest.LongLine:           scanner.StatusTooLarge,
		scannertest.EndlessReply:       scanner.StatusTooLarge,
		scannertest.Garbage:            scanner.StatusNotTLS,
		scannertest.StallAfterUpgrade:  scanner.StatusTimeout,
	}
	// What Err must say (besides the protocol name) for the refusals.
	says := map[scanner.Protocol][2]string{
		scanner.ProtoLDAP:     {`protocolError (2) "StartTLS not supported"`, `unwillingToPerform (53) "TLS is not configured`},
		scanner.ProtoPostgres: {"answered N", `"FATAL sorry, too many clients already"`},
		scanner.ProtoMySQL:    {`no CLIENT_SSL in its greeting, version "8.4.0-certsweep-test"`, `error 1130 "Host '127.`},
		scanner.ProtoMSSQL:    {"ENCRYPT_NOT_SUP", `error 50000: "Encryption is not available`},
		scanner.ProtoRDP:      {"offers only standard RDP security", "refused TLS: SSL_CERT_NOT_ON_SERVER"},
	}
	for _, proto := range binaryProtocols {
		for _, b := range scannertest.Behaviours[1:] {
			t.Run(string(proto)+"/"+b.String(), func(t *testing.T) {
				t.Parallel()
				s, err := scannertest.NewPeer(loopback(t), string(proto), cfg, b)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				p := scanner.NewProber()
				p.HandshakeTimeout = time.Second
				p.MaxBytes = 64 << 10
				start := time.Now()
				r := probeAs(p, proto, s.Addr)
				wantStatus := want[b]
				if proto == scanner.ProtoRDP && b == scannertest.EndlessReply {
					wantStatus = scanner.StatusNotTLS // Data TPDUs where the Connection Confirm belongs
				}
				if r.Status != wantStatus || r.Protocol != proto {
					t.Errorf("Probe = %q over %q (%s), want %q", r.Status, r.Protocol, r.Err, wantStatus)
				}
				if el := time.Since(start); el > 3*p.HandshakeTimeout {
					t.Errorf("Probe took %v with a %v handshake timeout", el, p.HandshakeTimeout)
				}
				if b == scannertest.NoUpgrade || b == scannertest.RefuseUpgrade {
					w := says[proto][b-scannertest.NoUpgrade]
					if !strings.HasPrefix(r.Err, string(proto)+" server ") || !strings.Contains(r.Err, w) {
						t.Errorf("Err = %q, want %q in it", r.Err, w)
					}
				}
				t.Logf("%s: %s", r.Status, r.Err)
			})
		}
	}
}

// TestBinaryStartTLSVariants covers answers the peers' behaviours do not.
func TestBinaryStartTLSVariants(t *testing.T) {
	ca := newCA(t)
	cert := leaf(t, ca, scannertest.CertOptions{CommonName: "db.test"})
	cfg := scannertest.TLSConfig(cert, 0, 0)
	tests := []struct {
		name   string
		proto  scanner.Protocol
		handle func(net.Conn)
		status scanner.Status
		says   string
	}{
		{"mssql/encrypt-off", scanner.ProtoMSSQL, scannertest.TDSPeer(cfg, scannertest.Normal, 0x00), scanner.StatusOK, ""},
		{"mssql/encrypt-req", scanner.ProtoMSSQL, scannertest.TDSPeer(cfg, scannertest.Normal, 0x03), scanner.StatusOK, ""},
		{"rdp/hybrid", scanner.ProtoRDP, scannertest.RDPPeer(cfg, scannertest.Normal, 2), scanner.StatusOK, ""},
		{"rdp/hybrid-ex", scanner.ProtoRDP, scannertest.RDPPeer(cfg, scannertest.Normal, 8), scanner.StatusOK, ""},
		{"rdp/standard-security-selected", scanner.ProtoRDP, scannertest.RDPPeer(cfg, scannertest.Normal, 0), scanner.StatusNoStartTLS, "standard RDP security"},
		// Active Directory writes four-byte BER lengths; an
		// IntermediateResponse before the answer is skipped.
		{"ldap/long-form-lengths", scanner.ProtoLDAP, answer(31, cfg,
			"\x30\x84\x00\x00\x00\x0b\x02\x01\x01\x79\x84\x00\x00\x00\x02\x80\x00"+
				"\x30\x84\x00\x00\x00\x14\x02\x01\x01\x78\x84\x00\x00\x00\x0b\x0a\x01\x00\x04\x84\x00\x00\x00\x00\x04\x00"), scanner.StatusOK, ""},
		{"ldap/notice-of-disconnection", scanner.ProtoLDAP, answer(31, nil,
			"\x30\x0e\x02\x01\x00\x78\x09\x0a\x01\x34\x04\x00\x04\x02no"), scanner.StatusNoStartTLS, `disconnected instead of answering StartTLS: unavailable (52) "no"`},
		{"ldap/other-message-id", scanner.ProtoLDAP, answer(31, nil,
			"\x30\x0c\x02\x01\x07\x78\x07\x0a\x01\x00\x04\x00\x04\x00"), scanner.StatusNotTLS, "message 7"},
		{"postgres/protocol-2-error", scanner.ProtoPostgres, answer(8, nil,
			"EFATAL:  sorry, too many clients already\n\x00"), scanner.StatusNoStartTLS, `"FATAL:  sorry, too many clients already"`},
		{"postgres/empty-error", scanner.ProtoPostgres, answer(8, nil, "E\x00\x00\x00\x04"), scanner.StatusNotTLS, ""},
		{"mysql/protocol-9", scanner.ProtoMySQL, answer(0, nil, "\x08\x00\x00\x00\x093.20.0\x00"), scanner.StatusNoStartTLS, "protocol 9"},
		{"mysql/err-with-sqlstate", scanner.ProtoMySQL, answer(0, nil, "\x1d\x00\x00\x00\xff\x10\x04#08004Too many connections"), scanner.StatusNoStartTLS, `error 1040 "Too many connections"`},
		{"mysql/truncated-greeting", scanner.ProtoMySQL, answer(0, nil, "\x07\x00\x00\x00\x0a8.4.0\x00"), scanner.StatusNotTLS, ""},
		{"mssql/no-encryption-option", scanner.ProtoMSSQL, answer(26, nil, "\x04\x01\x00\x0e\x00\x00\x01\x00\x00\x00\x06\x00\x00\xff"), scanner.StatusNotTLS, "ENCRYPTION option"},
		{"mssql/tiny-packet", scanner.ProtoMSSQL, answer(26, nil, "\x04\x01\x00\x04\x00\x00\x01\x00"), scanner.StatusNotTLS, ""},
		{"rdp/negotiation-failure-unknown", scanner.ProtoRDP, answer(19, nil,
			"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x03\x00\x08\x00\x63\x00\x00\x00"), scanner.StatusNoStartTLS, "failure code 99"},
		{"rdp/oversized-tpkt", scanner.ProtoRDP, answer(19, nil, "\x03\x00\x10\x00"), scanner.StatusTooLarge, "4096-byte TPKT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := serve(t, tc.handle)
			p := scanner.NewProber()
			p.HandshakeTimeout = 2 * time.Second
			r := probeAs(p, tc.proto, s.Addr)
			if tc.status == scanner.StatusOK {
				checkOK(t, r, tc.proto, cert, tls.VersionTLS13)
				return
			}
			if r.Status != tc.status || !strings.Contains(r.Err, tc.says) {
				t.Errorf("Probe = %q (%s), want %q saying %q", r.Status, r.Err, tc.status, tc.says)
			}
		})
	}
}

// answer reads the client's first n bytes, sends reply and then serves TLS
// with cfg, or waits for the client to hang up if cfg is nil.
func answer(n int, cfg *tls.Config, reply string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			return
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
		if cfg == nil {
			scannertest.Stall(c)
			return
		}
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if tc.Handshake() == nil {
			_, _ = tc.Read(make([]byte, 1))
		}
	}
}
