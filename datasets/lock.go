// Package datasets pins benchmark data (datasets.lock), fetches and verifies it, and reads it row by row.
//
// The lock is JSON (datasets.lock at the repository root):
//
//	{
//	  "version": 1,
//	  "datasets": [
//	    {
//	      "name": "longbench-v2",            // the name benchmarks and `snapeval data` use
//	      "repo": "THUDM/LongBench-v2",       // Hugging Face repository
//	      "repo_type": "dataset",             // dataset (default) or model
//	      "revision": "<40-hex commit>",      // or "unknown"
//	      "license": "apache-2.0",
//	      "files": [
//	        {"path": "data.json", "size": 465000000, "sha256": "<hex>", "rows": 503,
//	         "format": "json", "source": "where the pin was read"}
//	      ]
//	    }
//	  ]
//	}
//
// Unknown values are written as "unknown" (revision, sha256) or null (size, rows); they are never guessed.
// `Pull` refuses a file whose sha256 is unknown unless trust-on-first-use is asked for, which records the hash
// it saw in a local override (lock.local.json in the cache directory) and warns.
package datasets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
)

// Unknown marks a value that could not be established.
const Unknown = "unknown"

// Lock is the parsed datasets.lock.
type Lock struct {
	Version  int       `json:"version"`
	Datasets []Dataset `json:"datasets"`
	// Source is the file the lock was read from (not serialised).
	Source string `json:"-"`
}

// Dataset is one pinned dataset.
type Dataset struct {
	Name     string `json:"name"`
	Repo     string `json:"repo"`
	RepoType string `json:"repo_type,omitempty"`
	Revision string `json:"revision"`
	License  string `json:"license"`
	Files    []File `json:"files"`
	Note     string `json:"note,omitempty"`
}

// File is one pinned file of a dataset.
type File struct {
	Path   string `json:"path"`
	Size   *int64 `json:"size"`
	SHA256 string `json:"sha256"`
	Rows   *int   `json:"rows"`
	// Format is json (a JSON array), jsonl or parquet.
	Format string `json:"format"`
	Source string `json:"source,omitempty"`
}

// Pinned reports whether the file's sha256 is known.
func (f File) Pinned() bool { return f.SHA256 != "" && f.SHA256 != Unknown }

// KnownSize returns the pinned size, or 0 when unknown.
func (f File) KnownSize() int64 {
	if f.Size == nil {
		return 0
	}
	return *f.Size
}

var (
	hexRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	revRe  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

// LoadLock reads and validates a lock file.
func LoadLock(p string) (*Lock, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	l, err := ParseLock(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	l.Source = p
	return l, nil
}

// ParseLock parses and validates lock JSON. Unknown fields are errors (a typo must not silently unpin a file).
func ParseLock(b []byte) (*Lock, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, jsonError(b, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the lock object")
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// jsonError adds a line number to a JSON syntax or type error.
func jsonError(b []byte, err error) error {
	var off int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
		return fmt.Errorf("line %d: field %q: %v", lineOf(b, off), e.Field, err)
	}
	if off >= 0 {
		return fmt.Errorf("line %d: %w", lineOf(b, off), err)
	}
	return err
}

func lineOf(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return bytes.Count(b[:off], []byte("\n")) + 1
}

func (l *Lock) validate() error {
	if l.Version != 1 {
		return fmt.Errorf("version %d not supported (want 1)", l.Version)
	}
	seen := map[string]bool{}
	for i := range l.Datasets {
		d := &l.Datasets[i]
		where := fmt.Sprintf("datasets[%d] (%q)", i, d.Name)
		if !nameRe.MatchString(d.Name) {
			return fmt.Errorf("%s: name must be lower-case letters, digits, '.', '_' or '-'", where)
		}
		if seen[d.Name] {
			return fmt.Errorf("%s: duplicate name", where)
		}
		seen[d.Name] = true
		if parts := strings.Split(d.Repo, "/"); len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return fmt.Errorf("%s: repo %q is not org/name", where, d.Repo)
		}
		switch d.RepoType {
		case "":
			d.RepoType = "dataset"
		case "dataset", "model":
		default:
			return fmt.Errorf("%s: repo_type %q (want dataset or model)", where, d.RepoType)
		}
		if d.Revision != Unknown && !revRe.MatchString(d.Revision) {
			return fmt.Errorf("%s: revision %q must be a 40-hex commit or %q", where, d.Revision, Unknown)
		}
		if len(d.Files) == 0 {
			return fmt.Errorf("%s: no files", where)
		}
		paths := map[string]bool{}
		for j, f := range d.Files {
			fw := fmt.Sprintf("%s.files[%d] (%q)", where, j, f.Path)
			if f.Path == "" || path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || strings.HasPrefix(f.Path, "../") || f.Path == ".." || strings.Contains(f.Path, `\`) {
				return fmt.Errorf("%s: bad path", fw)
			}
			if paths[f.Path] {
				return fmt.Errorf("%s: duplicate path", fw)
			}
			paths[f.Path] = true
			if f.SHA256 != Unknown && !hexRe.MatchString(f.SHA256) {
				return fmt.Errorf("%s: sha256 %q must be 64 lower-case hex digits or %q", fw, f.SHA256, Unknown)
			}
			if f.Size != nil && *f.Size <= 0 {
				return fmt.Errorf("%s: size %d must be positive or null", fw, *f.Size)
			}
			if f.Rows != nil && *f.Rows < 0 {
				return fmt.Errorf("%s: rows %d must be >= 0 or null", fw, *f.Rows)
			}
			switch f.Format {
			case "json", "jsonl", "parquet":
			default:
				return fmt.Errorf("%s: format %q (want json, jsonl or parquet)", fw, f.Format)
			}
		}
	}
	return nil
}

// Dataset returns the dataset named name.
func (l *Lock) Dataset(name string) (*Dataset, error) {
	for i := range l.Datasets {
		if l.Datasets[i].Name == name {
			return &l.Datasets[i], nil
		}
	}
	names := make([]string, len(l.Datasets))
	for i, d := range l.Datasets {
		names[i] = d.Name
	}
	return nil, fmt.Errorf("no dataset %q in the lock (have %s)", name, strings.Join(names, ", "))
}

// Members returns the datasets a name stands for: the dataset of that name, and every dataset named NAME.PART (a
// benchmark whose data lives in several repositories, such as ruler.squad and ruler.hotpotqa for ruler). It is
// empty when the lock has neither.
func (l *Lock) Members(name string) []string {
	var out []string
	for _, d := range l.Datasets {
		if d.Name == name || strings.HasPrefix(d.Name, name+".") {
			out = append(out, d.Name)
		}
	}
	return out
}

// File returns the file of d with the given path.
func (d *Dataset) File(p string) (*File, error) {
	for i := range d.Files {
		if d.Files[i].Path == p {
			return &d.Files[i], nil
		}
	}
	return nil, fmt.Errorf("dataset %q has no file %q", d.Name, p)
}

// Marshal renders the lock as indented JSON with a trailing newline.
func (l *Lock) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
