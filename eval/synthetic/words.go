package synthetic

// The word lists below are ours: plain English words picked for this suite. The haystack, the needle keys,
// the common-word lists and the variable names are all drawn from them, so the suite needs no third-party text.
// None of them contains a digit, so every number in a prompt belongs to a needle.

var adjectives = []string{
	"ancient", "bright", "calm", "careful", "cheerful", "clever", "cold", "crooked", "curious", "damp",
	"dark", "deep", "distant", "dry", "dusty", "eager", "early", "empty", "faint", "famous",
	"fierce", "flat", "fresh", "frozen", "gentle", "giant", "golden", "grand", "green", "grey",
	"hidden", "hollow", "honest", "humble", "icy", "idle", "kind", "late", "lazy", "little",
	"lively", "lonely", "loud", "lucky", "misty", "modest", "narrow", "noble", "odd", "old",
	"orange", "pale", "patient", "plain", "polite", "proud", "purple", "quick", "quiet", "rapid",
	"rare", "red", "rich", "rough", "round", "rusty", "sandy", "scarlet", "secret", "sharp",
	"shiny", "silent", "silver", "simple", "sleepy", "slow", "small", "smooth", "soft", "solid",
	"sour", "steady", "steep", "still", "stormy", "strange", "strong", "sunny", "sweet", "swift",
	"tall", "tame", "tender", "thin", "tidy", "tiny", "warm", "wild", "wise", "young",
}

var nouns = []string{
	"anchor", "apple", "arrow", "badger", "barn", "basket", "beacon", "bell", "bench", "bird",
	"blanket", "boat", "bottle", "bridge", "brook", "bucket", "cabin", "camel", "candle", "canyon",
	"castle", "cat", "cellar", "chair", "cliff", "cloud", "coat", "comet", "compass", "cottage",
	"crane", "crow", "desert", "dragon", "drum", "eagle", "falcon", "feather", "fence", "fern",
	"field", "flute", "forest", "fountain", "fox", "garden", "gate", "glacier", "goat", "harbor",
	"hill", "horse", "island", "jacket", "kettle", "lake", "lamp", "lantern", "ledger", "lemon",
	"lion", "marble", "meadow", "mirror", "mill", "moon", "mountain", "needle", "nest", "oak",
	"ocean", "orchard", "otter", "owl", "palace", "parrot", "pebble", "pepper", "piano", "pillow",
	"pine", "planet", "pond", "pony", "rabbit", "raven", "ribbon", "river", "road", "rocket",
	"saddle", "sail", "scarf", "shell", "ship", "shovel", "spoon", "star", "stone", "storm",
	"sword", "table", "teapot", "temple", "thistle", "tiger", "tower", "train", "tulip", "tunnel",
	"turtle", "valley", "violin", "wagon", "wall", "whale", "willow", "window", "wizard", "wolf",
}

var verbs = []string{
	"admired", "avoided", "built", "carried", "chased", "cleaned", "crossed", "described", "drew", "watched",
	"followed", "found", "guarded", "helped", "hid", "visited", "lifted", "moved", "noticed", "opened",
	"painted", "passed", "praised", "pulled", "pushed", "reached", "remembered", "repaired", "sold", "shared",
	"showed", "studied", "touched", "traded", "bought", "washed", "welcomed", "wrapped", "measured", "counted",
}

var adverbs = []string{
	"slowly", "quickly", "quietly", "gladly", "often", "rarely", "calmly", "boldly", "softly", "gently",
	"eagerly", "loudly", "proudly", "warmly", "wisely", "barely", "nearly", "kindly", "firmly", "lazily",
}

var preps = []string{
	"near", "behind", "beside", "under", "over", "across", "along", "past", "around", "beyond",
	"inside", "outside", "toward", "below", "above",
}

var names = []string{
	"Ada", "Basil", "Clara", "Dmitri", "Elena", "Felix", "Greta", "Hugo", "Iris", "Jonas",
	"Kira", "Leo", "Mira", "Nico", "Olga", "Pavel", "Rosa", "Soren", "Tara", "Ulric",
	"Vera", "Wendel", "Yara", "Zeno",
}

var timesOfDay = []string{
	"in the morning", "at noon", "in the evening", "at night", "at dawn", "at dusk", "in winter", "in summer",
	"in spring", "in autumn", "after the rain", "before the festival",
}
