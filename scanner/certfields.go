package scanner

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	_ "crypto/md5" // registers crypto.MD5 for self-signature checks
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/zmap/zcrypto/dsa"
	zasn1 "github.com/zmap/zcrypto/encoding/asn1"
	"github.com/zmap/zcrypto/rsa"
	"github.com/zmap/zcrypto/x509"
	"github.com/zmap/zcrypto/x509/pkix"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// This file reads the certificate fields that zcrypto's summary gets wrong
// or leaves out on unusual certificates, from the DER itself: validity bounds
// it cannot read, algorithms it does not name, name attributes in string
// types it does not decode, and self-signatures it does not check.

// unreadableValidity starts the ParseError of a certificate whose notBefore
// or notAfter cannot be read, so that reports can say so (ValidityUnreadable).
const unreadableValidity = "unreadable validity: "

// ValidityUnreadable reports whether the certificate failed to parse because
// a validity bound cannot be read: clients refuse it, and nobody can tell
// when it expires.
func (c Cert) ValidityUnreadable() bool {
	return strings.HasPrefix(c.ParseError, unreadableValidity)
}

// validityError explains why a certificate zcrypto refused has unreadable
// validity bounds, or returns "" when both bounds read (or the DER does not
// reach them): the parse error is then zcrypto's own.
//
// Each bound is read with zcrypto's own time rules, so the verdict matches
// the parser's. Those rules follow RFC 5280 for GeneralizedTime: seconds are
// required ("YYYYMMDDHHMMSSZ", 4.1.2.5.2), and a value without them is
// refused, as crypto/x509 and OpenSSL refuse it. UTCTime without seconds is
// read, as crypto/x509 reads it.
func validityError(der []byte) string {
	nb, na, ok := validityElements(der)
	if !ok {
		return ""
	}
	var bad []string
	for _, b := range []struct {
		name string
		elem cryptobyte.String
	}{{"notBefore", nb}, {"notAfter", na}} {
		if why := timeError(b.elem); why != "" {
			bad = append(bad, b.name+" "+why)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return unreadableValidity + strings.Join(bad, "; ")
}

// timeError says why one encoded Time cannot be read, or returns "".
func timeError(elem cryptobyte.String) string {
	var tag cbasn1.Tag
	var body cryptobyte.String
	in := elem
	if !in.ReadAnyASN1(&body, &tag) {
		return "is not a complete ASN.1 element"
	}
	var why string
	switch tag {
	case cbasn1.UTCTime:
		why = "UTCTime %q is not a date in the form YYMMDDHHMMSSZ"
	case cbasn1.GeneralizedTime:
		why = "GeneralizedTime %q is not a date in the form YYYYMMDDHHMMSSZ that RFC 5280 requires"
	default:
		return fmt.Sprintf("has ASN.1 tag %d, not UTCTime or GeneralizedTime", int(tag))
	}
	var t time.Time
	if _, err := zasn1.Unmarshal(elem, &t); err == nil {
		return ""
	}
	s := string(body)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf(why, s)
}

// validityElements returns the two encoded Time elements of a certificate.
func validityElements(der []byte) (nb, na cryptobyte.String, ok bool) {
	in := cryptobyte.String(der)
	var cert, tbs, validity cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.ReadASN1(&validity, cbasn1.SEQUENCE) {
		return nil, nil, false
	}
	var tag cbasn1.Tag
	if !validity.ReadAnyASN1Element(&nb, &tag) || !validity.ReadAnyASN1Element(&na, &tag) {
		return nil, nil, false
	}
	return nb, na, true
}

// Signature algorithms by OID: the names zcrypto gives (kept, since stored
// values and reports use them), plus SHA-224 in the same scheme, which
// zcrypto does not name. RSASSA-PSS is named from its parameters.
var sigAlgs = map[string]sigAlg{
	"1.2.840.113549.1.1.2":   {"MD2-RSA", keyRSA, 0},
	"1.2.840.113549.1.1.4":   {"MD5-RSA", keyRSA, crypto.MD5},
	"1.2.840.113549.1.1.5":   {"SHA1-RSA", keyRSA, crypto.SHA1},
	"1.3.14.3.2.29":          {"SHA1-RSA", keyRSA, crypto.SHA1},
	"1.2.840.113549.1.1.14":  {"SHA224-RSA", keyRSA, crypto.SHA224},
	"1.2.840.113549.1.1.11":  {"SHA256-RSA", keyRSA, crypto.SHA256},
	"1.2.840.113549.1.1.12":  {"SHA384-RSA", keyRSA, crypto.SHA384},
	"1.2.840.113549.1.1.13":  {"SHA512-RSA", keyRSA, crypto.SHA512},
	"1.2.840.10040.4.3":      {"DSA-SHA1", keyDSA, crypto.SHA1},
	"2.16.840.1.101.3.4.3.1": {"DSA-SHA224", keyDSA, crypto.SHA224},
	"2.16.840.1.101.3.4.3.2": {"DSA-SHA256", keyDSA, crypto.SHA256},
	"1.2.840.10045.4.1":      {"ECDSA-SHA1", keyECDSA, crypto.SHA1},
	"1.2.840.10045.4.3.1":    {"ECDSA-SHA224", keyECDSA, crypto.SHA224},
	"1.2.840.10045.4.3.2":    {"ECDSA-SHA256", keyECDSA, crypto.SHA256},
	"1.2.840.10045.4.3.3":    {"ECDSA-SHA384", keyECDSA, crypto.SHA384},
	"1.2.840.10045.4.3.4":    {"ECDSA-SHA512", keyECDSA, crypto.SHA512},
	"1.3.101.112":            {"Ed25519", keyEd25519, 0},
	oidRSAPSS:                {"RSASSA-PSS", keyRSAPSS, 0},
}

const oidRSAPSS = "1.2.840.113549.1.1.10"

type keyKind int

const (
	keyRSA keyKind = iota + 1
	keyRSAPSS
	keyDSA
	keyECDSA
	keyEd25519
)

type sigAlg struct {
	name string
	key  keyKind
	hash crypto.Hash // 0: none (Ed25519) or not available (MD2)
}

// Hash algorithms that RSASSA-PSS parameters name, by OID.
var pssHashes = map[string]struct {
	name string
	hash crypto.Hash
}{
	"1.2.840.113549.2.2":     {"MD2", 0},
	"1.2.840.113549.2.5":     {"MD5", crypto.MD5},
	"1.3.14.3.2.26":          {"SHA1", crypto.SHA1},
	"2.16.840.1.101.3.4.2.4": {"SHA224", crypto.SHA224},
	"2.16.840.1.101.3.4.2.1": {"SHA256", crypto.SHA256},
	"2.16.840.1.101.3.4.2.2": {"SHA384", crypto.SHA384},
	"2.16.840.1.101.3.4.2.3": {"SHA512", crypto.SHA512},
}

// pssParams are RSASSA-PSS-params (RFC 4055 3.1) with their defaults:
// SHA-1, MGF1 with SHA-1, a 20-byte salt, trailer 1 (0xBC).
type pssParams struct {
	hashName      string
	hash, mgfHash crypto.Hash // 0 when not one certsweep can compute
	saltLen       int
	trailer       int
}

// parsePSSParams reads the parameters of an RSASSA-PSS AlgorithmIdentifier
// (the complete element, nil when absent). It fails when they do not say
// which hash signs: absent, NULL, malformed, or a hash not in pssHashes.
func parsePSSParams(params []byte) (pssParams, bool) {
	p := pssParams{hashName: "SHA1", hash: crypto.SHA1, mgfHash: crypto.SHA1, saltLen: 20, trailer: 1}
	in := cryptobyte.String(params)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return p, false
	}
	tag := func(n int) cbasn1.Tag { return cbasn1.Tag(n).Constructed().ContextSpecific() }
	var hashAI, mgfAI cryptobyte.String
	var hasHash, hasMGF, hasSalt, hasTrailer bool
	var salt, trailer int64
	if !seq.ReadOptionalASN1(&hashAI, &hasHash, tag(0)) ||
		!seq.ReadOptionalASN1(&mgfAI, &hasMGF, tag(1)) ||
		!readOptionalInt(&seq, &salt, &hasSalt, tag(2)) ||
		!readOptionalInt(&seq, &trailer, &hasTrailer, tag(3)) || !seq.Empty() {
		return p, false
	}
	if hasHash {
		oid, _, ok := readAlgorithmIdentifier(&hashAI)
		h, known := pssHashes[oid]
		if !ok || !hashAI.Empty() || !known {
			return p, false
		}
		p.hashName, p.hash = h.name, h.hash
	}
	if hasMGF {
		// MGF1 (1.2.840.113549.1.1.8) with a hash; any other mask generation
		// function cannot be checked, but the message hash still names it.
		p.mgfHash = 0
		oid, mgfParams, ok := readAlgorithmIdentifier(&mgfAI)
		if ok && oid == "1.2.840.113549.1.1.8" {
			in := cryptobyte.String(mgfParams)
			if hoid, _, ok := readAlgorithmIdentifier(&in); ok {
				p.mgfHash = pssHashes[hoid].hash
			}
		}
	}
	if hasSalt {
		p.saltLen = int(salt)
	}
	if hasTrailer {
		p.trailer = int(trailer)
	}
	return p, true
}

func readOptionalInt(s *cryptobyte.String, out *int64, present *bool, tag cbasn1.Tag) bool {
	var inner cryptobyte.String
	if !s.ReadOptionalASN1(&inner, present, tag) {
		return false
	}
	if !*present {
		return true
	}
	return inner.ReadASN1Integer(out) && inner.Empty() && *out >= 0 && *out < 1<<16
}

// readAlgorithmIdentifier reads an AlgorithmIdentifier SEQUENCE from s and
// returns its dotted OID and its parameters element (nil when absent).
func readAlgorithmIdentifier(s *cryptobyte.String) (string, []byte, bool) {
	var ai cryptobyte.String
	var oid cryptobyte.String
	if !s.ReadASN1(&ai, cbasn1.SEQUENCE) || !ai.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
		return "", nil, false
	}
	dotted, ok := dottedOID(oid)
	if !ok {
		return "", nil, false
	}
	var params cryptobyte.String
	if !ai.Empty() {
		var tag cbasn1.Tag
		if !ai.ReadAnyASN1Element(&params, &tag) || !ai.Empty() {
			return "", nil, false
		}
	}
	return dotted, params, true
}

