package scanner

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// DN is a parsed distinguished name: its attributes in the order written.
//
// Users paste issuer and subject names in whatever spelling their tools
// print, and certsweep stores zcrypto's pkix.Name.String(); ParseDN reads all
// of those spellings and Key compares them. RDN grouping is not kept: zcrypto
// prints the members of a multi-valued RDN with ", " like separate RDNs, so
// the grouping cannot be compared anyway.
type DN []DNAttr

// DNAttr is one attribute of a DN.
type DNAttr struct {
	Type  string // as written, e.g. "CN", "commonName", "2.5.4.3"
	Value string // unescaped; a BER value written #hex stays "#" + lowercase hex

	// ber marks a Value written as #hex, so that it never compares equal to
	// a string value that merely starts with '#' (written \#...).
	ber bool
}

// ParseDN parses a distinguished name in any of the spellings tools print:
//
//   - RFC 4514/2253 and zcrypto: "CN=Corp CA, O=Corp, C=US", with '+' for
//     multi-valued RDNs, \, and \2C escapes, RFC 1779 quoted values, ';' as
//     a separator and #hex BER values;
//   - OpenSSL's default (oneline): "C = US, O = Corp, CN = Corp CA",
//     optionally after openssl's "issuer=" or "subject=" label;
//   - OpenSSL's legacy slash form (compat): "/C=US/O=Corp/CN=Corp CA".
//
// The errors quote the input and say what to fix.
func ParseDN(s string) (DN, error) {
	// Only leading blanks go here: a trailing one may be escaped ("CN=a\ ").
	t := strings.TrimLeft(s, " \t\r\n")
	if t == "" {
		return nil, fmt.Errorf("%q: empty distinguished name", s)
	}
	// openssl x509 -issuer/-subject prints a label; strip it only when the
	// rest parses, since "subject=x" alone is also a valid one-attribute DN.
	for _, label := range []string{"issuer=", "subject="} {
		if len(t) > len(label) && strings.EqualFold(t[:len(label)], label) {
			if d, err := parseDN(s, t[len(label):]); err == nil {
				return d, nil
			}
		}
	}
	return parseDN(s, t)
}

