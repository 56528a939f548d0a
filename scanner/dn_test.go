package scanner

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
)

// dnGroups holds spellings that must name the same entity; names in
// different groups must not match. The openssl lines are pasted from
// `openssl x509 -noout -issuer -nameopt X` (OpenSSL 3.0) for the certificate
// in the comment, so the tests do not need openssl.
var dnGroups = [][]string{
	// openssl req -x509 -subj '/C=US/O=Corp/CN=Corp Issuing CA 2'
	{
		`issuer=C = US, O = Corp, CN = Corp Issuing CA 2`, // default and oneline
		`issuer=/C=US/O=Corp/CN=Corp Issuing CA 2`,        // compat
		`issuer=CN=Corp Issuing CA 2,O=Corp,C=US`,         // RFC2253
		`C = US, O = Corp, CN = Corp Issuing CA 2`,
		`/C=US/O=Corp/CN=Corp Issuing CA 2`,
		`CN=Corp Issuing CA 2,O=Corp,C=US`,
		`CN=Corp Issuing CA 2, O=Corp, C=US`, // zcrypto
		`Subject= /C=US/O=Corp/CN=Corp Issuing CA 2`,
		`CN=Corp Issuing CA 2;O=Corp;C=US`,
		`CN=Corp Issuing CA 2+O=Corp,C=US`,
		`CN="Corp Issuing CA 2", O="Corp", C=US`,
		`CN=Corp\20Issuing\ CA 2,O=\43orp,C=US`,
		`CN=#0c11436f72702049737375696e672043412032,O=Corp,C=US`,
		`CN=Corp Issuing CA 2,O=#1304436F7270,C=US`,
		`2.5.4.3=Corp Issuing CA 2,2.5.4.10=Corp,2.5.4.6=US`,
		`OID.2.5.4.3=Corp Issuing CA 2,oid.2.5.4.10=Corp,2.5.4.6=US`,
		`commonName=corp   issuing ca 2, organizationName=CORP, countryName=us`,
		"  cn=Corp\tIssuing CA 2 ,o=Corp,c=US  ",
	},
	// openssl req -x509 -utf8 -multivalue-rdn -subj '/C=US/O=Acme, Inc "West"/OU=R\+D/OU=a\\b; c<d>=e/OU=\#hash/L=Zürich\/Nord/CN=Corp Issuing CA 2+serialNumber=42/2.5.4.45=xyz'
	{
		`subject=C = US, O = "Acme, Inc \"West\"", OU = "R+D", OU = "a\\b; c<d>=e", OU = "#hash", L = Z\C3\BCrich/Nord, serialNumber = 42 + CN = Corp Issuing CA 2, x500UniqueIdentifier = xyz`,
		`subject=/C=US/O=Acme, Inc "West"/OU=R\+D/OU=a\b; c<d>=e/OU=#hash/L=Z\xC3\xBCrich\/Nord/serialNumber=42+CN=Corp Issuing CA 2/x500UniqueIdentifier=xyz`,
		`subject=x500UniqueIdentifier=xyz,CN=Corp Issuing CA 2+serialNumber=42,L=Z\C3\BCrich/Nord,OU=\#hash,OU=a\\b\; c\<d\>=e,OU=R\+D,O=Acme\, Inc \"West\",C=US`,
		// zcrypto's spelling (unknown-to-us types as #hex BER), hand-written
		`2.5.4.45=#0c0378797a, CN=Corp Issuing CA 2, serialNumber=42, L=Zürich/Nord, OU=\#hash, OU=a\\b\; c\<d\>\=e, OU=R\+D, O=Acme\, Inc \"West\", C=US`,
	},
	{`CN=Corp Issuing CA 2, O=Corp, C=DE`},
	{`CN=Corp Issuing CA 2, O=Corp, C=US, OU=Extra`},
	{`CN=Corp Issuing CA 2, C=US`},
	{`CN=Corp Issuing CA 2, CN=Corp Issuing CA 2, O=Corp, C=US`}, // a multiset, not a set
	{`CN=Corp Issuing CA2, O=Corp, C=US`},                        // spaces inside matter
	{`O=Corp Issuing CA 2, CN=Corp, C=US`},                       // values swapped between types
	{`CN=a\,b`},
	{`CN=a,B=b`},
	{`CN=\#0c0178`}, // the string "#0c0178"
	{`CN=#0c0178`, `CN=x`},
	{`CN=#04036f6f70`}, // OCTET STRING: compared as bytes
	{`CN=oop`},
}

