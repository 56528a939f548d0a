package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/certsweep/certsweep/report"
	"github.com/certsweep/certsweep/scanner"
	"github.com/certsweep/certsweep/store"
	"github.com/urfave/cli/v2"
)

func sweepCommand() *cli.Command {
	return &cli.Command{
		Name:      "sweep",
		Usage:     "probe targets with TLS handshakes and record every certificate",
		ArgsUsage: "TARGET...",
		Description: `Targets are IPv4/IPv6 addresses, CIDRs (10.0.0.0/24), ranges (10.0.0.5-10.0.0.90),
hostnames (resolved; the name is sent as SNI and recorded) and host:port or
[v6addr]:port (that port only). Overlapping targets are probed once. The address
space is visited in a pseudo-random order (--seed) so no host or subnet gets a burst.

Discovery: most of a real network never answers. With --discovery syn (the
default, auto, whenever certsweep may open raw sockets: root, or setcap
cap_net_raw+ep) SYNs go out at --rate from a raw socket, each with a keyed
cookie so that only genuine answers count, and only what answers SYN-ACK gets a
connection and a handshake; no answer after --syn-retries and --cooldown is
"silent". Without raw sockets (--discovery connect) up to --connect-concurrency
connects wait at once, so silent addresses never hold the --concurrency
handshake workers.

Every probe ends as one of: ok, refused, timeout, reset, not-tls, handshake-error,
too-large, no-starttls (the service speaks its protocol but refuses TLS: a
plaintext-only finding), silent (no answer to SYN discovery). Endpoints that answered are recorded with their whole
chain; all outcomes are counted in the sweep's statistics. Ctrl-C stops cleanly:
everything observed so far is committed and the sweep is marked interrupted
(exit 130).

Default ports: ` + wrapList(portList(scanner.DefaultPorts), 64, "\n   ") + `
(HTTPS, SMTPS, LDAPS, DNS-over-TLS, FTPS, IMAPS, POP3S, Docker, LDAPS GC, SIP-TLS,
WinRM, Kubernetes API, HTTPS-alt, MQTT, kubelet, and the protocol ports below)

Protocols: most ports get TLS from the first byte. These ports first speak
their protocol's own upgrade, then the same TLS handshake; name a protocol for
any port with PORT/PROTOCOL in --ports (e.g. 2525/smtp,10389/ldap):
` + protocolHelp() + `
An implicit-TLS port answered by an SMTP, FTP, IMAP, POP3, XMPP or MySQL greeting is
retried once with that protocol's upgrade. --starttls off turns the port
defaults and that retry off (protocols named in --ports still apply).

TLS posture (--posture): after each completed handshake, which versions the
endpoint accepts (SSL 3.0 to TLS 1.3, one handshake each, the negotiated one
already known) and which weak suites (NULL, export, anonymous, RC4, DES/3DES)
it chooses when offered only those: at most 6 more handshakes per TLS
endpoint, over the same upgrade and SNI. report shows them (versions,
weak_ciphers), findings judges them (legacy-protocol, weak-cipher).

` + vhostHelp + `

Examples:
   certsweep sweep 10.20.0.0/16
   certsweep sweep --ports 443,8443,636 --rate 200 --db certs.db 10.20.0.0/16 10.30.0.0/20
   certsweep sweep --ports 443,9000-9010 --exclude 10.20.5.0/24 10.20.0.0/16
   certsweep sweep --targets-file hosts.txt --exclude-file do-not-scan.txt
   grep -v '^#' inventory.txt | certsweep sweep --targets-file -
   certsweep sweep ldap.corp.example:636 '[2001:db8::10]:8443'
   certsweep sweep --sni www.example.com 192.0.2.0/28
   certsweep sweep --ports 25,587,2525/smtp,389,10389/ldap,5432 10.20.0.0/16
   certsweep sweep --discovery connect --connect-concurrency 2048 --connect-timeout 2s 10.20.0.0/16
   certsweep sweep --posture 10.20.0.0/16   # versions and weak suites each endpoint accepts
   certsweep sweep --names-file names.txt --follow-names --all-keys 10.20.0.0/16
   certsweep sweep --shard 1/4 --seed 7 --ports 443,8443 10.20.0.0/16   # a quarter of the sweep: run 0/4 to 3/4, anywhere
   certsweep sweep --site frankfurt --name weekly-fra --ports 443,8443 10.20.0.0/16
   certsweep sweep --resume 12      # after Ctrl-C, a crash or a reboot`,
		Flags: append([]cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "ports", Aliases: []string{"p"}, Usage: "`PORTS` to probe: list and ranges, each optionally /PROTOCOL, e.g. 443,8443,9000-9010,2525/smtp (default: common TLS ports, see above)"},
			&cli.StringFlag{Name: "starttls", Value: "auto", Usage: "`MODE` auto: speak each port's protocol (see above) and retry plaintext greetings; off: implicit TLS only, except protocols named in --ports"},
			&cli.StringSliceFlag{Name: "targets-file", Aliases: []string{"f"}, Usage: "read targets from `FILE` (- for stdin), one per line, # comments"},
			&cli.StringSliceFlag{Name: "exclude", Aliases: []string{"x"}, Usage: "never probe these addresses, CIDRs or ranges (repeatable, or comma-separated)"},
			&cli.StringSliceFlag{Name: "exclude-file", Usage: "read exclusions from `FILE`, one per line, # comments"},
			&cli.StringFlag{Name: "sni", Usage: "send server `NAME` to every target (default: the hostname given, or none)"},
			&cli.BoolFlag{Name: "posture", Usage: "also find which TLS versions and weak cipher suites each TLS endpoint accepts: up to 6 more handshakes per endpoint"},
			&cli.IntFlag{Name: "rate", Aliases: []string{"r"}, Value: 1000, Usage: "handshake attempts per second across the sweep (0 = unlimited)"},
			&cli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, Value: 256, Usage: "TLS handshakes in flight"},
			&cli.IntFlag{Name: "connect-concurrency", Usage: "TCP connects pending at once; a silent address holds one for --connect-timeout (default: as many as the open-file limit allows, at most " + fmt.Sprint(maxConnectConcurrency) + ")"},
			&cli.IntFlag{Name: "per-host", Value: 4, Usage: "probes in flight against any one address"},
			&cli.StringFlag{Name: "discovery", Value: "auto", Usage: "`MODE` of finding what answers: syn (raw-socket SYNs at --rate, then handshakes only with what answered; needs root or CAP_NET_RAW), connect (a TCP connect per target), auto (syn when permitted, else connect)"},
			&cli.IntFlag{Name: "syn-retries", Value: scanner.DefaultSYNRetries, Usage: "SYN discovery: extra SYNs to a target that has not answered, one a second"},
			&cli.DurationFlag{Name: "cooldown", Value: scanner.DefaultCooldown, Usage: "SYN discovery: wait after a target's last SYN before counting it silent"},
			&cli.DurationFlag{Name: "connect-timeout", Value: scanner.DefaultConnectTimeout, Usage: "TCP connect timeout"},
			&cli.DurationFlag{Name: "timeout", Value: scanner.DefaultHandshakeTimeout, Usage: "bound on each probe after connecting: the protocol's upgrade and the TLS handshake"},
			&cli.StringFlag{Name: "shard", Usage: "probe only part `I/N` (I from 0 to N-1) of the sweep's permuted order; the N shards, each given the same --seed, probe together exactly the whole sweep. auto/N takes I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)"},
			&cli.Uint64Flag{Name: "seed", Usage: "probe-order seed, to reproduce an order (default: random, recorded with the sweep)"},
			&cli.StringFlag{Name: "name", Usage: "the sweep's `NAME`: diff compares sweeps of one name (default: derived from the targets and ports)"},
			&cli.StringFlag{Name: "site", Usage: "the vantage point this sweep runs from, `NAME` (letters, digits, . _ -): the same address at two sites is two endpoints once merged (default: none)"},
			&cli.BoolFlag{Name: "allow-empty", Usage: "exit 0 even when no TLS endpoint answered (default: exit 4)"},
			&cli.BoolFlag{Name: "allow-large-ipv6", Usage: "allow IPv6 prefixes and ranges larger than a /112"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success (warnings and errors still go to stderr)"},
			&cli.Int64Flag{Name: "resume", Usage: "continue interrupted sweep `ID` with its own targets, ports, seed and options, probing nothing twice"},
		}, vhostFlags()...),
		Action: func(c *cli.Context) error {
			if c.IsSet("resume") {
				s, err := resumeSettingsFrom(c)
				if err != nil {
					return err
				}
				_, err = runSweep(c.Context, c.App.Writer, c.App.ErrWriter, s)
				return err
			}
			s, err := sweepSettingsFrom(c)
			if err != nil {
				return err
			}
			_, err = runSweep(c.Context, c.App.Writer, c.App.ErrWriter, s)
			return err
		},
	}
}

