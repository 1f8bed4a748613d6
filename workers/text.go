package workers

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/wxscan/wxscan/store"
)

// textCommand is what a text message asks for.
type textCommand int

const (
	textOther textCommand = iota // anything else: the help reply
	textQty                      // set the quantity of the latest scan
	textUndo                     // cancel the latest scan not yet cancelled
)

// parseText reads a chat text: a whole number 1..99999, optionally after
// x, X, × or * (full-width forms and digits too, spaces anywhere around),
// sets a quantity; 撤销 or undo cancels. Anything else, and numbers out of
// range, are textOther.
func parseText(content string) (textCommand, int) {
	t := strings.Map(func(r rune) rune {
		switch {
		case r >= '０' && r <= '９':
			return '0' + (r - '０')
		case r == 'ｘ', r == 'Ｘ', r == 'X', r == '×', r == '＊', r == '*':
			return 'x'
		case unicode.IsSpace(r):
			return -1
		}
		return r
	}, content)
	if t == "撤销" || strings.EqualFold(t, "undo") {
		return textUndo, 0
	}
	t = strings.TrimPrefix(t, "x")
	if t == "" || len(t) > 5+4 { // leading zeros allowed, but not without end
		return textOther, 0
	}
	for _, r := range t {
		if r < '0' || r > '9' {
			return textOther, 0
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < store.MinQty || n > store.MaxQty {
		return textOther, 0
	}
	return textQty, n
}

// text applies a chat text from openid at now inside tx and returns the
// reply. Errors are store failures.
func (s *Service) text(tx *store.Tx, openid, content string, now time.Time) (string, error) {
	cmd, qty := parseText(content)
	switch cmd {
	case textQty:
		latest, err := tx.LatestScan(openid, now, false)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return msgNothingToSet, nil
		case err != nil:
			return "", err
		case latest.Cancelled:
			return msgLatestCancelled(itemLabel(latest.Name, latest.Code)), nil
		}
		r, err := tx.SetScanQty(openid, latest.Ref(), qty, now)
		if err != nil {
			return "", err
		}
		return msgQtySet(itemLabel(r.Scan.Name, r.Scan.Code), r.Scan.ScannedAt.In(s.cfg.Location), qty, r.Count), nil
	case textUndo:
		latest, err := tx.LatestScan(openid, now, true)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return msgNothingToUndo, nil
		case err != nil:
			return "", err
		}
		r, err := tx.CancelScan(openid, latest.Ref(), now)
		if err != nil {
			return "", err
		}
		return msgUndone(itemLabel(r.Scan.Name, r.Scan.Code), r.Scan.ScannedAt.In(s.cfg.Location), r.Count), nil
	}
	return msgHelp(s.cfg.PublicURL), nil
}
