// Package detect raises outage alerts on per-entity telemetry series, the way IODA does.
//
// Contract:
//   - A series is one (datasource, entity type, entity code). Points carry the start of their bin
//     (unix seconds, a multiple of the datasource's bin); the last point for a bin wins.
//   - Event time: a bin is evaluated once the watermark (the latest bin start seen, or a clock
//     given to AdvanceTo) minus the grace period has reached its end; bins are evaluated in order
//     of their end, so each series is judged in time order however its points arrived. A point
//     for a bin already evaluated is
//     rejected with ErrLate. Replaying points in one go (Add all, then Flush) gives the same alerts
//     as live processing (Add and Advance point by point) as long as no point is later than the
//     grace period. Bins without a point are not judged (producers publish zeros for dark entities).
//   - Baseline: the median of the series' values in the window (t-Window, t). A bin is judged only
//     once the window holds WarmUp values and the median is at least MinPredicted.
//   - Levels: normal when value > median-MinDrop; otherwise critical when value <
//     median*Critical, warning when value < median*Warning, else normal. Inpainting: a bin
//     judged warning or critical enters the window as the median, not as its value, so an outage
//     does not drag the baseline down; after AcceptAfter such bins in a row the window is
//     replaced by their real values (a lasting new level is accepted).
//   - Alerts only on level transitions: the alerted level moves to the level farthest from it
//     that each of the last MinDuration evaluated bins reached on the same side (a bin not
//     judged counts as normal). With MinDuration 2, from normal: warning, critical raises a
//     warning (a critical then needs two critical bins in a row); critical, critical raises a
//     critical; from critical: warning, normal is a warning. The alert's time, value and
//     historyValue are those of the first bin of that run (the longest run of bins at that
//     level or beyond).
//   - Memory: two float64 per window slot per series (bgp 24 h: 4.6 KB; 7 d at 300 s: 32 KB);
//     series are never dropped. A Detector is not safe for concurrent use.
package detect

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Point is one bin of one series.
type Point struct {
	Datasource string  `json:"datasource"`
	EntityType string  `json:"entity_type"`
	EntityCode string  `json:"entity_code"`
	Time       int64   `json:"time"` // unix seconds, bin start
	Value      float64 `json:"value"`
}

// Level is a series' state.
type Level uint8

const (
	Normal Level = iota
	Warning
	Critical
)