// sweepSettings is everything one sweep needs, read from flags.
type sweepSettings struct {
	dbPath         string
	name           string
	tokens         []string
	excludeTokens  []string
	inputs         []scanner.Input
	excludes       []scanner.Input
	ports          []uint16
	portsText      string
	cfg            scanner.Config
	quiet          bool
	progressPeriod time.Duration // between plain log lines when not on a TTY
	resume         *store.Sweep  // the interrupted sweep to continue, if any
	allowLargeIPv6 bool
	allowEmpty     bool     // a sweep that reached no TLS endpoint is not an error
	notes          []string // lines for stderr when the sweep starts (unless --quiet)
	vhosts         vhostSettings
	site           string // --site: recorded on the sweep and each observation
}

// resumeSettingsFrom rebuilds an interrupted sweep's settings from what the
// database recorded: the same targets, ports, seed (so the same probe order)
// and options. --rate, --concurrency, --per-host, the timeouts and --quiet
// may be changed; targets and ports may not.
func resumeSettingsFrom(c *cli.Context) (sweepSettings, error) {
	for _, f := range []string{"ports", "starttls", "targets-file", "exclude", "exclude-file", "sni", "posture", "seed", "name", "allow-large-ipv6", "shard", "site",
		"names-file", "follow-names", "ptr", "inventory-names", "max-names-per-address", "all-keys"} {
		if c.IsSet(f) {
			return sweepSettings{}, usagef("--resume continues a sweep as it was defined; --%s cannot change it", f)
		}
	}
	if c.Args().Present() {
		return sweepSettings{}, usagef("--resume takes no targets: sweep %d keeps its own", c.Int64("resume"))
	}
	id := c.Int64("resume")
	db, err := openDB(c.Context, c.String("db"), false)
	if err != nil {
		return sweepSettings{}, err
	}
	defer db.Close()
	sw, err := db.FindSweep(c.Context, id)
	if err != nil {
		return sweepSettings{}, usageError(err, "certsweep sweeps lists the sweep IDs")
	}
	if _, merged := sw.Options["merged"]; merged {
		return sweepSettings{}, usageError(fmt.Errorf("sweep %d was merged from other databases (certsweep merge): it cannot be resumed here", id),
			"resume the interrupted shard in the database that ran it, then merge again")
	}
	if sw.State != store.StateInterrupted {
		return sweepSettings{}, usagef("sweep %d is %s; only an interrupted sweep can be resumed", id, sw.State)
	}
	s := sweepSettings{
		dbPath: c.String("db"), name: sw.Name, quiet: c.Bool("quiet"), allowEmpty: c.Bool("allow-empty"), cfg: scanner.DefaultConfig(),
		progressPeriod: 5 * time.Second, resume: &sw, tokens: sw.Targets, excludeTokens: sw.Excludes,
		portsText: sw.Ports, site: sw.Site,
	}
	for _, tok := range sw.Targets {
		in, err := scanner.ParseInput(tok, true)
		if err != nil {
			return s, failure(fmt.Errorf("sweep %d: stored target: %w", id, err), "")
		}
		s.inputs = append(s.inputs, in)
	}
	for _, tok := range sw.Excludes {
		in, err := scanner.ParseInput(tok, true)
		if err != nil {
			return s, failure(fmt.Errorf("sweep %d: stored exclude: %w", id, err), "")
		}
		s.excludes = append(s.excludes, in)
	}
	cfg := &s.cfg
	starttls, _ := sw.Options["starttls"].(string) // "" before protocols: auto, then
	if s.ports, err = setProtocols(cfg.Prober, sw.Ports, cmp.Or(starttls, "auto")); err != nil {
		return s, failure(fmt.Errorf("sweep %d: stored ports: %w", id, err), "")
	}
	cfg.Seed = sw.Seed
	if cfg.Shard, err = storedShard(sw); err != nil {
		return s, failure(err, "")
	}
	num := func(flag, key string, def int) int {
		if c.IsSet(flag) {
			return c.Int(flag)
		}
		if v, ok := sw.Options[key].(float64); ok {
			return int(v)
		}
		return def
	}
	dur := func(flag, key string, def time.Duration) time.Duration {
		if c.IsSet(flag) {
			return c.Duration(flag)
		}
		if v, ok := sw.Options[key].(string); ok {
			if d, err := time.ParseDuration(v); err == nil {
				return d
			}
		}
		return def
	}
	cfg.Rate = num("rate", "rate", cfg.Rate)
	cfg.Concurrency = num("concurrency", "concurrency", cfg.Concurrency)
	cfg.ConnectConcurrency = num("connect-concurrency", "connect_concurrency", 0)
	cfg.SYNRetries = num("syn-retries", "syn_retries", cfg.SYNRetries)
	cfg.Cooldown = dur("cooldown", "cooldown", cfg.Cooldown)
	mode, _ := sw.Options["discovery"].(string)
	if c.IsSet("discovery") {
		mode = c.String("discovery")
	}
	cfg.PerHost = num("per-host", "per_host", cfg.PerHost)
	cfg.Prober.ConnectTimeout = dur("connect-timeout", "connect_timeout", cfg.Prober.ConnectTimeout)
	cfg.Prober.HandshakeTimeout = dur("timeout", "timeout", cfg.Prober.HandshakeTimeout)
	if v, ok := sw.Options["sni"].(string); ok {
		cfg.Prober.SNI = v
	}
	cfg.Prober.Posture, _ = sw.Options["posture"].(bool) // absent before --posture: off
	if s.vhosts, err = vhostResume(c, sw.Options); err != nil {
		return s, err
	}
	if cfg.Rate < 0 || cfg.Concurrency < 1 || cfg.PerHost < 1 || cfg.ConnectConcurrency < 0 || cfg.SYNRetries < 0 {
		return s, usagef("--rate, --concurrency, --connect-concurrency, --syn-retries and --per-host must be positive")
	}
	if err := pickDiscovery(&s, cmp.Or(mode, "connect")); err != nil {
		return s, err
	}
	return s, fitConnects(cfg)
}

