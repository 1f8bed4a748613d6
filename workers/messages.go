package workers

import "fmt"

// The chat replies, in one place. Short, friendly, Chinese; each refusal
// says why and what to do.

func bindLink(publicURL string) string {
	return fmt.Sprintf(`<a href="%s/bind">点这里绑定工号</a>`, publicURL)
}

func msgWelcome(publicURL string) string {
	return "欢迎关注！盘点前请先绑定工号：" + bindLink(publicURL)
}

func msgWelcomeBack(name string) string {
	return fmt.Sprintf("欢迎回来，%s！点菜单「扫码盘点」就可以继续盘点。", name)
}

func msgHelp(publicURL string) string {
	return "点菜单「扫码盘点」扫描条码即可记录；扫库位码（LOC:开头）可切换库位。还没绑定的话：" + bindLink(publicURL)
}

func msgNotBound(publicURL string) string {
	return "你还没有绑定工号，扫码没有记录。请先绑定：" + bindLink(publicURL)
}

const (
	msgNotAllowed  = "你的工号没有盘点权限，扫码没有记录。请联系管理员开通。"
	msgNoStocktake = "现在没有进行中的盘点，扫码没有记录。请等管理员开始盘点后再扫。"
	msgBadCode     = "没有识别出条码，请对准后再扫一次。"
)

func msgLocation(loc string) string {
	return fmt.Sprintf("库位已切换到 %s，接下来的扫码都记在这里。", loc)
}

func msgScanned(code, loc string, n int) string {
	if loc == "" {
		return fmt.Sprintf("已记录 %s，本次盘点你已扫 %d 件。（还没选库位，可先扫库位码）", code, n)
	}
	return fmt.Sprintf("已记录 %s（库位 %s），本次盘点你已扫 %d 件。", code, loc, n)
}
