package main

import (
	"io"
	"slices"
	"testing"
)

func TestNormalizeArgs(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	tests := []struct{ in, want []string }{
		{[]string{"track", "add", "3f2a9c", "--owner", "web", "--note", "www lb"},
			[]string{"track", "add", "--owner", "web", "--note", "www lb", "3f2a9c"}},
		{[]string{"track", "issuer", "CN=Corp CA", "--owner=pki"},
			[]string{"track", "issuer", "--owner=pki", "CN=Corp CA"}},
		// A bool flag takes no value: the target after it stays a target.
		{[]string{"sweep", "10.0.0.0/24", "--quiet", "10.0.1.0/24", "-p", "443"},
			[]string{"sweep", "--quiet", "-p", "443", "10.0.0.0/24", "10.0.1.0/24"}},
		// "-" is stdin, not a flag; "--" ends flags.
		{[]string{"track", "import", "-", "--replace"}, []string{"track", "import", "--replace", "-"}},
		{[]string{"show", "--", "--db"}, []string{"show", "--", "--db"}},
		// An unknown flag moves too, so urfave/cli names it.
		{[]string{"certs", "--frob", "x"}, []string{"certs", "--frob", "x"}},
		{[]string{"--version"}, []string{"--version"}},
		// A command name after a positional argument is an argument.
		{[]string{"show", "sweep"}, []string{"show", "sweep"}},
	}
	for _, tc := range tests {
		got := normalizeArgs(app, append([]string{"certsweep"}, tc.in...))
		if !slices.Equal(got[1:], tc.want) {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tc.in, got[1:], tc.want)
		}
	}
}
