package workers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"time"
)

// stateSecret names the HMAC key of OAuth states in the store; it is made
// once per database file and never leaves the workers.
const (
	stateSecret    = "oauth_state_hmac"
	stateSecretLen = 32
)

// stateSigner issues and checks OAuth states. A state is
// "<next>.<expiry>.<nonce>.<mac>": next is "b" (bind page) or "s" (scan
// page), expiry is Unix seconds in base 36, nonce 9 random bytes and mac the
// first 16 bytes of HMAC-SHA256 over the rest, all URL-safe (about 48
// bytes; WeChat allows 128). Issuing one writes nothing: the workers know a
// state is theirs, for which page and until when, from the state alone. It
// is immutable and safe for concurrent use.
type stateSigner struct{ key []byte }

func (k stateSigner) mac(payload string) string {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte("wxscan oauth state v1\x00"))
	h.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// issue returns a fresh state for next ("bind" or "scan") valid until expires.
func (k stateSigner) issue(next string, expires time.Time) string {
	p := "b"
	if next == nextScan {
		p = "s"
	}
	nonce := make([]byte, 9)
	if _, err := rand.Read(nonce); err != nil {
		panic("workers: crypto/rand: " + err.Error())
	}
	payload := p + "." + strconv.FormatInt(expires.Unix(), 36) + "." + base64.RawURLEncoding.EncodeToString(nonce)
	return payload + "." + k.mac(payload)
}

// verify checks that state was issued with this key and returns its page
// and expiry; ok is false for anything else (forged, altered, truncated,
// too long). It does not check the expiry.
func (k stateSigner) verify(state string) (next string, expires time.Time, ok bool) {
	if len(state) > maxTokenLen {
		return "", time.Time{}, false
	}
	i := strings.LastIndexByte(state, '.')
	if i < 0 || !hmac.Equal([]byte(state[i+1:]), []byte(k.mac(state[:i]))) {
		return "", time.Time{}, false
	}
	parts := strings.Split(state[:i], ".")
	if len(parts) != 3 {
		return "", time.Time{}, false
	}
	switch parts[0] {
	case "b":
		next = nextBind
	case "s":
		next = nextScan
	default:
		return "", time.Time{}, false
	}
	sec, err := strconv.ParseInt(parts[1], 36, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return next, time.Unix(sec, 0).UTC(), true
}

// keyedMutex serialises work per key (here: per OAuth code, so that
// WeChat's double redirect with one code is answered from the first one's
// record and not by a second exchange, which WeChat would refuse). Entries
// live only while locked or awaited.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