// pickDiscovery sets the sweep's discovery mode: auto is SYN discovery when
// this process may open raw sockets, else connect discovery, with a line
// saying so (s.notes, printed when the sweep starts).
func pickDiscovery(s *sweepSettings, mode string) error {
	switch mode {
	case "connect":
		s.cfg.Discovery = scanner.DiscoveryConnect
	case "syn":
		if err := scanner.CheckSYN(); err != nil {
			return usageError(fmt.Errorf("--discovery syn: %w", err), "use --discovery connect, or give certsweep raw sockets: run it as root, or sudo setcap cap_net_raw+ep "+os.Args[0])
		}
		s.cfg.Discovery = scanner.DiscoverySYN
	case "auto":
		if err := scanner.CheckSYN(); err != nil {
			s.cfg.Discovery = scanner.DiscoveryConnect
			s.notes = append(s.notes, fmt.Sprintf("connect discovery: SYN discovery is not available (%v)", err))
			return nil
		}
		s.cfg.Discovery = scanner.DiscoverySYN
	default:
		return usagef("--discovery %q: want auto, syn or connect", mode)
	}
	return nil
}

// reportSYN tells how SYN discovery went, and warns whatever --quiet says
// when the kernel dropped replies: endpoints then look silent that are not.
func reportSYN(w io.Writer, st scanner.SYNStats, quiet bool) {
	if !quiet {
		fmt.Fprintf(w, "certsweep: SYN discovery: %d SYNs sent, %d answers, %d stray or forged replies ignored\n", st.Sent, st.Valid, st.Invalid)
	}
	if st.Dropped > 0 {
		fmt.Fprintf(w, "certsweep: warning: the kernel dropped %d replies (receive buffer full): some endpoints may be counted silent that answered; sweep again with a lower --rate\n", st.Dropped)
	}
}