func (l Level) String() string {
	switch l {
	case Normal:
		return "normal"
	case Warning:
		return "warning"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("Level(%d)", l)
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	for _, c := range []Level{Normal, Warning, Critical} {
		if string(b) == c.String() {
			*l = c
			return nil
		}
	}
	return fmt.Errorf("level %q: want normal, warning or critical", b)
}

// Verdict is the evaluation of one bin of one series, for plotting a signal with its baseline.
type Verdict struct {
	Datasource, EntityType, EntityCode string
	Time                               int64
	Value                              float64
	HistoryValue                       float64 // the window's median; 0 during warm-up
	Judged                             bool    // false during warm-up or below the minimum prediction
	Level                              Level   // the series' alerted level after this bin
}

// Method names the baseline method in alerts.
const Method = "median"

// Alert is a level transition of one series.
type Alert struct {
	Datasource   string  `json:"datasource"`
	EntityType   string  `json:"entity_type"`
	EntityCode   string  `json:"entity_code"`
	Time         int64   `json:"time"` // start of the first bin of the new level
	Level        Level   `json:"level"`
	Condition    string  `json:"condition"` // e.g. "< historical * 0.5"
	Value        float64 `json:"value"`
	HistoryValue float64 `json:"historyValue"` // the baseline (median) at Time; 0 during warm-up
	Method       string  `json:"method"`
	Window       int64   `json:"window"` // seconds
}

// Errors of Add.
var (
	ErrLate     = errors.New("point later than the grace period")
	ErrBadPoint = errors.New("bad point")
)

type seriesKey struct{ ds, typ, code string }

func (a seriesKey) compare(b seriesKey) int {
	if c := strings.Compare(a.ds, b.ds); c != 0 {
		return c
	}
	if c := strings.Compare(a.typ, b.typ); c != 0 {
		return c
	}
	return strings.Compare(a.code, b.code)
}

type binVal struct {
	t int64
	v float64
}

type dsState struct {
	cfg   DatasourceConfig
	slots int
}

type series struct {
	key    seriesKey
	ds     *dsState
	ring   []float64 // slot (t/bin)%slots holds bin t's window value, NaN if none
	sorted []float64 // the ring's values, ascending
	last   int64     // start of the last evaluated bin
	fresh  bool      // nothing evaluated yet
	level  Level
	up     [3]runStart // per level l, the run of bins judged l or more severe
	down   [3]runStart // per level l, the run of bins judged l or less severe
	run    []binVal    // real values of the current inpainted run
	queued []binVal    // points waiting for their bin's evaluation
}

// Detector holds every series' state. It is not safe for concurrent use; its owner feeds it.
type Detector struct {
	cfg       Config
	ds        map[string]*dsState
	series    map[seriesKey]*series
	buckets   map[int64][]*series // by bin end
	ends      endHeap
	watermark int64 // latest bin start seen: every bin ending before it is complete
	maxEnd    int64 // latest bin end queued
	cutoff    int64 // bins ending at or before cutoff are evaluated
	free      [][]*series
	out       []Alert
	onBin     func(Verdict)
}

// OnBin has f called with the verdict of every bin evaluated from now on (nil: none), in
// evaluation order, from the goroutine calling Advance, AdvanceTo or Flush.
func (d *Detector) OnBin(f func(Verdict)) { d.onBin = f }

// New returns a detector for a valid config.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detect config: %w", err)
	}
	d := &Detector{
		cfg:     cfg,
		ds:      make(map[string]*dsState, len(cfg.Datasources)),
		series:  make(map[seriesKey]*series),
		buckets: make(map[int64][]*series),
		cutoff:  math.MinInt64,
	}
	for n, c := range cfg.Datasources {
		d.ds[n] = &dsState{cfg: c, slots: c.Slots()}
	}
	return d, nil
}

// Series is the number of series seen.
func (d *Detector) Series() int { return len(d.series) }

// Add queues a point for its bin's evaluation. It evaluates nothing; call Advance.
func (d *Detector) Add(p Point) error {
	ds, ok := d.ds[p.Datasource]
	switch {
	case !ok:
		return fmt.Errorf("%w: unknown datasource %q", ErrBadPoint, p.Datasource)
	case p.EntityType == "" || p.EntityCode == "":
		return fmt.Errorf("%w: empty entity type or code", ErrBadPoint)
	case p.Time%ds.cfg.Bin != 0:
		return fmt.Errorf("%w: time %d is not the start of a %d s bin", ErrBadPoint, p.Time, ds.cfg.Bin)
	case math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || p.Value < 0:
		return fmt.Errorf("%w: value %g: must be finite and >= 0", ErrBadPoint, p.Value)
	}
	end := p.Time + ds.cfg.Bin
	if end <= d.cutoff {
		return fmt.Errorf("%w: %s %s/%s bin %d already evaluated", ErrLate, p.Datasource, p.EntityType, p.EntityCode, p.Time)
	}
	k := seriesKey{p.Datasource, p.EntityType, p.EntityCode}
	s := d.series[k]
	if s == nil {
		s = newSeries(k, ds)
		d.series[k] = s
	}
	for i := range s.queued {
		if s.queued[i].t == p.Time {
			s.queued[i].v = p.Value
			return nil
		}
	}
	s.queued = append(s.queued, binVal{p.Time, p.Value})
	b, ok := d.buckets[end]
	if !ok {
		heap.Push(&d.ends, end)
		if n := len(d.free); n > 0 {
			b, d.free = d.free[n-1], d.free[:n-1]
		}
	}
	d.buckets[end] = append(b, s)
	if p.Time > d.watermark {
		d.watermark = p.Time
	}
	if end > d.maxEnd {
		d.maxEnd = end
	}
	return nil
}

// Watermark is the latest bin start seen (or set by AdvanceTo).
func (d *Detector) Watermark() int64 { return d.watermark }

