package torch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// maxLine bounds one line of the worker's output (a long prompt's kept positions for inspect are the largest).
const maxLine = 512 << 20

// SetupError is a problem found before the run starts (no Python, torch or transformers, no GPU, a model the
// backend cannot compress, a GPU too small): fix the installation or the options.
type SetupError struct{ Msg string }

func (e *SetupError) Error() string { return "torch backend setup: " + e.Msg }

// diedError says that the worker process ended while a request was in flight; the request may be retried.
type diedError struct{ msg string }

func (e *diedError) Error() string { return e.msg }

// requestError is the worker's answer to one request (kind "request": bad input; "oom": out of device memory).
type requestError struct{ kind, msg string }

func (e *requestError) Error() string {
	return fmt.Sprintf("torch worker: %s error: %s", e.kind, e.msg)
}

// spawn describes how to start a worker process.
type spawn struct {
	argv []string
	env  []string
	log  *logSink
}

// worker is one running worker process and the requests in flight on it.
type worker struct {
	cmd   *exec.Cmd
	pid   int
	stdin io.WriteCloser
	wmu   sync.Mutex // serialises writes to stdin
	info  Info
	tail  *tail
	log   *logSink

	mu     sync.Mutex
	calls  map[int64]*call
	nextID int64
	fatal  string // the worker's last fatal message
	dead   chan struct{}
	err    error // why it ended, set before dead is closed
}

// call is one request in flight on a worker.
type call struct {
	onToken func(tok int) bool // from the reader goroutine; true stops the request (a cancel is sent)
	release func()             // when the worker no longer holds the request's cache
	stopped bool
	tokens  []int
	res     chan callResult
}

type callResult struct {
	done event
	err  error
}

// startWorker runs the worker and waits for its ready event (or its setup error, or its end).
func startWorker(ctx context.Context, sp spawn) (*worker, error) {
	if len(sp.argv) == 0 {
		return nil, &SetupError{Msg: "no worker command"}
	}
	cmd := exec.Command(sp.argv[0], sp.argv[1:]...)
	cmd.Env = append(os.Environ(), sp.env...)
	ownGroup(cmd) // a Ctrl-C of snapeval reaches the worker through us (shutdown), not from the terminal
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, &SetupError{Msg: fmt.Sprintf("cannot run %s: %v: install Python 3.10+ with PyTorch and transformers "+
			"(pip install torch transformers), or point --backend-opt python=PATH at one", sp.argv[0], err)}
	}
	w := &worker{cmd: cmd, pid: cmd.Process.Pid, stdin: stdin, tail: newTail(40), log: sp.log, calls: map[int64]*call{},
		dead: make(chan struct{})}
	sp.log.printf("snapeval: worker pid %d started: %s", w.pid, strings.Join(sp.argv, " "))
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			w.tail.add(sc.Text())
			sp.log.line(sc.Bytes())
		}
		io.Copy(io.Discard, stderr)
	}()
	r := bufio.NewReaderSize(stdout, 1<<20)
	ready := make(chan error, 1)
	go w.readLoop(r, ready, errDone)
	select {
	case err := <-ready:
		if err != nil {
			<-w.dead
			return nil, err
		}
		return w, nil
	case <-ctx.Done():
		w.kill()
		<-w.dead
		return nil, ctx.Err()
	}
}

// readLoop reads events until the worker's output ends, then reaps the process and fails what is in flight.
// The first event answers ready: nil for ready, an error for fatal or for output that ends before ready.
func (w *worker) readLoop(r *bufio.Reader, ready chan<- error, errDone <-chan struct{}) {
	var perr error
	started := false
	for {
		line, err := readLine(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				perr = err
			}
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := decodeEvent(line)
		if err != nil {
			perr = err
			break
		}
		if !started {
			switch ev.Kind {
			case evReady:
				started = true
				w.info = ev.Info
				ready <- nil
				continue
			case evFatal:
				w.setFatal(ev.Msg)
				continue
			default:
				perr = fmt.Errorf("worker sent %s before ready", ev.Kind)
			}
			break
		}
		if ev.Kind == evReady {
			perr = errors.New("worker sent a second ready event")
			break
		}
		w.dispatch(ev)
	}
	if perr != nil {
		w.log.printf("snapeval: worker pid %d: protocol error: %v; stopping it", w.pid, perr)
		w.kill()
	}
	<-errDone
	werr := w.cmd.Wait()
	msg := w.deathMessage(werr, perr)
	w.log.printf("snapeval: %s", msg)
	if !started {
		w.mu.Lock()
		fatal := w.fatal
		w.mu.Unlock()
		if fatal != "" && perr == nil {
			ready <- &SetupError{Msg: fatal}
		} else {
			ready <- &SetupError{Msg: msg}
		}
	}
	w.die(&diedError{msg: msg})
}

