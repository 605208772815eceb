package outage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/entity"
)

// Broker makes Kafka clients (*broker.Broker).
type Broker interface {
	NewClient(opts ...kgo.Opt) (*kgo.Client, error)
}

// Names gives entities' display names for published alerts
// (entity.Registry); nil: the code is the name.
type Names interface {
	Lookup(typ, code string) (entity.Entity, error)
}

// Record is an alert as published on netwarden.alerts.outage (JSON;
// schema in docs/schemas/alert-outage.json), keyed by
// "entity_type/entity_code". Consumers drop repeated ids (the topic is
// at-least-once).
type Record struct {
	Alert
	EntityName string `json:"entity_name"`
}

var (
	mPoints    = metrics.NewCounter(`netwarden_outage_points_total`)
	mLate      = metrics.NewCounter(`netwarden_outage_points_late_total`)
	mBad       = metrics.NewCounter(`netwarden_outage_points_bad_total`)
	mAlerts    = metrics.NewCounter(`netwarden_outage_alerts_total`)
	mPublished = metrics.NewCounter(`netwarden_outage_alerts_published_total`)
	mPubErr    = metrics.NewCounter(`netwarden_outage_publish_errors_total`)
)

// Service consumes telemetry, runs the detector and stores, publishes
// and taps what it raises. See the package documentation (doc.go).
type Service struct {
	cfg   Config
	brk   Broker
	store *Store
	names Names
	tap   Tap
	log   *slog.Logger
	now   func() time.Time
	topic string
	out   string
	ready chan struct{}

	exp    *Exporter                  // its health is reported with the service's (SetExporter)
	client atomic.Pointer[kgo.Client] // while running: end offsets for Lag
	mu     sync.Mutex
	hs     health // guarded by mu
}

// Option configures NewService.
type Option func(*Service)

// WithClock sets the wall clock that moves event time while idle (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithTopics overrides the telemetry and alert topics (tests).
func WithTopics(in, out string) Option {
	return func(s *Service) { s.topic, s.out = in, out }
}

// NewService makes the service; cfg must be valid. names and tap may be nil.
func NewService(cfg Config, brk Broker, store *Store, names Names, tap Tap, log *slog.Logger, opts ...Option) *Service {
	s := &Service{cfg: cfg, brk: brk, store: store, names: names, tap: tap, log: log, now: time.Now,
		topic: broker.TopicTelemetry, out: broker.TopicAlertsOutage, ready: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SetTap sets the tap (before Run).
func (s *Service) SetTap(t Tap) { s.tap = t }

// Ready is closed once the detector state is rebuilt and live
// consumption starts.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Store is the service's store.
func (s *Service) Store() *Store { return s.store }

// Run consumes until ctx ends. It returns an error when the store or the
// tap fails (fail-stop: a restart resumes from the last commit).
func (s *Service) Run(ctx context.Context) (err error) {
	s.setState(StateReplaying, nil)
	defer func() {
		if err != nil {
			s.setState(StateFailed, err)
		} else {
			s.setState(StateStopped, nil)
		}
	}()
	return s.run(ctx)
}

func (s *Service) run(ctx context.Context) error {
	det, err := detect.New(s.cfg.Config)
	if err != nil {
		return fmt.Errorf("outage detector: %w", err)
	}
	st, err := s.store.State(ctx)
	if err != nil {
		return err
	}
	cl, err := s.brk.NewClient(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	s.client.Store(cl)
	defer s.client.Store(nil)
	ends, err := broker.EndOffsets(ctx, cl, s.topic)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := s.replay(ctx, det, st, ends); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := s.deliver(ctx, cl); err != nil {
		return err
	}
	s.consumed(st.Offsets, st.Watermark)
	close(s.ready)
	s.setState(StateRunning, nil)
	return s.live(ctx, det, st, ends, cl)
}

// decode reads a telemetry record; nil for a record that is no point.
func decode(r *kgo.Record) (detect.Point, error) {
	var p detect.Point
	if err := json.Unmarshal(r.Value, &p); err != nil {
		return p, fmt.Errorf("%w: %v", detect.ErrBadPoint, err)
	}
	return p, nil
}

// replay rebuilds the detector from the records below the stored
// offsets (skipping those stored as late), then moves it to the stored
// watermark: it is then in the state it had at the last commit. Nothing
// is written.
func (s *Service) replay(ctx context.Context, det *detect.Detector, st State, ends map[int32]int64) error {
	target := map[int32]int64{}
	parts := map[string]map[int32]kgo.Offset{s.topic: {}}
	for p, o := range st.Offsets {
		end, ok := ends[p]
		if !ok {
			return fmt.Errorf("stored offsets name partition %d of %s, which does not exist", p, s.topic)
		}
		if o > end {
			return fmt.Errorf("stored offset %d of %s/%d is past its end %d (topic recreated?)", o, s.topic, p, end)
		}
		if o > 0 {
			target[p] = o
			parts[s.topic][p] = kgo.NewOffset().AtStart()
		}
	}
	start := time.Now()
	n := 0
	if len(target) > 0 {
		cl, err := s.brk.NewClient(kgo.ConsumePartitions(parts), kgo.FetchMaxBytes(64<<20))
		if err != nil {
			return err
		}
		defer cl.Close()
		if n, err = s.replayRecords(ctx, cl, det, st, target); err != nil {
			return err
		}
	}
	det.AdvanceTo(st.Watermark)
	s.replayed(time.Since(start))
	s.log.Info("outage detector rebuilt", "points", n, "series", det.Series(), "watermark", st.Watermark, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// replayRecords adds the records below target (per partition) to det,
// skipping those stored as late. Records deleted by the topic's
// retention are gone: the detector then lacks their points (logged).
func (s *Service) replayRecords(ctx context.Context, cl *kgo.Client, det *detect.Detector, st State, target map[int32]int64) (int, error) {
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("list start offsets of %s: %w", s.topic, err)
	}
	for p, end := range target {
		so, ok := starts.Lookup(s.topic, p)
		if !ok || so.Offset <= 0 {
			continue
		}
		s.log.Warn("telemetry below the stored offset deleted by retention: the detector's windows miss its points", "partition", p, "log_start", so.Offset, "stored", end)
		if so.Offset > end {
			s.log.Error("telemetry deleted by retention before it was consumed: points lost", "partition", p, "records", so.Offset-end)
		}
		if so.Offset >= end {
			delete(target, p) // nothing left to replay
		}
	}
	n := 0
	for len(target) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = fmt.Errorf("replay %s/%d: %w", t, p, err)
		})
		if ferr != nil {
			return n, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := target[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(target, r.Partition)
			}
			if st.Late[r.Partition][r.Offset] {
				return
			}
			p, err := decode(r)
			if err == nil {
				err = det.Add(p)
			}
			if err == nil {
				n++
			}
		})
	}
	return n, nil
}

