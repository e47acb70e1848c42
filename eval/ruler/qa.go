package ruler

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/snapeval/snapeval/internal/pyrand"
)

// QA is one question of qa.py's QAS: the query, its answers and the documents (indices into QASet.Docs) that
// hold the answer (Context) or share its article (More, SQuAD only).
type QA struct {
	Query   string
	Outputs []string
	Context []int
	More    []int
}

// QASet is qa.py's (QAS, DOCS): questions in file order and the sorted, de-duplicated documents.
type QASet struct {
	QAs  []QA
	Docs []string
}

func docIndex(docs []string) map[string]int {
	m := make(map[string]int, len(docs))
	for i, d := range docs {
		m[d] = i
	}
	return m
}

// squadParagraph is a paragraph of SQuAD v2's official JSON (dev-v2.0.json).
type squadParagraph struct {
	Context string `json:"context"`
	QAs     []struct {
		Question     string `json:"question"`
		IsImpossible bool   `json:"is_impossible"`
		Answers      []struct {
			Text string `json:"text"`
		} `json:"answers"`
	} `json:"qas"`
}

// squadArticle groups paragraphs as the official JSON does.
type squadArticle struct {
	Title      string           `json:"title"`
	Paragraphs []squadParagraph `json:"paragraphs"`
}

// buildSquad is read_squad: every paragraph context is a document; each answerable question keeps its own
// paragraph and, as "more", the other paragraphs of its article.
func buildSquad(articles []squadArticle) (*QASet, error) {
	var all []string
	for _, a := range articles {
		for _, p := range a.Paragraphs {
			all = append(all, p.Context)
		}
	}
	set := &QASet{Docs: sortedUnique(all)}
	idx := docIndex(set.Docs)
	for _, a := range articles {
		var more []int
		for _, p := range a.Paragraphs {
			more = append(more, idx[p.Context])
		}
		for _, p := range a.Paragraphs {
			own := idx[p.Context]
			for _, q := range p.QAs {
				if q.IsImpossible {
					continue
				}
				qa := QA{Query: q.Question, Context: []int{own}}
				for _, ans := range q.Answers {
					qa.Outputs = append(qa.Outputs, ans.Text)
				}
				for _, m := range more {
					if m != own {
						qa.More = append(qa.More, m)
					}
				}
				if qa.Outputs == nil {
					qa.Outputs = []string{}
				}
				set.QAs = append(set.QAs, qa)
			}
		}
	}
	if len(set.QAs) == 0 {
		return nil, fmt.Errorf("no answerable question")
	}
	return set, nil
}

// squadRow is a row of the Hub's rajpurkar/squad_v2 parquet (one row per question).
type squadRow struct {
	ID       string `parquet:"id"`
	Title    string `parquet:"title"`
	Context  string `parquet:"context"`
	Question string `parquet:"question"`
	Answers  struct {
		Text        []string `parquet:"text,list"`
		AnswerStart []int32  `parquet:"answer_start,list"`
	} `parquet:"answers"`
}

// squadFromRows regroups the Hub's question rows into articles and paragraphs (consecutive rows of one title are
// an article, consecutive rows of one context a paragraph); a question without answers is SQuAD v2's
// is_impossible.
func squadFromRows(rows []squadRow) []squadArticle {
	var arts []squadArticle
	for i, r := range rows {
		if i == 0 || r.Title != rows[i-1].Title {
			arts = append(arts, squadArticle{Title: r.Title})
		}
		a := &arts[len(arts)-1]
		if len(a.Paragraphs) == 0 || r.Context != rows[i-1].Context || i == 0 || r.Title != rows[i-1].Title {
			a.Paragraphs = append(a.Paragraphs, squadParagraph{Context: r.Context})
		}
		p := &a.Paragraphs[len(a.Paragraphs)-1]
		q := struct {
			Question     string `json:"question"`
			IsImpossible bool   `json:"is_impossible"`
			Answers      []struct {
				Text string `json:"text"`
			} `json:"answers"`
		}{Question: r.Question, IsImpossible: len(r.Answers.Text) == 0}
		for _, t := range r.Answers.Text {
			q.Answers = append(q.Answers, struct {
				Text string `json:"text"`
			}{t})
		}
		p.QAs = append(p.QAs, q)
	}
	return arts
}