// deathMessage says why the worker ended, with its own last words.
func (w *worker) deathMessage(werr, perr error) string {
	status := "exit status 0"
	if werr != nil {
		status = werr.Error()
	}
	msg := fmt.Sprintf("torch worker (pid %d) ended (%s)", w.pid, status)
	w.mu.Lock()
	fatal := w.fatal
	w.mu.Unlock()
	if perr != nil {
		msg += ": " + perr.Error()
	}
	if fatal != "" {
		msg += ": " + fatal
	}
	if t := w.tail.String(); t != "" {
		msg += "; last output: " + t
	}
	return msg
}

func (w *worker) setFatal(msg string) {
	w.mu.Lock()
	w.fatal = msg
	w.mu.Unlock()
}

// die fails every call in flight with err and marks the worker dead.
func (w *worker) die(err error) {
	w.mu.Lock()
	calls := w.calls
	w.calls = nil
	w.err = err
	close(w.dead)
	w.mu.Unlock()
	for _, c := range calls {
		c.finish(callResult{err: err})
	}
}

func (c *call) finish(r callResult) {
	if c.release != nil {
		c.release()
	}
	c.res <- r
}

// dispatch hands an event to the call it belongs to. Events for unknown ids are ignored: a request the backend
// has given up on (cancelled) may still produce tokens.
func (w *worker) dispatch(ev event) {
	switch ev.Kind {
	case evTokens:
		var cancel []int64
		w.mu.Lock()
		for _, p := range ev.Tokens {
			id := int64(p[0])
			c := w.calls[id]
			if c == nil || c.stopped {
				continue
			}
			c.tokens = append(c.tokens, p[1])
			if c.onToken != nil && c.onToken(p[1]) {
				c.stopped = true
				cancel = append(cancel, id)
			}
		}
		w.mu.Unlock()
		for _, id := range cancel {
			go w.send(command{Op: "cancel", ID: id})
		}
	case evDone, evError:
		w.mu.Lock()
		c := w.calls[ev.ID]
		delete(w.calls, ev.ID)
		w.mu.Unlock()
		if c == nil {
			return
		}
		if ev.Kind == evDone {
			c.finish(callResult{done: ev})
		} else {
			c.finish(callResult{err: &requestError{kind: ev.ErrKind, msg: ev.Msg}})
		}
	case evFatal:
		w.setFatal(ev.Msg)
	}
}

// send writes one command line. A write to a worker that has died fails; the reader fails the calls.
func (w *worker) send(c command) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_, err = w.stdin.Write(b)
	return err
}

// do submits one request and waits for its end. The returned tokens are those generated up to the one that made
// onToken return true (the worker's later tokens are dropped). A cancelled ctx cancels the request in the worker
// and returns ctx.Err() at once; release still runs when the worker lets go of the request.
func (w *worker) do(ctx context.Context, c command, onToken func(int) bool, release func()) ([]int, event, error) {
	cl := &call{onToken: onToken, release: release, res: make(chan callResult, 1)}
	w.mu.Lock()
	if w.calls == nil {
		err := w.err
		w.mu.Unlock()
		if release != nil {
			release()
		}
		return nil, event{}, err
	}
	w.nextID++
	c.ID = w.nextID
	w.calls[c.ID] = cl
	w.mu.Unlock()
	c.Op = "submit"
	if err := w.send(c); err != nil {
		w.log.printf("snapeval: worker pid %d: writing a request: %v", w.pid, err)
	}
	select {
	case r := <-cl.res:
		return cl.tokens, r.done, r.err
	case <-ctx.Done():
		w.send(command{Op: "cancel", ID: c.ID})
		return nil, event{}, ctx.Err()
	}
}

// alive reports whether the worker is still running.
func (w *worker) alive() bool {
	select {
	case <-w.dead:
		return false
	default:
		return true
	}
}

// kill ends the worker's process group at once.
func (w *worker) kill() {
	if w.cmd.Process != nil {
		killGroup(w.cmd)
	}
}

// stop asks the worker to shut down, and kills it if it has not ended when ctx is done.
func (w *worker) stop(ctx context.Context) {
	w.send(command{Op: "shutdown"})
	w.stdin.Close()
	select {
	case <-w.dead:
	case <-ctx.Done():
		w.kill()
		<-w.dead
	}
}

// readLine reads one line of any length up to maxLine, without its newline.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := r.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxLine {
			return nil, fmt.Errorf("worker line longer than %d bytes", maxLine)
		}
		if err == nil {
			return bytes.TrimSuffix(buf, []byte("\n")), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(buf) > 0 && errors.Is(err, io.EOF) {
			return buf, nil
		}
		return nil, err
	}
}
