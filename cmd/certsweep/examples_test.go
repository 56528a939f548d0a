//go:build unix

package main

// Every example is a test. TestDocExamples runs each command line that the
// documentation shows (README.md's ```sh blocks, and the "Examples:" of the
// app's and every command's --help) as a real shell command against a
// loopback lab, so a documented example that stops working fails
// `make test`.
//
// How it works:
//
//   - Collection. README.md: every logical line (trailing `\` joined,
//     trailing `# comment` dropped) of a ```sh block that runs certsweep,
//     also inside a pipeline (`grep ... | certsweep ...`). A ```sh block that
//     starts with `#!` is a script (the weekly cron recipe) and runs whole,
//     in TestDocExamples/script. Any other line of a ```sh block must be
//     listed in docNotExamples with the reason it is not run, and a
//     certsweep line in a fence of another language is an error: nothing in
//     the README is dropped silently. --help: the indented lines after
//     "Examples:" in the Description of the app and of every command and
//     subcommand, read in-process from newApp. An example documented in
//     several places runs once; its subtest names every place.
//
//   - The world. Built once per run: a scannertest lab (20 endpoints on a
//     random 127.x.y.0/24, one port), a few more TLS listeners (the lab
//     hosts .1-.3 on one of certsweep's default ports, so that examples
//     without --ports reach something; localhost; [::1]), and a database
//     with two complete sweeps of the lab named "weekly" (one endpoint
//     disappears and one appears between them, so diff has something to
//     say), an interrupted one, a tracked certificate and an issuer rule.
//     Next to it are the files the examples name (owners.csv, hosts.txt,
//     inventory.txt, do-not-scan.txt, names.txt, corp-roots.pem, lab-ca.pem),
//     and the databases that merge examples import: shard-0.db to
//     shard-3.db (the 4 shards of a sweep of the lab, --site dc1) and
//     frankfurt.db and dallas.db (a sweep of the lab at each site).
//
//   - Each example runs in its own copy of that directory (so examples that
//     write, such as `track rm` or `> owners.csv`, cannot affect each other,
//     and the order does not matter), after the substitutions of
//     docSubstitutions, with CERTSWEEP_DB pointing at the copy's database,
//     as `bash -o pipefail -O failglob -c TEXT`. failglob makes an unquoted
//     glob that matches nothing an error, as zsh (the macOS default shell)
//     does, where bash would pass it on: `[2001:db8::10]:8443` unquoted is
//     such a glob. The `certsweep` on PATH is a wrapper that re-executes
//     this test binary with CERTSWEEP_TEST_RUN_MAIN=1 (see TestMain); `mail`
//     is a stub that records its arguments.
//
//   - Expectations: exit 0 (3 is also accepted when the line has --fail-on);
//     a file written with `> FILE` or `-o FILE` exists and is not empty; a
//     new sweep completed with at least one handshake (so a substitution
//     that misses the lab is caught, not a silently empty sweep); a
//     resumed sweep is complete.
//
// Run it alone: go test -run TestDocExamples -v ./cmd/certsweep

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/scanner/scannertest"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

// docSubst maps one value that the documentation uses to a value of the
// lab. A value is replaced wherever it occurs with no letter or digit
// touching it on either side; longer values are replaced first.
type docSubst struct {
	doc string
	lab func(e *exEnv) string
	why string
}

// docSubstitutions is the table from documentation values to lab values.
// Besides these rows, `--ports LIST` (or -p) becomes `--ports LIST,<lab
// port>`: the documented ports stay (they are refused on loopback) and the
// lab is reached too. Kept as documented: www.example.com (only sent as
// SNI, never resolved), pki@corp.example (the recipient of the mail stub),
// relative file names (they exist in the example's directory), and `mail`
// (a stub on PATH). A documentation value that no row maps is reported by
// docUnmapped, and the example fails without running.
var docSubstitutions = []docSubst{
	// Networks. The lab endpoints sit on .1-.20 of the lab's /24.
	{"10.20.0.0/16", func(e *exEnv) string { return exSub(e.net.lab, 26, 0) },
		"the first /26 of the lab's /24: every lab endpoint, 64 addresses (a /24 would make the --rate 200 example take 16 s)"},
	{"10.20.5.0/24", func(e *exEnv) string { return exSub(e.net.lab, 28, 16) },
		"a /28 inside it (.16-.31), so the exclusion removes some endpoints, as 10.20.5.0/24 lies inside 10.20.0.0/16"},
	{"10.30.0.0/20", func(e *exEnv) string { return exSub(e.net.empty, 28, 0) },
		"a /28 of another loopback /24 where nothing listens: a second range, disjoint from the first"},
	{"192.0.2.0/28", func(e *exEnv) string { return exSub(e.net.lab, 28, 0) },
		"the lab's first /28 (.0-.15)"},
	{"10.0.0.5-10.0.0.90", func(e *exEnv) string { return exHost(e.net.lab, 5).String() + "-" + exHost(e.net.lab, 90).String() },
		"the same span of the lab's /24 (.5-.90)"},
	{"[2001:db8::10]:8443", func(e *exEnv) string { return fmt.Sprintf("[::1]:%d", e.w.v6Port) },
		"a TLS listener on [::1] (the example is skipped where there is no IPv6 loopback)"},
	{"--port 636", func(e *exEnv) string { return fmt.Sprint("--port ", e.net.port) },
		"the lab port, so that the documented rule selects lab endpoints"},
	{"ldap.corp.example:636", func(e *exEnv) string { return fmt.Sprintf("localhost:%d", e.w.localPort) },
		"localhost, at a TLS listener on 127.0.0.1 (on the lab port when it is free there)"},
	// Certificates.
	{"3f2a9c0d...", func(e *exEnv) string { return e.leafFP },
		"the full fingerprint of the lab's first (valid) leaf, tracked in the fixture"},
	{"3f2a9c...", func(e *exEnv) string { return e.leafFP }, "the same"},
	{"3f2a9c", func(e *exEnv) string { return e.leafPrefix },
		"a unique prefix (6+ digits) of that leaf's fingerprint (in a walkthrough that uses its own database: of a leaf in that database)"},
	{"9d41e0", func(e *exEnv) string { return e.w.caPrefix },
		"a unique prefix of the lab's intermediate CA's fingerprint"},
	// The documented issuer DN, attribute by attribute, so that its spelling
	// (",O=" in --help, ", O=" in README.md) stays as documented. The
	// fixture has an issuer rule for the lab intermediate, spelt as
	// certsweep prints it.
	{"CN=Corp Issuing CA 2", func(e *exEnv) string { return "CN=" + e.w.issuerCN },
		"the common name of the lab's intermediate CA"},
	{"O=Corp", func(e *exEnv) string { return "O=" + e.w.issuerO }, "its organization"},
	{"shop.corp.example", func(*exEnv) string { return "lab.test" },
		"the DNS domain of the lab's certificates (host-N.lab.test)"},
	{"--rule 3", func(e *exEnv) string { return fmt.Sprint("--rule ", e.w.ruleID) },
		"an owner rule of the fixture (--cidr <the lab /26> --port <lab port>)"},
	{"127.78.0.0/24", func(e *exEnv) string { return exEmptySubnet(e.net.lab).String() },
		"a random loopback /24: a fixed one collides between parallel test runs"},
	// Sweep IDs. The fixture's sweeps are 1 and 2 (complete) and 3 (interrupted).
	{"--sweep 3", func(e *exEnv) string { return fmt.Sprint("--sweep ", e.w.first) }, "the first complete sweep"},
	{"--sweep 12", func(e *exEnv) string { return fmt.Sprint("--sweep ", e.w.second) }, "the latest complete sweep"},
	{"--from 11", func(e *exEnv) string { return fmt.Sprint("--from ", e.w.first) }, "the first complete sweep"},
	{"--to 12", func(e *exEnv) string { return fmt.Sprint("--to ", e.w.second) }, "the latest complete sweep"},
	{"--resume 12", func(e *exEnv) string { return fmt.Sprint("--resume ", e.w.interrupted) }, "the interrupted sweep"},
	// Durations and paths.
	{"--serve 10m", func(*exEnv) string { return "--serve 1s" }, "the lab stays up 1 s, not 10 minutes"},
	{"/var/lib/certsweep", func(e *exEnv) string { return e.varLib },
		"<example dir>/var/lib/certsweep, which holds a copy of the fixture database as certs.db"},
	{"/etc/pki/corp-roots.pem", func(e *exEnv) string { return filepath.Join(e.dir, "corp-roots.pem") },
		"<example dir>/corp-roots.pem: the lab root"},
	{"/tmp/lab.db", func(e *exEnv) string { return filepath.Join(e.dir, "lab.db") }, "<example dir>/lab.db"},
	{"/var/lib/node_exporter/textfile_collector", func(e *exEnv) string { return e.dir },
		"<example dir>, standing for node_exporter's textfile directory"},
	{"--listen :9793", func(*exEnv) string { return "--listen 127.0.0.1:0" },
		"a free loopback port: the documented address listens on every interface, and tests stay on loopback"},
}

