package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"

	"github.com/wxscan/wxscan/store"
)

// openidLock is a WeChat user's bind lockout (wrong codes over any
// employee numbers).
type openidLock struct {
	OpenID      string
	Failures    int
	LockedUntil time.Time
}

type staffData struct {
	Staff      []User // as GET /admin/users shows them
	OpenIDs    []openidLock
	StaffError string // a refused staff import
	ItemsError string // a refused item import
}

// staffPage is GET /console/staff: the staff directory with each person's
// binding state, and the staff and item imports.
func (c *Console) staffPage(w http.ResponseWriter, r *http.Request, sess *session) error {
	return c.showStaff(w, http.StatusOK, sess, staffData{})
}

func (c *Console) showStaff(w http.ResponseWriter, code int, sess *session, d staffData) error {
	now := c.cfg.Now()
	var err error
	if d.Staff, err = Users(c.cfg.DB, now); err != nil {
		return err
	}
	locks, err := c.cfg.DB.BindLockouts(now)
	if err != nil {
		return err
	}
	for _, l := range locks {
		if l.OpenID == "" {
			continue // an employee's: on their row
		}
		ol := openidLock{OpenID: l.OpenID, Failures: l.Failures}
		if l.Locked(now) {
			ol.LockedUntil = l.LockedUntil
		}
		d.OpenIDs = append(d.OpenIDs, ol)
	}
	c.render(w, code, "staff", sess, d)
	return nil
}

// importStaff is POST /console/staff/import (multipart, field file): the
// admin API's import. A refused file shows the staff page again with the
// reason, naming its line; nothing of it is imported.
func (c *Console) importStaff(w http.ResponseWriter, r *http.Request, sess *session) error {
	return c.importFile(w, r, sess, "/admin/users/import", func(d *staffData, msg string) { d.StaffError = msg }, "人员")
}

// importItems is POST /console/items/import (multipart, field file): the
// admin API's item master import.
func (c *Console) importItems(w http.ResponseWriter, r *http.Request, sess *session) error {
	return c.importFile(w, r, sess, "/admin/items/import", func(d *staffData, msg string) { d.ItemsError = msg }, "物料")
}

func (c *Console) importFile(w http.ResponseWriter, r *http.Request, sess *session, path string, refuse func(*staffData, string), what string) error {
	file, hdr, err := uploaded(w, r, "file")
	if err != nil {
		var d staffData
		refuse(&d, err.Error())
		return c.showStaff(w, http.StatusBadRequest, sess, d)
	}
	defer file.Close()
	code, resp := c.call(r.Context(), http.MethodPost, path, hdr.Header.Get("Content-Type"), file)
	if code != http.StatusOK {
		var d staffData
		refuse(&d, "没有导入（文件 "+hdr.Filename+"）："+apiMessage(resp))
		return c.showStaff(w, code, sess, d)
	}
	var res ImportResult
	if err := json.Unmarshal(resp, &res); err != nil {
		return err
	}
	return c.done(w, r, sess, ConsolePrefix+"staff", fmt.Sprintf("%s已导入：新增 %d，更新 %d。", what, res.Added, res.Updated))
}

// uploaded is the file posted in field name of a multipart form, read up to
// MaxImportBytes.
func uploaded(w http.ResponseWriter, r *http.Request, name string) (multipart.File, *multipart.FileHeader, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxImportBytes+64<<10)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, nil, fmt.Errorf("文件太大（最多 %d MB）。", MaxImportBytes>>20)
		}
		return nil, nil, errors.New("请选择要导入的文件。")
	}
	f, hdr, err := r.FormFile(name)
	if err != nil {
		return nil, nil, errors.New("请选择要导入的文件。")
	}
	return f, hdr, nil
}

// unlock is POST /console/staff/{employee}/unlock: the admin API's
// unlock of an employee's bind lockout.
func (c *Console) unlock(w http.ResponseWriter, r *http.Request, sess *session) error {
	emp := r.PathValue("employee")
	code, resp := c.call(r.Context(), http.MethodPost, "/admin/users/"+url.PathEscape(emp)+"/unlock", "", nil)
	if code/100 != 2 {
		return apiFailure(code, "没有解锁", resp)
	}
	return c.done(w, r, sess, ConsolePrefix+"staff", "已解除工号 "+emp+" 的锁定。")
}

// unlockOpenID is POST /console/openids/{openid}/unlock: the admin API's
// unlock of a WeChat user's bind lockout.
func (c *Console) unlockOpenID(w http.ResponseWriter, r *http.Request, sess *session) error {
	openid := r.PathValue("openid")
	code, resp := c.call(r.Context(), http.MethodPost, "/admin/bindings/"+url.PathEscape(openid)+"/unlock", "", nil)
	if code/100 != 2 {
		return apiFailure(code, "没有解锁", resp)
	}
	return c.done(w, r, sess, ConsolePrefix+"staff", "已解除微信用户 "+openid+" 的锁定。")
}

type bindingsData struct {
	Bindings []store.Binding
}

// bindingsPage is GET /console/bindings: every binding with its state.
func (c *Console) bindingsPage(w http.ResponseWriter, r *http.Request, sess *session) error {
	list, err := c.cfg.DB.Bindings()
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "bindings", sess, bindingsData{Bindings: list})
	return nil
}

// removeBinding is POST /console/bindings/{openid}/remove: the admin API's
// unbind.
func (c *Console) removeBinding(w http.ResponseWriter, r *http.Request, sess *session) error {
	openid := r.PathValue("openid")
	b, _ := c.cfg.DB.BindingByOpenID(openid)
	code, resp := c.call(r.Context(), http.MethodDelete, "/admin/bindings/"+url.PathEscape(openid), "", nil)
	if code/100 != 2 {
		return apiFailure(code, "没有解除绑定", resp)
	}
	who := " " + openid + " "
	if b.EmployeeNo != "" {
		who = "工号 " + b.EmployeeNo
		if b.Name != "" {
			who += "（" + b.Name + "）"
		}
	}
	return c.done(w, r, sess, ConsolePrefix+"bindings", "已解除"+who+"的绑定。")
}
