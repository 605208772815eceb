package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// testBin is the bin of the DSL's datasources.
const testBin = 300

// testConfig: two datasources "a" and "b" with 300 s bins, a 5-bin window, warm-up 3,
// warning < 0.8x, critical < 0.5x, min predicted 10, alerts after 1 bin, acceptance after 4.
func testConfig() Config {
	ds := DatasourceConfig{Bin: testBin, Window: 5 * testBin, WarmUp: 3, MinPredicted: 10,
		Warning: 0.8, Critical: 0.5, MinDuration: 1, AcceptAfter: 4}
	return Config{Grace: 0, Datasources: map[string]DatasourceConfig{"a": ds, "b": ds}}
}

// parseSeries reads "100 100 _ 40": one value per bin, "_" for a bin without a point.
func parseSeries(t *testing.T, s string) []float64 {
	t.Helper()
	var out []float64
	for _, f := range strings.Fields(s) {
		if f == "_" {
			out = append(out, math.NaN())
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("series %q: %v", s, err)
		}
		out = append(out, v)
	}
	return out
}

// points turns a DSL series into points of one series, bin i at time i*bin.
func points(t *testing.T, ds, code, s string, bin int64) []Point {
	t.Helper()
	var ps []Point
	for i, v := range parseSeries(t, s) {
		if !math.IsNaN(v) {
			ps = append(ps, Point{Datasource: ds, EntityType: "country", EntityCode: code, Time: int64(i) * bin, Value: v})
		}
	}
	return ps
}

// render writes alerts as "bin:level" (bin index = time/bin), space separated.
func render(alerts []Alert, bin int64) string {
	var b strings.Builder
	for i, a := range alerts {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%s", a.Time/bin, a.Level)
	}
	return b.String()
}

// runLive feeds points one by one, advancing after each, then flushes.
func runLive(t *testing.T, d *Detector, ps []Point) []Alert {
	t.Helper()
	var out []Alert
	for _, p := range ps {
		if err := d.Add(p); err != nil {
			t.Fatalf("add %+v: %v", p, err)
		}
		out = append(out, d.Advance()...)
	}
	return append(out, d.Flush()...)
}

func TestDSL(t *testing.T) {
	cases := []struct {
		name   string
		series string
		tune   func(*DatasourceConfig)
		want   string
	}{
		{name: "drop and recovery", series: "100 100 100 40 40 100", want: "3:critical 5:normal"},
		{name: "warning", series: "100 100 100 70 100", want: "3:warning 4:normal"},
		{name: "warning then critical", series: "100 100 100 70 40 100", want: "3:warning 4:critical 5:normal"},
		{name: "small noise is normal", series: "100 90 110 95 105 85 100", want: ""},
		{name: "warm-up: too few values to judge", series: "100 40 40 100 100", want: ""},
		{name: "below minimum prediction", series: "5 5 5 0 0 5", want: ""},
		{name: "missing bins are not judged", series: "100 100 _ 100 40 _ 100", want: "4:critical 6:normal"},
		{name: "a gap longer than the window restarts the warm-up", series: "100 100 100 _ _ _ _ _ 40 40 40 40", want: ""},
		{
			// Without inpainting the window at bin 5 would be 100 100 40 40 (median 70): 40 only a warning.
			name: "inpainting keeps the baseline up during an outage", series: "100 100 100 40 40 40 40 100",
			tune: func(c *DatasourceConfig) { c.AcceptAfter = 5 }, want: "3:critical 7:normal",
		},
		{
			name: "a lasting new level is accepted", series: "100 100 100 40 40 40 40 40 40",
			want: "3:critical 7:normal",
		},
		{
			name: "min duration: a one-bin dip is not alerted", series: "100 100 100 40 100 40 100 100",
			tune: func(c *DatasourceConfig) { c.MinDuration = 2 }, want: "",
		},
		{
			name: "min duration: the alert names the first bin", series: "100 100 100 40 40 40 100 100",
			tune: func(c *DatasourceConfig) { c.MinDuration = 2 }, want: "3:critical 6:normal",
		},
		{
			name: "min duration: flapping between warning and critical is a warning", series: "100 100 100 70 40 70 40 100 100",
			tune: func(c *DatasourceConfig) { c.MinDuration = 2; c.AcceptAfter = 5 }, want: "3:warning 7:normal",
		},
		{
			name: "min duration: warning then critical alerts the warning, then the critical", series: "100 100 100 70 40 40 100 100",
			tune: func(c *DatasourceConfig) { c.MinDuration = 2; c.AcceptAfter = 5 }, want: "3:warning 4:critical 6:normal",
		},
		{
			name: "min duration: recovery through a warning is a warning first", series: "100 100 100 40 40 70 100 100 100",
			tune: func(c *DatasourceConfig) { c.MinDuration = 2; c.AcceptAfter = 5 }, want: "3:critical 5:warning 6:normal",
		},
		{
			name: "min drop: a drop smaller than min_drop is normal", series: "10 10 10 7 7 10",
			tune: func(c *DatasourceConfig) { c.MinDrop = 4 }, want: "",
		},
		{
			name: "min drop: a drop of min_drop or more is judged by the thresholds", series: "10 10 10 6 6 10",
			tune: func(c *DatasourceConfig) { c.MinDrop = 4 }, want: "3:warning 5:normal",
		},
		{name: "a spike is normal", series: "100 100 100 400 100 100", want: ""},
		{name: "a lasting rise becomes the baseline", series: "100 100 100 400 400 400 100", want: "6:critical"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			ds := cfg.Datasources["a"]
			if tc.tune != nil {
				tc.tune(&ds)
			}
			cfg.Datasources["a"] = ds
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := render(runLive(t, d, points(t, "a", "US", tc.series, testBin)), testBin)
			if got != tc.want {
				t.Errorf("%s\n got %q\nwant %q", tc.series, got, tc.want)
			}
		})
	}
}

