package outage_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/stream/outage"
)

// seedBroker makes clients of a broker known by its address (the child
// process of TestKillRestart).
type seedBroker string

func (s seedBroker) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(string(s))}, opts...)...)
}

// fileTap appends each tapped alert id to a file, synced before it
// returns (what a real tap acknowledges is durable).
type fileTap struct {
	mu sync.Mutex
	f  *os.File
}

func (t *fileTap) OnOutageAlerts(_ context.Context, als []outage.Alert) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, a := range als {
		fmt.Fprintf(&b, "%d\n", a.ID)
	}
	if _, err := t.f.WriteString(b.String()); err != nil {
		return err
	}
	return t.f.Sync()
}

// killChild runs the service in a child process until it is killed.
func killChild(t *testing.T) {
	cfg := testConfig(os.Getenv("OUTAGE_KILL_DB"))
	cfg.MaxBatch = 500 // many commits: kills land between and inside them
	store, err := outage.OpenStore(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(os.Getenv("OUTAGE_KILL_TAP"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := os.WriteFile(os.Getenv("OUTAGE_KILL_TAP")+".ready", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	svc := outage.NewService(cfg, seedBroker(os.Getenv("OUTAGE_KILL_BROKER")), store, nil, &fileTap{f: f}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := svc.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestKillRestart kills the service (SIGKILL, a child process) at random
// moments while it consumes, restarting it each time: the store ends
// with exactly the reference's alerts (none lost, none doubled), every
// alert was tapped and published at least once, and each tap call that
// returned survived (at-least-once: repeats only of the last calls).
func TestKillRestart(t *testing.T) {
	if os.Getenv("OUTAGE_KILL_CHILD") == "1" {
		killChild(t)
		return
	}
	if testing.Short() {
		t.Skip("kill test runs child processes")
	}
	dir := t.TempDir()
	brk := startBroker(t, 4)
	pts := genPoints(5, 100, 400)
	cfg := testConfig(filepath.Join(dir, "outage.db"))
	want, _ := reference(t, cfg, pts)
	publish(t, brk, pts)
	tapPath := filepath.Join(dir, "tapped.txt")

	r := rand.New(rand.NewPCG(9, 9))
	kills := 0
	var last int64
	for round := 0; ; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillRestart$", "-test.count=1")
		cmd.Env = append(os.Environ(), "OUTAGE_KILL_CHILD=1", "OUTAGE_KILL_DB="+cfg.Path, "OUTAGE_KILL_TAP="+tapPath,
			"OUTAGE_KILL_BROKER="+brk.Seeds()[0])
		cmd.Stderr = os.Stderr
		os.Remove(tapPath + ".ready")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := consumed(t, cfg.Path) == int64(len(pts))
		if !done && round < 10 {
			time.Sleep(time.Duration(300+r.IntN(1200)) * time.Millisecond)
			cmd.Process.Kill()
			cmd.Wait()
			t.Logf("round %d: consumed %d of %d", round, consumed(t, cfg.Path), len(pts))
			// A kill counts when it landed after progress and before the end.
			if n := consumed(t, cfg.Path); n > last && n < int64(len(pts)) {
				kills++
				last = n
			}
			continue
		}
		// Last round: let it finish and deliver, then stop it cleanly.
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(tapPath + ".ready"); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		for consumed(t, cfg.Path) < int64(len(pts)) || tappedCount(t, tapPath) < len(want) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("after %d rounds: consumed %d of %d, tapped %d ids", round, consumed(t, cfg.Path), len(pts), tappedCount(t, tapPath))
			}
			time.Sleep(50 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
		break
	}
	if kills == 0 {
		t.Fatal("no kill landed while the service was consuming: the test checked nothing")
	}
	t.Logf("%d kills mid-stream (%d records)", kills, len(pts))
	store := openStore(t, cfg.Path)
	stored := storedAlerts(t, store)
	sameAlerts(t, "stored after kills", plain(stored), want)
	tapped := tappedIDs(t, tapPath)
	pub := map[int64]bool{}
	for _, rc := range consumeAlertTopic(t, brk) {
		pub[rc.ID] = true
	}
	for _, a := range stored {
		if tapped[a.ID] == 0 {
			t.Errorf("alert %d never tapped", a.ID)
		}
		if !pub[a.ID] {
			t.Errorf("alert %d never published", a.ID)
		}
	}
	if len(tapped) != len(stored) {
		t.Errorf("tap saw %d distinct ids, store has %d alerts", len(tapped), len(stored))
	}
}

func consumed(t *testing.T, path string) int64 {
	t.Helper()
	s := openStore(t, path)
	st, err := s.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range st.Offsets {
		n += o
	}
	return n
}

func tappedIDs(t *testing.T, path string) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			continue // a line cut by the kill
		}
		out[id]++
	}
	return out
}

func tappedCount(t *testing.T, path string) int { return len(tappedIDs(t, path)) }
