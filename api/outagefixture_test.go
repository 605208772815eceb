package api

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/stream/outage"
)

// OutageFixture is a real outage store behind the service the outage
// routes read, shared by the internal and external tests (export_test
// style): US (country) critical on bgp from 3000 to 4200 and on
// ping-slash24 from 3600, back to normal at 4800 (one event); AS15169
// warning on bgp from 9000, ongoing; region 5332921 (California)
// critical at 6000-6600. Verdicts of US bgp bins 0..5700; watermark 12000.
func OutageFixture(t *testing.T) *outage.Service {
	t.Helper()
	cfg := outage.Config{Path: filepath.Join(t.TempDir(), "outage.db")}
	cfg.Defaults()
	store, err := outage.OpenStore(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	al := func(ds, typ, code string, tm int64, l detect.Level, v, h float64) detect.Alert {
		return detect.Alert{Datasource: ds, EntityType: typ, EntityCode: code, Time: tm, Level: l,
			Condition: detect.Condition(cfg.Datasources[ds], l), Value: v, HistoryValue: h, Method: detect.Method, Window: cfg.Datasources[ds].Window}
	}
	var vs []detect.Verdict
	for tm := int64(0); tm < 6000; tm += 300 {
		v := detect.Verdict{Datasource: detect.BGP, EntityType: "country", EntityCode: "US", Time: tm, Value: 100, HistoryValue: 100, Judged: tm >= 600}
		if tm >= 3000 && tm < 4200 {
			v.Value, v.Level = 20, detect.Critical
		}
		vs = append(vs, v)
	}
	b := outage.Batch{
		Verdicts: vs,
		Alerts: []detect.Alert{
			al(detect.BGP, "country", "US", 3000, detect.Critical, 20, 100),
			al(detect.PingSlash24, "country", "US", 3600, detect.Critical, 5, 80),
			al(detect.BGP, "country", "US", 4200, detect.Normal, 99, 100),
			al(detect.PingSlash24, "country", "US", 4800, detect.Normal, 79, 80),
			al(detect.BGP, "region", "5332921", 6000, detect.Critical, 1, 50),
			al(detect.BGP, "region", "5332921", 6600, detect.Normal, 50, 50),
			al(detect.BGP, "asn", "15169", 9000, detect.Warning, 90, 100),
		},
		Offsets:   map[int32]int64{0: 1},
		Watermark: 12000,
	}
	if _, err := store.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return outage.NewService(cfg, nil, store, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
}
