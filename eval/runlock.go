package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// LockFile is the run directory's lock: the writer of a run directory holds it (an advisory flock where the
// system has one) for as long as its Store is open, and writes into it who holds it.
const LockFile = "run.lock"

// LockHolder says who holds a run directory's lock.
type LockHolder struct {
	PID     int    `json:"pid"`
	Host    string `json:"host"`
	Started string `json:"started"` // RFC 3339, UTC
}

func (h LockHolder) String() string {
	return fmt.Sprintf("pid %d on host %s, started %s", h.PID, h.Host, h.Started)
}

// ErrLocked is wrapped by OpenStore's error when another process writes the run directory.
var ErrLocked = errors.New("run directory is in use")

// dirLock is a held run-directory lock.
type dirLock struct{ f *os.File }

// lockDir takes dir's lock without waiting. When another process holds it, the error wraps ErrLocked and names
// the holder (pid, host, start time) as it wrote itself into the lock file.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the run lock: %w", err)
	}
	if err := flock(f); err != nil {
		defer f.Close()
		if !errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			var h LockHolder
			if json.Unmarshal(b, &h) == nil && h.PID != 0 {
				holder = h.String()
			}
		}
		return nil, fmt.Errorf("%s: %w by another snapeval run (%s): wait for it to end, or choose another --out", dir, ErrLocked, holder)
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(LockHolder{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Format(time.RFC3339)})
	if err := f.Truncate(0); err == nil {
		f.WriteAt(append(b, '\n'), 0)
	}
	return &dirLock{f: f}, nil
}

// unlock empties the lock file (it then names no holder) and releases the lock.
func (l *dirLock) unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}
