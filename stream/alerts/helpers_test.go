package alerts_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
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

// pipeline is the real chain: embedded broker over TCP, history store,
// processor with the alerter as its tap, account store, publisher.
type pipeline struct {
	t        testing.TB
	dir      string
	brk      *broker.Broker
	hist     *history.Store
	accounts *account.Store
	state    *live.State
	proc     *processor.Processor
	alerter  *alerts.Alerter
	watched  *watch.Table
	muted    *watch.Table
	prod     *kgo.Client
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startPipeline(t testing.TB, watched, muted *watch.Table) *pipeline {
	t.Helper()
	dir := t.TempDir()
	log := quiet()
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{t: t, dir: dir, cancel: cancel, watched: watched, muted: muted}
	var err error
	if p.brk, err = embeddedBroker(ctx, dir); err != nil {
		t.Fatal(err)
	}
	hc := history.Config{Dir: filepath.Join(dir, "history")}
	hc.Defaults()
	if p.hist, err = history.Open(hc, log); err != nil {
		t.Fatal(err)
	}
	ac := account.Config{Path: filepath.Join(dir, "state", "netwarden.db")}
	ac.Defaults()
	if p.accounts, err = account.Open(ac); err != nil {
		t.Fatal(err)
	}
	p.state = live.New()
	pc := processor.Config{FlushInterval: 50 * time.Millisecond, PollRecords: 7}
	pc.Defaults()
	p.proc = processor.New(pc, p.brk, p.hist, p.state, log)
	if p.prod, err = p.brk.NewClient(kgo.ProducerLinger(0)); err != nil {
		t.Fatal(err)
	}
	cfg := alerts.Config{}
	cfg.Defaults()
	p.alerter = alerts.New(cfg, p.accounts, watched, muted, p.state, p.prod, broker.TopicAlerts, log)
	p.proc.SetTap(p.alerter)
	p.wg.Go(func() {
		if err := p.proc.Run(ctx); err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	p.wg.Go(func() {
		if err := p.alerter.Run(ctx); err != nil {
			t.Errorf("alerter: %v", err)
		}
	})
	<-p.proc.Ready()
	t.Cleanup(p.stop)
	return p
}

func (p *pipeline) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.wg.Wait()
	p.cancel = nil
	p.prod.Close()
	p.accounts.Close()
	p.hist.Close()
	p.brk.Close()
}

func (p *pipeline) account(email string) account.ID {
	p.t.Helper()
	a, _, err := p.accounts.Create(context.Background(), email, "ENTERPRISE", false)
	if err != nil {
		p.t.Fatal(err)
	}
	return a.ID
}

// produce sends changes (in order per resource) and waits until the
// processor consumed them.
func (p *pipeline) produce(cs ...change.Change) {
	p.t.Helper()
	ctx := context.Background()
	var rs []*kgo.Record
	for _, c := range cs {
		rs = append(rs, &kgo.Record{Topic: broker.TopicChanges, Key: []byte(c.Key), Value: change.Append(nil, c)})
	}
	if err := p.prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		p.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		lag, err := p.proc.Lag(ctx)
		if err == nil && lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("processor did not catch up: lag %d, %v", lag, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func chg(op change.Op, list, res string, at int64) change.Change {
	r, err := resource.ParseIP(res)
	if err != nil {
		panic(err)
	}
	return change.Change{Time: time.Unix(at, 0).UTC(), Op: op, List: list, Key: r.Key()}
}

func pfx(s string) netip.Prefix {
	r, err := resource.ParseIP(s)
	if err != nil {
		panic(err)
	}
	return r.Prefix
}

// allAlerts returns every stored alert of the accounts, oldest first.
func (p *pipeline) allAlerts(ids ...account.ID) []account.Alert {
	p.t.Helper()
	var out []account.Alert
	for _, id := range ids {
		for page := 1; ; page++ {
			as, total, err := p.accounts.Alerts(context.Background(), id, account.AlertFilter{Page: page, Items: 1000})
			if err != nil {
				p.t.Fatal(err)
			}
			out = append(out, as...)
			if page*1000 >= total {
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// readTopic consumes the alert topic from the start until it holds n
// records (or the timeout) and returns the events with their keys.
func readTopic(t *testing.T, brk *broker.Broker, n int, timeout time.Duration) map[int64]alerts.Event {
	t.Helper()
	cl, err := brk.NewClient(kgo.ConsumeTopics(broker.TopicAlerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int64]alerts.Event{}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			var e alerts.Event
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Errorf("alert record %q: %v", r.Value, err)
				return
			}
			if string(r.Key) != strconv.FormatInt(e.Account, 10) {
				t.Errorf("alert %d keyed %q, want its account %d", e.ID, r.Key, e.Account)
			}
			out[e.ID] = e
		})
	}
	return out
}

// now gives change i a distinct time.
func (p *pipeline) now(i int) time.Time { return time.Unix(1_700_000_000+int64(i), 0).UTC() }