// hotpotRow is one question of HotpotQA's official dev JSON (hotpot_dev_distractor_v1.json): context is a list
// of [title, [sentences]] pairs.
type hotpotRow struct {
	Question string              `json:"question"`
	Answer   string              `json:"answer"`
	Context  [][]json.RawMessage `json:"context"`
}

// hotpotParquet is a row of the Hub's hotpotqa/hotpot_qa distractor parquet.
type hotpotParquet struct {
	ID       string `parquet:"id"`
	Question string `parquet:"question"`
	Answer   string `parquet:"answer"`
	Context  struct {
		Title     []string   `parquet:"title,list"`
		Sentences [][]string `parquet:"sentences,list"`
	} `parquet:"context"`
}

type hotpotQ struct {
	Question, Answer string
	Titles           []string
	Sentences        [][]string
}

// buildHotpot is read_hotpotqa: a document is "title\n" + the sentences joined with nothing.
func buildHotpot(qs []hotpotQ) (*QASet, error) {
	doc := func(t string, s []string) string { return t + "\n" + strings.Join(s, "") }
	var all []string
	for _, q := range qs {
		for i, t := range q.Titles {
			all = append(all, doc(t, q.Sentences[i]))
		}
	}
	set := &QASet{Docs: sortedUnique(all)}
	idx := docIndex(set.Docs)
	for _, q := range qs {
		qa := QA{Query: q.Question, Outputs: []string{q.Answer}}
		for i, t := range q.Titles {
			qa.Context = append(qa.Context, idx[doc(t, q.Sentences[i])])
		}
		set.QAs = append(set.QAs, qa)
	}
	if len(set.QAs) == 0 {
		return nil, fmt.Errorf("no question")
	}
	return set, nil
}

