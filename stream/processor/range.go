package processor

import (
	"errors"
	"slices"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// rangeStore is the store's key-range read (history.Store.RangeGen). It
// is asserted on Store rather than added to it so that stores without
// range reads keep working for everything else.
type rangeStore interface {
	RangeGen(ranges []resource.KeyRange, limit int, fn func(change.Change)) (gen int64, complete bool, err error)
}

// ErrNoRangeReads is returned by ChangesInRange when the store cannot
// read key ranges.
var ErrNoRangeReads = errors.New("history store has no key-range reads")

// ChangesInRange is Changes for every key in one of ranges (see
// resource.Resource.InsideRanges), stored or buffered, each change
// exactly once, ordered by time (ties: key order, stored before
// buffered). It gathers at most limit changes: when the ranges hold more,
// it returns complete == false and no rows.
//
// Buffered rows are matched by a pass over each buffer (they hold at most
// a flush's worth of rows) under the processor's lock; the hand-over with
// the store is the one of Changes (buffers collected first, dropped if
// the store read already covered their commit).
func (p *Processor) ChangesInRange(ranges []resource.KeyRange, limit int) (rows []change.Change, complete bool, err error) {
	rs, ok := p.store.(rangeStore)
	if !ok {
		return nil, false, ErrNoRangeReads
	}
	type part struct {
		b    *buffer
		rows []change.Change
	}
	var parts []part
	buffered := 0
	p.mu.Lock()
	for _, b := range append(slices.Clone(p.flushing), p.active) {
		var in []change.Change
		for _, c := range b.rows {
			if inRanges(ranges, c.Key) {
				in = append(in, c)
			}
		}
		if buffered += len(in); buffered > limit {
			// Whether or not the store holds them by now, they are all
			// in the ranges: more than limit either way.
			p.mu.Unlock()
			return nil, false, nil
		}
		parts = append(parts, part{b, in})
	}
	p.mu.Unlock()

	// Buffers the store read covers are not counted twice: the store may
	// take up to the whole limit, and the buffers are checked after.
	var out []change.Change
	gen, complete, err := rs.RangeGen(ranges, limit, func(c change.Change) { out = append(out, c) })
	if err != nil || !complete {
		return nil, false, err
	}
	p.mu.Lock()
	for _, pt := range parts {
		if pt.b.gen != 0 && pt.b.gen <= gen {
			continue // the store read holds these rows
		}
		out = append(out, pt.rows...)
	}
	p.mu.Unlock()
	if len(out) > limit {
		return nil, false, nil
	}
	slices.SortStableFunc(out, func(a, b change.Change) int { return a.Time.Compare(b.Time) })
	return out, true, nil
}

func inRanges(ranges []resource.KeyRange, k string) bool {
	for _, kr := range ranges {
		if kr.Contains(k) {
			return true
		}
	}
	return false
}
