package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netwarden/netwarden/internal/account"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 30, 0, time.UTC)

// hookReceiver is a real HTTP webhook receiver that verifies the
// signature itself (HMAC-SHA256 over "<t>.<body>").
type hookReceiver struct {
	srv    *httptest.Server
	secret string

	mu   sync.Mutex
	fail int // answer 503 to this many requests first
	hits int
	got  []hookReq
}

type hookReq struct {
	ts       int64
	sigOK    bool
	delivery string
	payload  Payload
}

func startHook(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.hits++
		if h.fail > 0 {
			h.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var q hookReq
		q.delivery = r.Header.Get("X-Netwarden-Delivery")
		var v1 string
		for _, kv := range strings.Split(r.Header.Get("X-Netwarden-Signature"), ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "t":
				q.ts, _ = strconv.ParseInt(v, 10, 64)
			case "v1":
				v1 = v
			}
		}
		mac := hmac.New(sha256.New, []byte(h.secret))
		mac.Write([]byte(strconv.FormatInt(q.ts, 10) + "." + string(body)))
		want := hex.EncodeToString(mac.Sum(nil))
		q.sigOK = r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/json" && hmac.Equal([]byte(v1), []byte(want))
		if err := json.Unmarshal(body, &q.payload); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.got = append(h.got, q)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) state() (hits int, got []hookReq) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits, append([]hookReq(nil), h.got...)
}

type rig struct {
	store  *account.Store
	clk    *manualClock
	n      *Notifier
	mail   *smtpServer
	hook   *hookReceiver
	acct   account.Account
	passes chan time.Time
}

func newRig(t *testing.T, allowPrivate bool) *rig {
	t.Helper()
	ctx := context.Background()
	ac := account.Config{Path: filepath.Join(t.TempDir(), "netwarden.db")}
	ac.Defaults()
	store, err := account.Open(ac)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r := &rig{store: store, clk: newManualClock(t0), mail: startSMTP(t), hook: startHook(t), passes: make(chan time.Time, 100)}
	passFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(passFile, []byte(r.mail.pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Interval: 5 * time.Minute, PublicURL: "https://dash.example.net/", RetryMin: 10 * time.Second, RetryMax: 40 * time.Second,
		AllowPrivateWebhooks: allowPrivate,
		SMTP: SMTPConfig{Host: "127.0.0.1", Port: r.mail.addr.Port, Username: r.mail.user, PasswordFile: passFile,
			From: "netwarden alerts <alerts@netwarden.example>", CAFile: r.mail.caFile, Timeout: 5 * time.Second},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r.n = New(cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)), WithClock(r.clk))
	r.n.passed = func(now time.Time) { r.passes <- now }
	if r.acct, _, err = store.Create(ctx, "owner@example.com", "DEVELOPER", false); err != nil {
		t.Fatal(err)
	}
	st, err := store.PutSettings(ctx, r.acct.ID, account.Settings{EmailEnabled: true, Recipients: []string{"owner@example.com", "second@Example.ORG"}, WebhookURL: r.hook.srv.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	r.hook.secret = st.WebhookSecret
	return r
}

// run starts the notifier; it stops at the test's end.
func (r *rig) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// at moves the clock to t once the notifier waits, and, when pass is
// true, waits for the pass that wakes it at t.
func (r *rig) at(t *testing.T, at time.Time, pass bool) {
	t.Helper()
	r.clk.blockUntilWaiting(t)
	r.clk.set(at)
	if !pass {
		select {
		case p := <-r.passes:
			t.Fatalf("unexpected pass at %v", p)
		default:
		}
		return
	}
	select {
	case p := <-r.passes:
		if !p.Equal(at) {
			t.Fatalf("pass at %v, want %v", p, at)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no pass at %v", at)
	}
}

func (r *rig) insert(t *testing.T, created time.Time, alerts ...account.Alert) {
	t.Helper()
	for i := range alerts {
		alerts[i].Account, alerts[i].Created, alerts[i].Detected = r.acct.ID, created, created
		if alerts[i].Kind == "" {
			alerts[i].Kind = account.KindListed
		}
		alerts[i].SourcePartition, alerts[i].SourceOffset = 0, created.UnixMicro()+int64(i)
	}
	err := r.store.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := account.InsertAlerts(context.Background(), tx, alerts)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *rig) unreported(t *testing.T) []string {
	t.Helper()
	as, err := r.store.Unreported(context.Background(), r.acct.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.Resource)
	}
	return out
}

// parsed is a received digest, decoded.
type parsed struct {
	hdr        netmail.Header
	rawHdr     string
	text, html string
}

func parseMIME(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, data)
	}
	p := parsed{hdr: m.Header}
	p.rawHdr, _, _ = strings.Cut(string(data), "\r\n\r\n")
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part) // quoted-printable is decoded by the reader
		switch ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct {
		case "text/plain":
			p.text = string(b)
		case "text/html":
			p.html = string(b)
		default:
			t.Errorf("unexpected part %q", ct)
		}
	}
	if p.text == "" || p.html == "" {
		t.Fatalf("want a text and an HTML part:\n%s", data)
	}
	return p
}

