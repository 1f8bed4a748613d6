package callback

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"
)

// replayGuard remembers, per (timestamp, nonce), the hash of the first body
// accepted with them, for as long as that timestamp is inside the window. In
// plaintext and compatible mode the signature covers the timestamp and nonce
// but not the body, so a captured query could carry any body; WeChat's own
// retries carry the same body. It is safe for concurrent use: the entries
// are spread over shards, each with its own lock, so requests rarely wait
// for one another. Its size is bounded by the request rate times twice the
// skew: an entry is dropped once its timestamp has left the window.
type replayGuard struct {
	seed   maphash.Seed
	skew   int64 // seconds
	shards [replayShards]replayShard
}

const replayShards = 64

// reasonReplay labels a refused replay in wxscan_callback_verify_failures_total.
const reasonReplay = "replay"

// An entry holds no pointer, so the collector never scans the maps (at
// 2,000 plaintext requests/s the window holds over a million entries): the
// key is a seeded 64-bit hash of the timestamp and nonce (two pairs share
// one with odds of about one in 10^13 for a million entries, and then the
// second is refused only if its body differs), the body's SHA-256 is kept
// to 128 bits, which a replay cannot match with another body.
type replayEntry struct {
	body    [16]byte
	expires int64 // unix seconds: the timestamp plus the skew
}

type replayShard struct {
	mu        sync.Mutex
	m         map[uint64]replayEntry
	nextSweep int64
}

func newReplayGuard(skew time.Duration) *replayGuard {
	g := &replayGuard{seed: maphash.MakeSeed(), skew: int64(skew / time.Second)}
	if g.skew < 1 {
		g.skew = 1
	}
	for i := range g.shards {
		g.shards[i].m = map[uint64]replayEntry{}
	}
	return g
}

// admit reports whether body may be accepted with timestamp ts and nonce at
// now: true when the pair is new (it is then remembered with body) or was
// accepted with the same body before; false when it came with another body.
func (g *replayGuard) admit(ts int64, nonce string, body []byte, now time.Time) bool {
	full := sha256.Sum256(body)
	sum := [16]byte(full[:16])
	var h maphash.Hash
	h.SetSeed(g.seed)
	var tb [8]byte
	binary.LittleEndian.PutUint64(tb[:], uint64(ts))
	h.Write(tb[:])
	h.WriteString(nonce)
	k := h.Sum64()
	sh := &g.shards[k%replayShards]
	sec := now.Unix()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sec >= sh.nextSweep {
		for key, e := range sh.m {
			if e.expires < sec {
				delete(sh.m, key)
			}
		}
		// Sweeping every quarter of the skew keeps expired entries to a
		// quarter more than the live ones, at O(1) amortised per request.
		sh.nextSweep = sec + max(g.skew/4, 1)
	}
	if e, ok := sh.m[k]; ok && e.expires >= sec {
		return e.body == sum
	}
	sh.m[k] = replayEntry{body: sum, expires: ts + g.skew}
	return true
}

// size is the number of remembered pairs (for tests).
func (g *replayGuard) size() int {
	n := 0
	for i := range g.shards {
		g.shards[i].mu.Lock()
		n += len(g.shards[i].m)
		g.shards[i].mu.Unlock()
	}
	return n
}
