package workers

import (
	"fmt"
	"strings"
	"time"
)

// The chat replies, in one place. Short, friendly, Chinese; each refusal
// says why and what to do.
//
// WeChat renders a text message's <a href> as a link and swallows anything
// that looks like a tag; it shows entities such as &lt; literally, not
// decoded. So text that a user or the operator controls (codes, locations,
// item and staff names, the user's own words) goes through plain, which
// turns < and > into their full-width forms ＜ ＞: shown faithfully, never
// markup. Only the product's own links are <a href>.

var plainReplacer = strings.NewReplacer("<", "＜", ">", "＞")

// plain makes user- or operator-controlled text safe inside a reply.
func plain(s string) string { return plainReplacer.Replace(s) }

func bindLink(publicURL string) string {
	return fmt.Sprintf(`<a href="%s/bind">点这里绑定工号</a>`, publicURL)
}

func msgWelcome(publicURL string) string {
	return "欢迎关注！盘点前请先绑定工号：" + bindLink(publicURL)
}

func msgWelcomeBack(name string) string {
	return fmt.Sprintf("欢迎回来，%s！点菜单「扫码盘点」就可以继续盘点。", plain(name))
}

func msgHelp(publicURL string) string {
	return "点菜单「扫码盘点」扫描条码即可记录；扫库位码（LOC:开头）可切换库位。" +
		"扫码后 10 分钟内发数字（如 12 或 x12）可改数量，发「撤销」可撤销最近一次扫码。还没绑定的话：" + bindLink(publicURL)
}

func msgNotBound(publicURL string) string {
	return "你还没有绑定工号，扫码没有记录。请先绑定：" + bindLink(publicURL)
}

const (
	msgNotAllowed    = "你的工号没有盘点权限，扫码没有记录。请联系管理员开通。"
	msgNoStocktake   = "现在没有进行中的盘点，扫码没有记录。请等管理员开始盘点后再扫。"
	msgBadCode       = "没有识别出条码，请对准后再扫一次。"
	msgNoLocation    = "现在的盘点只在指定库位进行，你还没有选库位，扫码没有记录。请先扫库位码（LOC:开头）再扫商品。"
	msgNothingToSet  = "没有可以改数量的扫码：只能改 10 分钟内最近一次扫码的数量。请先扫码。"
	msgNothingToUndo = "没有可以撤销的扫码：只能撤销 10 分钟内的扫码。"
)

func msgOutOfScope(loc string) string {
	return fmt.Sprintf("库位 %s 不在进行中的盘点范围内，扫码没有记录。请确认库位，扫正确的库位码后再扫商品。", plain(loc))
}

func msgLocation(loc string) string {
	return fmt.Sprintf("库位已切换到 %s，接下来的扫码都记在这里。", plain(loc))
}

// itemLabel is how a reply names a scanned item: its name, else its code.
func itemLabel(name, code string) string {
	if name != "" {
		return name
	}
	return code
}

func msgScanned(label, loc string, n int, unknown bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "已记录 %s", plain(label))
	if loc != "" {
		fmt.Fprintf(&b, "（库位 %s）", plain(loc))
	}
	fmt.Fprintf(&b, "，本次盘点你已扫 %d 件。", n)
	if unknown {
		b.WriteString("注意：这个条码未登记，不在商品资料里，请先放一边。")
	}
	if loc == "" {
		b.WriteString("（还没选库位，可先扫库位码）")
	}
	b.WriteString("发数字可改数量，发「撤销」可撤销。")
	return b.String()
}

func msgQtySet(label string, at time.Time, qty, n int) string {
	return fmt.Sprintf("已把 %s 扫的 %s 改为 %d 件，本次盘点你已扫 %d 件。", at.Format("15:04"), plain(label), qty, n)
}

func msgUndone(label string, at time.Time, n int) string {
	return fmt.Sprintf("已撤销 %s 扫的 %s，本次盘点你已扫 %d 件。", at.Format("15:04"), plain(label), n)
}

func msgLatestCancelled(label string) string {
	return fmt.Sprintf("最近一次扫码 %s 已撤销，不能改数量。请重新扫码后再发数量。", plain(label))
}
