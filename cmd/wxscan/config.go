package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is wxscan's whole configuration (SPEC §3). Every setting has a
// WXSCAN_* environment variable; flags win. Secrets (AppSecret, Token,
// EncodingAESKey, admin token) come only from the environment or a file
// (--*-file flags), never from a flag value, and are never logged.
type Config struct {
	Addr       string
	DataDir    string
	NATSURL    string
	NATSListen string
	NATSCreds  string
	// NATSToken is the embedded NATS's client token; empty: generated and
	// kept in DATA_DIR/nats.token.
	NATSToken string
	// NATSSyncInterval is how often the embedded JetStream fsyncs;
	// NATSSyncAlways fsyncs before every acknowledgement (WXSCAN_NATS_SYNC).
	NATSSyncInterval  time.Duration
	NATSSyncAlways    bool
	Roles             []string
	StreamReplicas    int
	AppID             string
	AppSecret         string
	Token             string
	TokenPrev         string
	AESKey            string
	AESKeyPrev        string
	RequireEncryption bool
	PublicURL         string
	APIBase           string
	OAuthBase         string
	OAuthScope        string
	AdminToken        string
	MaxSkew           time.Duration
	// TimeZone is WXSCAN_TIMEZONE, the IANA name of the account's time
	// zone, for times in exports, replies and pages; see Location.
	TimeZone  string
	LogLevel  string
	LogFormat string
}

// DefaultConfig returns the defaults of SPEC §3.
func DefaultConfig() Config {
	return Config{
		Addr:             ":8080",
		DataDir:          "./data",
		NATSListen:       "127.0.0.1:4222",
		NATSSyncInterval: time.Second,
		Roles:            []string{"callback", "workers"},
		APIBase:          "https://api.weixin.qq.com",
		OAuthBase:        "https://open.weixin.qq.com",
		OAuthScope:       "snsapi_base",
		MaxSkew:          300 * time.Second,
		TimeZone:         "Asia/Shanghai",
		LogLevel:         "info",
		LogFormat:        "json",
		StreamReplicas:   1,
	}
}

// HasRole reports whether this process runs role ("callback" or "workers").
func (c Config) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// env is where settings come from; tests pass their own.
type env func(string) string

