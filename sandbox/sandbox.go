// Package sandbox runs untrusted Python programs (model-written solutions) and grades them against test cases.
//
// Every run is its own python3 process in its own process group, started with an empty environment in a private
// temporary directory. A small trusted driver (driver.py) runs first inside the process and confines it before any
// untrusted code runs: it mounts private tmpfs over /tmp, /var/tmp and /dev/shm (root only), sets rlimits (CPU time,
// address space, processes, open files, file size) and, when the harness runs as root, drops to an unprivileged uid
// reserved for this sandbox slot (so the program can neither raise its limits, nor signal the harness, nor write
// outside its directory). As root the process also gets a new network namespace (no network) and a new mount
// namespace. Every run ends with the whole process group killed and, as root, every process of the slot's uid
// killed (daemons that left the group included), and its directory removed.
//
// What the OS cannot give is reported, never silently skipped: Sandbox.Isolation lists notes such as
// "network isolation unavailable: ..." and every Result and Verdict carries them.
package sandbox

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed driver.py
var driverSource []byte

// Limits bound one run. Zero fields take the defaults of DefaultLimits.
type Limits struct {
	// Wall is the wall-clock limit of one run (one test); the process group is killed when it passes.
	Wall time.Duration
	// CPU is RLIMIT_CPU (rounded up to whole seconds; default Wall + 1 s).
	CPU time.Duration
	// AddressSpace is RLIMIT_AS in bytes.
	AddressSpace int64
	// Processes is RLIMIT_NPROC (counted per uid; enforced only when the harness runs as root, see package doc).
	Processes int
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles int
	// FileSize is RLIMIT_FSIZE in bytes (also the size of the private /tmp).
	FileSize int64
	// Output caps the captured stdout and stderr each; a program that writes more is killed.
	Output int64
}

// DefaultLimits are the limits of the official LiveCodeBench protocol (6 s per test) plus resource caps.
var DefaultLimits = Limits{
	Wall:         6 * time.Second,
	AddressSpace: 4 << 30,
	Processes:    64,
	OpenFiles:    256,
	FileSize:     64 << 20,
	Output:       64 << 20,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.Wall > 0 {
		d.Wall = l.Wall
	}
	d.CPU = d.Wall + time.Second
	if l.CPU > 0 {
		d.CPU = l.CPU
	}
	if l.AddressSpace > 0 {
		d.AddressSpace = l.AddressSpace
	}
	if l.Processes > 0 {
		d.Processes = l.Processes
	}
	if l.OpenFiles > 0 {
		d.OpenFiles = l.OpenFiles
	}
	if l.FileSize > 0 {
		d.FileSize = l.FileSize
	}
	if l.Output > 0 {
		d.Output = l.Output
	}
	return d
}

// Config configures a Sandbox.
type Config struct {
	// Python is the interpreter; default: the real executable behind "python3" on PATH (pyenv shims resolved),
	// falling back to /usr/bin/python3 when the sandbox uid cannot run it.
	Python string
	// Limits are the per-run limits (zero fields: DefaultLimits).
	Limits Limits
	// Parallel is the number of programs run at once (default runtime.NumCPU()).
	Parallel int
	// TempDir is where private directories are made (default os.TempDir()).
	TempDir string
}

// Sandbox runs programs. It is safe for concurrent use; at most Parallel programs run at once.
type Sandbox struct {
	python    string
	limits    Limits
	base      string
	driver    string
	root      bool
	netns     bool
	privTmp   bool
	isolation []string
	slots     chan *slot
	all       []*slot
	closeOnce sync.Once
}