// dottedOID renders the body of an OBJECT IDENTIFIER, arcs of any size
// (2.25 UUID arcs are 128-bit). The length cap keeps hostile input linear.
func dottedOID(body []byte) (string, bool) {
	if len(body) == 0 || len(body) > 128 || body[len(body)-1]&0x80 != 0 {
		return "", false
	}
	var b strings.Builder
	arc := new(big.Int)
	first := true
	for i, start := 0, 0; i < len(body); i++ {
		if i == start && body[i] == 0x80 {
			return "", false // not minimal
		}
		arc.Lsh(arc, 7).Or(arc, big.NewInt(int64(body[i]&0x7f)))
		if body[i]&0x80 != 0 {
			continue
		}
		if first {
			// The first subidentifier packs two arcs: 40*X+Y, X in 0..2.
			x := int64(2)
			if arc.Cmp(big.NewInt(80)) < 0 {
				x = arc.Int64() / 40
			}
			arc.Sub(arc, big.NewInt(40*x))
			fmt.Fprintf(&b, "%d.%s", x, arc)
			first = false
		} else {
			b.WriteByte('.')
			b.WriteString(arc.String())
		}
		arc.SetInt64(0)
		start = i + 1
	}
	return b.String(), true
}

// tbsSignatureAlgorithm returns the OID and parameters of the TBS
// signature AlgorithmIdentifier, the one zcrypto reads.
func tbsSignatureAlgorithm(rawTBS []byte) (string, []byte, bool) {
	in := cryptobyte.String(rawTBS)
	var tbs cryptobyte.String
	if !in.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) {
		return "", nil, false
	}
	return readAlgorithmIdentifier(&tbs)
}

