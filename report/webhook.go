package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxWebhookResponse bounds what is read of a webhook's answer: enough for
// an error message, never a receiver's whole page.
const maxWebhookResponse = 64 << 10

// defaultAttemptTimeout bounds a delivery attempt when no timeout is given.
const defaultAttemptTimeout = 30 * time.Second

// Webhook posts alerts as JSON (Alert.WebhookBody) to an incoming webhook:
// Slack, Mattermost, Teams, or any receiver of JSON.
type Webhook struct {
	url     *url.URL
	client  *http.Client
	timeout time.Duration
}

// NewWebhook returns a webhook destination for rawURL (http or https).
// Each attempt gets timeout (0: 30 s). roots verifies HTTPS (nil: the system's
// roots). Proxies come from the environment (HTTPS_PROXY, NO_PROXY).
// Redirects are followed only to the same scheme, host and port, and only
// when they keep the request a POST (307, 308): a 301, 302 or 303 would
// turn it into a GET, which delivers nothing.
func NewWebhook(rawURL string, timeout time.Duration, roots *x509.CertPool) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", rawURL)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL", rawURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	if timeout <= 0 {
		timeout = defaultAttemptTimeout
	}
	w := &Webhook{url: u, timeout: timeout}
	w.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			first := via[0].URL
			if len(via) > 3 || req.Method != http.MethodPost || req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
				return http.ErrUseLastResponse // judged in Send
			}
			return nil
		},
	}
	return w, nil
}

// ID names the webhook by scheme, host and a hash of the whole URL: the
// path of a chat webhook is its secret, and is not stored.
func (w *Webhook) ID() string {
	sum := sha256.Sum256([]byte(w.url.String()))
	return "webhook " + w.url.Scheme + "://" + w.url.Host + " " + hex.EncodeToString(sum[:8])
}

// String names the webhook without its path, which may be a secret token.
func (w *Webhook) String() string {
	s := "webhook " + w.url.Scheme + "://" + w.url.Host
	if w.url.Path != "" && w.url.Path != "/" || w.url.RawQuery != "" {
		s += "/…"
	}
	return s
}

// Prepare renders the alert as the JSON body.
func (w *Webhook) Prepare(a Alert) ([]byte, error) { return a.WebhookBody() }

// Send posts the body once. A 2xx answer is delivery; 5xx, 408, 429,
// timeouts and network errors may be retried; any other answer, a redirect
// elsewhere and a certificate that does not verify are permanent.
func (w *Webhook) Send(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url.String(), bytes.NewReader(body))
	if err != nil {
		return permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "certsweep")
	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, whose path may be a secret: drop it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within --timeout %s", w.timeout)
		}
		if certificateError(err) {
			return permanentf("%w (give its CA with --ca-bundle)", err)
		}
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse))
	said := ""
	if s := strings.TrimSpace(string(answer)); s != "" {
		said = ": " + clip(Terminal(s), 200)
	}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code >= 300 && code < 400:
		where := "elsewhere"
		if loc, err := resp.Location(); err == nil {
			where = "to " + Terminal(loc.Scheme+"://"+loc.Host) + "/…"
		}
		return permanentf("HTTP %d, a redirect %s: certsweep posts only to the URL given (and its own host), give the final URL", code, where)
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		err := fmt.Errorf("HTTP %d%s", code, said)
		if after, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return &retryLater{err: err, after: after} // a rate-limited chat API says when
		}
		return err
	}
	return permanentf("HTTP %d%s", code, said)
}

// retryAfter reads an HTTP Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v = strings.TrimSpace(v); v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// certificateError reports whether err is a TLS certificate that did not
// verify: another attempt gets the same certificate.
func certificateError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}