// docSkips lists documented examples that the harness does not run, by
// their text (as collected: comment dropped), with the reason. Each must
// still be documented: a stale entry fails the test.
var docSkips = map[string]string{}

// docNotExamples are lines of README ```sh blocks that do not run
// certsweep, with the reason they are not run here. Each must still be in
// the README.
var docNotExamples = map[string]string{
	"make demo":  "builds bin/certsweep and runs `certsweep demo`, which runs here as its own example; make inside make test would recurse",
	"make test":  "the test suite itself",
	"make build": "go test has compiled the same package already",
	"CGO_ENABLED=1 go install github.com/certsweep/certsweep/cmd/certsweep@latest": "fetches the published module over the network; tests stay on loopback",
}

const (
	readmePath       = "../../README.md"
	exExampleTimeout = 2 * time.Minute
	exLabSize        = 20
)

// docExample is one documented command line and every place it is shown.
type docExample struct {
	text    string
	sources []string
}

// docScript is a whole documented script (a ```sh block starting with #!).
type docScript struct {
	text   string
	source string
}

// docWalkthrough is a README ```sh block whose lines use a database that
// the block itself creates (the demo's): its lines run in order, in one
// directory.
type docWalkthrough struct {
	steps  []docExample
	source string
}

// exFixtureDBs are the --db values the fixture provides (after
// substitution, relative to the example's directory).
var exFixtureDBs = []string{"certsweep.db", "certs.db", "/var/lib/certsweep/certs.db", "/tmp/lab.db",
	"shard-0.db", "shard-1.db", "shard-2.db", "shard-3.db", "frankfurt.db", "dallas.db"}

var exScriptVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}`)

var exPortList = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

var exDBFlag = regexp.MustCompile(`--db[ =]["']?([^\s"']+)`)

// docLine is a README line that does not run certsweep.
type docLine struct {
	text   string
	source string
}

func TestDocExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every documented example against a loopback lab (about a minute)")
	}
	for _, tool := range []string{"bash", "jq", "openssl", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the documented examples need %s, which is not on PATH (apt-get install %s)", tool, tool)
		}
	}
	start := time.Now()

	examples, walks, scripts, others, problems := collectDocExamples(t)
	for _, p := range problems {
		t.Error(p)
	}
	documented := map[string]bool{}
	for _, ex := range examples {
		documented[ex.text] = true
	}
	for _, wk := range walks {
		for _, ex := range wk.steps {
			documented[ex.text] = true
		}
	}
	for text := range docSkips {
		if !documented[text] {
			t.Errorf("docSkips lists %q, which is no longer documented: remove the entry", text)
		}
	}
	seenOther := map[string]bool{}
	for _, l := range others {
		seenOther[l.text] = true
		if _, ok := docNotExamples[l.text]; !ok {
			t.Errorf("%s: %q in a ```sh block runs no certsweep command and is not in docNotExamples: make it a certsweep example or list it with the reason it is not run", l.source, l.text)
		}
	}
	for text := range docNotExamples {
		if !seenOther[text] {
			t.Errorf("docNotExamples lists %q, which is no longer in the README: remove the entry", text)
		}
	}
	if len(examples) == 0 {
		t.Fatal("found no documented examples: is the parser out of step with README.md and the --help texts?")
	}

	w := newExWorld(t)
	t.Logf("world ready in %s: lab %s port %d; extra listeners: default port %d on .1-.3, localhost:%d, [::1]:%d; sweeps %d, %d complete, %d interrupted",
		time.Since(start).Round(time.Millisecond), w.lab.Prefix, w.lab.Port, w.defaultPort, w.localPort, w.v6Port, w.first, w.second, w.interrupted)

	var mu sync.Mutex
	took := map[string]time.Duration{}
	t.Run("example", func(t *testing.T) {
		for _, ex := range examples {
			t.Run(ex.text, func(t *testing.T) {
				t.Parallel()
				d := w.runExample(t, ex)
				mu.Lock()
				took[ex.text] = d
				mu.Unlock()
			})
		}
	})
	t.Run("walkthrough", func(t *testing.T) {
		if len(walks) == 0 {
			t.Skip("README.md has no walkthrough block (one whose lines use a database the block creates)")
		}
		for _, wk := range walks {
			t.Run(wk.source, func(t *testing.T) {
				t.Parallel()
				w.runWalkthrough(t, wk)
			})
		}
	})
	t.Run("script", func(t *testing.T) {
		if len(scripts) == 0 {
			t.Skip("README.md has no ```sh block that starts with #!")
		}
		for _, s := range scripts {
			w.runScript(t, s)
		}
	})

	keys := make([]string, 0, len(took))
	for k := range took {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return took[keys[i]] > took[keys[j]] })
	var b strings.Builder
	for _, k := range keys[:min(8, len(keys))] {
		fmt.Fprintf(&b, "\n  %6.1fs  %s", took[k].Seconds(), k)
	}
	t.Logf("%d examples, %d walkthrough(s) and %d script(s) in %s; slowest examples:%s", len(examples), len(walks), len(scripts), time.Since(start).Round(100*time.Millisecond), b.String())
}

// ---- collection ----

