package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
)

// wxscanEnv is the environment of `wxscan serve` in its default shape:
// callback and workers in one process with an embedded NATS server, every
// setting at its default except addresses, secrets and the fake WeChat API.
func wxscanEnv(cfg *config, addr, natsAddr, fakeURL string) []string {
	return []string{
		"WXSCAN_ADDR=" + addr,
		"WXSCAN_DATA_DIR=" + filepath.Join(cfg.tmp, "data"),
		"WXSCAN_NATS_LISTEN=" + natsAddr,
		"WXSCAN_NATS_TOKEN=" + cfg.natsToken,
		"WXSCAN_APPID=" + cfg.appID,
		"WXSCAN_APPSECRET=" + cfg.appSecret,
		"WXSCAN_TOKEN=" + cfg.token,
		"WXSCAN_AES_KEY=" + cfg.aesKey,
		"WXSCAN_PUBLIC_URL=http://" + addr,
		"WXSCAN_API_BASE=" + fakeURL,
		"WXSCAN_OAUTH_BASE=" + fakeURL,
		"WXSCAN_ADMIN_TOKEN=" + cfg.adminToken,
	}
}

// admin is a small client of wxscan's admin API.
type admin struct {
	base, token string
}

func (a admin) do(ctx context.Context, method, path, ctype string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("admin %s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("admin %s %s: %w", method, path, err)
		}
	}
	return nil
}

// counts are what the benchmark checks a run against.
type counts struct {
	StreamMsgs uint64 // messages in the WECHAT stream
	Scans      int    // scans recorded in the open stocktake
}

func (a admin) counts(ctx context.Context) (counts, error) {
	var st struct {
		StreamMsgs uint64 `json:"stream_msgs"`
	}
	if err := a.do(ctx, http.MethodGet, "/admin/status", "", nil, &st); err != nil {
		return counts{}, err
	}
	var list []struct {
		State string `json:"state"`
		Scans int    `json:"scans"`
	}
	if err := a.do(ctx, http.MethodGet, "/admin/stocktakes", "", nil, &list); err != nil {
		return counts{}, err
	}
	c := counts{StreamMsgs: st.StreamMsgs}
	for _, s := range list {
		if s.State == "open" {
			c.Scans = s.Scans
		}
	}
	return c, nil
}

// prepareStaff imports n staff members through the admin API, binds each to
// an openid through the /bind pages and the fake WeChat authorize page (as
// their phones would), opens a stocktake, and returns the openids.
func prepareStaff(ctx context.Context, a admin, server string, n int) ([]string, error) {
	var csv strings.Builder
	csv.WriteString("employee_no,name,bind_code,can_scan\n")
	for i := range n {
		fmt.Fprintf(&csv, "WB%03d,bench %d,bcode%03d,true\n", i, i, i)
	}
	if err := a.do(ctx, http.MethodPost, "/admin/users/import", "text/csv", []byte(csv.String()), nil); err != nil {
		return nil, err
	}
	openids := make([]string, n)
	for i := range n {
		openids[i] = fmt.Sprintf("oBenchStaff%03d", i)
		p := &wechatsim.Phone{Server: server}
		res, err := p.Bind(ctx, openids[i], fmt.Sprintf("WB%03d", i), fmt.Sprintf("bcode%03d", i))
		if err != nil {
			return nil, fmt.Errorf("bind %s: %w", openids[i], err)
		}
		if res.Status != http.StatusOK {
			return nil, fmt.Errorf("bind %s: %d", openids[i], res.Status)
		}
	}
	var bindings []json.RawMessage
	if err := a.do(ctx, http.MethodGet, "/admin/bindings", "", nil, &bindings); err != nil {
		return nil, err
	}
	if len(bindings) < n {
		return nil, fmt.Errorf("%d bindings after binding %d staff", len(bindings), n)
	}
	body := []byte(`{"name":"wxbench ` + time.Now().UTC().Format("2006-01-02 15:04") + `"}`)
	if err := a.do(ctx, http.MethodPost, "/admin/stocktakes", "application/json", body, nil); err != nil {
		return nil, err
	}
	return openids, nil
}
