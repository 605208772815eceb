package check_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/check"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/processor"
)

// TestAuditFindsLostRows ingests records (with re-published duplicates)
// through the real broker, processor and store; the audit finds history
// complete. Then a flushed file is dropped from history (file deleted,
// manifest edited, offsets kept: what the old flusher did on a failed
// commit): the consistency check, which folds history into the live
// state, sees nothing wrong, and the audit reports exactly the lost rows.
func TestAuditFindsLostRows(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bc := broker.Config{Embedded: broker.Embedded{Dir: filepath.Join(dir, "kafka"), Port: -1}}
	bc.Defaults()
	bc.Partitions = 3
	brk, err := broker.Start(ctx, bc, log)
	if err != nil {
		t.Fatal(err)
	}
	defer brk.Close()
	prod, err := brk.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	stateChanging := 0
	for i := 0; i < 600; i++ {
		k := resource.FromAddr(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})).Key()
		add := change.Change{Time: time.Unix(int64(1_700_000_000+i), 0), Op: change.Add, List: "L", Key: k}
		recs = append(recs, &kgo.Record{Topic: broker.TopicChanges, Key: []byte(k), Value: change.Append(nil, add)})
		stateChanging++
		if i%4 == 0 { // a re-published duplicate: not state-changing
			recs = append(recs, &kgo.Record{Topic: broker.TopicChanges, Key: []byte(k), Value: change.Append(nil, add)})
		}
		if i%5 == 0 {
			rem := change.Change{Time: time.Unix(int64(1_700_100_000+i), 0), Op: change.Rem, List: "L", Key: k}
			recs = append(recs, &kgo.Record{Topic: broker.TopicChanges, Key: []byte(k), Value: change.Append(nil, rem)})
			stateChanging++
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	hc := history.Config{Dir: filepath.Join(dir, "history"), CompactMinFiles: 1000}
	hc.Defaults()
	store, err := history.Open(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	pc := processor.Config{FlushInterval: 20 * time.Millisecond, FlushRows: 100, PollRecords: 50}
	pc.Defaults()
	state := live.New()
	proc := processor.New(pc, brk, store, state, log)
	pctx, pcancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- proc.Run(pctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for store.Stats().Rows < int64(stateChanging) {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows stored, want %d", store.Stats().Rows, stateChanging)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pcancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	job := check.NewJob(store, proc, state, 0, log)
	if _, err := job.Check(check.WithAudit(ctx)); !errors.Is(err, check.ErrNoAuditor) {
		t.Fatalf("audit without auditor: %v, want ErrNoAuditor", err)
	}
	job.SetAuditor(check.NewAuditor(brk, store, log))
	res, err := job.Check(check.WithAudit(ctx))
	if err != nil {
		t.Fatal(err)
	}
	a := res.Audit
	if a == nil || a.Lost() || a.Records != int64(len(recs)) || a.StateChanging != int64(stateChanging) || a.Rows != int64(stateChanging) {
		t.Fatalf("complete history: audit %+v, want %d records, %d state-changing, nothing lost", a, len(recs), stateChanging)
	}
	if res, err := job.Check(ctx); err != nil || res.Audit != nil {
		t.Fatalf("a check without WithAudit audited: %+v %v", res.Audit, err)
	}
	all := positions(t, store)

	// Retention removes the start of partition 0: the audit says it covers
	// it from the log start only, and still finds nothing lost.
	const logStart = 50
	adm := kadm.NewClient(prod)
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{broker.TopicChanges: {0: {Topic: broker.TopicChanges, Partition: 0, At: logStart}}})
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr.Error())
	}
	res, err = job.Check(check.WithAudit(ctx))
	if err != nil {
		t.Fatal(err)
	}
	a = res.Audit
	if a.Lost() || a.Partitions[0].Partition != 0 || !a.Partitions[0].Truncated || a.Partitions[0].From != logStart || a.Partitions[1].Truncated {
		t.Fatalf("truncated partition 0: audit %+v", a)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// Lose one flushed file, keeping the manifest's offsets.
	mpath := filepath.Join(hc.Dir, "manifest.json")
	b, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	files := m["files"].([]any)
	if len(files) < 3 {
		t.Fatalf("only %d files; want several flushes", len(files))
	}
	lost := files[1].(map[string]any)
	lostRows := int64(lost["rows"].(float64))
	if err := os.Remove(filepath.Join(hc.Dir, lost["path"].(string))); err != nil {
		t.Fatal(err)
	}
	m["files"] = append(files[:1:1], files[2:]...)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mpath, b, 0o644); err != nil {
		t.Fatal(err)
	}

	store, err = history.Open(hc, log)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	state = live.New()
	if _, _, err := processor.Rebuild(ctx, store, state); err != nil {
		t.Fatal(err)
	}
	proc = processor.New(pc, brk, store, state, log)
	job = check.NewJob(store, proc, state, 0, log)
	job.SetAuditor(check.NewAuditor(brk, store, log))
	res, err = job.Check(check.WithAudit(ctx))
	if err != nil {
		t.Fatal(err)
	}
	a = res.Audit
	// Lost rows before partition 0's log start cannot be seen any more.
	left := positions(t, store)
	lostRows = 0
	for pos := range all {
		if !left[pos] && (pos[0] != 0 || pos[1] >= logStart) {
			lostRows++
		}
	}
	if res.Mismatches != 0 {
		t.Logf("the fold check found %d mismatches", res.Mismatches)
	}
	if a == nil || a.Missing != lostRows || a.Extra != 0 || a.Mismatched != 0 || len(a.Samples) == 0 || a.Samples[0].Kind != "missing" {
		t.Fatalf("after losing %d rows: audit %+v", lostRows, a)
	}
	var perPart int64
	for _, p := range a.Partitions {
		perPart += p.Missing
	}
	if perPart != lostRows {
		t.Fatalf("partition reports sum to %d missing, want %d", perPart, lostRows)
	}
	t.Logf("fold check: %d mismatches; audit: %d missing of %d, sample %+v, took %v", res.Mismatches, a.Missing, a.StateChanging, a.Samples[0], a.Took)

	// A wrong row at a lost position (mismatched) and a stored row
	// doubled at its position (extra).
	var lostPos, keptPos [2]int64
	for pos := range all {
		if !left[pos] && pos[1] >= logStart {
			lostPos = pos
		}
		if left[pos] && pos[1] >= logStart {
			keptPos = pos
		}
	}
	var doubled change.Change
	_ = store.Scan(ctx, func(c change.Change) error {
		if c.Partition == int32(keptPos[0]) && c.Offset == keptPos[1] {
			doubled = c
		}
		return nil
	})
	wrong := change.Change{Time: time.Unix(1_700_000_000, 0), Op: change.Add, List: "WRONG", Key: doubled.Key,
		Partition: int32(lostPos[0]), Offset: lostPos[1]}
	if err := store.Commit([]change.Change{wrong, doubled}, nil); err != nil {
		t.Fatal(err)
	}
	res, err = job.Check(check.WithAudit(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Audit; a.Missing != lostRows-1 || a.Mismatched != 1 || a.Extra != 1 {
		t.Fatalf("with a wrong and a doubled row: audit missing %d (want %d), mismatched %d, extra %d (want 1, 1); samples %+v",
			a.Missing, lostRows-1, a.Mismatched, a.Extra, a.Samples)
	}

	// The periodic check audits too and exposes the result as gauges.
	metrics.GetOrCreateGauge(`netwarden_audit_missing_rows`, nil).Set(0)
	periodic := check.NewJob(store, proc, state, 20*time.Millisecond, log)
	periodic.SetAuditor(check.NewAuditor(brk, store, log))
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan error, 1)
	go func() { rdone <- periodic.Run(rctx) }()
	deadline = time.Now().Add(10 * time.Second)
	for metrics.GetOrCreateGauge(`netwarden_audit_missing_rows`, nil).Get() != float64(lostRows-1) {
		if time.Now().After(deadline) {
			t.Fatal("the periodic check did not report the missing rows in netwarden_audit_missing_rows")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rcancel()
	if err := <-rdone; err != nil {
		t.Fatal(err)
	}
}

// positions returns the (partition, offset) of every stored row.
func positions(t *testing.T, store *history.Store) map[[2]int64]bool {
	t.Helper()
	out := map[[2]int64]bool{}
	err := store.Scan(context.Background(), func(c change.Change) error {
		out[[2]int64{int64(c.Partition), c.Offset}] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