// live consumes from the stored offsets, committing each polled batch.
// Records reach the detector through the aligner (event-time order across
// partitions); a partition whose queue grows long is paused until the
// others catch up.
func (s *Service) live(ctx context.Context, det *detect.Detector, st State, ends map[int32]int64, prod *kgo.Client) error {
	parts := map[int32]kgo.Offset{}
	start := map[int32]int64{}
	for p := range ends {
		parts[p] = kgo.NewOffset().AtStart()
		if o, ok := st.Offsets[p]; ok {
			parts[p] = kgo.NewOffset().At(o)
			start[p] = o
		}
	}
	cl, err := s.brk.NewClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: parts}), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	al := newAligner(start, ends, s.cfg.AlignWait)
	paused := map[int32]bool{}
	var b Batch
	det.OnBin(func(v detect.Verdict) { b.Verdicts = append(b.Verdicts, v) })
	defer det.OnBin(nil)
	lastPrune := time.Time{}
	lastW := st.Watermark
	backlog := false
	var hold time.Duration // until the aligner's held head may go
	for {
		wait := s.cfg.Tick
		if backlog { // released records remain: do not wait for new ones
			wait = time.Millisecond
		}
		if hold > 0 && hold < wait {
			wait = hold
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollRecords(pctx, s.cfg.MaxBatch)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.log.Warn("fetch telemetry", "topic", t, "partition", p, "err", err)
			}
		})
		got := false
		var newest time.Time
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			got = got || len(ftp.Records) > 0
			for _, r := range ftp.Records {
				if r.Timestamp.After(newest) {
					newest = r.Timestamp
				}
			}
			if ftp.Err != nil {
				return
			}
			recs := make([]queued, len(ftp.Records))
			at := time.Now() // the hold is wall time, whatever the event clock
			for i, r := range ftp.Records {
				p, err := decode(r)
				recs[i] = queued{offset: r.Offset, p: p, err: err, at: at}
			}
			al.fetched(ftp.Partition, ftp.HighWatermark, recs)
		})
		s.received(newest)
		if got { // other partitions may hold earlier points: learn their ends
			if m, err := broker.EndOffsets(ctx, cl, s.topic); err == nil {
				al.ends(m)
			} else if ctx.Err() == nil {
				s.log.Warn("list telemetry end offsets", "err", err)
			}
		}
		b = Batch{Offsets: map[int32]int64{}}
		n := 0
		hold = 0
		for n < s.cfg.MaxBatch {
			part, q, ok, retry := al.next(time.Now())
			if !ok {
				hold = retry
				break
			}
			n++
			b.Offsets[part] = q.offset + 1
			err := q.err
			if err == nil {
				err = det.Add(q.p)
			}
			switch {
			case err == nil:
				mPoints.Inc()
			case errors.Is(err, detect.ErrLate):
				mLate.Inc()
				b.Late = append(b.Late, [2]int64{int64(part), q.offset})
			default:
				mBad.Inc()
				s.log.Debug("bad telemetry point", "partition", part, "offset", q.offset, "err", err)
			}
		}
		backlog = n == s.cfg.MaxBatch
		for p := range ends {
			switch q := al.queued(p); {
			case q > 4*s.cfg.MaxBatch && !paused[p]:
				cl.PauseFetchPartitions(map[string][]int32{s.topic: {p}})
				paused[p] = true
			case q <= s.cfg.MaxBatch && paused[p]:
				cl.ResumeFetchPartitions(map[string][]int32{s.topic: {p}})
				paused[p] = false
			}
		}
		alerts := slices.Clone(det.Advance())
		now := s.now().Unix()
		// The wall clock moves event time only once the backlog is read:
		// while records of a burst are still queued or unfetched, jumping
		// to now would make them late (their bins already judged).
		if lead := s.cfg.ClockLead; lead > 0 && !backlog && al.caughtUp() && now > det.Watermark() && now-det.Watermark() <= int64(lead/time.Second) {
			alerts = append(alerts, det.AdvanceTo(now)...)
		}
		b.Alerts, b.Watermark = alerts, det.Watermark()
		// A watermark moved by the wall clock alone is committed too:
		// replay must reach the same cutoff.
		if len(b.Offsets) > 0 || len(b.Verdicts) > 0 || b.Watermark != lastW {
			lastW = b.Watermark
			stored, err := s.store.Commit(context.WithoutCancel(ctx), b)
			if err != nil {
				return err
			}
			mAlerts.Add(len(stored))
			s.consumed(b.Offsets, b.Watermark)
		}
		if err := s.deliver(ctx, prod); err != nil {
			return err
		}
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			if n, err := s.store.Prune(ctx, det.Watermark()-int64(s.cfg.SignalRetention/time.Second)); err != nil {
				s.log.Warn("prune outage signals", "err", err)
			} else if n > 0 {
				s.log.Info("pruned outage signals", "rows", n)
			}
		}
	}
}

