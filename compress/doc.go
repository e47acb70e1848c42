// Package compress implements the KV-cache policies of docs/policies.md: policy spec strings, the
// static per-sequence layout (Plan), SnapKV top-K selection (SelectTopK), the slot bookkeeping that
// drives the attention mask (Slots) and KV memory accounting (KVBytes, Policy.KVBytes). It holds no model code.
//
// # Policies
//
//	full                                   capacity prompt + max_new, everything kept
//	streaming:sinks=S,recent=R             capacity S + R: sinks + ring of the R most recent tokens
//	snapkv:topk=K,window=W,kernel=k        capacity K + W + max_new: top-K of the prompt before the window,
//	                                       the window, decoded tokens appended and never evicted
//	snapstream:budget=B                    capacity B = S + K + R (defaults S=4, R=B/2, K=B-S-R, W=32, k=5)
//	snapstream:sinks=S,recent=R,topk=K,window=W,kernel=k[,adaptive=true]
//	knorm:budget=B                         capacity B + max_new: the B prompt keys of lowest L2 norm per layer
//	                                       and KV head (attention-free), decoded tokens appended
//	kvquant:bits=B[,group=G]               capacity prompt + max_new: the full cache with keys (per channel) and
//	                                       values (per token) quantized on write to B = 8, 4 or 2 bits in groups
//	                                       of G (default 32), KIVI-style (package compress/kvquant); KVBytes
//	                                       counts the packed size (Policy.KVBytes)
//	h2o:budget=B[,recent=R]                capacity B: heavy hitters by accumulated attention and the R most
//	                                       recent tokens; one eviction per decode step once full (Evictor)
//	tova:budget=B                          capacity B: the slot of lowest attention of the current query (group
//	                                       mean) evicted per decode step once full (Evictor)
//	pyramidkv:budget=B[,base=snapstream]   snapkv's (or snapstream's) layout with per-layer top-K decreasing
//	                                       with depth, same total (Plan.Layers, PyramidTopK)
//	adakv:budget=B[,base=snapstream]       snapkv's (or snapstream's) layout with per-head top-K from the
//	                                       layer's pooled scores, same total (SelectAdaKV, Plan.HeadPlan)
//
// streaming and snapstream take rerotate=true: the same slots, but during decode every held key is rotated
// for its rank among the held positions and the query for the last rank (StreamingLLM's original positions
// inside the cache; docs/policies.md §14). Without it keys keep their original absolute positions.
//
// Any spec may end in "@int8" (Policy.Weights): the same cache policy, run on int8 weights by a backend
// that can (the CPU backend quantizes its model); it changes nothing in this package's plans. Quantized weights
// (@int8) and a quantized cache (kvquant) are separate concepts and compose ("kvquant:bits=4@int8").
//
// # Layout
//
// Every layer and KV head of a sequence owns Capacity slots, fixed at admission. Keys are cached after
// RoPE at their original absolute position and never moved. For snapstream and streaming (docs/policies.md §6):
//
//	slot:     0 .. S-1   S .. S+R-1                     S+R .. S+R+K-1
//	        +----------+-------------------------------+----------------------------+
//	        |  sinks   |  ring: slot(p) = S+(p-S)%R    |  top-K, ascending position |
//	        +----------+-------------------------------+----------------------------+
//	holds:   0 .. S-1    the R most recent positions     SnapKV picks from [S, L-R)
//
// The prompt 0..L-1 is partitioned into sinks [0, Lo), candidates [Lo, Hi) and ring [Hi, L) with
// Lo = min(S, L) and Hi = max(Lo, L-R). The ring is written with the same formula at prefill and during
// decode, so the first decoded token (p = L) overwrites the oldest ring entry. Sinks and top-K never
// change during decode; unused top-K slots stay masked (Pos = -1) unless adaptive gives them to the ring.
//
// snapkv uses the same layout with S = 0 and the observation window as the "ring" block (slot p % W, never
// overwritten), followed by an append block for the decoded tokens:
//
//	[ window: W | top-K: K | decoded: max_new ]     decoded token p goes to W + K + (p - L)
//
// full is all sinks: slot(p) = p for p < prompt + max_new.
//
// # Use
//
// A backend parses the request's policy once (Parse), lays out each sequence at admission
// (Policy.Plan), allocates Capacity slots per layer and KV head, and at the end of prefill calls
// SelectTopK per layer (when Plan.NeedScores) and Slots.Prefill per layer and KV head to learn where to
// copy each kept prompt K/V. Each decoded token goes to Slots.Decode(p); attention covers the slots whose
// Slots.Pos is not -1.
//
// The per-layer and per-head allocations (pyramidkv, adakv) take each layer's plan from Plan.Layers and, for
// adakv, each KV head's from Plan.HeadPlan with the counts SelectAdaKV chose; their capacities differ between
// layers and heads but sum to layers x KV heads x Plan.Capacity. The decode-time eviction policies (h2o, tova;
// Plan.Evict) keep one Evictor per layer and KV head instead of Slots: PromptScores and Evictor.Prefill at the
// end of prefill, then per step Evictor.Decode(p) before the forward pass and Evictor.Observe with the step's
// post-softmax attention weights after it.
package compress
