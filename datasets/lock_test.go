package datasets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodLock = `{
  "version": 1,
  "datasets": [
    {"name": "toy", "repo": "org/toy", "revision": "0123456789abcdef0123456789abcdef01234567", "license": "mit",
     "files": [
       {"path": "data.json", "size": 12, "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "rows": 2, "format": "json"},
       {"path": "sub/extra.jsonl", "size": null, "sha256": "unknown", "rows": null, "format": "jsonl"}
     ]}
  ]
}`

func TestParseLock(t *testing.T) {
	l, err := ParseLock([]byte(goodLock))
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Dataset("toy")
	if err != nil {
		t.Fatal(err)
	}
	if d.RepoType != "dataset" {
		t.Errorf("repo_type default = %q", d.RepoType)
	}
	f, err := d.File("data.json")
	if err != nil || !f.Pinned() || f.KnownSize() != 12 {
		t.Fatalf("%+v %v", f, err)
	}
	g, _ := d.File("sub/extra.jsonl")
	if g.Pinned() || g.KnownSize() != 0 {
		t.Errorf("unknown file reported as pinned: %+v", g)
	}
	if _, err := l.Dataset("nope"); err == nil || !strings.Contains(err.Error(), "have toy") {
		t.Errorf("lookup error = %v", err)
	}
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseLock(b); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

func TestParseLockErrors(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	sha := strings.Repeat("a", 64)
	file := func(extra string) string {
		return `{"version":1,"datasets":[{"name":"x","repo":"o/x","revision":"` + rev + `","license":"mit","files":[` + extra + `]}]}`
	}
	tests := []struct {
		name, in, want string
	}{
		{"syntax", "{\n\"version\": 1,\n\"datasets\": [\n}", "line 4"},
		{"version", `{"version":2,"datasets":[]}`, "version 2"},
		{"unknown field", `{"version":1,"datasets":[],"extra":1}`, "unknown field"},
		{"type", "{\"version\":1,\n\"datasets\":[{\"name\":3}]}", "line 2"},
		{"short revision", strings.Replace(file(`{"path":"a","sha256":"`+sha+`","format":"json","size":1,"rows":1}`), rev, "2b48e49", 1), "40-hex"},
		{"bad sha", file(`{"path":"a","sha256":"ABC","format":"json","size":1,"rows":1}`), "sha256"},
		{"bad path", file(`{"path":"../a","sha256":"` + sha + `","format":"json","size":1,"rows":1}`), "bad path"},
		{"abs path", file(`{"path":"/a","sha256":"` + sha + `","format":"json","size":1,"rows":1}`), "bad path"},
		{"format", file(`{"path":"a","sha256":"` + sha + `","format":"csv","size":1,"rows":1}`), "format"},
		{"size", file(`{"path":"a","sha256":"` + sha + `","format":"json","size":0,"rows":1}`), "size 0"},
		{"no files", file(``), "no files"},
		{"dup path", file(`{"path":"a","sha256":"` + sha + `","format":"json","size":1,"rows":1},{"path":"a","sha256":"` + sha + `","format":"json","size":1,"rows":1}`), "duplicate path"},
		{"trailing", `{"version":1,"datasets":[]} {}`, "trailing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLock([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestRepositoryLock checks the committed datasets.lock: it parses, and every benchmark dataset is there.
func TestRepositoryLock(t *testing.T) {
	l, err := LoadLock(filepath.Join("..", "datasets.lock"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{"longbench-v2": 503, "aime24": 30, "livecodebench": 400 + 111 + 101 + 101 + 167 + 175}
	for name, want := range rows {
		d, err := l.Dataset(name)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, f := range d.Files {
			if f.Rows != nil {
				got += *f.Rows
			}
		}
		if got != want {
			t.Errorf("%s: %d rows, want %d", name, got, want)
		}
	}
}

func TestLoadLockNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "datasets.lock")
	os.WriteFile(p, []byte(`{"version":1,`), 0o644)
	_, err := LoadLock(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseLock(f *testing.F) {
	f.Add([]byte(goodLock))
	if b, err := os.ReadFile(filepath.Join("..", "datasets.lock")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"datasets":[{"name":"x","files":[{"size":-1}]}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLock(b)
		if err != nil {
			return
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseLock(out); err != nil {
			t.Fatalf("valid lock does not round-trip: %v", err)
		}
	})
}

func TestMembers(t *testing.T) {
	l, err := ParseLock([]byte(`{"version":1,"datasets":[
 {"name":"ruler.squad","repo":"a/b","revision":"unknown","license":"x","files":[{"path":"f.json","size":null,"sha256":"unknown","rows":null,"format":"json"}]},
 {"name":"rulerx","repo":"a/b","revision":"unknown","license":"x","files":[{"path":"f.json","size":null,"sha256":"unknown","rows":null,"format":"json"}]},
 {"name":"ruler.hotpotqa","repo":"a/b","revision":"unknown","license":"x","files":[{"path":"f.json","size":null,"sha256":"unknown","rows":null,"format":"json"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want string
	}{{"ruler", "[ruler.squad ruler.hotpotqa]"}, {"ruler.squad", "[ruler.squad]"}, {"rulerx", "[rulerx]"}, {"rul", "[]"}} {
		if got := fmt.Sprint(l.Members(c.name)); got != c.want {
			t.Errorf("Members(%q) = %s, want %s", c.name, got, c.want)
		}
	}
}