func TestDigestTimingMIMEAndWebhook(t *testing.T) {
	r := newRig(t, true)
	r.insert(t, t0.Add(30*time.Second),
		account.Alert{Resource: "192.0.2.7", Watched: "192.0.2.0/24", List: "spamhaus-drop", Lists: []string{"spamhaus-drop", "firehol-l1"}},
		// A list name trying to break out of a header.
		account.Alert{Resource: "198.51.100.0/25", Watched: "198.51.100.8", List: "evil\r\nBcc: attacker@evil.example", Lists: []string{"evil\r\nBcc: attacker@evil.example"}},
	)
	r.run(t)

	// Nothing before the interval's boundary (12:05:00).
	r.at(t, t0.Add(4*time.Minute+29*time.Second), false) // 12:04:59
	if n := len(r.mail.messages()); n != 0 {
		t.Fatalf("%d messages before the boundary", n)
	}
	tick := time.Date(2026, 12, 7, 12, 5, 0, 0, time.UTC)
	r.at(t, tick, true)

	msgs := r.mail.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages at the boundary, want 1", len(msgs))
	}
	m := msgs[0]
	if !m.tls || m.user != "relay" || m.from != "alerts@netwarden.example" {
		t.Errorf("tls %v, auth user %q, MAIL FROM %q", m.tls, m.user, m.from)
	}
	if want := []string{"owner@example.com", "second@example.org"}; !slices.Equal(m.to, want) {
		t.Errorf("RCPT TO %v, want %v", m.to, want)
	}
	p := parseMIME(t, m.data)
	if got := p.hdr.Get("Subject"); got != "netwarden: 2 new alerts on your watched addresses" {
		t.Errorf("Subject %q", got)
	}
	if to, err := p.hdr.AddressList("To"); err != nil || len(to) != 2 {
		t.Errorf("To %v (%v)", to, err)
	}
	// No header line was injected (the MIME boundary is random hex and may
	// contain "bcc": look at header names, not the raw text).
	if hasHeaderLine(p.rawHdr, "bcc") || strings.Contains(p.rawHdr, "attacker") {
		t.Errorf("injected header:\n%s", p.rawHdr)
	}
	for _, want := range []string{"https://dash.example.net/ui/ip/192.0.2.7", "https://dash.example.net/ui/ip/198.51.100.0/25", "spamhaus-drop, firehol-l1", "watched entry: 192.0.2.0/24"} {
		if !strings.Contains(p.text, want) {
			t.Errorf("text part lacks %q:\n%s", want, p.text)
		}
	}
	for _, want := range []string{`<a href="https://dash.example.net/ui/ip/192.0.2.7">192.0.2.7</a>`, `<a href="https://dash.example.net/ui/ip/198.51.100.0/25">198.51.100.0/25</a>`} {
		if !strings.Contains(p.html, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, p.html)
		}
	}

	_, got := r.hook.state()
	if len(got) != 1 {
		t.Fatalf("%d webhook deliveries, want 1", len(got))
	}
	h := got[0]
	if !h.sigOK || h.ts != tick.Unix() {
		t.Errorf("signature ok %v, t=%d want %d", h.sigOK, h.ts, tick.Unix())
	}
	if h.delivery == "" || h.delivery != h.payload.ID || h.payload.Account != r.acct.ID || len(h.payload.Alerts) != 2 ||
		h.payload.Alerts[0].URL != "https://dash.example.net/ui/ip/192.0.2.7" || h.payload.Alerts[0].Watched != "192.0.2.0/24" {
		t.Errorf("webhook payload %+v (delivery %q)", h.payload, h.delivery)
	}
	if u := r.unreported(t); len(u) != 0 {
		t.Errorf("unreported after delivery: %v", u)
	}
	as, _, _ := r.store.Alerts(context.Background(), r.acct.ID, account.AlertFilter{})
	for _, a := range as {
		if a.Status != account.StatusReported {
			t.Errorf("alert %d status %s, want reported", a.ID, a.Status)
		}
	}

	// The next interval carries only the new alert.
	r.insert(t, tick.Add(time.Minute), account.Alert{Resource: "2001:db8::1", Watched: "2001:db8::/48", List: "blocklist-de", Lists: []string{"blocklist-de"}})
	r.at(t, tick.Add(5*time.Minute-time.Second), false)
	r.at(t, tick.Add(5*time.Minute), true)
	msgs = r.mail.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages after the second interval, want 2", len(msgs))
	}
	p = parseMIME(t, msgs[1].data)
	if !strings.HasPrefix(p.hdr.Get("Subject"), "netwarden: 1 new alert ") || !strings.Contains(p.text, "https://dash.example.net/ui/ip/2001:db8::1") || strings.Contains(p.text, "192.0.2.7") {
		t.Errorf("second digest: %q\n%s", p.hdr.Get("Subject"), p.text)
	}
	// A quiet interval sends nothing.
	r.at(t, tick.Add(10*time.Minute), true)
	if n := len(r.mail.messages()); n != 2 {
		t.Errorf("%d messages after a quiet interval, want 2", n)
	}
}

