package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
)

// TestServeHelp runs `wxscan serve --help`: it lists serve's settings, not
// the CLI's --server, and boolean settings are boolean flags.
func TestServeHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--help"}, &stdout, &stderr, func(string) string { return "" })
	if got, want := code, 0; got != want {
		t.Fatalf("exit=%d, want %d", got, want)
	}
	help := stderr.String()
	for _, want := range []string{"-addr string", "-data-dir string", "-admin-token-file string", "-require-encryption\n"} {
		if !strings.Contains(help, want) {
			t.Fatalf("serve --help lacks %q:\n%s", want, help)
		}
	}
	if regexp.MustCompile(`(?m)^\s+-server\b`).MatchString(help) {
		t.Fatalf("serve --help lists the CLI's -server flag:\n%s", help)
	}
	if strings.Contains(help, "-require-encryption string") {
		t.Fatalf("--require-encryption takes a string:\n%s", help)
	}
}

func TestServeBoolFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     string // WXSCAN_REQUIRE_ENCRYPTION
		args    []string
		want    bool
		wantErr string
	}{
		{name: "default", want: false},
		{name: "flag alone", args: []string{"--require-encryption"}, want: true},
		{name: "flag true", args: []string{"--require-encryption=true"}, want: true},
		{name: "flag false over env", env: "true", args: []string{"--require-encryption=false"}, want: false},
		{name: "env true", env: "true", want: true},
		{name: "env 1", env: "1", want: true},
		{name: "env false", env: "false", want: false},
		{name: "env bad", env: "maybe", wantErr: `WXSCAN_REQUIRE_ENCRYPTION: "maybe" is not true or false`},
		{name: "flag over bad env", env: "maybe", args: []string{"--require-encryption"}, want: true},
		{name: "server is the CLI's", args: []string{"--server", "http://x"}, wantErr: "flag provided but not defined: -server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"WXSCAN_APPID": testAppID, "WXSCAN_TOKEN": testToken, "WXSCAN_APPSECRET": "s",
				"WXSCAN_PUBLIC_URL": "https://wx.example.com", "WXSCAN_AES_KEY": testAESKey,
				"WXSCAN_REQUIRE_ENCRYPTION": tt.env,
			}
			m := NewMain()
			m.Stderr = io.Discard
			m.Getenv = func(k string) string { return env[k] }
			err := m.ParseFlags(context.Background(), tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err=%v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Config.RequireEncryption; got != tt.want {
				t.Fatalf("RequireEncryption=%v, want %v", got, tt.want)
			}
		})
	}
}
