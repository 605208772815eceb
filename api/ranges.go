package api

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/live"
)

// RangeHistory reads the changes of every key in key ranges
// (processor.Processor.ChangesInRange); History implementations that
// have it answer range queries.
type RangeHistory interface {
	ChangesInRange(ranges []resource.KeyRange, limit int) (rows []change.Change, complete bool, err error)
}

// RangeLive lists the listed resources inside a prefix (live.State.Inside);
// Live implementations that have it answer /badip/{cidr} with them.
type RangeLive interface {
	Inside(p netip.Prefix, skip, limit int) (entries []live.Entry, total int)
}

var mRangeDur = metrics.NewHistogram(`netwarden_history_range_duration_seconds`)

// insideHistory returns the changes of every listed resource strictly
// inside the IP range r, oldest first, as items naming that resource
// (ip and resource) with the lists it is on itself after the change
// (blacklists). It gathers at most http.max_range_rows changes and fails
// with errTooBroad beyond.
func (s *Server) insideHistory(r resource.Resource, ranges []resource.KeyRange) ([]ChangeItem, error) {
	rh, ok := s.deps.History.(RangeHistory)
	if !ok {
		return nil, fmt.Errorf("range history %w", errUnavailable)
	}
	start := time.Now()
	cs, complete, err := rh.ChangesInRange(ranges, s.cfg.MaxRangeRows)
	mRangeDur.UpdateDuration(start)
	if err != nil {
		return nil, err
	}
	if !complete {
		return nil, fmt.Errorf("%w: %s holds more than %d changes of listed resources inside it (http.max_range_rows); ask for a narrower range, or use /sql",
			errTooBroad, r, s.cfg.MaxRangeRows)
	}
	on := map[string][]string{} // key -> sorted lists it is on
	names := map[string]string{}
	items := make([]ChangeItem, 0, len(cs))
	for _, ch := range cs {
		lists := on[ch.Key]
		i, found := slices.BinarySearch(lists, ch.List)
		switch {
		case ch.Op == change.Add && !found:
			lists = slices.Insert(lists, i, ch.List)
		case ch.Op == change.Rem && found:
			lists = slices.Delete(lists, i, i+1)
		}
		on[ch.Key] = lists
		name, ok := names[ch.Key]
		if !ok {
			rr, err := resource.FromKey(ch.Key)
			if err != nil {
				return nil, fmt.Errorf("history key of %s: %w", r, err)
			}
			name = rr.String()
			names[ch.Key] = name
		}
		items = append(items, ChangeItem{Timestamp: ch.Time.Unix(), Command: ch.Op.String(), IP: name, BlacklistChange: ch.List,
			Blacklists: strings.Join(lists, ","), Resource: name, Inside: true})
	}
	return items, nil
}

// withInside merges the covering history of r (oldest first) with the
// history of the resources inside r when r is a CIDR range.
func (s *Server) withInside(r resource.Resource, covering []ChangeItem) ([]ChangeItem, error) {
	ranges := r.InsideRanges()
	if ranges == nil {
		return covering, nil
	}
	inside, err := s.insideHistory(r, ranges)
	if err != nil {
		return nil, err
	}
	all := append(covering, inside...)
	slices.SortStableFunc(all, func(a, b ChangeItem) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	return all, nil
}

// badRange answers /badip/{cidr}: "response" the lists covering the range
// (as for an address), "inside" the listed resources inside it with the
// lists each is on itself, by address, paged by items (1..1000, default
// 100 or http.max_range_rows if lower) and page (page*items at most
// http.max_range_rows); "inside_total" how many there are. 404 when both are
// empty.
func (s *Server) badRange(c *gin.Context, r resource.Resource) {
	rl, ok := s.deps.Live.(RangeLive)
	if !ok {
		s.fail(c, fmt.Errorf("range lookups %w", errUnavailable))
		return
	}
	items, err := intParam(c, "items", min(100, int64(s.cfg.MaxRangeRows)), 1, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	page, err := intParam(c, "page", 1, 1, 1<<31)
	if err != nil {
		s.fail(c, err)
		return
	}
	if page*items > int64(s.cfg.MaxRangeRows) {
		s.fail(c, fmt.Errorf("%w: page %d of %d items reaches past the first %d entries (http.max_range_rows); ask for a narrower range",
			errTooBroad, page, items, s.cfg.MaxRangeRows))
		return
	}
	covering := s.deps.Live.Lookup(r)
	if covering == nil {
		covering = []string{}
	}
	entries, total := rl.Inside(r.Prefix, int((page-1)*items), int(items))
	inside := make([]BatchItem, len(entries))
	for i, e := range entries {
		inside[i] = BatchItem{IP: e.Resource.String(), Blacklists: e.Lists}
	}
	code := http.StatusOK
	if len(covering) == 0 && total == 0 {
		code = http.StatusNotFound
	}
	c.JSON(code, gin.H{"response": covering, "inside": inside, "inside_total": total})
}
