package detect

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestEvents(t *testing.T) {
	const minutes = testBin / 60
	cases := []struct {
		name string
		a, b string // DSL series of datasources a and b of entity US
		asOf int64  // in bins
		want []Event
	}{
		{
			name: "one datasource", a: "100 100 100 40 40 100 100", asOf: 7,
			want: []Event{{Start: 3, End: 5, Duration: 2, Level: Critical, Score: 0.6 * 2 * minutes, Datasources: []string{"a"}}},
		},
		{
			name: "overlapping datasources merge into one episode",
			a:    "100 100 100 40 40 100 100 100", b: "100 100 100 100 70 70 100 100", asOf: 8,
			want: []Event{{Start: 3, End: 6, Duration: 3, Level: Critical, Score: (0.6*2 + 0.3*2) * minutes, Datasources: []string{"a", "b"}}},
		},
		{
			name: "one datasource returns as another leaves: one episode",
			a:    "100 100 100 40 100 100 100", b: "100 100 100 100 40 100 100", asOf: 7,
			want: []Event{{Start: 3, End: 5, Duration: 2, Level: Critical, Score: (0.6 + 0.6) * minutes, Datasources: []string{"a", "b"}}},
		},
		{
			name: "separate episodes",
			a:    "100 100 100 40 100 100 100 100", b: "100 100 100 100 100 100 70 100", asOf: 8,
			want: []Event{
				{Start: 3, End: 4, Duration: 1, Level: Critical, Score: 0.6 * minutes, Datasources: []string{"a"}},
				{Start: 6, End: 7, Duration: 1, Level: Warning, Score: 0.3 * minutes, Datasources: []string{"b"}},
			},
		},
		{
			name: "ongoing until asOf; warning then critical",
			a:    "100 100 100 70 40 40", asOf: 10,
			want: []Event{{Start: 3, Ongoing: true, Duration: 7, Level: Critical, Score: (0.3*1 + 0.6*6) * minutes, Datasources: []string{"a"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(testConfig())
			if err != nil {
				t.Fatal(err)
			}
			ps := points(t, "a", "US", tc.a, testBin)
			if tc.b != "" {
				ps = append(ps, points(t, "b", "US", tc.b, testBin)...)
			}
			slices.SortStableFunc(ps, func(x, y Point) int { return cmp.Compare(x.Time, y.Time) })
			alerts := runLive(t, d, ps)
			got := Events(alerts, tc.asOf*testBin)
			if len(got) != len(tc.want) {
				t.Fatalf("alerts %s: events %+v, want %d", render(alerts, testBin), got, len(tc.want))
			}
			for i, w := range tc.want {
				w.EntityType, w.EntityCode = "country", "US"
				w.Start *= testBin
				w.End *= testBin
				w.Duration *= testBin
				g := got[i]
				if math.Abs(g.Score-w.Score) > 1e-9 {
					t.Errorf("event %d: score %g, want %g", i, g.Score, w.Score)
				}
				g.Score, w.Score = 0, 0
				if fmt.Sprint(g) != fmt.Sprint(w) {
					t.Errorf("event %d\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}