func TestDNSpellingsMatch(t *testing.T) {
	owner := map[string]int{}
	for gi, g := range dnGroups {
		var want string
		for _, s := range g {
			d, err := ParseDN(s)
			if err != nil {
				t.Errorf("ParseDN(%q): %v", s, err)
				continue
			}
			k := d.Key()
			if want == "" {
				want = k
				if prev, dup := owner[k]; dup {
					t.Errorf("group %d and %d share key %s", prev, gi, k)
				}
				owner[k] = gi
			} else if k != want {
				t.Errorf("ParseDN(%q).Key() = %s, want %s (as %q)", s, k, want, g[0])
			}
			if !SameDN(s, g[0]) {
				t.Errorf("SameDN(%q, %q) = false", s, g[0])
			}
		}
	}
}

func TestDNTypeAliases(t *testing.T) {
	for _, g := range [][]string{
		{`cn=x, o=y`, `CN = x,O = y`, `commonName=x,organizationName=y`, `COMMONNAME=x;OrganizationName=y`},
		{`ST=Bavaria`, `S=Bavaria`, `stateOrProvinceName=Bavaria`, `2.5.4.8=Bavaria`},
		{`emailAddress=a@b.c`, `E=A@B.C`, `Email=a@b.c`, `1.2.840.113549.1.9.1=a@b.c`},
		{`OU=x,L=y,C=DE`, `organizationalUnitName=x,localityName=y,countryName=DE`, `2.5.4.11=x,2.5.4.7=y,2.5.4.6=DE`},
		{`STREET=1 Main St`, `street=1 Main St`, `streetAddress=1 Main St`, `2.5.4.9=1 Main St`},
		{`serialNumber=42,postalCode=1000`, `2.5.4.5=42,2.5.4.17=1000`},
		{`SN=Doe,GN=Jo`, `surname=Doe,givenName=Jo`, `2.5.4.4=Doe,2.5.4.42=Jo`},
		{`DC=example,DC=com`, `domainComponent=example,dc=com`, `0.9.2342.19200300.100.1.25=example,DC=com`},
		{`UID=jo`, `userid=jo`, `userId=jo`, `0.9.2342.19200300.100.1.1=jo`},
		{`title=CA,organizationIdentifier=VATDE-1,businessCategory=Private Organization`, `2.5.4.12=CA,2.5.4.97=VATDE-1,2.5.4.15=Private Organization`},
		// EV: OpenSSL, zcrypto (OpenSSL's older short names) and the OIDs
		{`jurisdictionL=Munich,jurisdictionST=Bavaria,jurisdictionC=DE`,
			`jurisdictionLocalityName=Munich, jurisdictionStateOrProvinceName=Bavaria, jurisdictionCountryName=DE`,
			`jurisdictionLocality=Munich, jurisdictionStateOrProvince=Bavaria, jurisdictionCountry=DE`,
			`1.3.6.1.4.1.311.60.2.1.1=Munich,1.3.6.1.4.1.311.60.2.1.2=Bavaria,1.3.6.1.4.1.311.60.2.1.3=DE`},
		{`fooBar=x`, `FOOBAR=x`},
		{`1.2.3.4=x`, `OID.1.2.3.4=x`, `1.2.3.4=#130178`},
	} {
		for _, s := range g[1:] {
			if !SameDN(g[0], s) {
				t.Errorf("SameDN(%q, %q) = false, want true", g[0], s)
			}
		}
	}
}

