package torch

import (
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// workerFiles is the worker's Python package, shipped inside the binary and unpacked into the user cache.
//
//go:embed worker/snapworker/*.py
var workerFiles embed.FS

// workerRoot is the folder of workerFiles that holds the snapworker package.
const workerRoot = "worker"

// contentHash hashes the names and contents of every regular file under root in fsys (12 hex digits).
func contentHash(fsys fs.FS, root string) (string, []string, error) {
	var files []string
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return "", nil, err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], files, nil
}

// unpack copies the files under root of fsys to parent/<prefix>-<content hash>/ (paths relative to root) unless
// that folder exists, and returns it. The copy is written to a temporary folder and renamed, so a folder that
// exists is complete.
func unpack(fsys fs.FS, root, parent, prefix string) (string, error) {
	sum, files, err := contentHash(fsys, root)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(parent, prefix+"-"+sum)
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		return dst, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(parent, ".tmp-"+prefix+"-"+hex.EncodeToString(rnd[:]))
	defer os.RemoveAll(tmp)
	for _, f := range files {
		rel := f
		if root != "." {
			rel = f[len(root)+1:]
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return "", err
		}
		out := filepath.Join(tmp, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if st, serr := os.Stat(dst); serr == nil && st.IsDir() {
			return dst, nil // another process unpacked it first
		}
		return "", fmt.Errorf("torch backend: unpacking into %s: %w", dst, err)
	}
	return dst, nil
}

// workerDir unpacks the embedded worker into the cache and returns the folder to put on PYTHONPATH.
func workerDir(cache string) (string, error) {
	return unpack(workerFiles, workerRoot, filepath.Join(cache, "torch"), "worker")
}

// workerVersion is the content hash of the embedded worker.
func workerVersion() string {
	sum, _, err := contentHash(workerFiles, workerRoot)
	if err != nil {
		return "?"
	}
	return sum
}
