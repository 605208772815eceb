package query

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sandboxProbeEnv makes the test binary a sandbox probe (see TestMain): it
// applies the worker sandbox exactly as a worker does (sandboxAndExec), and
// the re-executed process tries to write below the directory named here.
const sandboxProbeEnv = "NETWARDEN_TEST_SANDBOX_PROBE"

// sandboxProbe is the second stage of the probe: it reports which write
// attempts succeeded, one line each.
func sandboxProbe(dir string) {
	try := func(name string, err error) {
		fmt.Printf("%s=%v\n", name, err == nil)
	}
	try("write", os.WriteFile(filepath.Join(dir, "history", "new.txt"), []byte("x"), 0o644))
	f, err := os.OpenFile(filepath.Join(dir, "history", "existing.txt"), os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		f.Close()
	}
	try("truncate", err)
	try("mkdir", os.Mkdir(filepath.Join(dir, "history", "manifest.json.tmp"), 0o755))
	try("rename", os.Rename(filepath.Join(dir, "history", "existing.txt"), filepath.Join(dir, "history", "moved.txt")))
	try("remove", os.Remove(filepath.Join(dir, "history", "existing.txt")))
	try("symlink", os.Symlink("/etc/passwd", filepath.Join(dir, "history", "link")))
	try("tmp", os.WriteFile(filepath.Join(dir, "tmp", "spill"), []byte("x"), 0o644))
	try("read", func() error { _, err := os.ReadFile(filepath.Join(dir, "history", "existing.txt")); return err }())
}

func runSandboxProbe() {
	dir := os.Getenv(sandboxProbeEnv)
	if os.Getenv(workerStageEnv) != "" {
		fmt.Println("sandbox=" + os.Getenv(workerStageEnv))
		sandboxProbe(dir)
		return
	}
	err := sandboxAndExec(workerConfig{Engine: Config{TempDir: filepath.Join(dir, "tmp")}, AddressSpace: 4 << 30})
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// TestSandbox checks the OS layer on its own: a process under the worker
// sandbox cannot create, write, truncate, rename, remove or link anything
// outside its temp dir (even though DuckDB is not involved), while reads
// and writes in the temp dir work.
func TestSandbox(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"history", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "history", "existing.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := landlockABI(); err != nil {
		t.Skipf("the kernel offers no Landlock (%v): workers run without the file-system sandbox", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sandboxProbeEnv+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("probe: %v: %s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	t.Logf("%s", got["sandbox"])
	want := map[string]string{"write": "false", "truncate": "false", "mkdir": "false", "rename": "false",
		"remove": "false", "symlink": "false", "tmp": "true", "read": "true"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s succeeded = %s, want %s", k, got[k], v)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "history", "existing.txt")); err != nil || string(b) != "keep" {
		t.Errorf("existing file: %q %v", b, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "history"))
	if len(ents) != 1 {
		t.Errorf("history dir has %d entries, want 1", len(ents))
	}
}
