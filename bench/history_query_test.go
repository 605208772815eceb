package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/processor"
)

// flatWriter writes the baseline: every row in one Parquet file, in
// generation (time) order, not sorted by key, with arrow-go's default
// writer properties except zstd (the store's codec): dictionaries,
// statistics, 1 MB pages, no bloom filter, no page index. Each batch is
// one row group. (pqarrow would need go.mod changes — it pulls in grpc —
// so the file is written with arrow-go's column writers, as the store's
// own files are.)
type flatWriter struct {
	w                       *file.Writer
	ts                      []int64
	ops, kinds, lists, ress []parquet.ByteArray
	keys                    []parquet.ByteArray
}

var flatSchema = func() *schema.GroupNode {
	str := func(name string) schema.Node {
		return schema.MustPrimitive(schema.NewPrimitiveNodeLogical(name, parquet.Repetitions.Required,
			schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1))
	}
	return schema.MustGroup(schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{
		schema.MustPrimitive(schema.NewPrimitiveNodeLogical("ts", parquet.Repetitions.Required,
			schema.NewTimestampLogicalType(true, schema.TimeUnitMicros), parquet.Types.Int64, -1, -1)),
		str("op"), str("kind"), str("list"), str("resource"),
		schema.MustPrimitive(schema.NewPrimitiveNode("key", parquet.Repetitions.Required, parquet.Types.ByteArray, -1, -1)),
	}, -1))
}()

func newFlatWriter(path string) (*flatWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	return &flatWriter{w: file.NewParquetWriter(f, flatSchema, file.WithWriterProps(props))}, nil
}

func (fw *flatWriter) write(d *dataset, evs []event) error {
	fw.ts, fw.ops, fw.kinds, fw.lists, fw.ress, fw.keys = fw.ts[:0], fw.ops[:0], fw.kinds[:0], fw.lists[:0], fw.ress[:0], fw.keys[:0]
	ops := [3]parquet.ByteArray{change.Add: parquet.ByteArray("add"), change.Rem: parquet.ByteArray("rem")}
	for _, e := range evs {
		fw.ts = append(fw.ts, e.us)
		fw.ops = append(fw.ops, ops[e.op])
		fw.kinds = append(fw.kinds, parquet.ByteArray("ip"))
		fw.lists = append(fw.lists, parquet.ByteArray(listNames[e.list]))
		fw.ress = append(fw.ress, parquet.ByteArray(d.resource(e.res).String()))
		fw.keys = append(fw.keys, d.keyBytes(e.res))
	}
	rg := fw.w.AppendRowGroup()
	for c, vals := range [][]parquet.ByteArray{nil, fw.ops, fw.kinds, fw.lists, fw.ress, fw.keys} {
		cw, err := rg.NextColumn()
		if err != nil {
			return err
		}
		if c == 0 {
			_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(fw.ts, nil, nil)
		} else {
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(vals, nil, nil)
		}
		if err != nil {
			return err
		}
	}
	return rg.Close()
}

func (fw *flatWriter) close() error {
	return fw.w.Close() // closes f too
}

