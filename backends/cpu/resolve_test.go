package cpu

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/snapeval/snapeval/backends/cpu/safetensors"
	"github.com/snapeval/snapeval/hub"
)

// TestResolveFromHub serves the llama-gqa fixture as a sharded Hub repository over httptest.
func TestResolveFromHub(t *testing.T) {
	src := fixtureDir("llama-gqa")
	weights, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := safetensors.Parse("w", weights)
	if err != nil {
		t.Fatal(err)
	}
	wm := map[string]string{}
	for name := range parsed.Tensors {
		wm[name] = "model-00001-of-00001.safetensors"
	}
	index, _ := json.Marshal(map[string]any{"weight_map": wm})
	files := map[string][]byte{
		"model.safetensors.index.json":     index,
		"model-00001-of-00001.safetensors": weights,
	}
	for _, f := range []string{"config.json", "tokenizer.json", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = b
	}
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix := "/org/tiny/resolve/main/"
		name, ok := strings.CutPrefix(r.URL.Path, prefix)
		b, found := files[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		got = append(got, name)
		mu.Unlock()
		w.Write(b)
	}))
	defer srv.Close()
	c := &hub.Client{Endpoint: srv.URL, CacheDir: t.TempDir(), HTTP: srv.Client()}
	dir, err := Resolve(context.Background(), c, "org/tiny")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir, Options{Name: "org/tiny"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	local, err := Open(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if b.Shape() != local.Shape() || strings.TrimPrefix(b.Identity(), "cpu:org/tiny") != strings.TrimPrefix(local.Identity(), "cpu:llama-gqa") {
		t.Errorf("hub copy %s %+v, local %s %+v", b.Identity(), b.Shape(), local.Identity(), local.Shape())
	}
	if len(got) != 5 {
		t.Errorf("downloaded %v, want 5 files (tokenizer_config.json is optional)", got)
	}
	if local, err := Resolve(context.Background(), c, src); err != nil || local != src {
		t.Errorf("local directory resolved to %q, %v", local, err)
	}
	if _, err := Resolve(context.Background(), c, "not-a-repo"); err == nil {
		t.Error("bad reference accepted")
	}
	if _, err := Resolve(context.Background(), c, "org/missing"); err == nil {
		t.Error("missing repository accepted")
	}
}
