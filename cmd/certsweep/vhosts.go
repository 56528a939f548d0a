package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

// vhostHelp is the virtual-hosts paragraph of sweep --help.
const vhostHelp = `Virtual hosts: one address often serves many certificates, chosen by the name
the client sends (SNI); a probe without the name sees only the default one. Each
source below adds names to try at every address and port that presented a
certificate, one handshake per name, at most --max-names-per-address names there
(in this order; the rest are counted as capped), paced by --rate:
   --inventory-names  names earlier sweeps saw there (on whenever another
                      source is on; --inventory-names alone turns it on)
   --names-file FILE  lines NAME (tried at every address) or ADDRESS NAME /
                      CIDR NAME (tried there only)
   --ptr              the address's reverse DNS names (--dns-server to choose
                      the server)
   --follow-names     the DNS names of each certificate found there (SANs, or
                      the CN without SANs; wildcards skipped), to a depth of 2
A name is kept when its certificate differs from the default one or covers the
name. --all-keys (and --posture) probes each endpoint once more offering only
the other key family (RSA or ECDSA) and keeps a certificate that differs: a
server holding both shows a client only one (TLS 1.0-1.2: zcrypto's client
cannot narrow TLS 1.3's signature algorithms).`

// vhostFlags are sweep's flags for virtual hosts and dual certificates.
func vhostFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "names-file", Usage: "try the server names in `FILE` as SNI: lines NAME, ADDRESS NAME or CIDR NAME, # comments"},
		&cli.BoolFlag{Name: "follow-names", Usage: "try the DNS names of the certificates an address presents as SNI there, to a depth of 2"},
		&cli.BoolFlag{Name: "ptr", Usage: "try each address's reverse DNS names as SNI"},
		&cli.BoolFlag{Name: "inventory-names", Usage: "try the names earlier sweeps saw at each address and port (default: on with --names-file, --follow-names or --ptr)"},
		&cli.IntFlag{Name: "max-names-per-address", Value: scanner.DefaultMaxNames, Usage: "names tried at one address and port, all sources together"},
		&cli.BoolFlag{Name: "all-keys", Usage: "probe each endpoint once more offering only the other key family (RSA or ECDSA), to find a second certificate (always on with --posture)"},
		&cli.StringFlag{Name: "dns-server", Usage: "resolve hostnames and reverse DNS with the server at `HOST:PORT` (default: the system's resolver)"},
	}
}

// vhostSettings are the virtual-host options of one sweep, as given.
type vhostSettings struct {
	namesFile                       string // absolute, so --resume finds it from anywhere
	names                           *scanner.NameList
	follow, ptr, inventory, allKeys bool
	maxNames                        int
	dnsServer                       string
}

// vhostSettingsFrom reads the virtual-host flags.
func vhostSettingsFrom(c *cli.Context) (vhostSettings, error) {
	v := vhostSettings{
		follow: c.Bool("follow-names"), ptr: c.Bool("ptr"), allKeys: c.Bool("all-keys") || c.Bool("posture"),
		maxNames: c.Int("max-names-per-address"), dnsServer: c.String("dns-server"),
	}
	if f := c.String("names-file"); f != "" {
		abs, err := filepath.Abs(f)
		if err != nil {
			return v, usageError(fmt.Errorf("--names-file %s: %w", f, err), "")
		}
		v.namesFile = abs
	}
	v.inventory = c.Bool("inventory-names")
	if !c.IsSet("inventory-names") {
		v.inventory = v.namesFile != "" || v.follow || v.ptr
	}
	if v.maxNames < 1 || v.maxNames > 10000 {
		return v, usagef("--max-names-per-address %d: must be 1-10000", v.maxNames)
	}
	if c.String("sni") != "" && v.triesNames() {
		return v, usagef("--sni sends one name to every target; it cannot be combined with --names-file, --follow-names, --ptr or --inventory-names")
	}
	return v, v.check()
}

// vhostResume rebuilds a sweep's virtual-host settings from its options;
// --dns-server may change (a resumed sweep may run elsewhere).
func vhostResume(c *cli.Context, opts map[string]any) (vhostSettings, error) {
	var v vhostSettings
	v.namesFile, _ = opts["names_file"].(string)
	v.follow, _ = opts["follow_names"].(bool)
	v.ptr, _ = opts["ptr"].(bool)
	v.inventory, _ = opts["inventory_names"].(bool)
	v.allKeys, _ = opts["all_keys"].(bool)
	v.maxNames = scanner.DefaultMaxNames
	if n, ok := opts["max_names_per_address"].(float64); ok {
		v.maxNames = int(n)
	}
	v.dnsServer, _ = opts["dns_server"].(string)
	if c.IsSet("dns-server") {
		v.dnsServer = c.String("dns-server")
	}
	return v, v.check()
}