// Advance evaluates every bin that ended at least the grace period before the watermark and
// returns the alerts raised, in order of evaluation (bin end, then series). The slice is reused
// by the next call.
func (d *Detector) Advance() []Alert { return d.evaluate(d.watermark - d.cfg.Grace) }

// AdvanceTo is Advance with the watermark moved to at least now (e.g. the wall clock).
func (d *Detector) AdvanceTo(now int64) []Alert {
	if now > d.watermark {
		d.watermark = now
	}
	return d.Advance()
}

// Flush evaluates every queued bin (end of a replay); points for them are late afterwards.
func (d *Detector) Flush() []Alert { return d.evaluate(max(d.watermark, d.maxEnd)) }

func (d *Detector) evaluate(cutoff int64) []Alert {
	d.out = d.out[:0]
	if cutoff > d.cutoff {
		d.cutoff = cutoff
	}
	for len(d.ends) > 0 && d.ends[0] <= d.cutoff {
		end := heap.Pop(&d.ends).(int64)
		b := d.buckets[end]
		delete(d.buckets, end)
		first := len(d.out)
		for _, s := range b {
			d.out = s.evaluate(end-s.ds.cfg.Bin, d.out, d.onBin)
		}
		if len(d.out)-first > 1 {
			slices.SortStableFunc(d.out[first:], func(a, b Alert) int {
				return seriesKey{a.Datasource, a.EntityType, a.EntityCode}.compare(seriesKey{b.Datasource, b.EntityType, b.EntityCode})
			})
		}
		clear(b)
		d.free = append(d.free, b[:0])
	}
	return d.out
}

func newSeries(k seriesKey, ds *dsState) *series {
	buf := make([]float64, 2*ds.slots)
	s := &series{key: k, ds: ds, ring: buf[:ds.slots], sorted: buf[ds.slots:ds.slots], fresh: true}
	for i := range s.ring {
		s.ring[i] = math.NaN()
	}
	return s
}

func (s *series) slot(t int64) int {
	i := (t / s.ds.cfg.Bin) % int64(s.ds.slots)
	if i < 0 {
		i += int64(s.ds.slots)
	}
	return int(i)
}

