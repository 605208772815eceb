package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/bgp"
	"github.com/netwarden/netwarden/ingest/telemetry"
	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/entity"
)

// Default paths of the shared data (relative to the repository root).
const (
	defaultCatalogue = "../shared/data/outages/ioda-investigated-outages-2018-2020.csv"
	defaultPfx2AS    = "../shared/data/geo/routeviews-rv2-20170329-0200.pfx2as.gz"
	defaultCountryDB = "../shared/data/geo/GeoLite2-Country-Test.mmdb"
)

// telemetryMaxFuture is how far past the clock a POSTed point may be (clock
// skew: a point names its bin start, which is never in the future; a
// point far ahead would move the detector's watermark).
const telemetryMaxFuture = 5 * time.Minute

// newTelemetry builds the telemetry intake of POST /v1/telemetry and,
// when the simulate section enables it, the simulator, both publishing
// through producer.
func newTelemetry(cfg Config, det detect.Config, reg *entity.Registry, producer *kgo.Client, log *slog.Logger) (telemetry.Intake, *telemetry.Simulator, error) {
	pub := telemetry.NewPublisher(producer)
	intake := telemetry.Intake{Validator: telemetry.NewValidator(det, reg, telemetryMaxFuture, nil), Publisher: pub}
	if !cfg.Simulate.Enabled {
		return intake, nil, nil
	}
	sim, err := telemetry.NewSimulator(cfg.Simulate, reg, pub, log)
	if err != nil {
		return intake, nil, err
	}
	if err := sim.SetBins(det); err != nil {
		return intake, nil, err
	}
	return intake, sim, nil
}

// runSimulator is the simulate component: the simulator, or nothing
// until the end when it is off.
func runSimulator(sim *telemetry.Simulator) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if sim == nil {
			<-ctx.Done()
			return nil
		}
		return sim.Run(ctx)
	}
}

// simulateDefaults fills the simulate section: its state under data.dir,
// the shared outage catalogue when it exists.
func simulateDefaults(c *Config) {
	c.Simulate.Defaults()
	if c.Simulate.StateFile == "" {
		c.Simulate.StateFile = filepath.Join(c.Data.Dir, "simulate", "state.json")
	}
	if c.Simulate.Catalogue == "" {
		if _, err := os.Stat(defaultCatalogue); err == nil {
			c.Simulate.Catalogue = defaultCatalogue
		}
	}
}

// sinkFor opens where a producer subcommand writes: NDJSON to a file or
// stdout (out), else the configured Kafka (kafka.brokers). The returned
// func closes what was opened.
func sinkFor(ctx context.Context, cfg Config, out string, log *slog.Logger) (telemetry.Sink, func(), error) {
	switch {
	case out == "-":
		return telemetry.NewNDJSON(os.Stdout), func() {}, nil
	case out != "":
		f, err := os.Create(out)
		if err != nil {
			return nil, nil, fmt.Errorf("create %q: %w", out, err)
		}
		return telemetry.NewNDJSON(f), func() { f.Close() }, nil
	case len(cfg.Kafka.Brokers) == 0:
		return nil, nil, errors.New("give --kafka.brokers host:port (e.g. a running serve's embedded broker, localhost:9092) or --out - (NDJSON on stdout)")
	}
	brk, err := broker.Start(ctx, cfg.Kafka, log.With("component", "kafka"))
	if err != nil {
		return nil, nil, err
	}
	cl, err := brk.NewClient(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		brk.Close()
		return nil, nil, err
	}
	return telemetry.NewPublisher(cl), func() { cl.Close(); brk.Close() }, nil
}

// cmdSimulate publishes simulated telemetry: the backfill, then each bin
// as it ends (--follow), to Kafka or as NDJSON.
func cmdSimulate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	var f flags
	f.register(fs)
	out := fs.String("out", "", "write NDJSON points to this file ('-': stdout) instead of Kafka")
	follow := fs.Bool("follow", true, "after the backfill, publish each bin as it ends until interrupted")
	seed := fs.Uint64("simulate.seed", 0, "seed of the signals and random outages (default from the config, else 1)")
	backfill := fs.Duration("simulate.backfill", 0, "history published first (default from the config, else 8 days: warms 7-day windows)")
	state := fs.String("simulate.state_file", "", "state file to continue from after a restart (default: none with --out, else <data.dir>/simulate/cli-state.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.resolve()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	sc := cfg.Simulate
	if *seed != 0 {
		sc.Seed = *seed
	}
	if *backfill != 0 {
		sc.Backfill = *backfill
	}
	switch {
	case *state != "":
		sc.StateFile = *state
	case *out != "":
		sc.StateFile = ""
	default:
		sc.StateFile = filepath.Join(cfg.Data.Dir, "simulate", "cli-state.json")
	}
	reg, err := entity.Load(cfg.Entity)
	if err != nil {
		return err
	}
	sink, closeSink, err := sinkFor(ctx, cfg, *out, log)
	if err != nil {
		return err
	}
	defer closeSink()
	sim, err := telemetry.NewSimulator(sc, reg, sink, log.With("component", "simulate"))
	if err != nil {
		return err
	}
	if err := sim.SetBins(cfg.Detect.Config); err != nil {
		return err
	}
	sim.SetFollow(*follow)
	return sim.Run(ctx)
}

