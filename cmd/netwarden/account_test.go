package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/account"
)

// TestAccountCLI drives `netwarden account` as an operator would and
// checks the result in the account database itself.
func TestAccountCLI(t *testing.T) {
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(append([]string{"account"}, args...), "--data.dir", dir)...)
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("netwarden account %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var created struct {
		Account account.Account `json:"account"`
		Key     string          `json:"key"`
	}
	if err := json.Unmarshal([]byte(run(true, "create", "--email", "noc@example.net", "--plan", "DEVELOPER", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.Account.ID != 1 || !strings.HasPrefix(created.Key, "nwk_") {
		t.Fatalf("created %+v", created)
	}
	out := run(true, "key", "1", "--scopes", "read,admin")
	i := strings.Index(out, "nwk_")
	if i < 0 {
		t.Fatalf("no key in %q", out)
	}
	adminKey := strings.TrimSpace(out[i:])
	run(true, "plan", "1", "ENTERPRISE")
	run(false, "plan", "1", "GOLD")
	run(false, "plan", "7", "FREE")
	run(false, "create", "--email", "noc@example.net") // exists
	run(false, "create", "--email", "not-an-address")  // invalid
	run(false, "key", "1", "--scopes", "everything")   // bad scope
	run(true, "revoke", created.Key)                   // whole key
	run(false, "revoke", "nwk_nonexist")               // unknown
	if !strings.Contains(run(true, "list"), "noc@example.net") {
		t.Fatal("list lacks the account")
	}

	cfg := account.Config{Path: filepath.Join(dir, "state", "netwarden.db")}
	cfg.Defaults()
	store, err := account.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if _, err := store.Authenticate(ctx, created.Key); err == nil {
		t.Error("revoked key still authenticates")
	}
	p, err := store.Authenticate(ctx, adminKey)
	if err != nil || !p.Has(account.ScopeAdmin) || p.Account.Plan != "ENTERPRISE" {
		t.Errorf("admin key: %+v %v", p, err)
	}
}
