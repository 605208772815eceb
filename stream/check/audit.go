package check

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/live"
)

// Clients makes Kafka clients (broker.Broker).
type Clients interface {
	NewClient(opts ...kgo.Opt) (*kgo.Client, error)
}

// AuditHistory is what the audit reads from history (history.Store).
type AuditHistory interface {
	Scan(ctx context.Context, fn func(change.Change) error) error
	Offsets() map[int32]int64
}

// Auditor audits history against the changes topic.
//
// The audit compares history with the changes topic itself (the
// consistency check compares it only with the live state, which is folded
// from history and so cannot see rows history never got).
//
// For each partition it reads the topic from its log start to the
// history manifest's offset, replays the processor's dedupe (a record is
// state-changing iff applying it to a live state folded in offset order
// changes it; a resource's records are all in one partition, so folding
// partition by partition gives the processor's result) and compares the
// state-changing records with the history rows by (partition, offset):
//
//   - missing: a state-changing record without a history row (lost);
//   - extra: a history row at a position that is not a state-changing
//     record (doubled or invented);
//   - mismatched: a row whose content differs from its record.
//
// Rows of history files written before rows carried their position
// (schema version 1) are matched by content instead (MatchedByContent).
// When topic retention removed the start of a partition (log start > 0)
// the audit covers it from the log start only (From in the partition's
// report), seeding the dedupe state with the history rows before it.
// History rows at or past the manifest offsets read (a commit that ran
// during the audit) are not compared.
//
// Cost: one pass over the topic up to the manifest offsets and one over
// history, holding 16 bytes per history row (sorted by offset per
// partition and walked beside the records).
type Auditor struct {
	brk   Clients
	store AuditHistory
	log   *slog.Logger
}

// NewAuditor makes an auditor.
func NewAuditor(brk Clients, store AuditHistory, log *slog.Logger) *Auditor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Auditor{brk: brk, store: store, log: log}
}

// AuditResult is the outcome of one audit.
type AuditResult struct {
	Took time.Duration `json:"took_ns"`
	// Records is the number of topic records read, StateChanging those
	// that change the state, Rows the history rows compared.
	Records       int64 `json:"records"`
	StateChanging int64 `json:"state_changing"`
	BadRecords    int64 `json:"bad_records"`
	Rows          int64 `json:"rows"`
	Missing       int64 `json:"missing"`
	Extra         int64 `json:"extra"`
	Mismatched    int64 `json:"mismatched"`
	// Unpositioned counts history rows without a topic position; of those,
	// MatchedByContent matched a record by content.
	Unpositioned     int64            `json:"unpositioned"`
	MatchedByContent int64            `json:"matched_by_content"`
	Partitions       []PartitionAudit `json:"partitions"`
	Samples          []AuditSample    `json:"samples,omitempty"`
}

// Lost reports whether the audit found history different from the topic.
func (r AuditResult) Lost() bool { return r.Missing+r.Extra+r.Mismatched > 0 }

// PartitionAudit is the range of one partition the audit covered:
// offsets [From, To). From is above 0 when retention removed the start
// of the log (Truncated).
type PartitionAudit struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from"`
	To        int64 `json:"to"`
	Truncated bool  `json:"truncated,omitempty"`
	Missing   int64 `json:"missing"`
}

// AuditSample is one difference.
type AuditSample struct {
	Kind      string `json:"kind"` // missing, extra, mismatched
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Record    string `json:"record,omitempty"` // the topic's change
	Row       string `json:"row,omitempty"`    // the history row
}

const maxSamples = 20

var (
	mAuditMissing    = metrics.NewGauge(`netwarden_audit_missing_rows`, nil)
	mAuditExtra      = metrics.NewGauge(`netwarden_audit_extra_rows`, nil)
	mAuditMismatched = metrics.NewGauge(`netwarden_audit_mismatched_rows`, nil)
	mAudits          = metrics.NewCounter(`netwarden_audits_total`)
)

var seed = maphash.MakeSeed()