// bind registers the settings' flags on fs, with defaults taken from the
// environment over c's values. Secret settings only get --*-file flags.
func (c *Config) bind(fs *flag.FlagSet, getenv env) *[]func() error {
	var post []func() error
	str := func(p *string, name, envName, usage string) {
		if v := getenv(envName); v != "" {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" ("+envName+")")
	}
	// boolean is a real boolean flag (--name alone is true, --name=false
	// works); its variable takes true/false, 1/0 (strconv.ParseBool).
	boolean := func(p *bool, name, envName, usage string) {
		if v := strings.TrimSpace(getenv(envName)); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil { // an error unless the flag overrides it
				post = append(post, func() error {
					set := false
					fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
					if set {
						return nil
					}
					return fmt.Errorf("%s: %q is not true or false", envName, v)
				})
			}
			*p = b
		}
		fs.BoolVar(p, name, *p, usage+" ("+envName+")")
	}
	secret := func(p *string, name, envName, usage string) {
		if v := getenv(envName); v != "" {
			*p = v
		}
		var file string
		fs.StringVar(&file, name+"-file", "", "read "+usage+" from this file (or set "+envName+")")
		post = append(post, func() error {
			if file == "" {
				return nil
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("--%s-file: %w", name, err)
			}
			*p = strings.TrimSpace(string(b))
			return nil
		})
	}
	str(&c.Addr, "addr", "WXSCAN_ADDR", "HTTP listen address")
	str(&c.DataDir, "data-dir", "WXSCAN_DATA_DIR", "bbolt file and embedded NATS storage")
	str(&c.NATSURL, "nats-url", "WXSCAN_NATS_URL", "external NATS URL(s); empty runs an embedded server")
	str(&c.NATSListen, "nats-listen", "WXSCAN_NATS_LISTEN", "embedded NATS listen address, or off")
	str(&c.NATSCreds, "nats-creds", "WXSCAN_NATS_CREDS", "NATS credentials file for an external NATS")
	secret(&c.NATSToken, "nats-token", "WXSCAN_NATS_TOKEN", "the embedded NATS's client token")
	natsSync := c.NATSSyncInterval.String()
	if c.NATSSyncAlways {
		natsSync = "always"
	}
	str(&natsSync, "nats-sync", "WXSCAN_NATS_SYNC", "embedded JetStream fsync interval, or always")
	roles := strings.Join(c.Roles, ",")
	str(&roles, "roles", "WXSCAN_ROLES", "roles this process runs: callback, workers")
	replicas := strconv.Itoa(c.StreamReplicas)
	str(&replicas, "stream-replicas", "WXSCAN_STREAM_REPLICAS", "stream replicas on a NATS cluster")
	str(&c.AppID, "appid", "WXSCAN_APPID", "the account's AppID")
	secret(&c.AppSecret, "appsecret", "WXSCAN_APPSECRET", "the AppSecret")
	secret(&c.Token, "token", "WXSCAN_TOKEN", "the callback Token")
	secret(&c.TokenPrev, "token-prev", "WXSCAN_TOKEN_PREV", "the previous Token")
	secret(&c.AESKey, "aes-key", "WXSCAN_AES_KEY", "the EncodingAESKey")
	secret(&c.AESKeyPrev, "aes-key-prev", "WXSCAN_AES_KEY_PREV", "the previous EncodingAESKey")
	boolean(&c.RequireEncryption, "require-encryption", "WXSCAN_REQUIRE_ENCRYPTION", "refuse plaintext POSTs (safe mode only)")
	str(&c.PublicURL, "public-url", "WXSCAN_PUBLIC_URL", "external base URL")
	str(&c.APIBase, "api-base", "WXSCAN_API_BASE", "WeChat API base")
	str(&c.OAuthBase, "oauth-base", "WXSCAN_OAUTH_BASE", "base of the OAuth authorize page")
	str(&c.OAuthScope, "oauth-scope", "WXSCAN_OAUTH_SCOPE", "snsapi_base or snsapi_userinfo")
	secret(&c.AdminToken, "admin-token", "WXSCAN_ADMIN_TOKEN", "the admin API bearer token")
	skew := c.MaxSkew.String()
	str(&skew, "max-skew", "WXSCAN_MAX_SKEW", "accepted callback timestamp distance")
	str(&c.TimeZone, "timezone", "WXSCAN_TIMEZONE", "the account's time zone, e.g. Asia/Shanghai")
	str(&c.LogLevel, "log-level", "WXSCAN_LOG_LEVEL", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "WXSCAN_LOG_FORMAT", "json or text")
	post = append(post, func() error {
		c.Roles = nil
		for _, r := range strings.Split(roles, ",") {
			if r = strings.TrimSpace(r); r != "" {
				c.Roles = append(c.Roles, r)
			}
		}
		n, err := strconv.Atoi(strings.TrimSpace(replicas))
		if err != nil {
			return fmt.Errorf("WXSCAN_STREAM_REPLICAS: %q is not a number", replicas)
		}
		c.StreamReplicas = n
		d, err := parseDuration(skew)
		if err != nil {
			return fmt.Errorf("WXSCAN_MAX_SKEW: %q is not a duration like 300s", skew)
		}
		c.MaxSkew = d
		if c.NATSSyncInterval, c.NATSSyncAlways, err = parseNATSSync(natsSync); err != nil {
			return err
		}
		return nil
	})
	return &post
}

