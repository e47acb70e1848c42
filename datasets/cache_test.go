package datasets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapeval/snapeval/hub"
)

const rev = "0123456789abcdef0123456789abcdef01234567"

func hexsum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// testHub serves files at /datasets/org/toy/resolve/<rev>/<path>.
func testHub(t *testing.T, files map[string][]byte) (*hub.Client, *int) {
	t.Helper()
	n := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*n++
		b, ok := files[strings.TrimPrefix(r.URL.Path, "/datasets/org/toy/resolve/"+rev+"/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return &hub.Client{Endpoint: srv.URL, CacheDir: t.TempDir(), HTTP: srv.Client(), Retries: 1, Backoff: time.Millisecond}, n
}

func toyLock(t *testing.T, pinned, unpinned []byte) *Lock {
	t.Helper()
	size := int64(len(pinned))
	rows := 2
	return &Lock{Version: 1, Datasets: []Dataset{{
		Name: "toy", Repo: "org/toy", RepoType: "dataset", Revision: rev, License: "mit",
		Files: []File{
			{Path: "data.json", Size: &size, SHA256: hexsum(pinned), Rows: &rows, Format: "json"},
			{Path: "sub/more.jsonl", SHA256: Unknown, Format: "jsonl"},
		},
	}}}
}

func TestPullRefusesUnpinnedThenTrustsOnFirstUse(t *testing.T) {
	pinned := []byte(`[{"a":1},{"a":2}]`)
	unpinned := []byte("{\"b\":1}\n")
	c, _ := testHub(t, map[string][]byte{"data.json": pinned, "sub/more.jsonl": unpinned})
	lock := toyLock(t, pinned, unpinned)
	cache := t.TempDir()
	var log bytes.Buffer
	err := Pull(context.Background(), lock, "toy", cache, PullOptions{Client: c, Log: &log})
	if err == nil || !strings.Contains(err.Error(), "sub/more.jsonl: sha256 unknown") || !strings.Contains(err.Error(), "--trust-on-first-use") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(Path(cache, "toy", "data.json")); !bytes.Equal(b, pinned) {
		t.Fatal("pinned file not pulled")
	}
	if _, err := os.Stat(Path(cache, "toy", "sub/more.jsonl")); !os.IsNotExist(err) {
		t.Fatal("unpinned file downloaded without trust")
	}
	log.Reset()
	if err := Pull(context.Background(), lock, "toy", cache, PullOptions{Client: c, Log: &log, TrustOnFirstUse: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "WARNING: toy/sub/more.jsonl is not pinned") || !strings.Contains(log.String(), hexsum(unpinned)) {
		t.Fatalf("log = %s", log.String())
	}
	st, err := Verify(lock, cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].State != "ok" || st[1].State != "tofu" {
		t.Fatalf("verify = %+v", st)
	}
	// A later pull without the flag uses the recorded hash.
	if err := Pull(context.Background(), lock, "toy", cache, PullOptions{Client: c}); err != nil {
		t.Fatalf("pull after TOFU: %v", err)
	}
	// Corruption is reported.
	os.WriteFile(Path(cache, "toy", "data.json"), []byte(`[]`), 0o644)
	st, _ = Verify(lock, cache, "toy")
	if st[0].State != "mismatch" || !strings.Contains(st[0].Detail, "sha256") {
		t.Fatalf("verify after corruption = %+v", st[0])
	}
	os.Remove(Path(cache, "toy", "data.json"))
	st, _ = Verify(lock, cache, "toy")
	if st[0].State != "missing" {
		t.Fatalf("verify after removal = %+v", st[0])
	}
}

func TestPullRejectsWrongContent(t *testing.T) {
	pinned := []byte(`[{"a":1},{"a":2}]`)
	c, _ := testHub(t, map[string][]byte{"data.json": []byte(`[{"a":1},{"a":3}]`)})
	lock := toyLock(t, pinned, nil)
	lock.Datasets[0].Files = lock.Datasets[0].Files[:1]
	err := Pull(context.Background(), lock, "toy", t.TempDir(), PullOptions{Client: c})
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("err = %v", err)
	}
}

func TestPullUnknownRevision(t *testing.T) {
	lock := toyLock(t, []byte("x"), nil)
	lock.Datasets[0].Revision = Unknown
	err := Pull(context.Background(), lock, "toy", t.TempDir(), PullOptions{Client: &hub.Client{}})
	if err == nil || !strings.Contains(err.Error(), "revision unknown") {
		t.Fatalf("err = %v", err)
	}
}

func TestImport(t *testing.T) {
	pinned := []byte(`[{"a":1},{"a":2}]`)
	lock := toyLock(t, pinned, nil)
	dir, cache := t.TempDir(), t.TempDir()
	src := filepath.Join(dir, "download (1).json")
	os.WriteFile(src, pinned, 0o644)
	dest, err := Import(lock, "toy", src, cache, false)
	if err != nil || dest != Path(cache, "toy", "data.json") {
		t.Fatalf("dest %q err %v", dest, err)
	}
	other := filepath.Join(dir, "data.json")
	os.WriteFile(other, []byte(`[]`), 0o644)
	if _, err := Import(lock, "toy", other, cache, false); err == nil || !strings.Contains(err.Error(), "matches no file") {
		t.Fatalf("err = %v", err)
	}
	unp := filepath.Join(dir, "more.jsonl")
	os.WriteFile(unp, []byte("{}\n"), 0o644)
	if _, err := Import(lock, "toy", unp, cache, false); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Import(lock, "toy", unp, cache, true); err != nil {
		t.Fatal(err)
	}
	st, _ := Verify(lock, cache, "toy")
	if st[1].State != "tofu" {
		t.Fatalf("%+v", st[1])
	}
}

func TestCacheDirAndFindLock(t *testing.T) {
	t.Setenv("SNAPEVAL_CACHE", "/x/cache")
	if CacheDir() != "/x/cache" {
		t.Fatal(CacheDir())
	}
	t.Setenv("SNAPEVAL_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if CacheDir() != filepath.FromSlash("/xdg/snapeval") {
		t.Fatal(CacheDir())
	}
	if got := Path("/c", "aime24", "a/b.parquet"); got != filepath.FromSlash("/c/aime24/a/b.parquet") {
		t.Fatal(got)
	}
	t.Setenv("SNAPEVAL_LOCK", "")
	p, err := FindLock() // the repository root holds datasets.lock
	if err != nil || filepath.Base(p) != "datasets.lock" {
		t.Fatalf("%q %v", p, err)
	}
}
