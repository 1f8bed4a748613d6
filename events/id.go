package events

import (
	"crypto/rand"
	"encoding/hex"
)

// RandomHex returns n bytes from crypto/rand as 2n lower-case hex digits:
// wxscan's one helper for random ids and tokens (OAuth states, session
// tokens, request ids, run ids, echo strings). It lives here because every
// other package may import events. It is safe for concurrent use and never
// fails: since Go 1.24 crypto/rand.Read does not return an error (the
// program stops when the system has no randomness).
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
