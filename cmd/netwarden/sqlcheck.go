package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/netwarden/netwarden/ingest/scrape"
	"github.com/netwarden/netwarden/query"
	"github.com/netwarden/netwarden/stream/check"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/outage"
)

// cmdSQL runs one read-only query over the history files of a data
// directory (the server may be running: files are immutable and the
// query sees the last committed state).
func cmdSQL(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sql", flag.ContinueOnError)
	var f flags
	f.register(fs)
	format := fs.String("format", "csv", "output format: csv, json or arrow")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf(`usage: netwarden sql [flags] "SELECT ..."`)
	}
	var qf query.Format
	switch *format {
	case "csv":
		qf = query.CSV
	case "json":
		qf = query.JSON
	case "arrow":
		qf = query.Arrow
	default:
		return fmt.Errorf("--format %q: want csv, json or arrow", *format)
	}
	cfg, err := f.resolve()
	if err != nil {
		return err
	}
	files, err := history.ListFiles(cfg.History.Dir)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return noHistory(cfg.History.Dir)
	}
	log := newLogger(cfg.Log)
	cfg.Query.MaxConcurrent = 1
	engine, err := newSQLPool(cfg.Query, log)
	if err != nil {
		return err
	}
	defer engine.Close()
	if err := engine.SetFiles(files); err != nil {
		return err
	}
	if a, e, err := outage.ExportedFiles(cfg.Query.OutageDir); err != nil {
		log.Warn("outage views stay empty", "err", err)
	} else if err := engine.SetOutageFiles(query.OutageFiles{Alerts: a, Events: e}); err != nil {
		log.Warn("outage views stay empty", "err", err)
	}
	if b, err := os.ReadFile(scrape.ListsFile(cfg.Scrape.StateDir)); err == nil {
		var infos []scrape.ListInfo
		if json.Unmarshal(b, &infos) == nil {
			setLists(engine, infos, log)
		}
	}
	res, err := engine.Query(ctx, fs.Arg(0), qf, os.Stdout)
	if err != nil {
		return err
	}
	if res.Truncated {
		fmt.Fprintf(os.Stderr, "netwarden: result truncated at %d rows (max_rows %d, max_bytes %d)\n", res.Rows, cfg.Query.MaxRows, cfg.Query.MaxBytes)
	}
	return nil
}

// cmdCheck asks a running server to run the consistency check and exits 1
// when history and live state disagree. With --audit the server also
// audits history against the changes topic (POST /admin/check?audit=1)
// and the command exits 1 when a row is missing, extra or different. The
// check runs in the server because it owns the data directory (history
// lock) and, by default, the embedded broker.
func cmdCheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var f flags
	f.register(fs)
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for the check")
	audit := fs.Bool("audit", false, "also audit history against the changes topic (finds lost rows)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.resolve()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://" + strings.Replace(cfg.HTTP.Addr, "0.0.0.0", "localhost", 1) + "/admin/check"
	if *audit {
		url += "?audit=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("check: is netwarden serve running at %s? %w", cfg.HTTP.Addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("check: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var res check.Result
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("check: decode answer: %w", err)
	}
	if res.Changes == 0 && res.Resources == 0 && res.FoldError == "" { // a fold stopped by a damaged file counts nothing either
		return noHistory("the server at " + cfg.HTTP.Addr)
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
	bad := false
	if res.Mismatches > 0 {
		fmt.Fprintf(os.Stderr, "netwarden: %d resources differ between history and live state\n", res.Mismatches)
		bad = true
	}
	if res.Files != nil && len(res.Files.Damaged) > 0 {
		for _, d := range res.Files.Damaged {
			fmt.Fprintf(os.Stderr, "netwarden: damaged history file %s: %s\n", d.Path, d.Error)
		}
		bad = true
	}
	if *audit {
		a := res.Audit
		if a == nil {
			return fmt.Errorf("check: the server at %s did not run the audit", cfg.HTTP.Addr)
		}
		for _, p := range a.Partitions {
			if p.Truncated {
				fmt.Fprintf(os.Stderr, "netwarden: partition %d audited from offset %d only (earlier records were removed by retention)\n", p.Partition, p.From)
			}
		}
		if a.Lost() {
			fmt.Fprintf(os.Stderr, "netwarden: history differs from the topic: %d rows missing, %d extra, %d different\n", a.Missing, a.Extra, a.Mismatched)
			bad = true
		}
	}
	if bad {
		return exitCode(1)
	}
	return nil
}
