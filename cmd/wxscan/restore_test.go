package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

// TestBackupRestore is SPEC §7's restore path: a backup taken from a running
// serve through GET /admin/backup, placed as wxscan.db in a fresh data
// directory, starts a serve that holds every scan recorded before the backup
// and none recorded after it.
func TestBackupRestore(t *testing.T) {
	fake := fakewechat.New(fakewechat.Config{AppID: testAppID, AppSecret: "e2esecret"})
	api := httptest.NewServer(fake)
	defer api.Close()
	const adminToken = "restore-admin-token"
	dir := t.TempDir()
	prepareData(t, dir, "oPhone") // ST0001 open, oPhone bound to E001
	cfg := testConfig(dir)
	cfg.APIBase, cfg.OAuthBase, cfg.AdminToken = api.URL, api.URL, adminToken
	m := MustRunMain(t, cfg)
	base := "http://" + m.HTTPAddr()

	ctx := context.Background()
	sim := simFor(m, "safe")
	scan := func(code string) {
		t.Helper()
		req, err := sim.Build(wechatsim.Push{Kind: "scan", OpenID: "oPhone", Code: "EAN_13," + code})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := sim.Send(ctx, req); err != nil || res.Status != http.StatusOK {
			t.Fatalf("scan %s: %+v %v", code, res, err)
		}
	}
	var codes []string
	for i := range 5 {
		code := strconv.Itoa(6901234567890 + i)
		codes = append(codes, code)
		scan(code)
	}
	waitForCodes(t, base, adminToken, codes)

	req, _ := http.NewRequest(http.MethodGet, base+"/admin/backup", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	backup, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %s %v", resp.Status, err)
	}
	scan("6909999999999") // after the backup: not in it
	waitForCodes(t, base, adminToken, append(slices.Clone(codes), "6909999999999"))

	restored := t.TempDir()
	if err := os.WriteFile(filepath.Join(restored, store.FileName), backup, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg2 := testConfig(restored)
	cfg2.APIBase, cfg2.OAuthBase, cfg2.AdminToken = api.URL, api.URL, adminToken
	m2 := MustRunMain(t, cfg2)
	if got, want := exportedCodes(t, "http://"+m2.HTTPAddr(), adminToken), codes; !slices.Equal(got, want) {
		t.Fatalf("restored scans=%v, want %v", got, want)
	}
}

// exportedCodes returns the codes of ST0001's scans, in recorded order.
func exportedCodes(t *testing.T, base, adminToken string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/admin/stocktakes/ST0001/scans?format=json", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var scans []struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&scans); err != nil {
		t.Fatalf("export: %s %v", resp.Status, err)
	}
	codes := make([]string, 0, len(scans))
	for _, s := range scans {
		codes = append(codes, s.Code)
	}
	return codes
}

// waitForCodes waits until ST0001's scans are exactly want.
func waitForCodes(t *testing.T, base, adminToken string, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := exportedCodes(t, base, adminToken)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("scans=%v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
