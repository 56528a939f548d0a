package report

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Terminal makes untrusted text safe to print on a terminal: control
// characters (ANSI escape sequences start with ESC), invalid UTF-8 and
// bidirectional overrides, which can make text display as something else,
// are shown as Go-style escapes (\x1b, \u202e) instead of being interpreted.
// A backslash is left alone: distinguished names already use it for their
// own escapes (CN=Acme\, Inc), and doubling it made every subject in a
// table differ from the same subject in JSON. Inertness does not need it.
func Terminal(s string) string { return escape(s, "") }

// cellText is Terminal for a CSV cell: newlines and tabs stay (RFC 4180
// quotes them), every other control character is escaped, so that a CSV
// printed to a terminal is as inert as a table.
func cellText(s string) string { return escape(s, "\n\t") }

func escape(s, keep string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case (r == '\n' || r == '\t') && strings.ContainsRune(keep, r):
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case isBidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}
