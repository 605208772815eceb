package outage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/netwarden/netwarden/detect"
)

// Exporter keeps Parquet copies of the stored alerts and events in a
// directory for the SQL engine (views outage_alerts and outage_events,
// query.Pool.SetOutageFiles). Alerts are append-only, so each round
// writes only the alerts stored since the last one as a new file (ids
// (last, max]); past MaxAlertFiles files they are rewritten as one. Events
// change while ongoing: the ended ones are rewritten when alerts were
// stored, the ongoing ones (a file of their own) when the watermark moved. Replaced files are deleted after RetireAfter (running
// queries may still read them). The exports are derived data: Run
// deletes the previous run's and exports everything again on start.
type Exporter struct {
	store   *Store
	dir     string
	every   time.Duration
	onFiles func(alerts, events []string) error
	log     *slog.Logger
	mu      sync.Mutex
	hs      ExportHealth // guarded by mu

	alertFiles []string
	endedFile  string // events that ended, as of alert id endedAt
	endedAt    int64
	ongoing    string // events still ongoing, as of lastWM
	lastID     int64
	lastWM     int64
	applied    bool // the current files reached the manifest and onFiles
	seq        int
	retired    []retired
}

type retired struct {
	path string
	at   time.Time
}

// Exporter bounds.
const (
	MaxAlertFiles = 16
	RetireAfter   = 10 * time.Minute
	exportPage    = 100_000
)

// NewExporter exports s into dir every interval and calls onFiles with
// the current files after each change (e.g. query.Pool.SetOutageFiles).
func NewExporter(s *Store, dir string, every time.Duration, onFiles func(alerts, events []string) error, log *slog.Logger) *Exporter {
	return &Exporter{store: s, dir: dir, every: every, onFiles: onFiles, log: log}
}

