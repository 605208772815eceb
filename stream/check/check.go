// Package check verifies that the live state equals history folded per
// resource. A mismatch found while ingest runs is re-checked for that key
// alone (history lookup versus live state) a few times before it counts,
// so concurrent changes do not raise false alarms.
//
// Job.Run runs the check periodically and exposes the last mismatch count
// as the gauge netwarden_consistency_mismatches; Job.Check runs it once
// (netwarden check, POST /admin/check). Safe for concurrent use; checks
// are serialized.
//
// With an Auditor (Job.SetAuditor), the periodic check and every check
// whose context carries WithAudit (netwarden check --audit, POST
// /admin/check?audit=1) also audit history against the changes topic
// (see Auditor) and report it in Result.Audit and the gauges
// netwarden_audit_missing_rows, _extra_rows and _mismatched_rows. With a
// Verifier (Job.SetVerifier) every check also verifies the history files'
// checksums and lists damaged files (Result.Files, gauge
// netwarden_history_damaged_files).
package check

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
)

var mDamaged = metrics.NewGauge(`netwarden_history_damaged_files`, nil)

// History is what the check reads: the store's full scan and the
// processor's per-key view (stored plus buffered changes).
type History interface {
	Scan(ctx context.Context, fn func(change.Change) error) error
}

// KeyHistory returns every change of the keys, stored or buffered.
type KeyHistory interface {
	Changes(keys []string) ([]change.Change, error)
}

// Result of one check.
type Result struct {
	Started    time.Time     `json:"started"`
	Took       time.Duration `json:"took_ns"`
	Changes    int64         `json:"changes"`
	Resources  int           `json:"resources"`
	Mismatches int           `json:"mismatches"`
	Samples    []Mismatch    `json:"samples,omitempty"`
	// Audit is the audit against the topic, when one ran.
	Audit *AuditResult `json:"audit,omitempty"`
	// Files is the checksum verification of the history files, when the
	// job has a Verifier; Files.Damaged lists the damaged ones.
	Files *history.VerifyResult `json:"files,omitempty"`
	// FoldError says why the fold did not run (a damaged file).
	FoldError string `json:"fold_error,omitempty"`
}

// Verifier checks the stored files against their checksums
// (history.Store).
type Verifier interface {
	Verify(ctx context.Context) (history.VerifyResult, error)
}

// SetVerifier makes every check also verify the history files' checksums.
// Call it before Run.
func (j *Job) SetVerifier(v Verifier) { j.verify = v }

type auditKey struct{}

// WithAudit makes Job.Check also run the audit.
func WithAudit(ctx context.Context) context.Context {
	return context.WithValue(ctx, auditKey{}, true)
}

// ErrNoAuditor is returned by a check asked to audit by a job without
// an Auditor.
var ErrNoAuditor = errors.New("audit requested but no auditor configured")

// Mismatch is one resource whose folded history differs from live state.
type Mismatch struct {
	Resource string   `json:"resource"`
	History  []string `json:"history_lists"`
	Live     []string `json:"live_lists"`
}

// Job runs checks.
type Job struct {
	store  History
	keys   KeyHistory
	state  *live.State
	every  time.Duration
	log    *slog.Logger
	audit  *Auditor
	verify Verifier

	mu sync.Mutex
}

// NewJob makes a job; every <= 0 disables the periodic run.
func NewJob(store History, keys KeyHistory, state *live.State, every time.Duration, log *slog.Logger) *Job {
	return &Job{store: store, keys: keys, state: state, every: every, log: log}
}

// SetAuditor makes the job audit history against the topic (periodic
// checks always, others on request). Call it before Run.
func (j *Job) SetAuditor(a *Auditor) { j.audit = a }

// Run checks every interval until ctx ends.
func (j *Job) Run(ctx context.Context) error {
	if j.every <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx := ctx
		if j.audit != nil {
			cctx = WithAudit(ctx)
		}
		res, err := j.Check(cctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			j.log.Error("consistency check", "err", err)
			continue
		}
		lvl := slog.LevelInfo
		if res.Mismatches > 0 {
			lvl = slog.LevelError
		}
		j.log.Log(ctx, lvl, "consistency check", "resources", res.Resources, "mismatches", res.Mismatches, "took", res.Took)
		if f := res.Files; f != nil && len(f.Damaged) > 0 {
			for _, d := range f.Damaged {
				j.log.Error("history file damaged", "path", d.Path, "err", d.Error)
			}
		}
		if a := res.Audit; a != nil {
			lvl := slog.LevelInfo
			if a.Lost() {
				lvl = slog.LevelError
			}
			j.log.Log(ctx, lvl, "history audit against the topic", "records", a.Records, "state_changing", a.StateChanging,
				"missing", a.Missing, "extra", a.Extra, "mismatched", a.Mismatched, "unpositioned", a.Unpositioned, "took", a.Took)
		}
	}
}

// Check folds all history and compares it with the live state.
func (j *Job) Check(ctx context.Context) (Result, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	res := Result{Started: time.Now().UTC()}
	if j.verify != nil {
		v, err := j.verify.Verify(ctx)
		if err != nil {
			return res, fmt.Errorf("verify history files: %w", err)
		}
		res.Files = &v
		mDamaged.Set(float64(len(v.Damaged)))
	}
	folded := live.New()
	n, _, err := live.Fold(ctx, j.store.Scan, folded)
	res.Changes = n
	if err != nil {
		if errors.Is(err, history.ErrCorrupt) && res.Files != nil && len(res.Files.Damaged) > 0 {
			// The damaged files are the finding; the fold cannot run.
			res.FoldError = err.Error()
			res.Took = time.Since(res.Started)
			return res, nil
		}
		return res, fmt.Errorf("scan history: %w", err)
	}
	suspects := map[string]bool{}
	folded.ForEach(func(k string, lists []string) bool {
		res.Resources++
		if !slices.Equal(lists, j.state.Get(k)) {
			suspects[k] = true
		}
		return true
	})
	j.state.ForEach(func(k string, _ []string) bool {
		if len(folded.Get(k)) == 0 {
			suspects[k] = true
		}
		return true
	})
	// Buffered changes are not in the scan, and ingest goes on: re-check
	// each suspect against its own full history a few times.
	for k := range suspects {
		var m Mismatch
		bad := true
		for try := 0; try < 3 && bad; try++ {
			if try > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			cs, err := j.keys.Changes([]string{k})
			if err != nil {
				return res, err
			}
			one := live.New()
			one.ApplyChanges(cs, make([]bool, len(cs)))
			m.History, m.Live = one.Get(k), j.state.Get(k)
			bad = !slices.Equal(m.History, m.Live)
		}
		if bad {
			res.Mismatches++
			if len(res.Samples) < 20 {
				if r, err := resource.FromKey(k); err == nil {
					m.Resource = r.String()
				}
				res.Samples = append(res.Samples, m)
			}
		}
	}
	if want, _ := ctx.Value(auditKey{}).(bool); want {
		if j.audit == nil {
			return res, ErrNoAuditor
		}
		a, err := j.audit.Audit(ctx)
		if err != nil {
			return res, err
		}
		res.Audit = &a
	}
	res.Took = time.Since(res.Started)
	metrics.GetOrCreateGauge(`netwarden_consistency_mismatches`, nil).Set(float64(res.Mismatches))
	metrics.GetOrCreateCounter(`netwarden_consistency_checks_total`).Inc()
	return res, nil
}