// rateText is --rate for humans.
func rateText(rate int) string {
	if rate == 0 {
		return "no rate limit"
	}
	return fmt.Sprintf("%d SYNs/s", rate)
}

// maxConnectConcurrency caps the default pool of pending connects: each
// pending connect costs about 19 KB (a goroutine's stack, a socket, its
// poller entry and timer; measured: 16,384 of them peaked at 320 MB), so
// 4,096 keep a sweep of silent space under 150 MB while crossing it 16
// times faster than 256 workers did (BENCHMARKS.md).
const maxConnectConcurrency = 4096

// fitConnects checks the pools against the open-file limit (each probe in
// flight holds a socket; 64 stay for the database, its WAL and stdio) and
// sizes the default connect pool: as large as the limit allows, at most
// maxConnectConcurrency, never below --concurrency.
func fitConnects(cfg *scanner.Config) error {
	limit, ok := openFileLimit()
	if !ok {
		limit = 1024
	}
	room := int(min(limit, 1<<30)) - 64
	if cfg.Concurrency > room {
		return usageError(fmt.Errorf("--concurrency %d needs more open files than this process may have (limit %d)", cfg.Concurrency, limit),
			fmt.Sprintf("use --concurrency %d or less, or raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd)", max(1, room)))
	}
	if cfg.ConnectConcurrency == 0 {
		cfg.ConnectConcurrency = max(cfg.Concurrency, min(maxConnectConcurrency, room-cfg.Concurrency))
		return nil
	}
	if cfg.ConnectConcurrency+cfg.Concurrency > room {
		return usageError(fmt.Errorf("--connect-concurrency %d with --concurrency %d needs more open files than this process may have (limit %d)", cfg.ConnectConcurrency, cfg.Concurrency, limit),
			fmt.Sprintf("use --connect-concurrency %d or less, or raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd)", max(1, room-cfg.Concurrency)))
	}
	cfg.ConnectConcurrency = max(cfg.ConnectConcurrency, cfg.Concurrency)
	return nil
}