// signatureName names the signature algorithm: zcrypto's name where it has
// one, SHA-224 variants in the same scheme, RSASSA-PSS by the hash its
// parameters name ("SHA256-RSAPSS" whatever the salt) or "RSASSA-PSS" when
// they name none, and anything else by its dotted OID, never zcrypto's "0".
func signatureName(x *x509.Certificate) string {
	if x.SignatureAlgorithm != x509.UnknownSignatureAlgorithm {
		// The common case, and the same name as below: zcrypto names PSS
		// only for the RFC 8017 profiles, by their hash.
		return x.SignatureAlgorithm.String()
	}
	oid, params, ok := tbsSignatureAlgorithm(x.RawTBSCertificate)
	if !ok {
		oid = x.SignatureAlgorithmOID.String()
	}
	if oid == oidRSAPSS {
		if p, ok := parsePSSParams(params); ok {
			return p.hashName + "-RSAPSS"
		}
		return "RSASSA-PSS"
	}
	if a, ok := sigAlgs[oid]; ok {
		return a.name
	}
	if oid == "" {
		return "unknown"
	}
	return oid
}

// UnknownAlgorithm reports whether a stored signature or key algorithm name
// is one certsweep cannot judge: a dotted OID, RSASSA-PSS without a hash, or
// what certsweep stored for those before ("0", "unknown_algorithm").
func UnknownAlgorithm(name string) bool {
	switch {
	case name == "RSASSA-PSS", name == "unknown", name == "unknown_algorithm",
		strings.HasPrefix(name, "unknown("):
		return true
	case name == "":
		return false
	}
	return strings.Trim(name, "0123456789.") == ""
}

