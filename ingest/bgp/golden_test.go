package bgp

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
)

const dataDir = "../../../shared/data/bgp"

func needData(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(dataDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared data %s absent: %v", p, err)
	}
	return p
}

// TestGolden renders every Elem of the real MRT files in bgpdump -m style and
// compares line by line with bgpdump's own output.
func TestGolden(t *testing.T) {
	for _, name := range []string{"bview.20020722.2337.gz", "updates.20160811.1600.gz"} {
		t.Run(name, func(t *testing.T) {
			mrtPath := needData(t, name)
			goldPath := needData(t, name+".bgpdump-expected.txt.gz")
			gf, err := os.Open(goldPath)
			if err != nil {
				t.Fatal(err)
			}
			defer gf.Close()
			zr, err := gzip.NewReader(gf)
			if err != nil {
				t.Fatal(err)
			}
			gold := bufio.NewScanner(zr)
			gold.Buffer(make([]byte, 1<<20), 1<<20)
			r, err := Open(mrtPath)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var line []byte
			n, mismatches := 0, 0
			for {
				e, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("after %d elems: %v", n, err)
				}
				n++
				line = e.AppendBgpdump(line[:0])
				if !gold.Scan() {
					t.Fatalf("elem %d beyond the golden output: %s", n, line)
				}
				if want := gold.Text(); want != string(line) {
					mismatches++
					if mismatches <= 5 {
						t.Errorf("line %d:\n got %s\nwant %s", n, line, want)
					}
				}
			}
			extra := 0
			for gold.Scan() {
				extra++
				if extra <= 3 {
					t.Errorf("golden line %d not produced: %s", n+extra, gold.Text())
				}
			}
			if err := gold.Err(); err != nil {
				t.Fatal(err)
			}
			if mismatches > 0 || extra > 0 {
				t.Fatalf("%d of %d lines differ, %d golden lines missing", mismatches, n, extra)
			}
			if n == 0 {
				t.Fatal("no elems read")
			}
			t.Logf("%d lines identical; stats %+v", n, r.Stats())
		})
	}
}
