package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

type opsData struct {
	Status      *Status
	StatusError string
	DLQ         []DeadLetter
	DLQError    string
}

// opsPage is GET /console/ops: the service's status, the dead letters with
// replay, the menu push and the backup download. What NATS cannot answer
// is said on the page; the rest still shows.
func (c *Console) opsPage(w http.ResponseWriter, r *http.Request, sess *session) error {
	var d opsData
	code, resp := c.call(r.Context(), http.MethodGet, "/admin/status", "", nil)
	if code == http.StatusOK {
		d.Status = new(Status)
		if err := json.Unmarshal(resp, d.Status); err != nil {
			return err
		}
	} else {
		d.StatusError = "状态读取失败：" + apiMessage(resp)
	}
	code, resp = c.call(r.Context(), http.MethodGet, "/admin/dlq", "", nil)
	if code == http.StatusOK {
		if err := json.Unmarshal(resp, &d.DLQ); err != nil {
			return err
		}
	} else {
		d.DLQError = "死信读取失败：" + apiMessage(resp)
	}
	c.render(w, http.StatusOK, "ops", sess, d)
	return nil
}

// pushMenu is POST /console/menu: the admin API's menu push.
func (c *Console) pushMenu(w http.ResponseWriter, r *http.Request, sess *session) error {
	code, resp := c.call(r.Context(), http.MethodPost, "/admin/menu", "", nil)
	if code != http.StatusOK {
		return apiFailure(code, "菜单没有发布", resp)
	}
	return c.done(w, r, sess, ConsolePrefix+"ops", "菜单已发布。")
}

// replayOne is POST /console/dlq/{id}/replay.
func (c *Console) replayOne(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := r.PathValue("id")
	code, resp := c.call(r.Context(), http.MethodPost, "/admin/dlq/"+url.PathEscape(id)+"/replay", "", nil)
	if code != http.StatusOK {
		return apiFailure(code, "没有重放", resp)
	}
	return c.done(w, r, sess, ConsolePrefix+"ops", "死信 "+id+" 已重放。")
}

// replayAll is POST /console/dlq/replay.
func (c *Console) replayAll(w http.ResponseWriter, r *http.Request, sess *session) error {
	code, resp := c.call(r.Context(), http.MethodPost, "/admin/dlq/replay", "", nil)
	if code != http.StatusOK {
		return apiFailure(code, "没有全部重放", resp)
	}
	var res ReplayAllResult
	if err := json.Unmarshal(resp, &res); err != nil {
		return err
	}
	return c.done(w, r, sess, ConsolePrefix+"ops", fmt.Sprintf("已重放 %d 条死信。", res.Replayed))
}

// backup is GET /console/backup: the admin API's backup, streamed.
func (c *Console) backup(w http.ResponseWriter, r *http.Request, sess *session) error {
	req := r.Clone(r.Context())
	req.URL = &url.URL{Path: "/admin/backup"}
	req.RequestURI = req.URL.RequestURI()
	c.api.mux.ServeHTTP(w, req)
	return nil
}