// collectDocExamples gathers the examples of README.md and of every --help.
// problems are errors in the documentation's form (reported by the caller).
func collectDocExamples(t *testing.T) (examples []docExample, walks []docWalkthrough, scripts []docScript, others []docLine, problems []string) {
	t.Helper()
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatalf("read %s: %v", readmePath, err)
	}
	index := map[string]int{}
	add := func(text, source string) {
		if i, ok := index[text]; ok {
			examples[i].sources = append(examples[i].sources, source)
			return
		}
		index[text] = len(examples)
		examples = append(examples, docExample{text: text, sources: []string{source}})
	}

	// README.md
	lines := strings.Split(string(readme), "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		lang := strings.TrimSpace(strings.TrimPrefix(fence, "```"))
		first := i + 1
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
			body = append(body, lines[i])
		}
		switch lang {
		case "sh", "bash", "shell", "console":
		case "ini", "systemd":
			for j, l := range body {
				cmd, ok := strings.CutPrefix(strings.TrimSpace(l), "ExecStart=")
				if !ok {
					continue
				}
				cmd = strings.TrimLeft(cmd, "-@:+!")
				f := strings.Fields(cmd)
				switch {
				case len(f) > 0 && filepath.Base(f[0]) == "certsweep":
					add("certsweep"+strings.TrimPrefix(cmd, f[0]), fmt.Sprintf("README.md:%d (ExecStart)", first+j+1))
				case len(f) == 1 && strings.Contains(string(readme), "saved as `"+f[0]+"`") && strings.Contains(string(readme), "```sh\n#!/bin/sh"):
					// The unit runs the README's script (saved at that path),
					// which runs as a whole in the cron-script subtest.
				default:
					problems = append(problems, fmt.Sprintf("README.md:%d: ExecStart=%s runs no certsweep command: the harness cannot test it (teach examples_test.go how)", first+j+1, cmd))
				}
			}
			continue
		default:
			for j, l := range body {
				if strings.HasPrefix(strings.TrimSpace(l), "certsweep ") {
					problems = append(problems, fmt.Sprintf("README.md:%d: %q is in a ```%s block, which is not run: mark the block ```sh", first+j+1, strings.TrimSpace(l), lang))
				}
			}
			continue
		}
		if len(body) > 0 && strings.HasPrefix(body[0], "#!") {
			scripts = append(scripts, docScript{text: strings.Join(body, "\n") + "\n", source: fmt.Sprintf("README.md:%d", first+1)})
			continue
		}
		var block []docExample
		walk := false
		for j := 0; j < len(body); j++ {
			lineNo := first + j + 1
			l := body[j]
			for strings.HasSuffix(strings.TrimRight(l, " \t"), `\`) && j+1 < len(body) {
				l = strings.TrimSuffix(strings.TrimRight(l, " \t"), `\`) + " " + strings.TrimSpace(body[j+1])
				j++
			}
			l = docStripComment(l)
			if l == "" {
				continue
			}
			if docRunsCertsweep(l) {
				block = append(block, docExample{text: l, sources: []string{fmt.Sprintf("README.md:%d", lineNo)}})
				for _, m := range exDBFlag.FindAllStringSubmatch(l, -1) {
					walk = walk || !slices.Contains(exFixtureDBs, m[1])
				}
			} else {
				others = append(others, docLine{text: l, source: fmt.Sprintf("README.md:%d", lineNo)})
			}
		}
		if walk {
			walks = append(walks, docWalkthrough{steps: block, source: fmt.Sprintf("README.md:%d", first)})
			continue
		}
		for _, ex := range block {
			add(ex.text, ex.sources[0])
		}
	}

	// --help
	app := newApp(io.Discard, io.Discard)
	helpExamples := func(source, desc string) {
		ls := strings.Split(desc, "\n")
		for i := 0; i < len(ls); i++ {
			if strings.TrimSpace(ls[i]) != "Examples:" {
				continue
			}
			for i++; i < len(ls) && strings.TrimSpace(ls[i]) != "" && (ls[i][0] == ' ' || ls[i][0] == '\t'); i++ {
				l := ls[i]
				for strings.HasSuffix(strings.TrimRight(l, " \t"), `\`) && i+1 < len(ls) {
					i++
					l = strings.TrimSuffix(strings.TrimRight(l, " \t"), `\`) + " " + strings.TrimSpace(ls[i])
				}
				l = docStripComment(l)
				if l == "" {
					continue
				}
				if !docRunsCertsweep(l) {
					problems = append(problems, fmt.Sprintf("%s: example %q runs no certsweep command", source, l))
					continue
				}
				add(l, source)
			}
		}
	}
	helpExamples("certsweep --help", app.Description)
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := prefix + " " + c.Name
			if !strings.Contains(c.Description, "Examples:") && !c.Hidden {
				t.Logf("%s --help has no Examples:", name)
			}
			helpExamples(name+" --help", c.Description)
			walk(name, c.Subcommands)
		}
	}
	walk("certsweep", app.Commands)
	return examples, walks, scripts, others, problems
}

// docStripComment drops a trailing shell comment: a # that starts a word
// outside quotes.
func docStripComment(s string) string {
	var quote rune
	escaped := false
	for i, r := range s {
		switch {
		case escaped:
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			}
		case r == '\\':
			escaped = true
		case quote == '"':
			if r == '"' {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimSpace(s)
}

// docRunsCertsweep reports whether a shell line runs certsweep: as the
// first word of any command of a list or pipeline.
func docRunsCertsweep(s string) bool {
	var quote rune
	start := 0
	var segments []string
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case strings.ContainsRune("|&;()", r):
			segments = append(segments, s[start:i])
			start = i + 1
		}
	}
	segments = append(segments, s[start:])
	for _, seg := range segments {
		for _, f := range strings.Fields(seg) {
			if f == "!" || (strings.Contains(f, "=") && !strings.HasPrefix(f, "-")) {
				continue // negation, VAR=value
			}
			if f == "certsweep" {
				return true
			}
			break
		}
	}
	return false
}

// ---- substitution ----

// exNet is the network an example is pointed at.
type exNet struct {
	lab   netip.Prefix // a /24 whose first hosts are TLS endpoints on port
	port  uint16
	empty netip.Prefix // a loopback /24 where nothing listens
}

// exEnv is what the substitutions of one run draw on.
type exEnv struct {
	w      *exWorld
	net    exNet
	dir    string // the example's working directory
	varLib string // stands for /var/lib/certsweep

	leafFP, leafPrefix string // what 3f2a9c stands for
}

var (
	exPortsFlag  = regexp.MustCompile(`(^|\s)(--ports|-p)(\s+|=)(['"]?)([0-9][0-9a-z/,-]*)`)
	exDotted     = regexp.MustCompile(`[0-9.]+`)
	exDocName    = regexp.MustCompile(`[A-Za-z0-9][A-Za-z0-9@._-]*\.example(\.[A-Za-z]+)?\b`)
	exAbsPath    = regexp.MustCompile(`(?:^|[\s="'<>])(/[A-Za-z][^\s"'|;&)<>]*)`)
	exSweepIDArg = regexp.MustCompile(`--(sweep|from|to|resume)[ =]([0-9]+)\b`)
	exRuleIDArg  = regexp.MustCompile(`--rule[ =]([0-9]+)\b`)
	exKeptNames  = []string{"www.example.com", "pki@corp.example"}
)

// substitute applies docSubstitutions and the --ports rule to text.
func (e *exEnv) substitute(text string) string {
	rows := slices.Clone(docSubstitutions)
	sort.SliceStable(rows, func(i, j int) bool { return len(rows[i].doc) > len(rows[j].doc) })
	for _, r := range rows {
		text = exReplaceValue(text, r.doc, r.lab(e))
	}
	return exPortsFlag.ReplaceAllString(text, fmt.Sprintf("${1}${2}${3}${4}${5},%d", e.net.port))
}

// exReplaceValue replaces each occurrence of doc in s that no letter or
// digit touches.
func exReplaceValue(s, doc, lab string) string {
	alnum := func(b byte) bool {
		return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	var b strings.Builder
	for {
		i := strings.Index(s, doc)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(doc)
		if (i > 0 && alnum(s[i-1]) && alnum(doc[0])) || (j < len(s) && alnum(s[j]) && alnum(doc[len(doc)-1])) {
			b.WriteString(s[:j])
		} else {
			b.WriteString(s[:i])
			b.WriteString(lab)
		}
		s = s[j:]
	}
}

// docUnmapped lists documentation values left in a substituted text:
// addresses off loopback, documentation names, absolute paths outside the
// example's directory, and sweep IDs the fixture does not have.
func (e *exEnv) docUnmapped(text string) []string {
	var bad []string
	for _, m := range exDotted.FindAllString(text, -1) {
		if a, err := netip.ParseAddr(m); err == nil && !a.IsLoopback() {
			bad = append(bad, m)
		}
	}
	if strings.Contains(text, "2001:db8") {
		bad = append(bad, "2001:db8::/32")
	}
	for _, n := range exDocName.FindAllString(text, -1) {
		if !slices.Contains(exKeptNames, n) {
			bad = append(bad, n)
		}
	}
	for _, m := range exAbsPath.FindAllStringSubmatch(text, -1) {
		p := m[1]
		if !strings.HasPrefix(p, e.dir) && !strings.HasPrefix(p, e.varLib) && !slices.Contains([]string{"/dev/null", "/bin/sh", "/usr/bin/env"}, p) {
			bad = append(bad, p)
		}
	}
	for _, m := range exSweepIDArg.FindAllStringSubmatch(text, -1) {
		id, _ := strconv.ParseInt(m[2], 10, 64)
		if id != e.w.first && id != e.w.second && id != e.w.interrupted {
			bad = append(bad, m[0]+" (not a sweep of the fixture)")
		}
	}
	for _, m := range exRuleIDArg.FindAllStringSubmatch(text, -1) {
		if m[1] != fmt.Sprint(e.w.ruleID) {
			bad = append(bad, m[0]+" (not a rule of the fixture)")
		}
	}
	return bad
}

// exSub returns the subnet of p with the given prefix length that starts at
// host offset off, e.g. exSub(127.1.2.0/24, 28, 16) = 127.1.2.16/28.
func exSub(p netip.Prefix, bits, off int) string {
	return netip.PrefixFrom(exHost(p, off), bits).String()
}

func exHost(p netip.Prefix, off int) netip.Addr {
	a := p.Masked().Addr().As4()
	a[3] += byte(off)
	return netip.AddrFrom4(a)
}

// ---- the world ----

type exWorld struct {
	root        string // holds one directory per run (t.TempDir of a subtest may hold shell metacharacters)
	tmpl        string // the template directory copied for each example
	bin         string // the certsweep wrapper and the mail stub
	lab         *scannertest.Lab
	net         exNet
	defaultPort int // a default port on which lab hosts .1-.3 also answer (0: none free)
	localPort   int // TLS on 127.0.0.1, reached as localhost
	v6Port      int // TLS on [::1] (0: no IPv6 loopback)

	first, second, interrupted int64
	leafFP, leafPrefix         string
	caPrefix, issuerDN         string
	issuerCN, issuerO          string
	ruleID                     int64 // an owner rule in the fixture

	demoMu sync.Mutex // held by examples that run certsweep demo
}

func newExWorld(t *testing.T) *exWorld {
	t.Helper()
	ctx := context.Background()
	w := &exWorld{root: t.TempDir(), tmpl: t.TempDir(), bin: t.TempDir()}
	w.lab = newLab(t, exLabSize)
	lab := w.lab
	w.net = exNet{lab: lab.Prefix, port: lab.Port, empty: exEmptySubnet(lab.Prefix)}

	serve := func(addr string, names ...string) (*scannertest.Server, error) {
		ap := netip.MustParseAddrPort(addr)
		cert, err := lab.CA.Leaf(scannertest.CertOptions{CommonName: names[0], DNSNames: names, IPs: []net.IP{ap.Addr().AsSlice()}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := scannertest.NewTLSServer(addr, scannertest.TLSConfig(cert, 0, 0))
		if err == nil {
			t.Cleanup(s.Close)
		}
		return s, err
	}
	// Hosts .1-.3 also answer on a default implicit-TLS port, for examples
	// without --ports.
	for _, p := range scanner.DefaultPorts {
		if _, upgrade := scanner.DefaultProtocols()[p]; p < 1024 || int(p) == int(lab.Port) || upgrade {
			continue
		}
		var started []*scannertest.Server
		for i := 1; i <= 3; i++ {
			s, err := serve(netip.AddrPortFrom(exHost(lab.Prefix, i), p).String(), fmt.Sprintf("alt-%d.lab.test", i))
			if err != nil {
				break
			}
			started = append(started, s)
		}
		if len(started) == 3 {
			w.defaultPort = int(p)
			break
		}
		for _, s := range started {
			s.Close()
		}
	}
	if w.defaultPort == 0 {
		t.Logf("no default port is free on %s: examples without --ports reach only their host:port targets", lab.Prefix)
	}
	s, err := serve(fmt.Sprintf("127.0.0.1:%d", lab.Port), "localhost")
	if err != nil {
		s, err = serve("127.0.0.1:0", "localhost")
	}
	if err != nil {
		t.Fatalf("TLS listener on 127.0.0.1: %v", err)
	}
	w.localPort = int(s.Addr.Port())
	if s, err := serve("[::1]:0", "localhost"); err == nil {
		w.v6Port = int(s.Addr.Port())
	} else {
		t.Logf("no IPv6 loopback (%v): examples with [2001:db8::10] are skipped", err)
	}

	// The database: two complete sweeps named weekly, with a change between.
	db := filepath.Join(w.tmpl, "certsweep.db")
	sweep := func(ctx context.Context, rate string) (string, string, int) {
		return run(t, ctx, "sweep", "--db", db, "--quiet", "--name", "weekly", "--rate", rate, "--timeout", "2s",
			"--ports", fmt.Sprint(lab.Port), exSub(lab.Prefix, 26, 0))
	}
	if out, errOut, code := sweep(ctx, "0"); code != 0 {
		t.Fatalf("fixture sweep 1: exit %d\n%s%s", code, out, errOut)
	}
	gone := lab.Endpoints[len(lab.Endpoints)-1]
	gone.Server.Close() // disappears
	if _, err := serve(netip.AddrPortFrom(exHost(lab.Prefix, exLabSize+1), lab.Port).String(), "new.lab.test"); err != nil {
		t.Fatalf("new lab endpoint: %v", err) // appears, with a certificate nobody saw before
	}
	if out, errOut, code := sweep(ctx, "0"); code != 0 {
		t.Fatalf("fixture sweep 2: exit %d\n%s%s", code, out, errOut)
	}
	w.first, w.second = 1, 2

	// An interrupted sweep: cancelled in-process once its first batch is
	// committed (as TestSweepInterrupted does). At 20 probes/s its 64 probes
	// take 3 s; should it finish first anyway, it is tried once more slower.
	for attempt, rate := range []string{"20", "4"} {
		id := int64(3 + attempt)
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			defer cancel()
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && cctx.Err() == nil; {
				time.Sleep(20 * time.Millisecond)
				if d, err := store.OpenExisting(cctx, db); err == nil {
					sw, err := d.FindSweep(cctx, id)
					d.Close()
					if err == nil && sw.Done() > 0 {
						return
					}
				}
			}
		}()
		out, errOut, code := sweep(cctx, rate)
		cancel()
		if code == exitInterrupted {
			w.interrupted = id
			break
		}
		if code != 0 {
			t.Fatalf("fixture interrupted sweep: exit %d\n%s%s", code, out, errOut)
		}
		t.Logf("fixture sweep %d completed before it could be interrupted; trying again slower", id)
	}
	if w.interrupted == 0 {
		t.Fatal("could not interrupt a fixture sweep")
	}

	// Fingerprints and names the examples use.
	out, errOut, code := run(t, ctx, "certs", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("fixture certs: exit %d %s", code, errOut)
	}
	certs := map[string]map[string]any{}
	var fps []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("certs --format json: %v in %q", err, sc.Text())
		}
		fp, _ := m["sha256"].(string)
		certs[fp] = m
		fps = append(fps, fp)
	}
	fpOf := func(der []byte) string { s := sha256.Sum256(der); return hex.EncodeToString(s[:]) }
	uniquePrefix := func(fp string) string { return exUniquePrefix(fp, fps) }
	kindFP := func(kind string) string {
		i := slices.Index(scannertest.DemoKinds, kind)
		if i < 0 || i >= len(lab.Endpoints) || len(lab.Endpoints[i].Presents) == 0 {
			t.Fatalf("the lab has no %s endpoint", kind)
		}
		fp := fpOf(lab.Endpoints[i].Presents[0])
		if certs[fp] == nil {
			t.Fatalf("the fixture database lacks the %s leaf %s", kind, fp)
		}
		return fp
	}
	w.leafFP = kindFP("valid")
	w.leafPrefix = uniquePrefix(w.leafFP)
	caFP := fpOf(lab.CA.Intermediate.DER)
	ca := certs[caFP]
	if ca == nil {
		t.Fatalf("the fixture database lacks the lab's intermediate CA %s", caFP)
	}
	w.caPrefix = uniquePrefix(caFP)
	w.issuerDN, _ = ca["subject"].(string)
	w.issuerCN, w.issuerO = lab.CA.Intermediate.Cert.Subject.CommonName, lab.CA.Intermediate.Cert.Subject.Organization[0]

	// Tracked: the leaf by fingerprint, and an issuer rule for the CA.
	// And an owner rule by address and port, for `track rm --rule ID`.
	for _, args := range [][]string{
		{"track", "add", "--db", db, "--owner", "web-team", "--note", "www load balancer", w.leafFP},
		{"track", "issuer", "--db", db, "--owner", "pki-team", w.issuerDN},
		{"track", "rule", "--db", db, "--owner", "dc-team", "--cidr", exSub(lab.Prefix, 26, 0), "--port", fmt.Sprint(lab.Port)},
	} {
		if out, errOut, code := run(t, ctx, args...); code != 0 {
			t.Fatalf("fixture %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	out, errOut, code = run(t, ctx, "track", "list", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("fixture track list: exit %d %s", code, errOut)
	}
	for _, m := range jsonLines(t, out) {
		if m["type"] == "rule" && m["cidr"] != nil && m["cidr"] != "" {
			w.ruleID, _ = strconv.ParseInt(fmt.Sprint(m["id"]), 10, 64)
		}
	}
	if w.ruleID == 0 {
		t.Fatalf("fixture: no rule with a cidr in track list:\n%s", out)
	}

	// Databases for merge: the 4 shards of a sweep, and a sweep at each of
	// two sites, each into a file of its own, as other hosts would write them.
	for i := range 4 {
		args := []string{"sweep", "--db", filepath.Join(w.tmpl, fmt.Sprintf("shard-%d.db", i)), "--quiet", "--name", "weekly",
			"--site", "dc1", "--shard", fmt.Sprintf("%d/4", i), "--seed", "7", "--rate", "0", "--timeout", "2s",
			"--ports", fmt.Sprint(lab.Port), exSub(lab.Prefix, 26, 0)}
		if out, errOut, code := run(t, ctx, args...); code != 0 {
			t.Fatalf("fixture %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	for _, site := range []string{"frankfurt", "dallas"} {
		args := []string{"sweep", "--db", filepath.Join(w.tmpl, site+".db"), "--quiet", "--name", "weekly", "--site", site,
			"--rate", "0", "--timeout", "2s", "--ports", fmt.Sprint(lab.Port), exSub(lab.Prefix, 26, 0)}
		if out, errOut, code := run(t, ctx, args...); code != 0 {
			t.Fatalf("fixture %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}

	// inventory.csv: the report as CSV with the owner column filled in for
	// two shadow certificates, as track import --help describes.
	out, errOut, code = run(t, ctx, "report", "--db", db, "--format", "csv")
	if code != 0 && code != exitFindings {
		t.Fatalf("fixture report: exit %d %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("fixture report --format csv: %v\n%s", err, out)
	}
	shaCol, ownerCol := slices.Index(rows[0], "sha256"), slices.Index(rows[0], "owner")
	if shaCol < 0 || ownerCol < 0 {
		t.Fatalf("fixture report --format csv has no sha256 or owner column: %q", rows[0])
	}
	filled := 0
	for _, row := range rows[1:] {
		if fp := row[shaCol]; fp == kindFP("expiring-7d") || fp == kindFP("tls13-only") {
			row[ownerCol] = "app-team"
			filled++
		}
	}
	if filled == 0 {
		t.Fatalf("fixture report has no row for the expiring-7d or tls13-only leaf:\n%s", out)
	}
	var inventory strings.Builder
	cw := csv.NewWriter(&inventory)
	cw.UseCRLF = true
	if err := cw.WriteAll(rows); err != nil {
		t.Fatal(err)
	}

	// Files the examples name.
	rsa := certs[kindFP("rsa-1024")]
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: lab.CA.Root.DER})
	h := func(i int) string { return exHost(lab.Prefix, i).String() }
	files := map[string]string{
		"owners.csv": "sha256,serial,issuer,owner,note\r\n" +
			kindFP("expired") + ",,,web-team,expired on purpose\r\n" +
			kindFP("self-signed") + ",,,infra-team,lab appliance\r\n" +
			fmt.Sprintf(",%s,%q,legacy-team,by serial and issuer\r\n", rsa["serial"], rsa["issuer"]),
		"hosts.txt":       fmt.Sprintf("# hosts to sweep\n%s\n%s  # the lab's first /28\nlocalhost:%d\n%s:%d\n", h(1), exSub(lab.Prefix, 28, 0), w.localPort, h(2), lab.Port),
		"inventory.txt":   fmt.Sprintf("# asset inventory export\n%s:%d\n%s:%d\n# retired\nlocalhost:%d\n", h(1), lab.Port, h(3), lab.Port, w.localPort),
		"do-not-scan.txt": fmt.Sprintf("# change freeze\n%s-%s\n", h(8), h(11)),
		"names.txt":       fmt.Sprintf("# DNS zone export\nwww.example.com\n%s portal.example.com\n%s intranet.example.com\n", h(1), exSub(lab.Prefix, 28, 0)),
		"corp-roots.pem":  string(rootPEM),
		"lab-ca.pem":      string(rootPEM),
		"inventory.csv":   inventory.String(),
		"web-users.yml":   exWebUsers(),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(w.tmpl, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The database copies: certs.db (for --db certs.db) and
	// var/lib/certsweep/certs.db. Every connection is closed by now, so
	// SQLite has checkpointed the WAL into the main file.
	if _, err := os.Stat(db + "-wal"); err == nil {
		t.Fatalf("%s-wal is still there after every connection closed", db)
	}
	for _, p := range []string{"certs.db", "var/lib/certsweep/certs.db"} {
		exCopyFile(t, db, filepath.Join(w.tmpl, p))
	}

	// PATH: certsweep is this test binary, mail a stub.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	scripts := map[string]string{
		"certsweep": fmt.Sprintf("#!/bin/sh\nCERTSWEEP_TEST_RUN_MAIN=1 exec %s \"$@\"\n", exShellQuote(self)),
		"mail": "#!/bin/sh\n# A stub: one line per call with the arguments, then what came on stdin.\n" +
			"{ printf 'mail'; for a in \"$@\"; do printf ' [%s]' \"$a\"; done; printf '\\n'; } >> \"$CERTSWEEP_TEST_MAIL_LOG\"\n" +
			"cat >> \"$CERTSWEEP_TEST_MAIL_LOG.stdin\"\n",
	}
	for name, content := range scripts {
		if err := os.WriteFile(filepath.Join(w.bin, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// exEmptySubnet picks a loopback /24 other than the lab's and 127.0.0.0/24,
// where nothing should listen.
func exEmptySubnet(lab netip.Prefix) netip.Prefix {
	for {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(rand.IntN(254) + 1), byte(rand.IntN(256)), 0}), 24)
		if p != lab.Masked() {
			return p
		}
	}
}

// ---- running ----

// newEnv copies the template into a fresh directory for one run.
func (w *exWorld) newEnv(t *testing.T, n exNet) *exEnv {
	t.Helper()
	dir, err := os.MkdirTemp(w.root, "ex-")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(w.tmpl, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(w.tmpl, p)
		exCopyFile(t, p, filepath.Join(dir, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return &exEnv{w: w, net: n, dir: dir, varLib: filepath.Join(dir, "var/lib/certsweep"), leafFP: w.leafFP, leafPrefix: w.leafPrefix}
}

func (e *exEnv) environ(db string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CERTSWEEP_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"PATH="+e.w.bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"CERTSWEEP_DB="+db,
		"CERTSWEEP_TEST_MAIL_LOG="+filepath.Join(e.dir, "mail.log"),
		"LC_ALL=C",
	)
}

// exShell runs argv in dir with env; its process group is killed on timeout.
func exShell(dir string, env []string, argv ...string) (stdout, stderr string, code int, took time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), exExampleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	begin := time.Now()
	err = cmd.Run()
	took = time.Since(begin)
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("still running after %s: killed", exExampleTimeout)
		code = -1
	case errors.As(err, &ee):
		code, err = ee.ExitCode(), nil
	case err != nil:
		code = -1
	}
	return out.String(), errOut.String(), code, took, err
}

var (
	exOutputFile = regexp.MustCompile(`(?:^|\s)(?:>|-o|--output)\s*(?:=\s*)?["']?([^\s"'|;&<>]+)`)
)

func (w *exWorld) runExample(t *testing.T, ex docExample) time.Duration {
	where := strings.Join(ex.sources, ", ")
	if why, ok := docSkips[ex.text]; ok {
		t.Skipf("%s: not run: %s", where, why)
	}
	if w.v6Port == 0 && strings.Contains(ex.text, "[2001:db8::10]") {
		t.Skipf("%s: no IPv6 loopback on this machine for [2001:db8::10]", where)
	}
	took, _ := w.runLine(t, w.newEnv(t, w.net), ex, "", true)
	return took
}

// runLine runs one documented line in e and reports whether it met the
// expectations; step names the step of a walkthrough ("" otherwise).
func (w *exWorld) runLine(t *testing.T, e *exEnv, ex docExample, step string, checkSweeps bool) (time.Duration, bool) {
	where := strings.Join(ex.sources, ", ")
	cmdline := e.substitute(ex.text)
	ok := true
	report := func(format string, args ...any) {
		t.Helper()
		ok = false
		t.Errorf("%sdocumented at %s:\n    %s\nran as (in %s):\n    %s\n%s", step, where, ex.text, e.dir, cmdline, fmt.Sprintf(format, args...))
	}
	if bad := e.docUnmapped(cmdline); len(bad) > 0 {
		report("not run: it still names documentation values %q: add rows for them to docSubstitutions (or the example to docSkips, with the reason)", bad)
		return 0, false
	}
	if step == "" && exRunsSubcommand(cmdline, "demo") && !strings.Contains(cmdline, "--subnet") {
		// Demos without --subnet share one lab address: one at a time.
		w.demoMu.Lock()
		defer w.demoMu.Unlock()
	}
	dbs := []string{filepath.Join(e.dir, "certsweep.db"), filepath.Join(e.dir, "certs.db"), filepath.Join(e.varLib, "certs.db")}
	if exRunsSubcommand(cmdline, "serve") { // serves until stopped: runServe stops it
		took := w.runServe(t, e, cmdline, e.environ(dbs[0]), report)
		return took, ok
	}
	stdout, stderr, code, took, err := exShell(e.dir, e.environ(dbs[0]), "bash", "-o", "pipefail", "-O", "failglob", "-c", cmdline)
	// The demo's default lab address is one per machine: another test run
	// (or a make demo --serve) may hold it for a while. Wait, then retry.
	for try := 1; try <= 15 && code != 0 && exRunsSubcommand(cmdline, "demo") && strings.Contains(stderr, "address already in use"); try++ {
		t.Logf("the demo lab address is busy (%s); retry %d in 2s", strings.TrimSpace(exTail(stderr)), try)
		time.Sleep(2 * time.Second)
		stdout, stderr, code, took, err = exShell(e.dir, e.environ(dbs[0]), "bash", "-o", "pipefail", "-O", "failglob", "-c", cmdline)
	}
	t.Logf("%s: exit %d in %s", cmdline, code, took.Round(10*time.Millisecond))
	output := fmt.Sprintf("--- stdout:\n%s--- stderr:\n%s", exTail(stdout), exTail(stderr))
	want := []int{0}
	if strings.Contains(ex.text, "--fail-on") {
		want = append(want, exitFindings)
	}
	if err != nil || !slices.Contains(want, code) {
		if err == nil {
			err = fmt.Errorf("exit %d, want %s", code, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(want)), " or "), "[]"))
		}
		if strings.Contains(stderr, "no match: ") {
			err = fmt.Errorf("%v: an unquoted glob matched no file; bash would pass it on, but zsh (and bash with failglob, as here) refuses the line: quote it in the documentation", err)
		}
		report("%v\n%s", err, output)
		return took, false
	}
	for _, m := range exOutputFile.FindAllStringSubmatch(cmdline, -1) {
		p := m[1]
		if p == "/dev/null" || p == "-" {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(e.dir, p)
		}
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			report("the output file %s was not written or is empty (%v)\n%s", m[1], err, output)
		}
	}
	if checkSweeps && exRunsSubcommand(cmdline, "sweep") {
		w.checkSweep(t, dbs, strings.Contains(cmdline, "--resume"), func(msg string) { report("%s\n%s", msg, output) })
	}
	return took, ok
}

// runWalkthrough runs the steps of a walkthrough in order in one directory
// and stops at the first that fails: the later ones build on it. Before
// each step, 3f2a9c stands for a leaf of the database the step names, when
// that is not a fixture database.
func (w *exWorld) runWalkthrough(t *testing.T, wk docWalkthrough) {
	e := w.newEnv(t, w.net)
	for _, s := range wk.steps {
		if exRunsSubcommand(s.text, "demo") {
			w.demoMu.Lock() // held for the whole walkthrough (runLine does not take it for a step)
			defer w.demoMu.Unlock()
			break
		}
	}
	for i, ex := range wk.steps {
		if why, ok := docSkips[ex.text]; ok {
			t.Logf("step %d skipped: %s", i+1, why)
			continue
		}
		e.leafFP, e.leafPrefix = w.leafFP, w.leafPrefix
		if m := exDBFlag.FindStringSubmatch(ex.text); m != nil && !slices.Contains(exFixtureDBs, m[1]) {
			if fp, prefix, err := exLeafOf(e, filepath.Join(e.dir, m[1])); err == nil {
				e.leafFP, e.leafPrefix = fp, prefix
			} else if strings.Contains(ex.text, "3f2a9c") {
				t.Errorf("walkthrough %s, step %d: cannot pick a leaf of %s for 3f2a9c (%v): steps %d-%d not run", wk.source, i+1, m[1], err, i+1, len(wk.steps))
				return
			}
		}
		if _, ok := w.runLine(t, e, ex, fmt.Sprintf("walkthrough %s, step %d of %d: ", wk.source, i+1, len(wk.steps)), false); !ok {
			if i+1 < len(wk.steps) {
				t.Errorf("walkthrough %s: steps %d-%d not run: they build on step %d", wk.source, i+2, len(wk.steps), i+1)
			}
			return
		}
	}
}

// exLeafOf returns the fingerprint and a unique prefix of a leaf (not a
// CA, not self-signed) in the database at path, read with certsweep certs.
func exLeafOf(e *exEnv, path string) (fp, prefix string, err error) {
	if _, err := os.Stat(path); err != nil {
		return "", "", err
	}
	out, errOut, code, _, err := exShell(e.dir, e.environ(path), filepath.Join(e.w.bin, "certsweep"), "certs", "--db", path, "--format", "json")
	if err != nil || code != 0 {
		return "", "", fmt.Errorf("certsweep certs: exit %d, %v: %s", code, err, errOut)
	}
	var fps []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return "", "", err
		}
		f, _ := m["sha256"].(string)
		fps = append(fps, f)
		if fp == "" && m["is_ca"] == false && m["self_signed"] == false && (m["parse_error"] == nil || m["parse_error"] == "") {
			fp = f
		}
	}
	if fp == "" {
		return "", "", errors.New("no leaf")
	}
	return fp, exUniquePrefix(fp, fps), nil
}

// exUniquePrefix is the shortest prefix of fp, 6 digits or more, that no
// other of fps starts with.
func exUniquePrefix(fp string, fps []string) string {
	for n := 6; n < len(fp); n++ {
		if !slices.ContainsFunc(fps, func(o string) bool { return o != fp && strings.HasPrefix(o, fp[:n]) }) {
			return fp[:n]
		}
	}
	return fp
}

// exRunsSubcommand reports whether cmdline runs `certsweep NAME`.
func exRunsSubcommand(cmdline, name string) bool {
	return regexp.MustCompile(`(^|[|&;(]\s*)certsweep\s+` + name + `(\s|$)`).MatchString(cmdline)
}

// checkSweep verifies that a sweep example swept the lab: a new sweep in
// one of the example's databases is complete and completed at least one
// handshake, or the resumed sweep is now complete.
func (w *exWorld) checkSweep(t *testing.T, dbs []string, resume bool, fail func(string)) {
	ctx := context.Background()
	var found []string
	for _, p := range dbs {
		d, err := store.OpenExisting(ctx, p)
		if err != nil {
			continue
		}
		if resume {
			if sw, err := d.FindSweep(ctx, w.interrupted); err == nil && sw.State == store.StateComplete {
				found = append(found, p)
			}
		} else {
			for id := w.interrupted + 1; ; id++ {
				sw, err := d.FindSweep(ctx, id)
				if err != nil {
					break
				}
				switch {
				case sw.State != store.StateComplete:
					fail(fmt.Sprintf("sweep %d in %s is %s, want complete", id, p, sw.State))
				case sw.Stats["ok"] == 0:
					fail(fmt.Sprintf("sweep %d in %s completed no handshake (outcomes %v): the substitutions did not point it at a lab listener", id, p, sw.Stats))
				}
				found = append(found, p)
			}
		}
		d.Close()
	}
	if len(found) == 0 {
		if resume {
			fail(fmt.Sprintf("sweep %d is not complete after the resume", w.interrupted))
		} else {
			fail("no new sweep was recorded in any of " + strings.Join(dbs, ", "))
		}
	}
}

// runScript runs a documented script, as its file, in the situations it
// is meant for. The weekly cron recipe (a script that runs certsweep report
// with --fail-on) gets four; any other script runs once and must exit 0.
func (w *exWorld) runScript(t *testing.T, s docScript) {
	if !strings.Contains(s.text, "certsweep report") || !strings.Contains(s.text, "--fail-on") {
		t.Run(s.source, func(t *testing.T) {
			e := w.newEnv(t, w.net)
			stdout, stderr, code, _, err := w.runScriptIn(t, e, s)
			if err != nil || code != 0 {
				t.Errorf("%s: script exit %d (%v), want 0\n--- stdout:\n%s--- stderr:\n%s", s.source, code, err, exTail(stdout), exTail(stderr))
			}
		})
		return
	}
	clean := w.cleanLab(t)
	scenarios := []struct {
		name     string
		net      exNet
		setup    func(e *exEnv)
		wantOK   bool
		wantMail bool
		wantCSV  bool
	}{
		{name: "findings at --fail-on: exit 0, CSV written and mailed", net: w.net, wantOK: true, wantMail: true, wantCSV: true},
		{name: "clean lab: exit 0, CSV written, no mail",
			net: exNet{lab: clean.Prefix, port: clean.Port, empty: w.net.empty},
			setup: func(e *exEnv) {
				rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clean.CA.Root.DER})
				if err := os.WriteFile(filepath.Join(e.dir, "corp-roots.pem"), rootPEM, 0o644); err != nil {
					t.Fatal(err)
				}
				os.Remove(filepath.Join(e.varLib, "certs.db")) // a first sweep, into a new database
			},
			wantOK: true, wantCSV: true},
		{name: "the sweep reaches nothing: non-zero exit, no mail",
			net: exNet{lab: w.net.empty, port: w.net.port, empty: w.net.empty}},
		{name: "the database cannot be written: non-zero exit, no mail",
			net:   w.net,
			setup: func(e *exEnv) { e.varLib = "/proc/certsweep-doc-example" }}, // /proc refuses new files even to root
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			e := w.newEnv(t, sc.net)
			if sc.setup != nil {
				sc.setup(e)
			}
			stdout, stderr, code, took, err := w.runScriptIn(t, e, s)
			if err != nil && code != -1 {
				err = nil
			}
			script, _ := os.ReadFile(filepath.Join(e.dir, "weekly-script"))
			report := func(format string, args ...any) {
				t.Helper()
				t.Errorf("the script at %s, as run (in %s):\n%s\n%s\n--- stdout:\n%s--- stderr:\n%s",
					s.source, e.dir, exIndent(string(script)), fmt.Sprintf(format, args...), exTail(stdout), exTail(stderr))
			}
			t.Logf("exit %d in %s; stderr:\n%s", code, took.Round(10*time.Millisecond), exIndent(exTail(stderr)))
			switch {
			case err != nil:
				report("%v", err)
				return
			case sc.wantOK && code != 0:
				report("exit %d, want 0", code)
			case !sc.wantOK && code == 0:
				report("exit 0, want non-zero: cron would report success")
			}
			mail, _ := os.ReadFile(filepath.Join(e.dir, "mail.log"))
			csvs, _ := filepath.Glob(filepath.Join(e.varLib, "report-*.csv"))
			switch {
			case sc.wantMail && len(mail) == 0:
				report("mail was not called, want the report mailed (report --fail-on exits 3 on this lab)")
			case !sc.wantMail && len(mail) > 0:
				report("mail was called, want no mail:\n%s", mail)
			}
			if sc.wantCSV {
				if len(csvs) != 1 {
					report("want one report-DATE.csv in %s, found %q", e.varLib, csvs)
				} else if fi, err := os.Stat(csvs[0]); err != nil || fi.Size() == 0 {
					report("%s is empty", csvs[0])
				} else if sc.wantMail && !strings.Contains(string(mail), "["+csvs[0]+"]") {
					report("the mail does not carry %s:\n%s", csvs[0], mail)
				}
			}
		})
	}
}

func (w *exWorld) runScriptIn(t *testing.T, e *exEnv, s docScript) (stdout, stderr string, code int, took time.Duration, err error) {
	t.Helper()
	// A script that takes its settings as ${NAME:-default} runs verbatim,
	// each NAME set in the environment to its default after substitution;
	// documentation values elsewhere in it are substituted in its text.
	env := e.environ(filepath.Join(e.varLib, "certs.db"))
	text := s.text
	for _, m := range exScriptVar.FindAllStringSubmatch(s.text, -1) {
		v := e.substitute(m[2])
		if exPortList.MatchString(v) {
			v += fmt.Sprintf(",%d", e.net.port) // a --ports list: add the lab port, as for --ports
		}
		env = append(env, m[1]+"="+v)
	}
	if bad := e.docUnmapped(exScriptVar.ReplaceAllString(text, "")); len(bad) > 0 {
		text = e.substitute(text)
		t.Logf("the script names documentation values outside ${NAME:-default} settings (%q): substituted in its text", bad)
	}
	if bad := e.docUnmapped(exScriptVar.ReplaceAllString(text, "")); len(bad) > 0 {
		return "", "", -1, 0, fmt.Errorf("not run: it still names documentation values %q: add rows for them to docSubstitutions", bad)
	}
	path := filepath.Join(e.dir, "weekly-script")
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.varLib, 0o755); err != nil && !strings.HasPrefix(e.varLib, "/proc/") {
		t.Fatal(err)
	}
	return exShell(e.dir, env, path)
}

