package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"

	"golang.org/x/sys/unix"
)

// IndexFile is the name of the shard index of a sharded checkpoint.
const IndexFile = "model.safetensors.index.json"

// SingleFile is the name of an unsharded checkpoint.
const SingleFile = "model.safetensors"

// Checkpoint is the set of tensors of one model, possibly spread over several shards.
type Checkpoint struct {
	// Source names where the checkpoint was read from (a directory or file), for errors.
	Source  string
	Tensors map[string]*Tensor
	// where names the file each tensor came from (for errors).
	where  map[string]string
	unmaps [][]byte
}

// Get returns the named tensor, or an error naming it.
func (c *Checkpoint) Get(name string) (*Tensor, error) {
	t, ok := c.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: tensor %q not found", c.Source, name)
	}
	return t, nil
}

// File says which file a tensor came from.
func (c *Checkpoint) File(name string) string { return c.where[name] }

// Names lists the tensor names in sorted order.
func (c *Checkpoint) Names() []string {
	var out []string
	for n := range c.Tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Close unmaps memory-mapped files. Tensors must not be used afterwards.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, m := range c.unmaps {
		errs = append(errs, unix.Munmap(m))
	}
	c.unmaps = nil
	return errors.Join(errs...)
}

func (c *Checkpoint) add(f *File) error {
	for n, t := range f.Tensors {
		if prev, dup := c.where[n]; dup {
			return fmt.Errorf("checkpoint: tensor %q is in both %s and %s", n, prev, f.Name)
		}
		c.Tensors[n] = t
		c.where[n] = f.Name
	}
	return nil
}

func newCheckpoint(source string) *Checkpoint {
	return &Checkpoint{Source: source, Tensors: map[string]*Tensor{}, where: map[string]string{}}
}

// index is model.safetensors.index.json.
type index struct {
	WeightMap map[string]string `json:"weight_map"`
}

func parseIndex(name string, b []byte) ([]string, map[string]string, error) {
	var ix index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, nil, fmt.Errorf("%s: weight_map is empty", name)
	}
	seen := map[string]bool{}
	var shards []string
	for t, s := range ix.WeightMap {
		if s == "" || s == "." || s == ".." || path.Base(s) != s {
			return nil, nil, fmt.Errorf("%s: tensor %q maps to bad shard name %q", name, t, s)
		}
		if !seen[s] {
			seen[s] = true
			shards = append(shards, s)
		}
	}
	sort.Strings(shards)
	return shards, ix.WeightMap, nil
}

func checkIndex(c *Checkpoint, name string, wm map[string]string) error {
	for t, s := range wm {
		got, ok := c.where[t]
		if !ok {
			return fmt.Errorf("%s: tensor %q listed in shard %s is missing from it", name, t, s)
		}
		if path.Base(got) != s {
			return fmt.Errorf("%s: tensor %q listed in shard %s is in %s", name, t, s, got)
		}
	}
	return nil
}

// OpenDir memory-maps the checkpoint in directory dir: model.safetensors.index.json and its shards
// when present, else model.safetensors.
func OpenDir(dir string) (*Checkpoint, error) {
	c := newCheckpoint(dir)
	ixPath := path.Join(dir, IndexFile)
	if b, err := os.ReadFile(ixPath); err == nil {
		shards, wm, err := parseIndex(ixPath, b)
		if err != nil {
			return nil, err
		}
		for _, s := range shards {
			if err := c.mapFile(path.Join(dir, s)); err != nil {
				c.Close()
				return nil, err
			}
		}
		if err := checkIndex(c, ixPath, wm); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := c.mapFile(path.Join(dir, SingleFile)); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Checkpoint) mapFile(name string) error {
	fd, err := os.Open(name)
	if err != nil {
		return err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return fmt.Errorf("safetensors %s: empty file", name)
	}
	b, err := unix.Mmap(int(fd.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("safetensors %s: mmap: %w", name, err)
	}
	f, err := Parse(name, b)
	if err != nil {
		unix.Munmap(b)
		return err
	}
	c.unmaps = append(c.unmaps, b)
	return c.add(f)
}

// OpenFS reads the checkpoint in directory dir of fsys into memory (for go:embed models, an embed.FS
// read is a copy-free view only through fs.ReadFile, which copies; the data is held once).
func OpenFS(fsys fs.FS, dir string) (*Checkpoint, error) {
	c := newCheckpoint(dir)
	ixPath := path.Join(dir, IndexFile)
	if b, err := fs.ReadFile(fsys, ixPath); err == nil {
		shards, wm, err := parseIndex(ixPath, b)
		if err != nil {
			return nil, err
		}
		for _, s := range shards {
			if err := c.readFile(fsys, path.Join(dir, s)); err != nil {
				return nil, err
			}
		}
		if err := checkIndex(c, ixPath, wm); err != nil {
			return nil, err
		}
		return c, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := c.readFile(fsys, path.Join(dir, SingleFile)); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Checkpoint) readFile(fsys fs.FS, name string) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return err
	}
	f, err := Parse(name, b)
	if err != nil {
		return err
	}
	return c.add(f)
}

// FromBytes builds a checkpoint from one in-memory safetensors file.
func FromBytes(name string, b []byte) (*Checkpoint, error) {
	f, err := Parse(name, b)
	if err != nil {
		return nil, err
	}
	c := newCheckpoint(name)
	return c, c.add(f)
}
