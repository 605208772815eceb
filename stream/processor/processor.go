// Package processor consumes the changes topic, keeps the live state and
// writes every state-changing event to history.
//
// Exactly-once: a change is applied to the live state and, if it changed
// anything, appended to an in-memory buffer. A flusher goroutine (owned by
// Run) commits full buffers to the history store together with the Kafka
// offsets they cover, in one atomic manifest write, and only then commits
// those offsets to Kafka. On start the live state is rebuilt from history
// and consumption resumes at the offsets in the history manifest (or the
// group's committed offsets, whichever is later), so a restart — clean or
// kill -9 — neither loses nor doubles a change. Duplicate events (a
// scraper re-publishing after a crash) do not change the live state and
// are dropped.
//
// A Tap (stream/alerts) sees each consumed batch right after the live
// state applied it and before its changes can reach history.
//
// Reads: Changes returns the stored history of keys merged with the
// not-yet-flushed buffers, so there is no gap between live state and
// history. Processor methods are safe for concurrent use.
package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/live"
)

// Store is the durable history the processor writes (history.Store).
type Store interface {
	CommitGen(rows []change.Change, offsets map[int32]int64, onVisible func(gen int64)) (int64, error)
	Offsets() map[int32]int64
	LookupGen(keys []string, fn func(change.Change)) (int64, error)
	Bits() (bits4, bits6 []uint8)
	Scan(ctx context.Context, fn func(change.Change) error) error
}

// Tap sees every consumed batch right after the live state applied it
// and before any of its changes can reach history (stream/alerts). ds[i]
// decodes recs[i] (zero for a bad record); changed[i] reports whether it
// changed the live state. An error stops consumption.
type Tap interface {
	Applied(ctx context.Context, recs []*kgo.Record, ds []change.Decoded, changed []bool) error
}

