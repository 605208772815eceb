package alerts_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/alerts"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/processor"
	"github.com/netwarden/netwarden/stream/watch"
)

// killWorld is what parent and child both derive from one seed: the
// accounts' watched entries (account i+1 watches entries[i]) and the
// changes.
func killWorld() (entries [][]netip.Prefix, cs []change.Change) {
	r := rand.New(rand.NewPCG(9, 9))
	entries = make([][]netip.Prefix, 4)
	for i := range entries {
		for range 60 {
			entries[i] = append(entries[i], randPrefix(r))
		}
	}
	for i := range 20_000 {
		op := change.Add
		if r.IntN(3) == 0 {
			op = change.Rem
		}
		cs = append(cs, change.Change{Time: time.Unix(1_700_000_000+int64(i), 0).UTC(), Op: op,
			List: fmt.Sprintf("L%d", r.IntN(3)), Key: resource.FromPrefix(randPrefix(r)).Key()})
	}
	return entries, cs
}

// TestMain runs the alerting child when asked (TestKillNineExactlyOnce).
func TestMain(m *testing.M) {
	if dir := os.Getenv("NETWARDEN_ALERTS_CHILD"); dir != "" {
		if err := child(dir, os.Getenv("NETWARDEN_ALERTS_FINISH") != ""); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// embeddedBroker starts the embedded broker on dir's log, as the binary does.
func embeddedBroker(ctx context.Context, dir string) (*broker.Broker, error) {
	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(dir, "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = 3
	return broker.Start(ctx, bc, quiet())
}

// child runs the embedded broker (on the parent's log), history,
// processor and alerter, as the binary does, until killed, or with
// finish until it has consumed and published everything.
func child(dir string, finish bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := quiet()
	brk, err := embeddedBroker(ctx, dir)
	if err != nil {
		return err
	}
	defer brk.Close()
	hc := history.Config{Dir: filepath.Join(dir, "history")}
	hc.Defaults()
	hist, err := history.Open(hc, log)
	if err != nil {
		return err
	}
	defer hist.Close()
	ac := account.Config{Path: filepath.Join(dir, "netwarden.db")}
	ac.Defaults()
	accounts, err := account.Open(ac)
	if err != nil {
		return err
	}
	defer accounts.Close()
	watched := watch.New()
	entries, _ := killWorld()
	for i, es := range entries {
		for _, e := range es {
			watched.Add(watch.Account(i+1), e)
		}
	}
	state := live.New()
	pc := processor.Config{FlushInterval: 30 * time.Millisecond, PollRecords: 40}
	pc.Defaults()
	proc := processor.New(pc, brk, hist, state, log)
	prod, err := brk.NewClient(kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer prod.Close()
	cfg := alerts.Config{}
	cfg.Defaults()
	al := alerts.New(cfg, accounts, watched, watch.New(), state, prod, broker.TopicAlerts, log)
	proc.SetTap(al)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- proc.Run(ctx) })
	wg.Go(func() { errs <- al.Run(ctx) })
	if finish {
		<-proc.Ready()
		for ctx.Err() == nil {
			lag, err := proc.Lag(ctx)
			if err == nil && lag == 0 {
				if un, err := accounts.Unpublished(ctx, 1); err == nil && len(un) == 0 {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}
	<-ctx.Done()
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestKillNineExactlyOnce kills (SIGKILL) a process running the real
// processor and alerter several times while it matches 20,000 changes,
// restarts it each time, and then compares the stored alerts with the
// reference: none lost, none doubled. The alert topic holds every stored
// alert (at least once; ids dedupe).
func TestKillNineExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	ctx := context.Background()
	brk, err := embeddedBroker(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ac := account.Config{Path: filepath.Join(dir, "netwarden.db")}
	ac.Defaults()
	accounts, err := account.Open(ac)
	if err != nil {
		t.Fatal(err)
	}
	entries, cs := killWorld()
	for i := range entries {
		if a, _, err := accounts.Create(ctx, fmt.Sprintf("k%d@example.com", i), "ENTERPRISE", false); err != nil || a.ID != account.ID(i+1) {
			t.Fatalf("account %d: %v %v", i+1, a.ID, err)
		}
	}
	accounts.Close()

	// The reference, as in TestMatchingAgainstReference (no mutes).
	wantN := map[string]int{}
	onLists := map[string]map[string]bool{}
	for _, c := range cs {
		ls := onLists[c.Key]
		if ls == nil {
			ls = map[string]bool{}
			onLists[c.Key] = ls
		}
		if c.Op == change.Rem {
			delete(ls, c.List)
			continue
		}
		if ls[c.List] {
			continue
		}
		ls[c.List] = true
		res, _ := c.Resource()
		for a, es := range entries {
			for _, w := range es {
				if w.Overlaps(res.Prefix) {
					wantN[fmt.Sprintf("%d %s %s", a+1, res, c.List)]++
					break
				}
			}
		}
	}

	prod, err := brk.NewClient(kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	for _, c := range cs {
		rs = append(rs, &kgo.Record{Topic: broker.TopicChanges, Key: []byte(c.Key), Value: change.Append(nil, c)})
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	brk.Close() // the children run it on the same log

	run := func(finish bool) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "NETWARDEN_ALERTS_CHILD="+dir)
		if finish {
			cmd.Env = append(cmd.Env, "NETWARDEN_ALERTS_FINISH=1")
		}
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	count := func() int {
		a, err := account.Open(ac)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		n := 0
		for id := range len(entries) {
			_, total, err := a.Alerts(ctx, account.ID(id+1), account.AlertFilter{Items: 1})
			if err != nil {
				t.Fatal(err)
			}
			n += total
		}
		return n
	}
	want := 0
	for _, v := range wantN {
		want += v
	}
	r := rand.New(rand.NewPCG(1, 2))
	midway := 0
	for round := 0; round < 6; round++ {
		cmd := run(false)
		time.Sleep(time.Duration(300+r.IntN(700)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		n := count()
		t.Logf("round %d: killed with %d of %d alerts stored", round, n, want)
		if n > 0 && n < want {
			midway++
		}
	}
	cmd := run(true)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("final run: %v", err)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("final run did not finish")
	}

	a, err := account.Open(ac)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	gotN := map[string]int{}
	var ids []account.ID
	for id := range len(entries) {
		ids = append(ids, account.ID(id+1))
	}
	p := &pipeline{t: t, accounts: a}
	stored := p.allAlerts(ids...)
	for _, al := range stored {
		gotN[fmt.Sprintf("%d %s %s", al.Account, al.Resource, al.List)]++
	}
	for k, v := range wantN {
		if gotN[k] != v {
			t.Errorf("%s: %d alerts, want %d (lost or doubled)", k, gotN[k], v)
		}
	}
	for k, v := range gotN {
		if wantN[k] == 0 {
			t.Errorf("%s: %d unexpected alerts", k, v)
		}
	}
	if midway == 0 {
		t.Fatal("no kill landed mid-matching; the test proved nothing")
	}
	if brk, err = embeddedBroker(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer brk.Close()
	evs := readTopic(t, brk, len(stored), 30*time.Second)
	for _, al := range stored {
		if _, ok := evs[al.ID]; !ok {
			t.Errorf("alert %d never reached the topic", al.ID)
		}
	}
	t.Logf("%d alerts stored exactly once over %d kills mid-matching; %d distinct on the topic", len(stored), midway, len(evs))
}