// keyAlgorithmName names the key algorithm when keyInfo has no key it
// knows: zcrypto's name ("X25519"), else the SubjectPublicKeyInfo's dotted
// OID, never zcrypto's "unknown_algorithm".
func keyAlgorithmName(x *x509.Certificate) string {
	if x.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
		return x.PublicKeyAlgorithm.String()
	}
	if oid := x.PublicKeyAlgorithmOID.String(); oid != "" {
		return oid
	}
	return "unknown"
}

// selfSigned reports whether the issuer is the subject, byte for byte, and
// the certificate's own key verifies its signature. zcrypto's check misses
// DSA keys whose subgroup is shorter than the hash (the usual DSA-2048 with
// SHA-256: it does not truncate the digest), RSASSA-PSS beyond the three
// RFC 8017 profiles, and SHA-224; this one covers RSA (PKCS #1 v1.5 and
// PSS), ECDSA, Ed25519 and DSA. MD2 and a PSS mask other than MGF1 with a
// known hash cannot be checked and count as not self-signed.
func selfSigned(x *x509.Certificate) bool {
	if !bytes.Equal(x.RawSubject, x.RawIssuer) {
		return false
	}
	if x.SelfSigned {
		return true // zcrypto verified it
	}
	oid, params, ok := tbsSignatureAlgorithm(x.RawTBSCertificate)
	if !ok {
		return false
	}
	alg, ok := sigAlgs[oid]
	if !ok {
		return false
	}
	return verifySignature(x.PublicKey, alg, params, x.RawTBSCertificate, x.Signature)
}

// maxKeyBits bounds the RSA modulus or DSA prime selfSigned will verify with.
const maxKeyBits = 16384

func verifySignature(pub any, alg sigAlg, params, signed, sig []byte) bool {
	if alg.key == keyEd25519 {
		k, ok := pub.(ed25519.PublicKey)
		return ok && len(k) == ed25519.PublicKeySize && ed25519.Verify(k, signed, sig)
	}
	h := alg.hash
	var pss pssParams
	if alg.key == keyRSAPSS {
		var ok bool
		if pss, ok = parsePSSParams(params); !ok {
			return false
		}
		h = pss.hash
	}
	if h == 0 || !h.Available() {
		return false
	}
	hf := h.New()
	hf.Write(signed)
	digest := hf.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		// zcrypto takes any exponent; bound the work a hostile key can ask
		// for, far above any real key.
		if k.N == nil || k.E == nil || k.N.BitLen() > maxKeyBits || k.E.BitLen() > 64 {
			return false
		}
		switch alg.key {
		case keyRSA:
			return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
		case keyRSAPSS:
			return verifyPSS(k, pss, digest, sig)
		}
	case *x509.AugmentedECDSA:
		return alg.key == keyECDSA && k.Pub != nil && ecdsa.VerifyASN1(k.Pub, digest, sig)
	case *ecdsa.PublicKey:
		return alg.key == keyECDSA && ecdsa.VerifyASN1(k, digest, sig)
	case *dsa.PublicKey:
		return alg.key == keyDSA && verifyDSA(k, digest, sig)
	}
	return false
}

