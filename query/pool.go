package query

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Trailer names of a streamed result (see Pool.Query).
const (
	RowsHeader  = "X-Netwarden-Rows"
	ErrorHeader = "X-Netwarden-Error"
)

// ErrWorkerDied marks a query whose worker process died without being
// killed for its time limit; almost always it ran out of its address space
// (Config.WorkerMemory). It wraps ErrResourceLimit.
var ErrWorkerDied = fmt.Errorf("%w: the query used more memory than allowed", ErrResourceLimit)

// Pool runs user SQL in worker processes (WorkerMain), one query at a time
// per worker, Config.MaxConcurrent workers. See the package documentation.
type Pool struct {
	cfg    Config
	newCmd func() *exec.Cmd
	log    *slog.Logger
	slots  chan *slot
	wg     sync.WaitGroup // background worker restarts
	closed atomic.Bool
	warned atomic.Bool

	stateMu sync.Mutex
	gen     uint64 // incremented by SetFiles and SetLists
	files   []string
	lists   []ListRow
	outage  OutageFiles
}

type slot struct {
	id int
	w  *worker // nil: not started
}

type worker struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	tmp    string // private temp dir ("" without Config.TempDir)
	gen    uint64 // pool state the worker has applied
	killed atomic.Bool
	broken bool // protocol state unknown: must not be reused
	exited chan struct{}
}

// NewPool starts a pool of Config.MaxConcurrent SQL workers. newCmd returns
// the command of a worker process: the running binary with an argument that
// makes it call WorkerMain (`netwarden sql-worker`); NewPool adds the
// environment and process attributes. The first worker is started before
// NewPool returns, so configuration errors surface here; the others start in
// the background.
func NewPool(cfg Config, newCmd func() *exec.Cmd, log *slog.Logger) (*Pool, error) {
	if err := cfg.prepare(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg, newCmd: newCmd, log: log, slots: make(chan *slot, cfg.MaxConcurrent)}
	first := &slot{id: 0}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.start(ctx, first); err != nil {
		return nil, err
	}
	p.slots <- first
	for i := 1; i < cfg.MaxConcurrent; i++ {
		p.restart(&slot{id: i})
	}
	return p, nil
}

// SelfCommand returns a worker command factory that runs the current
// executable with args (e.g. "sql-worker").
func SelfCommand(args ...string) (func() *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("query: find executable: %w", err)
	}
	return func() *exec.Cmd { return exec.Command(exe, args...) }, nil
}

// start launches the worker of s and waits for its ready frame.
func (p *Pool) start(ctx context.Context, s *slot) error {
	wc := workerConfig{Engine: p.cfg, AddressSpace: uint64(p.cfg.WorkerMemoryBytes())}
	wc.Engine.MaxConcurrent = 1
	wc.Engine.TempDir = ""
	var tmp string
	if p.cfg.TempDir != "" {
		tmp = filepath.Join(p.cfg.TempDir, "worker-"+strconv.Itoa(s.id))
		_ = os.RemoveAll(tmp) // spill files of a killed predecessor
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			return fmt.Errorf("query: worker temp dir: %w", err)
		}
		wc.Engine.TempDir = tmp
	}
	env, err := json.Marshal(wc)
	if err != nil {
		return fmt.Errorf("query: encode worker config: %w", err)
	}
	cmd := p.newCmd()
	if cmd.Env == nil {
		cmd.Env = workerEnviron()
	}
	// Two glibc malloc arenas instead of eight per core: each reserves
	// 64 MiB of address space, which counts against RLIMIT_AS.
	cmd.Env = append(cmd.Env, WorkerEnv+"="+string(env), "MALLOC_ARENA_MAX=2")
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	// Its own process group (killed as a whole), and killed with us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("query: worker stdin: %w", err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("query: worker stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("query: start sql worker: %w", err)
	}
	w := &worker{cmd: cmd, in: in, out: bufio.NewReaderSize(outPipe, chunkSize+16), tmp: tmp, exited: make(chan struct{})}
	go func() { // owned by the worker: kill/stop wait for exited
		_ = cmd.Wait()
		close(w.exited)
	}()
	stop := context.AfterFunc(ctx, w.kill)
	defer stop()
	typ, payload, err := readFrame(w.out)
	if err != nil || typ != frameReady {
		w.kill()
		<-w.exited
		if err == nil {
			err = fmt.Errorf("unexpected frame %q", typ)
		}
		return fmt.Errorf("query: sql worker did not start (%s): %w", cmd.ProcessState, err)
	}
	var hello workerHello
	_ = json.Unmarshal(payload, &hello)
	if !p.warned.Swap(true) {
		p.log.Debug("sql worker started", "pid", hello.PID, "sandbox", hello.Sandbox, "limit", hello.Limit)
		if len(hello.Sandbox) < 8 || hello.Sandbox[:8] != "landlock" {
			p.log.Warn("sql workers run without a file-system sandbox; only DuckDB's own settings keep them from writing files", "reason", hello.Sandbox)
		}
	}
	s.w = w
	return nil
}

