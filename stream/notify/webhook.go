package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netwarden/netwarden/internal/account"
)

// SignatureHeader carries a webhook's signature: t=<unix>,v1=<hex>.
const SignatureHeader = "X-Netwarden-Signature"

// DeliveryHeader carries the digest's id (stable across retries).
const DeliveryHeader = "X-Netwarden-Delivery"

// Payload is the JSON body of a webhook POST.
type Payload struct {
	Type      string         `json:"type"` // "netwarden.alerts.digest"
	ID        string         `json:"id"`   // stable for the same alerts
	Account   account.ID     `json:"account"`
	Sent      time.Time      `json:"sent"`
	Dashboard string         `json:"dashboard"`
	Alerts    []PayloadAlert `json:"alerts"`
}

// PayloadAlert is an alert with its dashboard link (an outage alert's:
// its entity's page).
type PayloadAlert struct {
	account.Alert
	URL string `json:"url"`
}

// Sign returns the signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// digestID names a digest by its account and alerts.
func digestID(d *digest) string {
	h := sha256.New()
	for _, id := range d.ids {
		h.Write(strconv.AppendInt(nil, id, 10))
		h.Write([]byte{','})
	}
	return fmt.Sprintf("%d-%s", d.acct.ID, hex.EncodeToString(h.Sum(nil))[:24])
}

func (n *Notifier) postWebhook(ctx context.Context, d *digest, st account.Settings, now time.Time) error {
	if err := n.CheckWebhookURL(st.WebhookURL); err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	p := Payload{Type: "netwarden.alerts.digest", ID: digestID(d), Account: d.acct.ID, Sent: now.UTC(), Dashboard: n.cfg.PublicURL + "/ui/", Alerts: []PayloadAlert{}}
	for _, a := range d.alerts {
		p.Alerts = append(p.Alerts, PayloadAlert{Alert: a, URL: n.alertURL(a)})
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("%w: encode webhook: %w", errPermanent, err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: webhook request: %w", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "netwarden-webhook")
	req.Header.Set(DeliveryHeader, p.ID)
	req.Header.Set(SignatureHeader, Sign(st.WebhookSecret, now, body))
	resp, err := n.http.Do(req)
	if err != nil {
		if errors.Is(err, ErrPrivateTarget) {
			return fmt.Errorf("%w: webhook %s: %w", errPermanent, host(st.WebhookURL), ErrPrivateTarget)
		}
		return fmt.Errorf("webhook %s: %w", host(st.WebhookURL), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("%w: webhook %s answered %d", ErrDelivery, host(st.WebhookURL), c)
	default:
		return fmt.Errorf("%w: %w: webhook %s answered %d", errPermanent, ErrDelivery, host(st.WebhookURL), c)
	}
}

func host(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "?"
}

// nonPublic lists ranges a webhook may not reach by default, beyond
// what netip's predicates cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 may reach anything v4
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fec0::/10"),
}

// Private reports whether a is not a public unicast address: loopback,
// private (RFC 1918, ULA), link-local, CGNAT, documentation, multicast,
// unspecified, reserved.
func Private(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckWebhookURL vets a webhook URL as far as it can without DNS:
// absolute http(s), and no literal private address (or "localhost")
// unless notify.allow_private_webhooks. Names are checked again on every
// connection, against the address actually dialed.
func (n *Notifier) CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: webhook_url: want an absolute http(s) URL without credentials", account.ErrInvalid)
	}
	if n.cfg.AllowPrivateWebhooks {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%w: %w", account.ErrInvalid, ErrPrivateTarget)
	}
	if a, err := netip.ParseAddr(h); err == nil && Private(a) {
		return fmt.Errorf("%w: %w", account.ErrInvalid, ErrPrivateTarget)
	}
	return nil
}

// webhookClient dials only public addresses (unless allowed), checked
// on the socket about to connect, so DNS answers and rebinding cannot
// sneak past; no proxy, no redirects.
func (n *Notifier) webhookClient() *http.Client {
	d := &net.Dialer{Timeout: n.cfg.WebhookTimeout, Control: func(network, address string, _ syscall.RawConn) error {
		if n.cfg.AllowPrivateWebhooks {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || Private(ap.Addr()) {
			return fmt.Errorf("dial %s: %w", address, ErrPrivateTarget)
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   n.cfg.WebhookTimeout,
		ResponseHeaderTimeout: n.cfg.WebhookTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       time.Minute,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, Timeout: n.cfg.WebhookTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
