package detect

import (
	"math"
	"slices"

	nwdetect "github.com/netwarden/netwarden/detect"
)

// iodaLevels is IODA's published method, done plainly on one series: each bin's value is
// compared with the median of the raw values of the bins in the window before it (bgp 24 h,
// probing and telescope 7 days); critical below median*Critical, warning below
// median*Warning, normal otherwise; every change of that level is an alert. No inpainting (an
// outage's own low values enter the window), no minimum duration. It shares the detector's
// warm-up and minimum prediction, so the comparison is about those two differences. values
// holds one value per bin, NaN for a missing bin (not judged, keeps the previous level, does
// not enter the window). The result is the level after each bin.
func iodaLevels(c nwdetect.DatasourceConfig, values []float64) []nwdetect.Level {
	slots := c.Slots()
	out := make([]nwdetect.Level, len(values))
	window := make([]float64, 0, slots) // values of bins (b-slots, b), ascending
	level := nwdetect.Normal
	for b, v := range values {
		if old := b - slots; old >= 0 && !math.IsNaN(values[old]) {
			i, _ := slices.BinarySearch(window, values[old])
			window = slices.Delete(window, i, i+1)
		}
		if math.IsNaN(v) {
			out[b] = level
			continue
		}
		level = nwdetect.Normal
		if n := len(window); n >= c.WarmUp {
			med := window[n/2]
			if n%2 == 0 {
				med = (window[n/2-1] + window[n/2]) / 2
			}
			if med >= c.MinPredicted {
				switch {
				case v < med*c.Critical:
					level = nwdetect.Critical
				case v < med*c.Warning:
					level = nwdetect.Warning
				}
			}
		}
		out[b] = level
		i, _ := slices.BinarySearch(window, v)
		window = slices.Insert(window, i, v)
	}
	return out
}