// workerEnviron is the environment a worker inherits: only what the runtime
// and tooling need, so nothing secret in the server's environment reaches
// the process that runs user SQL.
func workerEnviron() []string {
	var env []string
	for _, k := range []string{"PATH", "TZ", "LANG", "LC_ALL", "TMPDIR", "GORACE", "GOCOVERDIR", "GODEBUG", "GOTRACEBACK"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// kill ends the worker's process group at once.
func (w *worker) kill() {
	w.killed.Store(true)
	select {
	case <-w.exited: // reaped: its pid may belong to someone else now
		return
	default:
	}
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	_ = w.cmd.Process.Kill()
}

// restart replaces the worker of s in the background and then returns s to
// the pool.
func (p *Pool) restart(s *slot) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if s.w != nil {
			s.w.kill()
			<-s.w.exited
			s.w = nil
		}
		if !p.closed.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := p.start(ctx, s); err != nil {
				p.log.Error("restart sql worker", "slot", s.id, "err", err)
			}
			cancel()
		}
		p.slots <- s // a nil worker is started by the next query
	}()
}

// SetFiles sets the files of the `changes` view (absolute paths inside
// HistoryDir). Workers apply it before their next query.
func (p *Pool) SetFiles(files []string) error {
	clean, err := cleanFiles(p.cfg.HistoryDir, files)
	if err != nil {
		return err
	}
	for _, f := range clean {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("query: set files: %w", err)
		}
	}
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	p.files = clean
	p.gen++
	return nil
}

// SetLists sets the content of the `lists` table. Workers apply it before
// their next query.
func (p *Pool) SetLists(rows []ListRow) error {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	p.lists = append([]ListRow(nil), rows...)
	p.gen++
	return nil
}

// Query runs sqlText in a worker and streams the result to w in format f.
//
// The worker reports the outcome of parsing, planning, execution and the
// first 64 KiB of the body before anything is written, so a failed query
// writes nothing and the caller can still answer with an error status:
// ErrRejected (400), context.DeadlineExceeded (408: the worker was killed at
// Config.Timeout), ErrResourceLimit (out of memory or the worker died), any
// other error (500).
//
// If w has a Header() http.Header method, Query sets Content-Type. A result
// that fits in the first chunk gets X-Netwarden-Rows and
// X-Netwarden-Truncated as headers; a longer one declares them as HTTP
// trailers and sets them after the body (and X-Netwarden-Error when the
// body was cut short by an error). The body is at most Config.MaxBytes
// (about, for Arrow) and always well-formed unless X-Netwarden-Error is set.
// w is flushed after every chunk if it is an http.Flusher.
func (p *Pool) Query(ctx context.Context, sqlText string, f Format, w io.Writer) (Result, error) {
	if p.closed.Load() {
		return Result{}, ErrClosed
	}
	if err := checkText(sqlText); err != nil {
		return Result{}, err
	}
	// The kill comes a moment after the worker's own timeout, which
	// interrupts DuckDB cleanly when it can (and keeps the worker).
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout+p.grace())
	defer cancel()
	var s *slot
	select {
	case s = <-p.slots:
	case <-ctx.Done():
		return Result{}, ctxError("wait for a sql worker", ctx)
	}
	if s.w == nil {
		if err := p.start(ctx, s); err != nil {
			p.slots <- s
			if ctx.Err() != nil {
				return Result{}, ctxError("start sql worker", ctx)
			}
			return Result{}, err
		}
	}
	w0 := s.w
	stop := context.AfterFunc(ctx, w0.kill)
	res, err := p.query(w0, sqlText, f, w)
	stop()
	killed := w0.killed.Load() // by us: deadline or cancellation
	if err != nil && (killed || errors.Is(err, io.ErrUnexpectedEOF)) {
		switch {
		case ctx.Err() != nil:
			err = ctxError("query", ctx)
		case !killed:
			// The worker went away on its own: out of memory (RLIMIT_AS
			// inside Go, the kernel's OOM killer) or a crash.
			select {
			case <-w0.exited:
				err = fmt.Errorf("%w (worker %s)", ErrWorkerDied, w0.cmd.ProcessState)
			case <-time.After(2 * time.Second):
				err = fmt.Errorf("%w (worker stopped answering)", ErrWorkerDied)
			}
		}
	}
	if killed || w0.broken {
		p.restart(s)
	} else {
		p.slots <- s
	}
	return res, err
}

// grace is how long the pool waits past Config.Timeout before killing.
func (p *Pool) grace() time.Duration {
	return min(time.Second, p.cfg.Timeout/4)
}

func ctxError(stage string, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: query timed out: %w", stage, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: query canceled: %w", stage, ctx.Err())
}

