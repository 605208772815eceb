//go:build race

package detect

// raceDetector: the race detector slows the harness about 5x; TestQualityGoals runs one month.
const raceDetector = true
