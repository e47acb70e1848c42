package torch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// logName is the worker log's file name in a run directory.
const logName = "torch-worker.log"

// logSink receives the worker's stderr and the backend's notes about the worker; it writes to one file, which
// moves to the run directory once the run knows it (SetLogDir).
type logSink struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// openLog appends to the file at path (its directory is created).
func openLog(path string) (*logSink, error) {
	l := &logSink{}
	return l, l.reopen(path)
}

func (l *logSink) reopen(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f, l.path = f, path
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// line writes one line of the worker's stderr.
func (l *logSink) line(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Write(append(append([]byte(nil), b...), '\n'))
	}
}

// printf writes a timestamped note of the backend.
func (l *logSink) printf(format string, args ...any) {
	l.line([]byte(time.Now().UTC().Format(time.RFC3339) + " " + fmt.Sprintf(format, args...)))
}

// Path is the file written now.
func (l *logSink) Path() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.path
}

func (l *logSink) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// tail keeps the last lines of the worker's stderr, for the message of an error record.
type tail struct {
	mu    sync.Mutex
	lines []string
	n     int
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	t.lines = append(t.lines, s)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

// String joins the lines kept, the traceback's last lines (where the error is named) included.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, " | ")
}
