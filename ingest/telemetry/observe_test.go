package telemetry_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/bgp"
	"github.com/netwarden/netwarden/ingest/telemetry"
)

type collect struct{ pts []detect.Point }

func (c *collect) Publish(_ context.Context, pts []detect.Point) error {
	c.pts = append(c.pts, pts...)
	return nil
}

func nt(typ, code string, t int64, v float64) detect.Point {
	return detect.Point{Datasource: "ucsd-nt", EntityType: typ, EntityCode: code, Time: t, Value: v}
}

func TestObserve(t *testing.T) {
	asns := &bgp.Ranges{Start: []uint32{10 << 16, 10<<16 + 1}, End: []uint32{10<<16 + 1, 10<<16 + 2}, Code: []string{"64500", "64501"}}
	ctry := &bgp.Ranges{Start: []uint32{10 << 16}, End: []uint32{10<<16 + 2}, Code: []string{"NZ"}}
	for _, tc := range []struct {
		name, in string
		want     []detect.Point
		late     int
		err      string
	}{
		{"counts and zeros", "# telescope\n1000 10.0.0.1\n1001,10.0.0.2\n1002\t10.0.1.9\n\n1400 10.0.0.1\n1000 10.0.0.3\n2000 10.0.0.1\n", []detect.Point{
			nt("asn", "64500", 900, 3), nt("asn", "64501", 900, 1), nt("country", "NZ", 900, 4),
			nt("asn", "64500", 1200, 1), nt("asn", "64501", 1200, 0), nt("country", "NZ", 1200, 1),
			nt("asn", "64500", 1800, 1), nt("asn", "64501", 1800, 0), nt("country", "NZ", 1800, 1),
		}, 0, ""},
		{"late dropped", "1000 10.0.0.1\n3000 10.0.0.1\n1000 10.0.0.2\n", []detect.Point{
			nt("asn", "64500", 900, 1), nt("country", "NZ", 900, 1),
			nt("asn", "64500", 3000, 1), nt("country", "NZ", 3000, 1),
		}, 1, ""},
		{"bad address", "1000 10.0.0.1\n1001 10.0.0.256\n", nil, 0, "obs.txt:2: address"},
		{"bad time", "1.5 10.0.0.1\n", nil, 0, "obs.txt:1: time"},
		{"one field", "1000\n", nil, 0, "obs.txt:1:"},
		{"IPv6", "1000 2001:db8::1\n", nil, 0, "not an IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agg, err := telemetry.NewTelescope(300, 300, asns, ctry)
			if err != nil {
				t.Fatal(err)
			}
			var c collect
			st, err := telemetry.Observe(context.Background(), agg, strings.NewReader(tc.in), "obs.txt", &c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := telemetry.FlushTo(context.Background(), agg, &c)
			if err != nil {
				t.Fatal(err)
			}
			st.Points += n
			if !slices.Equal(c.pts, tc.want) || st.Late != tc.late || st.Points != len(tc.want) {
				t.Errorf("points %v (stats %+v), want %v with %d late", c.pts, st, tc.want, tc.late)
			}
		})
	}
}
