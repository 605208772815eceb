package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/netwarden/netwarden/query"
)

// cmdSQLWorker is the hidden `netwarden sql-worker` command: a SQL worker
// process started by query.Pool (never by hand). It answers queries on
// stdin/stdout until stdin is closed.
func cmdSQLWorker() error {
	if !query.IsWorkerProcess() {
		return fmt.Errorf("sql-worker is started by netwarden itself (%s is not set)", query.WorkerEnv)
	}
	return query.WorkerMain(os.Stdin, os.Stdout)
}

// newSQLPool starts the SQL worker pool; its workers are this binary's
// sql-worker command.
func newSQLPool(cfg query.Config, log *slog.Logger) (*query.Pool, error) {
	cmd, err := query.SelfCommand("sql-worker")
	if err != nil {
		return nil, err
	}
	return query.NewPool(cfg, cmd, log)
}
