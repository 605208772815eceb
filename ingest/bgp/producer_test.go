package bgp

import (
	"context"
	"errors"
	"slices"
	"testing"
)

type collect struct{ pts []Point }

func (c *collect) Publish(_ context.Context, pts []Point) error {
	c.pts = append(c.pts, pts...)
	return nil
}

// TestProducerUpdates replays the real 2007 update file (15 minutes): bins are aligned,
// consecutive, and every bin has a point for every entity seen before it.
func TestProducerUpdates(t *testing.T) {
	path := needData(t, "updates.20070211.0141.gz")
	v, err := NewVisibility(Defaults(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var c collect
	if err := NewProducer(v, &c, path).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	perBin := map[int64]int{}
	var bins []int64
	for _, p := range c.pts {
		if p.Time%300 != 0 || p.EntityType != EntityASN {
			t.Fatalf("bad point %+v", p)
		}
		if perBin[p.Time] == 0 {
			bins = append(bins, p.Time)
		}
		perBin[p.Time]++
	}
	if !slices.IsSorted(bins) || len(bins) < 3 {
		t.Fatalf("bins %v", bins)
	}
	for i := 1; i < len(bins); i++ {
		if bins[i] != bins[i-1]+300 || perBin[bins[i]] < perBin[bins[i-1]] {
			t.Fatalf("bin %d (%d points) after %d (%d points)", bins[i], perBin[bins[i]], bins[i-1], perBin[bins[i-1]])
		}
	}
	t.Logf("bins %v, points per bin %v", bins, perBin)
}

func TestProducerCancel(t *testing.T) {
	path := needData(t, "bview.20020722.2337.gz")
	v, err := NewVisibility(Defaults(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var c collect
	if err := NewProducer(v, &c, path).Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run on a cancelled context: %v", err)
	}
	if err := NewProducer(v, &c, "/nonexistent.mrt").Run(context.Background()); err == nil {
		t.Fatal("missing file accepted")
	}
}