// verifyDSA truncates the digest to the subgroup's length, as FIPS 186-4
// 4.6 requires and dsa.Verify leaves to the caller.
func verifyDSA(k *dsa.PublicKey, digest, sig []byte) bool {
	if k.P == nil || k.Q == nil || k.G == nil || k.Y == nil || k.Q.Sign() <= 0 ||
		k.P.BitLen() > maxKeyBits || k.Q.BitLen() > k.P.BitLen() {
		return false
	}
	in := cryptobyte.String(sig)
	var seq cryptobyte.String
	r, s := new(big.Int), new(big.Int)
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(r) || !seq.ReadASN1Integer(s) || !seq.Empty() {
		return false
	}
	if n := k.Q.BitLen() / 8; len(digest) > n {
		digest = digest[:n]
	}
	return dsa.Verify(k, digest, r, s)
}

// verifyPSS is EMSA-PSS verification (RFC 8017 9.1.2) with the salt length
// and MGF1 hash the parameters give, which rsa.VerifyPSS cannot take.
func verifyPSS(k *rsa.PublicKey, p pssParams, digest, sig []byte) bool {
	if k.N == nil || k.N.Sign() <= 0 || k.E == nil || k.E.Cmp(big.NewInt(2)) < 0 ||
		p.trailer != 1 || p.mgfHash == 0 || !p.mgfHash.Available() {
		return false
	}
	size := (k.N.BitLen() + 7) / 8
	s := new(big.Int).SetBytes(sig)
	if len(sig) != size || s.Cmp(k.N) >= 0 {
		return false
	}
	em := new(big.Int).Exp(s, k.E, k.N).FillBytes(make([]byte, size))
	emBits := k.N.BitLen() - 1
	emLen := (emBits + 7) / 8
	if len(em) > emLen {
		if em[0] != 0 {
			return false
		}
		em = em[1:]
	}
	hLen := p.hash.Size()
	if emLen < hLen+p.saltLen+2 || em[emLen-1] != 0xbc {
		return false
	}
	db, h := em[:emLen-hLen-1], em[emLen-hLen-1:emLen-1]
	zeroBits := uint(8*emLen - emBits)
	if db[0]&^(0xff>>zeroBits) != 0 {
		return false
	}
	mgf1XOR(db, p.mgfHash, h)
	db[0] &= 0xff >> zeroBits
	ps := emLen - hLen - p.saltLen - 2
	for _, c := range db[:ps] {
		if c != 0 {
			return false
		}
	}
	if db[ps] != 1 {
		return false
	}
	hf := p.hash.New()
	hf.Write(make([]byte, 8))
	hf.Write(digest)
	hf.Write(db[len(db)-p.saltLen:])
	return bytes.Equal(hf.Sum(nil), h)
}

// mgf1XOR XORs out with MGF1(seed) using hash h.
func mgf1XOR(out []byte, h crypto.Hash, seed []byte) {
	var counter [4]byte
	for done := 0; done < len(out); {
		hf := h.New()
		hf.Write(seed)
		hf.Write(counter[:])
		for _, c := range hf.Sum(nil) {
			if done == len(out) {
				break
			}
			out[done] ^= c
			done++
		}
		for i := 3; i >= 0; i-- {
			if counter[i]++; counter[i] != 0 {
				break
			}
		}
	}
}

// rawValue is one attribute value of a Name as encoded.
type rawValue struct {
	tag     cbasn1.Tag
	full    []byte // the whole element
	content []byte
}

// nameValues returns the attribute values of a DER Name, RDN by RDN.
func nameValues(raw []byte) ([][]rawValue, bool) {
	in := cryptobyte.String(raw)
	var rdns cryptobyte.String
	if !in.ReadASN1(&rdns, cbasn1.SEQUENCE) {
		return nil, false
	}
	var out [][]rawValue
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return nil, false
		}
		var rdn []rawValue
		for !set.Empty() {
			var atv cryptobyte.String
			var v rawValue
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.SkipASN1(cbasn1.OBJECT_IDENTIFIER) {
				return nil, false
			}
			var full, content cryptobyte.String
			if !atv.ReadAnyASN1Element(&full, &v.tag) || !atv.Empty() {
				return nil, false
			}
			c := full
			if !c.ReadAnyASN1(&content, &v.tag) {
				return nil, false
			}
			v.full, v.content = full, content
			rdn = append(rdn, v)
		}
		out = append(out, rdn)
	}
	return out, true
}