func TestDNValueFolding(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{`CN=Foo  Bar`, `CN=foo bar`, true},
		{`CN=Foo Bar`, "CN=\\20 FOO\\09\t BAR\\ ", true},
		{`CN=Jürgen ÖL`, `CN=jÜRGEN öl`, true},
		{`CN=Jürgen`, `CN=J\C3\9Crgen`, true},
		{"CN=a\u00a0b", `CN=a b`, true}, // NBSP is whitespace
		{`CN=ab`, `CN=a b`, false},
		{`CN=a-b`, `CN=a b`, false},
		{`CN=x`, `CN=x,O=y`, false},
		{`CN=x,O=y`, `CN=x,O=z`, false},
		{`CN=x`, `O=x`, false},
		{`CN=a\,b`, `CN=a,B=b`, false},
		{`CN=a\+b`, `CN=a+B=b`, false},
		{`CN=\#0c0178`, `CN=#0c0178`, false},
		{`CN=foo\FF`, "CN=foo\uFFFD", false}, // invalid UTF-8 does not fold into U+FFFD
		{`CN=x`, `CN x`, false},              // one side does not parse
		{`CN x`, `CN x`, false},
	} {
		if got := SameDN(tc.a, tc.b); got != tc.same {
			t.Errorf("SameDN(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
		if got := SameDN(tc.b, tc.a); got != tc.same {
			t.Errorf("SameDN(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.same)
		}
	}
}

func TestParseDNValues(t *testing.T) {
	a := func(kv ...string) DN {
		var d DN
		for i := 0; i < len(kv); i += 2 {
			d = append(d, DNAttr{Type: kv[i], Value: kv[i+1]})
		}
		return d
	}
	ber := func(typ, v string) DN { return DN{{Type: typ, Value: v, ber: true}} }
	for _, tc := range []struct {
		in   string
		want DN
	}{
		{`CN=J\C3\BCrgen`, a("CN", "Jürgen")},
		{`O="Acme, Inc", C = US`, a("O", "Acme, Inc", "C", "US")},
		{`O = "a\\b \"q\" \C3\BC+"`, a("O", `a\b "q" ü+`)},
		{`CN=#0C03ABCD`, ber("CN", "#0c03abcd")},
		{`CN=#0c03abcd `, ber("CN", "#0c03abcd")},
		{`CN=a\ `, a("CN", "a ")},
		{"CN=x, O=y\r\n", a("CN", "x", "O", "y")},
		{"/CN=x\n", a("CN", "x")},
		{`CN=  a  b  `, a("CN", "a  b")},
		{`CN=a=b, title = Chief = Boss`, a("CN", "a=b", "title", "Chief = Boss")},
		{`CN=`, a("CN", "")},
		{`CN=x+O=y;C=z`, a("CN", "x", "O", "y", "C", "z")},
		{`OID.2.5.4.3=x`, a("OID.2.5.4.3", "x")},
		{`/CN=a/b/O=c`, a("CN", "a/b", "O", "c")},
		{`/CN=a/2.5.4.10=c`, a("CN", "a", "2.5.4.10", "c")},
		{`/CN=a / b=c`, a("CN", "a / b=c")}, // "/ b=" has no type right after '/'
		{`/CN=x+O=y`, a("CN", "x", "O", "y")},
		{`/CN=R\+D+x/y`, a("CN", "R+D+x/y")},
		{`/CN=a\b\\c`, a("CN", `a\b\c`)},
		{`/L=Z\xC3\xBCrich\/Nord`, a("L", "Zürich/Nord")},
		{`/OU= lead`, a("OU", "lead")},
		{`subject=foo`, a("subject", "foo")}, // label kept: "foo" alone is no DN
		{`issuer=CN=x`, a("CN", "x")},
		{`ISSUER=/CN=x`, a("CN", "x")},
		{`issuer=subject=x`, a("subject", "x")},
	} {
		got, err := ParseDN(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseDN(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

func TestDNGet(t *testing.T) {
	d, err := ParseDN(`C = US, O = Acme, OU = Eng, O = "Beta, Ltd", S = Bavaria`)
	if err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{"O", "o", "organizationName", "2.5.4.10", "OID.2.5.4.10"} {
		if got, want := d.Get(attr), []string{"Acme", "Beta, Ltd"}; !slices.Equal(got, want) {
			t.Errorf("Get(%q) = %q, want %q", attr, got, want)
		}
	}
	if got := d.Get("stateOrProvinceName"); !slices.Equal(got, []string{"Bavaria"}) {
		t.Errorf("Get(stateOrProvinceName) = %q", got)
	}
	if got := d.Get("L"); got != nil {
		t.Errorf("Get(L) = %q, want nil", got)
	}
}

func TestParseDNErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, `empty distinguished name`},
		{"  \t", `empty distinguished name`},
		{`CN Foo`, `"CN Foo": attribute "CN Foo" has no '='`},
		{`CN=a,b`, `attribute "b" has no '='`},
		{`CN=a+b`, `attribute "b" has no '='`},
		{`=x`, `empty type before '='`},
		{`CN=x, =y`, `empty type before '='`},
		{`CN=x,`, `empty attribute`},
		{`,CN=x`, `empty attribute`},
		{`CN=x,,O=y`, `empty attribute`},
		{`CN=x\`, `lone backslash`},
		{`CN="x\`, `lone backslash`},
		{`CN=\4`, `bad escape "\\4"`},
		{`CN=\4g,O=y`, `bad escape "\\4g"`},
		{`CN="abc`, `never closed`},
		{`CN="abc"x`, `unexpected 'x' after the quoted value`},
		{`CN=#abc`, `even, non-zero number of hex digits`},
		{`CN=#`, `even, non-zero number of hex digits`},
		{`CN=#0c01zz`, `unexpected 'z' after the hex value`},
		{`C N=x`, `attribute type "C N" is not a name`},
		{`CN\=x=y`, `attribute type "CN\\" is not a name`},
		{`1.=x`, `is not a name`},
		{`/`, `nothing after the leading '/'`},
		{`/foo`, `attribute "foo" has no '='`},
		{`/=x`, `empty type`},
		{`/CN=x\`, `lone backslash`},
		{`issuer=CN x, O`, `attribute "O" has no '='`},
	} {
		_, err := ParseDN(tc.in)
		if err == nil {
			t.Errorf("ParseDN(%q) succeeded, want error containing %q", tc.in, tc.want)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, strconv.Quote(tc.in)+": ") || !strings.Contains(msg, tc.want) {
			t.Errorf("ParseDN(%q) error %q, want the quoted input and %q", tc.in, msg, tc.want)
		}
	}
}

// TestDNZcrypto checks the strings certsweep stores: zcrypto's
// pkix.Name.String() of a parsed certificate must match what users type.
func TestDNZcrypto(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject: pkix.Name{
			Country: []string{"US"},
			// Several values of one attribute make a multi-valued RDN.
			Organization:       []string{`Acme, Inc "West"`, "R+D <Labs>"},
			OrganizationalUnit: []string{" leading space"},
			Locality:           []string{"Zürich"},
			Province:           []string{`#hash; x\y`},
			CommonName:         "Corp Issuing CA 2",
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: asn1.ObjectIdentifier{2, 5, 4, 12}, Value: "Chief = Boss"},
				{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: "opaque"},
			},
		},
		NotBefore: time.Unix(0, 0),
		NotAfter:  time.Unix(0, 0).Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	stored := zc.Subject.String()
	// zcrypto joins the members of the multi-valued O RDN with ", " too, does
	// not escape '=', and prints types it has no name for as #hex BER.
	const wantStored = `1.3.6.1.4.1.99999.1=#13066f7061717565, title=Chief = Boss, CN=Corp Issuing CA 2, OU=\ leading space, O=R\+D \<Labs\>, O=Acme\, Inc \"West\", L=Zürich, ST=\#hash\; x\\y, C=US`
	if stored != wantStored {
		t.Errorf("zcrypto Subject.String() = %s\nwant %s", stored, wantStored)
	}
	d, err := ParseDN(stored)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Get("O"); !slices.Equal(got, []string{"R+D <Labs>", `Acme, Inc "West"`}) {
		t.Errorf("Get(O) = %q", got)
	}
	if got := d.Get("OU"); !slices.Equal(got, []string{" leading space"}) {
		t.Errorf("Get(OU) = %q", got)
	}
	for _, s := range []string{
		// RFC 4514, written by hand in ASN.1 order, multi-valued RDN with '+'
		`C=US, ST=\#hash\3B x\\y, L=Z\C3\BCrich, O=Acme\, Inc \"West\"+O=R\+D \<Labs\>, OU=\ leading space, CN=Corp Issuing CA 2, title=Chief \= Boss, 1.3.6.1.4.1.99999.1=opaque`,
		// openssl x509 -noout -subject -nameopt oneline / compat / RFC2253 of this certificate
		`subject=C = US, ST = "#hash; x\\y", L = Z\C3\BCrich, O = "R+D <Labs>" + O = "Acme, Inc \"West\"", OU = " leading space", CN = Corp Issuing CA 2, title = Chief = Boss, 1.3.6.1.4.1.99999.1 = opaque`,
		`subject=/C=US/ST=#hash; x\y/L=Z\xC3\xBCrich/O=R\+D <Labs>+O=Acme, Inc "West"/OU= leading space/CN=Corp Issuing CA 2/title=Chief = Boss/1.3.6.1.4.1.99999.1=opaque`,
		`subject=1.3.6.1.4.1.99999.1=#13066F7061717565,title=Chief = Boss,CN=Corp Issuing CA 2,OU=\ leading space,O=Acme\, Inc \"West\"+O=R\+D \<Labs\>,L=Z\C3\BCrich,ST=\#hash\; x\\y,C=US`,
	} {
		if !SameDN(stored, s) {
			ds, err := ParseDN(s)
			t.Errorf("SameDN(stored, %q) = false\n stored key %s\n  other key %s (%v)", s, d.Key(), ds.Key(), err)
		}
	}
	for _, s := range []string{
		`C=US, ST=\#hash\3B x\\y, L=Zurich, O=Acme\, Inc \"West\"+O=R\+D \<Labs\>, OU=\ leading space, CN=Corp Issuing CA 2, title=Chief \= Boss, 1.3.6.1.4.1.99999.1=opaque`,
		`C=US, ST=\#hash\3B x\\y, L=Z\C3\BCrich, O=Acme\, Inc \"West\"+O=R\+D \<Labs\>, OU=\ leading space, CN=Corp Issuing CA 2, title=Chief \= Boss`,
	} {
		if SameDN(stored, s) {
			t.Errorf("SameDN(stored, %q) = true, want false", s)
		}
	}
}

func TestDNStringRoundTrip(t *testing.T) {
	for _, d := range []DN{
		{{Type: "CN", Value: ` #lead, "q" +<x>;=\ trail `}},
		{{Type: "O", Value: "\x00\x1f\x7f\xff ü\u00a0"}, {Type: "OID.2.5.4.3", Value: "#x"}},
		{{Type: "issuer", Value: ""}, {Type: "CN", Value: "y"}},
		{{Type: "CN", Value: "#0c0178", ber: true}},
	} {
		s := d.String()
		got, err := ParseDN(s)
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("ParseDN(%q) = %#v, %v; want %#v", s, got, err, d)
		}
	}
}

// TestParseDNLinear feeds large hostile inputs; quadratic parsing would not
// finish in the test's time.
func TestParseDNLinear(t *testing.T) {
	const n = 1 << 20
	for _, s := range []string{
		"/" + strings.Repeat("a/", n/2),
		"/" + strings.Repeat("CN=/", n/4),
		"/CN=" + strings.Repeat("+a", n/2),
		"CN=" + strings.Repeat(`\,`, n/2),
		"CN=" + strings.Repeat(" ", n) + "x",
		"issuer=" + strings.Repeat("CN=a,", n/5),
		"CN=#" + strings.Repeat("0c", n/2),
		strings.Repeat("a", n),
	} {
		d, err := ParseDN(s)
		if err == nil {
			_ = d.Key()
		}
	}
}

func FuzzParseDN(f *testing.F) {
	for _, g := range dnGroups {
		for _, s := range g {
			f.Add(s)
		}
	}
	for _, s := range []string{`CN Foo`, `CN="x\`, `/CN=a\b/O=\xC3\xBC+OU=x`, `subject=foo`, `CN=\#0c0178`, `CN=#1e020041`, `CN=#1c0400000041`, `CN=#0c8103616263`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDN(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), strconv.Quote(s)+": ") {
				t.Fatalf("error %q does not start with the quoted input", err)
			}
			return
		}
		if len(d) == 0 {
			t.Fatalf("ParseDN(%q) returned no attributes and no error", s)
		}
		k := d.Key()
		if d.Key() != k {
			t.Fatalf("Key not deterministic for %q", s)
		}
		if d2, _ := ParseDN(s); d2.Key() != k {
			t.Fatalf("reparsing %q gave key %s, want %s", s, d2.Key(), k)
		}
		r := d.String()
		d3, err := ParseDN(r)
		if err != nil {
			t.Fatalf("ParseDN(%q).String() = %q does not parse: %v", s, r, err)
		}
		if !reflect.DeepEqual(d3, d) || d3.Key() != k {
			t.Fatalf("ParseDN(%q) = %#v; its String %q parses to %#v", s, d, r, d3)
		}
		if !SameDN(s, r) {
			t.Fatalf("SameDN(%q, %q) = false", s, r)
		}
	})
}