// digest identifies a change's content.
func digest(us int64, op change.Op, list, key []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var b [9]byte
	binary.LittleEndian.PutUint64(b[:], uint64(us))
	b[8] = byte(op)
	_, _ = h.Write(b[:])
	_, _ = h.Write(list)
	_ = h.WriteByte(0)
	_, _ = h.Write(key)
	return h.Sum64()
}

func describe(c change.Change) string {
	name := fmt.Sprintf("%x", c.Key)
	if r, err := resource.FromKey(c.Key); err == nil {
		name = r.String()
	}
	return fmt.Sprintf("%s %s %s %s", c.Time.UTC().Format(time.RFC3339Nano), c.Op, c.List, name)
}

// Audit runs one audit.
func (a *Auditor) Audit(ctx context.Context) (res AuditResult, err error) {
	start := time.Now()
	to := a.store.Offsets()
	defer func() {
		res.Took = time.Since(start)
		mAuditMissing.Set(float64(res.Missing))
		mAuditExtra.Set(float64(res.Extra))
		mAuditMismatched.Set(float64(res.Mismatched))
		mAudits.Inc()
	}()
	if len(to) == 0 {
		return res, nil // nothing consumed yet
	}
	cl, err := a.brk.NewClient()
	if err != nil {
		return res, fmt.Errorf("audit: %w", err)
	}
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, broker.TopicChanges)
	cl.Close()
	if err != nil {
		return res, fmt.Errorf("audit: list start offsets: %w", err)
	}
	from := map[int32]int64{}
	var serr error
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && serr == nil {
			serr = fmt.Errorf("audit: start offset of partition %d: %w", o.Partition, o.Err)
		}
		from[o.Partition] = max(o.Offset, 0)
	})
	if serr != nil {
		return res, serr
	}

	// History: (offset, content digest) per partition, sorted by offset;
	// rows before a truncated log start are kept whole to seed the
	// dedupe state.
	rows := map[int32][]posRow{}
	byContent := map[uint64]int64{}
	seedRows := map[int32][]change.Change{}
	err = a.store.Scan(ctx, func(c change.Change) error {
		if !c.HasPosition() {
			res.Unpositioned++
			byContent[digest(c.Time.UnixMicro(), c.Op, []byte(c.List), []byte(c.Key))]++
			return nil
		}
		end, ok := to[c.Partition]
		if !ok || c.Offset >= end {
			return nil // committed after the audit read the offsets
		}
		res.Rows++
		if c.Offset < from[c.Partition] {
			seedRows[c.Partition] = append(seedRows[c.Partition], c)
			return nil
		}
		rows[c.Partition] = append(rows[c.Partition], posRow{off: c.Offset, h: digest(c.Time.UnixMicro(), c.Op, []byte(c.List), []byte(c.Key))})
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("audit: scan history: %w", err)
	}
	for _, rs := range rows {
		slices.SortFunc(rs, func(x, y posRow) int { return cmp.Compare(x.off, y.off) })
	}

	state := live.New()
	for _, cs := range seedRows {
		slices.SortFunc(cs, func(x, y change.Change) int { return cmp.Compare(x.Offset, y.Offset) })
		state.ApplyChanges(cs, make([]bool, len(cs)))
	}
	cmpr := &comparer{res: &res, rows: rows, next: map[int32]int{}, byContent: byContent}
	want := map[int32]kgo.Offset{}
	for _, p := range slices.Sorted(maps.Keys(to)) {
		pa := PartitionAudit{Partition: p, From: from[p], To: to[p], Truncated: from[p] > 0}
		if pa.From > pa.To { // retention removed everything up to the manifest
			pa.From = pa.To
		}
		if pa.Truncated {
			a.log.Warn("audit: retention removed the start of the partition; auditing from the log start", "partition", p, "from", pa.From)
		}
		cmpr.pidx = append(cmpr.pidx, p)
		res.Partitions = append(res.Partitions, pa)
		if pa.From < pa.To {
			want[p] = kgo.NewOffset().At(pa.From)
		}
	}
	if len(want) > 0 {
		if err := a.replay(ctx, want, to, state, cmpr); err != nil {
			return res, err
		}
	}
	for _, p := range cmpr.pidx {
		cmpr.extraBefore(p, math.MaxInt64) // rows past the last record
	}
	return res, nil
}

