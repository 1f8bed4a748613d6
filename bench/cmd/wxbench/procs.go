package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// profileHook is added to cmd/wxscan at build time (go build -overlay) when
// the driver profiles: the product's tree is not touched. SIGUSR1 starts a
// CPU profile, the next SIGUSR1 stops it; an allocation profile is written
// at each start and stop, to be compared with pprof -base.
//
//go:embed profilehook.go.txt
var profileHook []byte

// build compiles wxscan (from cfg.repo) and the bare and peer servers into
// cfg.tmp/bin.
func build(ctx context.Context, cfg *config) error {
	bin := filepath.Join(cfg.tmp, "bin")
	wxArgs := []string{"build", "-o", filepath.Join(bin, "wxscan")}
	if cfg.profileDir != "" {
		hook := filepath.Join(cfg.tmp, "profilehook.go")
		if err := os.WriteFile(hook, profileHook, 0o644); err != nil {
			return err
		}
		overlay := map[string]map[string]string{"Replace": {
			filepath.Join(cfg.repo, "cmd", "wxscan", "zz_wxbench_profilehook.go"): hook,
		}}
		b, _ := json.Marshal(overlay)
		ov := filepath.Join(cfg.tmp, "overlay.json")
		if err := os.WriteFile(ov, b, 0o644); err != nil {
			return err
		}
		wxArgs = append(wxArgs, "-overlay", ov)
	}
	steps := []struct {
		dir  string
		args []string
	}{
		{cfg.repo, append(wxArgs, "./cmd/wxscan")},
		{cfg.benchDir, []string{"build", "-o", filepath.Join(bin, "bare"), "./cmd/bare"}},
		{cfg.benchDir, []string{"build", "-o", filepath.Join(bin, "peer"), "./cmd/peer"}},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, "go", s.args...)
		cmd.Dir = s.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %v in %s: %w\n%s", s.args, s.dir, err, out)
		}
	}
	return nil
}

// proc is a server the driver started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// start runs bin with args and env (added to a minimal environment), its
// output going to cfg.tmp/<name>.log.
func start(cfg *config, name, bin string, env []string, args ...string) (*proc, error) {
	lf, err := os.Create(filepath.Join(cfg.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cfg.tmp}
	for _, k := range []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT"} {
		if v := os.Getenv(k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: lf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop ends p with SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHTTP polls url until it answers 200 or timeout passes.
func waitHTTP(p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready; see its log", p.name)
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready at %s after %s", p.name, url, timeout)
}

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// cpuTime is the user and system CPU time p's process has used, from
// /proc/<pid>/stat (in USER_HZ ticks, 100 per second on Linux); ok is false
// where that cannot be read.
func (p *proc) cpuTime() (d time.Duration, ok bool) {
	if p == nil || p.cmd.Process == nil {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // fields 3.. : utime and stime are fields 14 and 15
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / 100, true
}