// cleanLab starts a lab whose endpoints have no high or critical finding
// when its root is trusted: valid certificates, full chains.
func (w *exWorld) cleanLab(t *testing.T) *scannertest.Lab {
	t.Helper()
	lab, err := scannertest.NewLabOf(4, func(int) string { return "valid" })
	if err != nil {
		t.Fatalf("clean lab: %v", err)
	}
	t.Cleanup(lab.Close)
	return lab
}

// ---- small helpers ----

func exCopyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func exShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// exTail keeps the end of long output.
func exTail(s string) string {
	const max = 4000
	if len(s) > max {
		s = "[...]\n" + s[len(s)-max:]
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

func exIndent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// TestDocExampleParsing checks the harness's own parsing and substitution.
func TestDocExampleParsing(t *testing.T) {
	for in, want := range map[string]string{
		"certsweep sweep --resume 12        # continue sweep 12": "certsweep sweep --resume 12",
		`grep -v '^#' inventory.txt | certsweep sweep -f -`:      `grep -v '^#' inventory.txt | certsweep sweep -f -`,
		`certsweep track add x --note "a # b"  # c`:              `certsweep track add x --note "a # b"`,
		`echo a\# b`: `echo a\# b`,
		"# or":       "",
	} {
		if got := docStripComment(in); got != want {
			t.Errorf("docStripComment(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{
		"certsweep sweeps": true,
		"grep -v '^#' inventory.txt | certsweep sweep -f -": true,
		"certsweep demo --db x && certsweep certs --db x":   true,
		"CGO_ENABLED=1 go install example.com/certsweep@v1": false,
		"make demo":              false,
		`echo "certsweep sweep"`: false,
		"report || mail -s x a@b < certsweep.csv":           false,
		"X=1 certsweep report --fail-on high || mail x@y.z": true,
	} {
		if got := docRunsCertsweep(in); got != want {
			t.Errorf("docRunsCertsweep(%q) = %v, want %v", in, got, want)
		}
	}
	for _, tc := range []struct{ s, doc, lab, want string }{
		{"show 3f2a9c | x", "3f2a9c", "abc123", "show abc123 | x"},
		{"rm 3f2a9c0d...", "3f2a9c", "abc123", "rm 3f2a9c0d..."},
		{"--sweep 12 --sweep 123", "--sweep 12", "--sweep 2", "--sweep 2 --sweep 123"},
		{"a 110.20.0.0/16 10.20.0.0/16", "10.20.0.0/16", "L", "a 110.20.0.0/16 L"},
	} {
		if got := exReplaceValue(tc.s, tc.doc, tc.lab); got != tc.want {
			t.Errorf("exReplaceValue(%q, %q) = %q, want %q", tc.s, tc.doc, got, tc.want)
		}
	}
	w := &exWorld{first: 1, second: 2, interrupted: 3, ruleID: 7, localPort: 1, v6Port: 2, leafFP: "f", leafPrefix: "f", caPrefix: "c", issuerCN: "cn", issuerO: "o"}
	e := &exEnv{w: w, net: exNet{lab: netip.MustParsePrefix("127.1.2.0/24"), port: 4444, empty: netip.MustParsePrefix("127.9.9.0/24")},
		dir: "/x/ex", varLib: "/x/ex/var/lib/certsweep"}
	got := e.substitute("certsweep sweep --db /var/lib/certsweep/certs.db -p 443,9000-9010 --exclude 10.20.5.0/24 10.20.0.0/16 10.30.0.0/20 10.0.0.5-10.0.0.90")
	want := "certsweep sweep --db /x/ex/var/lib/certsweep/certs.db -p 443,9000-9010,4444 --exclude 127.1.2.16/28 127.1.2.0/26 127.9.9.0/28 127.1.2.5-127.1.2.90"
	if got != want {
		t.Errorf("substitute:\n got %s\nwant %s", got, want)
	}
	if bad := e.docUnmapped(got); len(bad) != 0 {
		t.Errorf("docUnmapped(%q) = %q, want nothing", got, bad)
	}
	bad := e.docUnmapped("certsweep sweep --sni www.example.com db.corp.example 10.1.2.3 [2001:db8::1]:443 --sweep 9 --rule 8 --db /srv/x.db < /dev/null")
	wantBad := []string{"10.1.2.3", "2001:db8::/32", "db.corp.example", "/srv/x.db", "--sweep 9 (not a sweep of the fixture)", "--rule 8 (not a rule of the fixture)"}
	if !slices.Equal(bad, wantBad) {
		t.Errorf("docUnmapped = %q, want %q", bad, wantBad)
	}
}
