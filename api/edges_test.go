package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/stream/live"
)

// jsonAnswer checks that resp is JSON (header and body) and returns the body.
func jsonAnswer(t *testing.T, what string, resp *http.Response) map[string]any {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: read body: %v", what, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: %d Content-Type %q, body %q", what, resp.StatusCode, ct, b)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Errorf("%s: %d body is not a JSON object: %q", what, resp.StatusCode, b)
	}
	return v
}

func TestEveryAnswerIsJSON(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := api.Config{Addr: "127.0.0.1:0", MaxBatchBytes: 1 << 10}
	cfg.Defaults()
	// The live state is real (and empty); history, SQL, lists and the
	// checker are absent and answer 503.
	hs := httptest.NewServer(api.New(cfg, api.Deps{Live: live.New()}, log).Handler())
	defer hs.Close()
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	big := `{"ips": ["` + strings.Repeat("1", 2<<10) + `"]}`
	tests := []struct {
		method, path, body string
		code               int
		location           string // for redirects
		errHas             string // a phrase the error must contain
	}{
		{"GET", "/lists/", "", 301, "/lists", "moved"},
		{"GET", "//lists", "", 301, "/lists", "moved"},
		{"GET", "/healthz/?x=1", "", 301, "/healthz?x=1", "moved"},
		{"HEAD", "/healthz/", "", 301, "/healthz", ""},
		{"POST", "/badip_batch/", `{"ips":["1.2.3.4"]}`, 308, "/badip_batch", "moved"},
		{"POST", "/admin/check/", "", 308, "/admin/check", "moved"},
		{"GET", "/metadata//changes/ip/1.2.3.4?items=5", "", 301, "/metadata/changes/ip/1.2.3.4?items=5", "moved"},
		{"GET", "//evil.example/lists", "", 404, "", "no such endpoint"},
		{"GET", "/nope", "", 404, "", "no such endpoint"},
		{"GET", "/LISTS", "", 404, "", "no such endpoint"},
		{"GET", "/badip", "", 404, "", "no such endpoint"},
		{"GET", "/", "", 404, "", "no such endpoint"},
		{"DELETE", "/lists", "", 405, "", "not allowed"},
		{"PUT", "/badip/1.2.3.4", "", 405, "", "not allowed"},
		{"POST", "/healthz", "", 405, "", "not allowed"},
		{"HEAD", "/sql", "", 405, "", ""}, // HEAD only where GET is routed
		{"OPTIONS", "/badip_batch", "", 405, "", "not allowed"},
		{"GET", "/badip/", "", 400, "", "not an IP"},
		{"GET", "/badip/1.2.3.4/", "", 400, "", ""},
		{"GET", "/badip/..%2flists", "", 400, "", ""},
		{"GET", "/badip/1.2.3.4", "", 404, "", ""},
		{"GET", "/lists", "", 503, "", "not available"},
		{"GET", "/metadata/changes/ip/1.2.3.4", "", 503, "", "not available"},
		{"POST", "/sql", "SELECT 1", 503, "", "not available"},
		{"POST", "/badip_batch", big, 413, "", "body exceeds 1 KiB (http.max_batch_bytes)"},
		{"POST", "/badip_batch", `{"ip": ["1.2.3.4"]}`, 400, "", `expected {"ips": [...]}: unknown field "ip"`},
		{"POST", "/badip_batch", `["1.2.3.4"]`, 400, "", `expected {"ips": [...]}: got array where an object belongs`},
		{"POST", "/badip_batch", `{"ips": "1.2.3.4"}`, 400, "", `expected {"ips": [...]}: got string where a list of strings belongs`},
		{"POST", "/badip_batch", `{"ips": [1]}`, 400, "", `expected {"ips": [...]}`},
		{"POST", "/badip_batch", `{"ips": [`, 400, "", `expected {"ips": [...]}: the JSON ends too early`},
		{"POST", "/badip_batch", `{"ips": [}`, 400, "", `expected {"ips": [...]}: invalid JSON at byte`},
		{"POST", "/badip_batch", ``, 400, "", `expected {"ips": [...]}: the body is empty`},
		{"POST", "/badip_batch", `{"ips": []} x`, 400, "", `expected {"ips": [...]}`},
		{"POST", "/baddomain_batch", `{"ips": ["a.b"]}`, 400, "", `expected {"domains": [...]}: unknown field "ips"`},
		{"POST", "/badip_batch", `{"ips": ["1.2.3.4"]}`, 200, "", ""},
	}
	for _, tt := range tests {
		what := tt.method + " " + tt.path
		req, err := http.NewRequest(tt.method, hs.URL+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if resp.StatusCode != tt.code {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, tt.code)
		}
		if tt.location != "" && resp.Header.Get("Location") != tt.location {
			t.Errorf("%s: Location %q, want %q", what, resp.Header.Get("Location"), tt.location)
		}
		if tt.method == "HEAD" {
			resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s: Content-Type %q", what, ct)
			}
			continue
		}
		v := jsonAnswer(t, what, resp)
		msg, _ := v["error"].(string)
		if tt.code >= 300 && msg == "" && v["response"] == nil { // 404 {"response":[]} is /badip's "clean"
			t.Errorf("%s: %d without an error message: %v", what, tt.code, v)
		}
		if !strings.Contains(msg, tt.errHas) {
			t.Errorf("%s: error %q does not say %q", what, msg, tt.errHas)
		}
		if strings.Contains(msg, "json:") || strings.Contains(msg, "[]string") || strings.Contains(msg, "Go value") {
			t.Errorf("%s: error in Go terms: %q", what, msg)
		}
	}
}

// TestSlowBodyIs408 dribbles a request body over a real TCP connection
// slower than the server's read timeout allows.
func TestSlowBodyIs408(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := api.Config{Addr: "127.0.0.1:0", ReadTimeout: 300 * time.Millisecond}
	cfg.Defaults()
	srv := api.New(cfg, api.Deps{Live: live.New()}, log)
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"ips": ["1.2.3.4", "5.6.7.8", "9.9.9.9"]}`
	if _, err := io.WriteString(conn, "POST /badip_batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Content-Length: "+itoa(len(body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	writer := make(chan struct{})
	go func() { // one byte every 100 ms: the whole body would take 4 s
		defer close(writer)
		for i := 0; i < len(body); i++ {
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	took := time.Since(start)
	v := jsonAnswer(t, "slow body", resp)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("slow body: %d %v, want 408", resp.StatusCode, v)
	}
	if msg, _ := v["error"].(string); !strings.Contains(msg, "http.read_timeout") {
		t.Errorf("slow body: error %q does not name http.read_timeout", msg)
	}
	if took > 3*time.Second {
		t.Errorf("answer after %v: the server waited for the whole body", took)
	}
	conn.Close()
	<-writer
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
