package history

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// Compact merges, in every month, each run of at least CompactMinFiles
// consecutive small files (fewer than TargetFileRows/2 rows) into files of
// up to TargetFileRows rows sorted by (key, ts, arrival), and swaps them in
// with a new manifest in place of the run. Replaced files are deleted once
// DeleteDelay has passed and no reader uses them. Compactions are
// serialized; commits proceed while a compaction writes.
func (s *Store) Compact(ctx context.Context) error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	sn, err := s.acquire()
	if err != nil {
		return err
	}
	runs := s.plan(sn)
	sn.release()
	for _, run := range runs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.compactRun(ctx, run); err != nil {
			return fmt.Errorf("compact history %q month %s: %w", s.cfg.Dir, run[0].mf.Month, err)
		}
	}
	return nil
}

// plan returns the runs of files to merge, each of one month, in manifest order.
func (s *Store) plan(sn *snapshot) [][]*pfile {
	small := int64(s.cfg.TargetFileRows / 2)
	byMonth := map[string][]*pfile{}
	var months []string
	for _, f := range sn.files {
		if _, ok := byMonth[f.mf.Month]; !ok {
			months = append(months, f.mf.Month)
		}
		byMonth[f.mf.Month] = append(byMonth[f.mf.Month], f)
	}
	slices.Sort(months)
	var runs [][]*pfile
	for _, m := range months {
		var run []*pfile
		flush := func() {
			if len(run) >= s.cfg.CompactMinFiles {
				runs = append(runs, run)
			}
			run = nil
		}
		for _, f := range byMonth[m] {
			if f.mf.Rows < small {
				run = append(run, f)
			} else {
				flush()
			}
		}
		flush()
	}
	return runs
}

// compactRun merges run (consecutive files of one month) and swaps it out.
func (s *Store) compactRun(ctx context.Context, run []*pfile) (err error) {
	start := time.Now()
	month := run[0].mf.Month
	var inRows int64
	for _, f := range run {
		inRows += f.mf.Rows
	}
	// The run's files are in the current snapshot and only compaction
	// (serialized) removes files, so they stay open while we read them;
	// hold a snapshot anyway so that Close cannot close them under us.
	sn, err := s.acquire()
	if err != nil {
		return err
	}
	defer sn.release()

	var (
		outs []*pfile
		w    *pqWriter
	)
	undo := func() {
		if w != nil {
			w.abort()
		}
		for _, f := range outs {
			_ = f.f.Close()
			removeData(f.abs)
		}
	}
	defer func() {
		if err != nil && !errors.Is(err, errCrash) {
			undo()
		}
	}()
	gen := sn.gen + 1
	m, err := newMerger(run)
	if err != nil {
		return err
	}
	var outRows int64
	closeOut := func() error {
		mf, err := w.finish()
		w = nil
		if err != nil {
			return err
		}
		f, err := openPFile(s.cfg.Dir, mf)
		if err != nil {
			removeData(filepath.Join(s.cfg.Dir, filepath.FromSlash(mf.Path)))
			return err
		}
		outs = append(outs, f)
		return nil
	}
	for n := 0; ; n++ {
		if n%scanBatch == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r, ok, err := m.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if w == nil {
			w, err = newPQWriter(s.cfg.Dir, month, uniqueName(fmt.Sprintf("c%010d-%03d", gen, len(outs))), s.cfg.RowGroupRows, codec)
			if err != nil {
				return err
			}
		}
		if err := w.add(r); err != nil {
			return err
		}
		outRows++
		if w.rows+int64(len(w.buf)) >= int64(s.cfg.TargetFileRows) {
			if err := closeOut(); err != nil {
				return err
			}
		}
	}
	if w != nil {
		if err := closeOut(); err != nil {
			return err
		}
	}
	if outRows != inRows {
		return fmt.Errorf("merged %d rows from %d files holding %d", outRows, len(run), inRows)
	}
	if err := s.syncMonthDirs([]string{month}); err != nil {
		return err
	}
	if s.crash("compact-before-manifest") {
		return errCrash
	}

	// Swap: replace the run, in place, in the current file list.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	cur, err := s.acquire()
	if err != nil {
		return err
	}
	defer cur.release()
	inRun := make(map[*pfile]bool, len(run))
	for _, f := range run {
		inRun[f] = true
	}
	files := make([]*pfile, 0, len(cur.files)-len(run)+len(outs))
	seen := 0
	for _, f := range cur.files {
		if !inRun[f] {
			files = append(files, f)
			continue
		}
		if seen == 0 {
			files = append(files, outs...)
		}
		seen++
	}
	if seen != len(run) {
		return fmt.Errorf("%d of %d compacted files are no longer live", len(run)-seen, len(run))
	}
	next := newSnapshot(cur.gen+1, cur.offsets, files)
	if err := s.writeManifest(next, undo, nil); err != nil {
		outs, w = nil, nil // undo ran already, or the files are live
		return err
	}
	s.pendMu.Lock()
	for _, f := range run {
		s.pending[f] = true
	}
	s.pendMu.Unlock()
	for _, f := range run {
		f.retire(s.cfg.DeleteDelay, s.log, s.gone)
	}
	s.compactions.Add(1)
	s.compactedFiles.Add(int64(len(run)))
	s.compactedRows.Add(inRows)
	s.log.Info("history: compacted", "month", month, "files", len(run), "into", len(outs),
		"rows", inRows, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Store) gone(f *pfile) {
	s.pendMu.Lock()
	delete(s.pending, f)
	s.pendMu.Unlock()
}

// Run compacts every CompactEvery until ctx is done; it returns nil then
// (and when the store is closed).
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.CompactEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := s.Compact(ctx)
		switch {
		case err == nil:
		case errors.Is(err, ErrClosed):
			return nil
		case ctx.Err() != nil:
			return nil
		default:
			s.log.Error("history: compaction failed", "err", err)
		}
	}
}