func TestAlertFields(t *testing.T) {
	cfg := testConfig()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := runLive(t, d, points(t, "a", "3307", "100 120 100 30 30 90", testBin))
	want := []Alert{
		{Datasource: "a", EntityType: "country", EntityCode: "3307", Time: 3 * testBin, Level: Critical,
			Condition: "< historical * 0.5", Value: 30, HistoryValue: 100, Method: "median", Window: 5 * testBin},
		{Datasource: "a", EntityType: "country", EntityCode: "3307", Time: 5 * testBin, Level: Normal,
			Condition: ">= historical * 0.8", Value: 90, HistoryValue: 100, Method: "median", Window: 5 * testBin},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alerts\n got %+v\nwant %+v", got, want)
	}
}

func TestIODADefaults(t *testing.T) {
	cfg := Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ds                string
		bin, window       int64
		warning, critical float64
	}{
		{BGP, 300, 86400, 0.99, 0.5},
		{PingSlash24, 600, 7 * 86400, 0.8, 0.5},
		{UCSDNT, 300, 7 * 86400, 0.25, 0.1},
	} {
		c := cfg.Datasources[tc.ds]
		if c.Bin != tc.bin || c.Window != tc.window || c.Warning != tc.warning || c.Critical != tc.critical {
			t.Errorf("%s: got %+v", tc.ds, c)
		}
	}
	// After the warm-up (1000s), with alerts after 2 bins: bgp warns below 0.99x, probing below
	// 0.8x, the telescope below 0.25x; all are critical below their critical ratio.
	for _, tc := range []struct {
		ds, series, want string // want: bin offsets after the warm-up
	}{
		{BGP, "995 995 1000 985 985 1000 1000 400 400 1000 1000", "3:warning 5:normal 7:critical 9:normal"},
		{PingSlash24, "850 850 1000 750 750 1000 1000 400 400 1000 1000", "3:warning 5:normal 7:critical 9:normal"},
		{UCSDNT, "300 300 1000 200 200 1000 1000 50 50 1000 1000", "3:warning 5:normal 7:critical 9:normal"},
	} {
		c := cfg.Datasources[tc.ds]
		d, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := runLive(t, d, points(t, tc.ds, "IR", strings.Repeat("1000 ", c.WarmUp)+tc.series, c.Bin))
		for i := range got {
			got[i].Time -= int64(c.WarmUp) * c.Bin
		}
		if r := render(got, c.Bin); r != tc.want {
			t.Errorf("%s: got %q, want %q", tc.ds, r, tc.want)
		}
	}
}