// Run exports until ctx ends.
func (x *Exporter) Run(ctx context.Context) error {
	// onFiles (query.Pool.SetOutageFiles) takes absolute paths only.
	dir, err := filepath.Abs(x.dir)
	if err != nil {
		return fmt.Errorf("outage export dir %q: %w", x.dir, err)
	}
	x.dir = dir
	if err := os.MkdirAll(x.dir, 0o755); err != nil {
		return fmt.Errorf("create outage export dir %q: %w", x.dir, err)
	}
	if err := x.clear(); err != nil {
		return err
	}
	t := time.NewTicker(x.every)
	defer t.Stop()
	for {
		err := x.Export(ctx)
		if ctx.Err() != nil {
			return nil
		}
		x.exported(err)
		if err != nil {
			x.log.Warn("export outage alerts for SQL", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Export runs one round.
func (x *Exporter) Export(ctx context.Context) error {
	var maxID int64
	if err := x.store.db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM alerts`).Scan(&maxID); err != nil {
		return fmt.Errorf("max alert id: %w", err)
	}
	wm, err := x.store.Watermark(ctx)
	if err != nil {
		return err
	}
	// A round that failed part-way (a file, the manifest or onFiles) is
	// redone whole by the next one, changes or not.
	if maxID == x.lastID && wm == x.lastWM && x.applied {
		x.sweep()
		return nil
	}
	x.applied = false
	if maxID > x.lastID {
		p := filepath.Join(x.dir, fmt.Sprintf("alerts-%012d-%012d.parquet", x.lastID+1, maxID))
		if err := x.writeAlerts(ctx, p, x.lastID, maxID); err != nil {
			return err
		}
		files := append(slices.Clone(x.alertFiles), p)
		if len(files) > MaxAlertFiles {
			all := filepath.Join(x.dir, fmt.Sprintf("alerts-%012d-%012d.parquet", 1, maxID))
			if err := x.writeAlerts(ctx, all, 0, maxID); err != nil {
				os.Remove(p) // in no view yet
				return err
			}
			x.retire(files...)
			files = []string{all}
		}
		x.alertFiles, x.lastID = files, maxID
	}
	// Ended events change only with new alerts (a refold); ongoing ones
	// with the watermark too (duration, score): a round that only moved
	// the watermark rewrites the ongoing ones alone.
	var evs []detect.Event
	all := x.endedFile == "" || maxID != x.endedAt
	if all {
		evs, err = x.store.Events(ctx, Filter{From: -1 << 40, Until: 1 << 40})
	} else { // every ongoing event overlaps the range, no ended one does
		evs, err = x.store.Events(ctx, Filter{From: 1<<40 - 1, Until: 1 << 40})
	}
	if err != nil {
		return err
	}
	var ended, ongoing []detect.Event
	for _, e := range evs {
		if e.Ongoing {
			ongoing = append(ongoing, e)
		} else {
			ended = append(ended, e)
		}
	}
	if all {
		p, err := x.writeEvents(ended)
		if err != nil {
			return err
		}
		if x.endedFile != "" {
			x.retire(x.endedFile)
		}
		x.endedFile, x.endedAt = p, maxID
	}
	p, err := x.writeEvents(ongoing)
	if err != nil {
		return err
	}
	if x.ongoing != "" {
		x.retire(x.ongoing)
	}
	x.ongoing, x.lastWM = p, wm
	x.sweep()
	if err := x.writeManifest(); err != nil {
		return err
	}
	if x.onFiles != nil {
		if err := x.onFiles(x.alertFiles, []string{x.endedFile, x.ongoing}); err != nil {
			return fmt.Errorf("set outage SQL files: %w", err)
		}
	}
	x.applied = true
	return nil
}

// clear deletes what a previous run exported into the directory, and
// nothing else: query.outage_dir may name a directory holding more (the
// data dir, the outage store's).
func (x *Exporter) clear() error {
	ents, err := os.ReadDir(x.dir)
	if err != nil {
		return fmt.Errorf("clear outage export dir %q: %w", x.dir, err)
	}
	for _, e := range ents {
		n := strings.TrimSuffix(e.Name(), ".tmp")
		ours := n == manifestName || strings.HasSuffix(n, ".parquet") && (strings.HasPrefix(n, "alerts-") || strings.HasPrefix(n, "events-"))
		if !ours || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(x.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clear outage export dir %q: %w", x.dir, err)
		}
	}
	return nil
}

// manifestName lists the current files (JSON, names relative to the
// directory) for readers without the exporter at hand (netwarden sql).
const manifestName = "current.json"

type manifest struct {
	Alerts []string `json:"alerts"`
	Events []string `json:"events"`
}

func (x *Exporter) writeManifest() error {
	m := manifest{Events: []string{filepath.Base(x.endedFile), filepath.Base(x.ongoing)}}
	for _, a := range x.alertFiles {
		m.Alerts = append(m.Alerts, filepath.Base(a))
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	p := filepath.Join(x.dir, manifestName)
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("write outage export manifest: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("write outage export manifest: %w", err)
	}
	return nil
}

// ExportedFiles returns the current export files in dir (absolute
// paths); none when nothing was exported yet.
func ExportedFiles(dir string) (alerts, events []string, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, nil, fmt.Errorf("outage export dir: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read outage export manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("read outage export manifest %q: %w", filepath.Join(dir, manifestName), err)
	}
	abs := func(names []string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = filepath.Join(dir, filepath.Base(n))
		}
		return out
	}
	return abs(m.Alerts), abs(m.Events), nil
}

func (x *Exporter) retire(paths ...string) {
	for _, p := range paths {
		x.retired = append(x.retired, retired{p, time.Now()})
	}
}

func (x *Exporter) sweep() {
	keep := x.retired[:0]
	for _, r := range x.retired {
		if time.Since(r.at) < RetireAfter {
			keep = append(keep, r)
			continue
		}
		if err := os.Remove(r.path); err != nil && !os.IsNotExist(err) {
			x.log.Warn("remove retired outage export", "path", r.path, "err", err)
		}
	}
	x.retired = keep
}

// Parquet columns: a required or optional int64 (timestamps in ms,
// UTC), double, boolean or UTF-8 string.
type colKind int

const (
	colInt64 colKind = iota
	colTimeMS
	colFloat
	colBool
	colString
)

type column struct {
	name     string
	kind     colKind
	optional bool
}

var (
	alertColumns = []column{{"id", colInt64, false}, {"time", colTimeMS, false}, {"datasource", colString, false},
		{"entity_type", colString, false}, {"entity_code", colString, false}, {"level", colString, false},
		{"condition", colString, false}, {"value", colFloat, false}, {"history_value", colFloat, false},
		{"method", colString, false}, {"window_seconds", colInt64, false}}
	eventColumns = []column{{"entity_type", colString, false}, {"entity_code", colString, false}, {"start", colTimeMS, false},
		{"end", colTimeMS, true}, {"ongoing", colBool, false}, {"duration_seconds", colInt64, false}, {"level", colString, false},
		{"score", colFloat, false}, {"datasources", colString, false}}
)

func parquetSchema(cols []column) *schema.GroupNode {
	fields := make(schema.FieldList, len(cols))
	for i, c := range cols {
		rep := parquet.Repetitions.Required
		if c.optional {
			rep = parquet.Repetitions.Optional
		}
		switch c.kind {
		case colInt64:
			fields[i] = schema.MustPrimitive(schema.NewPrimitiveNode(c.name, rep, parquet.Types.Int64, -1, -1))
		case colTimeMS:
			fields[i] = schema.MustPrimitive(schema.NewPrimitiveNodeLogical(c.name, rep, schema.NewTimestampLogicalType(true, schema.TimeUnitMillis), parquet.Types.Int64, -1, -1))
		case colFloat:
			fields[i] = schema.MustPrimitive(schema.NewPrimitiveNode(c.name, rep, parquet.Types.Double, -1, -1))
		case colBool:
			fields[i] = schema.MustPrimitive(schema.NewPrimitiveNode(c.name, rep, parquet.Types.Boolean, -1, -1))
		case colString:
			fields[i] = schema.MustPrimitive(schema.NewPrimitiveNodeLogical(c.name, rep, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1))
		}
	}
	return schema.MustGroup(schema.NewGroupNode("schema", parquet.Repetitions.Required, fields, -1))
}

// rowGroup buffers one row group's values column by column; a nil value
// of an optional column is a null.
type rowGroup struct {
	cols []column
	i64  [][]int64
	f64  [][]float64
	bl   [][]bool
	ba   [][]parquet.ByteArray
	defs [][]int16
}

func newRowGroup(cols []column) *rowGroup {
	n := len(cols)
	return &rowGroup{cols: cols, i64: make([][]int64, n), f64: make([][]float64, n), bl: make([][]bool, n),
		ba: make([][]parquet.ByteArray, n), defs: make([][]int16, n)}
}

// add appends one row: int64, float64, bool, string or nil (a null).
func (g *rowGroup) add(vals ...any) {
	for i, v := range vals {
		if g.cols[i].optional {
			if v == nil {
				g.defs[i] = append(g.defs[i], 0)
				continue
			}
			g.defs[i] = append(g.defs[i], 1)
		}
		switch x := v.(type) {
		case int64:
			g.i64[i] = append(g.i64[i], x)
		case float64:
			g.f64[i] = append(g.f64[i], x)
		case bool:
			g.bl[i] = append(g.bl[i], x)
		case string:
			g.ba[i] = append(g.ba[i], parquet.ByteArray(x))
		}
	}
}

func (g *rowGroup) reset() {
	for i := range g.cols {
		g.i64[i], g.f64[i], g.bl[i], g.ba[i], g.defs[i] = g.i64[i][:0], g.f64[i][:0], g.bl[i][:0], g.ba[i][:0], g.defs[i][:0]
	}
}

func (g *rowGroup) write(fw *file.Writer) error {
	rgw, err := fw.AppendRowGroupChecked()
	if err != nil {
		return err
	}
	for i := range g.cols {
		cw, err := rgw.NextColumn()
		if err != nil {
			return err
		}
		var defs []int16
		if g.cols[i].optional {
			defs = g.defs[i]
		}
		switch w := cw.(type) {
		case *file.Int64ColumnChunkWriter:
			_, err = w.WriteBatch(g.i64[i], defs, nil)
		case *file.Float64ColumnChunkWriter:
			_, err = w.WriteBatch(g.f64[i], defs, nil)
		case *file.BooleanColumnChunkWriter:
			_, err = w.WriteBatch(g.bl[i], defs, nil)
		case *file.ByteArrayColumnChunkWriter:
			_, err = w.WriteBatch(g.ba[i], defs, nil)
		default:
			err = fmt.Errorf("column %s: unexpected writer %T", g.cols[i].name, cw)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", g.cols[i].name, err)
		}
	}
	return rgw.Close()
}

// writeParquet writes the row groups fill produces to path (via a temp
// file renamed into place).
func writeParquet(path string, cols []column, fill func(g *rowGroup, flush func() error) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %q: %w", tmp, err)
	}
	fw, err := file.NewParquetWriterWithError(f, parquetSchema(cols), file.WithWriterProps(parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd), parquet.WithStats(true))))
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("parquet writer for %q: %w", path, err)
	}
	g := newRowGroup(cols)
	flush := func() error {
		if err := g.write(fw); err != nil {
			return fmt.Errorf("write %q: %w", path, err)
		}
		g.reset()
		return nil
	}
	if err := fill(g, flush); err != nil {
		fw.Close()
		os.Remove(tmp)
		return err
	}
	if err := fw.Close(); err != nil { // closes f
		os.Remove(tmp)
		return fmt.Errorf("close %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %q: %w", path, err)
	}
	return nil
}

func (x *Exporter) writeAlerts(ctx context.Context, path string, after, upto int64) error {
	return writeParquet(path, alertColumns, func(g *rowGroup, flush func() error) error {
		wrote := false
		for after < upto {
			als, err := queryAlerts(ctx, x.store.db, `WHERE id > ? AND id <= ? ORDER BY id LIMIT ?`, after, upto, exportPage)
			if err != nil {
				return fmt.Errorf("export alerts after %d: %w", after, err)
			}
			if len(als) == 0 {
				break
			}
			for _, a := range als {
				g.add(a.ID, a.Time*1000, a.Datasource, a.EntityType, a.EntityCode, a.Level.String(), a.Condition, a.Value, a.HistoryValue, a.Method, a.Window)
			}
			if err := flush(); err != nil {
				return err
			}
			wrote = true
			after = als[len(als)-1].ID
		}
		if !wrote {
			return flush() // an empty row group keeps the file valid
		}
		return nil
	})
}

// writeEvents writes evs to a new file and returns its path.
func (x *Exporter) writeEvents(evs []detect.Event) (string, error) {
	x.seq++
	path := filepath.Join(x.dir, fmt.Sprintf("events-%d-%06d.parquet", os.Getpid(), x.seq))
	return path, writeParquet(path, eventColumns, func(g *rowGroup, flush func() error) error {
		for _, e := range evs {
			var end any
			if !e.Ongoing {
				end = e.End * 1000
			}
			g.add(e.EntityType, e.EntityCode, e.Start*1000, end, e.Ongoing, e.Duration, e.Level.String(), e.Score, strings.Join(e.Datasources, ","))
		}
		return flush()
	})
}