// New prepares a sandbox: it finds the interpreter, reserves one uid per parallel slot (as root) and probes
// which isolation the OS allows.
func New(cfg Config) (*Sandbox, error) {
	n := cfg.Parallel
	if n <= 0 {
		n = runtime.NumCPU()
	}
	tmp := cfg.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	base, err := os.MkdirTemp(tmp, "snapeval-sandbox-")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	// 0711: slot uids may traverse to their own directory and read the driver, but not list or write here.
	if err := os.Chmod(base, 0o711); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := &Sandbox{limits: cfg.Limits.withDefaults(), base: base, root: os.Geteuid() == 0}
	s.driver = filepath.Join(base, "driver.py")
	if err := os.WriteFile(s.driver, driverSource, 0o644); err != nil {
		os.RemoveAll(base)
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if s.root {
		uids, err := reserveUIDs(n)
		if err != nil {
			os.RemoveAll(base)
			return nil, err
		}
		for _, u := range uids {
			s.all = append(s.all, &slot{uid: u.uid, lock: u.lock})
		}
	} else {
		for i := 0; i < n; i++ {
			s.all = append(s.all, &slot{})
		}
		s.isolation = append(s.isolation,
			"not root: no uid drop, no process-count limit, no cleanup of daemons that leave the process group",
			"network isolation unavailable: not root")
	}
	s.slots = make(chan *slot, n)
	for _, sl := range s.all {
		s.slots <- sl
	}
	if err := s.findPython(cfg.Python); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Isolation lists what isolation is missing on this machine (empty when fully isolated).
func (s *Sandbox) Isolation() []string { return append([]string(nil), s.isolation...) }

// Python is the interpreter in use.
func (s *Sandbox) Python() string { return s.python }

// Close releases the reserved uids and removes the sandbox's directory.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		for _, sl := range s.all {
			if sl.uid != 0 {
				killUID(sl.uid)
			}
			if sl.lock != nil {
				sl.lock.Close()
			}
		}
		os.RemoveAll(s.base)
	})
	return nil
}

func (s *Sandbox) findPython(explicit string) error {
	var cands []string
	if explicit != "" {
		cands = []string{explicit}
	} else {
		if p, err := exec.LookPath("python3"); err == nil {
			// Resolve shims (pyenv, asdf) to the real interpreter: the sandbox runs with an empty environment.
			out, err := exec.Command(p, "-c", "import sys; print(sys.executable)").Output()
			if err == nil && len(bytes.TrimSpace(out)) > 0 {
				cands = append(cands, string(bytes.TrimSpace(out)))
			}
		}
		cands = append(cands, "/usr/bin/python3", "/usr/local/bin/python3")
	}
	var errs []string
	for _, c := range cands {
		s.python = c
		err := s.probe()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", c, err))
	}
	return fmt.Errorf("sandbox: no usable python3 (install the python3 package): %s", strings.Join(errs, "; "))
}

// probe runs the driver once with full isolation, dropping what the OS refuses and noting it.
func (s *Sandbox) probe() error {
	s.netns, s.privTmp = s.root, s.root
	for {
		res, err := s.Run(context.Background(), Spec{Mode: "probe"})
		if err != nil {
			var se *startError
			if errors.As(err, &se) && s.netns {
				s.netns, s.privTmp = false, false
				s.isolation = append(s.isolation, "network isolation unavailable: "+se.Error())
				continue
			}
			return err
		}
		if res.Status.Status != "ok" {
			return fmt.Errorf("probe failed: status %q, exit %d, stderr %q", res.Status.Status, res.ExitCode, truncate(string(res.Stderr), 300))
		}
		s.isolation = append(s.isolation, res.Status.Notes...)
		return nil
	}
}

type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// Spec is one run of the driver.
type Spec struct {
	// Mode is "stdin" (run Program as __main__ with Stdin on fd 0), "call" (call FuncName with CallInput) or "probe".
	Mode string
	// Program is the Python source.
	Program string
	// Stdin is the standard input (mode "stdin").
	Stdin string
	// FuncName, CallInput (newline-separated JSON arguments) and CallExpected (one JSON value) are for mode "call".
	FuncName, CallInput, CallExpected string
	// NoPreamble skips the official harness's import preamble (and its recursion limit of 50000).
	NoPreamble bool
	// Limits override the sandbox's limits for this run (zero fields: the sandbox's).
	Limits Limits
}

// Status is what the driver reported on its status channel.
type Status struct {
	Status string   `json:"status"`
	Error  string   `json:"error"`
	Equal  *bool    `json:"equal"`
	Got    string   `json:"got"`
	Notes  []string `json:"notes"`
}