// ASN.1 string tags that cryptobyte/asn1 does not name.
const (
	tagNumericString   = cbasn1.Tag(18)
	tagTeletexString   = cbasn1.Tag(20)
	tagVideotexString  = cbasn1.Tag(21)
	tagGraphicString   = cbasn1.Tag(25)
	tagVisibleString   = cbasn1.Tag(26)
	tagGeneralString   = cbasn1.Tag(27)
	tagUniversalString = cbasn1.Tag(28)
	tagBMPString       = cbasn1.Tag(30)
)

// nameString renders a Name as zcrypto's Name.String() does ("CN=x, O=y"),
// except the attribute values zcrypto shows as "<nil>" or mangles: string
// types it does not decode (UniversalString, VisibleString, GeneralString,
// ...), bytes that are not text in their type, and values that are not
// strings at all. String values are decoded here (decodeDirectoryString).
// A value that is no string, or any of these under an attribute type
// zcrypto has no name for, is shown as RFC 4514's #hex of its encoding, the
// form zcrypto uses for unnamed types.
func nameString(n pkix.Name, raw []byte) string {
	rdns := n.ToRDNSequence()
	if !mayBeOdd(rdns) {
		return n.String() // the common case: no need to walk the DER
	}
	vals, ok := nameValues(raw)
	if !ok || len(vals) != len(rdns) {
		return n.String()
	}
	odd := false
	for i, rdn := range rdns {
		if len(rdn) != len(vals[i]) {
			return n.String()
		}
		for j, tv := range rdn {
			odd = odd || oddValue(tv.Value, vals[i][j])
		}
	}
	if !odd {
		return n.String()
	}
	// The same walk as zcrypto's RDNSequence.String, value by value.
	var b strings.Builder
	for i := range rdns {
		idx := len(rdns) - 1 - i
		if pkix.LegacyNameString {
			idx = i
		}
		if i > 0 {
			b.WriteString(", ")
		}
		for j, tv := range rdns[idx] {
			if j > 0 {
				b.WriteString(", ")
			}
			v := vals[idx][j]
			if !oddValue(tv.Value, v) {
				b.WriteString(pkix.RDNSequence{{tv}}.String())
				continue
			}
			name, known := attributeName(tv.Type)
			if !known || !isStringTag(v.tag) {
				b.WriteString(name + "=#" + hex.EncodeToString(v.full))
				continue
			}
			b.WriteString(name + "=")
			writeDNValue(&b, decodeDirectoryString(v.tag, v.content))
		}
	}
	return b.String()
}

// attributeName is zcrypto's short name for an attribute type, or its
// dotted OID and false when zcrypto has none.
func attributeName(t zasn1.ObjectIdentifier) (string, bool) {
	s := pkix.RDNSequence{{{Type: t, Value: "x"}}}.String()
	if name, ok := strings.CutSuffix(s, "=x"); ok && !strings.ContainsAny(name, "=#") {
		return name, true
	}
	return t.String(), false
}

func isStringTag(t cbasn1.Tag) bool {
	switch t {
	case cbasn1.UTF8String, cbasn1.PrintableString, cbasn1.IA5String, tagNumericString,
		tagTeletexString, tagVideotexString, tagGraphicString, tagVisibleString,
		tagGeneralString, tagUniversalString, tagBMPString:
		return true
	}
	return false
}

// mayBeOdd is a quick filter for oddValue that needs no DER: zcrypto has
// no value, or one that is not clean UTF-8 (Latin-1 TeletexString, bytes
// that are not text) or holds U+FFFD (a BMPString's lone surrogate).
func mayBeOdd(rdns pkix.RDNSequence) bool {
	for _, rdn := range rdns {
		for _, tv := range rdn {
			switch v := tv.Value.(type) {
			case nil:
				return true
			case string:
				if !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError) {
					return true
				}
			}
		}
	}
	return false
}

