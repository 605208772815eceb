package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/notify"
)

// sink is a real SMTP server (no TLS, no auth) that keeps what it gets.
type sink struct {
	mu   sync.Mutex
	rcpt [][]string
}

type sinkSession struct {
	s  *sink
	to []string
}

func (x *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	if _, err := io.ReadAll(r); err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.rcpt = append(x.s.rcpt, x.to)
	x.s.mu.Unlock()
	return nil
}
func (x *sinkSession) Reset()        { x.to = nil }
func (x *sinkSession) Logout() error { return nil }

func startSink(t *testing.T) (*sink, int) {
	t.Helper()
	s := &sink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s, ln.Addr().(*net.TCPAddr).Port
}

func settingsStack(t *testing.T, smtpPort int) (*httptest.Server, *account.Store) {
	t.Helper()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "state", "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nc := notify.Config{PublicURL: "https://dash.example.net"}
	if smtpPort != 0 {
		nc.SMTP = notify.SMTPConfig{Host: "127.0.0.1", Port: smtpPort, From: "netwarden <alerts@netwarden.example>", StartTLS: notify.StartTLSNone}
	}
	nc.Defaults()
	if err := nc.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Accounts: store, Settings: store, Notifier: notify.New(nc, store, log)}, log)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); store.Close() })
	return hs, store
}

func send(t *testing.T, method, url, key, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, hdr: resp.Header}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&a.body); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, url, b)
	}
	return a
}

func recipientsOf(a answer) []string {
	var out []string
	rs, _ := a.body["recipients"].([]any)
	for _, r := range rs {
		s, _ := r.(string)
		out = append(out, s)
	}
	return out
}

func TestAlertSettingsAPI(t *testing.T) {
	ctx := context.Background()
	mails, port := startSink(t)
	hs, store := settingsStack(t, port)
	a, key, err := store.Create(ctx, "owner@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	_, keyB, err := store.Create(ctx, "other@example.net", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	_, keyFree, err := store.Create(ctx, "free@example.com", "FREE", false)
	if err != nil {
		t.Fatal(err)
	}
	u := hs.URL + "/v1/alerts/settings"

	got := send(t, "GET", u, key, "")
	secret, _ := got.body["webhook_secret"].(string)
	if got.code != 200 || got.body["email_enabled"] != true || !slices.Equal(recipientsOf(got), []string{"owner@example.com"}) || len(secret) != 64 {
		t.Fatalf("default settings: %d %v", got.code, got.body)
	}

	for _, tc := range []struct {
		name, key, body string
		code            int
		recips          []string
	}{
		{"comma string, other fields kept", key, `{"recipients": "owner@example.com, Ops@Example.COM"}`, 200, []string{"owner@example.com", "Ops@example.com"}},
		{"list", key, `{"recipients": ["owner@example.com"], "notify_cleared": true}`, 200, []string{"owner@example.com"}},
		{"over the plan", key, `{"recipients": ["a@example.com", "b@example.com", "c@example.com"]}`, 400, nil},
		{"header injection", key, `{"recipients": ["owner@example.com\r\nBcc: attacker@evil.example"]}`, 400, nil},
		{"display name", key, `{"recipients": ["Owner <owner@example.com>"]}`, 400, nil},
		{"owner-only plan", keyFree, `{"recipients": ["someone@example.com"]}`, 400, nil},
		{"private webhook", key, `{"webhook_url": "http://127.0.0.1:8080/hook"}`, 400, nil},
		{"metadata webhook", key, `{"webhook_url": "http://169.254.169.254/latest"}`, 400, nil},
		{"webhook with credentials", key, `{"webhook_url": "https://u:p@hooks.example.com/"}`, 400, nil},
		{"public webhook", key, `{"webhook_url": "https://hooks.example.com/netwarden"}`, 200, []string{"owner@example.com"}},
		{"secret unchanged", key, `{"webhook_secret": "` + secret + `"}`, 200, []string{"owner@example.com"}},
		{"secret changed", key, `{"webhook_secret": "00"}`, 400, nil},
		{"unknown field", key, `{"emails": true}`, 400, nil},
		{"not JSON", key, `recipients=a`, 400, nil},
		{"e-mail on without recipients", key, `{"recipients": [], "email_enabled": true}`, 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := send(t, "PUT", u, tc.key, tc.body)
			if got.code != tc.code {
				t.Fatalf("%d %v, want %d", got.code, got.body, tc.code)
			}
			if tc.code == 200 && !slices.Equal(recipientsOf(got), tc.recips) {
				t.Errorf("recipients %v, want %v", recipientsOf(got), tc.recips)
			}
		})
	}
	st, err := store.Settings(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !st.EmailEnabled || !st.NotifyCleared || st.WebhookURL != "https://hooks.example.com/netwarden" || st.WebhookSecret != secret || !slices.Equal(st.Recipients, []string{"owner@example.com"}) {
		t.Errorf("stored %+v", st)
	}
	// Another account sees its own settings only.
	if got := send(t, "GET", u, keyB, ""); !slices.Equal(recipientsOf(got), []string{"other@example.net"}) || got.body["webhook_url"] != "" {
		t.Errorf("account B sees %v", got.body)
	}
	if got := call(t, "GET", u, ""); got.code != 401 {
		t.Errorf("without a key: %d", got.code)
	}
	big := `{"recipients": "` + strings.Repeat("a", 64<<10) + `"}`
	if got := send(t, "PUT", u, key, big); got.code != 413 || got.body["error"] != "body exceeds 64 KiB (a fixed limit)" {
		t.Errorf("a body over 64 KiB: %d %v", got.code, got.body)
	}

	// The test e-mail goes out now, to the recipients.
	if got := send(t, "PUT", u, key, `{"recipients": "owner@example.com, ops@example.com"}`); got.code != 200 {
		t.Fatal(got.body)
	}
	got = send(t, "POST", hs.URL+"/v1/alerts/test-email", key, "")
	if got.code != 200 {
		t.Fatalf("test-email: %d %v", got.code, got.body)
	}
	if got := send(t, "POST", hs.URL+"/v1/alerts/test-email", key, ""); got.code != http.StatusTooManyRequests {
		t.Errorf("second test-email at once: %d %v", got.code, got.body)
	}
	mails.mu.Lock()
	rcpt := slices.Clone(mails.rcpt)
	mails.mu.Unlock()
	if len(rcpt) != 1 || !slices.Equal(rcpt[0], []string{"owner@example.com", "ops@example.com"}) {
		t.Errorf("SMTP server got %v", rcpt)
	}
}

func TestTestEmailWithoutSMTP(t *testing.T) {
	hs, store := settingsStack(t, 0)
	_, key, err := store.Create(context.Background(), "owner@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := send(t, "POST", hs.URL+"/v1/alerts/test-email", key, ""); got.code != http.StatusServiceUnavailable {
		t.Errorf("no SMTP: %d %v", got.code, got.body)
	}
}

func TestTestEmailServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	hs, store := settingsStack(t, port)
	_, key, err := store.Create(context.Background(), "owner@example.com", "DEVELOPER", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := send(t, "POST", hs.URL+"/v1/alerts/test-email", key, ""); got.code != http.StatusBadGateway {
		t.Errorf("SMTP down: %d %v", got.code, got.body)
	}
}