// buildHistory commits the dataset's events to a fresh store at dir in
// batches (each in time order, later batches later), writes the same rows
// to the flat baseline file, then compacts the store.
func buildHistory(tb testing.TB, ctx context.Context, d *dataset, dir, flatPath string, batch int) *history.Store {
	tb.Helper()
	store, err := history.Open(history.Config{Dir: dir}, quietLog())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	fw, err := newFlatWriter(flatPath)
	if err != nil {
		tb.Fatal(err)
	}
	var commitTime, flatTime time.Duration
	cs := make([]change.Change, 0, batch)
	for off := 0; off < len(d.events); off += batch {
		evs := d.events[off:min(off+batch, len(d.events))]
		cs = cs[:0]
		for _, e := range evs {
			cs = append(cs, d.change(e))
		}
		// The two writers run side by side.
		var wg sync.WaitGroup
		var ferr error
		wg.Go(func() {
			t := time.Now()
			ferr = fw.write(d, evs)
			flatTime += time.Since(t)
		})
		t := time.Now()
		err := store.Commit(cs, nil)
		commitTime += time.Since(t)
		wg.Wait()
		if err != nil {
			tb.Fatal(err)
		}
		if ferr != nil {
			tb.Fatal(ferr)
		}
	}
	if err := fw.close(); err != nil {
		tb.Fatal(err)
	}
	before := store.Stats()
	t := time.Now()
	if err := store.Compact(ctx); err != nil {
		tb.Fatal(err)
	}
	after := store.Stats()
	tb.Logf("history: %d rows committed in %v (flat file written alongside in %v); compacted %d files into %d in %v; %d MB, %d row groups, bloom %d MB, page index %d MB",
		after.Rows, commitTime.Round(time.Millisecond), flatTime.Round(time.Millisecond), before.Files, after.Files,
		time.Since(t).Round(time.Millisecond), after.Bytes>>20, after.RowGroups, after.BloomBytes>>20, after.IndexBytes>>20)
	if after.Rows != int64(len(d.events)) {
		tb.Fatalf("store holds %d rows, want %d", after.Rows, len(d.events))
	}
	return store
}

// serveAPI serves the real API over proc on a loopback listener and
// returns its base URL.
func serveAPI(tb testing.TB, deps api.Deps) string {
	tb.Helper()
	ac := api.Config{Addr: "127.0.0.1:0"}
	ac.Defaults()
	srv := api.New(ac, deps, quietLog())
	addr, err := srv.Listen()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("api server: %v", err)
		}
	})
	return "http://" + addr.String()
}

// changesResponse is the body of GET /metadata/changes/ip/{ip}.
type changesResponse struct {
	Items []api.ChangeItem `json:"changes_ip"`
}

// getChanges asks for ip's history; it returns the latency up to the last
// body byte and the decoded body.
func getChanges(client *http.Client, base string, ip netip.Addr) (time.Duration, changesResponse, error) {
	var out changesResponse
	start := time.Now()
	resp, err := client.Get(base + "/metadata/changes/ip/" + ip.String())
	if err != nil {
		return 0, out, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return 0, out, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, out, fmt.Errorf("GET %s: %s: %s", ip, resp.Status, body)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, out, fmt.Errorf("GET %s: %w", ip, err)
	}
	return lat, out, nil
}

// duckQuery is the baseline query for the covering keys of one address.
func duckQuery(flatPath string, keys []string) string {
	var in []string
	for _, k := range keys {
		r, err := resource.FromKey(k)
		if err != nil {
			panic(err)
		}
		in = append(in, "'"+r.String()+"'")
	}
	return fmt.Sprintf("SELECT ts, op, list, resource FROM read_parquet('%s') WHERE resource IN (%s)",
		strings.ReplaceAll(flatPath, "'", "''"), strings.Join(in, ", "))
}

