package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/netwarden/netwarden/stream/check"
	"github.com/netwarden/netwarden/stream/history"
)

// TestCheckReportsDamagedFile flips one byte in a page of the resource
// column of a history file (a page that neither the restart's rebuild nor
// point lookups read): the server still starts, `netwarden check` exits 1
// naming the file, and the damage shows on /metrics.
func TestCheckReportsDamagedFile(t *testing.T) {
	needShared(t)
	rs := []listRun{runs[0], runs[6]}
	s := newServer(t, rs, "")
	s.start()
	s.waitIdle(3 * time.Minute)
	s.stop()

	files, err := history.ListFiles(filepath.Join(s.dataDir, "history"))
	if err != nil || len(files) == 0 {
		t.Fatalf("history files: %v %v", files, err)
	}
	victim := files[len(files)-1]
	off := resourcePage(t, victim)
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x01
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}

	s.start()
	s.waitIdle(time.Minute)
	out, err := exec.Command(s.bin, "check", "--config", s.cfgPath).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("netwarden check on a damaged file: %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(string(ee.Stderr), victim) {
		t.Errorf("check's message does not name %s: %s", victim, ee.Stderr)
	}
	var res check.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("check output %s: %v", out, err)
	}
	if res.Files == nil || len(res.Files.Damaged) != 1 || res.Files.Damaged[0].Path != victim {
		t.Fatalf("check lists %+v, want %s", res.Files, victim)
	}
	if n := s.metric("netwarden_history_damaged_files"); n != 1 {
		t.Errorf("netwarden_history_damaged_files = %v, want 1", n)
	}
	if n := s.metric("netwarden_history_corrupt_pages_total"); n < 1 {
		t.Errorf("netwarden_history_corrupt_pages_total = %v, want >= 1", n)
	}
	// DuckDB reads the files itself, unverified (query/ owns that path).
	if resp, err := http.Post("http://"+s.http+"/sql", "text/plain", strings.NewReader("SELECT count(DISTINCT resource) FROM changes")); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("SQL over the damaged resource page: %d %s", resp.StatusCode, body)
	}
	s.stop()
}

// resourcePage returns an offset inside the first data page of the
// resource column of the Parquet file at path.
func resourcePage(t *testing.T, path string) int64 {
	t.Helper()
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	md := r.MetaData()
	col := md.Schema.ColumnIndexByName("resource")
	rgp, err := r.GetPageIndexReader().RowGroup(0)
	if err != nil || rgp == nil {
		t.Fatalf("page index: %v", err)
	}
	oi, err := rgp.GetOffsetIndex(col)
	if err != nil || oi == nil {
		t.Fatalf("offset index: %v", err)
	}
	loc := oi.GetPageLocations()[0]
	return loc.Offset + int64(loc.CompressedPageSize)/2
}
