// Package wechatsim plays the WeChat server against a callback URL: it
// builds signed (and, in safe mode, encrypted) pushes the way WeChat does,
// sends them, retries them with the very same query string, decrypts the
// replies, and generates load. `wxscan simulate` is its command line.
package wechatsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/events"
)

// Modes of SPEC §4.
const (
	ModePlain  = "plain"
	ModeCompat = "compat"
	ModeSafe   = "safe"
)

// Sim is a simulated WeChat server for one account. It is safe for
// concurrent use once configured.
type Sim struct {
	// URL is the callback endpoint, e.g. http://127.0.0.1:8080/wechat/callback.
	URL    string
	Token  string
	AESKey string // needed for compat and safe mode
	AppID  string
	Mode   string
	// Account is the ToUserName of the pushes (the account's gh_ id).
	Account string
	Client  *http.Client
	Now     func() time.Time

	cipher *callback.Cipher
	seq    atomic.Int64
}

// Push is one message or event to send. Kind is subscribe, unsubscribe,
// scan (scancode_waitmsg), text, location (the LOCATION event), click or
// view.
type Push struct {
	Kind       string
	OpenID     string
	Code       string // scan: the ScanResult, e.g. EAN_13,6901234567892
	Content    string // text
	EventKey   string
	CreateTime int64 // 0 = now
	MsgID      int64 // text: 0 = a fresh one
}

// Request is a signed push, ready to send (and to send again as a retry).
type Request struct {
	URL  string
	Body []byte
	// Event is the plaintext XML inside.
	Event []byte
}

// Result is WeChat's view of one answer.
type Result struct {
	Status int
	Body   string
	// Reply is the passive reply's plaintext XML (decrypted in safe mode),
	// or "" when the answer was "success" or empty.
	Reply   string
	Latency time.Duration
}