func sweepSettingsFrom(c *cli.Context) (sweepSettings, error) {
	s := sweepSettings{
		dbPath:         c.String("db"),
		name:           c.String("name"),
		quiet:          c.Bool("quiet"),
		allowEmpty:     c.Bool("allow-empty"),
		cfg:            scanner.DefaultConfig(),
		progressPeriod: 5 * time.Second,
	}
	allowLarge := c.Bool("allow-large-ipv6")
	s.allowLargeIPv6 = allowLarge

	var tokens []string
	for _, a := range c.Args().Slice() {
		tokens = append(tokens, splitList(a)...) // "10.0.0.0/24,10.0.1.0/24", as --exclude takes
	}
	for _, f := range c.StringSlice("targets-file") {
		lines, err := readListFile(f, c.App.Reader)
		if err != nil {
			return s, err
		}
		tokens = append(tokens, lines...)
	}
	if len(tokens) == 0 {
		return s, usageError(errors.New("no targets given"), "pass CIDRs, ranges, addresses or hostnames, or --targets-file FILE")
	}
	for _, tok := range tokens {
		in, err := scanner.ParseInput(tok, allowLarge)
		if err != nil {
			return s, usageError(err, "")
		}
		s.inputs = append(s.inputs, in)
	}
	s.tokens = tokens

	var exTokens []string
	for _, x := range c.StringSlice("exclude") {
		exTokens = append(exTokens, splitList(x)...)
	}
	for _, f := range c.StringSlice("exclude-file") {
		lines, err := readListFile(f, c.App.Reader)
		if err != nil {
			return s, err
		}
		exTokens = append(exTokens, lines...)
	}
	for _, tok := range exTokens {
		in, err := scanner.ParseInput(tok, true)
		if err == nil && (in.Host != "" || in.Port != 0) {
			err = fmt.Errorf("exclude %q: give an address, CIDR or range", tok)
		}
		if err != nil {
			return s, usageError(fmt.Errorf("--exclude: %w", err), "")
		}
		s.excludes = append(s.excludes, in)
	}
	s.excludeTokens = exTokens

	s.portsText = portList(scanner.DefaultPorts)
	if c.IsSet("ports") {
		s.portsText = c.String("ports")
	}
	ports, err := setProtocols(s.cfg.Prober, s.portsText, c.String("starttls"))
	if err != nil {
		return s, usageError(err, "ports are 1-65535, each optionally /PROTOCOL, e.g. --ports 443,8443,9000-9010,2525/smtp")
	}
	s.ports = ports
	if s.name == "" {
		s.name = defaultSweepName(s.tokens, s.excludeTokens, s.ports, c.IsSet("ports"))
	}

	cfg := &s.cfg
	cfg.Rate, cfg.Concurrency, cfg.PerHost = c.Int("rate"), c.Int("concurrency"), c.Int("per-host")
	cfg.ConnectConcurrency = c.Int("connect-concurrency")
	cfg.SYNRetries, cfg.Cooldown = c.Int("syn-retries"), c.Duration("cooldown")
	cfg.Prober.ConnectTimeout, cfg.Prober.HandshakeTimeout = c.Duration("connect-timeout"), c.Duration("timeout")
	cfg.Prober.SNI = c.String("sni")
	cfg.Prober.Posture = c.Bool("posture")
	if s.vhosts, err = vhostSettingsFrom(c); err != nil {
		return s, err
	}
	switch {
	case cfg.Rate < 0:
		return s, usagef("--rate %d: must be 0 (unlimited) or more", cfg.Rate)
	case cfg.Concurrency < 1 || cfg.Concurrency > 100000:
		return s, usagef("--concurrency %d: must be 1-100000", cfg.Concurrency)
	case cfg.PerHost < 1:
		return s, usagef("--per-host %d: must be 1 or more", cfg.PerHost)
	case cfg.ConnectConcurrency < 0 || cfg.ConnectConcurrency > 1000000:
		return s, usagef("--connect-concurrency %d: must be 1-1000000 (0: the default)", cfg.ConnectConcurrency)
	case cfg.SYNRetries < 0 || cfg.SYNRetries > 10:
		return s, usagef("--syn-retries %d: must be 0-10", cfg.SYNRetries)
	case cfg.Cooldown <= 0:
		return s, usagef("--cooldown must be a positive duration such as 3s")
	case cfg.Prober.ConnectTimeout <= 0 || cfg.Prober.HandshakeTimeout <= 0:
		return s, usagef("--connect-timeout and --timeout must be positive durations such as 3s")
	}
	if err := fitConnects(cfg); err != nil {
		return s, err
	}
	if err := pickDiscovery(&s, c.String("discovery")); err != nil {
		return s, err
	}
	if cfg.Prober.SNI != "" {
		if in, err := scanner.ParseInput(cfg.Prober.SNI, false); err != nil || in.Host == "" || in.Port != 0 {
			return s, usagef("--sni %q: want a DNS name such as www.example.com", cfg.Prober.SNI)
		}
	}
	cfg.Seed = c.Uint64("seed")
	if !c.IsSet("seed") {
		cfg.Seed = rand.Uint64()
	}
	if cfg.Shard, err = shardFrom(c); err != nil {
		return s, err
	}
	if s.site, err = siteFrom(c); err != nil {
		return s, err
	}
	return s, nil
}

