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
// Metrics, over the month itself:
//   - recall: the share of outages lasting at least 30 minutes that were detected, i.e. some
//     series of the entity among the datasources that showed the outage was at a level other
//     than normal at a bin overlapping the outage (the detector's alerted level after that bin);
//   - false alerts per entity-month: alerts to warning or critical raised at a bin that is not
//     within an injected outage of that series (or the two bins after its end), per simulated
//     entity and 30 days;
//   - detection delay: bins from the outage's first bin to the first bin at whose evaluation
//     one of its series left normal, in that series' bins (0: the first outage bin raised it).
//
// The tests and benchmarks are in the _test.go files: TestQualityGoals asserts the goals on a
// seeded scenario; BenchmarkQuality reports the figures for the whole catalogue.
package detect
