package cpu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/snapeval/snapeval/backends/cpu/safetensors"
	"github.com/snapeval/snapeval/hub"
)

// Resolve turns a model reference into a local directory: an existing directory is returned as is;
// otherwise ref is a Hugging Face Hub repository "org/name" or "org/name@revision" (default revision
// "main"), whose config.json, tokenizer files, generation_config.json and safetensors weights (sharded or
// not) are downloaded with c into the Hub cache (resumable; cached files are reused).
func Resolve(ctx context.Context, c *hub.Client, ref string) (string, error) {
	if st, err := os.Stat(ref); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("cpu backend: model %s is not a directory", ref)
		}
		return ref, nil
	}
	repo, rev, _ := strings.Cut(ref, "@")
	if rev == "" {
		rev = "main"
	}
	if strings.Count(repo, "/") != 1 || strings.HasPrefix(repo, "/") || strings.HasPrefix(repo, ".") {
		return "", fmt.Errorf("cpu backend: model %q is neither a local directory nor a Hub repository (org/name[@revision])", ref)
	}
	get := func(file string, optional bool) (string, error) {
		p, err := c.Download(ctx, hub.RepoModel, repo, rev, file, hub.FileSpec{})
		if err != nil && optional && strings.Contains(err.Error(), "404") {
			return "", nil
		}
		return p, err
	}
	cfg, err := get("config.json", false)
	if err != nil {
		return "", err
	}
	for _, f := range []string{"tokenizer.json"} {
		if _, err := get(f, false); err != nil {
			return "", err
		}
	}
	for _, f := range []string{"generation_config.json", "tokenizer_config.json"} {
		if _, err := get(f, true); err != nil {
			return "", err
		}
	}
	ix, err := get(safetensors.IndexFile, true)
	if err != nil {
		return "", err
	}
	if ix == "" {
		if _, err := get(safetensors.SingleFile, false); err != nil {
			return "", err
		}
		return filepath.Dir(cfg), nil
	}
	b, err := os.ReadFile(ix)
	if err != nil {
		return "", err
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return "", fmt.Errorf("%s: %v", ix, err)
	}
	shards := map[string]bool{}
	for _, s := range index.WeightMap {
		shards[s] = true
	}
	if len(shards) == 0 {
		return "", errors.New(ix + ": weight_map is empty")
	}
	names := make([]string, 0, len(shards))
	for s := range shards {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		if strings.Contains(s, "/") || strings.Contains(s, "..") {
			return "", fmt.Errorf("%s: bad shard name %q", ix, s)
		}
		if _, err := get(s, false); err != nil {
			return "", err
		}
	}
	return filepath.Dir(cfg), nil
}