func (s *Sim) init() error {
	if s.Client == nil {
		s.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Mode == "" {
		s.Mode = ModePlain
	}
	if s.Account == "" {
		s.Account = "gh_wxscan_sim"
	}
	switch s.Mode {
	case ModePlain:
	case ModeCompat, ModeSafe:
		if s.cipher == nil {
			c, err := callback.NewCipher(s.AESKey, s.AppID)
			if err != nil {
				return fmt.Errorf("wechatsim: %s mode needs the EncodingAESKey: %w", s.Mode, err)
			}
			s.cipher = c
		}
	default:
		return fmt.Errorf("wechatsim: unknown mode %q (plain, compat, safe)", s.Mode)
	}
	return nil
}

// EventXML renders p as WeChat's plaintext XML.
func (s *Sim) EventXML(p Push) ([]byte, error) {
	if s.Now == nil {
		s.Now = time.Now
	}
	ct := p.CreateTime
	if ct == 0 {
		ct = s.Now().Unix()
	}
	if p.OpenID == "" {
		return nil, errors.New("wechatsim: an openid is required")
	}
	doc := etree.NewDocument()
	root := doc.CreateElement("xml")
	cdata := func(tag, v string) { root.CreateElement(tag).CreateCData(v) }
	cdata("ToUserName", s.Account)
	cdata("FromUserName", p.OpenID)
	root.CreateElement("CreateTime").SetText(strconv.FormatInt(ct, 10))
	event := func(name string) {
		cdata("MsgType", "event")
		cdata("Event", name)
	}
	switch p.Kind {
	case "subscribe":
		event("subscribe")
		if p.EventKey != "" {
			cdata("EventKey", p.EventKey)
		}
	case "unsubscribe":
		event("unsubscribe")
	case "scan":
		if p.Code == "" {
			return nil, errors.New("wechatsim: scan needs a code")
		}
		event("scancode_waitmsg")
		cdata("EventKey", firstNonEmpty(p.EventKey, "scan"))
		info := root.CreateElement("ScanCodeInfo")
		scanType := "qrcode"
		if strings.Contains(p.Code, ",") {
			scanType = "barcode"
		}
		info.CreateElement("ScanType").CreateCData(scanType)
		info.CreateElement("ScanResult").CreateCData(p.Code)
	case "location":
		event("LOCATION")
		root.CreateElement("Latitude").SetText("23.137466")
		root.CreateElement("Longitude").SetText("113.352425")
		root.CreateElement("Precision").SetText("119.385040")
	case "click":
		event("CLICK")
		cdata("EventKey", firstNonEmpty(p.EventKey, "CLICK_KEY"))
	case "view":
		event("VIEW")
		cdata("EventKey", firstNonEmpty(p.EventKey, "https://example.com/"))
	case "text":
		cdata("MsgType", "text")
		cdata("Content", p.Content)
		id := p.MsgID
		if id == 0 {
			id = ct*1_000_000 + s.seq.Add(1)%1_000_000
		}
		root.CreateElement("MsgId").SetText(strconv.FormatInt(id, 10))
	default:
		return nil, fmt.Errorf("wechatsim: unknown kind %q (subscribe, unsubscribe, scan, text, location, click, view)", p.Kind)
	}
	return doc.WriteToBytes()
}

// Build signs (and encrypts, per Mode) one push.
func (s *Sim) Build(p Push) (Request, error) {
	if err := s.init(); err != nil {
		return Request{}, err
	}
	plain, err := s.EventXML(p)
	if err != nil {
		return Request{}, err
	}
	ts := strconv.FormatInt(s.Now().Unix(), 10)
	nonce := strconv.FormatInt(int64(s.seq.Add(1))+s.Now().UnixNano()%1e9, 10)
	q := url.Values{}
	q.Set("signature", callback.Signature(s.Token, ts, nonce))
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	q.Set("openid", p.OpenID)
	body := plain
	if s.Mode != ModePlain {
		enc, err := s.cipher.Encrypt(nil, plain)
		if err != nil {
			return Request{}, err
		}
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", callback.Signature(s.Token, ts, nonce, enc))
		if s.Mode == ModeSafe {
			body = []byte("<xml><ToUserName><![CDATA[" + s.Account + "]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
		} else { // compat: the plaintext with Encrypt beside it
			body = bytes.Replace(plain, []byte("</xml>"), []byte("<Encrypt><![CDATA["+enc+"]]></Encrypt></xml>"), 1)
		}
	}
	return Request{URL: s.URL + "?" + q.Encode(), Body: body, Event: plain}, nil
}

// Send posts req once and reads the answer; in safe mode it verifies and
// decrypts an encrypted passive reply.
func (s *Sim) Send(ctx context.Context, req Request) (Result, error) {
	if err := s.init(); err != nil {
		return Result{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return Result{}, fmt.Errorf("wechatsim: %w", err)
	}
	hr.Header.Set("Content-Type", "text/xml")
	hr.Header.Set("User-Agent", "Mozilla/4.0 (wxscan simulate)")
	start := time.Now()
	resp, err := s.Client.Do(hr)
	if err != nil {
		return Result{}, fmt.Errorf("wechatsim: post: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Result{}, fmt.Errorf("wechatsim: read answer: %w", err)
	}
	res := Result{Status: resp.StatusCode, Body: string(b), Latency: time.Since(start)}
	if resp.StatusCode != http.StatusOK || res.Body == "success" || res.Body == "" {
		return res, nil
	}
	if s.Mode != ModeSafe {
		res.Reply = res.Body
		return res, nil
	}
	reply, err := s.openReply(b)
	if err != nil {
		return res, err
	}
	res.Reply = string(reply)
	return res, nil
}

// openReply checks an encrypted passive reply's MsgSignature and decrypts
// it, as WeChat does.
func (s *Sim) openReply(b []byte) ([]byte, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, fmt.Errorf("wechatsim: reply is not XML: %w", err)
	}
	get := func(tag string) string {
		if el := doc.FindElement("/xml/" + tag); el != nil {
			return el.Text()
		}
		return ""
	}
	enc, sig, ts, nonce := get("Encrypt"), get("MsgSignature"), get("TimeStamp"), get("Nonce")
	if enc == "" {
		return nil, errors.New("wechatsim: safe-mode reply is not encrypted")
	}
	if want := callback.Signature(s.Token, ts, nonce, enc); sig != want {
		return nil, errors.New("wechatsim: reply MsgSignature does not match")
	}
	plain, appid, err := s.cipher.Decrypt(enc)
	if err != nil {
		return nil, fmt.Errorf("wechatsim: decrypt reply: %w", err)
	}
	if appid != s.AppID {
		return nil, fmt.Errorf("wechatsim: reply is for AppID %q", appid)
	}
	return plain, nil
}

// Echo performs WeChat's URL check (GET with echostr) and returns the status
// and body.
func (s *Sim) Echo(ctx context.Context) (Result, error) {
	if err := s.init(); err != nil {
		return Result{}, err
	}
	ts := strconv.FormatInt(s.Now().Unix(), 10)
	nonce := "echo" + ts
	echostr := events.RandomHex(8)
	q := url.Values{"signature": {callback.Signature(s.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {echostr}}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"?"+q.Encode(), nil)
	if err != nil {
		return Result{}, err
	}
	resp, err := s.Client.Do(hr)
	if err != nil {
		return Result{}, fmt.Errorf("wechatsim: echo: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	res := Result{Status: resp.StatusCode, Body: string(b)}
	if res.Status == http.StatusOK && res.Body != echostr {
		return res, fmt.Errorf("wechatsim: echo answered %q, want %q", res.Body, echostr)
	}
	return res, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// SendTimes sends req n times, as WeChat retries a push with the very same
// query string: one after another, or all at once when concurrent. It
// returns each answer and error in the order of the sends (the first is the
// request, the others its retries).
func (s *Sim) SendTimes(ctx context.Context, req Request, n int, concurrent bool) ([]Result, []error) {
	results := make([]Result, n)
	errs := make([]error, n)
	send := func(i int) { results[i], errs[i] = s.Send(ctx, req) }
	if !concurrent {
		for i := range n {
			send(i)
		}
		return results, errs
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { send(i) })
	}
	wg.Wait()
	return results, errs
}
