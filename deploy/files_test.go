package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerStage is one FROM ... stage of the Dockerfile, its instructions
// with continuation lines joined and comments dropped.
type dockerStage struct {
	from, name string
	lines      []string
}

func dockerStages(t *testing.T) []dockerStage {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var pre []string // instructions before the first FROM (ARG)
	cur := ""
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || (l == "" && cur == "") {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cur += s + " "
			continue
		}
		l, cur = strings.Join(strings.Fields(cur+l), " "), ""
		if l == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(l, "FROM "); ok {
			f := strings.Fields(rest)
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			pre = append(pre, l)
			continue
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, l)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a slim final one", len(stages))
	}
	// Expand the ARGs declared before the first FROM in the FROM lines.
	for _, a := range pre {
		if kv, ok := strings.CutPrefix(a, "ARG "); ok {
			k, v, _ := strings.Cut(kv, "=")
			for i := range stages {
				stages[i].from = strings.ReplaceAll(stages[i].from, "${"+k+"}", v)
			}
		}
	}
	return stages
}

// buildCommand normalises a go build line: $(GO) is go, and the -o output
// is left out (the Makefile writes bin/certsweep, the image /out/certsweep).
func buildCommand(line string) (cmd, out string) {
	f := strings.Fields(strings.ReplaceAll(line, "$(GO)", "go"))
	var kept []string
	for i := 0; i < len(f); i++ {
		if f[i] == "-o" && i+1 < len(f) {
			out = f[i+1]
			i++
			continue
		}
		kept = append(kept, f[i])
	}
	return strings.Join(kept, " "), out
}