// search is the index of the first value >= v.
func search(a []float64, v float64) int {
	lo, hi := 0, len(a)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if a[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (s *series) insert(v float64) {
	s.sorted = slices.Insert(s.sorted, search(s.sorted, v), v)
}

func (s *series) remove(v float64) {
	i := search(s.sorted, v)
	s.sorted = slices.Delete(s.sorted, i, i+1)
}

// replace puts v in place of the value at index i, with one shift.
func (s *series) replace(i int, v float64) {
	a := s.sorted
	j := search(a, v)
	if j <= i {
		copy(a[j+1:i+1], a[j:i])
		a[j] = v
		return
	}
	j--
	copy(a[i:j], a[i+1:j+1])
	a[j] = v
}

func (s *series) setSlot(t int64, v float64) {
	i := s.slot(t)
	if old := s.ring[i]; !math.IsNaN(old) {
		s.remove(old)
	}
	s.ring[i] = v
	if !math.IsNaN(v) {
		s.insert(v)
	}
}

func (s *series) clearWindow() {
	for i := range s.ring {
		s.ring[i] = math.NaN()
	}
	s.sorted = s.sorted[:0]
}

// moveTo empties the slots of the bins strictly between the last evaluated one and t: they
// hold values older than the window (t-Window, t). Bin t's slot (holding t-Window) is left to
// evaluate, which replaces it.
func (s *series) moveTo(t int64) {
	bin := s.ds.cfg.Bin
	if s.fresh || (t-s.last)/bin >= int64(s.ds.slots) {
		s.clearWindow()
		return
	}
	for u := s.last + bin; u < t; u += bin {
		s.setSlot(u, math.NaN())
	}
}

// rank is the r-th smallest value of the window without index skip (-1: none).
func (s *series) rank(r, skip int) float64 {
	if skip >= 0 && r >= skip {
		return s.sorted[r+1]
	}
	return s.sorted[r]
}

// median of the window without index skip (-1: none); n is the window's size.
func (s *series) median(n, skip int) float64 {
	if n%2 == 1 {
		return s.rank(n/2, skip)
	}
	return (s.rank(n/2-1, skip) + s.rank(n/2, skip)) / 2
}

func (s *series) evaluate(t int64, out []Alert, onBin func(Verdict)) []Alert {
	v, pred, judged, cand := s.judge(t)
	out = s.transition(t, v, pred, cand, out)
	if onBin != nil {
		onBin(Verdict{Datasource: s.key.ds, EntityType: s.key.typ, EntityCode: s.key.code,
			Time: t, Value: v, HistoryValue: pred, Judged: judged, Level: s.level})
	}
	return out
}

// judge takes bin t's value out of the queue, judges it against the window and moves the window on.
func (s *series) judge(t int64) (v, pred float64, judged bool, cand Level) {
	for i, q := range s.queued {
		if q.t == t {
			v = q.v
			s.queued = slices.Delete(s.queued, i, i+1)
			break
		}
	}
	s.moveTo(t)
	s.fresh, s.last = false, t
	slot := s.slot(t)
	skip, n := -1, len(s.sorted)
	if old := s.ring[slot]; !math.IsNaN(old) {
		skip, n = search(s.sorted, old), n-1
	}
	cfg := &s.ds.cfg
	fed := v
	if n >= cfg.WarmUp {
		pred = s.median(n, skip)
		if pred >= cfg.MinPredicted {
			judged = true
			switch {
			case pred-v < cfg.MinDrop:
			case v < pred*cfg.Critical:
				cand = Critical
			case v < pred*cfg.Warning:
				cand = Warning
			}
		}
	}
	if cand != Normal {
		fed = pred
		s.run = append(s.run, binVal{t, v})
	} else {
		s.run = s.run[:0]
	}
	if skip >= 0 {
		s.replace(skip, fed)
	} else {
		s.insert(fed)
	}
	s.ring[slot] = fed
	if len(s.run) >= cfg.AcceptAfter {
		s.clearWindow()
		for _, r := range s.run {
			if r.t > t-cfg.Window {
				s.setSlot(r.t, r.v)
			}
		}
		s.run = s.run[:0]
	}
	return v, pred, judged, cand
}

// transition moves the alerted level on after bin t judged cand: to the level farthest from
// the current one that the last MinDuration bins all reached on the same side.
func (s *series) transition(t int64, v, pred float64, cand Level, out []Alert) []Alert {
	for l := Normal; l <= Critical; l++ {
		s.up[l].extend(cand >= l, t, v, pred)
		s.down[l].extend(cand <= l, t, v, pred)
	}
	cfg := &s.ds.cfg
	var to *runStart
	switch {
	case cand > s.level:
		for l := Critical; l > s.level && to == nil; l-- {
			if s.up[l].n >= cfg.MinDuration {
				to = &s.up[l]
				s.level = l
			}
		}
	case cand < s.level:
		for l := Normal; l < s.level && to == nil; l++ {
			if s.down[l].n >= cfg.MinDuration {
				to = &s.down[l]
				s.level = l
			}
		}
	}
	if to == nil {
		return out
	}
	return append(out, Alert{
		Datasource: s.key.ds, EntityType: s.key.typ, EntityCode: s.key.code,
		Time: to.t, Level: s.level, Condition: Condition(*cfg, s.level),
		Value: to.v, HistoryValue: to.h, Method: Method, Window: cfg.Window,
	})
}

// runStart is a run of consecutive evaluated bins: its length and its first bin.
type runStart struct {
	n    int
	t    int64
	v, h float64
}

// extend adds a bin to the run if in, else ends the run.
func (r *runStart) extend(in bool, t int64, v, h float64) {
	switch {
	case !in:
		r.n = 0
	case r.n == 0:
		*r = runStart{1, t, v, h}
	default:
		r.n++
	}
}

// Condition is the alert condition of a level, as IODA writes it.
func Condition(c DatasourceConfig, l Level) string {
	switch l {
	case Critical:
		return fmt.Sprintf("< historical * %g", c.Critical)
	case Warning:
		return fmt.Sprintf("< historical * %g", c.Warning)
	}
	return fmt.Sprintf(">= historical * %g", c.Warning)
}

type endHeap []int64

func (h endHeap) Len() int           { return len(h) }
func (h endHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h endHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
