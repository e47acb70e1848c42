package jieba

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestCutMatchesJieba checks the segmentation of testdata/cut.jsonl, written by jieba 0.42.1's own
// jieba.cut(text) (cut_all=False, HMM=True): handwritten sentences (the classic jieba examples, numbers,
// percentages, Latin words, full-width and ASCII whitespace) and random mixtures of dictionary words, Han
// characters inside and outside jieba's range, punctuation and emoji.
func TestCutMatchesJieba(t *testing.T) {
	f, err := os.Open("testdata/cut.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		var c struct {
			Text  string   `json:"text"`
			Words []string `json:"words"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		got, err := Cut(c.Text)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 && len(c.Words) == 0 {
			continue
		}
		if !slices.Equal(got, c.Words) {
			t.Errorf("line %d: Cut(%q)\n got %q\nwant %q", n, c.Text, got, c.Words)
		}
		if strings.Join(got, "") != c.Text {
			t.Errorf("line %d: the words do not spell the text", n)
		}
	}
	if n < 150 {
		t.Fatalf("only %d cases", n)
	}
}

// TestEmbeddedData pins the embedded dictionary and emission table: jieba 0.42.1's dict.txt (first two
// columns) and finalseg's emission table.
func TestEmbeddedData(t *testing.T) {
	tests := []struct {
		name  string
		gz    []byte
		lines int
		sum   string
	}{
		{"dict.txt.gz", dictGz, 349046, "3030244528262fd6005d41ed8674f4ae63867156b260c24f929a1e9aa3a71e81"},
		{"prob_emit.txt.gz", emitGz, 35224, "a16ea8e7eb568751da838d8c8d6baced780e5beac6a1eb444b132a3adcccce71"},
	}
	for _, tc := range tests {
		zr, err := gzip.NewReader(bytes.NewReader(tc.gz))
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		if _, err := raw.ReadFrom(zr); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw.Bytes())
		if got := hex.EncodeToString(sum[:]); got != tc.sum {
			t.Errorf("%s: uncompressed sha256 %s, want %s", tc.name, got, tc.sum)
		}
		if got := bytes.Count(raw.Bytes(), []byte("\n")); got != tc.lines {
			t.Errorf("%s: %d lines, want %d", tc.name, got, tc.lines)
		}
	}
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	// jieba.dt.total after initialize() (the one word dict.txt lists twice counts twice)
	if s.total != 60101967 {
		t.Errorf("total frequency %d", s.total)
	}
}

func TestLoadErrors(t *testing.T) {
	gz := func(s string) *bytes.Reader {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return bytes.NewReader(b.Bytes())
	}
	okEmit := "B 中 -1.5\n"
	tests := []struct {
		name, dict, emit, want string
	}{
		{"not gzip", "", "", "dictionary"},
		{"bad freq", "中国 x\n", okEmit, "line 1"},
		{"no freq", "中国\n", okEmit, "line 1"},
		{"zero total", "中国 0\n", okEmit, "total frequency"},
		{"bad state", "中国 3\n", "X 中 -1.5\n", "emission table: line 1"},
		{"two chars", "中国 3\n", "B 中国 -1.5\n", "emission table: line 1"},
		{"bad float", "中国 3\n", "B 中 x\n", "emission table: line 1"},
	}
	for _, tc := range tests {
		var d, e *bytes.Reader
		if tc.name == "not gzip" {
			d, e = bytes.NewReader([]byte("plain")), gz(okEmit)
		} else {
			d, e = gz(tc.dict), gz(tc.emit)
		}
		if _, err := Load(d, e); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestDuplicateWord: a word listed twice keeps its last frequency and both count in the total (gen_pfdict).
func TestDuplicateWord(t *testing.T) {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte("中国人 5\n中国 3\n中国 7\n"))
	w.Close()
	var e bytes.Buffer
	w = gzip.NewWriter(&e)
	w.Write([]byte("S 中 -1\n"))
	w.Close()
	s, err := Load(&b, &e)
	if err != nil {
		t.Fatal(err)
	}
	if s.total != 15 || s.freq["中国"] != 7 || s.freq["中"] != 0 || s.freq["中国人"] != 5 {
		t.Fatalf("total %d freq %v", s.total, s.freq)
	}
	if _, ok := s.freq["国"]; ok {
		t.Fatal("a non-prefix was added")
	}
}

func BenchmarkCut(b *testing.B) {
	s, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("小明硕士毕业于中国科学院计算所，后在日本京都大学深造。会议决定，2023年第三季度GDP增长6.5%。", 20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		s.Cut(text)
	}
}

// TestRouteTieGoesToLongerWord: with 甲 6, 乙 6, 甲乙 2 and 丙 4 (total 18) the two routes over 甲乙 have exactly
// equal log probabilities (log 6 - log 18 twice, log 2 - log 18 once); jieba's max over (prob, end) tuples picks
// the later end, the word 甲乙. jieba 0.42.1 with this dictionary cuts "丙甲乙" into 丙/甲乙.
func TestRouteTieGoesToLongerWord(t *testing.T) {
	gz := func(s string) *bytes.Reader {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return bytes.NewReader(b.Bytes())
	}
	s, err := Load(gz("甲 6\n乙 6\n甲乙 2\n丙 4\n"), gz("S 甲 -1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Cut("丙甲乙"); !slices.Equal(got, []string{"丙", "甲乙"}) {
		t.Fatalf("got %q", got)
	}
}
