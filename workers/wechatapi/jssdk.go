package wechatapi

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// JSConfig holds the fields of wx.config that the server computes.
type JSConfig struct {
	AppID     string `json:"appId"`
	Timestamp int64  `json:"timestamp"`
	NonceStr  string `json:"nonceStr"`
	Signature string `json:"signature"`
}

// JSSDKSignature signs a page for wx.config: the hex SHA-1 of
// "jsapi_ticket=..&noncestr=..&timestamp=..&url=..", with the url's #fragment stripped.
func JSSDKSignature(ticket, nonceStr string, timestamp int64, url string) string {
	if i := strings.IndexByte(url, '#'); i >= 0 {
		url = url[:i]
	}
	s := "jsapi_ticket=" + ticket + "&noncestr=" + nonceStr +
		"&timestamp=" + strconv.FormatInt(timestamp, 10) + "&url=" + url
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// JSConfig signs pageURL (the full URL of the page calling wx.config, as the browser sees it) with the
// current jsapi_ticket and a fresh random nonce.
func (c *Client) JSConfig(ctx context.Context, pageURL string) (JSConfig, error) {
	ticket, err := c.ticket.get(ctx)
	if err != nil {
		return JSConfig{}, fmt.Errorf("wechatapi: js config: %w", err)
	}
	cfg := JSConfig{AppID: c.appID, Timestamp: c.now().Unix(), NonceStr: rand.Text()[:16]}
	cfg.Signature = JSSDKSignature(ticket, cfg.NonceStr, cfg.Timestamp, pageURL)
	return cfg, nil
}