// Key returns a canonical comparison key: equal keys mean the same name.
// It is order-insensitive, because the spellings ParseDN reads disagree on
// RDN order, and compares values like X.520 caseIgnoreMatch (simplified RFC
// 4518: case folded, surrounding whitespace dropped, inner runs collapsed).
// Types and values are quoted where needed, so names that still differ
// after folding never share a key.
func (d DN) Key() string {
	pairs := make([]string, len(d))
	for i, a := range d {
		t := canonicalDNType(a.Type)
		if !isTypeToken(t) && !isOID(t) {
			t = strconv.Quote(t) // a hand-built DNAttr; keep the key unambiguous
		}
		pairs[i] = t + keyValue(a)
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// Get returns the values of one attribute, named by any alias ("O", "o",
// "organizationName", "2.5.4.10"), in the order written.
func (d DN) Get(attr string) []string {
	want := canonicalDNType(attr)
	var vals []string
	for _, a := range d {
		if canonicalDNType(a.Type) == want {
			vals = append(vals, a.Value)
		}
	}
	return vals
}

// String renders d in RFC 4514 syntax in the order written, escaping so that
// ParseDN reads back exactly a d that ParseDN returned. Members of a multi-valued RDN come out as
// separate RDNs, as zcrypto prints them.
func (d DN) String() string {
	var b strings.Builder
	for i, a := range d {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Type)
		b.WriteByte('=')
		if a.ber {
			b.WriteString(a.Value)
			continue
		}
		v := a.Value
		for j := 0; j < len(v); {
			r, n := utf8.DecodeRuneInString(v[j:])
			c := v[j]
			switch {
			case r == utf8.RuneError && n == 1, c < 0x20, c == 0x7f:
				fmt.Fprintf(&b, "\\%02X", c)
			case strings.IndexByte(`,+"\<>;=`, c) >= 0,
				c == '#' && j == 0,
				c == ' ' && (j == 0 || j == len(v)-1):
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteString(v[j : j+n])
			}
			j += n
		}
	}
	return b.String()
}

// SameDN reports whether a and b both parse and name the same entity.
func SameDN(a, b string) bool {
	da, err := ParseDN(a)
	if err != nil {
		return false
	}
	db, err := ParseDN(b)
	if err != nil {
		return false
	}
	return da.Key() == db.Key()
}

// parseDN parses t, a trimmed part of the user's input in, quoted in errors.
func parseDN(in, t string) (DN, error) {
	t = strings.TrimLeft(t, " \t\r\n")
	if strings.TrimSpace(t) == "" {
		return nil, fmt.Errorf("%q: empty distinguished name", in)
	}
	if t[0] == '/' {
		return parseSlashDN(in, t[1:])
	}
	return parseCommaDN(in, t)
}

// isSpaceTab reports the blanks the parsers skip around types and values;
// a line pasted from a terminal may also carry its line ending.
func isSpaceTab(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parseCommaDN reads the RFC 4514 family and OpenSSL's oneline form: both
// separate attributes with ',' ';' or '+', and oneline adds spaces around '='
// and quotes values that contain specials.
func parseCommaDN(in, s string) (DN, error) {
	var d DN
	i := 0
	for {
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ',' && s[i] != ';' && s[i] != '+' {
			i++
		}
		typ := strings.TrimSpace(s[start:i])
		if i == len(s) || s[i] != '=' {
			if typ == "" {
				return nil, fmt.Errorf("%q: empty attribute at offset %d: two separators in a row, or one at the start or end", in, start)
			}
			return nil, fmt.Errorf("%q: attribute %q has no '=' (escape a ',' '+' or ';' inside a value as \\, \\+ \\;)", in, typ)
		}
		if err := checkType(in, typ); err != nil {
			return nil, err
		}
		i++ // '='
		for i < len(s) && isSpaceTab(s[i]) {
			i++
		}
		var a DNAttr
		var err error
		switch {
		case i < len(s) && s[i] == '#':
			a, i, err = readHexValue(in, s, i)
		case i < len(s) && s[i] == '"':
			a, i, err = readQuotedValue(in, s, i)
		default:
			a, i, err = readPlainValue(in, s, i)
		}
		if err != nil {
			return nil, err
		}
		a.Type = typ
		d = append(d, a)
		if i == len(s) {
			return d, nil
		}
		i++ // the separator the reader stopped at
	}
}

// endOfValue skips spaces after a hex or quoted value and checks that a
// separator or the end follows.
func endOfValue(in, s string, i int, typ string) (int, error) {
	for i < len(s) && isSpaceTab(s[i]) {
		i++
	}
	if i < len(s) && s[i] != ',' && s[i] != ';' && s[i] != '+' {
		return i, fmt.Errorf("%q: unexpected %q after the %s value; separate attributes with ','", in, s[i], typ)
	}
	return i, nil
}

func readHexValue(in, s string, i int) (DNAttr, int, error) {
	j := i + 1
	for j < len(s) && isHex(s[j]) {
		j++
	}
	h := s[i+1 : j]
	if h == "" || len(h)%2 != 0 {
		return DNAttr{}, j, fmt.Errorf("%q: hex value %q needs an even, non-zero number of hex digits after '#' (write \\# for a literal '#')", in, s[i:j])
	}
	j, err := endOfValue(in, s, j, "hex")
	return DNAttr{Value: "#" + strings.ToLower(h), ber: true}, j, err
}

func readQuotedValue(in, s string, i int) (DNAttr, int, error) {
	var b []byte
	j := i + 1
	for {
		if j == len(s) {
			return DNAttr{}, j, fmt.Errorf("%q: quote opened at offset %d is never closed", in, i)
		}
		c := s[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			var err error
			if b, j, err = unescape(in, s, j, b); err != nil {
				return DNAttr{}, j, err
			}
			continue
		}
		b = append(b, c)
		j++
	}
	j, err := endOfValue(in, s, j+1, "quoted")
	return DNAttr{Value: string(b)}, j, err
}

func readPlainValue(in, s string, i int) (DNAttr, int, error) {
	var b []byte
	keep := 0 // length of b up to its last byte that is not an unescaped space
	for i < len(s) && s[i] != ',' && s[i] != ';' && s[i] != '+' {
		if s[i] == '\\' {
			var err error
			if b, i, err = unescape(in, s, i, b); err != nil {
				return DNAttr{}, i, err
			}
			keep = len(b)
			continue
		}
		b = append(b, s[i])
		if !isSpaceTab(s[i]) {
			keep = len(b)
		}
		i++
	}
	return DNAttr{Value: string(b[:keep])}, i, nil
}

// unescape decodes the RFC 4514 escape at s[i] == '\\' onto b: a hex pair
// is one byte (so \C3\BC is "ü"), any other character stands for itself.
func unescape(in, s string, i int, b []byte) ([]byte, int, error) {
	if i+1 == len(s) {
		return b, i, fmt.Errorf("%q: ends in a lone backslash; write \\\\ for a literal one", in)
	}
	c := s[i+1]
	if !isHex(c) {
		return append(b, c), i + 2, nil
	}
	if i+2 == len(s) || !isHex(s[i+2]) {
		end := min(i+3, len(s))
		return b, i, fmt.Errorf("%q: bad escape %q: a backslash before a hex digit needs two hex digits, like \\2C", in, s[i:end])
	}
	return append(b, unhex(c)<<4|unhex(s[i+2])), i + 3, nil
}

// parseSlashDN reads OpenSSL's compat form after its leading '/'. That form
// does not escape '/' reliably, so a '/' (or '+', between members of one
// RDN) only separates attributes when "TYPE=" follows it. Escapes are \xHH
// and a backslash before punctuation; compat leaves other backslashes bare.
func parseSlashDN(in, s string) (DN, error) {
	var d DN
	start := 0
	for i := 0; ; i++ {
		if i < len(s) && s[i] == '\\' {
			i++ // the escaped byte is never a separator
			continue
		}
		if i < len(s) && !((s[i] == '/' || s[i] == '+') && typeEqAt(s, i+1)) {
			continue
		}
		piece := s[start:min(i, len(s))]
		typ, val, ok := strings.Cut(piece, "=")
		typ = strings.TrimSpace(typ)
		if !ok {
			if strings.TrimSpace(piece) == "" {
				return nil, fmt.Errorf("%q: nothing after the leading '/'", in)
			}
			return nil, fmt.Errorf("%q: attribute %q has no '='", in, strings.TrimSpace(piece))
		}
		if err := checkType(in, typ); err != nil {
			return nil, err
		}
		v, err := unescapeSlash(in, val)
		if err != nil {
			return nil, err
		}
		d = append(d, DNAttr{Type: typ, Value: v})
		if i >= len(s) {
			return d, nil
		}
		start = i + 1
	}
}

// typeEqAt reports whether s[i:] starts with an attribute type token and '='.
// It scans only token bytes, which never include '/' or '+', so the scans
// started from successive separators do not overlap: parsing stays linear.
func typeEqAt(s string, i int) bool {
	j := i
	for j < len(s) && (isAlnum(s[j]) || s[j] == '-' || s[j] == '_' || s[j] == '.') {
		j++
	}
	if j == len(s) || s[j] != '=' {
		return false
	}
	t := s[i:j]
	return isTypeToken(t) || isOID(t) || isOIDPrefixed(t)
}

func unescapeSlash(in, v string) (string, error) {
	i := 0
	for i < len(v) && isSpaceTab(v[i]) {
		i++
	}
	b := make([]byte, 0, len(v)-i)
	keep := 0 // as in readPlainValue: drop trailing unescaped spaces
	for ; i < len(v); i++ {
		c := v[i]
		switch {
		case c != '\\':
			b = append(b, c)
			if !isSpaceTab(c) {
				keep = len(b)
			}
			continue
		case i+1 == len(v):
			return "", fmt.Errorf("%q: a value ends in a lone backslash; write \\\\ for a literal one", in)
		case v[i+1] == 'x' && i+3 < len(v) && isHex(v[i+2]) && isHex(v[i+3]):
			b = append(b, unhex(v[i+2])<<4|unhex(v[i+3]))
			i += 3
		case !isAlnum(v[i+1]):
			b = append(b, v[i+1])
			i++
		default:
			b = append(b, c) // compat prints a literal backslash bare
		}
		keep = len(b)
	}
	return string(b[:keep]), nil
}

// checkType rejects attribute types that no tool prints, which mostly
// catches a missing separator or a stray '=' in what the user typed.
func checkType(in, t string) error {
	switch {
	case t == "":
		return fmt.Errorf("%q: an attribute has an empty type before '='", in)
	case isTypeToken(t), isOID(t), isOIDPrefixed(t):
		return nil
	}
	return fmt.Errorf("%q: attribute type %q is not a name like CN or an OID like 2.5.4.3 (is a ',' missing, or an '=' not escaped?)", in, t)
}

// isTypeToken reports whether t is a name such as CN or organizationName.
// '_' is beyond RFC 4514 but appears in OpenSSL/zcrypto short names.
func isTypeToken(t string) bool {
	if t == "" || !isAlpha(t[0]) {
		return false
	}
	for i := 1; i < len(t); i++ {
		if !isAlnum(t[i]) && t[i] != '-' && t[i] != '_' {
			return false
		}
	}
	return true
}

// isOID reports whether t is a dotted OID such as 2.5.4.3.
func isOID(t string) bool {
	arcs := 0
	for arc := range strings.SplitSeq(t, ".") {
		if arc == "" {
			return false
		}
		for i := 0; i < len(arc); i++ {
			if arc[i] < '0' || arc[i] > '9' {
				return false
			}
		}
		arcs++
	}
	return arcs >= 2
}

// isOIDPrefixed accepts the "OID.2.5.4.3" spelling of Java and Windows.
func isOIDPrefixed(t string) bool {
	return len(t) > 4 && strings.EqualFold(t[:4], "oid.") && isOID(t[4:])
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || '0' <= c && c <= '9' }
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// dnTypeAliases maps every lowercase alias of a common attribute type to its
// canonical lowercase short name, so that CN, commonName and 2.5.4.3 compare
// equal. The spellings come from RFC 4519, OpenSSL and zcrypto (which prints
// OpenSSL's short names, e.g. "street", "jurisdictionLocality").
// It is built once and only read.
var dnTypeAliases = func() map[string]string {
	m := map[string]string{}
	for _, names := range [][]string{
		{"cn", "commonname", "2.5.4.3"},
		{"o", "organizationname", "2.5.4.10"},
		{"ou", "organizationalunitname", "2.5.4.11"},
		{"c", "countryname", "2.5.4.6"},
		{"l", "localityname", "2.5.4.7"},
		{"st", "s", "stateorprovincename", "2.5.4.8"},
		{"street", "streetaddress", "2.5.4.9"},
		{"serialnumber", "2.5.4.5"},
		{"postalcode", "2.5.4.17"},
		{"sn", "surname", "2.5.4.4"},
		{"gn", "givenname", "2.5.4.42"},
		{"dc", "domaincomponent", "0.9.2342.19200300.100.1.25"},
		{"uid", "userid", "0.9.2342.19200300.100.1.1"},
		{"emailaddress", "e", "email", "1.2.840.113549.1.9.1"},
		{"title", "2.5.4.12"},
		{"organizationidentifier", "2.5.4.97"},
		{"jurisdictionl", "jurisdictionlocality", "jurisdictionlocalityname", "1.3.6.1.4.1.311.60.2.1.1"},
		{"jurisdictionst", "jurisdictionstateorprovince", "jurisdictionstateorprovincename", "1.3.6.1.4.1.311.60.2.1.2"},
		{"jurisdictionc", "jurisdictioncountry", "jurisdictioncountryname", "1.3.6.1.4.1.311.60.2.1.3"},
		{"businesscategory", "2.5.4.15"},
		{"description", "2.5.4.13"},
		{"dnqualifier", "2.5.4.46"},
		{"pseudonym", "2.5.4.65"},
		{"initials", "2.5.4.43"},
		{"generationqualifier", "2.5.4.44"},
		{"name", "2.5.4.41"},
		{"x500uniqueidentifier", "2.5.4.45"},
		{"unstructuredname", "1.2.840.113549.1.9.2"},
	} {
		for _, n := range names {
			m[n] = names[0]
		}
	}
	return m
}()

// canonicalDNType maps an attribute type as written to its comparison form:
// a known alias to its short name, anything else lowercased (an OID as is).
func canonicalDNType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	if isOIDPrefixed(t) {
		t = t[4:]
	}
	if c, ok := dnTypeAliases[t]; ok {
		return c
	}
	return t
}

// keyValue renders a value for Key: "=" and the quoted folded string, or
// "#" and hex for a BER value that is not a string type. A BER string is
// decoded so that 2.5.4.45=#0c0378797a matches OpenSSL's x500UniqueIdentifier
// = xyz; zcrypto prints every attribute type it has no name for that way.
func keyValue(a DNAttr) string {
	v := a.Value
	if a.ber {
		raw, _ := hex.DecodeString(v[1:]) // ParseDN checked it
		s, ok := berString(raw)
		if !ok {
			return "#" + hex.EncodeToString(raw)
		}
		v = s
	}
	return "=" + strconv.Quote(foldDNValue(v))
}

// foldDNValue is a simplified RFC 4518 caseIgnoreMatch preparation: lower
// case, whitespace trimmed and inner runs collapsed to one space. Invalid
// UTF-8 bytes are kept as they are, so they never fold into U+FFFD.
func foldDNValue(v string) string {
	b := make([]byte, 0, len(v))
	space := false
	for i := 0; i < len(v); {
		r, n := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			if space && len(b) > 0 {
				b = append(b, ' ')
			}
			space = false
			b = append(b, v[i])
		case unicode.IsSpace(r):
			space = true
		default:
			if space && len(b) > 0 {
				b = append(b, ' ')
			}
			space = false
			b = utf8.AppendRune(b, unicode.ToLower(r))
		}
		i += n
	}
	return string(b)
}