// oddValue reports whether zcrypto's rendering of a value loses it: no
// value (a type it does not decode), bytes that are not text, or a BMPString
// with a lone surrogate (zcrypto shows U+FFFD).
func oddValue(v any, r rawValue) bool {
	switch v.(type) {
	case nil:
		return true
	case string:
		switch {
		case r.tag == tagTeletexString, r.tag == tagVideotexString:
			return !utf8.Valid(r.content) // zcrypto keeps the bytes, not Latin-1
		case isStringTag(r.tag):
			for _, p := range decodeDirectoryString(r.tag, r.content) {
				if p.raw != nil {
					return true
				}
			}
		}
	}
	return false
}

// dirPart is a piece of a decoded string: text, or bytes that do not decode
// in the string's type (shown escaped, never guessed).
type dirPart struct {
	text string
	raw  []byte
}

// decodeDirectoryString decodes a string-typed attribute value:
// UTF8String and the ASCII types as UTF-8; TeletexString and
// VideotexString as UTF-8 when valid, else as Latin-1 (what their encoders
// meant in practice; ParseDN reads them the same way); BMPString as
// UTF-16BE (a trailing NUL pair dropped, as zcrypto does); UniversalString
// as UTF-32BE. What does not decode stays raw bytes.
func decodeDirectoryString(tag cbasn1.Tag, b []byte) []dirPart {
	var parts []dirPart
	text := func(s string) {
		if n := len(parts); n > 0 && parts[n-1].raw == nil {
			parts[n-1].text += s
			return
		}
		parts = append(parts, dirPart{text: s})
	}
	raw := func(r []byte) {
		if n := len(parts); n > 0 && parts[n-1].raw != nil {
			parts[n-1].raw = append(parts[n-1].raw, r...)
			return
		}
		parts = append(parts, dirPart{raw: append([]byte(nil), r...)})
	}
	switch tag {
	case tagTeletexString, tagVideotexString:
		if utf8.Valid(b) {
			text(string(b))
			break
		}
		rs := make([]rune, len(b))
		for i, c := range b {
			rs[i] = rune(c)
		}
		text(string(rs))
	case tagBMPString:
		if l := len(b); l >= 2 && l%2 == 0 && b[l-1] == 0 && b[l-2] == 0 {
			b = b[:l-2]
		}
		for len(b) >= 2 {
			u := uint16(b[0])<<8 | uint16(b[1])
			switch {
			case !utf16.IsSurrogate(rune(u)):
				text(string(rune(u)))
				b = b[2:]
			case u < 0xdc00 && len(b) >= 4 && b[2]>>2 == 0xdc>>2:
				text(string(utf16.DecodeRune(rune(u), rune(b[2])<<8|rune(b[3]))))
				b = b[4:]
			default:
				raw(b[:2])
				b = b[2:]
			}
		}
		if len(b) > 0 {
			raw(b)
		}
	case tagUniversalString:
		for len(b) >= 4 {
			r := rune(b[0])<<24 | rune(b[1])<<16 | rune(b[2])<<8 | rune(b[3])
			if utf8.ValidRune(r) {
				text(string(r))
			} else {
				raw(b[:4])
			}
			b = b[4:]
		}
		if len(b) > 0 {
			raw(b)
		}
	default:
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			if r == utf8.RuneError && n == 1 {
				raw(b[:1])
			} else {
				text(string(b[:n]))
			}
			b = b[n:]
		}
	}
	return parts
}

// writeDNValue escapes a decoded value as zcrypto escapes its values (RFC
// 4514 specials; '#' first, space first or last), and writes bytes that do
// not decode as \XX pairs, which ParseDN reads back as those bytes.
func writeDNValue(b *strings.Builder, parts []dirPart) {
	total := 0
	for _, p := range parts {
		total += len(p.text) + len(p.raw)
	}
	pos := 0
	for _, p := range parts {
		for _, c := range p.raw {
			fmt.Fprintf(b, "\\%02X", c)
		}
		pos += len(p.raw)
		for k, c := range p.text {
			at := pos + k
			switch {
			case strings.ContainsRune(",+\"\\<>;", c),
				c == ' ' && (at == 0 || at == total-1),
				c == '#' && at == 0:
				b.WriteByte('\\')
			}
			b.WriteRune(c)
		}
		pos += len(p.text)
	}
}
