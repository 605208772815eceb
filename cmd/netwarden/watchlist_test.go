package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestWatchlistSurvivesKill: the real binary imports a watchlist and a
// mute over HTTP, is killed with SIGKILL, and after a restart serves the
// same entries and counts (an import answers only after its rows are
// committed).
func TestWatchlistSurvivesKill(t *testing.T) {
	needShared(t)
	s := newServer(t, []listRun{runs[0]}, "")
	out, err := exec.Command(s.bin, "account", "create", "--email", "noc@example.net", "--plan", "FREE", "--json", "--config", s.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("account create: %v\n%s", err, out)
	}
	var created struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+s.http+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", created.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, b)
		}
		return resp.StatusCode, v
	}
	waitUp := func() {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if code, err := s.get("/readyz", nil); err == nil && code == 200 {
				return
			}
		}
		t.Fatal("server not ready within 1m")
	}

	s.start()
	waitUp()
	code, v := do("POST", "/v1/alerts/watchlist", "# ours\n192.0.2.0/25\n2001:db8::/64\n192.0.2.1\nbogus\n")
	if code != 200 || v["imported"] != 3.0 || v["watched"] != 129.0 || v["rejected_total"] != 1.0 {
		t.Fatalf("import: %d %v", code, v)
	}
	if code, v = do("POST", "/v1/alerts/mutes/198.51.100.0/24", ""); code != 201 {
		t.Fatalf("mute: %d %v", code, v)
	}
	s.kill()

	s.start()
	waitUp()
	code, v = do("GET", "/v1/alerts/watchlist", "")
	var got []string
	for _, e := range v["entries"].([]any) {
		got = append(got, e.(map[string]any)["entry"].(string))
	}
	if code != 200 || strings.Join(got, " ") != "192.0.2.0/25 192.0.2.1/32 2001:db8::/64" || v["watched"] != 129.0 || v["limit"] != 256.0 {
		t.Errorf("after kill and restart: %d %v", code, v)
	}
	if code, v = do("GET", "/v1/alerts/mutes/198.51.100.0/24", ""); code != 200 {
		t.Errorf("mute after restart: %d %v", code, v)
	}
	code, v = do("GET", "/v1/account", "")
	usage, _ := v["usage"].(map[string]any)
	if code != 200 || usage["watched"] != 129.0 || usage["watched_limit"] != 256.0 || usage["mutes"] != 1.0 {
		t.Errorf("account after restart: %d %v", code, v)
	}
	s.stop()
}
