package scanner_test

import (
	"context"
	"crypto"
	"database/sql"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	_ "github.com/mattn/go-sqlite3" // the raw column check below reads the file directly
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// wantFields is what ParseCert must return for a certificate, and what the
// store must write (dates in its column layout; "" = NULL).
type wantFields struct {
	subject             string // the issuer is the same: every case is self-issued
	notBefore, notAfter string
	keyType             string
	keyBits             int
	sigAlg              string
	selfSigned          bool
	parseError          string
	findings            []report.Kind // CertFindings for the leaf at fieldsNow
}

// fieldsNow is when the findings are judged: after the testdata
// certificates were made (2026-11-25) and long before they expire.
var fieldsNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

type fieldCase struct {
	name string
	der  []byte
	want wantFields
}

const (
	oidSHA256WithRSA = "1.2.840.113549.1.1.11"
	oidSHA256        = "2.16.840.1.101.3.4.2.1"
	oidGOSTSignature = "1.2.643.2.2.3"  // GOST R 34.11-94 with GOST R 34.10-2001
	oidGOSTKey       = "1.2.643.2.2.19" // GOST R 34.10-2001 public key
)

// fieldCases are the unusual certificates of issue 14, each with the exact
// fields certsweep must store for it.
func fieldCases(t testing.TB) []fieldCase {
	rsa256 := rsaPKCS1(t, oidSHA256WithRSA, crypto.SHA256)
	// A self-signed RSA-2048 leaf as the defaults build it, for the cases
	// that vary one thing.
	rsaLeaf := func(w wantFields) wantFields {
		if w.subject == "" {
			w.subject = "CN=fields.test"
		}
		if w.notBefore == "" && w.parseError == "" {
			w.notBefore, w.notAfter = "2025-01-01T00:00:00Z", "2099-12-31T23:59:59Z"
		}
		if w.keyType == "" && w.parseError == "" {
			w.keyType, w.keyBits = "RSA", 2048
		}
		return w
	}
	selfSignedOnly := []report.Kind{report.KindSelfSigned}
	gostSPKI := seq(algID(oidGOSTKey, seq(derOID("1.2.643.2.2.35.1"), derOID("1.2.643.2.2.30.1"))),
		der(cbasn1.BIT_STRING, []byte{0}, der(cbasn1.OCTET_STRING, make([]byte, 64))))

	var cases []fieldCase
	add := func(n string, s certSpec, w wantFields) {
		s.serial = int64(len(cases) + 1)
		cases = append(cases, fieldCase{n, s.build(), w})
	}
	carried := func(n, file string, w wantFields) {
		cases = append(cases, fieldCase{n, testdataCert(t, file), w})
	}

	// Dates. RFC 5280 4.1.2.5.2 requires GeneralizedTime with seconds;
	// zcrypto (like crypto/x509 and OpenSSL) cannot read one without, so
	// that certificate is a parse error with an unparsable-validity
	// finding. UTCTime without seconds is read (crypto/x509 reads it too).
	add("year-1-to-year-9999", certSpec{notBefore: genTime("00010101000000Z"), notAfter: genTime("99991231235959Z"), signer: rsa256},
		rsaLeaf(wantFields{notBefore: "0001-01-01T00:00:00Z", notAfter: "9999-12-31T23:59:59Z", sigAlg: "SHA256-RSA", selfSigned: true, findings: selfSignedOnly}))
	add("expired-in-year-1", certSpec{notBefore: genTime("00010101000000Z"), notAfter: genTime("00011231235959Z"), signer: rsa256},
		rsaLeaf(wantFields{notBefore: "0001-01-01T00:00:00Z", notAfter: "0001-12-31T23:59:59Z", sigAlg: "SHA256-RSA", selfSigned: true,
			findings: []report.Kind{report.KindExpired, report.KindSelfSigned}}))
	add("valid-from-year-9999", certSpec{notBefore: genTime("99990101000000Z"), notAfter: genTime("99991231235959Z"), signer: rsa256},
		rsaLeaf(wantFields{notBefore: "9999-01-01T00:00:00Z", notAfter: "9999-12-31T23:59:59Z", sigAlg: "SHA256-RSA", selfSigned: true,
			findings: []report.Kind{report.KindNotYetValid, report.KindSelfSigned}}))
	add("generalizedtime-without-seconds", certSpec{notAfter: genTime("209912312359Z"), signer: rsa256},
		wantFields{parseError: `unreadable validity: notAfter GeneralizedTime "209912312359Z" is not a date in the form YYYYMMDDHHMMSSZ that RFC 5280 requires`,
			findings: []report.Kind{report.KindUnparsableValidity}})
	add("notBefore-generalizedtime-without-seconds", certSpec{notBefore: genTime("202501010000Z"), signer: rsa256},
		wantFields{parseError: `unreadable validity: notBefore GeneralizedTime "202501010000Z" is not a date in the form YYYYMMDDHHMMSSZ that RFC 5280 requires`,
			findings: []report.Kind{report.KindUnparsableValidity}})
	add("notAfter-not-a-time", certSpec{notAfter: derInt(2099), signer: rsa256},
		wantFields{parseError: `unreadable validity: notAfter has ASN.1 tag 2, not UTCTime or GeneralizedTime`,
			findings: []report.Kind{report.KindUnparsableValidity}})
	add("utctime-without-seconds", certSpec{notBefore: utcTime("2501010000Z"), notAfter: utcTime("4912312359Z"), signer: rsa256},
		rsaLeaf(wantFields{notBefore: "2025-01-01T00:00:00Z", notAfter: "2049-12-31T23:59:00Z", sigAlg: "SHA256-RSA", selfSigned: true, findings: selfSignedOnly}))

	// Algorithms: RSASSA-PSS named by the hash its parameters give, and
	// checked with the salt and MGF1 hash they give.
	add("pss-sha256-salt-32", certSpec{signer: rsaPSS(t, pssParams(oidSHA256, derNull, 32), crypto.SHA256, 32)},
		rsaLeaf(wantFields{sigAlg: "SHA256-RSAPSS", selfSigned: true, findings: selfSignedOnly}))
	add("pss-sha256-salt-20", certSpec{signer: rsaPSS(t, pssParams(oidSHA256, derNull, 20), crypto.SHA256, 20)},
		rsaLeaf(wantFields{sigAlg: "SHA256-RSAPSS", selfSigned: true, findings: selfSignedOnly}))
	add("pss-sha256-hash-without-null", certSpec{signer: rsaPSS(t, pssParams(oidSHA256, nil, 32), crypto.SHA256, 32)},
		rsaLeaf(wantFields{sigAlg: "SHA256-RSAPSS", selfSigned: true, findings: selfSignedOnly}))
	add("pss-empty-parameters-mean-sha1", certSpec{signer: rsaPSS(t, seq(), crypto.SHA1, 20)},
		rsaLeaf(wantFields{sigAlg: "SHA1-RSAPSS", selfSigned: true, findings: []report.Kind{report.KindWeakSignature, report.KindSelfSigned}}))
	add("pss-parameters-absent", certSpec{signer: rsaPSS(t, nil, crypto.SHA256, 32)},
		rsaLeaf(wantFields{sigAlg: "RSASSA-PSS", findings: []report.Kind{report.KindUnknownAlgorithm}}))
	add("pss-parameters-null", certSpec{signer: rsaPSS(t, derNull, crypto.SHA256, 32)},
		rsaLeaf(wantFields{sigAlg: "RSASSA-PSS", findings: []report.Kind{report.KindUnknownAlgorithm}}))
	add("pss-unknown-hash", certSpec{signer: rsaPSS(t, pssParams("1.2.3.4", derNull, 32), crypto.SHA256, 32)},
		rsaLeaf(wantFields{sigAlg: "RSASSA-PSS", findings: []report.Kind{report.KindUnknownAlgorithm}}))
	carried("pss-sha384-mgf1-sha1-openssl", "rsa-pss-sha384-mgf1-sha1.pem",
		wantFields{subject: "CN=pss-sha384-mgf1-sha1.test", notBefore: "2026-11-25T23:03:24Z", notAfter: "2046-11-20T23:03:24Z",
			keyType: "RSA", keyBits: 2048, sigAlg: "SHA384-RSAPSS", selfSigned: true, findings: selfSignedOnly})
	add("gost-signature-oid", certSpec{signer: unknownSigner(t, oidGOSTSignature, nil)},
		rsaLeaf(wantFields{sigAlg: oidGOSTSignature, findings: []report.Kind{report.KindUnknownAlgorithm}}))
	add("gost-key-and-signature", certSpec{signer: unknownSigner(t, oidGOSTSignature, gostSPKI)},
		rsaLeaf(wantFields{keyType: oidGOSTKey, sigAlg: oidGOSTSignature, findings: []report.Kind{report.KindUnknownAlgorithm}}))
	add("sha224-rsa", certSpec{signer: rsaPKCS1(t, "1.2.840.113549.1.1.14", crypto.SHA224)},
		rsaLeaf(wantFields{sigAlg: "SHA224-RSA", selfSigned: true, findings: selfSignedOnly}))
	add("rsa-sha256", certSpec{signer: rsa256},
		rsaLeaf(wantFields{sigAlg: "SHA256-RSA", selfSigned: true, findings: selfSignedOnly}))
	add("ecdsa-sha256", certSpec{signer: ecdsaSigner(t, "1.2.840.10045.4.3.2", crypto.SHA256)},
		rsaLeaf(wantFields{keyType: "ECDSA", keyBits: 256, sigAlg: "ECDSA-SHA256", selfSigned: true, findings: selfSignedOnly}))
	add("ecdsa-sha224", certSpec{signer: ecdsaSigner(t, "1.2.840.10045.4.3.1", crypto.SHA224)},
		rsaLeaf(wantFields{keyType: "ECDSA", keyBits: 256, sigAlg: "ECDSA-SHA224", selfSigned: true, findings: selfSignedOnly}))
	add("ed25519", certSpec{signer: ed25519Signer(t)},
		rsaLeaf(wantFields{keyType: "Ed25519", keyBits: 256, sigAlg: "Ed25519", selfSigned: true, findings: selfSignedOnly}))
	// OpenSSL's DSA-2048 has a 224-bit subgroup: the SHA-256 digest must be
	// truncated to verify, which zcrypto's own check does not do.
	carried("dsa-2048-sha256-openssl", "dsa-2048-sha256.pem",
		wantFields{subject: "CN=dsa-2048-sha256.test", notBefore: "2026-11-25T23:03:23Z", notAfter: "2046-11-20T23:03:23Z",
			keyType: "DSA", keyBits: 2048, sigAlg: "DSA-SHA256", selfSigned: true, findings: selfSignedOnly})
	carried("dsa-1024-sha1-openssl", "dsa-1024-sha1.pem",
		wantFields{subject: "CN=dsa-1024-sha1.test", notBefore: "2026-11-25T23:03:23Z", notAfter: "2046-11-20T23:03:23Z",
			keyType: "DSA", keyBits: 1024, sigAlg: "DSA-SHA1", selfSigned: true,
			// A root's own SHA-1 signature is not judged; its key is.
			findings: []report.Kind{report.KindWeakKey, report.KindSelfSigned}})

	// Names: every DirectoryString type decoded; what does not decode is
	// escaped as \XX (bytes ParseDN reads back), never "<nil>".
	for _, c := range []struct {
		name    string
		subject []byte
		want    string
	}{
		{"utf8string", cn(cbasn1.UTF8String, []byte("Grüße ☃")), "CN=Grüße ☃"},
		{"printablestring", cn(cbasn1.PrintableString, []byte("Printable Name")), "CN=Printable Name"},
		{"ia5string", cn(cbasn1.IA5String, []byte("ia5@example.test")), "CN=ia5@example.test"},
		{"teletexstring-latin1", cn(tagTeletex, []byte("Caf\xe9 M\xfcller")), "CN=Café Müller"},
		{"teletexstring-utf8", cn(tagTeletex, []byte("Café")), "CN=Café"},
		{"bmpstring", cn(tagBMP, bmp("Ωmega ☃")), "CN=Ωmega ☃"},
		// UCS-2 has no surrogates, but Windows writes UTF-16: a pair decodes.
		{"bmpstring-surrogate-pair", cn(tagBMP, bmp("clef 𝄞")), "CN=clef 𝄞"},
		{"universalstring", cn(tagUniversal, universal("Ünïversal 𝄞")), "CN=Ünïversal 𝄞"},
		{"universalstring-bad-code-point", cn(tagUniversal, append([]byte{0, 0x11, 0, 0}, universal("A")...)), `CN=\00\11\00\00A`},
		{"universalstring-specials", cn(tagUniversal, universal("#a, b ")), `CN=\#a\, b\ `},
		{"bmpstring-lone-surrogate", cn(tagBMP, append([]byte{0xd8, 0x00}, bmp("B")...)), `CN=\D8\00B`},
		{"visiblestring-bad-byte", cn(tagVisible, []byte("v\xff")), `CN=v\FF`},
		{"serialnumber-postalcode-universalstring", name(attr{oidCN, cbasn1.UTF8String, []byte("pc.test")},
			attr{oidSerialNumber, tagUniversal, universal("12345")}, attr{oidPostalCode, tagUniversal, universal("SW1A 1AA")}),
			"postalCode=SW1A 1AA, serialNumber=12345, CN=pc.test"},
		{"unknown-attribute-universalstring", name(attr{oidCN, cbasn1.UTF8String, []byte("x.test")}, attr{"1.2.3.4", tagUniversal, universal("x")}),
			"1.2.3.4=#1c0400000078, CN=x.test"},
		{"cn-not-a-string", cn(cbasn1.NULL, nil), "CN=#0500"},
	} {
		add(c.name, certSpec{subject: c.subject, signer: rsa256},
			rsaLeaf(wantFields{subject: c.want, sigAlg: "SHA256-RSA", selfSigned: true, findings: selfSignedOnly}))
	}
	return cases
}

func TestCertFields(t *testing.T) {
	cases := fieldCases(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := scanner.ParseCert(tc.der)
			w := tc.want
			if c.ParseError != w.parseError {
				t.Fatalf("ParseError = %q, want %q", c.ParseError, w.parseError)
			}
			got := wantFields{subject: c.Subject, notBefore: certTime(c, c.NotBefore), notAfter: certTime(c, c.NotAfter),
				keyType: c.KeyType, keyBits: c.KeyBits, sigAlg: c.SignatureAlgorithm, selfSigned: c.SelfSigned,
				parseError: c.ParseError, findings: w.findings}
			if !equalFields(got, w) {
				t.Errorf("ParseCert =\n  %+v\nwant\n  %+v", got, w)
			}
			if c.Issuer != c.Subject {
				t.Errorf("Issuer = %q, want the subject %q", c.Issuer, c.Subject)
			}
			if w.parseError == "" {
				if _, err := scanner.ParseDN(c.Subject); err != nil {
					t.Errorf("stored subject does not read back: %v", err)
				}
			}
			var kinds []report.Kind
			fs := report.CertFindings(store.Certificate{Cert: c}, 0, report.DefaultPolicy(fieldsNow))
			for _, f := range fs {
				kinds = append(kinds, f.Kind)
			}
			if !slices.Equal(kinds, w.findings) {
				t.Errorf("findings = %v, want %v (%+v)", kinds, w.findings, fs)
			}
		})
	}
	t.Run("store-round-trip", func(t *testing.T) { testStoreRoundTrip(t, cases) })
}

