package query

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// The worker protocol: frames of one type byte, a big-endian uint32 payload
// length and the payload, over the worker's stdin (requests) and stdout
// (responses).
//
//	worker -> pool  'R' ready      JSON workerHello, once after start
//	pool -> worker  'Q' query      JSON workerRequest
//	worker -> pool  'D' data       encoded result bytes (at most chunkSize)
//	                'T' trailer    JSON workerTrailer: the result is complete
//	                'E' error      JSON workerError; before any 'D' the query
//	                               failed and nothing was produced, after a
//	                               'D' the body is cut short
//
// A query is answered by 'E', or by one or more 'D' then 'T' or 'E'.
const (
	frameReady   = 'R'
	frameQuery   = 'Q'
	frameData    = 'D'
	frameTrailer = 'T'
	frameError   = 'E'
)

// chunkSize is the largest data frame; the first chunk is produced before
// the pool commits to an HTTP status.
const chunkSize = 64 << 10

// maxFrame bounds any frame (requests carry the file list and lists rows).
const maxFrame = 64 << 20

// Environment of a worker process.
const (
	// WorkerEnv holds the worker configuration (JSON); its presence marks a
	// worker process (see IsWorkerProcess).
	WorkerEnv = "NETWARDEN_SQL_WORKER"
	// workerStageEnv is set once the sandbox is applied (stage 2).
	workerStageEnv = "NETWARDEN_SQL_WORKER_SANDBOX"
)

// workerConfig is passed to a worker in WorkerEnv.
type workerConfig struct {
	Engine Config
	// AddressSpace is RLIMIT_AS in bytes (0: unlimited).
	AddressSpace uint64
}

type workerHello struct {
	PID     int    `json:"pid"`
	Sandbox string `json:"sandbox"` // what the sandbox applied, or why not
	Limit   string `json:"limit"`
}

type workerRequest struct {
	SQL      string       `json:"sql"`
	Format   Format       `json:"format"`
	MaxBytes int64        `json:"max_bytes"`
	Files    *[]string    `json:"files,omitempty"`  // nil: unchanged
	Lists    *[]ListRow   `json:"lists,omitempty"`  // nil: unchanged
	Outage   *OutageFiles `json:"outage,omitempty"` // nil: unchanged
}

type workerTrailer struct {
	Rows      int  `json:"rows"`
	Truncated bool `json:"truncated"`
}

// Error classes of workerError.
const (
	classRejected = "rejected"
	classResource = "resource"
	classTimeout  = "timeout"
	classState    = "state" // applying files/lists failed
	classInternal = "internal"
)

type workerError struct {
	Class string `json:"class"`
	Msg   string `json:"msg"`
}

// writeFrame writes the header and then the payload: both ends use a
// buffered writer or a pipe with one writer, so the frame needs no copy.
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

func writeJSONFrame(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFrame(w, typ, b)
}

func readFrame(r *bufio.Reader) (byte, []byte, error) { return readFrameInto(r, nil) }

// readFrameInto reads a frame, reusing buf's memory for the payload when it
// is large enough.
func readFrameInto(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	p := buf[:0]
	if cap(p) < int(n) {
		p = make([]byte, n)
	}
	p = p[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, fmt.Errorf("read frame: %w", io.ErrUnexpectedEOF)
	}
	return hdr[0], p, nil
}

// IsWorkerProcess reports whether this process was started by a Pool as a
// SQL worker (WorkerEnv is set). Binaries (and test binaries, in TestMain)
// that serve as workers call WorkerMain when it is true.
func IsWorkerProcess() bool { return os.Getenv(WorkerEnv) != "" }

