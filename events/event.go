// Package events is wxscan's shared vocabulary: the canonical WeChat Event,
// its XML parsing, the dedupe key, the NATS subjects, and the JetStream code
// that publishes and consumes events (including the embedded NATS server).
//
// The subjects and the JSON payload of Event are a public interface: other
// programs may consume the WECHAT stream. They change only with Version.
package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the payload version carried in Event.V.
const Version = 1

// ErrInvalid is returned (wrapped) by Parse for XML that does not parse or
// lacks the elements every WeChat push carries.
var ErrInvalid = errors.New("invalid event")

// Event is the canonical form of one WeChat push (a message or an event), as
// published on the WECHAT stream. Empty fields are left out of the JSON.
type Event struct {
	V          int    `json:"v"`
	ID         string `json:"id"`
	AppID      string `json:"appid"`
	To         string `json:"to,omitempty"`
	From       string `json:"from,omitempty"`
	CreateTime int64  `json:"create_time,omitempty"`
	MsgType    string `json:"msg_type"`
	Event      string `json:"event,omitempty"`
	EventKey   string `json:"event_key,omitempty"`
	Ticket     string `json:"ticket,omitempty"`
	ScanType   string `json:"scan_type,omitempty"`
	// ScanResult is exactly as WeChat sent it, e.g. "EAN_13,6901234567892".
	ScanResult string    `json:"scan_result,omitempty"`
	Content    string    `json:"content,omitempty"`
	MsgID      string    `json:"msg_id,omitempty"`
	Latitude   string    `json:"latitude,omitempty"`
	Longitude  string    `json:"longitude,omitempty"`
	Precision  string    `json:"precision,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	// XML is the plaintext XML as received (decrypted in safe mode).
	XML string `json:"xml"`

	// RequestID is the callback's request id, carried in a NATS header for
	// logs; it is not part of the payload.
	RequestID string `json:"-"`
	// ReplyTo names the callback process whose request waits for this
	// event's passive reply (ReplyToHeader), or is empty; not part of the
	// payload either.
	ReplyTo string `json:"-"`
}

// Parse reads one plaintext WeChat XML push into an Event for appid. Unknown
// elements are kept in XML and are never an error. It fails with ErrInvalid
// when the XML does not parse (see ReadDoc) or lacks ToUserName,
// FromUserName, CreateTime or MsgType.
func Parse(appid string, raw []byte, receivedAt time.Time) (Event, error) {
	d, err := ReadDoc(raw)
	if err != nil {
		return Event{}, err
	}
	return d.Event(appid, receivedAt)
}

// Event is the push as an Event for appid, as Parse returns it; the
// callback uses it to parse a compatible-mode body once for both its
// Encrypt element and the event.
func (d *Doc) Event(appid string, receivedAt time.Time) (Event, error) {
	t := &d.text
	e := Event{
		V:          Version,
		AppID:      appid,
		To:         t[fTo],
		From:       t[fFrom],
		MsgType:    t[fMsgType],
		Event:      t[fEvent],
		EventKey:   t[fEventKey],
		Ticket:     t[fTicket],
		Content:    t[fContent],
		MsgID:      t[fMsgId],
		Latitude:   t[fLatitude],
		Longitude:  t[fLongitude],
		Precision:  t[fPrecision],
		ReceivedAt: receivedAt.UTC(),
		XML:        d.xml,
	}
	if e.MsgID == "" {
		e.MsgID = t[fMsgID]
	}
	if e.MsgType == "location" { // a location message, not the LOCATION event
		e.Latitude, e.Longitude, e.Precision = t[fLocationX], t[fLocationY], t[fScale]
	}
	switch {
	case d.has[fScanCodeInfo]:
		e.ScanType, e.ScanResult = t[fScanType], t[fScanResult]
	case d.has[fSendLocationInfo]:
		e.Latitude, e.Longitude, e.Precision = t[fSendLocationX], t[fSendLocationY], t[fSendScale]
	}
	ct := t[fCreateTime]
	if e.To == "" || e.From == "" || e.MsgType == "" || ct == "" {
		return Event{}, fmt.Errorf("events: parse xml: %w: ToUserName, FromUserName, CreateTime and MsgType are required", ErrInvalid)
	}
	n, err := strconv.ParseInt(ct, 10, 64)
	if err != nil || n < 0 {
		return Event{}, fmt.Errorf("events: parse xml: %w: CreateTime %q is not a number", ErrInvalid, ct)
	}
	e.CreateTime = n
	e.ID = e.key()
	return e, nil
}

// key is the dedupe key of SPEC §4: the MsgId for messages, and for events a
// digest of FromUserName, CreateTime, Event, EventKey and ScanResult (so two
// scans in one second are two events). It is used as the JetStream message id
// and by the workers for idempotency, so it must be safe in a NATS header.
func (e Event) key() string {
	if e.MsgType != "event" && e.MsgID != "" && headerSafe(e.MsgID) {
		return "m" + e.MsgID
	}
	h := sha256.New()
	for _, s := range []string{e.From, strconv.FormatInt(e.CreateTime, 10), e.Event, e.EventKey, e.ScanResult} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if e.MsgType != "event" { // a message without a usable MsgId: hash its content too
		h.Write([]byte(e.MsgType + "\x00" + e.Content + "\x00" + e.MsgID))
	}
	return "e" + hex.EncodeToString(h.Sum(nil)[:16])
}

func headerSafe(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

// Subject is the NATS subject of the event: wechat.<appid>.msg.<msgtype> or
// wechat.<appid>.event.<event in lower case>. Tokens are made subject-safe.
func (e Event) Subject() string {
	if e.MsgType == "event" {
		return "wechat." + token(e.AppID) + ".event." + token(strings.ToLower(e.Event))
	}
	return "wechat." + token(e.AppID) + ".msg." + token(e.MsgType)
}

// token makes s a single NATS subject token: no dots, wildcards or spaces.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

// WantsReply reports whether the event gets a chat reply, and so whether the
// callback may hold WeChat's request open for the worker's passive reply:
// subscribe, scan-code events and text messages.
func (e Event) WantsReply() bool {
	if e.MsgType == "text" {
		return true
	}
	if e.MsgType != "event" {
		return false
	}
	switch strings.ToLower(e.Event) {
	case "subscribe", "scancode_waitmsg", "scancode_push":
		return true
	}
	return false
}

// IsScan reports whether the event carries a scanned code.
func (e Event) IsScan() bool {
	ev := strings.ToLower(e.Event)
	return e.MsgType == "event" && (ev == "scancode_waitmsg" || ev == "scancode_push")
}

// Reply is a worker's answer to an event that wants one: a text message to
// the user who sent the event. The callback renders it as WeChat's passive
// reply XML when it arrives in time; otherwise the worker sends it through
// message/custom/send.
type Reply struct {
	// EventID is the Event.ID this reply answers.
	EventID string `json:"event_id"`
	// ToUser is the openid the reply goes to; FromUser the account (Event.To).
	ToUser   string `json:"to_user"`
	FromUser string `json:"from_user"`
	Content  string `json:"content"`
	// ReplyTo is the event's ReplyTo: where OfferReply finds the waiting
	// request when it is in another process. Kept with the reply in the
	// outbox, so that a retry still finds it.
	ReplyTo string `json:"reply_to,omitempty"`
}

// AppendJSON appends the payload of e, byte for byte what json.Marshal(e)
// writes, to b: the publisher's encoding without reflection. It fails, as
// json.Marshal does, only for a ReceivedAt outside the years 0-9999.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = appendField(b, "id", e.ID, false)
	b = appendField(b, "appid", e.AppID, false)
	b = appendField(b, "to", e.To, true)
	b = appendField(b, "from", e.From, true)
	if e.CreateTime != 0 {
		b = append(b, `,"create_time":`...)
		b = strconv.AppendInt(b, e.CreateTime, 10)
	}
	b = appendField(b, "msg_type", e.MsgType, false)
	b = appendField(b, "event", e.Event, true)
	b = appendField(b, "event_key", e.EventKey, true)
	b = appendField(b, "ticket", e.Ticket, true)
	b = appendField(b, "scan_type", e.ScanType, true)
	b = appendField(b, "scan_result", e.ScanResult, true)
	b = appendField(b, "content", e.Content, true)
	b = appendField(b, "msg_id", e.MsgID, true)
	b = appendField(b, "latitude", e.Latitude, true)
	b = appendField(b, "longitude", e.Longitude, true)
	b = appendField(b, "precision", e.Precision, true)
	b = append(b, `,"received_at":`...)
	t, err := e.ReceivedAt.MarshalJSON()
	if err != nil {
		return b, fmt.Errorf("events: encode event %s: %w", e.ID, err)
	}
	b = append(b, t...)
	b = appendField(b, "xml", e.XML, false)
	return append(b, '}'), nil
}

// jsonSizeHint is the length of e's payload as AppendJSON writes it, or
// more, for all but odd pushes: '<', '>' and '&' take six bytes each in
// JSON, once in the XML and once more where a field copies them, and only
// the XML and the fields copied from its longer elements can be long. A
// push over the hint (say a text of many quotes or U+2028s) costs only a
// second allocation.
func (e *Event) jsonSizeHint() int {
	specials := strings.Count(e.XML, "<") + strings.Count(e.XML, ">") + strings.Count(e.XML, "&")
	return 384 + len(e.XML) + 10*specials +
		2*(len(e.Content)+len(e.EventKey)+len(e.ScanResult)+len(e.Ticket))
}

func appendField(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does: HTML-safe (<, >, & as
// \u003c...), U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
