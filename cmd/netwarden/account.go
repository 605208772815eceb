package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/netwarden/netwarden/internal/account"
)

const accountUsage = `usage: netwarden account <command> [flags]

commands:
  create --email a@example.com --plan DEVELOPER [--admin]   a new account and its first API key
  list                                                      every account
  plan ID PLAN                                              move account ID to PLAN
  key ID [--scopes read,sql]                                a new API key for account ID
  revoke KEY                                                revoke a key (whole, or its 8-character id)
  demo                                                      the demo account (make demo): created and its key printed on first start

flags of every command: --config FILE, --data.dir DIR, --json
Keys are shown once and stored hashed.`

// cmdAccount manages accounts and API keys in the data dir's account
// database (the server may be running: the database takes concurrent
// writers).
func cmdAccount(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, accountUsage)
		return exitCode(2)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("account "+sub, flag.ContinueOnError)
	var f flags
	fs.StringVar(&f.config, "config", "", "YAML configuration file")
	fs.StringVar(&f.dataDir, "data.dir", "", "data directory")
	asJSON := fs.Bool("json", false, "print JSON (for scripts)")
	email := fs.String("email", "", "the account's e-mail address (create)")
	plan := fs.String("plan", "FREE", "plan (create)")
	admin := fs.Bool("admin", false, "give the first key the admin scope too (create)")
	scopes := fs.String("scopes", "read,sql", "comma-separated scopes: read, sql, admin, telemetry (key)")
	// Flags may come before or after the positional arguments.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	cfg, err := f.resolve()
	if err != nil {
		return err
	}
	store, err := account.Open(cfg.Account)
	if err != nil {
		return err
	}
	defer store.Close()
	out := func(v any, text func()) error {
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		text()
		return nil
	}
	needArgs := func(n int, what string) error {
		if len(pos) != n {
			return fmt.Errorf("account %s needs %s", sub, what)
		}
		return nil
	}
	parseID := func(s string) (account.ID, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("account id %q is not a positive integer", s)
		}
		return account.ID(n), nil
	}
	switch sub {
	case "create":
		if *email == "" {
			return errors.New("account create needs --email")
		}
		a, key, err := store.Create(ctx, *email, *plan, *admin)
		if err != nil {
			return err
		}
		return out(map[string]any{"account": a, "key": key}, func() {
			fmt.Printf("account %d created for %s on plan %s\nAPI key (shown once): %s\n", a.ID, a.Email, a.Plan, key)
		})
	case "list":
		as, err := store.List(ctx)
		if err != nil {
			return err
		}
		return out(map[string]any{"accounts": as}, func() {
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tEMAIL\tPLAN\tCREATED")
			for _, a := range as {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", a.ID, a.Email, a.Plan, a.Created.Format("2006-01-02"))
			}
			w.Flush()
		})
	case "plan":
		if err := needArgs(2, "ID PLAN"); err != nil {
			return err
		}
		id, err := parseID(pos[0])
		if err != nil {
			return err
		}
		if err := store.SetPlan(ctx, id, pos[1]); err != nil {
			return err
		}
		return out(map[string]any{"id": id, "plan": pos[1]}, func() { fmt.Printf("account %d is on plan %s\n", id, pos[1]) })
	case "key":
		if err := needArgs(1, "ID"); err != nil {
			return err
		}
		id, err := parseID(pos[0])
		if err != nil {
			return err
		}
		sc, err := account.ParseScopes(*scopes)
		if err != nil {
			return err
		}
		key, err := store.NewKey(ctx, id, sc)
		if err != nil {
			return err
		}
		return out(map[string]any{"id": id, "key": key, "scopes": sc}, func() { fmt.Printf("API key for account %d (shown once): %s\n", id, key) })
	case "demo":
		return demoAccount(ctx, os.Stdout, store, cfg.HTTP.Addr)
	case "revoke":
		if err := needArgs(1, "KEY"); err != nil {
			return err
		}
		if err := store.Revoke(ctx, pos[0]); err != nil {
			return err
		}
		return out(map[string]any{"revoked": true}, func() { fmt.Println("revoked") })
	}
	fmt.Fprintln(os.Stderr, accountUsage)
	return fmt.Errorf("unknown account command %q", sub)
}
