package chat

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapeval/snapeval/chat/jinja"
	"github.com/snapeval/snapeval/chat/jinja/jinjatest"
)

var update = flag.Bool("update", false, "re-render the golden files with Python's Jinja2 (tools/chattemplates/render.py)")

type corpusEntry struct {
	File    string         `json:"file"`
	Model   string         `json:"model"`
	Source  string         `json:"source"`
	Licence string         `json:"licence"`
	Tokens  map[string]any `json:"tokens"`
}

type goldenRender struct {
	Conversation string  `json:"conversation"`
	Rendered     *string `json:"rendered"`
	Error        string  `json:"error"`
	ErrorType    string  `json:"error_type"`
	ErrorLine    int     `json:"error_line"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// conversations reads testdata/conversations.json: each conversation's name and its Conversation (object
// keys in document order, as Python's json.load keeps them).
func conversations(t *testing.T) ([]string, []Conversation) {
	t.Helper()
	var raw []json.RawMessage
	readJSON(t, filepath.Join("testdata", "conversations.json"), &raw)
	var names []string
	var convs []Conversation
	for _, r := range raw {
		var head struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(r, &head); err != nil {
			t.Fatal(err)
		}
		c, err := ParseConversation(withoutName(t, r))
		if err != nil {
			t.Fatalf("conversation %s: %v", head.Name, err)
		}
		names = append(names, head.Name)
		convs = append(convs, c)
	}
	return names, convs
}

// withoutName removes the top-level "name" field of a conversation object, keeping the rest verbatim.
func withoutName(t *testing.T, r json.RawMessage) []byte {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(r)))
	var fields []string
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		t.Fatalf("conversation is not an object: %s", r)
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			t.Fatal(err)
		}
		if kt.(string) == "name" {
			continue
		}
		k, _ := json.Marshal(kt.(string))
		fields = append(fields, string(k)+":"+string(val))
	}
	return []byte("{" + strings.Join(fields, ",") + "}")
}

// check compares one render with the golden one; "" when they agree.
func check(g goldenRender, got string, err error) string {
	golden := jinjatest.Golden{Rendered: g.Rendered, Error: g.Error, ErrorType: g.ErrorType, ErrorLine: g.ErrorLine}
	var refused *RefusedError
	if errors.As(err, &refused) {
		err = &jinja.Error{Kind: jinja.KindRaise, Msg: refused.Message}
	}
	return golden.Check(got, err)
}

// TestCorpus renders every real template of testdata/templates with every conversation of
// testdata/conversations.json and compares each render, byte for byte, with the one Python's Jinja2
// produced as transformers configures it (testdata/renders, written by tools/chattemplates/render.py).
// A template this engine cannot parse fails the test with the construct it lacks.
func TestCorpus(t *testing.T) {
	if *update {
		cmd := exec.Command("python3", filepath.Join("..", "tools", "chattemplates", "render.py"))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("-update needs python3 with Jinja2 (apt-get install python3-jinja2): %v", err)
		}
	}
	var entries []corpusEntry
	readJSON(t, filepath.Join("testdata", "templates.json"), &entries)
	names, convs := conversations(t)
	renders := 0
	for _, e := range entries {
		t.Run(strings.TrimSuffix(e.File, ".jinja"), func(t *testing.T) {
			var golden struct {
				Template string         `json:"template"`
				Renders  []goldenRender `json:"renders"`
			}
			readJSON(t, filepath.Join("testdata", "renders", strings.TrimSuffix(e.File, ".jinja")+".json"), &golden)
			if len(golden.Renders) != len(convs) {
				t.Fatalf("%d goldens for %d conversations: run go test -update", len(golden.Renders), len(convs))
			}
			text, err := os.ReadFile(filepath.Join("testdata", "templates", e.File))
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := New(e.File, string(text), e.Tokens)
			if err != nil {
				t.Fatalf("template refused: %v", err)
			}
			tmpl.Now = func() time.Time { return jinjatest.Clock }
			for i, g := range golden.Renders {
				if g.Conversation != names[i] {
					t.Fatalf("golden %d is %s, conversation %s: run go test -update", i, g.Conversation, names[i])
				}
				got, err := tmpl.Render(convs[i])
				if diff := check(g, got, err); diff != "" {
					t.Errorf("conversation %s: %s", names[i], diff)
				}
				renders++
			}
		})
	}
	t.Logf("%d templates x %d conversations: %d renders compared", len(entries), len(convs), renders)
}

// TestBuiltinsAreModelTemplates checks that the built-in styles are the models' templates of the corpus,
// byte for byte (generic ChatML excepted: it is checked by TestStyles).
func TestBuiltinsAreModelTemplates(t *testing.T) {
	for style, file := range map[string]string{
		"qwen2.5":     "Qwen-Qwen2.5-7B-Instruct.jinja",
		"smollm2":     "HuggingFaceTB-SmolLM2-135M-Instruct.jinja",
		"llama3":      "meta-llama-Meta-Llama-3-8B-Instruct.jinja",
		"llama3.1":    "meta-llama-Llama-3.1-8B-Instruct.jinja",
		"deepseek-r1": "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
	} {
		b, err := Builtin(style, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", "templates", file))
		if err != nil {
			t.Fatal(err)
		}
		if b.Text != string(want) {
			t.Errorf("built-in %s differs from %s", style, file)
		}
	}
}