// siteFrom reads --site: a short name, shown as the prefix of an endpoint
// (site:ip:port), so no colon, space or control character.
func siteFrom(c *cli.Context) (string, error) {
	site := c.String("site")
	if !c.IsSet("site") {
		return "", nil
	}
	if len(site) == 0 || len(site) > 64 || strings.Trim(site, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return "", usageError(fmt.Errorf("--site %q: want 1-64 letters, digits, dots, underscores or hyphens", site), "e.g. --site frankfurt or --site aws-eu-west-1")
	}
	return site, nil
}

// defaultSweepName names a sweep after what it probes, so that next week's
// sweep of the same targets and ports gets the same name and `diff`
// compares it with this one. Order and duplicates of the targets do not
// matter; a long list is shortened and made unique with a hash of it.
func defaultSweepName(targets, excludes []string, ports []uint16, portsGiven bool) string {
	canon := func(toks []string) []string {
		return slices.Compact(slices.Sorted(slices.Values(toks)))
	}
	t, x := canon(targets), canon(excludes)
	portText := "default ports"
	if portsGiven {
		portText = "ports " + portRanges(ports)
	}
	full := strings.Join(t, ",")
	if len(x) > 0 {
		full += " excluding " + strings.Join(x, ",")
	}
	full += " " + portText
	const maxName = 72
	if len(full) <= maxName {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	short := t[0]
	if len(t) > 1 {
		short += fmt.Sprintf(" +%d more", len(t)-1)
	}
	if len(x) > 0 {
		short += fmt.Sprintf(" excluding %d", len(x))
	}
	if len(portText) > 32 {
		portText = fmt.Sprintf("%d ports", len(ports))
	}
	return fmt.Sprintf("%s %s #%x", short, portText, sum[:4])
}

// portRanges writes sorted ports with runs collapsed: 443,8443,9000-9010.
func portRanges(ports []uint16) string {
	p := slices.Compact(slices.Sorted(slices.Values(ports)))
	var b strings.Builder
	for i := 0; i < len(p); {
		j := i
		for j+1 < len(p) && p[j+1] == p[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", p[i], p[j])
		} else {
			fmt.Fprint(&b, p[i])
		}
		i = j + 1
	}
	return b.String()
}

// readListFile reads one token per line, skipping blanks and # comments.
// "-" reads stdin.
func readListFile(path string, stdin io.Reader) ([]string, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, usageError(fmt.Errorf("cannot read %s: %w", path, err), "check the path given to --targets-file / --exclude-file")
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		text, _, _ := strings.Cut(sc.Text(), "#")
		for _, tok := range strings.Fields(strings.ReplaceAll(text, ",", " ")) {
			out = append(out, tok)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, usageError(fmt.Errorf("read %s: %w", path, err), "")
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for tok := range strings.SplitSeq(s, ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			out = append(out, tok)
		}
	}
	return out
}

// setProtocols reads a port spec and the --starttls mode into p: which
// protocol each port speaks and whether plaintext greetings are retried.
// It returns the ports.
func setProtocols(p *scanner.Prober, spec, mode string) ([]uint16, error) {
	ports, named, err := scanner.ParsePortSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("--ports: %w", err)
	}
	switch mode {
	case "auto":
		p.Protocols, p.Sniff = scanner.DefaultProtocols(), true
	case "off":
		p.Protocols, p.Sniff = map[uint16]scanner.Protocol{}, false
	default:
		return nil, fmt.Errorf("--starttls %q: want auto or off", mode)
	}
	maps.Copy(p.Protocols, named)
	return ports, nil
}

// starttlsMode is the --starttls mode p was set up with.
func starttlsMode(p *scanner.Prober) string {
	if p.Sniff {
		return "auto"
	}
	return "off"
}

// protocolHelp lists every protocol but implicit TLS with its default ports.
func protocolHelp() string {
	var b strings.Builder
	for _, pi := range scanner.Protocols {
		if pi.Protocol == scanner.ProtoTLS {
			continue
		}
		fmt.Fprintf(&b, "   %-12s %-10s %s\n", pi.Protocol, portList(pi.Ports), pi.Summary)
	}
	return b.String()
}

// wrapList breaks a comma-separated list after a comma once a line is
// longer than width, joining the lines with sep.
func wrapList(list string, width int, sep string) string {
	var lines []string
	for len(list) > width {
		i := strings.LastIndexByte(list[:width], ',')
		if i < 0 {
			break
		}
		lines, list = append(lines, list[:i+1]), list[i+1:]
	}
	return strings.Join(append(lines, list), sep)
}

func portList(ports []uint16) string {
	var b strings.Builder
	for i, p := range ports {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, p)
	}
	return b.String()
}

