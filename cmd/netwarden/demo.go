package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/netwarden/netwarden/internal/account"
)

// demoEmail is the demo account `make demo` signs in with.
const demoEmail = "demo@netwarden.example"

// demoAccount creates the demo account on first start (`netwarden account
// demo`, run by `make demo` before serve) and prints its API key, shown
// once like every key, and the dashboard link. Later starts print the
// link and how to get a new key: keys are stored hashed only.
func demoAccount(ctx context.Context, w io.Writer, store *account.Store, httpAddr string) error {
	link := "http://" + dashboardHost(httpAddr) + "/ui/"
	as, err := store.List(ctx)
	if err != nil {
		return err
	}
	for _, a := range as {
		if a.Email == demoEmail {
			fmt.Fprintf(w, "demo account %d (%s, plan %s) exists; its API key was printed at its first start.\n", a.ID, a.Email, a.Plan)
			fmt.Fprintf(w, "a new key: netwarden account key %d --config demo.yaml\ndashboard: %s\n", a.ID, link)
			return nil
		}
	}
	a, key, err := store.Create(ctx, demoEmail, "DEVELOPER", false)
	if errors.Is(err, account.ErrExists) { // created concurrently
		return demoAccount(ctx, w, store, httpAddr)
	}
	if err != nil {
		return fmt.Errorf("create demo account: %w", err)
	}
	fmt.Fprintf(w, "demo account %d created (%s, plan %s)\nAPI key (shown once): %s\ndashboard: %s  (sign in with the key)\n", a.ID, a.Email, a.Plan, key, link)
	return nil
}

// dashboardHost is the host:port a browser on this machine reaches
// http.addr at.
func dashboardHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
