package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const secret = "hf_SECRETtoken123456"

// fakeHub serves the Hub URL layout from a map of "datasets/org/name/resolve/rev/path" -> content.
type fakeHub struct {
	mu       sync.Mutex
	files    map[string][]byte
	token    string // when set, requests without "Bearer token" get 401
	cutAfter int    // when > 0, the first full (non-range) response is cut after this many bytes
	cut      bool
	fail5xx  int // answer this many requests with 503 first
	ranges   []string
	requests int
	noRange  bool // ignore Range headers (answer 200)
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if strings.HasPrefix(r.URL.Path, "/redirect/") {
		http.Redirect(w, r, strings.TrimPrefix(r.URL.Path, "/redirect"), http.StatusFound)
		return
	}
	if h.fail5xx > 0 {
		h.fail5xx--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if h.token != "" && r.Header.Get("Authorization") != "Bearer "+h.token {
		w.Header().Set("X-Error-Code", "GatedRepo")
		w.Header().Set("X-Error-Message", "Access restricted")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	data, ok := h.files[strings.TrimPrefix(r.URL.Path, "/")]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	rg := r.Header.Get("Range")
	h.ranges = append(h.ranges, rg)
	if rg != "" && !h.noRange {
		start, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
		if err != nil || start > int64(len(data)) {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		if start == int64(len(data)) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)-int(start)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(data[start:])
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if h.cutAfter > 0 && !h.cut {
		h.cut = true
		w.Write(data[:h.cutAfter])
		// Hijack and close to simulate a broken connection.
		if hj, ok := w.(http.Hijacker); ok {
			w.(http.Flusher).Flush()
			conn, _, _ := hj.Hijack()
			conn.Close()
		}
		return
	}
	w.Write(data)
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func newClient(t *testing.T, srv *httptest.Server) *Client {
	t.Helper()
	return &Client{Endpoint: srv.URL, CacheDir: t.TempDir(), HTTP: srv.Client(), Retries: 3, Backoff: time.Millisecond}
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestURLAndLocalPath(t *testing.T) {
	c := &Client{Endpoint: "https://hub.example", CacheDir: "/cache/hub"}
	tests := []struct {
		typ, repo, rev, file, url, local string
	}{
		{RepoDataset, "THUDM/LongBench-v2", "2b48e494", "data.json",
			"https://hub.example/datasets/THUDM/LongBench-v2/resolve/2b48e494/data.json",
			"/cache/hub/datasets--THUDM--LongBench-v2/snapshots/2b48e494/data.json"},
		{RepoModel, "Qwen/Qwen2.5-7B-Instruct", "main", "sub dir/model.safetensors",
			"https://hub.example/Qwen/Qwen2.5-7B-Instruct/resolve/main/sub%20dir/model.safetensors",
			"/cache/hub/models--Qwen--Qwen2.5-7B-Instruct/snapshots/main/sub dir/model.safetensors"},
		{RepoDataset, "THUDM/LongBench-v2", "refs/convert/parquet", "default/train/0000.parquet",
			"https://hub.example/datasets/THUDM/LongBench-v2/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet",
			"/cache/hub/datasets--THUDM--LongBench-v2/snapshots/refs--convert--parquet/default/train/0000.parquet"},
	}
	for _, tc := range tests {
		u, err := c.URL(tc.typ, tc.repo, tc.rev, tc.file)
		if err != nil || u != tc.url {
			t.Errorf("URL = %q, %v; want %q", u, err, tc.url)
		}
		l, err := c.LocalPath(tc.typ, tc.repo, tc.rev, tc.file)
		if err != nil || l != filepath.FromSlash(tc.local) {
			t.Errorf("LocalPath = %q, %v; want %q", l, err, tc.local)
		}
	}
	bad := [][4]string{
		{"model", "noslash", "main", "f"},
		{"dataset", "a/b", "main", "../etc/passwd"},
		{"dataset", "a/b", "../x", "f"},
		{"thing", "a/b", "main", "f"},
		{"dataset", "a/b", "main", "/abs"},
		{"dataset", "a/b", "refs/../x", "f"},
	}
	for _, b := range bad {
		if _, err := c.URL(b[0], b[1], b[2], b[3]); err == nil {
			t.Errorf("URL%v: want error", b)
		}
	}
}

func TestDownloadVerifiesAndCaches(t *testing.T) {
	data := payload(10000)
	h := &fakeHub{files: map[string][]byte{"datasets/org/ds/resolve/abc/data.json": data}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv)
	p, err := c.Download(context.Background(), RepoDataset, "org/ds", "abc", "data.json",
		FileSpec{Size: int64(len(data)), SHA256: sum(data)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if _, err := os.Stat(p + ".incomplete"); !os.IsNotExist(err) {
		t.Error(".incomplete left behind")
	}
	n := h.requests
	if _, err := c.Download(context.Background(), RepoDataset, "org/ds", "abc", "data.json", FileSpec{SHA256: sum(data)}); err != nil {
		t.Fatal(err)
	}
	if h.requests != n {
		t.Error("cached file was downloaded again")
	}
}

func TestDownloadResumesInterruptedTransfer(t *testing.T) {
	data := payload(50000)
	h := &fakeHub{files: map[string][]byte{"datasets/org/ds/resolve/r1/big.bin": data}, cutAfter: 12345}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv)
	res, err := c.Fetch(context.Background(), RepoDataset, "org/ds", "r1", "big.bin", FileSpec{Size: int64(len(data)), SHA256: sum(data)})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sum(data) || res.Size != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}
	if len(h.ranges) != 2 || h.ranges[0] != "" || h.ranges[1] != "bytes=12345-" {
		t.Fatalf("ranges = %q, want a full request then bytes=12345-", h.ranges)
	}
}

func TestDownloadResumesFromExistingPartial(t *testing.T) {
	data := payload(3000)
	h := &fakeHub{files: map[string][]byte{"org/m/resolve/main/w.bin": data}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv)
	dest, _ := c.LocalPath(RepoModel, "org/m", "main", "w.bin")
	os.MkdirAll(filepath.Dir(dest), 0o755)
	os.WriteFile(dest+".incomplete", data[:1000], 0o644)
	if _, err := c.Download(context.Background(), RepoModel, "org/m", "main", "w.bin", FileSpec{SHA256: sum(data)}); err != nil {
		t.Fatal(err)
	}
	if len(h.ranges) != 1 || h.ranges[0] != "bytes=1000-" {
		t.Fatalf("ranges = %q", h.ranges)
	}
}

func TestDownloadServerIgnoresRange(t *testing.T) {
	data := payload(3000)
	h := &fakeHub{files: map[string][]byte{"org/m/resolve/main/w.bin": data}, noRange: true}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv)
	dest, _ := c.LocalPath(RepoModel, "org/m", "main", "w.bin")
	os.MkdirAll(filepath.Dir(dest), 0o755)
	os.WriteFile(dest+".incomplete", []byte("garbage garbage"), 0o644)
	p, err := c.Download(context.Background(), RepoModel, "org/m", "main", "w.bin", FileSpec{SHA256: sum(data)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, data) {
		t.Fatal("200 after Range must restart the file")
	}
}

func TestDownloadWrongSHA(t *testing.T) {
	data := payload(100)
	h := &fakeHub{files: map[string][]byte{"datasets/org/ds/resolve/r/f": data}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv)
	wrong := strings.Repeat("ab", 32)
	_, err := c.Download(context.Background(), RepoDataset, "org/ds", "r", "f", FileSpec{SHA256: wrong})
	if err == nil || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("err = %v, want a sha256 mismatch", err)
	}
	dest, _ := c.LocalPath(RepoDataset, "org/ds", "r", "f")
	for _, p := range []string{dest, dest + ".incomplete"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s should not exist after a mismatch", p)
		}
	}
	_, err = c.Download(context.Background(), RepoDataset, "org/ds", "r", "f", FileSpec{Size: 99})
	if err == nil || !strings.Contains(err.Error(), "size 100, want 99") {
		t.Fatalf("err = %v, want a size mismatch", err)
	}
}

func TestDownloadAuthErrorsNeverLeakToken(t *testing.T) {
	data := payload(10)
	h := &fakeHub{files: map[string][]byte{"datasets/org/gated/resolve/r/f": data}, token: "the-right-token"}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv)
	c.Token = secret
	_, err := c.Download(context.Background(), RepoDataset, "org/gated", "r", "f", FileSpec{})
	if err == nil {
		t.Fatal("want 401 error")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("token leaked: %v", err)
	}
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "GatedRepo") {
		t.Fatalf("err = %v, want a 401 naming the gate", err)
	}
	if h.requests != 1 {
		t.Errorf("401 was retried (%d requests)", h.requests)
	}
	c.Token = ""
	_, err = c.Download(context.Background(), RepoDataset, "org/gated", "r", "f", FileSpec{})
	if err == nil || !strings.Contains(err.Error(), "set HF_TOKEN") {
		t.Fatalf("err = %v, want a hint to set HF_TOKEN", err)
	}
	c.Token = "the-right-token"
	if _, err := c.Download(context.Background(), RepoDataset, "org/gated", "r", "f", FileSpec{SHA256: sum(data)}); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadNotFoundAndForbidden(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "forbidden") {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	c := newClient(t, srv)
	_, err := c.Download(context.Background(), RepoDataset, "org/ds", "r", "missing.json", FileSpec{})
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("err = %v", err)
	}
	_, err = c.Download(context.Background(), RepoDataset, "org/forbidden", "r", "f", FileSpec{})
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "gated") {
		t.Fatalf("err = %v", err)
	}
}

