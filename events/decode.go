package events

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// DecodeEvent reads an event's JSON payload, with exactly the result of
// json.Unmarshal into an Event. Payloads as the callback writes them
// (Event.AppendJSON) are read without reflection; anything else (a key in
// another case, an unknown key, null, a surrogate pair escape, invalid
// UTF-8, malformed JSON) goes to json.Unmarshal, so the rules and errors are
// encoding/json's.
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if decodeEventFast(data, &e) {
		return e, nil
	}
	e = Event{}
	err := json.Unmarshal(data, &e)
	return e, err
}

// decodeEventFast fills e from data and reports true, or reports false
// (e then holds anything) when data is not in the plain shape it reads.
func decodeEventFast(data []byte, e *Event) bool {
	// One copy of the payload backs every unescaped string field.
	d := fastDecoder{b: data, s: string(data)}
	d.space()
	if !d.byte('{') {
		return false
	}
	d.space()
	if d.byte('}') {
		return d.end()
	}
	for {
		key, ok := d.rawString()
		if !ok {
			return false
		}
		d.space()
		if !d.byte(':') {
			return false
		}
		d.space()
		if !d.field(key, e) {
			return false
		}
		d.space()
		if d.byte(',') {
			d.space()
			continue
		}
		if d.byte('}') {
			return d.end()
		}
		return false
	}
}

type fastDecoder struct {
	b []byte
	s string // b as a string
	i int
}

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDecoder) byte(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end reports whether only white space follows.
func (d *fastDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

// field reads the value of key into e.
func (d *fastDecoder) field(key []byte, e *Event) bool {
	var s *string
	switch string(key) {
	case "v":
		n, ok := d.integer()
		if !ok || n != int64(int(n)) {
			return false
		}
		e.V = int(n)
		return true
	case "create_time":
		n, ok := d.integer()
		e.CreateTime = n
		return ok
	case "received_at":
		start := d.i
		if _, ok := d.rawString(); !ok {
			return false
		}
		return e.ReceivedAt.UnmarshalJSON(d.b[start:d.i]) == nil
	case "id":
		s = &e.ID
	case "appid":
		s = &e.AppID
	case "to":
		s = &e.To
	case "from":
		s = &e.From
	case "msg_type":
		s = &e.MsgType
	case "event":
		s = &e.Event
	case "event_key":
		s = &e.EventKey
	case "ticket":
		s = &e.Ticket
	case "scan_type":
		s = &e.ScanType
	case "scan_result":
		s = &e.ScanResult
	case "content":
		s = &e.Content
	case "msg_id":
		s = &e.MsgID
	case "latitude":
		s = &e.Latitude
	case "longitude":
		s = &e.Longitude
	case "precision":
		s = &e.Precision
	case "xml":
		s = &e.XML
	default:
		return false
	}
	v, ok := d.str()
	*s = v
	return ok
}

// integer reads a JSON integer (no fraction or exponent) that fits int64.
func (d *fastDecoder) integer() (int64, bool) {
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	switch {
	case d.i == digits, d.b[digits] == '0' && d.i > digits+1:
		return 0, false // no digits, or a leading zero
	case d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E'):
		return 0, false
	}
	n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	return n, err == nil
}

// rawString reads a string without escapes and returns its bytes.
func (d *fastDecoder) rawString() ([]byte, bool) {
	if !d.byte('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return s, true
		case c == '\\', c < 0x20, c >= utf8.RuneSelf:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// str reads a string, unescaping \" \\ \/ \b \f \n \r \t and \uXXXX
// outside the surrogates.
func (d *fastDecoder) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	var out []byte // nil until the first escape
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			var s string
			if out == nil {
				s = d.s[start:d.i]
			} else {
				s = string(out)
			}
			d.i++
			return s, true
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false // encoding/json would write U+FFFD
			}
			if out != nil {
				out = append(out, d.b[d.i:d.i+size]...)
			}
			d.i += size
			continue
		case c != '\\':
			if out != nil {
				out = append(out, c)
			}
			d.i++
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(d.b)-start), d.b[start:d.i]...)
		}
		if d.i+1 >= len(d.b) {
			return "", false
		}
		esc := d.b[d.i+1]
		d.i += 2
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if d.i+4 > len(d.b) {
				return "", false
			}
			var n rune
			for _, h := range d.b[d.i : d.i+4] {
				switch {
				case h >= '0' && h <= '9':
					n = n<<4 | rune(h-'0')
				case h >= 'a' && h <= 'f':
					n = n<<4 | rune(h-'a'+10)
				case h >= 'A' && h <= 'F':
					n = n<<4 | rune(h-'A'+10)
				default:
					return "", false
				}
			}
			if n >= 0xD800 && n < 0xE000 {
				return "", false
			}
			out = utf8.AppendRune(out, n)
			d.i += 4
		default:
			return "", false
		}
	}
	return "", false
}
