package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/broker"
)

// TestAlertsKillNineBinary runs the real binary on real list runs with
// an account watching a set of /8s, SIGKILLs it several times while it
// matches, restarts it, and checks that the stored alerts are exactly
// one per (resource, list) addition inside the watched ranges — none
// lost, none doubled — and that all of them reach the alert topic.
func TestAlertsKillNineBinary(t *testing.T) {
	needShared(t)
	if testing.Short() {
		t.Skip("runs the binary")
	}
	rs := []listRun{runs[4], runs[5], runs[6], runs[7]} // DSHIELD, THREATFOX-IP, TOR-EXIT, FEODO
	want := expectedChanges(t, rs)

	// Watch /8s until about 6,000 additions fall inside them (alert
	// queries count up to 10,000).
	perOctet := map[int]int{}
	for _, c := range want {
		if p, err := netip.ParsePrefix(prefixText(c.res)); err == nil && c.op == "add" && p.Addr().Is4() && p.Bits() >= 8 {
			perOctet[int(p.Addr().As4()[0])]++
		}
	}
	var watched []netip.Prefix
	total := 0
	for o := 1; o < 224; o++ {
		if n := perOctet[o]; n > 0 && total+n <= 6000 {
			total += n
			watched = append(watched, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(o)}), 8))
		}
	}
	wantN := map[string]int{}
	for _, c := range want {
		p, err := netip.ParsePrefix(prefixText(c.res))
		if err != nil || c.op != "add" {
			continue
		}
		if slices.ContainsFunc(watched, func(w netip.Prefix) bool { return w.Overlaps(p) }) {
			wantN[c.res+" "+c.list]++
		}
	}
	expected := 0
	for _, n := range wantN {
		expected += n
	}
	if expected < 500 {
		t.Fatalf("only %d expected alerts", expected)
	}

	// The first start (to import the watchlist) needs one feed to run at
	// all: a one-version list of a documentation address nobody watches.
	dummy := t.TempDir()
	if err := os.WriteFile(filepath.Join(dummy, "20200101T000000Z.txt"), []byte("2001:db8::1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	absShared, _ := filepath.Abs(sharedBlocklists)
	rel, err := filepath.Rel(absShared, dummy) // newServer joins feed dirs to the shared path
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, []listRun{{list: "DUMMY", dir: rel, kind: "ip", format: "plain"}}, "processor: {flush_interval: 100ms, flush_rows: 2000, poll_records: 200}")
	cmd := exec.Command(s.bin, "account", "create", "--email", "kill@example.com", "--plan", "ENTERPRISE", "--json", "--config", filepath.Base(s.cfgPath))
	cmd.Dir = filepath.Dir(s.cfgPath)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("account create: %v", err)
	}
	var created struct {
		Account struct {
			ID account.ID `json:"id"`
		} `json:"account"`
		Key string `json:"key"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		t.Fatalf("account create output %q: %v", out, err)
	}
	s.start()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if code, err := s.get("/readyz", nil); err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready within 1m")
		}
	}
	var body strings.Builder
	for _, w := range watched {
		fmt.Fprintln(&body, w)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.http+"/v1/alerts/watchlist", strings.NewReader(body.String()))
	req.Header.Set("X-Auth-Token", created.Key)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("import: %d %s", resp.StatusCode, rb)
	}
	s.stop()

	// Now the lists: append the feeds to the config.
	abs, _ := filepath.Abs(sharedBlocklists)
	f, err := os.OpenFile(s.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		fmt.Fprintf(f, "  - {name: %s, kind: %s, format: %s, source: %q, every: 1h}\n", r.list, r.kind, r.format, filepath.Join(abs, r.dir))
	}
	f.Close()

	dbPath := filepath.Join(s.dataDir, "state", "netwarden.db")
	stored := func() []account.Alert {
		ac := account.Config{Path: dbPath}
		ac.Defaults()
		st, err := account.Open(ac)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var all []account.Alert
		for page := 1; page <= 10; page++ {
			as, _, err := st.Alerts(context.Background(), created.Account.ID, account.AlertFilter{Page: page, Items: 1000})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, as...)
			if len(as) < 1000 {
				break
			}
		}
		return all
	}
	counts := func(as []account.Alert) map[string]int {
		m := map[string]int{}
		for _, a := range as {
			if a.Kind != account.KindListed {
				t.Errorf("alert %+v: kind %s, want listed", a, a.Kind)
			}
			m[a.Resource+" "+a.List]++
		}
		return m
	}
	r := rand.New(rand.NewPCG(4, 4))
	midway := 0
	for round := range 4 {
		s.start()
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) && s.metric("netwarden_alerts_raised_total") <= 0 {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(r.IntN(150)) * time.Millisecond)
		s.kill()
		got := counts(stored())
		n := 0
		for k, v := range got {
			n += v
			if v > wantN[k] {
				t.Fatalf("round %d: %d alerts for %s, want at most %d (doubled or unexpected)", round, v, k, wantN[k])
			}
		}
		t.Logf("round %d: SIGKILL with %d of %d alerts stored", round, n, expected)
		if n > 0 && n < expected {
			midway++
		}
	}
	if midway == 0 {
		t.Fatal("no kill landed mid-matching; the test proved nothing")
	}
	s.start()
	s.waitIdle(5 * time.Minute)
	final := stored()
	got := counts(final)
	for k, v := range wantN {
		if got[k] != v {
			t.Errorf("%s: %d alerts, want %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if wantN[k] == 0 {
			t.Errorf("%s: %d unexpected alerts", k, v)
		}
	}
	// Every stored alert reaches the topic (at least once).
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", s.kport)), kgo.ConsumeTopics(broker.TopicAlerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	for len(ids) < len(final) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			var e struct {
				ID int64 `json:"id"`
			}
			if json.Unmarshal(rec.Value, &e) == nil {
				ids[e.ID] = true
			}
		})
	}
	cancel()
	cl.Close()
	for _, a := range final {
		if !ids[a.ID] {
			t.Errorf("alert %d is not on %s", a.ID, broker.TopicAlerts)
		}
	}
	s.stop()
	t.Logf("%d alerts stored exactly once over %d kills mid-matching, all on the topic", len(final), midway)
}

// prefixText makes a resource text a prefix text (hosts get /32 or /128).
func prefixText(res string) string {
	if strings.Contains(res, "/") {
		return res
	}
	if a, err := netip.ParseAddr(res); err == nil {
		return netip.PrefixFrom(a, a.BitLen()).String()
	}
	return res
}
