package main

import (
	"context"
	"flag"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/ingest/scrape"
	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/entity"
	"github.com/netwarden/netwarden/internal/lifecycle"
	"github.com/netwarden/netwarden/query"
	"github.com/netwarden/netwarden/stream/alerts"
	"github.com/netwarden/netwarden/stream/check"
	"github.com/netwarden/netwarden/stream/history"
	"github.com/netwarden/netwarden/stream/live"
	"github.com/netwarden/netwarden/stream/notify"
	"github.com/netwarden/netwarden/stream/outage"
	"github.com/netwarden/netwarden/stream/processor"
	"github.com/netwarden/netwarden/stream/subscribe"
	"github.com/netwarden/netwarden/stream/watch"
	"github.com/netwarden/netwarden/stream/watchlist"
)

func cmdServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f flags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.resolve()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	log.Info("starting netwarden", "version", version, "data_dir", cfg.Data.Dir, "feeds", len(cfg.Scrape.Feeds))

	brk, err := broker.Start(ctx, cfg.Kafka, log.With("component", "kafka"))
	if err != nil {
		return portHint(err, "kafka.embedded.port")
	}
	defer brk.Close()

	store, err := history.Open(cfg.History, log.With("component", "history"))
	if err != nil {
		return err
	}
	defer store.Close()

	accounts, err := account.Open(cfg.Account)
	if err != nil {
		return err
	}
	defer accounts.Close()
	// The watched and muted entries of every account, loaded before
	// anything matches against them; the watchlist service keeps them
	// and the database in step.
	watched, muted := watch.New(), watch.New()
	watchlists := watchlist.New(cfg.Watchlist, accounts, watched, muted, log.With("component", "watchlist"))
	if err := watchlists.Load(ctx); err != nil {
		return err
	}

	entities, err := entity.Load(cfg.Entity)
	if err != nil {
		return err
	}
	nc, na, nr := entities.Counts()
	log.Info("entity metadata", "countries", nc, "asns", na, "regions", nr)

	// Outage detection: telemetry in, alerts stored, published and tapped.
	outages, err := outage.OpenStore(cfg.Detect.Path)
	if err != nil {
		return err
	}
	defer outages.Close()
	// Its tap turns each alert into activity rows of the accounts
	// subscribed to the entity (digest, webhook, /v1/alerts).
	outageSvc := outage.NewService(cfg.Detect, brk, outages, entities, subscribe.New(accounts, entities), log.With("component", "outage"))

	notifier := notify.New(cfg.Notify, accounts, log.With("component", "notify"))

	state := live.New()
	proc := processor.New(cfg.Processor, brk, store, state, log.With("component", "processor"))

	engine, err := newSQLPool(cfg.Query, log.With("component", "sql"))
	if err != nil {
		return err
	}
	defer engine.Close()

	// Stored outage alerts and events as Parquet behind the SQL views
	// outage_alerts and outage_events.
	outageSQL := outage.NewExporter(outages, cfg.Query.OutageDir, cfg.Detect.ExportEvery, func(a, e []string) error {
		return engine.SetOutageFiles(query.OutageFiles{Alerts: a, Events: e})
	}, log.With("component", "outage-sql"))
	outageSvc.SetExporter(outageSQL) // /healthz reports the export too

	producer, err := brk.NewClient(
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(100_000),
	)
	if err != nil {
		return err
	}
	defer producer.Close()
	scraper, err := scrape.New(cfg.Scrape, producer, log.With("component", "scrape"))
	if err != nil {
		return err
	}
	scraper.OnChange(func() { setLists(engine, scraper.Lists(), log) })
	setLists(engine, scraper.Lists(), log)

	// The alerter sees every consumed batch right after the live state
	// (processor tap: alerts and their offsets commit before history can)
	// and raises initial alerts for imported entries already listed.
	alerter := alerts.New(cfg.Alerts, accounts, watched, muted, state, producer, broker.TopicAlerts, log.With("component", "alerts"))
	proc.SetTap(alerter)
	watchlists.OnImport(alerter.Initial)

	// Telemetry in (issue 7): POST /v1/telemetry and, with simulate.enabled,
	// the simulator publish to netwarden.telemetry.
	intake, simulator, err := newTelemetry(cfg, cfg.Detect.Config, entities, producer, log.With("component", "simulate"))
	if err != nil {
		return err
	}

	checker := check.NewJob(store, proc, state, cfg.Check.Every, log.With("component", "check"))
	checker.SetAuditor(check.NewAuditor(brk, store, log.With("component", "audit")))
	checker.SetVerifier(store)

	srv := api.New(cfg.HTTP, api.Deps{
		History:    proc,
		Live:       state,
		Lists:      scraper,
		SQL:        engine,
		Checker:    checker,
		Accounts:   accounts,
		Sessions:   accounts,
		Settings:   accounts,
		Notifier:   notifier,
		Watchlists: watchlists,
		Alerts:     accounts,
		Entities:   entities,
		Telemetry:  intake,
		Outages:    outageSvc,
		// Outage subscriptions (issue 7; fed by the outage service's tap).
		Subscriptions: accounts,
		OutageHealth:  outageSvc,
		Ready: func() bool { // history and outage detector rebuilt
			select {
			case <-proc.Ready():
			default:
				return false
			}
			select {
			case <-outageSvc.Ready():
				return true
			default:
				return false
			}
		},
		Status: func(ctx context.Context) map[string]any {
			st := map[string]any{"scrape_idle": scraper.Idle(), "pending": proc.Pending(), "resources": state.Len()}
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if lag, err := proc.Lag(ctx); err == nil {
				st["lag"] = lag
				st["idle"] = scraper.Idle() && lag == 0 && proc.Pending() == 0
			} else {
				st["lag_error"] = err.Error()
			}
			return st
		},
	}, log.With("component", "http"))
	registerGauges(proc, state, store)
	metrics.NewGauge(`netwarden_outage_telemetry_lag_records`, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if lag, err := outageSvc.Lag(ctx); err == nil {
			return float64(lag)
		}
		return -1
	})

	addr, err := srv.Listen()
	if err != nil {
		return portHint(err, "http.addr")
	}
	log.Info("ready to serve", "http", "http://"+addr.String(), "kafka", brk.Seeds())

	// Started in this order, stopped in reverse: HTTP first, then the
	// scrapers (producers), the check job, the SQL file sync, the
	// processor (final flush to history, then offset commit), the history
	// store (compaction), the account store (last flush of API hit
	// counts) and the broker last.
	return lifecycle.Run(ctx, log, 2*time.Minute,
		lifecycle.Component{Name: "kafka", Run: brk.Run},
		lifecycle.Component{Name: "accounts", Run: accounts.Run},
		lifecycle.Component{Name: "notify", Run: notifier.Run},
		lifecycle.Component{Name: "history", Run: store.Run},
		lifecycle.Component{Name: "processor", Run: proc.Run},
		lifecycle.Component{Name: "alerts", Run: alerter.Run},
		lifecycle.Component{Name: "outage", Run: outageSvc.Run},
		lifecycle.Component{Name: "outage-sql", Run: outageSQL.Run},
		lifecycle.Component{Name: "sql-files", Run: func(ctx context.Context) error { return syncFiles(ctx, store, engine, log) }},
		lifecycle.Component{Name: "check", Run: checker.Run},
		lifecycle.Component{Name: "scrape", Run: func(ctx context.Context) error {
			select { // scrape only once the processor consumes
			case <-proc.Ready():
			case <-ctx.Done():
				return nil
			}
			return scraper.Run(ctx)
		}},
		lifecycle.Component{Name: "simulate", Run: runSimulator(simulator)},
		lifecycle.Component{Name: "http", Run: srv.Run},
	)
}

