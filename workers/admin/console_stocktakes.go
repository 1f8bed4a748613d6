package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"

	"github.com/wxscan/wxscan/store"
)

type stocktakesData struct {
	Rows []stocktakeRow
	Form openForm
}

// openForm is the open-a-stocktake form as last filled in.
type openForm struct {
	Name, Locations string
	Error           string
}

// stocktakesPage is GET /console/: every stocktake with its progress, open
// ones first, and the form to open one.
func (c *Console) stocktakesPage(w http.ResponseWriter, r *http.Request, sess *session) error {
	return c.showStocktakes(w, http.StatusOK, sess, openForm{})
}

func (c *Console) showStocktakes(w http.ResponseWriter, code int, sess *session, form openForm) error {
	rows, err := c.stocktakeRows()
	if err != nil {
		return err
	}
	c.render(w, code, "stocktakes", sess, stocktakesData{Rows: rows, Form: form})
	return nil
}

type stocktakeData struct {
	Live    liveView
	Exports []exportLinks
}

// exportLinks are one export's downloads.
type exportLinks struct {
	Label, CSV, XLSX string
}

// stocktakePage is GET /console/stocktakes/{id}: the stocktake's counts per
// location and per person and its latest scans (live while it is open),
// and its downloads.
func (c *Console) stocktakePage(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := r.PathValue("id")
	v, err := c.liveData(id)
	if err != nil {
		return notFoundStocktake(id, err)
	}
	var links []exportLinks
	for _, k := range []struct{ kind, label string }{{"scans", "扫码明细"}, {"summary", "汇总"}, {"variance", "差异"}} {
		u := ConsolePrefix + "stocktakes/" + url.PathEscape(id) + "/export?kind=" + k.kind + "&format="
		links = append(links, exportLinks{Label: k.label, CSV: u + "csv", XLSX: u + "xlsx"})
	}
	c.render(w, http.StatusOK, "stocktake", sess, stocktakeData{Live: v, Exports: links})
	return nil
}

// liveFragment renders the live part of stocktake id's page, for its event
// stream.
func (c *Console) liveFragment(id string) ([]byte, error) {
	v, err := c.liveData(id)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := c.pages["stocktake"].ExecuteTemplate(&buf, "live", v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type varianceData struct {
	Stocktake          Stocktake
	Rows               []store.VarianceRow
	DiffOnly           bool
	All                int // rows before the filter
	Surplus, Shortage  int // rows with a positive, negative difference
	CSV, XLSX, BaseURL string
}

// variancePage is GET /console/stocktakes/{id}/variance[?diff=1]: the
// variance table, narrowed to the rows with a difference when diff=1.
func (c *Console) variancePage(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := r.PathValue("id")
	st, err := c.cfg.DB.Stocktake(id)
	if err != nil {
		return notFoundStocktake(id, err)
	}
	rows, err := c.cfg.DB.Variance(id)
	if err != nil {
		return err
	}
	d := varianceData{Stocktake: stocktakeOf(st), DiffOnly: r.URL.Query().Get("diff") == "1", All: len(rows)}
	for _, row := range rows {
		switch {
		case row.Difference > 0:
			d.Surplus++
		case row.Difference < 0:
			d.Shortage++
		}
		if !d.DiffOnly || row.Difference != 0 {
			d.Rows = append(d.Rows, row)
		}
	}
	d.BaseURL = ConsolePrefix + "stocktakes/" + url.PathEscape(id)
	d.CSV = d.BaseURL + "/export?kind=variance&format=csv"
	d.XLSX = d.BaseURL + "/export?kind=variance&format=xlsx"
	c.render(w, http.StatusOK, "variance", sess, d)
	return nil
}

// export is GET /console/stocktakes/{id}/export?kind=scans|summary|variance&format=csv|xlsx:
// the admin API's export, the same bytes as the CLI's.
func (c *Console) export(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	kind, format := q.Get("kind"), q.Get("format")
	if format != "csv" && format != "xlsx" {
		return consoleErrorf(http.StatusBadRequest, "下载格式只能是 csv 或 xlsx。")
	}
	api := url.Values{"format": {format}}
	switch kind {
	case "scans":
	case "summary", "variance":
		api.Set(kind, "1")
	default:
		return consoleErrorf(http.StatusBadRequest, "没有这种导出："+kind)
	}
	if _, err := c.cfg.DB.Stocktake(id); err != nil {
		return notFoundStocktake(id, err)
	}
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.URL = &url.URL{Path: "/admin/stocktakes/" + url.PathEscape(id) + "/scans", RawQuery: api.Encode()}
	req.RequestURI = req.URL.RequestURI()
	c.api.mux.ServeHTTP(w, req)
	return nil
}

// openStocktake is POST /console/stocktakes: the form (name, locations,
// expected file) is the admin API's own multipart request, passed to it as
// it came. A refusal shows the list again with the reason and the form as
// filled in.
func (c *Console) openStocktake(w http.ResponseWriter, r *http.Request, sess *session) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImportBytes+64<<10))
	if err != nil {
		return c.showStocktakes(w, http.StatusRequestEntityTooLarge, sess, openForm{Error: fmt.Sprintf("文件太大（最多 %d MB）。", MaxImportBytes>>20)})
	}
	code, resp := c.call(r.Context(), http.MethodPost, "/admin/stocktakes", r.Header.Get("Content-Type"), bytes.NewReader(body))
	if code != http.StatusCreated {
		form := openForm{Error: "没有开始：" + apiMessage(resp)}
		again := &http.Request{Method: http.MethodPost, Header: r.Header, Body: io.NopCloser(bytes.NewReader(body))}
		if again.ParseMultipartForm(1<<20) == nil {
			form.Name, form.Locations = again.PostFormValue("name"), again.PostFormValue("locations")
		}
		return c.showStocktakes(w, code, sess, form)
	}
	var st Stocktake
	if err := json.Unmarshal(resp, &st); err != nil {
		return err
	}
	msg := fmt.Sprintf("已开始盘点 %s（%s）", st.ID, st.Name)
	if st.ExpectedRows > 0 {
		msg += fmt.Sprintf("，账面库存 %d 行", st.ExpectedRows)
	}
	return c.done(w, r, sess, ConsolePrefix+"stocktakes/"+url.PathEscape(st.ID), msg+"。")
}

// closeStocktake is POST /console/stocktakes/{id}/close.
func (c *Console) closeStocktake(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := r.PathValue("id")
	code, resp := c.call(r.Context(), http.MethodPost, "/admin/stocktakes/"+url.PathEscape(id)+"/close", "", nil)
	if code != http.StatusOK {
		return apiFailure(code, "没有结束", resp)
	}
	c.Notify(id)
	return c.done(w, r, sess, ConsolePrefix+"stocktakes/"+url.PathEscape(id), "盘点 "+id+" 已结束。")
}

func notFoundStocktake(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &consoleError{code: http.StatusNotFound, msg: "没有这个盘点：" + id, err: err}
	}
	return err
}

var lineRE = regexp.MustCompile(`\bline (\d+): `)

// apiMessage is the error line of an admin API answer, with "line N:" in
// Chinese (第 N 行：).
func apiMessage(body []byte) string {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "出错了（详情见服务器日志）"
	}
	return lineRE.ReplaceAllString(e.Error, "第 $1 行：")
}

// apiFailure is the console's error for an admin API answer that was not a
// success: its status, what was not done and the API's reason.
func apiFailure(code int, what string, body []byte) error {
	return &consoleError{code: code, msg: what + "：" + apiMessage(body)}
}