func TestAddRejects(t *testing.T) {
	cfg := testConfig()
	cfg.Grace = 2 * testBin
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range points(t, "a", "US", "100 100 100 100 100 100", testBin) {
		if err := d.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	d.Advance() // watermark: bin 5 started; grace 2 bins: bins 0..2 (ending by bin 3's start) evaluated
	for _, tc := range []struct {
		name string
		p    Point
		want error
	}{
		{"late beyond grace", Point{"a", "country", "US", 2 * testBin, 50}, ErrLate},
		{"late for a new series too", Point{"a", "country", "FR", 1 * testBin, 50}, ErrLate},
		{"unknown datasource", Point{"zz", "country", "US", 5 * testBin, 50}, ErrBadPoint},
		{"unaligned time", Point{"a", "country", "US", 5*testBin + 1, 50}, ErrBadPoint},
		{"negative value", Point{"a", "country", "US", 5 * testBin, -1}, ErrBadPoint},
		{"NaN value", Point{"a", "country", "US", 5 * testBin, math.NaN()}, ErrBadPoint},
		{"empty code", Point{"a", "country", "", 5 * testBin, 1}, ErrBadPoint},
	} {
		if err := d.Add(tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// Within the grace period a point is still taken, and the last value of a bin wins.
	for _, v := range []float64{100, 10} {
		if err := d.Add(Point{"a", "country", "US", 4 * testBin, v}); err != nil {
			t.Fatalf("within grace: %v", err)
		}
	}
	if got := render(d.Flush(), testBin); got != "4:critical 5:normal" {
		t.Errorf("after a late point within grace: %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		tune func(*DatasourceConfig)
	}{
		{"zero bin", func(c *DatasourceConfig) { c.Bin = 0 }},
		{"window not a multiple", func(c *DatasourceConfig) { c.Window = c.Bin*5 + 1 }},
		{"warm-up beyond window", func(c *DatasourceConfig) { c.WarmUp = 6 }},
		{"critical above warning", func(c *DatasourceConfig) { c.Critical = 0.9 }},
		{"zero min duration", func(c *DatasourceConfig) { c.MinDuration = 0 }},
		{"negative min drop", func(c *DatasourceConfig) { c.MinDrop = -1 }},
		{"NaN min drop", func(c *DatasourceConfig) { c.MinDrop = math.NaN() }},
		{"accept before warm-up", func(c *DatasourceConfig) { c.AcceptAfter = 2 }},
	} {
		cfg := testConfig()
		ds := cfg.Datasources["a"]
		tc.tune(&ds)
		cfg.Datasources["a"] = ds
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted %+v", tc.name, ds)
		}
	}
	if _, err := New(testConfig()); err != nil {
		t.Errorf("test config: %v", err)
	}
}

func TestVerdicts(t *testing.T) {
	d, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	d.OnBin(func(v Verdict) {
		judged := "-"
		if v.Judged {
			judged = fmt.Sprintf("%g", v.HistoryValue)
		}
		fmt.Fprintf(&b, "%d:%g/%s/%s ", v.Time/testBin, v.Value, judged, v.Level)
	})
	// Warm-up for 3 bins, then the baseline stays at 100 through the outage (inpainting).
	runLive(t, d, points(t, "a", "US", "100 120 80 40 30 100 5", testBin))
	want := "0:100/-/normal 1:120/-/normal 2:80/-/normal 3:40/100/critical 4:30/100/critical 5:100/100/normal 6:5/100/critical "
	if got := b.String(); got != want {
		t.Errorf("verdicts\n got %s\nwant %s", got, want)
	}
}

func TestAlertJSON(t *testing.T) {
	a := Alert{Datasource: BGP, EntityType: "asn", EntityCode: "3307", Time: 600, Level: Warning,
		Condition: "< historical * 0.99", Value: 97, HistoryValue: 100, Method: Method, Window: 86400}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"level":"warning"`, `"historyValue":100`, `"condition":"\u003c historical * 0.99"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("%s: no %s", b, field)
		}
	}
	var back Alert
	if err := json.Unmarshal(b, &back); err != nil || back != a {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"level":"bad"}`), &back); err == nil {
		t.Error("level \"bad\" accepted")
	}
}
