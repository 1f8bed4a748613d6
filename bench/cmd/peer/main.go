// Command peer is the benchmark's peer: silenceper/wechat v2.1.10's
// official-account server with a message handler that returns nil and stores
// nothing, as its README shows. It checks the signature (and in safe mode the
// msg_signature, then decrypts) and answers "success" in plaintext, an empty
// 200 in safe mode (what the library does for a nil reply there).
//
// It reads WXSCAN_TOKEN, WXSCAN_AES_KEY and WXSCAN_APPID, like wxscan.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/silenceper/wechat/v2"
	"github.com/silenceper/wechat/v2/cache"
	offConfig "github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/message"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen address (loopback)")
	flag.Parse()
	wc := wechat.NewWechat()
	oa := wc.GetOfficialAccount(&offConfig.Config{
		AppID:          os.Getenv("WXSCAN_APPID"),
		AppSecret:      "unused",
		Token:          os.Getenv("WXSCAN_TOKEN"),
		EncodingAESKey: os.Getenv("WXSCAN_AES_KEY"),
		Cache:          cache.NewMemory(),
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		srv := oa.GetServer(r, w)
		srv.SetMessageHandler(func(*message.MixMessage) *message.Reply { return nil })
		if err := srv.Serve(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := srv.Send(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	s := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(s.ListenAndServe())
}