// berString decodes a DER string-typed value (UTF8String, PrintableString,
// IA5String, ...). It reports false for anything else, which then compares
// by its bytes.
func berString(raw []byte) (string, bool) {
	if len(raw) < 2 {
		return "", false
	}
	tag, n := raw[0], int(raw[1])
	body := raw[2:]
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(body) < k {
			return "", false
		}
		n = 0
		for _, c := range body[:k] {
			n = n<<8 | int(c)
		}
		body = body[k:]
	}
	if n != len(body) {
		return "", false
	}
	switch tag {
	case 0x0c, 0x12, 0x13, 0x16, 0x1a: // UTF8, Numeric, Printable, IA5, Visible
		if !utf8.Valid(body) {
			return "", false
		}
		return string(body), true
	case 0x14: // T61String: in practice UTF-8 or Latin-1
		if utf8.Valid(body) {
			return string(body), true
		}
		rs := make([]rune, len(body))
		for i, c := range body {
			rs[i] = rune(c)
		}
		return string(rs), true
	case 0x1e: // BMPString: UTF-16BE
		if len(body)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(body)/2)
		for i := range u {
			u[i] = uint16(body[2*i])<<8 | uint16(body[2*i+1])
		}
		rs := utf16.Decode(u)
		if !slices.Equal(utf16.Encode(rs), u) {
			return "", false // a lone surrogate would decode to U+FFFD
		}
		return string(rs), true
	case 0x1c: // UniversalString: UTF-32BE
		if len(body)%4 != 0 {
			return "", false
		}
		var b strings.Builder
		for i := 0; i < len(body); i += 4 {
			r := rune(body[i])<<24 | rune(body[i+1])<<16 | rune(body[i+2])<<8 | rune(body[i+3])
			if !utf8.ValidRune(r) {
				return "", false
			}
			b.WriteRune(r)
		}
		return b.String(), true
	}
	return "", false
}