// runSweep resolves the targets, records a sweep and runs it to the end or
// until ctx is cancelled. Input errors surface before the database is
// touched; after that, results already observed are always committed.
func runSweep(ctx context.Context, stdout, stderr io.Writer, s sweepSettings) (int64, error) {
	plan, warnings, err := scanner.NewPlan(ctx, s.inputs, s.excludes, s.ports, s.vhosts.resolver())
	if err != nil {
		return 0, usageError(err, "")
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "certsweep: warning: %v\n", w)
	}
	if plan.Len() == 0 {
		return 0, usageError(errors.New("nothing to sweep: every target was excluded or did not resolve"), "")
	}
	probes := plan.ShardLen(s.cfg.Shard) // the whole plan's when not sharded
	if probes == 0 {
		return 0, usageError(fmt.Errorf("shard %s is empty: the sweep has only %d probes", s.cfg.Shard, plan.Len()), "use fewer shards than probes")
	}

	db, err := openDB(ctx, s.dbPath, true)
	if err != nil {
		return 0, err
	}
	defer db.Close()

	if n, err := db.ReapSweeps(ctx); err != nil {
		return 0, failure(err, "")
	} else if n > 0 && !s.quiet {
		fmt.Fprintf(stderr, "certsweep: marked %d sweep(s) interrupted: their process is gone\n", n)
	}
	start := time.Now()
	p := s.cfg.Prober
	var id int64
	wopts := store.DefaultWriterOptions()
	if s.resume != nil {
		id = s.resume.ID
		if probes != s.resume.ProbesTotal {
			return id, failure(fmt.Errorf("sweep %d planned %d probes, its targets now give %d (a hostname resolves differently?)", id, s.resume.ProbesTotal, probes),
				"start a new sweep instead")
		}
		if wopts.Resume, err = db.SweepProgress(ctx, id); err != nil {
			return id, failure(err, "")
		}
		s.cfg.Skip = wopts.Resume.Skip
		if err := db.ReopenSweep(ctx, id); err != nil {
			return id, failure(err, "")
		}
	} else {
		id, err = db.CreateSweep(ctx, store.Sweep{
			Name: s.name, StartedAt: start, Targets: s.tokens, Excludes: s.excludeTokens,
			Ports: s.portsText, ProbesTotal: probes, Seed: s.cfg.Seed, Site: s.site, Shard: shardColumn(s.cfg.Shard),
			Options: mergeOptions(map[string]any{
				"rate": s.cfg.Rate, "concurrency": s.cfg.Concurrency, "per_host": s.cfg.PerHost,
				"connect_concurrency": s.cfg.ConnectConcurrency, "discovery": string(s.cfg.Discovery),
				"syn_retries": s.cfg.SYNRetries, "cooldown": s.cfg.Cooldown.String(),
				"connect_timeout": p.ConnectTimeout.String(), "timeout": p.HandshakeTimeout.String(),
				"sni": p.SNI, "allow_large_ipv6": s.allowLargeIPv6, "starttls": starttlsMode(p), "posture": p.Posture,
				"shard": s.cfg.Shard.String(), "site": s.site,
			}, s.vhosts.options()),
		})
		if err != nil {
			return 0, failure(err, "")
		}
	}
	p.Vhosts = s.vhosts.build(db, id, s.site)
	wopts.Site = s.site
	release, err := db.HoldSweep(id)
	if err != nil {
		return 0, failure(err, "check that the directory of --db is writable")
	}
	defer release()
	remaining := probes
	if s.resume != nil {
		remaining -= uint64(s.resume.Done())
		if !s.quiet {
			fmt.Fprintf(stderr, "certsweep: resuming sweep %d: %d of %d probes done\n", id, s.resume.Done(), probes)
		}
	} else if !s.quiet {
		fmt.Fprintf(stderr, "certsweep: sweep %d: %s = %d probes%s into %s\n", id, plan.Describe(), plan.Len(), shardText(s.cfg.Shard, probes), s.dbPath)
	}
	if !s.quiet {
		for _, n := range s.notes {
			fmt.Fprintf(stderr, "certsweep: %s\n", n)
		}
		switch s.cfg.Discovery {
		case scanner.DiscoverySYN:
			fmt.Fprintf(stderr, "certsweep: SYN discovery: %s, %d retries, silent %s after the last SYN; %d handshakes in flight\n",
				rateText(s.cfg.Rate), s.cfg.SYNRetries, s.cfg.Cooldown, s.cfg.Concurrency)
		default:
			fmt.Fprintf(stderr, "certsweep: connect discovery: up to %d connects pending, %d handshakes in flight\n", s.cfg.ConnectConcurrency, s.cfg.Concurrency)
		}
	}

	var tally vhostTally
	w := db.NewWriter(id, wopts)
	prog := newProgress(stderr, remaining, s.quiet, s.progressPeriod)
	prog.start()
	var syn *scanner.SYNStats
	s.cfg.SYNDone = func(st scanner.SYNStats) { syn = &st }
	sweepErr := scanner.Sweep(ctx, plan, s.cfg, func(ctx context.Context, pos uint64, r scanner.Result) error {
		prog.record(r.Status)
		tally.record(r)
		// Not ctx: a result produced just before Ctrl-C is still kept.
		return w.Write(context.WithoutCancel(ctx), pos, r)
	})
	prog.stop()
	writeErr := w.Close()
	if syn != nil {
		reportSYN(stderr, *syn, s.quiet)
	}

	state := store.StateComplete
	if sweepErr != nil || writeErr != nil {
		state = store.StateInterrupted
	}
	// A short, uncancelled context: the sweep's own may be cancelled already.
	finCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	finErr := db.FinishSweep(finCtx, id, state, time.Now())

	var inherited []store.Inheritance
	if writeErr == nil {
		inherited, err = inheritOwners(finCtx, db, id)
		if err != nil {
			fmt.Fprintf(stderr, "certsweep: warning: carrying owners over to renewed certificates: %v\n", err)
		}
	}
	var reached int64
	var byProto map[string]int64
	if writeErr == nil && finErr == nil {
		byProto, finErr = db.ReachedByProtocol(finCtx, id)
		for _, n := range byProto {
			reached += n
		}
	}
	sw, findErr := db.FindSweep(finCtx, id)
	var result error
	switch {
	case writeErr != nil:
		result = failure(fmt.Errorf("sweep %d stopped: recording results failed: %w", id, writeErr),
			fmt.Sprintf("results committed before the failure are kept; fix the cause (disk space?) and run certsweep sweep --resume %d", id))
	case errors.Is(sweepErr, context.Canceled):
		result = &cliError{code: exitInterrupted, err: fmt.Errorf("sweep %d interrupted; %d probe results were committed", id, sw.Done())}
	case sweepErr != nil:
		result = failure(fmt.Errorf("sweep %d: %w", id, sweepErr), "")
	case finErr != nil:
		result = failure(finErr, "")
	case reached == 0 && !s.allowEmpty:
		result = &cliError{code: exitEmpty, err: fmt.Errorf("sweep %d reached no TLS endpoint: %s", id, outcomeText(sw)),
			hint: "check the routing and firewalls between this host and the targets, and the --ports list; --allow-empty accepts an empty sweep"}
	}
	if findErr == nil && (!s.quiet || result != nil) {
		printSummary(stdout, sw, time.Since(start), prog.done.Load(), byProto, len(inherited))
		tally.print(stdout, int64(prog.done.Load()), s.vhosts.maxNames)
	}
	return id, result
}

