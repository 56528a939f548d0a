package scanner_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
)

// FuzzParseCert feeds arbitrary DER to the summariser: it must never panic
// and must always keep the bytes and their fingerprint.
func FuzzParseCert(f *testing.F) {
	ca, err := scannertest.NewCA("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	cert, err := ca.Leaf(scannertest.CertOptions{CommonName: "fuzz.test", DNSNames: []string{"fuzz.test"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cert.Certificate[0])
	f.Add(ca.Root.DER)
	f.Add(cert.Certificate[0][:len(cert.Certificate[0])/2])
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, der []byte) {
		c := scanner.ParseCert(der)
		if string(c.DER) != string(der) {
			t.Errorf("ParseCert dropped or changed the DER")
		}
		if c.SHA256 != sha256.Sum256(der) {
			t.Errorf("ParseCert fingerprint %s is not the SHA-256 of the DER", c.Fingerprint())
		}
		if c.ParseError != "" {
			return
		}
		if c.KeyBits < 0 || c.Serial == "" || c.KeyType == "" {
			t.Errorf("ParseCert summary incomplete: key %q/%d, serial %q", c.KeyType, c.KeyBits, c.Serial)
		}
		if c.NotBefore.Location() != time.UTC || c.NotAfter.Location() != time.UTC {
			t.Errorf("ParseCert validity not in UTC: %v / %v", c.NotBefore, c.NotAfter)
		}
	})
}
