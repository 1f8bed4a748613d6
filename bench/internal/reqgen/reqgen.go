// Package reqgen pre-builds distinct, signed WeChat callback pushes the way
// WeChat sends them: each with its own timestamp, nonce and signature, and in
// safe mode its own encrypted body. The benchmark writes them into files that
// a wrk Lua script replays, so that signing costs nothing during a run.
package reqgen

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/wxscan/wxscan/callback"
)

// Kinds and modes a Generator builds.
const (
	KindLocation = "location"
	KindScan     = "scan"
	ModePlain    = "plain"
	ModeSafe     = "safe"
)

// Account is the ToUserName of every push.
const Account = "gh_wxbench"

// Generator builds pushes of one kind and mode for one account. It is not
// safe for concurrent use.
type Generator struct {
	Token, AESKey, AppID string
	Kind, Mode           string
	// Path is the callback's path, e.g. /wechat/callback.
	Path string
	// OpenIDs are the senders, round robin. Scan pushes should come from
	// bound staff; LOCATION pushes get their own openid each when empty.
	OpenIDs []string
	// Prefix makes nonces, openids and codes distinct across generators
	// (one per round and scenario).
	Prefix string
	Now    func() time.Time

	cipher *callback.Cipher
	n      int
}

// Request is one push, ready to send.
type Request struct {
	// Target is the path and query, e.g. /wechat/callback?signature=...
	Target string
	Body   []byte
}

// Next builds the next distinct push.
func (g *Generator) Next() (Request, error) {
	if g.Now == nil {
		g.Now = time.Now
	}
	if g.Mode == ModeSafe && g.cipher == nil {
		c, err := callback.NewCipher(g.AESKey, g.AppID)
		if err != nil {
			return Request{}, fmt.Errorf("reqgen: %w", err)
		}
		g.cipher = c
	}
	i := g.n
	g.n++
	id := g.Prefix + "n" + strconv.Itoa(i)
	now := g.Now().Unix()
	ts := strconv.FormatInt(now, 10)
	openid := "oBench" + id
	if len(g.OpenIDs) > 0 {
		openid = g.OpenIDs[i%len(g.OpenIDs)]
	}
	var plain string
	head := "<xml><ToUserName><![CDATA[" + Account + "]]></ToUserName><FromUserName><![CDATA[" + openid +
		"]]></FromUserName><CreateTime>" + ts + "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
	switch g.Kind {
	case KindLocation:
		plain = head + "<Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude>" +
			"<Longitude>113.352425</Longitude><Precision>119.385040</Precision></xml>"
	case KindScan:
		// The ScanResult is distinct: a scan's dedupe key is sender,
		// CreateTime, event, key and result.
		plain = head + "<Event><![CDATA[scancode_waitmsg]]></Event><EventKey><![CDATA[scan]]></EventKey>" +
			"<ScanCodeInfo><ScanType><![CDATA[barcode]]></ScanType><ScanResult><![CDATA[CODE_128,WB" +
			id + "]]></ScanResult></ScanCodeInfo></xml>"
	default:
		return Request{}, fmt.Errorf("reqgen: unknown kind %q (location, scan)", g.Kind)
	}
	nonce := "wb" + id
	q := url.Values{}
	q.Set("signature", callback.Signature(g.Token, ts, nonce))
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	q.Set("openid", openid)
	body := []byte(plain)
	switch g.Mode {
	case ModePlain:
	case ModeSafe:
		enc, err := g.cipher.Encrypt(nil, body)
		if err != nil {
			return Request{}, fmt.Errorf("reqgen: %w", err)
		}
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", callback.Signature(g.Token, ts, nonce, enc))
		body = []byte("<xml><ToUserName><![CDATA[" + Account + "]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
	default:
		return Request{}, fmt.Errorf("reqgen: unknown mode %q (plain, safe)", g.Mode)
	}
	return Request{Target: g.Path + "?" + q.Encode(), Body: body}, nil
}

// Raw is r as the bytes of an HTTP/1.1 request to host.
func (r Request) Raw(host string) []byte {
	h := "POST " + r.Target + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: text/xml\r\n" +
		"User-Agent: Mozilla/4.0\r\nContent-Length: " + strconv.Itoa(len(r.Body)) + "\r\n\r\n"
	return append([]byte(h), r.Body...)
}

// WriteFile writes reqs to path in the format the Lua script reads: for each
// request its length in bytes on a line, then the raw HTTP request.
func WriteFile(path, host string, reqs []Request) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("reqgen: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, r := range reqs {
		raw := r.Raw(host)
		if _, err := io.WriteString(w, strconv.Itoa(len(raw))+"\n"); err != nil {
			f.Close()
			return fmt.Errorf("reqgen: write %s: %w", path, err)
		}
		if _, err := w.Write(raw); err != nil {
			f.Close()
			return fmt.Errorf("reqgen: write %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("reqgen: write %s: %w", path, err)
	}
	return f.Close()
}