// syncFiles keeps the SQL engine's `changes` view on the store's current
// files (they change on every flush and compaction).
func syncFiles(ctx context.Context, store *history.Store, engine *query.Pool, log interface{ Warn(string, ...any) }) error {
	var last []string
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		files := store.Files()
		if !slices.Equal(files, last) {
			if err := engine.SetFiles(files); err != nil {
				log.Warn("update sql view", "err", err)
			} else {
				last = files
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func setLists(engine *query.Pool, infos []scrape.ListInfo, log interface{ Warn(string, ...any) }) {
	rows := make([]query.ListRow, 0, len(infos))
	for _, i := range infos {
		rows = append(rows, query.ListRow{Name: i.Name, Kind: i.Kind, Source: i.Source, Format: i.Format, Status: i.Status,
			LastFetch: i.LastFetch, LastChange: i.LastChange, Entries: int64(i.Entries), Error: i.Error})
	}
	if err := engine.SetLists(rows); err != nil {
		log.Warn("update sql lists table", "err", err)
	}
}

// registerGauges exposes component sizes on /metrics.
func registerGauges(proc *processor.Processor, state *live.State, store *history.Store) {
	metrics.NewGauge(`netwarden_processor_lag_records`, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		lag, err := proc.Lag(ctx)
		if err != nil {
			return -1
		}
		return float64(lag)
	})
	metrics.NewGauge(`netwarden_processor_pending_changes`, func() float64 { return float64(proc.Pending()) })
	metrics.NewGauge(`netwarden_live_resources`, func() float64 { return float64(state.Len()) })
	metrics.NewGauge(`netwarden_history_files`, func() float64 { return float64(store.Stats().Files) })
	metrics.NewGauge(`netwarden_history_rows`, func() float64 { return float64(store.Stats().Rows) })
	metrics.NewGauge(`netwarden_history_bytes`, func() float64 { return float64(store.Stats().Bytes) })
}
