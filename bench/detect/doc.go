// Package detect is the outage-detection quality harness (bench/detect): it measures how well
// the detector of package netwarden/detect finds outages, beside a plain implementation of
// IODA's published method on the same data.
//
// Data: for each calendar month of the scenario, ingest/simulate generates the bgp,
// ping-slash24 and ucsd-nt series of every entity the real IODA catalogue
// (../shared/data/outages) names that month, plus outage-free entities of the entity registry,
// from seven days before the month (so 7-day windows are warm) to a day after it. The
// catalogue's outages are injected at their real times (simulate.Schedule: real entity, real
// start and end, the datasources the operators saw them in), and seeded random outages
// (simulate.RandomOutages: 10 min to 24 h, any entity of the month) on top.
//
// Two depths: "deep" outages (simulate's drops, below every critical threshold) and "partial"
// ones (bgp 0.9x, ping-slash24 0.7x, ucsd-nt 0.2x: between each datasource's warning and
// critical levels).
//
// Metrics, over the month itself:
//   - recall: the share of outages lasting at least 30 minutes that were detected, i.e. some
//     series of the entity among the datasources that showed the outage was at a level other
//     than normal at a bin overlapping the outage (the method's alerted level after that bin);
//     also for the catalogue's outages alone, and per datasource (per outage and signal);
//   - chance recall: the same test on decoy windows (each outage's entity, datasources and
//     length a week later or earlier, where nothing was injected): what alerting at random
//     would score;
//   - false alerts per entity-month: alerts to warning or critical raised at a bin that is not
//     within an injected outage of that series (or the two bins after its end), per simulated
//     entity and 30 days;
//   - detection delay: bins from the outage's first bin to the first bin at whose evaluation
//     one of its series left normal, in that series' bins (0: the first outage bin raised it;
//     with min_duration 2 the detector's least is 1).
//
// IODA's method, for comparison (iodaLevels): the value against the moving median of the raw
// values of the window, IODA's thresholds, every level change an alert; no inpainting, no
// minimum duration, no minimum drop. The detector runs as in production: every month's points
// in time order through detect.Detector (Add, Advance at each new bin start, Flush), its levels
// read from the per-bin verdicts (and checked against the alerts it returned).
//
// The tests and benchmarks are in the _test.go files: TestQualityGoals asserts the goals on a
// seeded scenario; BenchmarkQuality reports the figures for the whole catalogue.
package detect