// certTime renders a validity bound as the store's column holds it.
func certTime(c scanner.Cert, t time.Time) string {
	if c.ParseError != "" {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func equalFields(a, b wantFields) bool {
	a.findings, b.findings = nil, nil
	return reflect.DeepEqual(a, b)
}

// testStoreRoundTrip writes every case through the sweep writer and checks
// the raw columns and what the store reads back.
func testStoreRoundTrip(t *testing.T, cases []fieldCase) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fields.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, err := db.CreateSweep(ctx, store.Sweep{Targets: []string{"127.10.0.0/24"}, Ports: "443", ProbesTotal: uint64(len(cases))})
	if err != nil {
		t.Fatal(err)
	}
	w := db.NewWriter(id, store.WriterOptions{BatchSize: 8, FlushEvery: time.Hour})
	parsed := make([]scanner.Cert, len(cases))
	now := time.Now()
	for i, tc := range cases {
		parsed[i] = scanner.ParseCert(tc.der)
		r := scanner.Result{Target: scanner.Target{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 10, 0, byte(i + 1)}), 443)},
			Start: now, End: now, Status: scanner.StatusOK, Connected: true, Chain: []scanner.Cert{parsed[i]}}
		if err := w.Write(ctx, uint64(i), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := parsed[i]
			var nb, na sql.NullString
			var sigAlg, subject, parseError string
			err := raw.QueryRowContext(ctx, `SELECT not_before, not_after, signature_algorithm, subject, parse_error
				FROM certificates WHERE sha256 = ?`, want.Fingerprint()).Scan(&nb, &na, &sigAlg, &subject, &parseError)
			if err != nil {
				t.Fatal(err)
			}
			gotCols := [5]string{nb.String, na.String, sigAlg, subject, parseError}
			wantCols := [5]string{tc.want.notBefore, tc.want.notAfter, tc.want.sigAlg, tc.want.subject, tc.want.parseError}
			if tc.want.parseError != "" {
				wantCols[2], wantCols[3] = "", ""
			}
			if nb.Valid != (tc.want.notBefore != "") || na.Valid != (tc.want.notAfter != "") || gotCols != wantCols {
				t.Errorf("stored columns (not_before, not_after, signature_algorithm, subject, parse_error) = %q (valid %v %v), want %q",
					gotCols, nb.Valid, na.Valid, wantCols)
			}
			got, err := db.FindCertificate(ctx, want.Fingerprint())
			if err != nil {
				t.Fatal(err)
			}
			g := got.Cert
			if !g.NotBefore.Equal(want.NotBefore) || !g.NotAfter.Equal(want.NotAfter) ||
				g.Subject != want.Subject || g.Issuer != want.Issuer || g.Serial != want.Serial ||
				g.KeyType != want.KeyType || g.KeyBits != want.KeyBits || g.SignatureAlgorithm != want.SignatureAlgorithm ||
				g.IsCA != want.IsCA || g.SelfSigned != want.SelfSigned || g.ParseError != want.ParseError ||
				g.SPKISHA256 != want.SPKISHA256 && want.ParseError == "" || string(g.DER) != string(want.DER) {
				t.Errorf("read back\n  %+v\nwant\n  %+v", summary(g), summary(want))
			}
		})
	}
}

func summary(c scanner.Cert) scanner.Cert {
	c.DER = nil
	return c
}
