//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// exWebUser and exWebPassword are the account of the fixture's
// web-users.yml, for documented serve examples with --basic-auth-file.
const (
	exWebUser     = "prometheus"
	exWebPassword = "scrape"
)

// runServe runs a documented `certsweep serve` line, which serves until
// stopped: once it says where it listens (on a free loopback port:
// --listen defaults to CERTSWEEP_LISTEN=127.0.0.1:0 here, and a documented
// --listen is substituted), the dashboard and /metrics must answer 200
// (with the fixture's account when the line has --basic-auth-file), and
// SIGTERM must stop it with exit 0.
func (w *exWorld) runServe(t *testing.T, e *exEnv, cmdline string, env []string, report func(string, ...any)) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), exExampleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-O", "failglob", "-c", cmdline)
	cmd.Dir, cmd.Env = e.dir, append(env, "CERTSWEEP_LISTEN=127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out strings.Builder
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		report("start: %v", err)
		return 0
	}
	var lines []string
	base := ""
	url := regexp.MustCompile(`serving (http://\S+)/ `)
	sc := bufio.NewScanner(stderr)
	for base == "" && sc.Scan() {
		lines = append(lines, sc.Text())
		if m := url.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderr); rest <- string(b) }()
	if base != "" {
		for _, path := range []string{"/", "/metrics"} {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
			if strings.Contains(cmdline, "--basic-auth-file") {
				req.SetBasicAuth(exWebUser, exWebPassword)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				report("GET %s: %v", path, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode != 200:
				report("GET %s = %d: %s", path, resp.StatusCode, body)
			case path == "/metrics" && !strings.Contains(string(body), "x509_cert_not_after{"):
				report("GET /metrics has no x509_cert_not_after series:\n%s", exTail(string(body)))
			}
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	err = cmd.Wait()
	took := time.Since(begin)
	stderrText := strings.Join(lines, "\n") + "\n" + <-rest
	var ee *exec.ExitError
	switch {
	case base == "":
		report("it never said where it serves (exit %v)\n--- stderr:\n%s", err, exTail(stderrText))
	case errors.As(err, &ee):
		report("exit %d after SIGTERM, want 0\n--- stdout:\n%s--- stderr:\n%s", ee.ExitCode(), exTail(out.String()), exTail(stderrText))
	case err != nil:
		report("%v", err)
	}
	t.Logf("%s: served at %s, stopped in %s", cmdline, base, took.Round(10*time.Millisecond))
	return took
}

// exWebUsers is the fixture's web-users.yml, in Prometheus' web config
// form.
func exWebUsers() string {
	hash, err := bcrypt.GenerateFromPassword([]byte(exWebPassword), bcrypt.MinCost)
	if err != nil {
		panic(err) // only for a password over 72 bytes
	}
	return fmt.Sprintf("basic_auth_users:\n  %s: %s\n", exWebUser, hash)
}