// posRow is a history row's offset and content digest.
type posRow struct {
	off int64
	h   uint64
}

// comparer walks each partition's history rows in offset order beside
// the topic's records.
type comparer struct {
	res       *AuditResult
	rows      map[int32][]posRow
	next      map[int32]int // first row not yet compared
	byContent map[uint64]int64
	pidx      []int32 // partitions, in res.Partitions order
}

func (c *comparer) sample(s AuditSample) {
	if len(c.res.Samples) < maxSamples {
		c.res.Samples = append(c.res.Samples, s)
	}
}

// extraBefore counts the uncompared rows of partition p below offset o as
// extra: no state-changing record is at their position.
func (c *comparer) extraBefore(p int32, o int64) {
	rs, i := c.rows[p], c.next[p]
	for ; i < len(rs) && rs[i].off < o; i++ {
		c.res.Extra++
		why := "a history row where the topic has no state-changing record"
		if i > 0 && rs[i-1].off == rs[i].off {
			why = "a position twice in history"
		}
		c.sample(AuditSample{Kind: "extra", Partition: p, Offset: rs[i].off, Row: why})
	}
	c.next[p] = i
}

// record compares the record at (p, o) with history; changing says
// whether it is state-changing, h is its content digest.
func (c *comparer) record(p int32, o int64, changing bool, h uint64, d change.Decoded) {
	c.extraBefore(p, o)
	rs, i := c.rows[p], c.next[p]
	has := i < len(rs) && rs[i].off == o
	if has {
		c.next[p] = i + 1
	}
	switch {
	case !changing && has:
		c.res.Extra++
		c.sample(AuditSample{Kind: "extra", Partition: p, Offset: o, Record: describe(d.Change()), Row: "a history row for a record that changes nothing"})
	case !changing:
	case has && rs[i].h == h:
	case has:
		c.res.Mismatched++
		c.sample(AuditSample{Kind: "mismatched", Partition: p, Offset: o, Record: describe(d.Change())})
	case c.byContent[h] > 0:
		c.byContent[h]--
		c.res.MatchedByContent++
	default:
		c.res.Missing++
		c.res.Partitions[slices.Index(c.pidx, p)].Missing++
		c.sample(AuditSample{Kind: "missing", Partition: p, Offset: o, Record: describe(d.Change())})
	}
}

// replay reads the partitions in want from their offsets up to to,
// applies each record to state and compares it with history.
func (a *Auditor) replay(ctx context.Context, want map[int32]kgo.Offset, to map[int32]int64, state *live.State, cmpr *comparer) error {
	cl, err := a.brk.NewClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{broker.TopicChanges: want}),
		kgo.FetchMaxBytes(64<<20),
	)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer cl.Close()
	left := len(want)
	done := map[int32]bool{}
	changed := make([]bool, 1)
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("audit: read topic: %w", err)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("audit: read partition %d: %w", p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end := to[r.Partition]
			if done[r.Partition] {
				return
			}
			if r.Offset >= end-1 { // the last offset to audit, or past it (a gap)
				done[r.Partition] = true
				left--
				if r.Offset >= end {
					return
				}
			}
			cmpr.res.Records++
			d, err := change.Decode(r.Value)
			if err != nil {
				cmpr.res.BadRecords++ // the processor skips them too
				cmpr.record(r.Partition, r.Offset, false, 0, change.Decoded{})
				return
			}
			state.ApplyBatch([]change.Decoded{d}, changed)
			if changed[0] {
				cmpr.res.StateChanging++
			}
			cmpr.record(r.Partition, r.Offset, changed[0], digest(d.Micros, d.Op, d.List, d.Key), d)
		})
	}
	return nil
}
