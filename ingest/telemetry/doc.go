// Package telemetry is netwarden's intake of outage-detection signals
// (issue 7): it checks telemetry points, publishes them to the
// netwarden.telemetry topic, turns raw active-probing and telescope
// observations into per-entity counts, and simulates realistic signals for
// demos.
//
// Contract of a point (detect.Point as JSON: datasource, entity_type,
// entity_code, time, value):
//   - Validator.Check accepts a point when its datasource is one the detect
//     config bins (bgp, ping-slash24, ucsd-nt by default), its entity type is
//     country, region or asn and its code is one entity.Registry.Lookup
//     accepts (the code is rewritten to the registry's canonical form: "us" →
//     "US", "AS3307" → "3307"), its time is a unix second in [0, now +
//     MaxFuture] (rewritten down to the start of its bin) and its value is a
//     finite number ≥ 0. Every rejection wraps ErrInvalid and says why.
//   - Publisher.Publish writes checked points to TopicTelemetry, value = the
//     point's JSON, key = "datasource/entity_type/entity_code" (Key), and
//     returns once the broker acknowledged all of them.
//
// Aggregator counts distinct keys per bin and entity: a probing aggregator
// (NewProbing) the responsive /24s, a telescope aggregator (NewTelescope)
// the distinct source IPv4 addresses. An observation is attributed to the
// country and the ASN of its /24 (bgp.Ranges from the MaxMind country DB
// and CAIDA pfx2as). Bins close on event time like the detector's (the
// latest observation's bin minus a grace period); a closed bin yields one
// point per entity seen so far, 0 for an entity with no observation in it,
// because the detector judges only bins that have a point. A bin with no
// observation at all yields nothing (the collector was down, not the whole
// Internet).
//
// Simulator (Run) publishes ingest/simulate signals of many entities: a
// backfill long enough to warm the 7-day windows, then each bin as it
// ends in real time, with the real outage catalogue shifted into the
// simulated period and random outages, one of them ongoing at the first
// start. Outages are planned per period (Epoch); the signals run on across
// periods without a seam, and each regeneration covers only the bins still
// to publish (a bin's value depends only on the seed, its time and the
// outages over it).
package telemetry
