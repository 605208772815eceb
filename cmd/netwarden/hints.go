package main

import (
	"errors"
	"fmt"
	"syscall"
)

// errNoHistory is returned by sql and check when there is no history to
// look at: a wrong data directory or config is the usual cause.
var errNoHistory = errors.New("no history")

// noHistory says where no history was found and how to point at one.
func noHistory(where string) error {
	return fmt.Errorf("%w at %s (did you mean --config demo.yaml?)", errNoHistory, where)
}

// portHint adds to a listen error which flag (and config key, spelled
// the same) changes the address when the port is taken.
func portHint(err error, key string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: the port is in use; choose another with --%s or %s in the config", err, key, key)
	}
	return err
}