// deliver publishes the alerts not yet published (a failure is retried
// on the next round) and hands the alerts not yet tapped to the tap (a
// failure stops the service).
func (s *Service) deliver(ctx context.Context, prod *kgo.Client) error {
	for ctx.Err() == nil {
		n, err := s.publish(ctx, prod)
		if err != nil {
			mPubErr.Inc()
			s.log.Warn("publish outage alerts; retrying later", "err", err)
			break
		}
		if n < s.cfg.PublishBatch {
			break
		}
	}
	if s.tap == nil {
		return nil
	}
	for ctx.Err() == nil {
		from, err := s.store.mark(ctx, markTapped)
		if err != nil {
			return err
		}
		als, err := s.store.AlertsAfter(ctx, from, s.cfg.PublishBatch)
		if err != nil || len(als) == 0 {
			return err
		}
		if err := s.tap.OnOutageAlerts(ctx, als); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("outage tap: %w", err)
		}
		if err := s.store.setMark(ctx, markTapped, als[len(als)-1].ID); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) publish(ctx context.Context, prod *kgo.Client) (int, error) {
	from, err := s.store.mark(ctx, markPublished)
	if err != nil {
		return 0, err
	}
	als, err := s.store.AlertsAfter(ctx, from, s.cfg.PublishBatch)
	if err != nil || len(als) == 0 {
		return 0, err
	}
	recs := make([]*kgo.Record, len(als))
	for i, a := range als {
		v, err := json.Marshal(Record{Alert: a, EntityName: s.name(a.EntityType, a.EntityCode)})
		if err != nil {
			return 0, fmt.Errorf("encode outage alert %d: %w", a.ID, err)
		}
		recs[i] = &kgo.Record{Topic: s.out, Key: []byte(a.EntityType + "/" + a.EntityCode), Value: v}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("produce %d outage alerts to %s: %w", len(recs), s.out, err)
	}
	if err := s.store.setMark(ctx, markPublished, als[len(als)-1].ID); err != nil {
		return 0, err
	}
	mPublished.Add(len(als))
	return len(als), nil
}

func (s *Service) name(typ, code string) string {
	if s.names == nil {
		return code
	}
	e, err := s.names.Lookup(typ, code)
	if err != nil || e.Name == "" {
		return code
	}
	return e.Name
}

// Bins returns each configured datasource's bin width.
func (s *Service) Bins() map[string]int64 { return s.cfg.Bins() }

// Alerts queries stored alerts.
func (s *Service) Alerts(ctx context.Context, f Filter) ([]Alert, error) {
	return s.store.Alerts(ctx, f)
}

// Events queries stored events.
func (s *Service) Events(ctx context.Context, f Filter) ([]detect.Event, error) {
	return s.store.Events(ctx, f)
}

// Signals queries an entity's signals with their baseline.
func (s *Service) Signals(ctx context.Context, f Filter) ([]Signal, error) {
	return s.store.Signals(ctx, f, s.cfg.Bins())
}

// Watermark is the detector's event time at the last commit.
func (s *Service) Watermark(ctx context.Context) (int64, error) { return s.store.Watermark(ctx) }
