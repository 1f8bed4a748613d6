package callback

import (
	"net/url"
	"os"
	"strings"
)

// The query parameters a push or URL check carries, as pushQuery indexes.
const (
	qSignature = iota
	qTimestamp
	qNonce
	qEncryptType
	qMsgSignature
	qEchostr
	numQuery
)

var queryNames = [numQuery]string{"signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "echostr"}

// pushQuery holds the parameters of a callback URL's query that the
// handler reads, indexed by the q constants.
type pushQuery [numQuery]string

// readPushQuery reads the parameters a push or URL check carries, each as
// url.Values.Get would from url.ParseQuery (the first pair of a name that
// unescapes; pairs with a ';' skipped), without building the map: this runs
// for every push. A query with more pairs than a WeChat URL has goes
// through url.ParseQuery itself, so that its limit on pairs applies, and so
// does every query when GODEBUG sets that limit (urlmaxqueryparams).
func readPushQuery(raw string) pushQuery {
	var q pushQuery
	if strings.Count(raw, "&") >= 32 || strings.Contains(os.Getenv("GODEBUG"), "urlmaxqueryparams") {
		v, _ := url.ParseQuery(raw)
		for i, name := range queryNames {
			q[i] = v.Get(name)
		}
		return q
	}
	var seen [numQuery]bool
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		key, ok := unescapeQuery(key)
		if !ok {
			continue
		}
		value, ok = unescapeQuery(value)
		if !ok {
			continue
		}
		for i, name := range queryNames {
			if key == name && !seen[i] {
				q[i], seen[i] = value, true
			}
		}
	}
	return q
}

// unescapeQuery is url.QueryUnescape, without its work when s needs none.
func unescapeQuery(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}