// LoadSquad reads SQuAD v2 dev as RULER's json/squad.json (the official dev-v2.0.json) or as the Hub's parquet.
func LoadSquad(path string) (*QASet, error) {
	var arts []squadArticle
	if strings.HasSuffix(path, ".parquet") {
		rows, err := readParquet[squadRow](path)
		if err != nil {
			return nil, err
		}
		arts = squadFromRows(rows)
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Data []squadArticle `json:"data"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		arts = doc.Data
	}
	set, err := buildSquad(arts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// LoadHotpot reads HotpotQA dev distractor as RULER's json/hotpotqa.json (the official file) or as the Hub's parquet.
func LoadHotpot(path string) (*QASet, error) {
	var qs []hotpotQ
	if strings.HasSuffix(path, ".parquet") {
		rows, err := readParquet[hotpotParquet](path)
		if err != nil {
			return nil, err
		}
		for i, r := range rows {
			if len(r.Context.Title) != len(r.Context.Sentences) {
				return nil, fmt.Errorf("%s: row %d: context has %d titles and %d sentence lists", path, i+1, len(r.Context.Title), len(r.Context.Sentences))
			}
			qs = append(qs, hotpotQ{r.Question, r.Answer, r.Context.Title, r.Context.Sentences})
		}
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var rows []hotpotRow
		if err := json.Unmarshal(b, &rows); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for i, r := range rows {
			q := hotpotQ{Question: r.Question, Answer: r.Answer}
			for j, pair := range r.Context {
				var t string
				var s []string
				if len(pair) != 2 || json.Unmarshal(pair[0], &t) != nil || json.Unmarshal(pair[1], &s) != nil {
					return nil, fmt.Errorf("%s: element %d: context[%d] is not [title, [sentences]]", path, i, j)
				}
				q.Titles = append(q.Titles, t)
				q.Sentences = append(q.Sentences, s)
			}
			qs = append(qs, q)
		}
	}
	set, err := buildHotpot(qs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

func readParquet[T any](path string) (out []T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: corrupt parquet: %v", path, p)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	buf := make([]T, 256)
	for {
		n, rerr := r.Read(buf)
		out = append(out, buf[:n]...)
		if rerr != nil {
			if rerr.Error() == "EOF" {
				return out, nil
			}
			return nil, fmt.Errorf("%s: row %d: %w", path, len(out)+1, rerr)
		}
		if n == 0 {
			return out, nil
		}
	}
}

// ---- generator ----

func (g *gen) qaInputOutput(index, numDocs int) (string, []string, error) {
	q := g.qa.QAs[index]
	docs := g.qa.Docs
	var all []int
	if numDocs < len(docs) {
		if numDocs-len(q.Context) > len(q.More) {
			excluded := map[int]bool{}
			for _, i := range q.Context {
				excluded[i] = true
			}
			for _, i := range q.More {
				excluded[i] = true
			}
			addition := make([]int, 0, len(docs))
			for i := range docs {
				if !excluded[i] {
					addition = append(addition, i)
				}
			}
			k := max(0, numDocs-len(q.Context)-len(q.More))
			if k > len(addition) {
				return "", nil, fmt.Errorf("%w: sample larger than population", errRetry)
			}
			all = append(append(slices.Clone(q.Context), q.More...), pick(addition, g.rng.Sample(len(addition), k))...)
		} else {
			k := numDocs - len(q.Context)
			if k < 0 || k > len(q.More) {
				return "", nil, fmt.Errorf("%w: sample larger than population or is negative", errRetry)
			}
			all = append(slices.Clone(q.Context), pick(q.More, g.rng.Sample(len(q.More), k))...)
		}
	} else {
		for len(all) < numDocs {
			for i := range docs {
				if len(all) == numDocs {
					break
				}
				all = append(all, i)
			}
		}
	}
	pyrand.New(g.Seed).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var b strings.Builder
	for i, d := range all {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "Document %d:\n%s", i+1, docs[d])
	}
	text, err := pyFormat(g.template, map[string]string{"context": b.String(), "query": q.Query})
	return text, q.Outputs, err
}

func pick(xs, idx []int) []int {
	out := make([]int, len(idx))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

func (g *gen) qaSamples() ([]Sample, error) {
	switch g.Task.Dataset {
	case "squad":
		g.qa = g.Src.squad()
	case "hotpotqa":
		g.qa = g.Src.hotpot()
	}
	if g.qa == nil {
		return nil, fmt.Errorf("the %s data is missing (see `snapeval data pull ruler`)", g.Task.Dataset)
	}
	if g.N > len(g.qa.QAs) {
		return nil, fmt.Errorf("%d samples asked, the %s set has %d questions", g.N, g.Task.Dataset, len(g.qa.QAs))
	}
	ttg, inc := g.Task.TokensToGenerate(), 10
	probe := func(n int) (string, error) {
		s, _, err := g.qaInputOutput(0, n)
		return s, err
	}
	best, err := estimateSize(inc, g.MaxSeq, probe, g.count, ttg)
	if err != nil {
		return nil, err
	}
	var out []Sample
	for i := range g.N {
		var answer []string
		text, length, err := fit(best, inc, g.MaxSeq, func(n int) (string, int, error) {
			s, a, err := g.qaInputOutput(i, n)
			if err != nil {
				return "", 0, err
			}
			answer = a
			return s, g.count(s) + ttg, nil
		})
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		in, prefix := g.finish(text)
		out = append(out, Sample{Task: g.Task.Name, MaxSeq: g.MaxSeq, N: i, Depth: -1, Row: Row{
			Index: i, Input: in, Outputs: slices.Clone(answer), Length: length, LengthWithMT: length, AnswerPrefix: prefix}})
	}
	return out, nil
}

func (s *Sources) squad() *QASet {
	if s == nil {
		return nil
	}
	return s.Squad
}

func (s *Sources) hotpot() *QASet {
	if s == nil {
		return nil
	}
	return s.Hotpot
}
