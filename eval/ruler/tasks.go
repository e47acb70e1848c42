package ruler

// Family is the generator script a task runs (RULER's scripts/data/synthetic/<family>.py).
type Family string

// Families.
const (
	FamilyNIAH Family = "niah"
	FamilyVT   Family = "variable_tracking"
	FamilyCWE  Family = "common_words_extraction"
	FamilyFWE  Family = "freq_words_extraction"
	FamilyQA   Family = "qa"
)

// Task is one entry of RULER's scripts/synthetic.yaml with the arguments it passes to its generator.
type Task struct {
	Name   string
	Family Family
	// niah
	Haystack         string // noise, essay or needle
	NeedleK, NeedleV string // numbers, words or uuids
	NumK, NumV, NumQ int
	// variable_tracking
	Chains, Hops int
	// common_words_extraction
	FreqCW, FreqUCW, NumCW int
	// freq_words_extraction
	Alpha float64
	// qa
	Dataset string // squad or hotpotqa
}

// Tasks are the 13 tasks of scripts/synthetic.yaml, in the order of scripts/config_tasks.sh.
var Tasks = []Task{
	{Name: "niah_single_1", Family: FamilyNIAH, Haystack: "noise", NeedleK: "words", NeedleV: "numbers", NumK: 1, NumV: 1, NumQ: 1},
	{Name: "niah_single_2", Family: FamilyNIAH, Haystack: "essay", NeedleK: "words", NeedleV: "numbers", NumK: 1, NumV: 1, NumQ: 1},
	{Name: "niah_single_3", Family: FamilyNIAH, Haystack: "essay", NeedleK: "words", NeedleV: "uuids", NumK: 1, NumV: 1, NumQ: 1},
	{Name: "niah_multikey_1", Family: FamilyNIAH, Haystack: "essay", NeedleK: "words", NeedleV: "numbers", NumK: 4, NumV: 1, NumQ: 1},
	{Name: "niah_multikey_2", Family: FamilyNIAH, Haystack: "needle", NeedleK: "words", NeedleV: "numbers", NumK: 1, NumV: 1, NumQ: 1},
	{Name: "niah_multikey_3", Family: FamilyNIAH, Haystack: "needle", NeedleK: "uuids", NeedleV: "uuids", NumK: 1, NumV: 1, NumQ: 1},
	{Name: "niah_multivalue", Family: FamilyNIAH, Haystack: "essay", NeedleK: "words", NeedleV: "numbers", NumK: 1, NumV: 4, NumQ: 1},
	{Name: "niah_multiquery", Family: FamilyNIAH, Haystack: "essay", NeedleK: "words", NeedleV: "numbers", NumK: 1, NumV: 1, NumQ: 4},
	{Name: "vt", Family: FamilyVT, Haystack: "noise", Chains: 1, Hops: 4},
	{Name: "cwe", Family: FamilyCWE, FreqCW: 30, FreqUCW: 3, NumCW: 10},
	{Name: "fwe", Family: FamilyFWE, Alpha: 2.0},
	{Name: "qa_1", Family: FamilyQA, Dataset: "squad"},
	{Name: "qa_2", Family: FamilyQA, Dataset: "hotpotqa"},
}

// TaskByName returns the task named name.
func TaskByName(name string) (Task, bool) {
	for _, t := range Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return Task{}, false
}

// familySpec is an entry of scripts/data/synthetic/constants.py: generation budget, template and answer prefix.
type familySpec struct {
	TokensToGenerate int
	Template         string
	AnswerPrefix     string
	// MatchAll selects string_match_all (else string_match_part), per scripts/eval/synthetic/constants.py.
	MatchAll bool
}

var families = map[Family]familySpec{
	FamilyNIAH: {
		TokensToGenerate: 128,
		Template:         "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the provided text?",
		AnswerPrefix:     " The special magic {type_needle_v} for {query} mentioned in the provided text are",
		MatchAll:         true,
	},
	FamilyVT: {
		TokensToGenerate: 30,
		Template:         "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find all variables that are assigned the value {query} in the text above.",
		AnswerPrefix:     " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assigned the value {query}, they are: ",
		MatchAll:         true,
	},
	FamilyCWE: {
		TokensToGenerate: 120,
		Template:         "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?",
		AnswerPrefix:     " Answer: The top 10 words that appear most often in the list are:",
		MatchAll:         true,
	},
	FamilyFWE: {
		TokensToGenerate: 50,
		Template:         "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?",
		AnswerPrefix:     " Answer: According to the coded text above, the three most frequently appeared words are:",
		MatchAll:         true,
	},
	FamilyQA: {
		TokensToGenerate: 32,
		Template:         "Answer the question based on the given documents. Only give me the answer and do not output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}",
		AnswerPrefix:     " Answer:",
	},
}

// TokensToGenerate is the task's generation budget (tokens_to_generate in RULER's constants.py).
func (t Task) TokensToGenerate() int { return families[t.Family].TokensToGenerate }

// ModelTemplates are RULER's scripts/data/template.py: the model-family wrappers around a task template.
var ModelTemplates = map[string]string{
	"base":               "{task_template}",
	"meta-chat":          "[INST] {task_template} [/INST]",
	"vicuna-chat":        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: {task_template} ASSISTANT:",
	"lwm-chat":           "You are a helpful assistant. USER: {task_template} ASSISTANT: ",
	"command-r-chat":     "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|USER_TOKEN|>{task_template}<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
	"chatglm-chat":       "[gMASK]sop<|user|> \n {task_template}<|assistant|> \n ",
	"RWKV":               "User: hi\n\nAssistant: Hi. I am your assistant and I will provide expert full response in full details. Please feel free to ask any question and I will always answer it\n\nUser: {task_template}\n\nAssistant:",
	"Phi3":               "<|user|>\n{task_template}<|end|>\n<|assistant|>\n",
	"meta-llama3":        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{task_template}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
	"jamba":              "<|startoftext|><|bom|><|system|> <|eom|><|bom|><|user|> {task_template}<|eom|><|bom|><|assistant|>",
	"nemotron5-instruct": "<SPECIAL_10>System\n\n<SPECIAL_11>User\n{task_template}\n<SPECIAL_11>Assistant\n",
}

// fullTemplate is what prepare.py passes to a generator as --template: the model template around the task
// template, then the answer prefix.
func fullTemplate(f Family, model string) (string, error) {
	spec := families[f]
	mt, ok := ModelTemplates[model]
	if !ok {
		return "", errUnknownTemplate(model)
	}
	s, err := pyFormat(mt, map[string]string{"task_template": spec.Template})
	if err != nil {
		return "", err
	}
	return s + spec.AnswerPrefix, nil
}