// query sends one request and relays the answer. It marks the worker
// broken when the protocol state is unknown afterwards.
func (p *Pool) query(wk *worker, sqlText string, f Format, w io.Writer) (Result, error) {
	req := workerRequest{SQL: sqlText, Format: f, MaxBytes: p.cfg.MaxBytes}
	p.stateMu.Lock()
	gen := p.gen
	if wk.gen != gen {
		files, lists, out := p.files, p.lists, p.outage
		req.Files, req.Lists, req.Outage = &files, &lists, &out
	}
	p.stateMu.Unlock()
	if err := writeJSONFrame(wk.in, frameQuery, req); err != nil {
		wk.broken = true
		return Result{}, fmt.Errorf("query: send to sql worker: %w", io.ErrUnexpectedEOF)
	}
	typ, first, err := readFrame(wk.out)
	if err != nil {
		wk.broken = true
		return Result{}, fmt.Errorf("query: sql worker: %w", io.ErrUnexpectedEOF)
	}
	switch typ {
	case frameError:
		err := decodeWorkerError(first)
		if !errors.Is(err, errState) {
			wk.gen = gen
		}
		return Result{}, err
	case frameData:
	default:
		wk.broken = true
		return Result{}, fmt.Errorf("query: sql worker: unexpected frame %q", typ)
	}
	wk.gen = gen
	hdr := http.Header(nil)
	if h, ok := w.(interface{ Header() http.Header }); ok {
		hdr = h.Header()
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", f.ContentType())
		}
	}
	flusher, _ := w.(http.Flusher)
	// Read ahead one frame: a result that fits in one chunk is complete
	// before the status line, so its summary can be plain headers.
	typ, next, err := readFrame(wk.out)
	if err != nil {
		wk.broken = true
		return Result{}, fmt.Errorf("query: sql worker: %w", io.ErrUnexpectedEOF)
	}
	if typ == frameTrailer {
		res, err := readTrailer(wk, next, hdr)
		if err != nil {
			return res, err
		}
		if _, err := w.Write(first); err != nil {
			return res, fmt.Errorf("%w: %w", ErrWrite, err)
		}
		return res, nil
	}
	if hdr != nil {
		hdr.Set("Trailer", RowsHeader+", "+TruncatedHeader+", "+ErrorHeader)
	}
	write := func(b []byte) error {
		if _, err := w.Write(b); err != nil {
			wk.broken = true // the worker is still sending: do not reuse it
			return fmt.Errorf("%w: %w", ErrWrite, err)
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	if err := write(first); err != nil {
		return Result{}, err
	}
	for {
		switch typ {
		case frameData:
			if err := write(next); err != nil {
				return Result{}, err
			}
		case frameTrailer:
			return readTrailer(wk, next, hdr)
		case frameError:
			err := decodeWorkerError(next)
			if hdr != nil {
				hdr.Set(TruncatedHeader, "true")
				hdr.Set(ErrorHeader, short(err.Error()))
			}
			return Result{}, err
		default:
			wk.broken = true
			return Result{}, fmt.Errorf("query: sql worker: unexpected frame %q", typ)
		}
		// next has been written (Write keeps no reference): reuse it.
		typ, next, err = readFrameInto(wk.out, next)
		if err != nil {
			wk.broken = true
			if hdr != nil {
				hdr.Set(TruncatedHeader, "true")
				hdr.Set(ErrorHeader, "the query was stopped")
			}
			return Result{}, fmt.Errorf("query: sql worker: %w", io.ErrUnexpectedEOF)
		}
	}
}

// readTrailer decodes the trailer frame payload and sets the result's
// summary in hdr (nil: none). A malformed trailer marks wk broken.
func readTrailer(wk *worker, payload []byte, hdr http.Header) (Result, error) {
	var t workerTrailer
	if err := json.Unmarshal(payload, &t); err != nil {
		wk.broken = true
		return Result{}, fmt.Errorf("query: sql worker trailer: %w", err)
	}
	res := Result{Rows: t.Rows, Truncated: t.Truncated}
	if hdr != nil {
		hdr.Set(RowsHeader, strconv.Itoa(res.Rows))
		hdr.Set(TruncatedHeader, strconv.FormatBool(res.Truncated))
	}
	return res, nil
}

// errState marks a failure to apply files or lists in a worker.
var errState = errors.New("query: apply state")

// remoteError is an error reported by a worker, with the sentinel of its
// class.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func decodeWorkerError(p []byte) error {
	var we workerError
	if err := json.Unmarshal(p, &we); err != nil {
		return fmt.Errorf("query: sql worker error: %w", err)
	}
	var kind error
	switch we.Class {
	case classRejected:
		kind = ErrRejected
	case classResource:
		kind = ErrResourceLimit
	case classTimeout:
		kind = context.DeadlineExceeded
	case classState:
		kind = errState
	}
	return &remoteError{msg: we.Msg, kind: kind}
}

// Close stops the workers once their running queries end (bounded by
// Config.Timeout); later calls return ErrClosed.
func (p *Pool) Close() error {
	if p.closed.Swap(true) {
		return ErrClosed
	}
	for range p.cfg.MaxConcurrent {
		s := <-p.slots
		if s.w == nil {
			continue
		}
		_ = s.w.in.Close() // the worker ends on EOF
		select {
		case <-s.w.exited:
		case <-time.After(5 * time.Second):
			s.w.kill()
			<-s.w.exited
		}
		if s.w.tmp != "" {
			_ = os.RemoveAll(s.w.tmp)
		}
	}
	p.wg.Wait()
	return nil
}