// TestDockerfile checks the image without building it (no Docker here):
// certsweep is built exactly as `make build` builds it (cgo on, the same
// flags), with the Go release go.mod asks for, on the Debian release the
// final stage runs (the glibc it was linked against); the final stage
// holds the binary as its entrypoint and runs as a numeric non-root user.
func TestDockerfile(t *testing.T) {
	st := dockerStages(t)
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var makeBuild string
	lines := strings.Split(string(mk), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "build:") && i+1 < len(lines) {
			makeBuild = strings.TrimSpace(lines[i+1])
		}
	}
	if !strings.Contains(makeBuild, " build ") {
		t.Fatalf("the Makefile's build target is not a go build line: %q", makeBuild)
	}
	want, _ := buildCommand(makeBuild)

	build, final := st[0], st[len(st)-1]
	var got, out string
	for _, l := range build.lines {
		if run, ok := strings.CutPrefix(l, "RUN "); ok && strings.Contains(run, " build ") {
			got, out = buildCommand(run)
		}
	}
	if got != want {
		t.Errorf("the Dockerfile builds with\n  %s\nthe Makefile with\n  %s\nwant the same command (cgo and flags)", got, want)
	}

	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go ([0-9]+\.[0-9]+)`).FindSubmatch(gomod)
	image := regexp.MustCompile(`^golang:([0-9]+\.[0-9]+)(?:\.[0-9]+)?-([a-z]+)$`).FindStringSubmatch(build.from)
	if goVersion == nil || image == nil || image[1] != string(goVersion[1]) {
		t.Errorf("build stage FROM %s: want golang:%s-<debian release> (go.mod's Go)", build.from, goVersion[1])
	} else if final.from != "debian:"+image[2]+"-slim" {
		t.Errorf("final stage FROM %s: want debian:%s-slim, the release the build stage links against", final.from, image[2])
	}

	var copied, entry, user string
	for _, l := range final.lines {
		switch f := strings.Fields(l); {
		case f[0] == "COPY" && len(f) == 4 && f[1] == "--from="+build.name && f[2] == out:
			copied = f[3]
		case f[0] == "ENTRYPOINT":
			entry = strings.TrimPrefix(l, "ENTRYPOINT ")
		case f[0] == "USER":
			user = f[1]
		}
	}
	if out == "" || copied == "" || entry != `["`+copied+`"]` {
		t.Errorf("the final stage must copy the built %s and run it as its ENTRYPOINT (copied to %q, ENTRYPOINT %s)", out, copied, entry)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.Trim(user, "0123456789:") != "" {
		t.Errorf("the final stage runs as USER %q, want a numeric non-root user", user)
	}
	if _, err := os.Stat("Dockerfile.dockerignore"); err != nil {
		t.Errorf("no Dockerfile.dockerignore: the build context would carry bin/, databases and .git: %v", err)
	}
}

// TestSystemdUnits runs systemd-analyze verify on the service and timer
// (the certsweep binary replaced by a stub, since verify checks that the
// command exists) and fails on any complaint, which verify prints for an
// unknown or misspelt directive without failing. It also checks the
// choices the unit stands for: hardened, unprivileged, SYN discovery
// through an ambient CAP_NET_RAW, the database in its state directory.
func TestSystemdUnits(t *testing.T) {
	unit, err := os.ReadFile("systemd/certsweep-sweep.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for l := range strings.Lines(string(unit)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	for k, v := range map[string]string{
		"ProtectSystem": "strict", "StateDirectory": "certsweep", "NoNewPrivileges": "yes", "User": "certsweep",
		"AmbientCapabilities": "CAP_NET_RAW", "CapabilityBoundingSet": "CAP_NET_RAW", "PrivateTmp": "yes", "ProtectHome": "yes",
	} {
		if keys[k] != v {
			t.Errorf("certsweep-sweep.service: %s=%q, want %s", k, keys[k], v)
		}
	}
	exec0 := strings.Fields(keys["ExecStart"])
	if len(exec0) < 2 || exec0[1] != "sweep" || !slices.Contains(exec0, "--discovery") || !slices.Contains(exec0, "/var/lib/"+keys["StateDirectory"]+"/certs.db") {
		t.Errorf("ExecStart=%s: want certsweep sweep --discovery ... with --db in /var/lib/%s", keys["ExecStart"], keys["StateDirectory"])
	}
	sysusers, err := os.ReadFile("systemd/certsweep.sysusers.conf")
	if err != nil || !regexp.MustCompile(`(?m)^u `+keys["User"]+` `).Match(sysusers) {
		t.Errorf("certsweep.sysusers.conf does not create the user %s (%v)", keys["User"], err)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd), so the units are not verified here")
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "certsweep")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, name := range []string{"certsweep-sweep.service", "certsweep-sweep.timer"} {
		data, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("/usr/local/bin/certsweep"), []byte(stub))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The same check must fail on a misspelt directive, or it proves nothing.
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, bytes.Replace(unit, []byte("ProtectClock=yes"), []byte("ProtectClok=yes"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", "--man=no", bad).CombinedOutput(); !bytes.Contains(out, []byte("ProtectClok")) {
		t.Errorf("systemd-analyze verify said nothing of a misspelt directive: %s", out)
	}
	if out, err := exec.Command(analyze, "calendar", keysOf(t, "systemd/certsweep-sweep.timer")["OnCalendar"]).CombinedOutput(); err != nil {
		t.Errorf("the timer's OnCalendar does not parse: %v\n%s", err, out)
	}
}

func keysOf(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for l := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	return keys
}

// notYetInCLI are commands and flags the deploy files use that issue 13
// adds to certsweep and that are not built yet. Once one is, its entry
// here fails the test: delete it, and its use is checked like the rest.
var notYetInCLI = map[string]string{}

// TestDeployUsesTheCLI checks that every command and flag the manifests
// and the unit pass to certsweep is one the CLI defines (by its Name in
// cmd/certsweep), so a renamed flag cannot leave a deployment broken.
func TestDeployUsesTheCLI(t *testing.T) {
	srcs, err := filepath.Glob("../cmd/certsweep/*.go")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	name := regexp.MustCompile(`Name:\s*"([a-z0-9-]+)"`)
	for _, f := range srcs {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllSubmatch(data, -1) {
			defined[string(m[1])] = true
		}
	}
	var lines [][]string
	for _, p := range pods(loadManifests(t)) {
		for _, c := range containers(p.pod) {
			lines = append(lines, c.Args)
		}
	}
	lines = append(lines, strings.Fields(keysOf(t, "systemd/certsweep-sweep.service")["ExecStart"])[1:])
	used := map[string]bool{}
	for _, args := range lines {
		cmd, fl, _ := flags(args)
		used[cmd] = true
		for k := range fl {
			used[k] = true
		}
	}
	for u := range used {
		if !defined[u] && notYetInCLI[u] == "" {
			t.Errorf("the deploy files use %q, which certsweep does not define", u)
		}
	}
	for u, what := range notYetInCLI {
		if defined[u] {
			t.Errorf("%s is built now: remove %q from notYetInCLI", what, u)
		}
	}
}