func TestRetryWithBackoffNeverDrops(t *testing.T) {
	r := newRig(t, true)
	r.mail.setFail(2) // two 451s
	r.hook.mu.Lock()
	r.hook.fail = 3 // three 503s
	r.hook.mu.Unlock()
	r.insert(t, t0, account.Alert{Resource: "203.0.113.9", Watched: "203.0.113.0/24", List: "l1", Lists: []string{"l1"}})
	r.run(t)

	tick := time.Date(2026, 12, 7, 12, 5, 0, 0, time.UTC)
	r.at(t, tick, true) // both channels fail
	if n := len(r.mail.messages()); n != 0 {
		t.Fatalf("%d messages", n)
	}
	if u := r.unreported(t); len(u) != 1 {
		t.Fatalf("unreported %v after a failed digest, want the alert kept", u)
	}
	// An alert arriving meanwhile waits for the next digest.
	r.insert(t, tick.Add(5*time.Second), account.Alert{Resource: "203.0.113.10", Watched: "203.0.113.0/24", List: "l1", Lists: []string{"l1"}})
	r.at(t, tick.Add(9*time.Second), false)
	r.at(t, tick.Add(10*time.Second), true) // retry 1 (10s): both fail again
	r.at(t, tick.Add(29*time.Second), false)
	r.at(t, tick.Add(30*time.Second), true) // retry 2 (20s): mail goes, webhook fails
	if n := len(r.mail.messages()); n != 1 {
		t.Fatalf("%d messages after retry 2, want 1", n)
	}
	if u := r.unreported(t); len(u) != 2 {
		t.Fatalf("unreported %v while the webhook is pending, want both", u)
	}
	r.at(t, tick.Add(69*time.Second), false)
	r.at(t, tick.Add(70*time.Second), true) // retry 3 (40s = retry_max): webhook goes
	if n := len(r.mail.messages()); n != 1 {
		t.Errorf("%d messages: the delivered e-mail was sent again", n)
	}
	hits, got := r.hook.state()
	if hits != 4 || len(got) != 1 || len(got[0].payload.Alerts) != 1 || got[0].payload.Alerts[0].Resource != "203.0.113.9" || !got[0].sigOK || got[0].ts != tick.Add(70*time.Second).Unix() {
		t.Fatalf("webhook hits %d, deliveries %+v", hits, got)
	}
	if u := r.unreported(t); !slices.Equal(u, []string{"203.0.113.10"}) {
		t.Fatalf("unreported %v, want only the later alert", u)
	}
	r.at(t, tick.Add(5*time.Minute), true)
	if msgs := r.mail.messages(); len(msgs) != 2 || !strings.Contains(parseMIME(t, msgs[1].data).text, "203.0.113.10") {
		t.Fatalf("the later alert's digest did not come")
	}
	if u := r.unreported(t); len(u) != 0 {
		t.Errorf("unreported %v", u)
	}
}