// WorkerMain is the entry point of a SQL worker process: the same binary,
// started by a Pool with WorkerEnv set (`netwarden sql-worker`). The first
// stage applies the sandbox (RLIMIT_AS and a Landlock rule set that denies
// creating, changing or removing any file outside the worker's temp dir) on
// one thread and re-executes the binary, so the whole second stage runs
// under it. The second stage opens a locked-down Engine and answers queries
// from in until it is closed. It returns nil on a clean end of input.
func WorkerMain(in io.Reader, out io.Writer) error {
	var wc workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(WorkerEnv)), &wc); err != nil {
		return fmt.Errorf("sql worker: decode %s: %w", WorkerEnv, err)
	}
	if os.Getenv(workerStageEnv) == "" {
		return sandboxAndExec(wc)
	}
	e, err := New(wc.Engine)
	if err != nil {
		return fmt.Errorf("sql worker: %w", err)
	}
	defer e.Close()
	bw := bufio.NewWriterSize(out, chunkSize+16)
	hello := workerHello{PID: os.Getpid(), Sandbox: os.Getenv(workerStageEnv)}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_AS, &rl) == nil && rl.Cur != ^uint64(0) {
		hello.Limit = fmt.Sprintf("RLIMIT_AS %d MiB", rl.Cur>>20)
	}
	if err := writeJSONFrame(bw, frameReady, hello); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	br := bufio.NewReader(in)
	for {
		typ, p, err := readFrame(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sql worker: %w", err)
		}
		if typ != frameQuery {
			return fmt.Errorf("sql worker: unexpected frame %q", typ)
		}
		var req workerRequest
		if err := json.Unmarshal(p, &req); err != nil {
			return fmt.Errorf("sql worker: decode request: %w", err)
		}
		if err := serveRequest(e, req, bw); err != nil {
			return err // the pool is gone or the output broke
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

// serveRequest answers one request; an error means the output is broken.
func serveRequest(e *Engine, req workerRequest, out *bufio.Writer) error {
	fail := func(class string, err error) error {
		return writeJSONFrame(out, frameError, workerError{Class: class, Msg: shortMsg(err.Error())})
	}
	if req.Files != nil {
		if err := e.SetFiles(*req.Files); err != nil {
			return fail(classState, err)
		}
	}
	if req.Lists != nil {
		if err := e.SetLists(*req.Lists); err != nil {
			return fail(classState, err)
		}
	}
	if req.Outage != nil {
		if err := e.SetOutageFiles(*req.Outage); err != nil {
			return fail(classState, err)
		}
	}
	cw := &chunkWriter{out: out}
	res, err := e.Stream(context.Background(), req.SQL, req.Format, req.MaxBytes, cw)
	if err != nil {
		if errors.Is(err, ErrWrite) {
			return err
		}
		class := classInternal
		switch {
		case errors.Is(err, ErrRejected):
			class = classRejected
		case errors.Is(err, ErrResourceLimit):
			class = classResource
		case errors.Is(err, context.DeadlineExceeded):
			class = classTimeout
		}
		return fail(class, err)
	}
	if err := cw.flush(); err != nil {
		return err
	}
	return writeJSONFrame(out, frameTrailer, workerTrailer{Rows: res.Rows, Truncated: res.Truncated})
}

// chunkWriter cuts the encoded result into data frames. Nothing is sent
// before chunkSize bytes are buffered or the result is complete, so errors
// during execution and the first rows are reported before any data.
type chunkWriter struct {
	out *bufio.Writer
	buf []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), chunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == chunkSize {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := writeFrame(c.out, frameData, c.buf)
	c.buf = c.buf[:0]
	if err == nil {
		err = c.out.Flush()
	}
	return err
}

// Landlock (linux/landlock.h); the syscall numbers are the same on every
// architecture.
const (
	sysLandlockCreateRuleset = 444
	sysLandlockAddRule       = 445
	sysLandlockRestrictSelf  = 446

	landlockCreateRulesetVersion = 1
	landlockRulePathBeneath      = 1

	llWriteFile  = 1 << 1
	llRemoveDir  = 1 << 4
	llRemoveFile = 1 << 5
	llMakeChar   = 1 << 6
	llMakeDir    = 1 << 7
	llMakeReg    = 1 << 8
	llMakeSock   = 1 << 9
	llMakeFifo   = 1 << 10
	llMakeBlock  = 1 << 11
	llMakeSym    = 1 << 12
	llRefer      = 1 << 13 // ABI 2
	llTruncate   = 1 << 14 // ABI 3
)

// sandboxAndExec applies RLIMIT_AS and Landlock on the current thread and
// re-executes the binary with workerStageEnv describing the result. It only
// returns on failure.
func sandboxAndExec(wc workerConfig) error {
	runtime.LockOSThread() // Landlock and no_new_privs apply to this thread; execve keeps them
	if wc.AddressSpace > 0 {
		lim := syscall.Rlimit{Cur: wc.AddressSpace, Max: wc.AddressSpace}
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
			return fmt.Errorf("sql worker: set RLIMIT_AS: %w", err)
		}
	}
	state, err := landlockWritesOnly(wc.Engine.TempDir)
	if err != nil {
		state = "none (" + err.Error() + ")"
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("sql worker: find executable: %w", err)
	}
	env := append(os.Environ(), workerStageEnv+"="+state)
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	if err != nil {
		err = syscall.Exec(exe, os.Args, env)
	}
	return fmt.Errorf("sql worker: re-exec %s: %w", exe, err)
}

// landlockABI returns the kernel's Landlock ABI version.
func landlockABI() (uintptr, error) {
	abi, _, errno := syscall.Syscall(sysLandlockCreateRuleset, 0, 0, landlockCreateRulesetVersion)
	if errno != 0 {
		return 0, fmt.Errorf("landlock unavailable: %w", errno)
	}
	return abi, nil
}

// landlockWritesOnly restricts the calling thread (and what it executes) so
// that no file or directory can be created, written, truncated, renamed or
// removed anywhere except below tempDir (if not empty). Reads are left to
// DuckDB's allowed_directories.
func landlockWritesOnly(tempDir string) (string, error) {
	abi, err := landlockABI()
	if err != nil {
		return "", err
	}
	handled := uint64(llWriteFile | llRemoveDir | llRemoveFile | llMakeChar | llMakeDir | llMakeReg |
		llMakeSock | llMakeFifo | llMakeBlock | llMakeSym)
	if abi >= 2 {
		handled |= llRefer
	}
	if abi >= 3 {
		handled |= llTruncate
	}
	attr := struct{ handledAccessFS uint64 }{handled}
	fd, _, errno := syscall.Syscall(sysLandlockCreateRuleset, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return "", fmt.Errorf("landlock create ruleset: %w", errno)
	}
	defer syscall.Close(int(fd))
	if tempDir != "" {
		const oPath = 0x200000 // O_PATH
		dir, err := syscall.Open(tempDir, oPath|syscall.O_CLOEXEC|syscall.O_DIRECTORY, 0)
		if err != nil {
			return "", fmt.Errorf("landlock: open temp dir %q: %w", tempDir, err)
		}
		defer syscall.Close(dir)
		// struct landlock_path_beneath_attr is packed: u64 then s32.
		var rule [12]byte
		binary.NativeEndian.PutUint64(rule[0:8], handled)
		binary.NativeEndian.PutUint32(rule[8:12], uint32(int32(dir)))
		if _, _, errno := syscall.Syscall6(sysLandlockAddRule, fd, landlockRulePathBeneath,
			uintptr(unsafe.Pointer(&rule[0])), 0, 0, 0); errno != 0 {
			return "", fmt.Errorf("landlock add rule: %w", errno)
		}
	}
	const prSetNoNewPrivs = 38
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); errno != 0 {
		return "", fmt.Errorf("prctl no_new_privs: %w", errno)
	}
	if _, _, errno := syscall.Syscall(sysLandlockRestrictSelf, fd, 0, 0); errno != 0 {
		return "", fmt.Errorf("landlock restrict self: %w", errno)
	}
	return fmt.Sprintf("landlock ABI %d: writes only below %q", abi, tempDir), nil
}
