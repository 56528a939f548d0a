package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certsweep/certsweep/scanner"
)

// TestDiscoveryModesStoreTheSameRows sweeps one lab (valid, hostile and
// stalling peers, closed addresses) with SYN and with connect discovery:
// both databases must hold the same endpoints, outcomes and certificates.
func TestDiscoveryModesStoreTheSameRows(t *testing.T) {
	if err := scanner.CheckSYN(); err != nil {
		t.Skipf("SYN discovery unavailable here: %v", err)
	}
	ctx := context.Background()
	lab := newLab(t, 30)
	rows := map[string][]string{}
	for _, mode := range []string{"syn", "connect"} {
		db := filepath.Join(t.TempDir(), mode+".db")
		stdout, stderr, code := run(t, ctx, "sweep", "--db", db, "--discovery", mode, "--rate", "2000", "--timeout", "2s",
			"--ports", fmt.Sprint(lab.Port), lab.Prefix.String())
		if code != 0 {
			t.Fatalf("%s sweep exit %d:\n%s%s", mode, code, stdout, stderr)
		}
		if want := "certsweep: " + map[string]string{"syn": "SYN", "connect": "connect"}[mode] + " discovery: "; !strings.Contains(stderr, want) {
			t.Errorf("%s sweep does not say which discovery it used (%q):\n%s", mode, want, stderr)
		}
		out, _, _ := run(t, ctx, "endpoints", "--db", db, "--format", "json")
		for _, r := range jsonLines(t, out) {
			rows[mode] = append(rows[mode], fmt.Sprint(r["ip"], r["port"], r["outcome"], r["protocol"], r["sha256"]))
		}
		out, _, _ = run(t, ctx, "sweeps", "--db", db, "--format", "json")
		s := jsonLines(t, out)
		if len(s) != 1 || s[0]["probes_done"] != float64(256) || s[0]["refused"] != float64(256-len(lab.Endpoints)) {
			t.Errorf("%s sweep statistics: %v", mode, s)
		}
	}
	if len(rows["syn"]) != len(lab.Endpoints) || !slices.Equal(rows["syn"], rows["connect"]) {
		t.Errorf("the two discovery modes stored different endpoints:\nsyn:     %v\nconnect: %v", rows["syn"], rows["connect"])
	}
}