// cmdBGP publishes the BGP visibility signal of MRT files (a RIB dump,
// then update files, in order) as telemetry points of datasource bgp.
func cmdBGP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bgp", flag.ContinueOnError)
	var f flags
	f.register(fs)
	out := fs.String("out", "", "write NDJSON points to this file ('-': stdout) instead of Kafka")
	pfx2as := fs.String("pfx2as", defaultPfx2AS, "CAIDA prefix2as file attributing /24s to ASNs ('' : route origins)")
	countries := fs.String("countries", defaultCountryDB, "MaxMind country (or city) database attributing /24s to countries ('': no country points)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: netwarden bgp [--kafka.brokers a:9092 | --out -] [--pfx2as f] [--countries f.mmdb] RIB-OR-UPDATES.gz ...")
	}
	cfg, err := f.resolve()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	asns, ctry, err := loadRanges(*pfx2as, *countries)
	if err != nil {
		return err
	}
	vis, err := bgp.NewVisibility(bgp.Defaults(), asns, ctry)
	if err != nil {
		return err
	}
	sink, closeSink, err := sinkFor(ctx, cfg, *out, log)
	if err != nil {
		return err
	}
	defer closeSink()
	return bgp.NewProducer(vis, telemetry.BGPSink{Sink: sink}, fs.Args()...).Run(ctx)
}

// cmdObserve aggregates active-probing or telescope observations ("<unix
// seconds> <IPv4>" lines, files or stdin) into per-country and per-ASN
// counts per bin and publishes them as telemetry points.
func cmdObserve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("observe", flag.ContinueOnError)
	var f flags
	f.register(fs)
	out := fs.String("out", "", "write NDJSON points to this file ('-': stdout) instead of Kafka")
	ds := fs.String("datasource", detect.PingSlash24, "ping-slash24 (lines are responsive /24s: any address in them) or ucsd-nt (lines are source addresses)")
	grace := fs.Duration("grace", 10*time.Minute, "how long a bin waits for late observations")
	pfx2as := fs.String("pfx2as", defaultPfx2AS, "CAIDA prefix2as file attributing /24s to ASNs ('': no ASN points)")
	countries := fs.String("countries", defaultCountryDB, "MaxMind country (or city) database attributing /24s to countries ('': no country points)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.resolve()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	asns, ctry, err := loadRanges(*pfx2as, *countries)
	if err != nil {
		return err
	}
	// The detector's bins (detect: section), as serve's intake aligns to.
	bin := cfg.Detect.Datasources[*ds].Bin
	var agg *telemetry.Aggregator
	switch *ds {
	case detect.PingSlash24:
		agg, err = telemetry.NewProbing(bin, int64(*grace/time.Second), asns, ctry)
	case detect.UCSDNT:
		agg, err = telemetry.NewTelescope(bin, int64(*grace/time.Second), asns, ctry)
	default:
		return fmt.Errorf("--datasource %q: want ping-slash24 or ucsd-nt", *ds)
	}
	if err != nil {
		return err
	}
	sink, closeSink, err := sinkFor(ctx, cfg, *out, log)
	if err != nil {
		return err
	}
	defer closeSink()
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	var total telemetry.ObserveStats
	for _, name := range files {
		var r io.Reader = os.Stdin
		if name != "-" {
			fh, err := os.Open(name)
			if err != nil {
				return fmt.Errorf("open observations: %w", err)
			}
			defer fh.Close()
			r = fh
		}
		// One aggregator over all files: they are one stream in time order.
		st, err := telemetry.Observe(ctx, agg, r, name, sink)
		total.Observations += st.Observations
		total.Late += st.Late
		total.Points += st.Points
		if err != nil {
			return err
		}
	}
	n, err := telemetry.FlushTo(ctx, agg, sink)
	if err != nil {
		return err
	}
	total.Points += n
	log.Info("observations aggregated", "datasource", *ds, "observations", total.Observations, "late_dropped", total.Late, "points", total.Points)
	return nil
}

// loadRanges loads the /24 attribution tables of bgp and observe: ASNs
// from a CAIDA pfx2as file, countries from a MaxMind database; an empty
// path gives a nil table.
func loadRanges(pfx2as, countries string) (asns, ctry *bgp.Ranges, err error) {
	if pfx2as != "" {
		if asns, err = bgp.LoadPfx2AS(pfx2as); err != nil {
			return nil, nil, err
		}
	}
	if countries != "" {
		if ctry, err = bgp.LoadCountries(countries); err != nil {
			return nil, nil, err
		}
	}
	return asns, ctry, nil
}