func TestDownloadRetries5xxThenGivesUp(t *testing.T) {
	data := payload(500)
	h := &fakeHub{files: map[string][]byte{"datasets/o/d/resolve/r/f": data}, fail5xx: 2}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv)
	if _, err := c.Download(context.Background(), RepoDataset, "o/d", "r", "f", FileSpec{SHA256: sum(data)}); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	h2 := &fakeHub{files: map[string][]byte{"datasets/o/d/resolve/r/f": data}, fail5xx: 100}
	srv2 := httptest.NewServer(h2)
	defer srv2.Close()
	c2 := newClient(t, srv2)
	_, err := c2.Download(context.Background(), RepoDataset, "o/d", "r", "f", FileSpec{})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "gave up after 3 retries") {
		t.Fatalf("err = %v", err)
	}
	if h2.requests != 4 {
		t.Errorf("requests = %d, want 1 + 3 retries", h2.requests)
	}
}

func TestDownloadFollowsRedirect(t *testing.T) {
	data := payload(700)
	h := &fakeHub{files: map[string][]byte{"cdn/blob": data}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(t, srv)
	dest := filepath.Join(t.TempDir(), "out")
	res, err := c.FetchURL(context.Background(), srv.URL+"/redirect/cdn/blob", dest, FileSpec{SHA256: sum(data)})
	if err != nil || res.SHA256 != sum(data) {
		t.Fatalf("res %+v err %v", res, err)
	}
}

func TestNewFromEnv(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://mirror.local/")
	t.Setenv("HF_TOKEN", "tok")
	t.Setenv("HF_HOME", "/hf")
	c := NewFromEnv()
	if c.Endpoint != "http://mirror.local" || c.Token != "tok" || c.CacheDir != filepath.FromSlash("/hf/hub") {
		t.Fatalf("%+v", c)
	}
	t.Setenv("HF_ENDPOINT", "")
	if NewFromEnv().Endpoint != DefaultEndpoint {
		t.Fatal("default endpoint")
	}
}

func TestContentRangeStart(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"bytes 100-199/200", 100, true},
		{"bytes 0-0/1", 0, true},
		{"bytes */200", 0, false},
		{"items 1-2/3", 0, false},
		{"bytes -1-2/3", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, ok := contentRangeStart(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("contentRangeStart(%q) = %d, %v", tc.in, got, ok)
		}
	}
}

func FuzzContentRangeStart(f *testing.F) {
	for _, s := range []string{"bytes 100-199/200", "bytes */5", "bytes 9999999999999999999-1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := contentRangeStart(s); ok && n < 0 {
			t.Fatalf("negative start %d from %q", n, s)
		}
	})
}