func TestPrivateWebhookRefused(t *testing.T) {
	r := newRig(t, false)
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/x", false},
		{"http://[::1]/x", false},
		{"http://10.1.2.3/x", false},
		{"http://169.254.169.254/latest", false},
		{"http://100.64.0.1/", false},
		{"http://[fd00::1]/", false},
		{"http://[::ffff:192.168.1.1]/", false},
		{"http://localhost:9000/", false},
		{"ftp://hooks.example.com/", false},
		{"https://hooks.example.com/x", true},
		{"http://93.184.215.14/hook", true},
	} {
		err := r.n.CheckWebhookURL(tc.url)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, account.ErrInvalid)) {
			t.Errorf("CheckWebhookURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
	// The dialer refuses the loopback receiver even when the URL passed
	// (as a name resolving to it would).
	resp, err := r.n.http.Post(r.hook.srv.URL, "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrPrivateTarget) {
		t.Errorf("dial loopback: %v, want ErrPrivateTarget", err)
	}

	// In a digest: e-mail goes, the webhook is refused for good (not
	// retried), the alert is reported since the e-mail carried it.
	r.insert(t, t0, account.Alert{Resource: "192.0.2.1", Watched: "192.0.2.1", List: "l1", Lists: []string{"l1"}})
	r.run(t)
	tick := time.Date(2026, 12, 7, 12, 5, 0, 0, time.UTC)
	r.at(t, tick, true)
	if hits, _ := r.hook.state(); hits != 0 || len(r.mail.messages()) != 1 || len(r.unreported(t)) != 0 {
		t.Fatalf("hook hits %d, messages %d, unreported %v", hits, len(r.mail.messages()), r.unreported(t))
	}
	// Webhook only: refused, so nothing carried the alert: it stays.
	if _, err := r.store.PutSettings(context.Background(), r.acct.ID, account.Settings{Recipients: []string{"owner@example.com"}, WebhookURL: r.hook.srv.URL}); err != nil {
		t.Fatal(err)
	}
	r.insert(t, tick, account.Alert{Resource: "192.0.2.2", Watched: "192.0.2.2", List: "l1", Lists: []string{"l1"}})
	r.at(t, tick.Add(5*time.Minute), true)
	if hits, _ := r.hook.state(); hits != 0 || len(r.mail.messages()) != 1 || !slices.Equal(r.unreported(t), []string{"192.0.2.2"}) {
		t.Fatalf("hook hits %d, messages %d, unreported %v", hits, len(r.mail.messages()), r.unreported(t))
	}
}

func TestTestEmailAndHeaderInjection(t *testing.T) {
	r := newRig(t, true)
	ctx := context.Background()
	if err := r.n.TestEmail(ctx, r.acct, []string{"owner@example.com"}); err != nil {
		t.Fatal(err)
	}
	msgs := r.mail.messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].to, []string{"owner@example.com"}) {
		t.Fatalf("messages %+v", msgs)
	}
	p := parseMIME(t, msgs[0].data)
	if p.hdr.Get("Subject") != "netwarden test e-mail" || !strings.Contains(p.text, "https://dash.example.net/ui/") {
		t.Errorf("test e-mail %q\n%s", p.hdr.Get("Subject"), p.text)
	}
	// One test e-mail per notify.test_email_every (30s) per account.
	if err := r.n.TestEmail(ctx, r.acct, []string{"owner@example.com"}); !errors.Is(err, account.ErrQuota) {
		t.Errorf("second test e-mail at once: %v, want ErrQuota", err)
	}
	if err := r.n.TestEmail(ctx, account.Account{ID: r.acct.ID + 1, Email: "b@example.com"}, []string{"b@example.com"}); err != nil {
		t.Errorf("another account's test e-mail: %v", err)
	}
	r.clk.set(t0.Add(30 * time.Second))
	if err := r.n.TestEmail(ctx, r.acct, []string{"owner@example.com"}); err != nil {
		t.Errorf("test e-mail 30s later: %v", err)
	}
	if n := len(r.mail.messages()); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
	// Recipients that would add headers or recipients are refused before
	// anything is sent, whatever the stored settings hold.
	for i, to := range []string{
		"owner@example.com\r\nBcc: attacker@evil.example",
		"owner@example.com\nSubject: x",
		"Owner <owner@example.com>",
		"owner@example.com, attacker@evil.example",
	} {
		r.clk.set(t0.Add(time.Duration(i+2) * time.Minute))
		if err := r.n.TestEmail(ctx, r.acct, []string{to}); err == nil || errors.Is(err, account.ErrQuota) {
			t.Errorf("TestEmail to %q: %v, want a refusal", to, err)
		}
	}
	if n := len(r.mail.messages()); n != 3 {
		t.Errorf("%d messages after refused recipients, want 3", n)
	}
	// A server without SMTP: ErrNotConfigured.
	off := New(Config{}, r.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := off.TestEmail(ctx, r.acct, []string{"owner@example.com"}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("no smtp: %v", err)
	}
	// Wrong SMTP password: a delivery error.
	cfg := r.n.cfg
	cfg.SMTP.PasswordFile, cfg.SMTP.Password = "", "wrong"
	bad := New(cfg, r.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := bad.TestEmail(ctx, r.acct, []string{"owner@example.com"}); !errors.Is(err, ErrDelivery) {
		t.Errorf("wrong password: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"smtp", func(c *Config) { c.SMTP.Host, c.SMTP.From = "mail.example.com", "netwarden <a@example.com>" }, true},
		{"smtp without from", func(c *Config) { c.SMTP.Host = "mail.example.com" }, false},
		{"from with CRLF", func(c *Config) { c.SMTP.Host, c.SMTP.From = "mail.example.com", "a@example.com\r\nBcc: b@example.com" }, false},
		{"bad starttls", func(c *Config) {
			c.SMTP.Host, c.SMTP.From, c.SMTP.StartTLS = "m.example.com", "a@example.com", "sometimes"
		}, false},
		{"password without user", func(c *Config) { c.SMTP.Host, c.SMTP.From, c.SMTP.Password = "m.example.com", "a@example.com", "x" }, false},
		{"relative public url", func(c *Config) { c.PublicURL = "dash.example.com" }, false},
		{"tiny interval", func(c *Config) { c.Interval = time.Millisecond }, false},
		{"retry max below min", func(c *Config) { c.RetryMin, c.RetryMax = time.Minute, time.Second }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			tc.mutate(&c)
			c.Defaults()
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestSMTPPoliciesAndTimeouts(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	plain := startSMTPServer(t, false)
	base := func(port int) Config {
		c := Config{SMTP: SMTPConfig{Host: "127.0.0.1", Port: port, Username: plain.user, Password: plain.pass, From: "alerts@netwarden.example", Timeout: 300 * time.Millisecond}}
		c.Defaults()
		return c
	}
	acct := account.Account{ID: 1, Email: "owner@example.com"}

	// STARTTLS mandatory (the default) refuses a server without it, so
	// credentials never cross in clear text.
	if err := New(base(plain.addr.Port), nil, log).TestEmail(ctx, acct, []string{"owner@example.com"}); !errors.Is(err, ErrDelivery) {
		t.Errorf("mandatory STARTTLS against a plain server: %v", err)
	}
	if n := len(plain.messages()); n != 0 {
		t.Fatalf("%d messages sent without TLS", n)
	}
	// Opportunistic goes ahead without it, but never sends credentials
	// in clear text.
	c := base(plain.addr.Port)
	c.SMTP.StartTLS = StartTLSOpportunistic
	if err := New(c, nil, log).TestEmail(ctx, acct, []string{"owner@example.com"}); !errors.Is(err, ErrDelivery) {
		t.Errorf("opportunistic with credentials, no TLS: %v", err)
	}
	c.SMTP.Username, c.SMTP.Password = "", ""
	if err := New(c, nil, log).TestEmail(ctx, acct, []string{"owner@example.com"}); err != nil {
		t.Fatalf("opportunistic: %v", err)
	}
	if msgs := plain.messages(); len(msgs) != 1 || msgs[0].tls {
		t.Fatalf("opportunistic: %+v", msgs)
	}

	// A server that accepts and never answers: the timeout ends it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, cn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		mu.Lock()
		for _, cn := range conns {
			cn.Close()
		}
		mu.Unlock()
	})
	start := time.Now()
	err = New(base(ln.Addr().(*net.TCPAddr).Port), nil, log).TestEmail(ctx, acct, []string{"owner@example.com"})
	if !errors.Is(err, ErrDelivery) || time.Since(start) > 5*time.Second {
		t.Errorf("silent server: %v after %v, want ErrDelivery within the timeout", err, time.Since(start))
	}
}

// TestPayloadMatchesSchema checks the webhook body's fields against
// docs/schemas/notify-digest.json: every field declared, every required
// one present.
func TestPayloadMatchesSchema(t *testing.T) {
	type obj struct {
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
		Items      *obj                       `json:"items"`
	}
	b, err := os.ReadFile("../../docs/schemas/notify-digest.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema obj
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	var alerts obj
	if err := json.Unmarshal(schema.Properties["alerts"], &alerts); err != nil || alerts.Items == nil {
		t.Fatalf("schema alerts: %v", err)
	}
	p := Payload{Alerts: []PayloadAlert{
		{Alert: account.Alert{Lists: []string{"x"}}, URL: "https://x/ui/ip/1.2.3.4"},
		{Alert: account.Alert{Lists: []string{}, Type: account.TypeOutage, Outage: &account.Outage{ID: 1}}, URL: "https://x/ui/entity/asn/1"},
	}}
	body, _ := json.Marshal(p)
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	check := func(where string, o map[string]any, s obj) {
		t.Helper()
		for k := range o {
			if _, ok := s.Properties[k]; !ok {
				t.Errorf("%s: field %q not in the schema", where, k)
			}
		}
		for _, k := range s.Required {
			if _, ok := o[k]; !ok {
				t.Errorf("%s: required %q missing", where, k)
			}
		}
	}
	check("digest", got, schema)
	check("alert", got["alerts"].([]any)[0].(map[string]any), *alerts.Items)
	outageAlert := got["alerts"].([]any)[1].(map[string]any)
	check("outage alert", outageAlert, *alerts.Items)
	var outage obj
	if err := json.Unmarshal(alerts.Items.Properties["outage"], &outage); err != nil {
		t.Fatalf("schema outage: %v", err)
	}
	check("outage", outageAlert["outage"].(map[string]any), outage)
}

// hasHeaderLine reports whether raw (a message's header block) has a
// header field named name (any case).
func hasHeaderLine(raw, name string) bool {
	for _, l := range strings.Split(raw, "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") {
			return true
		}
	}
	return false
}

// TestOutageAlertsInDigestAndWebhook: outage alerts of the account's
// subscriptions join its digest (real SMTP, real webhook receiver) beside
// its blocklist alerts, rendered with the entity's name, the level, the
// condition and the value against the historical one, linking to the
// entity's dashboard page; then they are marked reported.
func TestOutageAlertsInDigestAndWebhook(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, true)
	for _, e := range [][2]string{{"country", "US"}, {"asn", "3307"}} {
		if _, _, err := r.store.Subscribe(ctx, r.acct.ID, e[0], e[1]); err != nil {
			t.Fatal(err)
		}
	}
	r.insert(t, t0.Add(20*time.Second), account.Alert{Resource: "192.0.2.7", Watched: "192.0.2.0/24", List: "spamhaus-drop", Lists: []string{"spamhaus-drop"}})
	at := t0.Add(-10 * time.Minute).Unix()
	n, err := r.store.AddOutageAlerts(ctx, []account.Outage{
		{ID: 11, Datasource: "bgp", EntityType: "country", EntityCode: "US", EntityName: "United States of America", Time: at,
			Level: "critical", Condition: "< historical * 0.5", Value: 40, HistoryValue: 100, Method: "median", Window: 86400},
		{ID: 12, Datasource: "ping-slash24", EntityType: "asn", EntityCode: "3307", EntityName: "AS3307 (Broadnet AS)", Time: at + 600,
			Level: "normal", Condition: ">= historical * 0.8", Value: 97.5, HistoryValue: 98, Method: "median", Window: 7 * 86400},
		{ID: 13, Datasource: "bgp", EntityType: "country", EntityCode: "DE", EntityName: "Germany", Time: at, Level: "critical"}, // not subscribed
	})
	if err != nil || n != 2 {
		t.Fatalf("stored %d outage rows (%v), want 2", n, err)
	}
	r.run(t)
	tick := time.Date(2026, 12, 7, 12, 5, 0, 0, time.UTC)
	r.at(t, tick, true)

	msgs := r.mail.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	p := parseMIME(t, msgs[0].data)
	if got := p.hdr.Get("Subject"); got != "netwarden: 3 new alerts: 1 on your watched addresses, 2 outages on your subscriptions" {
		t.Errorf("Subject %q", got)
	}
	for _, want := range []string{
		"United States of America (country US): critical on bgp (2026-12-07 11:50:30Z)",
		"value 40 < historical * 0.5, historical 100 (median over 1d)",
		"https://dash.example.net/ui/entity/country/US",
		"AS3307 (Broadnet AS) (asn 3307): recovered on ping-slash24",
		"value 97.50 >= historical * 0.8, historical 98 (median over 7d)",
		"https://dash.example.net/ui/ip/192.0.2.7", // the blocklist alert too
	} {
		if !strings.Contains(p.text, want) {
			t.Errorf("text part lacks %q:\n%s", want, p.text)
		}
	}
	if strings.Contains(p.text, "Germany") {
		t.Errorf("an unsubscribed outage in the digest:\n%s", p.text)
	}
	for _, want := range []string{`<a href="https://dash.example.net/ui/entity/country/US">United States of America</a>`, "<td>&lt; historical * 0.5</td>", `<a href="https://dash.example.net/ui/ip/192.0.2.7">`} {
		if !strings.Contains(p.html, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, p.html)
		}
	}

	_, got := r.hook.state()
	if len(got) != 1 || !got[0].sigOK || len(got[0].payload.Alerts) != 3 {
		t.Fatalf("webhook deliveries %+v", got)
	}
	var outages []PayloadAlert
	for _, a := range got[0].payload.Alerts {
		if a.Type == account.TypeOutage {
			outages = append(outages, a)
		}
	}
	if len(outages) != 2 || outages[0].Outage == nil || outages[0].Outage.ID != 11 || outages[0].Outage.Level != "critical" ||
		outages[0].URL != "https://dash.example.net/ui/entity/country/US" || outages[1].Outage.EntityName != "AS3307 (Broadnet AS)" {
		t.Errorf("webhook outage alerts %+v", outages)
	}
	if u := r.unreported(t); len(u) != 0 {
		t.Errorf("unreported after delivery: %v", u)
	}
}

// TestDigestSubject: the subject counts each kind of alert, from numbers
// only.
func TestDigestSubject(t *testing.T) {
	for _, tc := range []struct {
		blocklist, outages int
		want               string
	}{
		{1, 0, "netwarden: 1 new alert on your watched addresses"},
		{2, 0, "netwarden: 2 new alerts on your watched addresses"},
		{0, 1, "netwarden: 1 new outage alert on your subscriptions"},
		{0, 3, "netwarden: 3 new outage alerts on your subscriptions"},
		{2, 1, "netwarden: 3 new alerts: 2 on your watched addresses, 1 outage on your subscriptions"},
	} {
		if got := digestSubject(tc.blocklist, tc.outages); got != tc.want {
			t.Errorf("digestSubject(%d, %d) = %q, want %q", tc.blocklist, tc.outages, got, tc.want)
		}
	}
}
