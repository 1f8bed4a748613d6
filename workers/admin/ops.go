package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/wechatapi"
)

// busTimeout bounds one admin call to NATS, so that an unreachable NATS
// answers 503 within about 2 s rather than hang.
const busTimeout = 2 * time.Second

// listBindings is GET /admin/bindings: every binding, sorted by employee_no.
func (s *server) listBindings(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cfg.DB.Bindings()
	if err != nil {
		return err
	}
	if list == nil {
		list = []Binding{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// removeBinding is DELETE /admin/bindings/{openid}: 204, or 404 when openid
// has no binding.
func (s *server) removeBinding(w http.ResponseWriter, r *http.Request) error {
	openid := r.PathValue("openid")
	if err := s.cfg.DB.RemoveBinding(openid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return explain(err, "no binding for openid %s", openid)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Menu is the custom menu wxscan pushes: bind, scan (a scancode_waitmsg
// button with key "scan") and the scan page, under publicURL.
func Menu(publicURL string) wechatapi.Menu {
	base := strings.TrimRight(publicURL, "/")
	return wechatapi.Menu{Buttons: []wechatapi.Button{
		{Type: "view", Name: "绑定账号", URL: base + "/bind"},
		{Type: "scancode_waitmsg", Name: "扫码盘点", Key: "scan"},
		{Type: "view", Name: "扫码页面", URL: base + "/scan"},
	}}
}

// pushMenu is POST /admin/menu: it replaces the account's menu with Menu and
// answers the menu it pushed. 502 when WeChat refuses it, 503 when WeChat
// cannot be reached.
func (s *server) pushMenu(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.WeChat == nil {
		return errorf(http.StatusServiceUnavailable, "this process has no WeChat API client")
	}
	if s.cfg.PublicURL == "" {
		return errorf(http.StatusServiceUnavailable, "WXSCAN_PUBLIC_URL is not set on the server")
	}
	menu := Menu(s.cfg.PublicURL)
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	if err := s.cfg.WeChat.CreateMenu(ctx, menu); err != nil {
		var wx *wechatapi.Error
		if errors.As(err, &wx) {
			return explain(err, "WeChat refused the menu: %s", oneLine(err.Error()))
		}
		return unavailable(err, "cannot reach WeChat")
	}
	writeJSON(w, http.StatusOK, menu)
	return nil
}

// listDLQ is GET /admin/dlq: the dead letters, oldest first.
func (s *server) listDLQ(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Bus == nil {
		return errorf(http.StatusServiceUnavailable, "this process has no NATS connection")
	}
	ctx, cancel := context.WithTimeout(r.Context(), busTimeout)
	defer cancel()
	list, err := s.cfg.Bus.DeadLetters(ctx, 0)
	if err != nil {
		return unavailable(err, "cannot read the DLQ from NATS")
	}
	if list == nil {
		list = []DeadLetter{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// replayOne is POST /admin/dlq/{id}/replay: the replayed dead letter, 404
// when id is not in the DLQ.
func (s *server) replayOne(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Bus == nil {
		return errorf(http.StatusServiceUnavailable, "this process has no NATS connection")
	}
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return errorf(http.StatusBadRequest, "dead letter id %q: want a positive number", r.PathValue("id"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), busTimeout)
	defer cancel()
	d, err := s.cfg.Bus.Replay(ctx, id)
	if errors.Is(err, events.ErrNoSuchDeadLetter) {
		return explain(err, "no dead letter %d", id)
	}
	if err != nil {
		return unavailable(err, "replay dead letter %d", id)
	}
	s.cfg.Logger.Info("admin replayed dead letter", "id", id, "subject", d.Subject, "event_id", d.EventID)
	writeJSON(w, http.StatusOK, d)
	return nil
}

// replayAll is POST /admin/dlq/replay: replays every dead letter and
// answers {"replayed":N}. Entries replayed meanwhile by someone else are
// skipped; on a failure the ones before it stay replayed.
func (s *server) replayAll(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Bus == nil {
		return errorf(http.StatusServiceUnavailable, "this process has no NATS connection")
	}
	ctx, cancel := context.WithTimeout(r.Context(), busTimeout)
	list, err := s.cfg.Bus.DeadLetters(ctx, 0)
	cancel()
	if err != nil {
		return unavailable(err, "cannot read the DLQ from NATS")
	}
	n := 0
	for _, d := range list {
		ctx, cancel := context.WithTimeout(r.Context(), busTimeout)
		_, err := s.cfg.Bus.Replay(ctx, d.ID)
		cancel()
		if errors.Is(err, events.ErrNoSuchDeadLetter) {
			continue
		}
		if err != nil {
			return unavailable(err, "replayed %d, then dead letter %d failed", n, d.ID)
		}
		n++
	}
	s.cfg.Logger.Info("admin replayed dead letters", "count", n)
	writeJSON(w, http.StatusOK, ReplayAllResult{Replayed: n})
	return nil
}

// status is GET /admin/status; 503 when NATS cannot be reached.
func (s *server) status(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Bus == nil {
		return errorf(http.StatusServiceUnavailable, "this process has no NATS connection")
	}
	ctx, cancel := context.WithTimeout(r.Context(), busTimeout)
	defer cancel()
	bs, err := s.cfg.Bus.Status(ctx, s.cfg.Durable)
	if err != nil {
		return unavailable(err, "cannot read the stream status from NATS")
	}
	out := Status{
		StreamMsgs: bs.StreamMsgs, StreamBytes: bs.StreamBytes, DLQMsgs: bs.DLQMsgs,
		ConsumerPending: bs.Pending, ConsumerAckPending: bs.AckPending, ConsumerRedelivered: bs.Redelivered,
	}
	if s.cfg.WeChat != nil {
		st := s.cfg.WeChat.Stats()
		out.TokenRefreshes = &st.TokenRefreshes
		if !st.LastRefresh.IsZero() {
			t := st.LastRefresh.UTC()
			out.LastTokenRefresh = &t
		}
	}
	if out.ScansToday, err = s.cfg.DB.ScansSince(StartOfDayIn(s.cfg.Now(), s.cfg.Location)); err != nil {
		return err
	}
	if out.Outbox, err = s.cfg.DB.OutboxLen(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// shanghai is China Standard Time, the default time zone (WXSCAN_TIMEZONE).
var shanghai = func() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*60*60)
}()

// StartOfDay is midnight of t's day in Asia/Shanghai.
func StartOfDay(t time.Time) time.Time { return StartOfDayIn(t, shanghai) }

// StartOfDayIn is the start of t's day in loc (nil: Asia/Shanghai), where
// "today" starts for status's scans_today.
func StartOfDayIn(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = shanghai
	}
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}
