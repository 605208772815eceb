package outage

import (
	"math"
	"time"

	"github.com/netwarden/netwarden/detect"
)

// aligner hands consumed telemetry to the detector in event-time order
// across partitions. The detector's watermark is the latest bin start it
// has seen, so a partition read far ahead of the others (a fetch of one
// partition's backlog) would make the others' points late. The aligner
// queues records per partition and releases the one with the earliest
// time among the queue heads, and only while every partition that is not
// caught up (its fetch position below its high watermark) has a queued
// record: a partition that may still hold earlier points holds the
// others back. The high watermarks come from fetches and from listing
// the end offsets whenever records arrive (a fetch answers for its own
// partition only). A record produced to a partition after that listing
// is waited for a little (wait, detect.align_wait): while another
// partition is caught up and empty, a record is released only once it has
// been queued that long, so a producer's burst whose partitions reach the
// broker a few milliseconds apart (librdkafka and franz-go send each
// partition's batch on its own) is still lined up; a producer later than
// that is covered by the grace period. Within a partition records keep
// their order, so the stored offset of a partition is the one after its
// last released record.
type aligner struct {
	queues map[int32][]queued
	pos    map[int32]int64 // next offset to fetch
	hw     map[int32]int64 // high watermark seen
	wait   time.Duration   // hold while another partition is empty (0: none)
}

type queued struct {
	offset int64
	p      detect.Point
	err    error     // a record that is no point: released first
	at     time.Time // when it was fetched
}

func (q queued) time() int64 {
	if q.err != nil {
		return math.MinInt64
	}
	return q.p.Time
}

func newAligner(start, ends map[int32]int64, wait time.Duration) *aligner {
	a := &aligner{queues: map[int32][]queued{}, pos: map[int32]int64{}, hw: map[int32]int64{}, wait: wait}
	for p, e := range ends {
		a.pos[p], a.hw[p] = start[p], e
	}
	return a
}

// fetched records a partition's fetched records and high watermark.
func (a *aligner) fetched(part int32, hw int64, recs []queued) {
	a.queues[part] = append(a.queues[part], recs...)
	if n := len(recs); n > 0 {
		a.pos[part] = max(a.pos[part], recs[n-1].offset+1)
	}
	if hw > a.hw[part] {
		a.hw[part] = hw
	}
}

// ends raises the high watermarks to the listed end offsets.
func (a *aligner) ends(m map[int32]int64) {
	for p, e := range m {
		if _, ok := a.pos[p]; ok && e > a.hw[p] {
			a.hw[p] = e
		}
	}
}

// next pops the record to hand over next; ok is false while none may go,
// and then retry > 0 is how long until the held head may go.
func (a *aligner) next(now time.Time) (part int32, q queued, ok bool, retry time.Duration) {
	best := int32(-1)
	bt := int64(math.MaxInt64)
	for p, pos := range a.pos {
		qs := a.queues[p]
		if len(qs) == 0 {
			if pos < a.hw[p] {
				return 0, queued{}, false, 0 // it may hold earlier points: wait for its fetch
			}
			continue
		}
		if t := qs[0].time(); t < bt || (t == bt && p < best) {
			best, bt = p, t
		}
	}
	if best < 0 {
		return 0, queued{}, false, 0
	}
	if age := now.Sub(a.queues[best][0].at); a.wait > 0 && age < a.wait {
		for p := range a.pos {
			if p != best && len(a.queues[p]) == 0 { // caught up, as far as the broker knows
				return 0, queued{}, false, a.wait - age
			}
		}
	}
	q = a.queues[best][0]
	a.queues[best] = a.queues[best][1:]
	if len(a.queues[best]) == 0 {
		a.queues[best] = nil // release the backing array
	}
	return best, q, true, 0
}

// queued is the number of records waiting in part's queue.
func (a *aligner) queued(part int32) int { return len(a.queues[part]) }

// caughtUp reports whether every consumed record has been handed over and
// every partition's fetch position reached its known high watermark: only
// then may the wall clock move event time (a backlog still being read
// would otherwise turn into late points).
func (a *aligner) caughtUp() bool {
	for p, pos := range a.pos {
		if len(a.queues[p]) > 0 || pos < a.hw[p] {
			return false
		}
	}
	return true
}