// Config tunes the processor.
type Config struct {
	Group         string        `yaml:"group"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	FlushRows     int           `yaml:"flush_rows"`
	PollRecords   int           `yaml:"poll_records"`
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Group == "" {
		c.Group = "netwarden-history"
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 2 * time.Second
	}
	if c.FlushRows == 0 {
		c.FlushRows = 250_000
	}
	if c.PollRecords == 0 {
		c.PollRecords = 10_000
	}
}

// Validate checks c.
func (c Config) Validate() error {
	if c.Group == "" {
		return errors.New("processor.group is empty")
	}
	if c.FlushInterval < 10*time.Millisecond {
		return fmt.Errorf("processor.flush_interval %v below 10ms", c.FlushInterval)
	}
	if c.FlushRows < 1 || c.PollRecords < 1 {
		return errors.New("processor.flush_rows and processor.poll_records must be positive")
	}
	return nil
}

var (
	mConsumed  = metrics.NewCounter(`netwarden_processor_records_total`)
	mApplied   = metrics.NewCounter(`netwarden_processor_changes_total{result="applied"}`)
	mDuplicate = metrics.NewCounter(`netwarden_processor_changes_total{result="duplicate"}`)
	mBad       = metrics.NewCounter(`netwarden_processor_changes_total{result="bad_record"}`)
	mFlushes   = metrics.NewCounter(`netwarden_processor_flushes_total`)
	mFlushRows = metrics.NewCounter(`netwarden_processor_flushed_rows_total`)
	mFlushDur  = metrics.NewPrometheusHistogram(`netwarden_processor_flush_duration_seconds`)
	mCommitErr = metrics.NewCounter(`netwarden_processor_offset_commit_errors_total`)
	// mCommitFail counts failed history commits; the first one stops the
	// processor (fail-stop), so it is 0 or 1 per run.
	mCommitFail = metrics.NewCounter(`netwarden_processor_history_commit_errors_total`)
)

// buffer is a batch of changes not yet in history.
type buffer struct {
	gen     int64 // store generation that made rows visible; 0 until then
	rows    []change.Change
	offsets map[int32]int64 // next offset per partition after rows
	idx     map[string][]int32
	indexed int
}

func newBuffer(capacity int) *buffer {
	return &buffer{rows: make([]change.Change, 0, capacity), offsets: make(map[int32]int64)}
}

// lookup appends rows of b with a key in keys. Caller holds the lock
// protecting b.
func (b *buffer) lookup(keys []string, out []change.Change) []change.Change {
	if b.idx == nil {
		b.idx = make(map[string][]int32)
	}
	for ; b.indexed < len(b.rows); b.indexed++ {
		k := b.rows[b.indexed].Key
		b.idx[k] = append(b.idx[k], int32(b.indexed))
	}
	for _, k := range keys {
		for _, i := range b.idx[k] {
			out = append(out, b.rows[i])
		}
	}
	return out
}

// Processor is the changes-topic consumer.
type Processor struct {
	cfg   Config
	brk   *broker.Broker
	store Store
	state *live.State
	log   *slog.Logger

	// mu guards active, flushing, bits and the live-state/buffer pairing:
	// the poll loop holds it while applying a batch.
	mu       sync.Mutex
	active   *buffer
	flushing []*buffer
	bits4    [33]bool
	bits6    [129]bool
	lists    map[string]string // interned list names
	consumed map[int32]int64   // next offset per partition, consumed so far

	// commitMu serializes commits from the flusher and from flushSync.
	commitMu sync.Mutex

	// client is the consumer, set by Run; Lag asks it for end offsets.
	client atomic.Pointer[kgo.Client]

	tap Tap // set before Run

	flushCh   chan *buffer
	flushDone chan struct{}
	ready     chan struct{}
	flushErr  error
	lastFlush time.Time
}

// New makes a processor. state must be empty: Run rebuilds it from store.
func New(cfg Config, brk *broker.Broker, store Store, state *live.State, log *slog.Logger) *Processor {
	p := &Processor{cfg: cfg, brk: brk, store: store, state: state, log: log,
		active: newBuffer(cfg.FlushRows), lists: make(map[string]string), consumed: make(map[int32]int64),
		flushCh: make(chan *buffer, 1), flushDone: make(chan struct{}), ready: make(chan struct{})}
	b4, b6 := store.Bits()
	for _, b := range b4 {
		p.bits4[b] = true
	}
	for _, b := range b6 {
		p.bits6[b] = true
	}
	return p
}

// SetTap makes t see every consumed batch (call before Run).
func (p *Processor) SetTap(t Tap) { p.tap = t }

// Ready is closed once the live state is rebuilt and consumption started.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// Rebuild folds history into the (empty) live state. It returns the
// number of stored changes that did not change the state as folded,
// which is 0 for a consistent history.
func Rebuild(ctx context.Context, store Store, state *live.State) (rows, noops int64, err error) {
	return live.Fold(ctx, store.Scan, state)
}

// Run rebuilds the live state, then consumes until ctx ends, then flushes
// what it holds and commits the offsets. Shutdown order inside: stop
// polling, flush the last buffer to history, commit offsets, leave the
// group.
func (p *Processor) Run(ctx context.Context) error {
	start := time.Now()
	rows, noops, err := Rebuild(ctx, p.store, p.state)
	if err != nil {
		return fmt.Errorf("rebuild live state from history: %w", err)
	}
	if noops > 0 {
		p.log.Warn("history folds with no-op changes", "noops", noops)
	}
	p.log.Info("live state rebuilt", "changes", rows, "resources", p.state.Len(), "took", time.Since(start).Round(time.Millisecond))

	stored := p.store.Offsets()
	p.mu.Lock()
	for part, off := range stored {
		p.consumed[part] = off
	}
	p.mu.Unlock()
	cl, err := p.brk.NewClient(
		kgo.ConsumerGroup(p.cfg.Group),
		kgo.ConsumeTopics(broker.TopicChanges),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxBytes(64<<20),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(func(_ context.Context, m map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			for part, o := range m[broker.TopicChanges] {
				// The manifest is authoritative for what this store holds;
				// a later group commit means another member wrote it.
				if off, ok := stored[part]; ok {
					if eo := o.EpochOffset(); eo.Offset < 0 || off > eo.Offset {
						m[broker.TopicChanges][part] = kgo.NewOffset().At(off)
					}
				}
			}
			return m, nil
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			// Everything consumed so far becomes durable and committed
			// before another member takes the partitions.
			if err := p.flushSync(ctx, cl); err != nil {
				p.log.Error("flush on revoke", "err", err)
			}
		}),
	)
	if err != nil {
		return err
	}
	p.client.Store(cl)
	defer p.client.Store(nil)
	go p.flusher(cl)
	close(p.ready)

	pollErr := p.poll(ctx, cl)

	// Shutdown: final flush and commit with a fresh context.
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ferr := p.flushSync(sctx, cl)
	close(p.flushCh)
	<-p.flushDone
	cl.LeaveGroup()
	cl.Close()
	if pollErr != nil {
		return pollErr
	}
	if ferr != nil {
		return ferr
	}
	return p.flushErr
}

func (p *Processor) poll(ctx context.Context, cl *kgo.Client) error {
	ds := make([]change.Decoded, 0, p.cfg.PollRecords)
	changed := make([]bool, p.cfg.PollRecords)
	p.lastFlush = time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, min(p.cfg.FlushInterval, 100*time.Millisecond))
		fs := cl.PollRecords(pctx, p.cfg.PollRecords)
		cancel()
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		var fatal error
		fs.EachError(func(t string, part int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			p.log.Warn("fetch error", "topic", t, "partition", part, "err", err)
			if errors.Is(err, kgo.ErrClientClosed) {
				fatal = err
			}
		})
		if fatal != nil {
			return fatal
		}
		p.mu.Lock()
		ds = ds[:0]
		recs := fs.Records()
		for _, r := range recs {
			d, err := change.Decode(r.Value)
			if err != nil {
				mBad.Inc()
				p.log.Warn("skipping bad change record", "partition", r.Partition, "offset", r.Offset, "err", err)
				d = change.Decoded{} // keeps positions aligned
			}
			ds = append(ds, d)
		}
		p.state.ApplyBatch(ds, changed[:len(ds)])
		if p.tap != nil && len(recs) > 0 {
			if err := p.tap.Applied(ctx, recs, ds, changed[:len(ds)]); err != nil {
				p.mu.Unlock()
				cl.AllowRebalance()
				return fmt.Errorf("processor tap: %w", err)
			}
		}
		for i, r := range recs {
			p.active.offsets[r.Partition] = r.Offset + 1
			p.consumed[r.Partition] = r.Offset + 1
			if !changed[i] {
				if ds[i].Key != nil {
					mDuplicate.Inc()
				}
				continue
			}
			d := ds[i]
			list, ok := p.lists[string(d.List)]
			if !ok {
				list = string(d.List)
				p.lists[list] = list
			}
			p.active.rows = append(p.active.rows, change.Change{Time: time.UnixMicro(d.Micros).UTC(), Op: d.Op, List: list, Key: string(d.Key),
				Partition: r.Partition, Offset: r.Offset})
			if d.Key[0] == 'i' {
				if d.Key[1] == 0 && d.Key[11] == 0xff && d.Key[12] == 0xff && allZero(d.Key[1:11]) {
					p.bits4[int(d.Key[17])-96] = true
				} else {
					p.bits6[d.Key[17]] = true
				}
			}
			mApplied.Inc()
		}
		mConsumed.Add(len(recs))
		var full *buffer
		// Flush a full buffer, an old one, or whatever is held once the
		// consumer has caught up (an empty poll): latency stays low when
		// idle and batches stay big under load.
		caughtUp := len(recs) == 0 && time.Since(p.lastFlush) >= p.cfg.FlushInterval/10
		if len(p.active.rows) >= p.cfg.FlushRows || (len(p.active.offsets) > 0 && (caughtUp || time.Since(p.lastFlush) >= p.cfg.FlushInterval)) {
			full = p.active
			p.active = newBuffer(p.cfg.FlushRows)
			p.flushing = append(p.flushing, full)
			p.lastFlush = time.Now()
		}
		p.mu.Unlock()
		if full != nil {
			select {
			case p.flushCh <- full: // blocks while one flush is in flight: backpressure
			case <-ctx.Done():
				// Run's flushSync picks it up.
			}
		}
		cl.AllowRebalance()
		if p.failed() != nil {
			return p.failed()
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (p *Processor) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushErr
}

// ErrStopped is wrapped by the error of a commit refused because an
// earlier commit failed.
var ErrStopped = errors.New("history commits stopped after a failed commit")

// flusher commits buffers handed over by poll, in order. After a failed
// commit it only drains the channel: commit refuses every later buffer.
func (p *Processor) flusher(cl *kgo.Client) {
	defer close(p.flushDone)
	for b := range p.flushCh {
		if err := p.commit(context.Background(), cl, b); err != nil && !errors.Is(err, ErrStopped) {
			p.log.Error("history flush failed; stopping consumption", "err", err)
		}
	}
}

// commit makes b durable in history with the offsets it covers, then
// commits those offsets to Kafka. Fail-stop: buffers are committed
// strictly in order (b must be the oldest uncommitted buffer), and once a
// commit failed every later call refuses (ErrStopped): the failed buffer
// and all later ones stay out of the manifest and out of Kafka, so a
// restart resumes from the last good manifest and loses nothing. (Without
// this, a later buffer's offsets, merged into the manifest, would move
// past the failed buffer's rows.)
func (p *Processor) commit(ctx context.Context, cl *kgo.Client, b *buffer) (err error) {
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	p.mu.Lock()
	if p.flushErr != nil {
		ferr := p.flushErr
		p.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrStopped, ferr)
	}
	if !slices.Contains(p.flushing, b) { // already committed by flushSync
		p.mu.Unlock()
		return nil
	}
	if p.flushing[0] != b {
		p.flushErr = fmt.Errorf("history commit out of order: %d older buffers pending", slices.Index(p.flushing, b))
		p.mu.Unlock()
		return p.flushErr
	}
	p.mu.Unlock()
	defer func() {
		// Still under commitMu: no later commit can slip in before the
		// failure is recorded.
		if err != nil {
			mCommitFail.Inc()
			p.mu.Lock()
			if p.flushErr == nil {
				p.flushErr = err
			}
			p.mu.Unlock()
		}
	}()
	if len(b.offsets) == 0 {
		p.drop(b)
		return nil
	}
	start := time.Now()
	// The buffer leaves memory at the instant its rows become visible in
	// the store (under the store's lock), so readers see them once.
	_, err = p.store.CommitGen(b.rows, b.offsets, func(gen int64) {
		p.mu.Lock()
		b.gen = gen
		p.flushing = slices.DeleteFunc(p.flushing, func(x *buffer) bool { return x == b })
		p.mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("commit %d changes to history: %w", len(b.rows), err)
	}
	mFlushes.Inc()
	mFlushRows.Add(len(b.rows))
	mFlushDur.UpdateDuration(start)
	offs := make(map[string]map[int32]kgo.EpochOffset, 1)
	offs[broker.TopicChanges] = make(map[int32]kgo.EpochOffset, len(b.offsets))
	for part, off := range b.offsets {
		offs[broker.TopicChanges][part] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	// History is durable; the Kafka commit only tells the group (and lag
	// monitoring) where we are. Failing it loses nothing: the manifest
	// offsets win on restart.
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil && resp != nil {
			for _, t := range resp.Topics {
				for _, pt := range t.Partitions {
					if err == nil {
						err = kerr.ErrorForCode(pt.ErrorCode)
					}
				}
			}
		}
		if err != nil {
			mCommitErr.Inc()
			p.log.Warn("commit offsets to kafka", "err", err)
		}
	})
	return nil
}

func (p *Processor) drop(b *buffer) {
	p.mu.Lock()
	p.flushing = slices.DeleteFunc(p.flushing, func(x *buffer) bool { return x == b })
	p.mu.Unlock()
}

// flushSync commits the active buffer and every buffer in flight, in
// order. After a failed commit it commits nothing and returns that error.
func (p *Processor) flushSync(ctx context.Context, cl *kgo.Client) error {
	p.mu.Lock()
	if p.flushErr != nil {
		err := p.flushErr
		p.mu.Unlock()
		return err
	}
	if len(p.active.offsets) > 0 {
		p.flushing = append(p.flushing, p.active)
		p.active = newBuffer(p.cfg.FlushRows)
	}
	pending := slices.Clone(p.flushing)
	p.mu.Unlock()
	for _, b := range pending {
		if err := p.commit(ctx, cl, b); err != nil {
			return err
		}
	}
	return nil
}

// Bits returns the prefix lengths present in history or buffers.
func (p *Processor) Bits() (bits4, bits6 []uint8) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ok := range p.bits4 {
		if ok {
			bits4 = append(bits4, uint8(i))
		}
	}
	for i, ok := range p.bits6 {
		if ok {
			bits6 = append(bits6, uint8(i))
		}
	}
	return bits4, bits6
}

// Changes returns every change of the given keys, stored or buffered,
// ordered by time (ties: stored order, then arrival order). Topic
// positions are set on buffered changes only (history lookups do not
// read them). It never
// blocks on a flush: buffered rows are collected first, the store is read,
// then buffers whose commit the store read already covered are dropped.
func (p *Processor) Changes(keys []string) ([]change.Change, error) {
	type part struct {
		b    *buffer
		rows []change.Change
	}
	var parts []part
	p.mu.Lock()
	for _, b := range p.flushing {
		parts = append(parts, part{b, b.lookup(keys, nil)})
	}
	parts = append(parts, part{p.active, p.active.lookup(keys, nil)})
	p.mu.Unlock()

	var out []change.Change
	gen, err := p.store.LookupGen(keys, func(c change.Change) { out = append(out, c) })
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	for _, pt := range parts {
		if pt.b.gen != 0 && pt.b.gen <= gen {
			continue // the store read holds these rows
		}
		out = append(out, pt.rows...)
	}
	p.mu.Unlock()
	// Order by time; the stable sort keeps stored rows (in key, arrival
	// order) before buffered (newer) rows of the same time.
	slices.SortStableFunc(out, func(a, b change.Change) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// CoveringKeys returns the keys whose changes make up r's history.
func (p *Processor) CoveringKeys(r resource.Resource) []string {
	b4, b6 := p.Bits()
	return r.Covering(b4, b6)
}

// Pending is the number of changes not yet in history.
func (p *Processor) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.active.rows)
	for _, b := range p.flushing {
		n += len(b.rows)
	}
	return n
}

// Lag is the number of records on the changes topic not yet consumed.
func (p *Processor) Lag(ctx context.Context) (int64, error) {
	cl := p.client.Load()
	if cl == nil {
		return 0, errors.New("processor is not running")
	}
	ends, err := broker.EndOffsets(ctx, cl, broker.TopicChanges)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var lag int64
	for part, end := range ends {
		if d := end - p.consumed[part]; d > 0 {
			lag += d
		}
	}
	return lag, nil
}
