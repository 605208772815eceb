// Command netwarden watches public blocklists and keeps their history.
//
//	netwarden serve [--config netwarden.yaml] [--kafka.brokers a:9092] [--data.dir d] [--http.addr :8080]
//	netwarden sql [--data.dir d] "SELECT ..."
//	netwarden check [--audit] [--http.addr localhost:8080]
//	netwarden account create|list|plan|key|revoke ...
//	netwarden simulate [--kafka.brokers a:9092 | --out -] [--follow=false]
//	netwarden bgp [--kafka.brokers a:9092 | --out -] rib.gz updates.gz ...
//	netwarden observe --datasource ping-slash24|ucsd-nt [--kafka.brokers a:9092 | --out -] [obs.txt ...]
//	netwarden version
//
// main is thin: flags → config → wiring → run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

var errEOF = io.EOF

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "netwarden:", err)
		}
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		os.Exit(1)
	}
}

type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const usage = `usage: netwarden <command> [flags]

commands:
  serve     run the pipeline: embedded (or external) Kafka, scrapers, processors, history, HTTP API
  sql       run a read-only SQL query over history:  netwarden sql "SELECT list, count(*) FROM changes GROUP BY 1"
  check     run the consistency check on a running server (--audit: also against the topic)
  account   manage accounts and API keys: create, list, plan, key, revoke
  simulate  publish simulated outage telemetry (backfill, then live) to Kafka or as NDJSON (--out -)
  bgp       publish the BGP visibility signal of MRT files to Kafka or as NDJSON (--out -)
  observe   aggregate probing (responsive /24s) or telescope (source IPs) observations into telemetry points
  version   print the version

run 'netwarden <command> -h' for its flags`

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return exitCode(2)
	}
	if args[0] == "sql-worker" { // hidden: a SQL worker process (query.Pool)
		return cmdSQLWorker()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:])
	case "sql":
		return cmdSQL(ctx, args[1:])
	case "check":
		return cmdCheck(ctx, args[1:])
	case "account":
		return cmdAccount(ctx, args[1:])
	case "simulate":
		return cmdSimulate(ctx, args[1:])
	case "bgp":
		return cmdBGP(ctx, args[1:])
	case "observe":
		return cmdObserve(ctx, args[1:])
	case "version":
		fmt.Println("netwarden", version)
		return nil
	case "-h", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	fmt.Fprintln(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(c LogConfig) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
