package telemetry

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/netwarden/netwarden/detect"
)

// ObserveStats counts what Observe read.
type ObserveStats struct {
	Observations int // lines aggregated
	Late         int // observations for bins already closed (dropped)
	Points       int // points published
}

// Observe reads observations, one a line "<unix seconds> <IPv4 address>"
// (separated by spaces, a tab or a comma; blank lines and '#' comments
// skipped), through agg into sink; points are published as their bins
// close (the bins still open stay open: at the end of the whole stream,
// publish agg.Flush's points, as FlushTo does). A malformed line ends it with an error naming
// name and the line; observations later than agg's grace are counted and
// dropped.
func Observe(ctx context.Context, agg *Aggregator, r io.Reader, name string, sink Sink) (ObserveStats, error) {
	var st ObserveStats
	var out []detect.Point
	sc := bufio.NewScanner(r)
	publish := func(min int) error {
		if len(out) < min || len(out) == 0 {
			return nil
		}
		if err := sink.Publish(ctx, out); err != nil {
			return err
		}
		st.Points += len(out)
		out = out[:0]
		return nil
	}
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		f := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
		if len(f) != 2 {
			return st, fmt.Errorf("%s:%d: %q: want \"<unix seconds> <IPv4 address>\"", name, line, text)
		}
		t, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return st, fmt.Errorf("%s:%d: time %q: want unix seconds", name, line, f[0])
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			return st, fmt.Errorf("%s:%d: address %q: %w", name, line, f[1], err)
		}
		out, err = agg.Add(t, a, out)
		switch {
		case errors.Is(err, ErrLate):
			st.Late++
			continue
		case err != nil:
			return st, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		st.Observations++
		if err := publish(10_000); err != nil {
			return st, err
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read %s: %w", name, err)
	}
	return st, publish(0)
}

// FlushTo closes agg's open bins and publishes their points.
func FlushTo(ctx context.Context, agg *Aggregator, sink Sink) (int, error) {
	pts := agg.Flush(nil)
	if len(pts) == 0 {
		return 0, nil
	}
	return len(pts), sink.Publish(ctx, pts)
}