// parseDuration accepts Go durations and bare seconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// Validate checks the settings this process's roles need. Each message
// names the variable.
func (c Config) Validate() error {
	var errs []error
	need := func(v, name, why string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s is required%s", name, why))
		}
	}
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("WXSCAN_ROLES is empty: use callback, workers or both"))
	}
	for _, r := range c.Roles {
		if r != "callback" && r != "workers" {
			errs = append(errs, fmt.Errorf("WXSCAN_ROLES: unknown role %q (callback, workers)", r))
		}
	}
	need(c.AppID, "WXSCAN_APPID", "")
	if c.HasRole("callback") {
		need(c.Token, "WXSCAN_TOKEN", " for the callback role")
	}
	if c.HasRole("workers") {
		need(c.AppSecret, "WXSCAN_APPSECRET", " for the workers role")
	}
	need(c.PublicURL, "WXSCAN_PUBLIC_URL", "")
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("WXSCAN_PUBLIC_URL: %q is not an http(s) URL", c.PublicURL))
		}
	}
	for _, k := range []struct{ v, name string }{{c.AESKey, "WXSCAN_AES_KEY"}, {c.AESKeyPrev, "WXSCAN_AES_KEY_PREV"}} {
		if k.v != "" && !validAESKey(k.v) {
			errs = append(errs, fmt.Errorf("%s is malformed: want 43 characters of base64", k.name))
		}
	}
	if c.RequireEncryption && c.AESKey == "" {
		errs = append(errs, errors.New("WXSCAN_REQUIRE_ENCRYPTION needs WXSCAN_AES_KEY"))
	}
	if c.OAuthScope != "snsapi_base" && c.OAuthScope != "snsapi_userinfo" {
		errs = append(errs, fmt.Errorf("WXSCAN_OAUTH_SCOPE: %q is not snsapi_base or snsapi_userinfo", c.OAuthScope))
	}
	if c.MaxSkew <= 0 {
		errs = append(errs, errors.New("WXSCAN_MAX_SKEW must be positive"))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("WXSCAN_STREAM_REPLICAS: %d is not between 1 and 5", c.StreamReplicas))
	}
	if c.NATSToken != "" && !validNATSToken(c.NATSToken) {
		errs = append(errs, errors.New("WXSCAN_NATS_TOKEN: use at least 16 characters, only letters, digits and - . _ ~"))
	}
	if _, err := c.Location(); err != nil {
		errs = append(errs, err)
	}
	if c.NATSURL == "" && c.DataDir == "" {
		errs = append(errs, errors.New("WXSCAN_DATA_DIR is required for the embedded NATS server"))
	}
	if c.HasRole("workers") && c.DataDir == "" {
		errs = append(errs, errors.New("WXSCAN_DATA_DIR is required for the workers role"))
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Location is the time zone WXSCAN_TIMEZONE names (the zone data is
// embedded in the binary), or an error naming the variable.
func (c Config) Location() (*time.Location, error) {
	name := strings.TrimSpace(c.TimeZone)
	if name == "" {
		return nil, errors.New("WXSCAN_TIMEZONE is empty: use a zone name like Asia/Shanghai")
	}
	loc, err := time.LoadLocation(name)
	if err != nil || strings.EqualFold(name, "local") {
		return nil, fmt.Errorf("WXSCAN_TIMEZONE: %q is not a time zone name like Asia/Shanghai", c.TimeZone)
	}
	return loc, nil
}

func validAESKey(k string) bool {
	if len(k) != 43 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(k + "=")
	return err == nil && len(b) == 32
}

// parseNATSSync reads WXSCAN_NATS_SYNC: a positive duration, or "always"
// (fsync before every acknowledgement; the interval then stays 1 s for
// what nats-server syncs on its own).
func parseNATSSync(s string) (interval time.Duration, always bool, err error) {
	if strings.TrimSpace(s) == "always" {
		return time.Second, true, nil
	}
	d, err := parseDuration(s)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("WXSCAN_NATS_SYNC: %q is not a positive duration like 1s, or always", s)
	}
	return d, false, nil
}

// validNATSToken accepts tokens that go into a nats:// URL as they are.
func validNATSToken(t string) bool {
	if len(t) < 16 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return true
}
