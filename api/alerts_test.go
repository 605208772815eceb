package api_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/stream/live"
)

// TestAlertsAPI lists, filters, pages and acknowledges alerts over real
// HTTP on a real store, each key seeing only its own account's alerts.
func TestAlertsAPI(t *testing.T) {
	ctx := context.Background()
	cfg := account.Config{Path: filepath.Join(t.TempDir(), "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	srv := api.New(ac, api.Deps{Live: live.New(), Accounts: store, Alerts: store}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); store.Close() })

	a1, key1, _ := store.Create(ctx, "one@example.com", "DEVELOPER", false)
	a2, key2, _ := store.Create(ctx, "two@example.com", "DEVELOPER", false)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id account.ID, kind account.AlertKind, res, list string, h int) account.Alert {
		return account.Alert{Account: id, Kind: kind, Created: t0.Add(time.Duration(h) * time.Hour), Detected: t0.Add(time.Duration(h) * time.Hour),
			Resource: res, Watched: res, List: list, Lists: []string{list}, SourcePartition: 0, SourceOffset: int64(h)}
	}
	var stored []account.Alert
	if err := store.Tx(ctx, func(tx *sql.Tx) error {
		stored, err = account.InsertAlerts(ctx, tx, []account.Alert{
			mk(a1.ID, account.KindListed, "192.0.2.7", "DSHIELD", 1),
			mk(a1.ID, account.KindListed, "198.51.100.0/24", "SPAMHAUS-DROP", 2),
			mk(a1.ID, account.KindCleared, "192.0.2.7", "DSHIELD", 3),
			mk(a1.ID, account.KindListed, "2001:db8::1", "TOR-EXIT", 4),
			mk(a2.ID, account.KindListed, "192.0.2.7", "DSHIELD", 5),
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ids := func(a answer) []float64 {
		var out []float64
		for _, x := range a.body["alerts"].([]any) {
			out = append(out, x.(map[string]any)["id"].(float64))
		}
		return out
	}
	id := func(i int) float64 { return float64(stored[i].ID) }
	for _, tc := range []struct {
		name, query, key string
		code             int
		want             []float64
		total            float64
	}{
		{"all, newest first", "", key1, 200, []float64{id(3), id(2), id(1), id(0)}, 4},
		{"other account", "", key2, 200, []float64{id(4)}, 1},
		{"ip inside a listed CIDR", "ip=198.51.100.9", key1, 200, []float64{id(1)}, 1},
		{"cidr containing a listed ip", "ip=192.0.2.0/24", key1, 200, []float64{id(2), id(0)}, 2},
		{"v6", "ip=2001:db8::/32", key1, 200, []float64{id(3)}, 1},
		{"kind", "kind=cleared", key1, 200, []float64{id(2)}, 1},
		{"list", "list=DSHIELD", key1, 200, []float64{id(2), id(0)}, 2},
		{"from/until RFC 3339", "from=2026-12-01T02:00:00Z&until=2026-12-01T03:00:00Z", key1, 200, []float64{id(2), id(1)}, 2},
		{"from Unix seconds", "from=" + strconv.FormatInt(t0.Add(4*time.Hour).Unix(), 10), key1, 200, []float64{id(3)}, 1},
		{"page 2", "items=3&page=2", key1, 200, []float64{id(0)}, 4},
		{"status", "status=acknowledged", key1, 200, nil, 0},
		{"bad ip", "ip=300.1.2.3", key1, 400, nil, 0},
		{"bad kind", "kind=nope", key1, 400, nil, 0},
		{"bad status", "status=nope", key1, 400, nil, 0},
		{"bad time", "from=yesterday", key1, 400, nil, 0},
		{"until before from", "from=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z", key1, 400, nil, 0},
		{"bad items", "items=0", key1, 400, nil, 0},
		{"page past the count cap", "items=1000&page=11", key1, 400, nil, 0},
		{"no key", "", "", 401, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := hs.URL + "/v1/alerts"
			if tc.query != "" {
				u += "?" + tc.query
			}
			a := call(t, http.MethodGet, u, tc.key)
			if a.code != tc.code {
				t.Fatalf("%d %v, want %d", a.code, a.body, tc.code)
			}
			if tc.code != 200 {
				if a.body["error"] == "" || a.body["error"] == nil {
					t.Errorf("error answer without a message: %v", a.body)
				}
				return
			}
			if got := ids(a); !equalF(got, tc.want) || a.body["total"] != tc.total {
				t.Errorf("ids %v total %v, want %v total %v", got, a.body["total"], tc.want, tc.total)
			}
		})
	}

	// Acknowledge: own alert → acknowledged; another account's → 404.
	ack := func(aid float64, key string) answer {
		return call(t, http.MethodPost, hs.URL+"/v1/alerts/"+strconv.FormatInt(int64(aid), 10)+"/ack", key)
	}
	if a := ack(id(0), key1); a.code != 200 || a.body["status"] != "acknowledged" {
		t.Fatalf("ack: %d %v", a.code, a.body)
	}
	if a := ack(id(0), key1); a.code != 200 || a.body["status"] != "acknowledged" {
		t.Fatalf("ack again: %d %v", a.code, a.body)
	}
	if a := ack(id(4), key1); a.code != 404 {
		t.Fatalf("ack of another account's alert: %d %v", a.code, a.body)
	}
	if a := ack(999999, key1); a.code != 404 {
		t.Fatalf("ack of a missing alert: %d %v", a.code, a.body)
	}
	if a := call(t, http.MethodPost, hs.URL+"/v1/alerts/abc/ack", key1); a.code != 400 {
		t.Fatalf("ack of a bad id: %d %v", a.code, a.body)
	}
	if a := call(t, http.MethodGet, hs.URL+"/v1/alerts?status=acknowledged", key1); !equalF(ids(a), []float64{id(0)}) {
		t.Fatalf("acknowledged filter: %v", a.body)
	}
	if a := call(t, http.MethodGet, hs.URL+"/v1/alerts?status=acknowledged", key2); len(ids(a)) != 0 {
		t.Fatalf("account two sees acknowledged alerts: %v", a.body)
	}
	if a, _ := store.Alert(ctx, a2.ID, stored[4].ID); a.Status != account.StatusNew {
		t.Fatalf("another account's alert changed: %+v", a)
	}
}

func equalF(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