// check reads the names file and checks the DNS server.
func (v *vhostSettings) check() error {
	if v.dnsServer != "" {
		if _, _, err := net.SplitHostPort(v.dnsServer); err != nil {
			return usagef("--dns-server %q: want HOST:PORT, e.g. 10.0.0.53:53", v.dnsServer)
		}
	}
	if v.namesFile == "" {
		return nil
	}
	f, err := os.Open(v.namesFile)
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return usageError(fmt.Errorf("cannot read names file %s: %w", v.namesFile, err), "check the path given to --names-file")
	}
	defer f.Close()
	if v.names, err = scanner.ParseNamesFile(f); err != nil {
		return usageError(fmt.Errorf("names file %s: %w", v.namesFile, err), "")
	}
	return nil
}

func (v vhostSettings) triesNames() bool {
	return v.namesFile != "" || v.follow || v.ptr || v.inventory
}

// options are what the sweep row records, for --resume.
func (v vhostSettings) options() map[string]any {
	return map[string]any{"names_file": v.namesFile, "follow_names": v.follow, "ptr": v.ptr,
		"inventory_names": v.inventory, "all_keys": v.allKeys, "max_names_per_address": v.maxNames,
		"dns_server": v.dnsServer}
}

// resolver is the DNS resolver the sweep uses for hostnames and PTRs.
func (v vhostSettings) resolver() *net.Resolver {
	if v.dnsServer == "" {
		return net.DefaultResolver
	}
	server := v.dnsServer
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// build returns the scanner's Vhosts for sweep id, nil when nothing is on.
func (v vhostSettings) build(db *store.DB, id int64, site string) *scanner.Vhosts {
	if !v.triesNames() && !v.allKeys {
		return nil
	}
	x := &scanner.Vhosts{Names: v.names, Follow: v.follow, MaxNames: v.maxNames, AllKeys: v.allKeys}
	if v.ptr {
		x.PTR = v.resolver()
	}
	if v.inventory {
		x.Inventory = func(ctx context.Context, ap netip.AddrPort) ([]string, error) {
			return db.NamesAt(ctx, site, ap.Addr().String(), int(ap.Port()), id)
		}
	}
	return x
}

// vhostTally counts the extra probes of a sweep run, for its summary.
type vhostTally struct {
	mu                    sync.Mutex
	tried, found          map[scanner.NameSource]int
	keyProbes, keyFound   int
	cappedAt, cappedNames int
}

func (t *vhostTally) record(r scanner.Result) {
	x := r.Expansion
	if x == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tried == nil {
		t.tried, t.found = make(map[scanner.NameSource]int), make(map[scanner.NameSource]int)
	}
	for src, n := range x.Tried {
		t.tried[src] += n
	}
	for _, f := range x.Found {
		if f.Offer != scanner.FamilyAny {
			t.keyFound++
		} else {
			t.found[f.Source]++
		}
	}
	t.keyProbes += x.KeyProbes
	if x.Capped > 0 {
		t.cappedAt++
		t.cappedNames += x.Capped
	}
}

// print writes the summary lines, if any extra probe was made.
func (t *vhostTally) print(w io.Writer, probes int64, maxNames int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tried == nil {
		return
	}
	parts := []string{fmt.Sprintf("address %d", probes)}
	for _, src := range scanner.NameSources[1:] {
		if n := t.tried[src]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%d found)", src, n, t.found[src]))
		}
	}
	if t.keyProbes > 0 {
		parts = append(parts, fmt.Sprintf("other key family %d (%d found)", t.keyProbes, t.keyFound))
	}
	fmt.Fprintf(w, "  probes by source: %s\n", strings.Join(parts, ", "))
	if t.cappedAt > 0 {
		fmt.Fprintf(w, "  names cap (--max-names-per-address %d) reached at %d endpoints: %d names not tried\n", maxNames, t.cappedAt, t.cappedNames)
	}
}

// mergeOptions adds more's entries to opts and returns it.
func mergeOptions(opts, more map[string]any) map[string]any {
	maps.Copy(opts, more)
	return opts
}