// Result is the outcome of one run.
type Result struct {
	Status   Status
	ExitCode int
	// Signal names the signal that ended the process ("" if it exited).
	Signal string
	Stdout []byte
	Stderr []byte
	// TimedOut: the wall-clock limit passed. CPULimit: RLIMIT_CPU killed it. OutputLimit: it wrote too much.
	TimedOut, CPULimit, OutputLimit bool
	Wall, CPU                       time.Duration
	// Isolation lists the isolation this run lacked (see Sandbox.Isolation).
	Isolation []string
}

// Run runs one program to completion in a free slot.
func (s *Sandbox) Run(ctx context.Context, spec Spec) (Result, error) {
	var sl *slot
	select {
	case sl = <-s.slots:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	defer func() { s.slots <- sl }()
	return s.runIn(ctx, sl, spec)
}

func (s *Sandbox) limitsFor(spec Spec) Limits {
	l := spec.Limits
	base := s.limits
	if l.Wall > 0 && l.CPU == 0 {
		base.CPU = l.Wall + time.Second
	}
	if l.Wall > 0 {
		base.Wall = l.Wall
	}
	if l.CPU > 0 {
		base.CPU = l.CPU
	}
	if l.AddressSpace > 0 {
		base.AddressSpace = l.AddressSpace
	}
	if l.Processes > 0 {
		base.Processes = l.Processes
	}
	if l.OpenFiles > 0 {
		base.OpenFiles = l.OpenFiles
	}
	if l.FileSize > 0 {
		base.FileSize = l.FileSize
	}
	if l.Output > 0 {
		base.Output = l.Output
	}
	return base
}

func (s *Sandbox) runIn(ctx context.Context, sl *slot, spec Spec) (res Result, err error) {
	lim := s.limitsFor(spec)
	res.Isolation = s.Isolation()
	dir, err := os.MkdirTemp(s.base, "run-")
	if err != nil {
		return res, fmt.Errorf("sandbox: %w", err)
	}
	defer func() {
		if sl.uid != 0 {
			killUID(sl.uid)
		}
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("sandbox: cleanup: %w", rerr)
		}
	}()
	if sl.uid != 0 {
		if err := os.Chown(dir, sl.uid, sl.uid); err != nil {
			return res, fmt.Errorf("sandbox: %w", err)
		}
	}
	write := func(name, text string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(text), 0o644)
	}
	cfg := map[string]any{"mode": spec.Mode, "uid": sl.uid, "private_tmp": s.privTmp, "tmp_size": lim.FileSize,
		"preamble": !spec.NoPreamble, "func": spec.FuncName}
	cpu := int64((lim.CPU + time.Second - 1) / time.Second)
	nproc := 0
	if s.root {
		nproc = lim.Processes
	}
	cfg["limits"] = map[string]int64{"cpu": cpu, "as": lim.AddressSpace, "nproc": int64(nproc),
		"nofile": int64(lim.OpenFiles), "fsize": lim.FileSize}
	if spec.Mode != "probe" {
		if cfg["program"], err = write("solution.py", spec.Program); err != nil {
			return res, fmt.Errorf("sandbox: %w", err)
		}
	}
	stdinPath, err := write("stdin.txt", spec.Stdin)
	if err != nil {
		return res, fmt.Errorf("sandbox: %w", err)
	}
	if spec.Mode == "call" {
		if cfg["input"], err = write("input.json", spec.CallInput); err != nil {
			return res, fmt.Errorf("sandbox: %w", err)
		}
		if cfg["expected"], err = write("expected.json", spec.CallExpected); err != nil {
			return res, fmt.Errorf("sandbox: %w", err)
		}
	}
	cfgJSON, _ := json.Marshal(cfg)

	stdin, err := os.Open(stdinPath)
	if err != nil {
		return res, fmt.Errorf("sandbox: %w", err)
	}
	defer stdin.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("sandbox: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return res, fmt.Errorf("sandbox: %w", err)
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return res, fmt.Errorf("sandbox: %w", err)
	}
	cmd := exec.Command(s.python, "-I", "-B", s.driver, string(cfgJSON))
	cmd.Env = []string{} // empty, not inherited
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Stdout = outW
	cmd.Stderr = errW
	cmd.ExtraFiles = []*os.File{stW}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.netns {
		attr.Unshareflags = syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC
	}
	cmd.SysProcAttr = attr

	killed := make(chan struct{})
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() { close(killed) })
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if sl.uid != 0 {
			killUID(sl.uid)
		}
	}
	var outLimit bool
	var outMu sync.Mutex
	capture := func(r *os.File, dst *bytes.Buffer, wg *sync.WaitGroup) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, rerr := r.Read(buf)
			if n > 0 {
				if int64(dst.Len()+n) > lim.Output {
					outMu.Lock()
					outLimit = true
					outMu.Unlock()
					kill()
					return
				}
				dst.Write(buf[:n])
			}
			if rerr != nil {
				return
			}
		}
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		stR.Close()
		stW.Close()
		return res, &startError{err}
	}
	outW.Close()
	errW.Close()
	stW.Close()
	var stdout, stderr, status bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(3)
	go capture(outR, &stdout, &wg)
	go capture(errR, &stderr, &wg)
	go func() {
		defer wg.Done()
		sc := bufio.NewReader(io.LimitReader(stR, 1<<20))
		b, _ := sc.ReadBytes('\n')
		status.Write(b)
		// Drain the rest so the program never blocks on fd 3.
		_, _ = io.Copy(io.Discard, stR)
	}()
	timer := time.AfterFunc(lim.Wall, func() { res.TimedOut = true; kill() })
	stopCtx := context.AfterFunc(ctx, kill)
	state, werr := cmd.Process.Wait()
	timer.Stop()
	stopCtx()
	res.Wall = time.Since(start)
	// The main process is gone: kill what it left behind (its group, and as root every process of the slot uid).
	kill()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// A descendant outside our reach (not root) still holds a pipe: stop reading.
		outR.Close()
		errR.Close()
		stR.Close()
		<-done
	}
	outR.Close()
	errR.Close()
	stR.Close()
	if werr != nil {
		return res, fmt.Errorf("sandbox: wait: %w", werr)
	}
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	res.OutputLimit = outLimit
	if ru, ok := state.SysUsage().(*syscall.Rusage); ok && ru != nil {
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	ws, _ := state.Sys().(syscall.WaitStatus)
	res.ExitCode = ws.ExitStatus()
	if ws.Signaled() {
		res.Signal = ws.Signal().String()
		if ws.Signal() == syscall.SIGXCPU || (ws.Signal() == syscall.SIGKILL && res.CPU >= time.Duration(cpu)*time.Second-50*time.Millisecond) {
			res.CPULimit = true
		}
	}
	if line := bytes.TrimSpace(status.Bytes()); len(line) > 0 {
		if jerr := json.Unmarshal(line, &res.Status); jerr != nil {
			res.Status = Status{Status: "bad_status", Error: truncate(string(line), 200)}
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if res.Status.Status == "setup_error" {
		return res, fmt.Errorf("sandbox: driver setup failed: %s", res.Status.Error)
	}
	return res, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + "...(truncated)..." + s[len(s)-n/2:]
}

// killUID SIGKILLs every process whose real uid is uid until none is left.
func killUID(uid int) {
	want := strconv.Itoa(uid)
	for round := 0; round < 100; round++ {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		found := false
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/status")
			if err != nil {
				continue
			}
			if statusField(b, "State") == "Z" {
				continue // a zombie: already dead, waiting for its parent
			}
			for _, id := range strings.Fields(statusField(b, "Uid")) {
				if id == want {
					found = true
					syscall.Kill(pid, syscall.SIGKILL)
					break
				}
			}
		}
		if !found {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// statusField returns the first word... of a /proc/<pid>/status field ("State") or all of it ("Uid").
func statusField(b []byte, name string) string {
	key := []byte("\n" + name + ":\t")
	i := bytes.Index(b, key)
	if i < 0 {
		return ""
	}
	rest := b[i+len(key):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	if name == "State" && len(rest) > 0 {
		return string(rest[:1])
	}
	return string(rest)
}