// BenchmarkHistoryQueryHTTP builds a history of NETWARDEN_BENCH_HISTORY_ROWS
// changes (default 5,000,000) with Commit in batches of
// NETWARDEN_BENCH_HISTORY_BATCH (default 1,000,000) and compacts it, serves
// the real API over it and measures GET /metadata/changes/ip/{ip} from a
// client for NETWARDEN_BENCH_HISTORY_QUERIES addresses (default 2000: 60%
// listed hosts, 25% addresses inside listed prefixes, 15% random). The
// baseline, in the same run, is DuckDB answering the same covering
// resources from one unsorted Parquet file of the same rows, for
// NETWARDEN_BENCH_DUCKDB_QUERIES of the addresses (default 50). The data
// lives under NETWARDEN_BENCH_DIR if set (it is large), else a temp dir.
func BenchmarkHistoryQueryHTTP(b *testing.B) {
	rows := envInt(b, "NETWARDEN_BENCH_HISTORY_ROWS", 5_000_000)
	batch := envInt(b, "NETWARDEN_BENCH_HISTORY_BATCH", 1_000_000)
	nq := envInt(b, "NETWARDEN_BENCH_HISTORY_QUERIES", 2000)
	ndq := envInt(b, "NETWARDEN_BENCH_DUCKDB_QUERIES", 50)
	ctx := b.Context()
	dir := b.TempDir()
	if base := os.Getenv("NETWARDEN_BENCH_DIR"); base != "" {
		var err error
		if dir, err = os.MkdirTemp(base, "history-query-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}

	setup := time.Now()
	d := generate(2, rows)
	b.Logf("generated %d changes of %d resources (%d prefixes) in %v", rows, d.nres, len(d.nets), time.Since(setup).Round(time.Millisecond))
	flatPath := filepath.Join(dir, "flat.parquet")
	store := buildHistory(b, ctx, d, filepath.Join(dir, "history"), flatPath, batch)
	d.events = nil // 16 bytes a change; the queries need only the keys
	runtime.GC()
	if st, err := os.Stat(flatPath); err == nil {
		b.Logf("flat baseline file: %d MB", st.Size()>>20)
	}

	pc := processor.Config{}
	pc.Defaults()
	proc := processor.New(pc, nil, store, live.New(), quietLog()) // Run is never called: no broker needed
	base := serveAPI(b, api.Deps{History: proc})
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b4, b6 := proc.Bits()
	b.Logf("setup took %v; prefix lengths in history: v4 %v, v6 %v", time.Since(setup).Round(time.Second), b4, b6)

	qs := d.queryAddrs(3, nq+100)
	warm, qs := qs[:100], qs[100:]
	for _, ip := range warm {
		if _, _, err := getChanges(client, base, ip); err != nil {
			b.Fatal(err)
		}
	}
	var durs []time.Duration
	empty := 0
	for b.Loop() {
		for _, ip := range qs {
			lat, resp, err := getChanges(client, base, ip)
			if err != nil {
				b.Fatal(err)
			}
			durs = append(durs, lat)
			if len(resp.Items) == 0 {
				empty++
			}
		}
	}
	httpLat := summarize(durs)

	// Baseline: DuckDB over the flat file, for the first ndq addresses.
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ndq = min(ndq, len(qs))
	durs = durs[:0]
	for i := -1; i < ndq; i++ { // i == -1: warm-up, not counted
		ip := warm[0]
		if i >= 0 {
			ip = qs[i]
		}
		keys := proc.CoveringKeys(resource.FromAddr(ip))
		start := time.Now()
		n, err := countRows(ctx, db, duckQuery(flatPath, keys))
		lat := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		want, err := proc.Changes(keys)
		if err != nil {
			b.Fatal(err)
		}
		if n != len(want) {
			b.Fatalf("%s: DuckDB found %d rows, the store %d", ip, n, len(want))
		}
		if i >= 0 {
			durs = append(durs, lat)
		}
	}
	duckLat := summarize(durs)

	b.Logf("%d rows; HTTP over %d queries (%d with no history): p50 %.2f ms, p99 %.2f ms, max %.2f ms; DuckDB over %d queries: p50 %.0f ms, p99 %.0f ms",
		rows, httpLat.n, empty, ms(httpLat.p50), ms(httpLat.p99), ms(httpLat.max), duckLat.n, ms(duckLat.p50), ms(duckLat.p99))
	b.ReportMetric(ms(httpLat.p50), "http_p50_ms")
	b.ReportMetric(ms(httpLat.p99), "http_p99_ms")
	b.ReportMetric(ms(httpLat.max), "http_max_ms")
	b.ReportMetric(ms(duckLat.p50), "duckdb_p50_ms")
	b.ReportMetric(ms(duckLat.p99), "duckdb_p99_ms")
	b.ReportMetric(float64(duckLat.p50)/float64(httpLat.p50), "p50_speedup")
	b.ReportMetric(float64(duckLat.p99)/float64(httpLat.p99), "p99_speedup")
	b.ReportMetric(0, "ns/op")
}

// countRows runs q and counts its rows, scanning every column as a client would.
func countRows(ctx context.Context, db *sql.DB, q string) (int, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var (
		ts             time.Time
		op, list, rsrc string
	)
	for rows.Next() {
		if err := rows.Scan(&ts, &op, &list, &rsrc); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}
