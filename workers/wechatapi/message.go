package wechatapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// SendText sends a text message through message/custom/send. WeChat accepts it only within 48 hours of
// the user's last interaction; afterwards it answers 45015 (CodeReplyWindowPassed), which is Permanent.
// SendText is not idempotent: a retry after a timeout may deliver the message twice.
func (c *Client) SendText(ctx context.Context, openid, content string) error {
	body := struct {
		ToUser  string `json:"touser"`
		MsgType string `json:"msgtype"`
		Text    struct {
			Content string `json:"content"`
		} `json:"text"`
	}{ToUser: openid, MsgType: "text"}
	body.Text.Content = content
	err := c.withToken(ctx, func(tok string) error {
		return c.call(ctx, http.MethodPost, "cgi-bin/message/custom/send", url.Values{"access_token": {tok}}, body, nil)
	})
	if err != nil {
		return fmt.Errorf("wechatapi: send text: %w", err)
	}
	return nil
}

// Menu is the custom menu: up to 3 top-level buttons, each with up to 5 sub-buttons.
type Menu struct {
	Buttons []Button `json:"button"`
}

// Button is a menu button. Type is e.g. "click", "view", "scancode_waitmsg" or "scancode_push"; a button
// with SubButtons has no Type.
type Button struct {
	Type       string   `json:"type,omitempty"`
	Name       string   `json:"name"`
	Key        string   `json:"key,omitempty"`
	URL        string   `json:"url,omitempty"`
	SubButtons []Button `json:"sub_button,omitempty"`
}

// CreateMenu replaces the account's custom menu (menu/create). It is idempotent.
func (c *Client) CreateMenu(ctx context.Context, menu Menu) error {
	err := c.withToken(ctx, func(tok string) error {
		return c.call(ctx, http.MethodPost, "cgi-bin/menu/create", url.Values{"access_token": {tok}}, menu, nil)
	})
	if err != nil {
		return fmt.Errorf("wechatapi: create menu: %w", err)
	}
	return nil
}