// exitEmpty is the status of a sweep that reached no TLS endpoint: a
// scanner that lost its network must turn cron red, not report "all clear".
const exitEmpty = 4

// printSummary reports a sweep's totals; the rate is of the probes this run
// made (a resumed sweep's earlier probes are in the totals, not the rate).
func printSummary(w io.Writer, s store.Sweep, elapsed time.Duration, probedNow uint64, reached map[string]int64, inherited int) {
	fmt.Fprintf(w, "sweep %d %s: %d of %d probes in %s (%.0f/s)\n", s.ID, s.State, s.Done(), s.ProbesTotal,
		elapsed.Round(100*time.Millisecond), float64(probedNow)/max(elapsed.Seconds(), 1e-3))
	fmt.Fprintf(w, "  name: %s\n", report.Terminal(s.Name))
	if s.Site != "" || s.Shard != "" {
		fmt.Fprintf(w, "  site: %s; shard: %s\n", cmp.Or(s.Site, "(none)"), cmp.Or(s.Shard, "(whole)"))
	}
	fmt.Fprintf(w, "  targets: %s; ports: %s\n", strings.Join(s.Targets, " "), s.Ports)
	fmt.Fprintf(w, "  outcomes: %s\n", outcomeText(s))
	fmt.Fprintf(w, "  TLS endpoints: %s; new certificates: %d", reachedText(reached), s.NewCerts)
	if inherited > 0 {
		fmt.Fprintf(w, "; owners carried over to %d renewed certificates", inherited)
	}
	fmt.Fprintln(w)
}

// reachedText is the count of TLS endpoints, by protocol when any was
// reached through one: "12 (tls 9, smtp 2, ldap 1)".
func reachedText(byProto map[string]int64) string {
	var total int64
	var parts []string
	for _, pi := range scanner.Protocols {
		if n := byProto[string(pi.Protocol)]; n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", pi.Protocol, n))
		}
	}
	if len(parts) == 0 || len(parts) == 1 && byProto[string(scanner.ProtoTLS)] > 0 {
		return fmt.Sprint(total)
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// outcomeText lists a sweep's outcome counts, e.g. "ok 3, refused 250, ...".
func outcomeText(s store.Sweep) string {
	var parts []string
	for _, st := range scanner.Statuses {
		parts = append(parts, fmt.Sprintf("%s %d", st, s.Stats[string(st)]))
	}
	return strings.Join(parts, ", ")
}
