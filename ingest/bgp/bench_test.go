package bgp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func benchFile(b *testing.B, name string) []byte {
	b.Helper()
	raw, err := os.ReadFile(needData(b, name))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkRead measures records/s and elems/s of Reader on the real gzip
// files; the baseline sub-benchmark only decompresses and frames the MRT
// records in the same run, so decode cost = read / frame.
func BenchmarkRead(b *testing.B) {
	for _, name := range []string{"updates.20160811.1600.gz", "bview.20020722.2337.gz"} {
		raw := benchFile(b, name)
		b.Run(name+"/frame-baseline", func(b *testing.B) {
			recs := 0
			for b.Loop() {
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					b.Fatal(err)
				}
				br := bufio.NewReaderSize(zr, 1<<16)
				var hdr [12]byte
				for {
					if _, err := io.ReadFull(br, hdr[:]); err != nil {
						break
					}
					if _, err := br.Discard(int(binary.BigEndian.Uint32(hdr[8:]))); err != nil {
						b.Fatal(err)
					}
					recs++
				}
			}
			b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
		})
		b.Run(name+"/read", func(b *testing.B) {
			recs, elems := 0, 0
			for b.Loop() {
				r, err := NewReader(bytes.NewReader(raw))
				if err != nil {
					b.Fatal(err)
				}
				for {
					_, err := r.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				recs += r.Stats().Records
				elems += r.Stats().Elems
			}
			b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(elems)/b.Elapsed().Seconds(), "elems/s")
		})
	}
}

// BenchmarkSnapshot measures one bin's signal over the 2002 RIB (115 k
// routes) with pfx2as attribution, after a change to one peer.
func BenchmarkSnapshot(b *testing.B) {
	r, err := NewReader(bytes.NewReader(benchFile(b, "bview.20020722.2337.gz")))
	if err != nil {
		b.Fatal(err)
	}
	asns, err := LoadPfx2AS(geoDir + "/routeviews-rv2-20170329-0200.pfx2as.gz")
	if err != nil {
		b.Skipf("pfx2as: %v", err)
	}
	v, err := NewVisibility(Defaults(), asns, nil)
	if err != nil {
		b.Fatal(err)
	}
	var first Elem
	for i := 0; ; i++ {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			first = e
		}
		v.Add(e, nil)
	}
	for b.Loop() {
		w := first
		w.Type = Withdraw
		v.apply(w)
		v.apply(first)
		if pts := v.snapshot(0); len(pts) == 0 {
			b.Fatal("no points")
		}
	}
}

type discard struct{ n int }

func (d *discard) Publish(_ context.Context, pts []Point) error { d.n += len(pts); return nil }

// readRecords reads every Elem of files and returns their record count; a
// read error fails b (it would make the baseline look faster).
func readRecords(b *testing.B, files []string) int {
	b.Helper()
	n := 0
	for _, f := range files {
		r, err := Open(f)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				b.Fatalf("read %s: %v", f, err)
			}
		}
		n += r.Stats().Records
		r.Close()
	}
	return n
}

// BenchmarkProducer: the 2002 RIB then the 2007 updates (15 minutes, 4 bins)
// end to end through Visibility into a discarding Sink; the baseline
// sub-benchmark only reads the same files in the same run.
func BenchmarkProducer(b *testing.B) {
	files := []string{needData(b, "bview.20020722.2337.gz"), needData(b, "updates.20070211.0141.gz")}
	perRun := readRecords(b, files)
	b.Run("read-baseline", func(b *testing.B) {
		recs := 0
		for b.Loop() {
			recs += readRecords(b, files)
		}
		b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("produce", func(b *testing.B) {
		recs := 0
		for b.Loop() {
			v, err := NewVisibility(Defaults(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			var d discard
			if err := NewProducer(v, &d, files...).Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			recs += perRun
		}
		b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
	})
}
